import os

from django.contrib.auth.hashers import make_password
from django.db import migrations

E2E_ADMIN_EMAIL = "e2e-admin@northwind.test"


def create_e2e_admin(apps, schema_editor):
    # Preview environments are built from a fresh database and nobody can run
    # manage.py in them, so the account the Playwright suite logs in with is
    # created here instead of by the create_e2e_users command.
    User = apps.get_model("accounts", "User")
    User.objects.update_or_create(
        email=E2E_ADMIN_EMAIL,
        defaults={
            "username": "e2e-admin",
            "first_name": "E2E",
            "last_name": "Admin",
            "is_active": True,
            "is_staff": True,
            "is_superuser": True,
            "password": make_password(os.environ.get("E2E_ADMIN_PASSWORD", "northwind-e2e-admin")),
        },
    )


def remove_e2e_admin(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    User.objects.filter(email=E2E_ADMIN_EMAIL).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0023_user_last_seen_at"),
    ]

    operations = [
        migrations.RunPython(create_e2e_admin, remove_e2e_admin),
    ]
