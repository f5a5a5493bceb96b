import { Router } from "express";
import { z } from "zod";

import { db } from "../db";
import { notFound } from "../errors";

export const ordersRouter = Router();

const createOrderSchema = z.object({
  customerId: z.string().uuid(),
  lines: z.array(z.object({ sku: z.string().min(1), quantity: z.number().int().positive() })).min(1),
});

ordersRouter.post("/", async (req, res, next) => {
  try {
    const input = createOrderSchema.parse(req.body);
    const customer = await db.customer.findFirst({ where: { id: input.customerId, accountId: req.session.accountId } });
    if (!customer) {
      throw notFound("customer");
    }
    const order = await db.order.create({
      data: { customerId: customer.id, accountId: req.session.accountId, lines: { create: input.lines } },
    });
    res.status(201).json({ order });
  } catch (err) {
    next(err);
  }
});
