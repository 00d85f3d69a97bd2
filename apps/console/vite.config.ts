import { defineConfig } from 'vite';

/**
 * The console is built into apps/console/dist by `npm install` (root postinstall) and served
 * by the hub at `/`. Relative asset paths keep it working behind a path prefix; hash routing
 * (`/#/inventory`) keeps every console path off the API's paths.
 */
export default defineConfig({
  base: './',
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, reportCompressedSize: false, chunkSizeWarningLimit: 600 },
  server: { proxy: { '^/(?!src/|@|node_modules/|index.html$).+': 'http://127.0.0.1:3000' } },
});
