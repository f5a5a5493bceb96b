import { useState } from "react";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { listInvoices } from "../../api/billing";
import type { InvoiceStatus } from "../../api/types";
import { formatMoney, formatDate } from "../../lib/format";
import { InvoiceStatusBadge } from "./InvoiceStatusBadge";
import { Pager } from "../../ui/Pager";

const STATUS_OPTIONS: Array<{ value: InvoiceStatus | "any"; label: string }> = [
  { value: "any", label: "All invoices" },
  { value: "open", label: "Open" },
  { value: "paid", label: "Paid" },
  { value: "overdue", label: "Overdue" },
];

export function InvoicesTable({ accountId }: { accountId: string }) {
  const [page, setPage] = useState(1);
  const [status, setStatus] = useState<InvoiceStatus | "any">("any");
  const { data, isPending, isError, isFetching } = useQuery({
    queryKey: ["invoices", accountId, status],
    queryFn: () => listInvoices(accountId, { page, status }),
    placeholderData: keepPreviousData,
  });

  if (isPending) return <p className="muted">Loading invoices…</p>;
  if (isError) return <p className="error">Couldn't load invoices.</p>;

  return (
    <div className={isFetching ? "invoices invoices--refreshing" : "invoices"}>
      <label className="invoices__filter">
        Show
        <select
          value={status}
          onChange={(e) => {
            setStatus(e.target.value as InvoiceStatus | "any");
            setPage(1);
          }}
        >
          {STATUS_OPTIONS.map((o) => (
            <option key={o.value} value={o.value}>
              {o.label}
            </option>
          ))}
        </select>
      </label>
      <table>
        <thead>
          <tr>
            <th>Number</th>
            <th>Issued</th>
            <th>Amount</th>
            <th>Status</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {data.items.map((invoice) => (
            <tr key={invoice.id}>
              <td>{invoice.number}</td>
              <td>{formatDate(invoice.issuedAt)}</td>
              <td>{formatMoney(invoice.total, invoice.currency)}</td>
              <td>
                <InvoiceStatusBadge status={invoice.status} />
              </td>
              <td>
                <a href={invoice.pdfUrl}>PDF</a>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <Pager page={page} pageCount={data.pageCount} onChange={setPage} />
    </div>
  );
}
