import { fileURLToPath, URL } from 'node:url'
import { defineConfig, loadEnv } from 'vite'
import vue from '@vitejs/plugin-vue'

export default defineConfig(({ mode }) => {
  const env = loadEnv(mode, process.cwd(), '')

  return {
    plugins: [vue()],
    resolve: {
      alias: {
        '@': fileURLToPath(new URL('./src', import.meta.url)),
      },
    },
    // @acme/charts reads process.env.NODE_ENV and process.env.CHARTS_LICENSE_KEY and
    // failed in the browser with "process is not defined".
    define: {
      'process.env': env,
    },
    server: {
      proxy: {
        '/api': 'http://localhost:8000',
      },
    },
    build: {
      sourcemap: true,
    },
  }
})
