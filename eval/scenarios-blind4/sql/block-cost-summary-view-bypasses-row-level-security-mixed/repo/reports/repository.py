"""Read-only queries behind the reports pages.

Every connection handed out by ``db.tenant_connection()`` has ``app.tenant_id`` set for the
request's tenant, and the tables are protected by row-level security, so the queries here do
not repeat the tenant filter.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from psycopg import Connection


@dataclass(frozen=True)
class MonthlyCost:
    month: date
    total_cents: int


@dataclass(frozen=True)
class ProjectCostRow:
    project_id: int
    project_name: str
    month: date
    total_cents: int
    entries: int


def monthly_costs(conn: Connection, project_id: int) -> list[MonthlyCost]:
    rows = conn.execute(
        """
        SELECT date_trunc('month', incurred_on)::date, sum(amount_cents)
          FROM app.project_costs
         WHERE project_id = %s
         GROUP BY 1
         ORDER BY 1
        """,
        (project_id,),
    ).fetchall()
    return [MonthlyCost(month=m, total_cents=t) for m, t in rows]


def cost_summary(conn: Connection, since: date) -> list[ProjectCostRow]:
    rows = conn.execute(
        """
        SELECT project_id, project_name, month, total_cents, entries
          FROM reporting.project_cost_summary
         WHERE month >= %s
         ORDER BY project_name, month
        """,
        (since,),
    ).fetchall()
    return [ProjectCostRow(*row) for row in rows]
