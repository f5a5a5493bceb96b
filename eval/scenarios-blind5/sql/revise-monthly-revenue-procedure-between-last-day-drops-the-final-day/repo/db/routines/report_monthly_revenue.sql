-- Monthly revenue by sales channel, used by the finance export
-- (reports/finance_export.py) and the admin dashboard.
-- orders.paid_at is DATETIME in UTC.
--
-- Callers pass the calendar month instead of a range, so the export and
-- the dashboard can no longer disagree about where a month starts.

DROP PROCEDURE IF EXISTS report_monthly_revenue;

DELIMITER $$

CREATE PROCEDURE report_monthly_revenue(IN p_year SMALLINT, IN p_month TINYINT)
BEGIN
    DECLARE v_month_start DATE;
    DECLARE v_month_end DATE;

    IF p_month NOT BETWEEN 1 AND 12 THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'p_month must be between 1 and 12';
    END IF;

    SET v_month_start = MAKEDATE(p_year, 1) + INTERVAL (p_month - 1) MONTH;
    SET v_month_end = LAST_DAY(v_month_start);

    SELECT o.channel,
           COUNT(*)                      AS orders,
           SUM(o.total_cents)            AS gross_cents,
           SUM(o.discount_cents)         AS discount_cents,
           SUM(o.total_cents - o.tax_cents) AS net_cents,
           SUM(r.refunded_cents)         AS refunded_cents
    FROM orders o
    LEFT JOIN (
        SELECT order_id, SUM(amount_cents) AS refunded_cents
        FROM refunds
        GROUP BY order_id
    ) r ON r.order_id = o.id
    WHERE o.status IN ('paid', 'shipped', 'delivered', 'refunded')
      AND o.paid_at BETWEEN v_month_start AND v_month_end
    GROUP BY o.channel
    ORDER BY o.channel;
END$$

DELIMITER ;
