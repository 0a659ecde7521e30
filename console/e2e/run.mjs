// Browser tests of the web console: Debian's headless Chromium (playwright-core,
// executablePath /usr/bin/chromium) against a REAL `anchord run` (ingest, batcher,
// verifier and the workflow API serving console/dist) on the test PostgreSQL and
// Kafka broker (scripts/services; ANCHORD_PG_PORT / ANCHORD_KAFKA_PORT honoured).
//
// Each role logs in through the login page; a preservation user creates a
// preservation from a product's template and uploads its file (progress shown);
// the bank's reviewer approves it from the to-do inbox and watches its status move
// to on chain without a reload; the user sees it listed; a user of another bank
// cannot open it by URL; the judicial institution sees its queue and refuses a
// request with a reason. An axe-core check runs on every screen (no serious or
// critical violation), no Content-Security-Policy violation may occur, and a
// screenshot of every screen is kept in e2e/artifacts/.
//
// Needs: node, /usr/bin/chromium (CHROMIUM), a built console (npm run build) and
// an anchord binary (ANCHORD_BIN, default ../target/debug/anchord). Fails loudly
// when any is missing: never skips.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const consoleDir = resolve(here, '..');
const root = resolve(consoleDir, '..');
const artifacts = join(here, 'artifacts');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const BIN = process.env.ANCHORD_BIN ?? join(root, 'target/debug/anchord');

function die(msg) {
  console.error(`e2e: ${msg}`);
  process.exit(1);
}
if (!existsSync(CHROMIUM)) die(`${CHROMIUM} is missing: apt-get install -y chromium (Debian's package), or set CHROMIUM`);
if (!existsSync(BIN)) die(`${BIN} is missing: cargo build -p anchord, or set ANCHORD_BIN`);
if (!existsSync(join(consoleDir, 'dist/index.html'))) die('console/dist is missing: npm run build');

const freePort = () =>
  new Promise((ok, bad) => {
    const s = createServer();
    s.on('error', bad);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });

// --- the services -----------------------------------------------------------
const env = Object.fromEntries(
  execFileSync(join(root, 'scripts/services'), ['env'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.startsWith('export '))
    .map((l) => l.slice(7).split(/=(.*)/s).slice(0, 2)),
);
const run = `e2e${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
const dbName = `anchord_${run}`;
execFileSync(join(root, 'scripts/services'), ['createdb', dbName], { stdio: 'inherit' });
const dbUrl = `${env.DATABASE_URL.replace(/\/[^/]*$/, '')}/${dbName}`;
const dir = mkdtempSync(join(tmpdir(), 'anchord-console-e2e-'));
const [apiPort, adminPort, verifierPort] = [await freePort(), await freePort(), await freePort()];
const base = `http://127.0.0.1:${apiPort}`;
const adminPassword = `e2e-admin-${Math.random().toString(36).slice(2)}-Zq7`;
writeFileSync(join(dir, 'admin.password'), `${adminPassword}\n`, { mode: 0o600 });
writeFileSync(join(dir, 'kek'), `${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex')}\n`, { mode: 0o600 });
execFileSync(BIN, ['keygen', '--name', 'anchord.e2e/console', '--out', join(dir, 'sealer.key')], { stdio: 'inherit' });
const config = `hash_suite = "sha256"
[database]
url = "${dbUrl}"
[admin]
listen = "127.0.0.1:${adminPort}"
[ingest]
brokers = "${env.KAFKA_BROKERS}"
topic = "anchord.${run}.evidence.v1"
dead_letter_topic = "anchord.${run}.evidence.dlq.v1"
group_id = "anchord-${run}"
tenants = ["bank-a", "bank-b", "anchord-workflow"]
create_topics = true
topic_partitions = 1
[batcher]
origin = "anchord.e2e/console"
signing_key = "${join(dir, 'sealer.key')}"
block_interval_ms = 300
[verifier]
listen = "127.0.0.1:${verifierPort}"
public_url = "http://127.0.0.1:${verifierPort}"
[workflow]
listen = "127.0.0.1:${apiPort}"
storage_dir = "${join(dir, 'files')}"
console_dir = "${join(consoleDir, 'dist')}"
verify_dir = "${join(consoleDir, 'verify/dist')}"
bootstrap_admin = "admin"
bootstrap_admin_password_file = "${join(dir, 'admin.password')}"
key_encryption_key_file = "${join(dir, 'kek')}"
link_poll_ms = 200
`;
writeFileSync(join(dir, 'anchord.toml'), config);
// The configuration file decides: DATABASE_URL, KAFKA_BROKERS and ANCHORD__* from
// the caller's shell would override it (and point at the shared dev database).
const childEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !['DATABASE_URL', 'KAFKA_BROKERS'].includes(k) && !k.startsWith('ANCHORD__')),
);
childEnv.ANCHORD_CONFIG = join(dir, 'anchord.toml');
execFileSync(BIN, ['migrate'], { env: childEnv, stdio: 'inherit' });
const logFile = join(dir, 'anchord.log');
const out = (await import('node:fs')).openSync(logFile, 'w');
const server = spawn(BIN, ['run', '--stages', 'ingest,batcher,verifier,workflow'], { env: childEnv, stdio: ['ignore', out, out] });
let serverExited = false;
server.on('exit', () => (serverExited = true));

let browser;
let failed = false;
const cleanup = async () => {
  try {
    await browser?.close();
  } catch {}
  if (!serverExited) {
    server.kill('SIGTERM');
    await new Promise((ok) => {
      server.on('exit', ok);
      setTimeout(ok, 15000);
    });
  }
  if (!failed) rmSync(dir, { recursive: true, force: true });
  else console.error(`e2e: kept ${dir} (anchord.log)`);
};

async function waitFor(what, f, ms = 60000) {
  const until = Date.now() + ms;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch {}
    if (serverExited) throw new Error(`anchord exited while waiting for ${what}:\n${readFileSync(logFile, 'utf8').slice(-3000)}`);
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

// --- the API, for seeding ------------------------------------------------------
async function call(method, path, token, body) {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  const v = text ? JSON.parse(text) : null;
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return v;
}
const login = async (u, p) => (await call('POST', '/v1/auth/login', null, { username: u, password: p })).token;
const pw = (name) => `${name}-Console-e2e-9f3k`;

// --- checks ----------------------------------------------------------------------
const axeSource = readFileSync(join(consoleDir, 'node_modules/axe-core/axe.min.js'), 'utf8');
const violations = [];
const cspErrors = [];
const shots = [];
async function screen(page, name) {
  await page.waitForLoadState('networkidle');
  await page.waitForTimeout(300);
  const file = join(artifacts, `${String(shots.length + 1).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  shots.push(file);
  if (process.env.E2E_STYLES)
    console.log(await page.evaluate(() => [...document.querySelectorAll('style')].map((s) => `${s.nonce ? 'N' : '-'} ${[...s.attributes].map((a) => a.name + '=' + a.value.slice(0, 20)).join(',')} ${s.textContent.slice(0, 100)}`).join('\n')));
  // axe-core, evaluated through the DevTools protocol (not an inline script: the CSP stays strict).
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  const serious = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const minor = result.filter((v) => !serious.includes(v));
  if (minor.length) console.log(`  axe ${name}: minor: ${minor.map((v) => v.id).join(', ')}`);
  if (serious.length) {
    violations.push({ screen: name, serious });
    console.log(JSON.stringify(serious, null, 1));
  }
  console.log(`  screen ${name}: ${serious.length ? 'SERIOUS axe violations' : 'axe ok'}`);
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function newPage() {
  const context = await browser.newContext({ locale: 'zh-CN', timezoneId: 'Asia/Shanghai', viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  // Every CSP violation with what caused it (added through the DevTools protocol, not inline).
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) =>
      console.log(`CSPV ${e.effectiveDirective} ${e.sourceFile}:${e.lineNumber}:${e.columnNumber} sample=${e.sample} at ${location.pathname}`),
    );
  });
  page.on('console', (m) => {
    if (/Content[- ]Security[- ]Policy|^CSPV/i.test(m.text())) cspErrors.push(m.text());
  });
  page.on('pageerror', (e) => cspErrors.push(`page error: ${e.message}`));
  page.on('response', async (r) => {
    if (r.url().includes('/v1/') && r.status() >= 400 && r.status() !== 401) {
      let body = '';
      try {
        body = (await r.text()).slice(0, 300);
      } catch {}
      console.log(`  (answer ${r.status()} to ${r.request().method()} ${new URL(r.url()).pathname}: ${body})`);
    }
  });
  return page;
}

async function uiLogin(page, user, password) {
  await page.goto(`${base}/`);
  await page.locator('#username').fill(user);
  await page.locator('#password').fill(password);
  await page.getByRole('button', { name: /登\s*录/ }).click();
  await page.getByText(user, { exact: false }).first().waitFor();
}

async function uiLogout(page) {
  await page.getByRole('button', { name: /退出登录/ }).click();
  await page.locator('#username').waitFor();
  await page.context().close();
}

try {
  mkdirSync(artifacts, { recursive: true });
  await waitFor('the workflow API', async () => (await fetch(`${base}/v1/openapi.json`)).ok);
  const admin = await waitFor('the bootstrap administrator', () => login('admin', adminPassword).catch(() => null));
  // Seed what an administrator sets up: a notary office, a bank's users, a product.
  await call('POST', '/v1/institutions', admin, { id: 'notary-sh', name: '上海市公证处', kind: 'notary', fee_cents: 20000 });
  for (const [username, role, extra] of [
    ['alice', 'user', { tenant: 'bank-a' }],
    ['rita', 'reviewer', { tenant: 'bank-a' }],
    ['bob', 'user', { tenant: 'bank-b' }],
    ['nora', 'institution', { institution_id: 'notary-sh' }],
  ])
    await call('POST', '/v1/users', admin, { username, password: pw(username), role, ...extra });
  const product = await call('POST', '/v1/products', admin, {
    name: '借款合同保全',
    description: '借款合同及其附件',
    channels: ['notarization'],
    fields: [
      { key: 'borrower', display_name: '借款人', type: 'text', max_length: 20, required: true },
      { key: 'amount', display_name: '借款金额', type: 'number', max_length: 12, required: true },
    ],
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const t0 = Date.now();

  // 1. The login page; the administrator's screens.
  let page = await newPage();
  await page.goto(`${base}/`);
  await page.locator('#username').waitFor();
  const cookieJs = await page.evaluate(() => document.cookie);
  await screen(page, 'login');
  await uiLogin(page, 'admin', adminPassword);
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'anchord_session');
  assert(session && session.httpOnly && session.sameSite === 'Strict', `the session cookie is HttpOnly and SameSite=Strict: ${JSON.stringify(cookies)}`);
  assert((await page.evaluate(() => document.cookie)) === cookieJs, 'no script can read the session cookie');
  await page.getByText('借款合同保全').first().waitFor();
  await page.getByText('借款合同保全').first().click();
  await page.getByText('借款金额').first().waitFor();
  // The field-template editor: add a field; the preview shows it.
  await page.getByRole('button', { name: '添加字段' }).click();
  const dlg = page.getByRole('dialog');
  await dlg.locator('#key').fill('contract_no');
  await dlg.locator('#display_name').fill('合同编号');
  await dlg.locator('#max_length').fill('30');
  await dlg.getByRole('button', { name: /保\s*存/ }).click();
  await page.getByText('合同编号').first().waitFor();
  await screen(page, 'admin-products');
  for (const [path, name, text] of [
    ['/admin/users', 'admin-users', '上海市公证处'],
    ['/admin/monitoring', 'admin-monitoring', '区块高度'],
    ['/admin/audit', 'admin-audit', '审计链'],
  ]) {
    await page.goto(`${base}${path}`);
    await page.getByText(text).first().waitFor();
    await screen(page, name);
  }
  await uiLogout(page);

  // 2. The preservation user: a new preservation from the product's template.
  page = await newPage();
  await uiLogin(page, 'alice', pw('alice'));
  await page.goto(`${base}/preservations/new`);
  await page.locator('#product').click();
  await page.getByTitle('借款合同保全').click();
  await page.locator('#borrower').fill('张三');
  await page.locator('#amount').fill('100000');
  await page.locator('#contract_no').fill('HT-2026-001');
  await screen(page, 'user-new-preservation');
  await page.getByRole('button', { name: /保\s*存/ }).click();
  const file = join(dir, '借款合同.txt');
  writeFileSync(file, `借款合同 ${run}\n`.repeat(200));
  await page.locator('input[type=file]').setInputFiles(file);
  await page.getByRole('button', { name: '提交审核' }).click();
  await page.waitForURL(/\/preservations\/\d+$/);
  const pid = Number(page.url().split('/').pop());
  await page.locator('[data-status="submitted"]').first().waitFor();
  await screen(page, 'user-preservation-submitted');
  await page.goto(`${base}/preservations`);
  await page.getByText('借款合同.txt').first().waitFor();
  await screen(page, 'user-preservation-list');
  await uiLogout(page);

  // 3. The bank's reviewer: the to-do inbox, approve; the status moves on without a reload.
  page = await newPage();
  await uiLogin(page, 'rita', pw('rita'));
  await page.waitForURL(/\/inbox$/);
  await page.getByText('借款合同.txt').first().waitFor();
  await screen(page, 'reviewer-inbox');
  await page.goto(`${base}/preservations/${pid}`);
  await page.getByRole('button', { name: /通\s*过/ }).click();
  const navigations = [];
  page.on('framenavigated', (f) => f === page.mainFrame() && navigations.push(f.url()));
  await page.locator('[data-status="on_chain"], [data-status="anchored"]').first().waitFor({ timeout: 90000 });
  assert(navigations.length === 0, `the status moved without a reload: ${navigations}`);
  await page.getByText(/下载证明包/).first().waitFor();
  await screen(page, 'reviewer-preservation-on-chain');
  await uiLogout(page);

  // 4. The user sees it listed on chain; another bank's user cannot open it by URL.
  page = await newPage();
  await uiLogin(page, 'alice', pw('alice'));
  await page.goto(`${base}/preservations`);
  await page.locator('[data-status="on_chain"]').first().waitFor();
  await screen(page, 'user-list-on-chain');
  await uiLogout(page);
  page = await newPage();
  await uiLogin(page, 'bob', pw('bob'));
  await page.goto(`${base}/preservations/${pid}`);
  await page.getByRole('alert').first().waitFor();
  assert(!(await page.getByText('借款合同.txt').count()), 'bank-b cannot see bank-a records');
  await screen(page, 'denied-other-bank');
  await uiLogout(page);

  // 5. The judicial institution: its queue, a request refused with a reason.
  const aliceToken = await login('alice', pw('alice'));
  const jr = await call('POST', '/v1/judicial-requests', aliceToken, { kind: 'notarization', subject_kind: 'preservation', subject_id: pid, institution_id: 'notary-sh' });
  page = await newPage();
  await uiLogin(page, 'nora', pw('nora'));
  await page.getByText(jr.number).first().waitFor();
  await screen(page, 'institution-queue');
  await page.getByText(jr.number).first().click();
  await page.getByRole('button', { name: /拒\s*绝/ }).click();
  await page.getByRole('dialog').locator('#reason').fill('材料不全');
  await page.getByRole('dialog').getByRole('button', { name: /拒\s*绝/ }).click();
  await page.locator('[data-status="refused"]').first().waitFor();
  await screen(page, 'institution-refused');
  // English is a click away.
  await page.getByRole('button', { name: 'English' }).click();
  await page.getByText('Sign out').waitFor();
  await screen(page, 'institution-english');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.locator('#username').waitFor();

  // The demo's seeding (scripts/demo-console) against this server: a product, a
  // preservation on chain, a three-party contract, a judicial request.
  execFileSync(join(root, 'scripts/demo-console'), ['seed', base, join(dir, 'admin.password'), join(dir, 'accounts.txt')], {
    env: { ...childEnv, DEMO_BANK: 'bank-a' },
    stdio: 'inherit',
  });
  const seeded = Object.fromEntries(
    readFileSync(join(dir, 'accounts.txt'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' ').slice(1, 3)),
  );
  // The second signer of the seeded three-party contract signs it in the browser.
  page = await newPage();
  await uiLogin(page, 'li.si', seeded['li.si']);
  await page.goto(`${base}/contracts`);
  await page.getByText('张三借款合同（三方）').first().waitFor();
  await screen(page, 'reviewer-contracts');
  await page.getByRole('link', { name: /^HT/ }).first().click();
  await page.getByRole('button', { name: /签\s*署/ }).click();
  await page.locator('[data-status="awaiting_review"]').first().waitFor();
  await screen(page, 'contract-signed-by-all');
  await uiLogout(page);
  // The notary compares the preserved file it was authorised to read.
  page = await newPage();
  await uiLogin(page, 'notary', seeded.notary);
  await page.getByRole('link', { name: /^SF/ }).first().click();
  await page.getByRole('button', { name: '比对保全文件' }).click();
  await page.getByText('结果一致，数据未篡改').first().waitFor();
  await page.getByText('下载比对报告').first().waitFor();
  await screen(page, 'notary-comparison');
  await uiLogout(page);
  // The court's verification page (console/verify, H12's package) behind the
  // console's link, under its own policy; it is built by scripts/test first.
  if (existsSync(join(consoleDir, 'verify/dist/index.html'))) {
    page = await newPage();
    await page.goto(`${base}/`);
    // The login page links to it (the signed-in layout opens it in a new tab).
    await page.getByRole('link', { name: '司法核验页面' }).click();
    await page.waitForURL(/\/verify\/$/);
    const verify = page;
    assert(new URL(verify.url()).pathname === '/verify/', `the link opens /verify/: ${verify.url()}`);
    const resp = await verify.reload();
    assert(resp.status() === 200 && /sha256-/.test(resp.headers()['content-security-policy'] ?? ''), 'the verification page is served under its own policy');
    await verify.screenshot({ path: join(artifacts, `${String(shots.length + 1).padStart(2, '0')}-verify-page.png`), fullPage: true });
    await page.context().close();
  } else {
    console.log('  (console/verify/dist is not built: the verification page was not opened)');
  }
  if (cspErrors.length) throw new Error(`Content-Security-Policy violations or page errors:\n${cspErrors.join('\n')}`);
  if (violations.length) throw new Error(`serious accessibility violations:\n${JSON.stringify(violations, null, 1)}`);
  console.log(`e2e: ${shots.length} screens, every role's flow passed in ${((Date.now() - t0) / 1000).toFixed(1)} s (screenshots in ${artifacts})`);
} catch (e) {
  failed = true;
  console.error(`e2e FAILED: ${e.stack ?? e}`);
  try {
    for (const c of browser?.contexts() ?? [])
      for (const p of c.pages()) {
        await p.screenshot({ path: join(artifacts, `failure-${Date.now()}.png`), fullPage: true });
        console.error('inputs on the page:', await p.evaluate(() => [...document.querySelectorAll('input,textarea')].map((i) => `${i.id}(${i.type})`).join(' ')));
      }
  } catch {}
  console.error(readFileSync(logFile, 'utf8').slice(-2000));
} finally {
  await cleanup();
}
process.exit(failed ? 1 : 0);
