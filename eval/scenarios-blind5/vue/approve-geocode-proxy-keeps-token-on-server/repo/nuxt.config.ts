export default defineNuxtConfig({
  modules: ['@pinia/nuxt', '@vueuse/nuxt', 'nuxt-auth-utils'],
  css: ['~/assets/css/main.css'],
  runtimeConfig: {
    // Server only; set with NUXT_MAPBOX_TOKEN. The public token was rotated.
    mapboxToken: '',
    public: {
      sentryDsn: '',
    },
  },
  routeRules: {
    '/': { prerender: true },
  },
  compatibilityDate: '2024-07-01',
})
