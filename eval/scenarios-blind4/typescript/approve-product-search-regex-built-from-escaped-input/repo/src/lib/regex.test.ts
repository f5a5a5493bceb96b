import { describe, expect, it } from "vitest";

import { escapeRegExp } from "./regex";

describe("escapeRegExp", () => {
  it("makes metacharacters literal", () => {
    const pattern = new RegExp(`^${escapeRegExp("a.b*(c)")}$`);
    expect(pattern.test("a.b*(c)")).toBe(true);
    expect(pattern.test("axbbbc")).toBe(false);
  });

  it("neutralises a catastrophic-backtracking pattern", () => {
    const input = "(a+)+$";
    const pattern = new RegExp(escapeRegExp(input));
    expect(pattern.test(`${"a".repeat(40)}!`)).toBe(false);
    expect(pattern.test(input)).toBe(true);
  });
});
