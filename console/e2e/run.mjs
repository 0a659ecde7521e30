/* global document, location, axe -- page.evaluate callbacks run in the browser */
// Browser tests of the web console: Debian's headless Chromium (playwright-core,
// executablePath /usr/bin/chromium) against a REAL `anchord run` (ingest, batcher,
// verifier and the workflow API serving console/dist and console/verify/dist) on
// the test PostgreSQL and Kafka broker (scripts/services; ANCHORD_PG_PORT /
// ANCHORD_KAFKA_PORT honoured), a judicial-chain simulator (`anchord
// judicial-sim`) and, started by a flow when it needs anchors, `anchord relay`.
//
// This file is the harness: it checks what is needed, creates the run's own
// database and topics, writes the configuration, starts the services, seeds what
// an administrator sets up, launches the browser, then runs the flows of FLOWS
// (console/e2e/flows/<name>.mjs, each `export async function run(ctx)`) in that
// order, stopping at the first failure with the flow's name. Then no
// Content-Security-Policy violation and no serious axe-core violation may have
// occurred on any screen. At the end, passed or failed (or interrupted), it
// stops what it started and drops the run's database and topics.
//
// Screenshots of every screen are kept in e2e/artifacts/ (NN-<name>.png).
//
// Needs: node, /usr/bin/chromium (CHROMIUM), a built console (npm run build), a
// built court page (console/verify: npm run build) and an anchord binary
// (ANCHORD_BIN, default ../target/debug/anchord). Fails loudly when any is
// missing: never skips. E2E_ONLY=name,name runs only those flows (in FLOWS order;
// a flow that needs an earlier one's state fails saying so).
import { spawn, execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

/** The flows, in the order they run (later flows use what earlier ones left in ctx.state). */
export const FLOWS = [
  'admin', // the login page, the session cookie, the administrator's screens
  'preservation-anchored', // upload → review → on chain → anchored without a reload; proof bundle and certificate downloaded and verified
  'denials', // another bank's user cannot open the record by URL
  'notarization', // application → comparison → report → certificate issued → applicant downloads it
  'ruling-refused', // a ruling request refused with a reason, seen by the applicant
  'contract-cross-org', // a three-party contract: another bank's user and an invited outside party; signed by all, approved, on chain
  'demo-seed', // scripts/demo-console's seeding against this server, used through the UI
  'court-page', // /verify/: valid, tampered, untrusted bundles; the bundle fetched by typed hash
  // H20's screens:
  'apply-on-chain', // 申请上链 on a saved preservation
  'invitation', // 发起邀约 with an outside party by e-mail; the public invitation page; signing with a browser-held key
  'account', // user edit, reset with a forced change, e-mail preferences, the browser's key, sessions revoked
  'admin-screens', // contract types, webhooks and their deliveries, an organisation renamed, the system log
  'search', // the combined search (needs preservation-anchored's record on chain)
];

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
if (!existsSync(join(consoleDir, 'verify/dist/index.html'))) die('console/verify/dist is missing: cd console/verify && npm ci && npm run build');
const only = process.env.E2E_ONLY ? process.env.E2E_ONLY.split(',') : null;
for (const f of only ?? []) if (!FLOWS.includes(f)) die(`E2E_ONLY names no flow: ${f} (flows: ${FLOWS.join(', ')})`);

const freePort = () =>
  new Promise((ok, bad) => {
    const s = createServer();
    s.on('error', bad);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

// --- the run's own database and topics; cleanup -------------------------------------
const env = Object.fromEntries(
  execFileSync(join(root, 'scripts/services'), ['env'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.startsWith('export '))
    .map((l) => l.slice(7).split(/=(.*)/s).slice(0, 2)),
);
const run = `e2e${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
const dbName = `anchord_${run}`;
const topics = [`anchord.${run}.evidence.v1`, `anchord.${run}.evidence.dlq.v1`];
const dir = mkdtempSync(join(tmpdir(), 'anchord-console-e2e-'));
const children = []; // [{ name, proc, exited }]
let browser;
let failed = false;
let createdDb = false;

/** Drops the run's database (WITH FORCE: nothing of this run may hold it). */
function dropDatabase() {
  // The cluster's maintenance connection: DATABASE_URL names the shared dev database.
  execFileSync('psql', [env.DATABASE_URL, '-v', 'ON_ERROR_STOP=1', '-qc', `DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`], { stdio: ['ignore', 'inherit', 'pipe'] });
}

/** Deletes the run's topics on the broker (Kafka DeleteTopics v1, the one request it takes). */
function deleteTopics() {
  const [host, port] = env.KAFKA_BROKERS.split(',')[0].split(':');
  const str = (s) => {
    const b = Buffer.from(s);
    const n = Buffer.alloc(2);
    n.writeInt16BE(b.length);
    return Buffer.concat([n, b]);
  };
  const i32 = (v) => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    return b;
  };
  const i16 = (v) => {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    return b;
  };
  const body = Buffer.concat([i16(20), i16(1), i32(1), str('anchord-console-e2e'), i32(topics.length), ...topics.map(str), i32(10000)]);
  return new Promise((ok, bad) => {
    const sock = createConnection({ host, port: Number(port) }, () => sock.write(Buffer.concat([i32(body.length), body])));
    let got = Buffer.alloc(0);
    sock.setTimeout(15000, () => (sock.destroy(), bad(new Error('no answer in 15 s'))));
    sock.on('error', bad);
    sock.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (got.length < 4 || got.length < 4 + got.readInt32BE(0)) return;
      sock.end();
      // size, correlation id, throttle time, [name, error code]
      let o = 12;
      const n = got.readInt32BE(o);
      o += 4;
      const errors = [];
      for (let i = 0; i < n; i++) {
        const len = got.readInt16BE(o);
        const name = got.subarray(o + 2, o + 2 + len).toString();
        o += 2 + len;
        const code = got.readInt16BE(o);
        o += 2;
        // 3: unknown topic (never created: nothing to delete)
        if (code !== 0 && code !== 3) errors.push(`${name}: error code ${code}`);
      }
      if (errors.length) bad(new Error(errors.join(', ')));
      else ok();
    });
  });
}

async function stop(c) {
  if (c.exited) return;
  c.proc.kill('SIGTERM');
  await new Promise((ok) => {
    c.proc.on('exit', ok);
    setTimeout(() => {
      if (!c.exited) c.proc.kill('SIGKILL');
      ok();
    }, 15000);
  });
}

// One cleanup, however many ask for it (a signal during a flow, then the flow's
// own failure): every caller waits for the same one to finish before exiting.
let cleaning;
const cleanup = () => (cleaning ??= cleanupOnce());
const cleanupOnce = async () => {
  try {
    await browser?.close();
  } catch {
    // best effort
  }
  // The relay and the server first (they hold the database), the simulator last.
  for (const c of [...children].reverse()) await stop(c);
  if (createdDb) {
    try {
      dropDatabase();
      console.log(`e2e: dropped database ${dbName}`);
    } catch (e) {
      console.error(`e2e: could not drop database ${dbName}: ${e.stderr ?? e.message}`);
      failed = true;
    }
    try {
      await deleteTopics();
      console.log(`e2e: deleted topics ${topics.join(', ')}`);
    } catch (e) {
      // Not a test failure: the broker's topics live in memory (scripts/services).
      console.error(`e2e: could not delete topics ${topics.join(', ')}: ${e.message}`);
    }
  }
  if (!failed) rmSync(dir, { recursive: true, force: true });
  else console.error(`e2e: kept ${dir} (anchord.log, relay.log, judicial-sim.log)`);
};
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'])
  process.on(sig, async () => {
    console.error(`e2e: ${sig}: cleaning up`);
    failed = interrupted = true;
    await cleanup();
    process.exit(130);
  });

function spawnChild(name, args, extraEnv = {}) {
  const out = openSync(join(dir, `${name}.log`), 'w');
  const proc = spawn(BIN, args, { env: { ...childEnv, ...extraEnv }, stdio: ['ignore', out, out] });
  const c = { name, proc, exited: false };
  proc.on('exit', () => (c.exited = true));
  children.push(c);
  return c;
}

async function waitFor(what, f, ms = 60000) {
  const until = Date.now() + ms;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch {
      // best effort
    }
    const dead = children.find((c) => c.exited);
    if (dead) throw new Error(`${dead.name} exited while waiting for ${what}:\n${readFileSync(join(dir, `${dead.name}.log`), 'utf8').slice(-3000)}`);
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

// The configuration file decides: DATABASE_URL, KAFKA_BROKERS and ANCHORD__* from
// the caller's shell would override it (and point at the shared dev database).
const childEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !['DATABASE_URL', 'KAFKA_BROKERS'].includes(k) && !k.startsWith('ANCHORD__')),
);
childEnv.ANCHORD_CONFIG = join(dir, 'anchord.toml');

// --- the API, for seeding ------------------------------------------------------
let base;
async function call(method, path, token, body) {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
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

async function newPage() {
  const context = await browser.newContext({ locale: 'zh-CN', timezoneId: 'Asia/Shanghai', viewport: { width: 1400, height: 900 }, acceptDownloads: true });
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
      } catch {
        // best effort
      }
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

/** Clicks what starts a download; saves it under the run's directory: { name, path, bytes }. */
async function download(page, clickable) {
  const [d] = await Promise.all([page.waitForEvent('download', { timeout: 60000 }), clickable.click()]);
  const failure = await d.failure();
  assert(!failure, `the download of ${d.suggestedFilename()} failed: ${failure}`);
  const path = join(dir, 'downloads', `${Date.now()}-${d.suggestedFilename()}`);
  await d.saveAs(path);
  return { name: d.suggestedFilename(), path, bytes: readFileSync(path) };
}

/** Runs an anchord subcommand against this run's configuration: { code, stdout, stderr }. */
function anchord(args) {
  try {
    const stdout = execFileSync(BIN, args, { env: childEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { code: 0, stdout, stderr: '' };
  } catch (e) {
    if (typeof e.status !== 'number') throw e;
    return { code: e.status, stdout: String(e.stdout ?? ''), stderr: String(e.stderr ?? '') };
  }
}

let relay;
/** Starts `anchord relay` (once): anchors final checkpoints on the judicial-chain simulator. */
async function startRelay() {
  if (relay) return;
  relay = spawnChild('relay', ['relay'], { ANCHORD__ADMIN__LISTEN: `127.0.0.1:${await freePort()}` });
}

try {
  mkdirSync(artifacts, { recursive: true });
  mkdirSync(join(dir, 'downloads'), { recursive: true });
  execFileSync(join(root, 'scripts/services'), ['createdb', dbName], { stdio: 'inherit' });
  createdDb = true;
  const dbUrl = `${env.DATABASE_URL.replace(/\/[^/]*$/, '')}/${dbName}`;
  const [apiPort, adminPort, verifierPort] = [await freePort(), await freePort(), await freePort()];
  base = `http://127.0.0.1:${apiPort}`;
  const adminPassword = `e2e-admin-${Math.random().toString(36).slice(2)}-Zq7`;
  writeFileSync(join(dir, 'admin.password'), `${adminPassword}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'kek'), `${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex')}\n`, { mode: 0o600 });
  execFileSync(BIN, ['keygen', '--name', 'anchord.e2e/console', '--out', join(dir, 'sealer.key')], { stdio: 'inherit' });
  // The bank's key at the court's chain (RSA, as the judicial gateway takes it).
  const judicial = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  writeFileSync(join(dir, 'judicial.pem'), judicial.privateKey, { mode: 0o600 });
  writeFileSync(join(dir, 'judicial.pub.pem'), judicial.publicKey);
  const sim = spawn(BIN, ['judicial-sim', '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'judicial-chain'), '--account', `e2e-bank=${join(dir, 'judicial.pub.pem')}`], {
    env: childEnv,
    stdio: ['ignore', 'pipe', openSync(join(dir, 'judicial-sim.log'), 'w')],
  });
  const simChild = { name: 'judicial-sim', proc: sim, exited: false };
  sim.on('exit', () => (simChild.exited = true));
  children.push(simChild);
  const simAddr = await new Promise((ok, bad) => {
    let line = '';
    sim.stdout.on('data', (d) => {
      line += d;
      const m = /judicial-sim listening on (\S+)/.exec(line);
      if (m) ok(m[1]);
    });
    sim.on('exit', (code) => bad(new Error(`judicial-sim exited (${code}): ${readFileSync(join(dir, 'judicial-sim.log'), 'utf8')}`)));
  });
  sim.stdout.resume();
  const config = `hash_suite = "sha256"
[database]
url = "${dbUrl}"
[admin]
listen = "127.0.0.1:${adminPort}"
[ingest]
brokers = "${env.KAFKA_BROKERS}"
topic = "${topics[0]}"
dead_letter_topic = "${topics[1]}"
group_id = "anchord-${run}"
tenants = ["bank-a", "bank-b", "anchord-workflow"]
create_topics = true
topic_partitions = 1
[batcher]
origin = "anchord.e2e/console"
signing_key = "${join(dir, 'sealer.key')}"
block_interval_ms = 300
[relay]
targets = [{ name = "court-sim", kind = "judicial", url = "http://${simAddr}", account_id = "e2e-bank", signing_key = "${join(dir, 'judicial.pem')}" }]
poll_ms = 200
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
  execFileSync(BIN, ['migrate'], { env: childEnv, stdio: 'inherit' });
  spawnChild('anchord', ['run', '--stages', 'ingest,batcher,verifier,workflow']);

  await waitFor('the workflow API', async () => (await fetch(`${base}/v1/openapi.json`)).ok);
  const admin = await waitFor('the bootstrap administrator', () => login('admin', adminPassword).catch(() => null));
  // Seed what an administrator sets up: a notary office, a court, two banks' users, a product.
  await call('POST', '/v1/institutions', admin, { id: 'notary-sh', name: '上海市公证处', kind: 'notary', fee_cents: 20000 });
  await call('POST', '/v1/institutions', admin, { id: 'court-hz', name: '杭州互联网法院', kind: 'court' });
  const accounts = {
    alice: { role: 'user', tenant: 'bank-a' },
    rita: { role: 'reviewer', tenant: 'bank-a' },
    carol: { role: 'user', tenant: 'bank-a' },
    bob: { role: 'user', tenant: 'bank-b' },
    nora: { role: 'institution', institution_id: 'notary-sh' },
    judge: { role: 'institution', institution_id: 'court-hz' },
  };
  for (const [username, { role, ...extra }] of Object.entries(accounts)) await call('POST', '/v1/users', admin, { username, password: pw(username), role, ...extra });
  const product = await call('POST', '/v1/products', admin, {
    name: '借款合同保全',
    description: '借款合同及其附件',
    channels: ['notarization', 'judicial_ruling'],
    fields: [
      { key: 'borrower', display_name: '借款人', type: 'text', max_length: 20, required: true },
      { key: 'amount', display_name: '借款金额', type: 'number', max_length: 12, required: true },
    ],
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // Our signal handlers clean up (browser included) and exit: Playwright's own
    // would close the browser and exit(130) at once, leaving the services running.
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });

  /**
   * ctx: the one argument of every flow's `run(ctx)`.
   *   base            the console's origin (the workflow API, same origin), e.g. http://127.0.0.1:PORT
   *   verifierBase    the verifier's proof API origin (another port)
   *   root, consoleDir, artifacts   the repository, console/, console/e2e/artifacts/
   *   dir             this run's temporary directory (config, keys, logs, downloads/); removed
   *                   after a pass, kept after a failure
   *   run             this run's unique id (in the database, topic and file names)
   *   adminPassword   the bootstrap administrator's ("admin") password
   *   pw(username)    the password of a seeded user
   *   accounts        the seeded users: { username: { role, tenant | institution_id } }
   *                   (alice, carol: bank-a users; rita: bank-a reviewer; bob: bank-b user;
   *                   nora: the notary office notary-sh; judge: the court court-hz)
   *   product         the seeded product (POST /v1/products answer; channels notarization, ruling)
   *   state           a plain object the flows share, in FLOWS order (e.g. state.preservation
   *                   set by preservation-anchored: { id, number, file, evidenceHash })
   *   call(method, path, token, body) -> JSON   the API with a bearer token; throws on non-2xx
   *   login(username, password) -> token
   *   browser         playwright-core's Browser (Debian chromium)
   *   newPage() -> Page   a fresh context (zh-CN, Asia/Shanghai, downloads accepted) whose CSP
   *                   violations and page errors fail the run at the end
   *   uiLogin(page, username, password), uiLogout(page)   through the login page; logout closes
   *                   the page's context
   *   screen(page, name)   a screenshot to artifacts/ and an axe-core check of the screen
   *   download(page, locator) -> { name, path, bytes }   clicks, saves what it downloads
   *   anchord(args) -> { code, stdout, stderr }   an anchord subcommand on this run's config
   *   startRelay()    starts `anchord relay` (once): anchors on the judicial-chain simulator
   *   waitFor(what, f, ms), assert(cond, msg)
   */
  const ctx = {
    base,
    verifierBase: `http://127.0.0.1:${verifierPort}`,
    root,
    consoleDir,
    artifacts,
    dir,
    run,
    adminPassword,
    pw,
    accounts,
    product,
    state: {},
    call,
    login,
    browser,
    newPage,
    uiLogin,
    uiLogout,
    screen,
    download,
    anchord,
    startRelay,
    waitFor,
    assert,
  };
  const t0 = Date.now();
  const timings = [];
  for (const name of FLOWS) {
    if (only && !only.includes(name)) continue;
    const t = Date.now();
    console.log(`e2e: flow ${name}`);
    const { run: flow } = await import(join(here, 'flows', `${name}.mjs`));
    try {
      await flow(ctx);
    } catch (e) {
      e.message = `flow ${name}: ${e.message}`;
      throw e;
    }
    timings.push(`${name} ${((Date.now() - t) / 1000).toFixed(1)} s`);
  }
  if (cspErrors.length) throw new Error(`Content-Security-Policy violations or page errors:\n${cspErrors.join('\n')}`);
  if (violations.length) throw new Error(`serious accessibility violations:\n${JSON.stringify(violations, null, 1)}`);
  console.log(`e2e: ${shots.length} screens, every flow passed in ${((Date.now() - t0) / 1000).toFixed(1)} s (${timings.join(', ')}; screenshots in ${artifacts})`);
} catch (e) {
  failed = true;
  console.error(`e2e FAILED: ${e.stack ?? e}`);
  try {
    for (const c of browser?.contexts() ?? [])
      for (const p of c.pages()) {
        await p.screenshot({ path: join(artifacts, `failure-${Date.now()}.png`), fullPage: true });
        console.error('inputs on the page:', await p.evaluate(() => [...document.querySelectorAll('input,textarea')].map((i) => `${i.id}(${i.type})`).join(' ')));
      }
  } catch {
    // best effort
  }
  for (const name of ['anchord', 'relay'])
    if (existsSync(join(dir, `${name}.log`))) console.error(`--- ${name}.log (tail)\n${readFileSync(join(dir, `${name}.log`), 'utf8').slice(-2000)}`);
} finally {
  await cleanup();
}
process.exit(interrupted ? 130 : failed ? 1 : 0);
