-- Prices move to product_prices (one row per currency); price_cents stays until the app reads the new table.
CREATE TABLE product_prices (
    product_id bigint NOT NULL REFERENCES products (id),
    currency char(3) NOT NULL,
    amount_cents integer NOT NULL,
    PRIMARY KEY (product_id, currency)
);

INSERT INTO product_prices (product_id, currency, amount_cents)
SELECT id, 'EUR', price_cents FROM products;
