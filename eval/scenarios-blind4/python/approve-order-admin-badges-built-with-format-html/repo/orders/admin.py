from urllib.parse import urlencode

from django.contrib import admin
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from orders.models import Order, OrderLine

STATUS_BADGE_CLASSES = {
    Order.Status.PENDING: "badge-grey",
    Order.Status.PAID: "badge-blue",
    Order.Status.SHIPPED: "badge-green",
    Order.Status.CANCELLED: "badge-red",
}

CARRIER_TRACKING_URL = "https://www.dhl.com/global-en/home/tracking/tracking-parcel.html"


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    readonly_fields = ("sku", "quantity", "unit_price")
    can_delete = False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("number", "customer_email", "status_badge", "tracking", "total", "created_at")
    list_filter = ("status", "created_at")
    search_fields = ("number", "customer_email", "tracking_number")
    date_hierarchy = "created_at"
    inlines = [OrderLineInline]
    readonly_fields = ("number", "created_at", "updated_at")
    list_per_page = 50

    class Media:
        css = {"all": ("orders/admin/badges.css",)}

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("customer")

    @admin.display(description="Customer email", ordering="customer__email")
    def customer_email(self, obj):
        return obj.customer.email

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        css_class = STATUS_BADGE_CLASSES.get(obj.status, "badge-grey")
        return format_html('<span class="badge {}">{}</span>', css_class, obj.get_status_display())

    @admin.display(description="Tracking")
    def tracking(self, obj):
        if not obj.tracking_number:
            return mark_safe("&mdash;")
        query = urlencode({"tracking-id": obj.tracking_number})
        return format_html(
            '<a href="{}?{}" target="_blank" rel="noopener noreferrer">{}</a>',
            CARRIER_TRACKING_URL,
            query,
            obj.tracking_number,
        )
