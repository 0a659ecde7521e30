// After `vite build`: the Content-Security-Policy that lets the single-file
// page run and nothing else (its one inline script and style by SHA-256,
// the hashing worker from a blob:/data: URL, fetches to the same origin
// only). Written to dist/index.html.csp for the server that mounts
// dist/index.html at /verify/ (anchord workflow); file:// has no CSP.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

const html = readFileSync('dist/index.html', 'utf8');
const hashes = (re) => [...html.matchAll(re)].map((m) => `'sha256-${createHash('sha256').update(m[1]).digest('base64')}'`);
const scripts = hashes(/<script[^>]*>([\s\S]*?)<\/script>/g);
const styles = hashes(/<style[^>]*>([\s\S]*?)<\/style>/g);
if (/ style="/.test(html)) throw new Error('an inline style attribute would need unsafe-inline');
const csp = [
  "default-src 'none'",
  `script-src ${scripts.join(' ')}`,
  `style-src ${styles.join(' ')}`,
  'worker-src blob: data:',
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
writeFileSync('dist/index.html.csp', csp + '\n');
console.log(`dist/index.html.csp: ${csp.length} bytes, ${scripts.length} script(s), ${styles.length} style(s)`);
