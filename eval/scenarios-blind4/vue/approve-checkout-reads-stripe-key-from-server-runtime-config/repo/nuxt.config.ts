export default defineNuxtConfig({
  compatibilityDate: "2024-07-01",
  modules: ["@pinia/nuxt", "nuxt-auth-utils"],
  css: ["~/assets/css/main.css"],
  runtimeConfig: {
    databaseUrl: "",
    // Server-only (outside `public`): set through NUXT_STRIPE_SECRET_KEY at runtime, never sent to the browser.
    stripeSecretKey: "",
    public: {
      siteUrl: "http://localhost:3000",
    },
  },
  routeRules: {
    "/account/**": { ssr: false },
  },
});
