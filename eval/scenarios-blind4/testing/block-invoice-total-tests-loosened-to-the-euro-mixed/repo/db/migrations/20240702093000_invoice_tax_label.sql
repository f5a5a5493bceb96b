-- Printed next to the gross amount on tax-inclusive invoices ("inkl. 19 % MwSt.").
-- Nullable with no default: adding it is a catalog-only change, old invoices keep NULL.
ALTER TABLE invoices ADD COLUMN tax_label text;
