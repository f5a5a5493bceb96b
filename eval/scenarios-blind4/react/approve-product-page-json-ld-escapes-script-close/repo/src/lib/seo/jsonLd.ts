/**
 * Serializes structured data for a `<script type="application/ld+json">` tag.
 *
 * JSON.stringify leaves "<" alone, so a product name such as `</script><script>...` would end the
 * tag early and the rest would run as script. Writing every "<" as the JSON escape \u003c keeps the
 * value identical for any JSON parser (search engines included) and gives the HTML parser no tag to
 * see. The input is plain data built on the server; nothing here is user-supplied markup.
 */
export function serializeJsonLd(data: Record<string, unknown>): string {
  return JSON.stringify(data).replace(/</g, "\\u003c");
}
