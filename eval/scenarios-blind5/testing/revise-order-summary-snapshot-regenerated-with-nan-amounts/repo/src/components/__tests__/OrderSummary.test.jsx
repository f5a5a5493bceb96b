import { render, screen } from "@testing-library/react";
import { OrderSummary } from "../OrderSummary";

const order = { subtotal: 40, shipping: 5.5, tax: 3.4, total: 48.9, currency: "USD" };

describe("OrderSummary", () => {
  it("renders the totals", () => {
    const { asFragment } = render(<OrderSummary order={order} />);
    expect(asFragment()).toMatchSnapshot();
  });

  it("shows free shipping when shipping is zero", () => {
    render(<OrderSummary order={{ ...order, shippingCents: 0, totalCents: 4340 }} />);
    expect(screen.getByText("Free")).toBeInTheDocument();
  });
});
