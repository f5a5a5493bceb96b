-- Audience queries for the weekly campaign job (loaded with aiosql, see
-- marketing/audiences.py). Every audience must exclude unsubscribed and
-- bounced addresses.

-- name: newsletter_subscribers
SELECT c.id, c.email, c.first_name, c.locale
FROM customers c
WHERE c.marketing_opt_in
  AND c.email_bounced_at IS NULL
  AND c.deleted_at IS NULL;

-- name: winback_candidates
-- Customers who bought at least once but have gone quiet: no completed
-- order in the last :quiet_days days, and nothing still in progress (a
-- pending or shipped order means they are active, just not "completed" yet).
-- Anyone who already got a win-back mail in the last 60 days is skipped.
SELECT c.id, c.email, c.first_name, c.locale, max(o.placed_at) AS last_order_at
FROM customers c
JOIN orders o ON o.customer_id = c.id
WHERE c.marketing_opt_in
  AND c.email_bounced_at IS NULL
  AND c.deleted_at IS NULL
  AND o.status = 'completed'
  AND c.id NOT IN (
        SELECT o2.customer_id
        FROM orders o2
        WHERE o2.status IN ('pending', 'paid', 'shipped')
           OR (o2.status = 'completed'
               AND o2.placed_at >= now() - make_interval(days => :quiet_days))
      )
  AND c.id NOT IN (
        SELECT s.customer_id
        FROM campaign_sends s
        WHERE s.campaign = 'winback'
          AND s.sent_at >= now() - interval '60 days'
      )
GROUP BY c.id, c.email, c.first_name, c.locale;

-- name: guest_checkout_followup
-- Guest orders have no customer row; the address is on the order.
SELECT o.id AS order_id, o.guest_email AS email, o.placed_at
FROM orders o
WHERE o.customer_id IS NULL
  AND o.guest_email IS NOT NULL
  AND o.status = 'completed'
  AND o.placed_at >= now() - interval '7 days';
