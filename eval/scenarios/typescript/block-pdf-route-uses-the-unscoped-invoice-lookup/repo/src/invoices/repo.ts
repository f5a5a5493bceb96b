import { db } from "../db";

export type Invoice = { id: string; accountId: string; number: string; pdfKey: string };

/** Internal use only (jobs, admin tools): no account scoping. */
export async function findInvoice(id: string): Promise<Invoice | null> {
  return db.oneOrNone("SELECT * FROM invoices WHERE id = $1", [id]);
}

/** What request handlers use: the invoice only when it belongs to the account. */
export async function findInvoiceForAccount(accountId: string, id: string): Promise<Invoice | null> {
  return db.oneOrNone("SELECT * FROM invoices WHERE id = $1 AND account_id = $2", [id, accountId]);
}
