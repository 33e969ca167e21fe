// Builds and serves the demo page (web/demo); `npm run dev` proxies the framecast API to a local server.
// `vite build --mode lib` (`npm run build:lib`) builds the package instead: src/ as one ES module in dist-lib/.
import react from '@vitejs/plugin-react'
import { defineConfig, type UserConfig } from 'vite'

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

const demo: UserConfig = {
  root: 'demo',
  // Relative asset paths so dist/ can be served from any directory or static server.
  base: './',
  plugins: [react()],
  build: { outDir: '../dist', emptyOutDir: true },
  server: { host, port: 5173, proxy },
  preview: { host, port: 4173, proxy },
}

/**
 * The app's React and its copy of fetch-event-source are the ones to use: bundling React would put a
 * second one on the page ("Invalid hook call"). Types come from `tsc -p tsconfig.lib.json`.
 */
const external = /^(react|react-dom|@microsoft\/fetch-event-source)(\/|$)/

const library: UserConfig = {
  plugins: [react()],
  publicDir: false,
  build: {
    outDir: 'dist-lib',
    emptyOutDir: true,
    lib: { entry: 'src/index.ts', formats: ['es'], fileName: 'index' },
    rolldownOptions: { external: id => external.test(id) },
    // Readable output: the app's bundler minifies it with everything else.
    minify: false,
    sourcemap: true,
  },
}

export default defineConfig(({ mode }) => (mode === 'lib' ? library : demo))
