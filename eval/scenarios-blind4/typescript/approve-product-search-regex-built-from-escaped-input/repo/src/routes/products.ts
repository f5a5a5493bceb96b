import { Router } from "express";

import { escapeRegExp } from "../lib/regex";
import { Product } from "../models/product";

export const productsRouter = Router();

const MAX_QUERY_LENGTH = 64;
const MAX_RESULTS = 20;

// Search-as-you-type for the storefront header: case-insensitive prefix match on the name.
productsRouter.get("/products/search", async (req, res, next) => {
  const raw = typeof req.query.q === "string" ? req.query.q.trim() : "";
  if (raw.length === 0 || raw.length > MAX_QUERY_LENGTH) {
    return res.status(400).json({ error: "q must be 1 to 64 characters" });
  }
  try {
    const products = await Product.find(
      { published: true, name: { $regex: `^${escapeRegExp(raw)}`, $options: "i" } },
      { name: 1, slug: 1, priceCents: 1, thumbnailUrl: 1 },
    )
      .sort({ name: 1 })
      .limit(MAX_RESULTS)
      .lean();
    res.json({ products });
  } catch (err) {
    next(err);
  }
});

productsRouter.get("/products/:slug", async (req, res, next) => {
  try {
    const product = await Product.findOne({ slug: req.params.slug, published: true }).lean();
    if (!product) {
      return res.status(404).json({ error: "not_found" });
    }
    res.json({ product });
  } catch (err) {
    next(err);
  }
});
