import { Router } from "express";
import { differenceInCalendarDays, subDays } from "date-fns";
import { requireRole } from "../middleware/auth";
import { revenueByDay, topProducts } from "../services/reporting";
import { formatDay, parseDay, startOfToday } from "../lib/days";

export const reportsRouter = Router();

// revenueByDay scans order_lines; beyond a year it takes tens of seconds.
const MAX_RANGE_DAYS = 366;

reportsRouter.get("/revenue", requireRole("finance"), async (req, res, next) => {
  try {
    const to = parseDay(req.query.to) ?? startOfToday();
    const from = parseDay(req.query.from) ?? subDays(to, 30);
    const days = differenceInCalendarDays(to, from);
    if (days < 0 || days > MAX_RANGE_DAYS) {
      res.status(400).json({ error: `from must not be after to, and the range is limited to ${MAX_RANGE_DAYS} days` });
    }
    const rows = await revenueByDay(req.user!.orgId, from, to);
    res.json({ from: formatDay(from), to: formatDay(to), rows });
  } catch (err) {
    next(err);
  }
});

reportsRouter.get("/top-products", requireRole("finance"), async (req, res, next) => {
  try {
    const rows = await topProducts(req.user!.orgId, { limit: 20 });
    res.json({ rows });
  } catch (err) {
    next(err);
  }
});
