import { request } from "undici";

const LEDGER_URL = process.env.LEDGER_URL ?? "https://ledger.gw.internal.acme.io";
const LEDGER_TIMEOUT_MS = 10_000;

export interface LedgerEntry {
  accountId: string;
  amountCents: number;
  currency: string;
  reference: string;
}

export async function postEntry(entry: LedgerEntry, token: string): Promise<string> {
  const res = await request(`${LEDGER_URL}/v2/entries`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      "idempotency-key": entry.reference,
    },
    body: JSON.stringify(entry),
    headersTimeout: LEDGER_TIMEOUT_MS,
    bodyTimeout: LEDGER_TIMEOUT_MS,
  });
  if (res.statusCode !== 201) {
    await res.body.dump();
    throw new Error(`ledger rejected entry ${entry.reference}: HTTP ${res.statusCode}`);
  }
  const body = (await res.body.json()) as { id: string };
  return body.id;
}
