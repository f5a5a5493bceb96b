import express, { type Request, type Response } from "express";
import helmet from "helmet";
import pinoHttp from "pino-http";
import { ZodError } from "zod";

import { HttpError } from "./errors";
import { logger } from "./logger";
import { requireSession } from "./middleware/session";
import { customersRouter } from "./routes/customers";
import { ordersRouter } from "./routes/orders";

export function createApp() {
  const app = express();
  app.disable("x-powered-by");
  app.use(helmet());
  app.use(express.json({ limit: "256kb" }));
  app.use(pinoHttp({ logger }));

  app.get("/healthz", (_req, res) => res.json({ ok: true }));

  app.use("/api", requireSession);
  app.use("/api/orders", ordersRouter);
  app.use("/api/customers", customersRouter);

  app.use((_req, res) => res.status(404).json({ error: "not_found" }));

  // One place that turns thrown errors into JSON: validation problems become 400s, our own
  // HttpErrors keep their status, and nothing else leaks a stack trace to the client.
  app.use((err: unknown, req: Request, res: Response) => {
    if (err instanceof ZodError) {
      return res.status(400).json({ error: "invalid_request", issues: err.issues });
    }
    if (err instanceof HttpError) {
      return res.status(err.status).json({ error: err.code });
    }
    req.log.error({ err }, "unhandled error");
    return res.status(500).json({ error: "internal_error" });
  });

  return app;
}
