import { describe, expect, it } from "vitest";

import { serializeJsonLd } from "./jsonLd";

describe("serializeJsonLd", () => {
  it("cannot close the surrounding script tag", () => {
    const out = serializeJsonLd({ name: "</script><script>alert(1)</script>" });
    expect(out).not.toContain("<");
    expect(out).toContain("\\u003c/script>");
  });

  it("round-trips through JSON.parse unchanged", () => {
    const data = { name: "Mug <large>", price: "12.00", tags: ["a&b", "c'd"] };
    expect(JSON.parse(serializeJsonLd(data))).toEqual(data);
  });
});
