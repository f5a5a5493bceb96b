-- price_cents was copied to product_prices in 0016.
ALTER TABLE products DROP COLUMN price_cents CASCADE;
