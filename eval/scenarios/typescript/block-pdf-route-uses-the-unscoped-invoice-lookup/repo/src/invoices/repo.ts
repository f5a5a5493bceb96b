import { db } from "../db";

export type Invoice = { id: string; accountId: string; number: string; pdfKey: string };

export async function findInvoice(id: string): Promise<Invoice | null> {
  // No account scoping: for jobs and admin tools only. Request handlers use findInvoiceForAccount.
  return db.oneOrNone("SELECT * FROM invoices WHERE id = $1", [id]);
}

export async function findInvoiceForAccount(accountId: string, id: string): Promise<Invoice | null> {
  // The invoice only when it belongs to the account.
  return db.oneOrNone("SELECT * FROM invoices WHERE id = $1 AND account_id = $2", [id, accountId]);
}
