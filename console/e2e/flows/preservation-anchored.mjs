/* global document, window, MutationObserver -- page.evaluate callbacks run in the browser */
// A preservation from upload to anchored, through the UI: the bank's user fills
// the product's form and uploads the file; the reviewer approves it from the to-do
// inbox; on the user's detail page, left open and never reloaded, the status
// moves from submitted to on chain (sealed in a block: the relay is not running
// yet, so no anchor can exist) and, once the relay is started, to anchored
// (receipt from the judicial-chain simulator). Then the user downloads the proof
// bundle and the preservation certificate: the PDF is a PDF; the bundle verifies
// VALID against the deployment's exported trust file with the evidence file, with
// `anchord verify` and with console/verify's independent CLI, and INVALID with
// a changed file.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const ORDER = ['saved', 'submitted', 'approved', 'on_chain', 'anchored'];

export async function run(ctx) {
  const { base, dir, run, state, pw, login, call, newPage, uiLogin, uiLogout, screen, download, anchord, startRelay, assert } = ctx;
  // 1. The user: a new preservation from the product's template, the file uploaded.
  let page = await newPage();
  await uiLogin(page, 'alice', pw('alice'));
  await page.goto(`${base}/preservations/new`);
  await page.locator('#product').click();
  await page.getByTitle('借款合同保全').click();
  await page.locator('#borrower').fill('张三');
  await page.locator('#amount').fill('100000');
  // The field the admin flow added to the template (absent when that flow did not run).
  if (await page.locator('#contract_no').count()) await page.locator('#contract_no').fill('HT-2026-001');
  await screen(page, 'user-new-preservation');
  await page.getByRole('button', { name: /保\s*存/ }).click();
  const fileName = '借款合同.txt';
  const file = join(dir, fileName);
  const content = Buffer.from(`借款合同 ${run}\n`.repeat(200));
  writeFileSync(file, content);
  const sha256 = createHash('sha256').update(content).digest('hex');
  await page.locator('input[type=file]').setInputFiles(file);
  await page.getByRole('button', { name: '提交审核' }).click();
  await page.waitForURL(/\/preservations\/\d+$/);
  const pid = Number(page.url().split('/').pop());
  await page.locator('[data-status="submitted"]').first().waitFor();
  await page.getByText(sha256).first().waitFor();
  await screen(page, 'user-preservation-submitted');
  const alice = await login('alice', pw('alice'));
  const number = (await call('GET', `/v1/preservations/${pid}`, alice)).number;
  state.preservation = { id: pid, number, file: fileName, path: file, evidenceHash: sha256 };
  await page.goto(`${base}/preservations`);
  await page.getByText(fileName).first().waitFor();
  await screen(page, 'user-preservation-list');
  // The detail page stays open from here on: every status it shows is recorded.
  await page.goto(`${base}/preservations/${pid}`);
  await page.locator('[data-status="submitted"]').first().waitFor();
  const navigations = [];
  page.on('framenavigated', (f) => f === page.mainFrame() && navigations.push(f.url()));
  await page.evaluate(() => {
    const seen = (window.__e2eStatuses = []);
    const note = () => {
      const s = document.querySelector('[data-status]')?.getAttribute('data-status');
      if (s && seen.at(-1) !== s) seen.push(s);
    };
    note();
    new MutationObserver(note).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-status'] });
  });

  // 2. The reviewer: the to-do inbox, approve.
  const rp = await newPage();
  await uiLogin(rp, 'rita', pw('rita'));
  await rp.waitForURL(/\/inbox$/);
  await rp.getByText(fileName).first().waitFor();
  await screen(rp, 'reviewer-inbox');
  await rp.goto(`${base}/preservations/${pid}`);
  await rp.getByRole('button', { name: /通\s*过/ }).click();
  await rp.locator('[data-status="approved"], [data-status="on_chain"]').first().waitFor();
  await screen(rp, 'reviewer-preservation-approved');
  await uiLogout(rp);

  // 3. On the user's page: on chain, no anchor yet (no relay runs).
  await page.locator('[data-status="on_chain"]').first().waitFor({ timeout: 120000 });
  await page.getByText(/下载证明包/).first().waitFor();
  await screen(page, 'user-preservation-on-chain');
  const before = await call('GET', `/v1/preservations/${pid}`, alice);
  assert(before.ledger?.anchor_status === 'pending' && before.ledger.anchors.length === 0, `on chain, not anchored yet: ${JSON.stringify(before.ledger)}`);
  // 4. The relay anchors the block's checkpoint on the court's chain: anchored, still no reload.
  await startRelay();
  await page.locator('[data-status="anchored"]').first().waitFor({ timeout: 180000 });
  await page.getByText(/court-sim judicial/).first().waitFor();
  await screen(page, 'user-preservation-anchored');
  const seen = await page.evaluate(() => window.__e2eStatuses);
  assert(navigations.length === 0, `the status moved without a reload: ${navigations}`);
  const idx = seen.map((s) => ORDER.indexOf(s));
  assert(
    seen[0] === 'submitted' && seen.includes('on_chain') && seen.at(-1) === 'anchored' && idx.every((v, i) => v >= 0 && (i === 0 || v > idx[i - 1])),
    `the page showed submitted → on chain → anchored in order: ${seen.join(' → ')}`,
  );
  console.log(`  statuses seen on the open page: ${seen.join(' → ')}`);

  // 5. Downloads: the proof bundle and the certificate.
  const bundle = await download(page, page.getByRole('link', { name: /下载证明包/ }));
  const pdf = await download(page, page.getByRole('link', { name: /下载保全证书/ }));
  assert(pdf.bytes.subarray(0, 5).toString() === '%PDF-' && pdf.bytes.length > 1000, `the certificate is a PDF (${pdf.name}, ${pdf.bytes.length} bytes)`);
  assert(/%%EOF\s*$/.test(pdf.bytes.subarray(-32).toString('latin1')), 'the certificate PDF is complete (%%EOF)');
  const b = JSON.parse(bundle.bytes.toString('utf8'));
  assert(b.entry?.evidence_hash === sha256, `the bundle is the file's: ${b.entry?.evidence_hash} vs ${sha256}`);
  assert(b.anchor?.status === 'anchored' && b.anchor.receipts.length >= 1, `the downloaded bundle is anchored: ${JSON.stringify(b.anchor)}`);
  const trust = join(dir, 'trust.toml');
  const t = anchord(['trust', 'export', '--out', trust]);
  assert(t.code === 0, `anchord trust export: ${t.code} ${t.stderr}`);
  const valid = anchord(['verify', '--trust', trust, '--bundle', bundle.path, '--file', file]);
  assert(valid.code === 0 && /VALID/.test(valid.stdout), `anchord verify says VALID: ${valid.code} ${valid.stdout} ${valid.stderr}`);
  const cli = join(ctx.consoleDir, 'verify/dist/cli.mjs');
  const ts = JSON.parse(execFileSync(process.execPath, [cli, '--bundle', bundle.path, '--trust', trust, '--file', file, '--json'], { encoding: 'utf8' }));
  assert(ts.verdict === 'VALID', `console/verify's CLI says VALID: ${JSON.stringify(ts)}`);
  const changed = join(dir, 'changed.txt');
  writeFileSync(changed, Buffer.concat([content, Buffer.from('\n')]));
  const bad = anchord(['verify', '--trust', trust, '--bundle', bundle.path, '--file', changed]);
  assert(bad.code === 1 && /INVALID/.test(bad.stdout + bad.stderr), `a changed file is INVALID: ${bad.code} ${bad.stdout} ${bad.stderr}`);
  state.preservation = { ...state.preservation, bundlePath: bundle.path, certificatePath: pdf.path, trustPath: trust };
  console.log(`  downloaded ${bundle.name} (VALID with anchord verify and console/verify) and ${pdf.name} (${pdf.bytes.length} bytes)`);
  await uiLogout(page);
}
