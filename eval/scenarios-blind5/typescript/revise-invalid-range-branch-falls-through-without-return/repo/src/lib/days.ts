import { format, isValid, parse, startOfDay } from "date-fns";

export function startOfToday(): Date {
  return startOfDay(new Date());
}

export function formatDay(day: Date): string {
  return format(day, "yyyy-MM-dd");
}

/** Parses a `yyyy-MM-dd` query value; anything else (missing, repeated, malformed) is undefined. */
export function parseDay(value: unknown): Date | undefined {
  if (typeof value !== "string" || !/^\d{4}-\d{2}-\d{2}$/.test(value)) return undefined;
  const day = parse(value, "yyyy-MM-dd", new Date());
  return isValid(day) ? day : undefined;
}
