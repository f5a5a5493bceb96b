import smtplib
from datetime import timedelta

from celery import shared_task
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import timezone

from shop.models import Cart, Order


@shared_task
def purge_abandoned_carts(days: int = 30) -> int:
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = Cart.objects.filter(updated_at__lt=cutoff, user__isnull=True).delete()
    return deleted


@shared_task(autoretry_for=(smtplib.SMTPException, ConnectionError), retry_backoff=True, max_retries=5)
def send_order_confirmation(order_id: int) -> None:
    order = Order.objects.select_related("user").get(pk=order_id)
    body = render_to_string("shop/email/order_confirmation.txt", {"order": order})
    send_mail(f"Order {order.number} confirmed", body, None, [order.user.email])
