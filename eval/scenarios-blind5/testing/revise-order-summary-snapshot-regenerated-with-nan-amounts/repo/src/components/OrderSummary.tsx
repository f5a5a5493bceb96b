import { formatCents } from "../lib/money";

export interface OrderTotals {
  subtotalCents: number;
  shippingCents: number;
  taxCents: number;
  totalCents: number;
  currency: string;
}

export function OrderSummary({ order }: { order: OrderTotals }) {
  return (
    <section className="order-summary" aria-labelledby="order-summary-title">
      <h2 id="order-summary-title">Order summary</h2>
      <dl>
        <dt>Subtotal</dt>
        <dd>{formatCents(order.subtotalCents, order.currency)}</dd>
        <dt>Shipping</dt>
        <dd>{order.shippingCents === 0 ? "Free" : formatCents(order.shippingCents, order.currency)}</dd>
        <dt>Tax</dt>
        <dd>{formatCents(order.taxCents, order.currency)}</dd>
        <dt className="order-summary__total">Total</dt>
        <dd className="order-summary__total">{formatCents(order.totalCents, order.currency)}</dd>
      </dl>
    </section>
  );
}
