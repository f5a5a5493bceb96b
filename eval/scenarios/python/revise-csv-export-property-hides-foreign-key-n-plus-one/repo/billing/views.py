import csv

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpResponse

from billing.models import Invoice


@staff_member_required
def invoice_count(request):
    return HttpResponse(str(Invoice.objects.count()))


@staff_member_required
def export_invoices(request):
    """CSV of every invoice issued in a year, for the accountants."""
    year = int(request.GET.get("year", "2024"))
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="invoices-{year}.csv"'
    writer = csv.writer(response)
    writer.writerow(["number", "issued_on", "billed_to", "total"])
    for invoice in Invoice.objects.filter(issued_on__year=year).order_by("issued_on"):
        writer.writerow([invoice.number, invoice.issued_on, invoice.billing_label, invoice.total])
    return response
