import logging

from django.db import transaction

from shop.models import Cart, Order, OrderItem, Product
from shop.tasks import send_order_confirmation

logger = logging.getLogger(__name__)


class OutOfStock(Exception):
    def __init__(self, product: Product):
        super().__init__(f"{product.sku} is out of stock")
        self.product = product


def place_order(cart: Cart, user) -> Order:
    with transaction.atomic():
        items = list(cart.items.select_related("product").select_for_update(of=("product",)))
        for item in items:
            if item.product.stock < item.quantity:
                raise OutOfStock(item.product)
            item.product.stock -= item.quantity
            item.product.save(update_fields=["stock"])

        order = Order.objects.create(
            user=user,
            total=cart.total(),
            shipping_address=cart.shipping_address,
        )
        OrderItem.objects.bulk_create(
            [
                OrderItem(order=order, product=item.product, quantity=item.quantity, unit_price=item.product.price)
                for item in items
            ]
        )
        cart.items.all().delete()
        # The SMTP round trip made checkout take 2-3 s; the worker sends the mail now.
        send_order_confirmation.delay(order.pk)

    logger.info("order placed", extra={"order_id": order.pk, "user_id": user.pk})
    return order
