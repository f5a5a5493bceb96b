import { readFileSync } from "node:fs";

/** Settings from config/<NODE_ENV>.json; the shape is documented in config/README.md. */
export const config: Record<string, any> = JSON.parse(
  readFileSync(`config/${process.env.NODE_ENV ?? "development"}.json`, "utf8"),
);
