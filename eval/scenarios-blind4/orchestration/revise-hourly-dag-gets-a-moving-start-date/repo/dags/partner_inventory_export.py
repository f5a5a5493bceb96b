from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG
from airflow.providers.amazon.aws.transfers.sql_to_s3 import SqlToS3Operator

default_args = {
    "owner": "partner-integrations",
    "retries": 3,
    "retry_delay": timedelta(minutes=5),
    "execution_timeout": timedelta(minutes=30),
}

with DAG(
    dag_id="partner_inventory_export",
    description="Hourly inventory changes for the marketplace partners",
    schedule="15 * * * *",
    # Starting from "now" so switching to hourly does not backfill every hour since January.
    start_date=datetime.now() - timedelta(hours=1),
    max_active_runs=1,
    default_args=default_args,
    tags=["partners", "export"],
) as dag:
    SqlToS3Operator(
        task_id="export_inventory",
        sql_conn_id="warehouse",
        query="""
            SELECT sku, warehouse_id, on_hand, reserved
              FROM inventory_changes
             WHERE changed_at >= '{{ data_interval_start }}'
               AND changed_at <  '{{ data_interval_end }}'
        """,
        s3_bucket="acme-partner-exports",
        s3_key="inventory/{{ data_interval_start | ts_nodash }}/inventory.csv",
        replace=True,
        file_format="csv",
    )
