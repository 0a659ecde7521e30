// Prints the production bundle's size (raw and gzip) and fails over the budget
// (README "Web console": the budget and why).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';

const BUDGET_GZIP = Number(process.env.CONSOLE_BUDGET_GZIP ?? 600 * 1024);
const dir = new URL('../dist/assets/', import.meta.url).pathname;
let raw = 0;
let gz = 0;
const rows = [];
for (const f of readdirSync(dir)) {
  const p = join(dir, f);
  if (!statSync(p).isFile()) continue;
  const b = readFileSync(p);
  const z = gzipSync(b, { level: 9 }).length;
  raw += b.length;
  gz += z;
  rows.push(`  ${f.padEnd(44)} ${(b.length / 1024).toFixed(1).padStart(8)} KiB  gzip ${(z / 1024).toFixed(1).padStart(7)} KiB`);
}
console.log('console bundle (dist/assets):');
console.log(rows.sort().join('\n'));
console.log(`  total ${(raw / 1024).toFixed(1)} KiB, gzip ${(gz / 1024).toFixed(1)} KiB (budget gzip ${(BUDGET_GZIP / 1024).toFixed(0)} KiB)`);
if (gz > BUDGET_GZIP) {
  console.error(`over the bundle budget: ${gz} > ${BUDGET_GZIP} bytes gzip`);
  process.exit(1);
}
