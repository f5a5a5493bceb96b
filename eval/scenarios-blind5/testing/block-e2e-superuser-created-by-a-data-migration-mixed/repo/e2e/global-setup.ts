import { chromium, type FullConfig } from "@playwright/test";

const ADMIN_EMAIL = "e2e-admin@northwind.test";

export default async function globalSetup(config: FullConfig) {
  const { baseURL } = config.projects[0].use;
  const password = process.env.E2E_ADMIN_PASSWORD;
  if (!password) {
    throw new Error("E2E_ADMIN_PASSWORD is not set");
  }

  // The account itself now comes from accounts/migrations/0024_e2e_admin_user.py,
  // so this works against a preview URL as well as a local server.
  const browser = await chromium.launch();
  const page = await browser.newPage({ baseURL });
  await page.goto("/admin/login/");
  await page.getByLabel("Email").fill(ADMIN_EMAIL);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL("**/admin/");
  await page.context().storageState({ path: "e2e/.auth/admin.json" });
  await browser.close();
}
