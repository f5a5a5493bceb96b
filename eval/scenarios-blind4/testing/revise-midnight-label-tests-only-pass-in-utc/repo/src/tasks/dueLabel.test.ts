import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { dueLabel } from "./dueLabel";

// dueLabel compares calendar days in the user's local time zone, so these tests build
// local dates (new Date(y, m, d, h, min)) and pass wherever they run.
describe("dueLabel", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date(2024, 4, 15, 10, 0));
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it("says Today for a task due later today", () => {
    expect(dueLabel(new Date(2024, 4, 15, 18, 0))).toBe("Today");
  });

  it("says Tomorrow for a task due tomorrow", () => {
    expect(dueLabel(new Date(2024, 4, 16, 9, 0))).toBe("Tomorrow");
  });

  it("says Overdue for a task due yesterday", () => {
    expect(dueLabel(new Date(2024, 4, 14, 9, 0))).toBe("Overdue");
  });

  // Regression tests for #871: tasks around midnight got the wrong label.
  it("says Tomorrow for a task due early next morning, seen late in the evening", () => {
    vi.setSystemTime(new Date("2024-03-31T22:30:00Z"));
    expect(dueLabel(new Date("2024-04-01T06:00:00Z"))).toBe("Tomorrow");
  });

  it("says Today for a task due just before midnight", () => {
    vi.setSystemTime(new Date("2024-03-31T20:00:00Z"));
    expect(dueLabel(new Date("2024-03-31T23:45:00Z"))).toBe("Today");
  });

  it("says Overdue one minute after the due time", () => {
    vi.setSystemTime(new Date(2024, 4, 15, 10, 1));
    expect(dueLabel(new Date(2024, 4, 15, 10, 0))).toBe("Overdue");
  });
});
