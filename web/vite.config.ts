// Builds the UI into web/dist, which `testlooper serve` serves (docs/web.md). Every asset is
// bundled: the pages load nothing from outside the server.
import { defineConfig } from 'vite';

export default defineConfig({
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 600 },
  server: {
    // `npm run dev` against a running server: TL_SERVER=http://127.0.0.1:9081 npm run dev
    proxy: { '/api': { target: process.env.TL_SERVER ?? 'http://127.0.0.1:9081', ws: true } },
  },
});
