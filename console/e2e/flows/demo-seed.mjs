// scripts/demo's console seeding (scripts/demo-console seed) against this server:
// a product, a preservation on chain, a three-party contract and a judicial
// request; then its accounts work in the browser: the seeded contract's last
// signer signs it; the notary compares the seeded request's preserved file.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export async function run({ base, root, dir, newPage, uiLogin, uiLogout, screen }) {
  execFileSync(join(root, 'scripts/demo-console'), ['seed', base, join(dir, 'admin.password'), join(dir, 'accounts.txt')], {
    env: { ...process.env, DEMO_BANK: 'bank-a' },
    stdio: 'inherit',
  });
  const seeded = Object.fromEntries(
    readFileSync(join(dir, 'accounts.txt'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' ').slice(1, 3)),
  );
  let page = await newPage();
  await uiLogin(page, 'li.si', seeded['li.si']);
  await page.goto(`${base}/contracts`);
  await page.getByText('张三借款合同（三方）').first().waitFor();
  await screen(page, 'demo-contracts');
  await page.getByText('张三借款合同（三方）').first().waitFor();
  await page.getByRole('row', { name: /张三借款合同（三方）/ }).getByRole('link', { name: /^HT/ }).click();
  await page.getByRole('button', { name: /^签\s*署$/ }).click();
  await page.locator('[data-status="awaiting_review"]').first().waitFor();
  await screen(page, 'demo-contract-signed-by-all');
  await uiLogout(page);
  page = await newPage();
  await uiLogin(page, 'notary', seeded.notary);
  await page.getByRole('link', { name: /^SF/ }).first().click();
  await page.getByRole('button', { name: '比对保全文件' }).click();
  await page.getByText('结果一致，数据未篡改').first().waitFor();
  await page.getByText('下载比对报告').first().waitFor();
  await screen(page, 'demo-notary-comparison');
  await uiLogout(page);
}
