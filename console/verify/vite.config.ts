import { defineConfig } from 'vitest/config';
import { viteSingleFile } from 'vite-plugin-singlefile';

// The court's page is ONE self-contained HTML file (scripts, styles and the
// hashing worker inlined) that works opened from disk (file://) and served
// by anchord workflow at /verify/.
export default defineConfig({
  base: './',
  plugins: [viteSingleFile({ removeViteModuleLoader: true })],
  worker: { format: 'iife' },
  build: { outDir: 'dist', emptyOutDir: false, target: 'es2022', reportCompressedSize: false },
  test: { include: ['test/**/*.test.ts'], testTimeout: 30000 },
});
