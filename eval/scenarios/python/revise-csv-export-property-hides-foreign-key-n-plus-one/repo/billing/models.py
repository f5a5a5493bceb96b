from django.db import models


class Account(models.Model):
    name = models.CharField(max_length=200)
    billing_email = models.EmailField()


class Invoice(models.Model):
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="invoices")
    number = models.CharField(max_length=32, unique=True)
    issued_on = models.DateField()
    total = models.DecimalField(max_digits=12, decimal_places=2)

    @property
    def billing_label(self) -> str:
        """The name and address the invoice is billed to, as printed on the PDF."""
        return f"{self.account.name} <{self.account.billing_email}>"
