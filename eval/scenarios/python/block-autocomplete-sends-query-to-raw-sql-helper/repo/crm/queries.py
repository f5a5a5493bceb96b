"""Reporting queries that the ORM makes awkward (full-text ranking, legacy tables)."""

from django.db import connection


def search_customers(term: str, limit: int = 20) -> list[tuple]:
    # Only called by the nightly CRM sync with names read from our own table.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, name, email FROM crm_customer "
            f"WHERE name ILIKE '%{term}%' ORDER BY name LIMIT {int(limit)}"
        )
        return cursor.fetchall()


def count_customers() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM crm_customer")
        return cursor.fetchone()[0]
