-- Repeatable migration: Flyway re-applies it whenever this file changes.
-- Creates the coming months' partitions of the monthly-partitioned tables in schema
-- analytics; pg_cron calls it every night as the partition_maintainer role.

SELECT cron.unschedule('events-partitions')
 WHERE EXISTS (SELECT 1 FROM cron.job WHERE jobname = 'events-partitions');

DROP FUNCTION IF EXISTS analytics.create_next_events_partition();

CREATE OR REPLACE FUNCTION analytics.ensure_monthly_partitions(parent regclass, months_ahead int DEFAULT 2)
RETURNS int
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parent_schema text;
    parent_table  text;
    month_start   date;
    ensured       int := 0;
BEGIN
    IF months_ahead NOT BETWEEN 1 AND 12 THEN
        RAISE EXCEPTION 'months_ahead must be between 1 and 12, got %', months_ahead;
    END IF;

    -- Only partitioned tables of schema analytics; the regclass cast already rejected unknown names.
    SELECT n.nspname, c.relname
      INTO parent_schema, parent_table
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_partitioned_table p ON p.partrelid = c.oid
     WHERE c.oid = parent
       AND n.nspname = 'analytics';

    IF parent_table IS NULL THEN
        RAISE EXCEPTION '% is not a partitioned table of schema analytics', parent;
    END IF;

    FOR i IN 1..months_ahead LOOP
        month_start := (date_trunc('month', now()) + make_interval(months => i))::date;
        EXECUTE format(
            'CREATE TABLE IF NOT EXISTS %I.%I PARTITION OF %I.%I FOR VALUES FROM (%L) TO (%L)',
            parent_schema,
            parent_table || '_' || to_char(month_start, 'YYYY_MM'),
            parent_schema,
            parent_table,
            month_start,
            (month_start + interval '1 month')::date
        );
        ensured := ensured + 1;
    END LOOP;

    RETURN ensured;
END;
$$;

REVOKE ALL ON FUNCTION analytics.ensure_monthly_partitions(regclass, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION analytics.ensure_monthly_partitions(regclass, int) TO partition_maintainer;

SELECT cron.schedule('analytics-partitions', '15 3 * * *', $$
    SELECT analytics.ensure_monthly_partitions('analytics.events');
    SELECT analytics.ensure_monthly_partitions('analytics.page_views');
$$);
