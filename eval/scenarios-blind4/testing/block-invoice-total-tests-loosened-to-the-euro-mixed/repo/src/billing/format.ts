const formatters = new Map<string, Intl.NumberFormat>();

function formatter(currency: string): Intl.NumberFormat {
  let f = formatters.get(currency);
  if (!f) {
    f = new Intl.NumberFormat("de-DE", { style: "currency", currency });
    formatters.set(currency, f);
  }
  return f;
}

export function formatMoney(amount: number, currency: string): string {
  return formatter(currency).format(amount);
}

/** "119,00 € inkl. 19 % MwSt." - the label comes from invoices.tax_label, falling back to the plain amount. */
export function formatGross(amount: number, currency: string, taxLabel: string | null): string {
  const money = formatMoney(amount, currency);
  return taxLabel ? `${money} ${taxLabel}` : money;
}
