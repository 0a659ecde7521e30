/* global document -- page.evaluate callbacks run in the browser */
// The court's verification page (console/verify) as `anchord run` serves it at
// /verify/, reached from the login page's link, under its own policy: the
// deployment's exported trust file loaded; the anchored preservation's bundle
// (downloaded by preservation-anchored) with its evidence file: VALID; a
// tampered evidence file and a tampered bundle: INVALID; the same bundle against
// another deployment's trust file: UNTRUSTED; and the bundle fetched by typed
// evidence hash from the same origin's /v1/proofs/{hash} (the workflow serves
// the public proof route): VALID.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

async function judge(page, { policy, evidence, bundle, hash }) {
  await page.evaluate(() => delete document.getElementById('verdict')?.dataset.verdict);
  if (policy) await page.setInputFiles('#policy-file', policy);
  if (evidence) await page.setInputFiles('#evidence-file', evidence);
  if (hash) await page.fill('#hash', hash);
  if (bundle) await page.setInputFiles('#bundle-file', bundle);
  await page.click('#verify');
  await page.waitForSelector('#result:not([hidden]) #verdict[data-verdict]', { timeout: 120000 });
  return page.evaluate(() => ({
    verdict: document.getElementById('verdict').dataset.verdict,
    check: document.getElementById('verdict').dataset.check,
    line: document.getElementById('verdict-line').textContent,
    steps: [...document.querySelectorAll('#checks-body tr')].map((tr) => `${tr.dataset.check}:${tr.dataset.ok}`),
  }));
}

export async function run(ctx) {
  const { base, root, dir, state, newPage, screen, assert } = ctx;
  const p = state.preservation;
  assert(p?.bundlePath && p.trustPath, 'needs the preservation-anchored flow first (its downloaded bundle and trust file)');
  const page = await newPage();
  await page.goto(`${base}/`);
  await page.getByRole('link', { name: '司法核验页面' }).click();
  await page.waitForURL(/\/verify\/$/);
  const resp = await page.reload();
  assert(resp.status() === 200 && /sha256-/.test(resp.headers()['content-security-policy'] ?? ''), 'the verification page is served under its own policy');
  await screen(page, 'court-page');

  // Valid: the evidence file and its downloaded bundle, against the deployment's trust file.
  let r = await judge(page, { policy: p.trustPath, evidence: p.path, bundle: p.bundlePath });
  assert(r.verdict === 'VALID', `valid bundle: ${JSON.stringify(r)}`);
  assert(r.steps.every((s) => s.endsWith(':true')) && r.steps.some((s) => s.startsWith('anchor_receipt')), `every check listed and passed: ${r.steps}`);
  await screen(page, 'court-page-valid');

  // Tampered evidence: one byte more.
  const tampered = join(dir, 'tampered-evidence.txt');
  writeFileSync(tampered, Buffer.concat([readFileSync(p.path), Buffer.from(' ')]));
  await page.goto(`${base}/verify/`);
  r = await judge(page, { policy: p.trustPath, evidence: tampered, bundle: p.bundlePath });
  assert(r.verdict === 'INVALID' && r.check === 'evidence_mismatch', `tampered evidence: ${JSON.stringify(r)}`);
  await screen(page, 'court-page-tampered-evidence');

  // Tampered bundle: the entry moved to another leaf index (its audit path no longer fits).
  const b = JSON.parse(readFileSync(p.bundlePath, 'utf8'));
  const doctored = JSON.stringify(b).replace(/"leaf_index":(\d+)/, (_, n) => `"leaf_index":${Number(n) + 1}`);
  assert(doctored !== JSON.stringify(b), 'the bundle has a leaf_index to change');
  const tamperedBundle = join(dir, 'tampered-bundle.json');
  writeFileSync(tamperedBundle, doctored);
  await page.goto(`${base}/verify/`);
  r = await judge(page, { policy: p.trustPath, evidence: p.path, bundle: tamperedBundle });
  assert(r.verdict === 'INVALID', `tampered bundle: ${JSON.stringify(r)}`);
  await screen(page, 'court-page-tampered-bundle');

  // Untrusted: another deployment's trust file (the corpus's) does not know this sealer.
  await page.goto(`${base}/verify/`);
  r = await judge(page, { policy: join(root, 'testdata/bundles/trust-policy.toml'), evidence: p.path, bundle: p.bundlePath });
  assert(r.verdict === 'UNTRUSTED', `untrusted: ${JSON.stringify(r)}`);
  await screen(page, 'court-page-untrusted');

  // Fetch by typed hash, same origin.
  await page.goto(`${base}/verify/`);
  await page.setInputFiles('#policy-file', p.trustPath);
  await page.fill('#hash', p.evidenceHash);
  assert((await page.inputValue('#bundle-url')) === `/v1/proofs/${p.evidenceHash}`, 'the proof URL follows the typed hash');
  const [answer] = await Promise.all([page.waitForResponse((x) => x.url() === `${base}/v1/proofs/${p.evidenceHash}`), page.click('#fetch')]);
  assert(answer.status() === 200, `the same-origin proof route answers 200: ${answer.status()}`);
  await page.waitForFunction(() => document.getElementById('bundle-name').textContent.includes('/v1/proofs/'));
  r = await judge(page, {});
  assert(r.verdict === 'VALID', `fetched by hash: ${JSON.stringify(r)}`);
  await screen(page, 'court-page-fetched-by-hash');
  await page.context().close();
}
