import { http } from "./http";

export interface InvoiceSummary {
  id: string;
  number: string;
  customerName: string;
  totalCents: number;
  currency: string;
  issuedAt: string;
  status: "draft" | "sent" | "paid" | "void";
}

export interface SharedDocument {
  id: string;
  invoiceId: string;
  fileName: string;
  contentType: string;
  sizeBytes: number;
  uploadedAt: string;
}

export async function listInvoices(page = 0, pageSize = 50): Promise<InvoiceSummary[]> {
  const res = await http.get<InvoiceSummary[]>("/api/invoices", {
    params: { limit: pageSize, offset: page * pageSize },
  });
  return res.data;
}

export async function getInvoice(id: string): Promise<InvoiceSummary> {
  const res = await http.get<InvoiceSummary>(`/api/invoices/${encodeURIComponent(id)}`);
  return res.data;
}

export async function listSharedDocuments(page = 0, pageSize = 100): Promise<SharedDocument[]> {
  const res = await http.get<SharedDocument[]>("/api/documents", {
    params: { limit: pageSize, offset: page * pageSize },
  });
  return res.data;
}

export async function uploadSharedDocument(invoiceId: string, file: File): Promise<string> {
  const form = new FormData();
  form.append("file", file);
  const res = await http.post<{ id: string }>(
    `/api/invoices/${encodeURIComponent(invoiceId)}/documents`,
    form,
  );
  return res.data.id;
}
