/** Settings, read once at start-up; every key has a default so that local runs need no environment. */
export const config: Record<string, any> = {
  http: { port: Number(process.env.PORT ?? 8080) },
  billing: {
    provider: "stripe",
    maxRetries: Number(process.env.BILLING_MAX_RETRIES ?? 4),
    retryDelayMs: 2000,
  },
  mail: { from: process.env.MAIL_FROM ?? "billing@example.com" },
};
