from django.contrib.auth.decorators import login_required
from django.http import JsonResponse

from crm.queries import count_customers, search_customers


@login_required
def customer_stats(request):
    return JsonResponse({"customers": count_customers()})


@login_required
def customer_autocomplete(request):
    """Suggestions for the customer picker as the agent types."""
    term = request.GET.get("q", "").strip()
    if len(term) < 2:
        return JsonResponse({"results": []})
    rows = search_customers(term, limit=10)
    return JsonResponse({"results": [{"id": r[0], "name": r[1], "email": r[2]} for r in rows]})
