import { config } from "../config";
import { stripe } from "./stripe";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function chargeInvoice(invoiceId: string, amountCents: number): Promise<string> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= config.billing.retryLimit; attempt++) {
    try {
      const intent = await stripe.paymentIntents.create(
        { amount: amountCents, currency: "eur", metadata: { invoiceId } },
        { idempotencyKey: `invoice-${invoiceId}` },
      );
      return intent.id;
    } catch (err) {
      lastError = err;
      await sleep(config.billing.retryDelayMs * attempt);
    }
  }
  throw new Error(`charging invoice ${invoiceId} failed: ${String(lastError)}`);
}
