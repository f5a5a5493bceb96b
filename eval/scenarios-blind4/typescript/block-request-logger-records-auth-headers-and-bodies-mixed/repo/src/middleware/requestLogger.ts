import { randomUUID } from "node:crypto";

import type { NextFunction, Request, Response } from "express";

import { logger } from "../logger";

export function requestLogger(req: Request, res: Response, next: NextFunction) {
  const started = process.hrtime.bigint();
  const requestId = req.header("x-request-id") ?? randomUUID();
  res.setHeader("x-request-id", requestId);

  res.on("finish", () => {
    const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
    const entry = {
      requestId,
      method: req.method,
      path: req.originalUrl,
      status: res.statusCode,
      durationMs: Math.round(durationMs),
      partnerId: res.locals.partnerId,
      // Partners keep asking why a call failed; keep exactly what they sent so support can answer.
      headers: req.headers,
      body: req.body,
    };
    if (res.statusCode >= 500) {
      logger.error(entry, "request failed");
    } else if (res.statusCode >= 400) {
      logger.warn(entry, "request rejected");
    } else {
      logger.info(entry, "request");
    }
  });
  next();
}
