// The administrator's other screens (H20): contract types (a template with its
// placeholders), webhooks (register, the secret shown once, the delivery log,
// disable, delete), the system log (the chain's events); a reviewer's own
// bank's webhooks.
export async function run(ctx) {
  const { base, adminPassword, pw, login, call, newPage, uiLogin, uiLogout, screen, assert } = ctx;
  const admin = await login('admin', adminPassword);
  const page = await newPage();
  await uiLogin(page, 'admin', adminPassword);

  // Contract types.
  const typeName = `租赁合同 ${Date.now()}`;
  await page.goto(`${base}/admin/contract-types`);
  await page.getByRole('button', { name: /新\s*建/ }).click();
  let dlg = page.getByRole('dialog');
  await dlg.locator('#name').fill(typeName);
  await dlg.locator('#template_text').fill('出租人{{lessor}}将房屋出租给{{ 承租人 }}，月租金{{rent}}元。');
  await dlg.getByText('承租人', { exact: true }).waitFor();
  await dlg.getByRole('button', { name: /保\s*存/ }).click();
  await dlg.waitFor({ state: 'detached' });
  await page.getByText('月租金{{rent}}元', { exact: false }).waitFor();
  await screen(page, 'admin-contract-types');
  const types = await call('GET', '/v1/contract-types', admin);
  const ct = types.find((x) => x.name === typeName);
  assert(ct && JSON.stringify([...ct.variables].sort()) === JSON.stringify(['lessor', 'rent', '承租人'].sort()), `the type and its placeholders: ${JSON.stringify(ct)}`);

  // Webhooks: register (an address of the public internet; nothing is delivered in
  // this run, deliveries fail or wait), the secret once, the log, disable, delete.
  const url = `https://93.184.216.34/anchord-e2e-${Date.now()}`;
  await page.goto(`${base}/webhooks`);
  await page.getByRole('button', { name: '新建回调' }).click();
  dlg = page.getByRole('dialog');
  await dlg.locator('#url').fill(url);
  await dlg.getByRole('button', { name: /保\s*存/ }).click();
  const created = page.getByRole('dialog', { name: '回调已创建' });
  await created.waitFor();
  const secret = (await created.locator('.anchord-mono').textContent()).trim();
  assert(secret.length >= 16, `the secret is shown once: ${secret}`);
  await created.getByRole('button', { name: /确\s*定|OK/ }).click();
  const row = page.getByRole('row').filter({ hasText: url });
  await row.waitFor();
  await screen(page, 'admin-webhooks');
  await row.getByRole('button', { name: '投递记录' }).click();
  await page.getByText(`投递记录 · ${url}`).waitFor();
  await row.getByRole('button', { name: '禁用' }).click();
  await row.getByRole('button', { name: '启用' }).waitFor();
  const hooks = await call('GET', '/v1/webhooks', admin);
  const h = hooks.find((x) => x.url === url);
  assert(h && h.enabled === false && !h.secret, `disabled, and the list holds no secret: ${JSON.stringify(h)}`);
  await row.getByRole('button', { name: /删\s*除/ }).click();
  await page.locator('.ant-popconfirm').getByRole('button', { name: /删\s*除/ }).click();
  await row.waitFor({ state: 'detached' });
  assert(!(await call('GET', '/v1/webhooks', admin)).some((x) => x.url === url), 'deleted');

  // An organisation renamed (its kind and tenant stay).
  await page.goto(`${base}/admin/users`);
  const orgs = await call('GET', '/v1/organisations', admin);
  const bankB = orgs.find((o) => o.tenant === 'bank-b');
  assert(bankB, `bank-b's organisation exists: ${JSON.stringify(orgs)}`);
  await page.getByRole('button', { name: `编辑 ${bankB.name}`, exact: true }).click();
  dlg = page.getByRole('dialog');
  await dlg.locator('#name').fill('乙银行');
  await dlg.getByRole('button', { name: /保\s*存/ }).click();
  await dlg.waitFor({ state: 'detached' });
  await page.getByRole('cell', { name: '乙银行', exact: true }).waitFor();
  const renamed = (await call('GET', '/v1/organisations', admin)).find((o) => o.id === bankB.id);
  assert(renamed.name === '乙银行' && renamed.tenant === 'bank-b', `renamed: ${JSON.stringify(renamed)}`);
  // Its users only.
  await page.getByRole('button', { name: '用户 乙银行', exact: true }).click();
  await page.getByRole('cell', { name: 'bob', exact: true }).waitFor();
  assert(!(await page.getByRole('cell', { name: 'alice', exact: true }).count()), 'only bank-b users are listed');
  await screen(page, 'admin-organisation-users');

  // The system log: the chain's events (earlier flows sealed blocks).
  await page.goto(`${base}/admin/system-log`);
  await page.locator('.ant-table-row').first().waitFor();
  await page.getByRole('cell', { name: '区块封装' }).first().waitFor();
  await screen(page, 'admin-system-log');
  await uiLogout(page);

  // A reviewer sees the webhooks screen of their own bank.
  const rp = await newPage();
  await uiLogin(rp, 'rita', pw('rita'));
  await rp.goto(`${base}/webhooks`);
  await rp.getByRole('button', { name: '新建回调' }).waitFor();
  await screen(rp, 'reviewer-webhooks');
  await uiLogout(rp);
}
