import { defineConfig } from 'vite';

// The console is served by `anchord workflow` from dist/ (workflow/src/console.rs):
// hashed assets under /assets/, index.html for every application route.
// `npm run dev` proxies the API to a local `anchord workflow` (ANCHORD_API, default :8090).
export default defineConfig({
  base: '/',
  oxc: { jsx: { runtime: 'automatic' } },
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    sourcemap: false,
    // No inline data: URLs for scripts; small images may stay inline (img-src data:).
    assetsInlineLimit: 4096,
    chunkSizeWarningLimit: 2000,
    rolldownOptions: {
      // antd's modules start with "use client" (meaningless in a client bundle).
      onwarn(warning, warn) {
        if (warning.code === 'MODULE_LEVEL_DIRECTIVE') return;
        warn(warning);
      },
    },
  },
  server: {
    proxy: { '/v1': process.env.ANCHORD_API ?? 'http://127.0.0.1:8090' },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
