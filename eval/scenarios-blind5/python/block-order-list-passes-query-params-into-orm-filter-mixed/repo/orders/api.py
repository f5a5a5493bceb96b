from django.core.exceptions import FieldError, ValidationError
from rest_framework.exceptions import ParseError
from rest_framework.generics import ListAPIView, RetrieveAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated

from orders.models import Order
from orders.serializers import OrderDetailSerializer, OrderSerializer

NON_FILTER_PARAMS = {"page", "page_size", "ordering"}
ORDERING_FIELDS = {"created_at", "-created_at", "total", "-total", "number", "-number"}


class OrderPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class OrderListView(ListAPIView):
    serializer_class = OrderSerializer
    permission_classes = [IsAuthenticated]
    pagination_class = OrderPagination

    def get_queryset(self):
        qs = Order.objects.filter(organization=self.request.user.organization).select_related("customer")
        params = self.request.query_params
        filters = {key: value for key, value in params.items() if key not in NON_FILTER_PARAMS and value != ""}
        try:
            qs = qs.filter(**filters)
        except (FieldError, ValidationError, ValueError) as exc:
            raise ParseError(f"invalid filter: {exc}") from exc
        ordering = params.get("ordering", "-created_at")
        if ordering not in ORDERING_FIELDS:
            raise ParseError(f"cannot order by {ordering}")
        return qs.order_by(ordering, "-pk")


class OrderDetailView(RetrieveAPIView):
    serializer_class = OrderDetailSerializer
    permission_classes = [IsAuthenticated]
    lookup_field = "number"

    def get_queryset(self):
        return Order.objects.filter(organization=self.request.user.organization).prefetch_related("lines")
