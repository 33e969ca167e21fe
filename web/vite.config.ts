// Builds and serves the demo page (web/demo); `npm run dev` proxies the framecast API to a local server.
import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'

/** Where `npm run dev` expects framecast; override with FRAMECAST_URL. */
const framecastUrl = process.env.FRAMECAST_URL ?? 'http://127.0.0.1:8080'

export default defineConfig({
  root: 'demo',
  // Relative asset paths so dist/ can be served from any directory or static server.
  base: './',
  plugins: [react()],
  build: { outDir: '../dist', emptyOutDir: true },
  server: {
    proxy: {
      '/events': { target: framecastUrl },
      '/streams': { target: framecastUrl },
      '/frames': { target: framecastUrl },
    },
  },
})
