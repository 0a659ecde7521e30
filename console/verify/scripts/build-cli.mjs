// Bundle the node CLI into one file, dist/cli.mjs (no node_modules needed at run time).
import { build } from 'esbuild';
await build({
  entryPoints: ['src/cli.ts'],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outfile: 'dist/cli.mjs',
  banner: { js: '#!/usr/bin/env node' },
  logLevel: 'warning',
});
