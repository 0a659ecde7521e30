// A three-party contract across organisations, through the UI: a bank-a user
// starts it (发起邀约) from a contract type, naming a colleague and a user of
// another bank (bank-b) as the other signers; each of the three signs in their
// own session (the platform holds the keys); the other bank's signer sees the
// contract; then bank-a's reviewer approves it and it goes on chain.
// (An outside party invited by e-mail would be the fuller case; the console has no
// invitation page yet, so the third party is another bank's user.)
export async function run(ctx) {
  const { base, adminPassword, pw, login, call, newPage, uiLogin, uiLogout, screen, assert } = ctx;
  const admin = await login('admin', adminPassword);
  await call('POST', '/v1/contract-types', admin, {
    name: '三方借款担保合同',
    template_text: '借款人{{borrower}}向贷款人借款人民币{{amount}}元，担保人{{guarantor}}承担连带保证责任。',
  });
  const title = '张三借款担保合同（跨机构三方）';
  let page = await newPage();
  await uiLogin(page, 'alice', pw('alice'));
  await page.goto(`${base}/contracts`);
  await page.getByRole('button', { name: '发起邀约' }).click();
  const dlg = page.getByRole('dialog');
  await dlg.locator('#contract-type').click();
  await page.locator('.ant-select-dropdown:visible').getByTitle('三方借款担保合同', { exact: true }).click();
  await dlg.locator('#title').fill(title);
  await dlg.locator('#variables_borrower').fill('张三');
  await dlg.locator('#variables_amount').fill('300000');
  await dlg.locator('#variables_guarantor').fill('乙银行担保部');
  await dlg.locator('#signers').fill('alice, carol, bob');
  await screen(page, 'user-contract-new');
  await dlg.getByRole('button', { name: /新\s*建/ }).click();
  await page.waitForURL(/\/contracts\/\d+$/);
  const cid = Number(page.url().split('/').pop());
  await page.locator('[data-status="signing"]').first().waitFor();
  await page.getByRole('button', { name: /签\s*署/ }).click();
  await page.locator('[data-status="on_chain"]').first().waitFor(); // alice's row: signed
  await screen(page, 'user-contract-signed-first');
  await uiLogout(page);
  for (const [user, shot] of [
    ['carol', null],
    ['bob', 'other-bank-signer-contract'],
  ]) {
    page = await newPage();
    await uiLogin(page, user, pw(user));
    await page.goto(`${base}/contracts`);
    await page.getByText(title).first().waitFor();
    await page.getByRole('link', { name: /^HT/ }).first().click();
    await page.waitForURL(new RegExp(`/contracts/${cid}$`));
    await page.getByText('乙银行担保部').first().waitFor();
    if (shot) await screen(page, shot);
    await page.getByRole('button', { name: /签\s*署/ }).click();
    await page.getByRole('button', { name: /签\s*署/ }).waitFor({ state: 'detached' });
    await uiLogout(page);
  }
  page = await newPage();
  await uiLogin(page, 'rita', pw('rita'));
  await page.goto(`${base}/contracts/${cid}`);
  await page.locator('[data-status="awaiting_review"]').first().waitFor();
  const c = await call('GET', `/v1/contracts/${cid}`, await login('rita', pw('rita')));
  assert(c.signers.length === 3 && c.signers.every((s) => s.status === 'signed'), `all three signed: ${JSON.stringify(c.signers)}`);
  await screen(page, 'reviewer-contract-signed-by-all');
  await page.getByRole('button', { name: /通\s*过/ }).click();
  await page.locator('[data-status="approved"], [data-status="on_chain"]').first().waitFor();
  await page.locator('.ant-card-head-title [data-status="on_chain"]').first().waitFor({ timeout: 120000 });
  await screen(page, 'reviewer-contract-on-chain');
  await uiLogout(page);
}
