-- The storefront reads product_listing, never products directly.
CREATE VIEW product_listing AS
SELECT p.id, p.slug, p.title, p.price_cents, c.name AS category
FROM products p
JOIN categories c ON c.id = p.category_id
WHERE p.published;
