import { postmark } from "../lib/postmark";
import { formatMoney } from "../lib/money";
import type { Invoice } from "./types";

const DATE_FORMAT = new Intl.DateTimeFormat("en-GB", { dateStyle: "long", timeZone: "UTC" });

export async function sendInvoiceEmail(invoice: Invoice): Promise<string> {
  const result = await postmark.sendEmailWithTemplate({
    From: "billing@northwind.app",
    To: invoice.customer.email,
    TemplateAlias: "invoice-issued",
    TemplateModel: {
      customerName: invoice.customer.name,
      invoiceNumber: invoice.number,
      amountDue: formatMoney(invoice.totalCents, invoice.currency),
      dueDate: DATE_FORMAT.format(new Date(invoice.dueDate)),
      payUrl: `https://northwind.app/pay/${invoice.publicId}`,
    },
    MessageStream: "outbound",
    Tag: "invoice",
  });
  return result.MessageID;
}
