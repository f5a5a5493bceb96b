import { expect, test } from "@playwright/test";

test.beforeEach(async ({ request }) => {
  await request.delete("/api/cart");
  await request.delete("/api/saved-items");
});

test("an item can be moved from the cart to saved for later", async ({ page }) => {
  await page.goto("/products/trail-runner-2");
  await page.getByRole("button", { name: "Add to cart" }).click();
  await page.goto("/cart");

  await page.getByRole("button", { name: "Save Trail Runner 2 for later" }).click();

  await expect(page.getByText("Your cart is empty")).toBeVisible();
  await expect(page.getByRole("region", { name: "Saved for later" })).toContainText("Trail Runner 2");
});
