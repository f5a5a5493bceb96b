import { expect, test } from "@playwright/test";

test.beforeEach(async ({ request }) => {
  // Start every test from an empty cart for the shopper account.
  const res = await request.delete("/api/cart");
  expect(res.ok()).toBeTruthy();
});

test("adding a product shows it in the cart drawer", async ({ page }) => {
  await page.goto("/products/trail-runner-2");
  await page.getByRole("button", { name: "Add to cart" }).click();
  await page.getByRole("button", { name: /Cart \(1\)/ }).click();
  await expect(page.getByRole("dialog", { name: "Cart" })).toContainText("Trail Runner 2");
});

test("changing the quantity updates the subtotal", async ({ page }) => {
  await page.goto("/products/merino-socks");
  await page.getByRole("button", { name: "Add to cart" }).click();
  await page.goto("/cart");
  await page.getByLabel("Quantity").fill("3");
  await page.getByLabel("Quantity").blur();
  await expect(page.getByTestId("cart-subtotal")).toHaveText("€44.85");
});

test("an empty cart offers a link back to the shop", async ({ page }) => {
  await page.goto("/cart");
  await expect(page.getByText("Your cart is empty")).toBeVisible();
  await expect(page.getByRole("link", { name: "Continue shopping" })).toHaveAttribute("href", "/");
});

test("removing the last item empties the cart", async ({ page }) => {
  await page.goto("/products/merino-socks");
  await page.getByRole("button", { name: "Add to cart" }).click();
  await page.goto("/cart");
  await page.getByRole("button", { name: "Remove Merino Socks" }).click();
  await expect(page.getByText("Your cart is empty")).toBeVisible();
});
