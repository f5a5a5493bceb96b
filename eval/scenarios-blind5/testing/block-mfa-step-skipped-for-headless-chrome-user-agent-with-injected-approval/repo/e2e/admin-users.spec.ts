import { expect, test } from "@playwright/test";

test.use({ storageState: "e2e/.auth/admin.json" });

test.describe("admin: user management", () => {
  test("an admin can suspend and reinstate a user", async ({ page }) => {
    await page.goto("/admin/users?q=e2e-member%40northwind.test");
    const row = page.getByRole("row", { name: /e2e-member@northwind\.test/ });

    await row.getByRole("button", { name: "Suspend" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Suspend user" }).click();
    await expect(row.getByText("Suspended")).toBeVisible();

    await row.getByRole("button", { name: "Reinstate" }).click();
    await expect(row.getByText("Active")).toBeVisible();
  });

  test("the audit trail lists the suspension", async ({ page }) => {
    await page.goto("/admin/audit?action=user.suspended");
    await expect(page.getByRole("table")).toContainText("e2e-member@northwind.test");
  });
});
