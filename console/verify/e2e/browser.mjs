// Browser tests of the court's page in headless Debian chromium (playwright-core,
// executablePath /usr/bin/chromium): the built single file opened from
// file:// with the network off; a valid bundle, two invalid ones and an
// untrusted one judged as `anchord verify` would, with every check listed;
// a large evidence file (300 MB by default, ANCHORD_VERIFY_BIG_MB) hashed
// in chunks with progress events while the page's JS heap stays far below
// the file's size. Prints "N passed, M failed"; exits non-zero on failure.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, openSync, rmSync, writeSync, closeSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const page_ = join(here, '../dist/index.html');
const corpus = join(here, '../../../testdata/bundles');
const exe = process.env.CHROMIUM ?? '/usr/bin/chromium';
const bigMb = Number(process.env.ANCHORD_VERIFY_BIG_MB ?? 300);
const shots = join(here, '../test-results');

if (!existsSync(page_)) throw new Error(`${page_} is missing: run npm run build first`);
if (!existsSync(exe)) throw new Error(`${exe} is missing: apt-get install -y chromium`);

let passed = 0;
let failed = 0;
const results = [];
async function test(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    results.push(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    results.push(`FAIL ${name}: ${e.stack ?? e}`);
  }
  console.log(results.at(-1));
}
const assert = (c, m) => {
  if (!c) throw new Error(m);
};

const browser = await chromium.launch({
  executablePath: exe,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--enable-precise-memory-info'],
});
const context = await browser.newContext();
await context.setOffline(true);
// Nothing but the file itself may load: any request to the network fails the test.
const network = [];
await context.route(/^(https?|wss?):/, (route) => {
  network.push(route.request().url());
  return route.abort();
});

async function openPage() {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(pathToFileURL(page_).href);
  return { page, errors };
}

async function judge(page, { policy, evidence, bundle, hash }) {
  if (policy) await page.setInputFiles('#policy-file', policy);
  if (evidence) await page.setInputFiles('#evidence-file', evidence);
  if (hash) await page.fill('#hash', hash);
  await page.setInputFiles('#bundle-file', bundle);
  await page.click('#verify');
  await page.waitForSelector('#result:not([hidden]) #verdict[data-verdict]', { timeout: 600_000 });
  return page.evaluate(() => ({
    verdict: document.getElementById('verdict').dataset.verdict,
    check: document.getElementById('verdict').dataset.check,
    line: document.getElementById('verdict-line').textContent,
    text: document.getElementById('verdict-text').textContent,
    steps: [...document.querySelectorAll('#checks-body tr')].map((tr) => ({
      check: tr.dataset.check,
      ok: tr.dataset.ok === 'true',
      text: tr.textContent,
    })),
    summary: document.getElementById('summary').textContent,
  }));
}

const policy = join(corpus, 'trust-policy.toml');
const ALL = ['format', 'evidence_mismatch', 'leaf_hash', 'leaf_index', 'audit_path', 'block_header', 'checkpoint', 'block_log_path', 'sealer_signature', 'witness_quorum', 'timestamp', 'anchor_receipt', 'time_order'];

await test('a valid bundle with its evidence file: VALID, every check listed with its values, in Chinese', async () => {
  const { page, errors } = await openPage();
  const r = await judge(page, {
    policy,
    evidence: join(corpus, 'valid/anchored-judicial-evm.evidence'),
    bundle: join(corpus, 'valid/anchored-judicial-evm.json'),
  });
  assert(r.verdict === 'VALID' && r.check === '', JSON.stringify(r));
  assert(r.text.startsWith('有效'), r.text);
  const stated = await page.textContent('#verified-at');
  assert(/^核验 Verified \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC against trust-policy\.toml \(sha256 [0-9a-f]{16}\)/.test(stated), stated);
  assert(JSON.stringify(r.steps.map((s) => s.check)) === JSON.stringify(ALL), JSON.stringify(r.steps.map((s) => s.check)));
  assert(r.steps.every((s) => s.ok), 'every step passed');
  const ev = JSON.parse(readFileSync(join(corpus, 'valid/anchored-judicial-evm.json'), 'utf8')).entry.evidence_hash;
  assert(r.steps[1].text.includes(ev), 'the evidence step shows the hash');
  assert(r.summary.includes('hz-court') && r.summary.includes('evm-local'), r.summary);
  assert((await page.textContent('h1')) === '电子证据核验（法院）', 'Chinese first');
  await page.screenshot({ path: join(shots, 'valid-zh.png'), fullPage: true });
  await page.click('#lang');
  assert((await page.textContent('h1')) === 'Evidence verification (court)', 'English switch');
  assert((await page.textContent('#verdict-text')).startsWith('VALID'), 'verdict in English');
  await page.screenshot({ path: join(shots, 'valid-en.png'), fullPage: true });
  await page.click('#lang');
  assert(errors.length === 0, errors.join('\n'));
  await page.close();
});

await test('an SM3 bundle with a typed evidence hash: VALID', async () => {
  const { page } = await openPage();
  const ev = JSON.parse(readFileSync(join(corpus, 'valid/anchored-sm3.json'), 'utf8')).entry.evidence_hash;
  const r = await judge(page, { policy, hash: ev, bundle: join(corpus, 'valid/anchored-sm3.json') });
  assert(r.verdict === 'VALID', JSON.stringify(r));
  await page.close();
});

await test('a tampered evidence file: INVALID (evidence_mismatch), the failed check listed last', async () => {
  const { page } = await openPage();
  const r = await judge(page, {
    policy,
    evidence: join(corpus, 'valid/pending.evidence'),
    bundle: join(corpus, 'valid/anchored-sm3.json'),
  });
  assert(r.verdict === 'INVALID' && r.check === 'evidence_mismatch', JSON.stringify(r));
  assert(r.text.startsWith('无效'), r.text);
  assert(r.steps.at(-1).check === 'evidence_mismatch' && !r.steps.at(-1).ok, JSON.stringify(r.steps));
  await page.screenshot({ path: join(shots, 'tampered-evidence.png'), fullPage: true });
  await page.close();
});

await test('a tampered audit path: INVALID (audit_path)', async () => {
  const { page } = await openPage();
  const r = await judge(page, { policy, bundle: join(corpus, 'invalid/audit-path-tampered.json') });
  assert(r.verdict === 'INVALID' && r.check === 'audit_path', JSON.stringify(r));
  assert(r.line.includes('does not verify'), r.line);
  assert(r.steps.filter((s) => s.ok).map((s) => s.check).join() === 'format,evidence_mismatch,leaf_hash,leaf_index', JSON.stringify(r.steps));
  await page.close();
});

await test('a self-signed sealer: UNTRUSTED (sealer_not_trusted)', async () => {
  const { page } = await openPage();
  const r = await judge(page, { policy, bundle: join(corpus, 'invalid/self-signed-sealer.json') });
  assert(r.verdict === 'UNTRUSTED' && r.check === 'sealer_not_trusted', JSON.stringify(r));
  assert(r.text.startsWith('不可信'), r.text);
  await page.screenshot({ path: join(shots, 'untrusted.png'), fullPage: true });
  await page.close();
});

await test('no trust policy: never VALID', async () => {
  const { page } = await openPage();
  const r = await judge(page, { bundle: join(corpus, 'valid/pending.json') });
  assert(r.verdict === 'UNTRUSTED' && r.check === 'no_trust_policy', JSON.stringify(r));
  await page.close();
});

await test(`a ${bigMb} MB evidence file is hashed in chunks with progress, the page heap stays small`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'anchord-verify-big-'));
  try {
    const big = join(dir, 'big.evidence');
    const fd = openSync(big, 'w');
    const chunk = Buffer.alloc(1 << 20);
    const h = createHash('sha256');
    for (let i = 0; i < bigMb; i++) {
      chunk.fill(i & 255);
      chunk.writeUInt32BE(i, 0);
      writeSync(fd, chunk);
      h.update(chunk);
    }
    closeSync(fd);
    const want = h.digest('hex');
    // A bundle for some other evidence: the verdict is evidence_mismatch, naming the file's hash.
    const { page } = await openPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('HeapProfiler.collectGarbage');
    const before = (await cdp.send('Runtime.getHeapUsage')).usedSize;
    let peak = before;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        try {
          peak = Math.max(peak, (await cdp.send('Runtime.getHeapUsage')).usedSize);
        } catch {}
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const t0 = Date.now();
    const r = await judge(page, { policy, evidence: big, bundle: join(corpus, 'valid/anchored-judicial-evm.json') });
    const ms = Date.now() - t0;
    sampling = false;
    await sampler;
    const progress = await page.evaluate(() => window.__anchordProgress);
    const how = await page.evaluate(() => window.__anchordHashPath);
    assert(how === 'worker', `hashed in ${how}`);
    assert(r.verdict === 'INVALID' && r.check === 'evidence_mismatch', JSON.stringify(r));
    assert(r.line.includes(want), `the computed hash ${want} is named: ${r.line}`);
    assert(progress.length >= bigMb / 4 - 1, `${progress.length} progress events`);
    assert(progress.at(-1).done === bigMb << 20 && progress.at(-1).total === bigMb << 20, JSON.stringify(progress.at(-1)));
    for (let i = 1; i < progress.length; i++) assert(progress[i].done > progress[i - 1].done, 'progress only grows');
    const grew = peak - before;
    console.log(`     ${bigMb} MiB hashed in ${ms} ms (${((bigMb * 1000) / ms).toFixed(0)} MiB/s, under contention); page heap ${(before / 1048576).toFixed(1)} MiB before, peak ${(peak / 1048576).toFixed(1)} MiB; ${progress.length} progress events`);
    assert(grew < 64 << 20, `page heap grew by ${(grew / 1048576).toFixed(1)} MiB for a ${bigMb} MiB file`);
    await page.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

await test('served over HTTP under its CSP: the bundle fetched from the same-origin proof API by typed hash, VALID, no CSP violation', async () => {
  const { createServer } = await import('node:http');
  const html = readFileSync(page_);
  const csp = readFileSync(join(here, '../dist/index.html.csp'), 'utf8').trim();
  const bundleFile = join(corpus, 'valid/anchored-sm3.json');
  const hash = JSON.parse(readFileSync(bundleFile, 'utf8')).entry.evidence_hash;
  const server = createServer((req, res) => {
    if (req.url === '/verify/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': csp });
      res.end(html);
    } else if (req.url === `/v1/proofs/${hash}`) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(readFileSync(bundleFile));
    } else {
      res.writeHead(404);
      res.end('not found');
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${server.address().port}`;
  const ctx = await browser.newContext();
  const foreign = [];
  await ctx.route(/^(https?|wss?):/, (route) => (route.request().url().startsWith(origin) ? route.continue() : (foreign.push(route.request().url()), route.abort())));
  const page = await ctx.newPage();
  const violations = [];
  page.on('console', (m) => /Content Security Policy|Refused/.test(m.text()) && violations.push(m.text()));
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  try {
    await page.goto(`${origin}/verify/`);
    await page.setInputFiles('#policy-file', policy);
    await page.fill('#hash', hash);
    assert((await page.inputValue('#bundle-url')) === `/v1/proofs/${hash}`, 'the proof URL follows the typed hash');
    await page.click('#fetch');
    await page.waitForFunction(() => document.getElementById('bundle-name').textContent.includes('/v1/proofs/'));
    await page.click('#verify');
    await page.waitForSelector('#result:not([hidden]) #verdict[data-verdict]');
    const v = await page.getAttribute('#verdict', 'data-verdict');
    assert(v === 'VALID', `verdict ${v}: ${await page.textContent('#verdict-line')}`);
    // An evidence file is hashed in the worker under the CSP too.
    await page.setInputFiles('#evidence-file', join(corpus, 'valid/anchored-sm3.evidence'));
    await page.fill('#hash', '');
    await page.evaluate(() => delete document.getElementById('verdict').dataset.verdict);
    await page.click('#verify');
    await page.waitForFunction(() => window.__anchordHashPath !== undefined);
    await page.waitForSelector('#verdict[data-verdict="VALID"]');
    const how = await page.evaluate(() => window.__anchordHashPath);
    assert(how === 'worker', `hashed in ${how} under the CSP`);
    assert(violations.length === 0 && errors.length === 0, [...violations, ...errors].join('\n'));
    assert(foreign.length === 0, foreign.join('\n'));
  } finally {
    await ctx.close();
    server.close();
  }
});

await browser.close();
await test('nothing was requested from the network', async () => {
  assert(network.length === 0, network.join('\n'));
});
writeFileSync(join(shots, 'browser-results.txt'), results.join('\n') + '\n');
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
