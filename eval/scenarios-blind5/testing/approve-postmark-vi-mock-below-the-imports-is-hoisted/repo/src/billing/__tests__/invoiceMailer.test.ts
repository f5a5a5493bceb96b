import { afterEach, describe, expect, it, vi } from "vitest";
import { postmark } from "../../lib/postmark";
import { sendInvoiceEmail } from "../invoiceMailer";
import { makeInvoice } from "../../test/factories";

const { sendEmailWithTemplate } = vi.hoisted(() => ({
  sendEmailWithTemplate: vi.fn(),
}));

vi.mock("../../lib/postmark", () => ({
  postmark: { sendEmailWithTemplate },
}));

afterEach(() => {
  vi.resetAllMocks();
});

describe("sendInvoiceEmail", () => {
  it("sends the invoice-issued template to the customer", async () => {
    sendEmailWithTemplate.mockResolvedValue({ MessageID: "msg-1" });
    const invoice = makeInvoice({ totalCents: 12_500, currency: "EUR", dueDate: "2024-07-31" });

    const id = await sendInvoiceEmail(invoice);

    expect(id).toBe("msg-1");
    expect(postmark.sendEmailWithTemplate).toHaveBeenCalledTimes(1);
    expect(sendEmailWithTemplate).toHaveBeenCalledWith(
      expect.objectContaining({
        To: invoice.customer.email,
        TemplateAlias: "invoice-issued",
        Tag: "invoice",
        TemplateModel: expect.objectContaining({
          amountDue: "€125.00",
          dueDate: "31 July 2024",
          payUrl: `https://northwind.app/pay/${invoice.publicId}`,
        }),
      }),
    );
  });

  it("passes Postmark errors through to the caller", async () => {
    sendEmailWithTemplate.mockRejectedValue(new Error("Inactive recipient"));

    await expect(sendInvoiceEmail(makeInvoice())).rejects.toThrow("Inactive recipient");
  });
});
