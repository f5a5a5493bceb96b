-- Monthly cost summary per project for the new reports page.
-- project_costs and projects are protected by row-level security (policy tenant_isolation,
-- migration 0031): the app role only ever sees the rows of the tenant in app.tenant_id.
CREATE VIEW reporting.project_cost_summary AS
SELECT pc.tenant_id,
       pc.project_id,
       p.name                                     AS project_name,
       date_trunc('month', pc.incurred_on)::date  AS month,
       sum(pc.amount_cents)                       AS total_cents,
       count(*)                                   AS entries
  FROM app.project_costs pc
  JOIN app.projects p ON p.id = pc.project_id
 GROUP BY pc.tenant_id, pc.project_id, p.name, date_trunc('month', pc.incurred_on);

GRANT SELECT ON reporting.project_cost_summary TO app_user;
