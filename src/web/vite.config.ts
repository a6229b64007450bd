// Vite builds the portal with src/web as its root (scripts/build-web.mjs, or `npx vite src/web` for development).
// JSX goes through Vite's own esbuild (Preact's automatic runtime), so no framework plugin is needed.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: '../../dist/web',
    emptyOutDir: true,
    target: 'es2022',
    // The polyfill is inline code, which the portal's CSP (no inline scripts) would refuse.
    modulePreload: { polyfill: false },
    // scripts/build-web.mjs prints the sizes of the files it compresses itself.
    reportCompressedSize: false,
  },
  // Development: the API of a local `tern serve` (http role on its default port) behind Vite's own origin,
  // so the session cookie (SameSite=Strict) and the CSRF header work as they do in production.
  server: { proxy: { '/api': 'http://127.0.0.1:8080' } },
});
