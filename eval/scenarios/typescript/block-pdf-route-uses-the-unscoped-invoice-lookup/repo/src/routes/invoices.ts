import { Router } from "express";
import { requireAuth } from "../auth/middleware";
import { findInvoice, findInvoiceForAccount } from "../invoices/repo";
import { signedPdfUrl } from "../storage";

export const invoices = Router();

invoices.get("/invoices/:id", requireAuth, async (req, res) => {
  const invoice = await findInvoiceForAccount(req.user.accountId, req.params.id);
  if (!invoice) return res.status(404).end();
  res.json(invoice);
});

invoices.get("/invoices/:id/pdf", requireAuth, async (req, res) => {
  const invoice = await findInvoice(req.params.id);
  if (!invoice) return res.status(404).end();
  res.redirect(await signedPdfUrl(invoice.pdfKey, { expiresInSeconds: 60 }));
});
