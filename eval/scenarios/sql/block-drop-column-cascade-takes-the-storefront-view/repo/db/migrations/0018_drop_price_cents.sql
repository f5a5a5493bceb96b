-- price_cents was copied to product_prices in 0017.
ALTER TABLE products DROP COLUMN price_cents CASCADE;
