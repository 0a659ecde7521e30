// A three-party cross-organisation contract, through the UI: a bank-a user starts
// it (发起邀约) from a contract type, naming herself, a user of another bank
// (bank-b, "其他机构用户") and an outside party invited by e-mail; the one-time
// link is shown once. Each party signs in their own session: alice with a key made
// and kept in her browser, bob (the other bank) with a key the platform holds, the
// invitee (no account before) opens the link, registers and signs with a key kept
// in their browser. Then bank-a's reviewer approves it and it goes on chain.
// (H20's invitation flow covers the invitation page itself: used and malformed
// links, the key's custody in IndexedDB.)

import { choose } from '../select.mjs';

const SIGN = /^签\s*署$/;

export async function run(ctx) {
  const { base, adminPassword, pw, login, call, newPage, uiLogin, uiLogout, screen, assert } = ctx;
  const admin = await login('admin', adminPassword);
  await call('POST', '/v1/contract-types', admin, {
    name: '三方借款担保合同',
    template_text: '借款人{{borrower}}向贷款人借款人民币{{amount}}元，担保人{{guarantor}}承担连带保证责任。',
  });
  const title = '张三借款担保合同（跨机构三方）';
  const email = `guarantor.${ctx.run}@example.com`;
  let page = await newPage();
  await uiLogin(page, 'alice', pw('alice'));
  await page.goto(`${base}/contracts`);
  await page.getByRole('button', { name: '发起邀约' }).click();
  const dlg = page.getByRole('dialog');
  await choose(page, dlg, 'contract-type', '三方借款担保合同');
  await dlg.locator('#title').fill(title);
  await dlg.locator('#variables_borrower').fill('张三');
  await dlg.locator('#variables_amount').fill('300000');
  await dlg.locator('#variables_guarantor').fill('王五');
  await dlg.locator('#signers_0_username').fill('alice');
  await dlg.getByRole('button', { name: '添加签署方' }).click();
  await choose(page, dlg, 'signers_1_kind', '其他机构用户');
  await dlg.locator('#signers_1_organisation').fill('bank-b');
  await dlg.locator('#signers_1_username').fill('bob');
  await dlg.getByRole('button', { name: '添加签署方' }).click();
  await choose(page, dlg, 'signers_2_kind', '邮箱邀请');
  await dlg.locator('#signers_2_contact').fill(email);
  await screen(page, 'user-contract-new-cross-org');
  await dlg.getByRole('button', { name: /新\s*建/ }).click();
  const links = page.getByRole('dialog', { name: '邀请链接' });
  await links.waitFor();
  const link = (await links.locator('.anchord-invitation-link .anchord-mono').first().textContent()).trim();
  assert(new RegExp(`^${base}/invitation#token=[0-9a-f]{64}$`).test(link), `an invitation link for the outside party: ${link}`);
  await links.getByRole('button', { name: /确\s*定|OK/ }).click();
  await page.waitForURL(/\/contracts\/\d+$/);
  const cid = Number(page.url().split('/').pop());
  await page.locator('[data-status="signing"]').first().waitFor();
  await page.getByText('bank-b').first().waitFor();
  // alice: a key made and kept in this browser (registered on first use).
  await page.getByRole('button', { name: SIGN }).click();
  await page.locator('[data-status="signed"]').first().waitFor();
  await screen(page, 'user-contract-signed-first');
  await uiLogout(page);

  // bob, of the other bank: sees it in his list, lets the platform hold his key.
  page = await newPage();
  await uiLogin(page, 'bob', pw('bob'));
  await page.goto(`${base}/contracts`);
  await page.getByRole('link', { name: /^HT/ }).first().click();
  await page.waitForURL(new RegExp(`/contracts/${cid}$`));
  await page.getByText(title).first().waitFor();
  await screen(page, 'other-bank-signer-contract');
  await page.getByRole('button', { name: '由平台代签' }).click();
  await page.getByRole('button', { name: '由平台代签' }).waitFor({ state: 'detached' });
  await uiLogout(page);

  // The outside party: the link, no session; registers and signs in the browser.
  page = await newPage();
  await page.goto(link);
  await page.getByText(title).first().waitFor();
  await page.locator('#invite-register_username').fill('guarantor.wang');
  await page.locator('#invite-register_password').fill(pw('guarantor.wang'));
  await page.locator('#invite-register_confirm').fill(pw('guarantor.wang'));
  await page.keyboard.press('Enter');
  await page.waitForURL(new RegExp(`/contracts/${cid}$`));
  await page.getByRole('button', { name: SIGN }).click();
  await page.locator('.ant-card-head-title [data-status="awaiting_review"]').first().waitFor();
  await screen(page, 'invitee-signed-last');
  await uiLogout(page);

  page = await newPage();
  await uiLogin(page, 'rita', pw('rita'));
  await page.goto(`${base}/contracts/${cid}`);
  await page.locator('[data-status="awaiting_review"]').first().waitFor();
  const rita = await login('rita', pw('rita'));
  const c = await call('GET', `/v1/contracts/${cid}`, rita);
  assert(c.signers.length === 3 && c.signers.every((s) => s.status === 'signed'), `all three signed: ${JSON.stringify(c.signers)}`);
  assert(c.signers.map((s) => s.custody).join() === 'client,platform,client', `custody: ${c.signers.map((s) => s.custody)}`);
  assert(c.signers.map((s) => s.username).join() === 'alice,bob,guarantor.wang', `signers: ${c.signers.map((s) => s.username)}`);
  await screen(page, 'reviewer-contract-signed-by-all');
  await page.getByRole('button', { name: /通\s*过/ }).click();
  await page.locator('[data-status="approved"], [data-status="on_chain"]').first().waitFor();
  // The contract page does not refresh itself after approval: wait for the
  // ledger through the API, then reload.
  const deadline = Date.now() + 120000;
  while ((await call('GET', `/v1/contracts/${cid}`, rita)).status !== 'on_chain') {
    assert(Date.now() < deadline, 'the contract went on chain within 120 s');
    await page.waitForTimeout(500);
  }
  await page.reload();
  await page.locator('.ant-card-head-title [data-status="on_chain"]').first().waitFor();
  await screen(page, 'reviewer-contract-on-chain');
  await uiLogout(page);
}
