const formatters = new Map<string, Intl.NumberFormat>();

function formatter(currency: string, locale: string): Intl.NumberFormat {
  const key = `${locale}:${currency}`;
  let fmt = formatters.get(key);
  if (!fmt) {
    fmt = new Intl.NumberFormat(locale, { style: "currency", currency });
    formatters.set(key, fmt);
  }
  return fmt;
}

export function formatMoney(amount: number, currency = "USD", locale = "en-US"): string {
  return formatter(currency, locale).format(amount);
}

/** Amounts come from the API as integer minor units (cents). */
export function formatCents(cents: number, currency = "USD", locale = "en-US"): string {
  const fmt = formatter(currency, locale);
  const digits = fmt.resolvedOptions().maximumFractionDigits ?? 2;
  return fmt.format(cents / 10 ** digits);
}
