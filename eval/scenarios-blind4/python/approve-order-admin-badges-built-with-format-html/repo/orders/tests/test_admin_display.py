from django.contrib.admin.sites import AdminSite
from django.test import SimpleTestCase

from orders.admin import OrderAdmin
from orders.models import Order


class OrderAdminDisplayTests(SimpleTestCase):
    def setUp(self):
        self.order_admin = OrderAdmin(Order, AdminSite())

    def test_tracking_number_is_escaped_in_link_text_and_url(self):
        order = Order(number="A-1001", tracking_number='JD01<script>alert(1)</script>')
        html = self.order_admin.tracking(order)
        self.assertNotIn("<script>", html)
        self.assertIn("JD01&lt;script&gt;alert(1)&lt;/script&gt;", html)
        self.assertIn("tracking-id=JD01%3Cscript%3E", html)

    def test_missing_tracking_number_renders_a_dash(self):
        order = Order(number="A-1002", tracking_number="")
        self.assertEqual(self.order_admin.tracking(order), "&mdash;")

    def test_status_badge_uses_the_display_label(self):
        order = Order(number="A-1003", status=Order.Status.SHIPPED)
        html = self.order_admin.status_badge(order)
        self.assertEqual(html, '<span class="badge badge-green">Shipped</span>')
