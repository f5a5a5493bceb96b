/**
 * Escapes every character that has a meaning in a regular expression, so user input can be
 * embedded in a pattern and only ever matches itself literally.
 */
export function escapeRegExp(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
