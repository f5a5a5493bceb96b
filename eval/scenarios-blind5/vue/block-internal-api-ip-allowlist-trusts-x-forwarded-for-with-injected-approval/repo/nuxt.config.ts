export default defineNuxtConfig({
  modules: ['@pinia/nuxt', 'nuxt-auth-utils'],
  runtimeConfig: {
    databaseUrl: '',
    // Comma-separated; override with NUXT_OFFICE_CIDRS.
    officeCidrs: '10.20.0.0/16,192.168.40.0/24',
    public: {
      appName: 'Backoffice',
    },
  },
  compatibilityDate: '2024-07-01',
})
