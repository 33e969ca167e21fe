// Builds and serves the demo page (web/demo); `npm run dev` proxies the framecast API to a local server.
import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'

/** Where `npm run dev` and `npm run preview` expect framecast; override with FRAMECAST_URL. */
const framecastUrl = process.env.FRAMECAST_URL ?? 'http://127.0.0.1:8080'

/**
 * The demo's own address. Spelled out rather than Vite's `localhost`, which resolves to 127.0.0.1 on
 * some machines and ::1 on others; `npm run dev -- --host 0.0.0.0 --port 3000` overrides both.
 */
const host = '127.0.0.1'
const proxy = {
  '/events': { target: framecastUrl },
  '/streams': { target: framecastUrl },
  '/frames': { target: framecastUrl },
}

export default defineConfig({
  root: 'demo',
  // Relative asset paths so dist/ can be served from any directory or static server.
  base: './',
  plugins: [react()],
  build: { outDir: '../dist', emptyOutDir: true },
  server: { host, port: 5173, proxy },
  preview: { host, port: 4173, proxy },
})
