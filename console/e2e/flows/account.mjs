// Accounts (H20): the administrator edits a user (name, e-mail), resets their
// password with a forced change; the user signs in and sees only the change screen
// (every route answers 403 password_change_required) until they change it; then
// sets their e-mail notifications and makes a browser-held signing key on the
// account page; the administrator revokes their sessions and the user's open page
// falls back to the login page.
export async function run(ctx) {
  const { base, adminPassword, pw, login, call, newPage, uiLogin, uiLogout, screen, download, waitFor, assert } = ctx;
  const admin = await login('admin', adminPassword);
  const name = `dave${Date.now().toString(36)}`;
  const u = await call('POST', '/v1/users', admin, { username: name, password: pw(name), role: 'user', tenant: 'bank-a' });
  const reset = `${pw(name)}-reset-7Qx`;
  const fresh = `${pw(name)}-mine-K2v`;

  // 1. The administrator: edit, then reset with a forced change.
  let ap = await newPage();
  await uiLogin(ap, 'admin', adminPassword);
  await ap.goto(`${base}/admin/users`);
  await ap.getByRole('button', { name: `编辑 ${name}` }).click();
  let dlg = ap.getByRole('dialog');
  await dlg.locator('#display_name').fill('戴夫');
  await dlg.locator('#email').fill(`${name}@example.com`);
  await screen(ap, 'admin-user-edit');
  await dlg.getByRole('button', { name: /保\s*存/ }).click();
  await dlg.waitFor({ state: 'detached' });
  await ap.getByRole('cell', { name: '戴夫' }).waitFor();
  const listed = (await call('GET', '/v1/users?limit=1000', admin)).find((x) => x.id === u.id);
  assert(listed.display_name === '戴夫' && listed.email === `${name}@example.com`, `the edit reached the server: ${JSON.stringify(listed)}`);
  await ap.getByRole('button', { name: `重置密码 ${name}` }).click();
  dlg = ap.getByRole('dialog');
  await dlg.locator('#new_password').fill(reset);
  await dlg.getByRole('button', { name: /保\s*存/ }).click();
  await dlg.waitFor({ state: 'detached' });
  await ap.getByText('待改密码').first().waitFor();
  await screen(ap, 'admin-users-reset');

  // 2. The user: only the change screen until the password is changed.
  const page = await newPage();
  await page.goto(`${base}/`);
  await page.locator('#username').fill(name);
  await page.locator('#password').fill(reset);
  await page.getByRole('button', { name: /登\s*录/ }).click();
  await page.getByText('管理员已重置您的密码').waitFor();
  await page.goto(`${base}/preservations`);
  await page.getByText('管理员已重置您的密码').waitFor();
  assert(!(await page.getByRole('menu').count()), 'no menu before the password is changed');
  await screen(page, 'forced-password-change');
  await page.locator('#current_password').fill(reset);
  await page.locator('#new_password').fill(fresh);
  await page.locator('#confirm').fill(`${fresh}x`);
  await page.getByRole('button', { name: '修改密码' }).click();
  await page.getByText('两次输入的密码不一致').waitFor();
  await page.locator('#confirm').fill(fresh);
  await page.getByRole('button', { name: '修改密码' }).click();
  await page.getByRole('menu').waitFor();
  assert((await call('GET', '/v1/preservations', await login(name, fresh))) !== null, 'the new password works on every route');

  // 3. The account page: e-mail notifications, the browser-held key.
  await page.getByRole('link', { name: new RegExp(name) }).click();
  await page.waitForURL(/\/account$/);
  const notes = page.locator('.ant-card').filter({ hasText: '邮件通知' });
  await notes.locator('#email').fill(`${name}@example.org`);
  const boxes = notes.getByRole('checkbox');
  assert((await boxes.count()) >= 6, 'every notification kind is listed');
  await boxes.first().uncheck();
  await notes.getByRole('button', { name: /保\s*存/ }).click();
  await page.getByText('已保存').first().waitFor();
  const n = await call('GET', '/v1/me/notifications', await login(name, fresh));
  const off = Object.entries(n.events).filter(([, on]) => !on);
  assert(n.email === `${name}@example.org` && off.length === 1, `the preferences were saved: ${JSON.stringify(n)}`);
  await page.getByRole('button', { name: '生成新密钥', exact: true }).click();
  await page.getByText('已登记').waitFor();
  await page.getByText(/^SHA256:[0-9a-f]{64}$/).waitFor();
  await screen(page, 'user-account');
  // A key with a backup file: the file holds the seed and names the public key;
  // removed from the browser, then imported from the file, it is the same key,
  // registered again (proof of possession).
  const keyCard = page.locator('.ant-card').filter({ hasText: '本浏览器的签名密钥' });
  const pubOf = async () => (await keyCard.locator('.ant-descriptions-item-content .anchord-mono').first().textContent()).trim();
  const first = await pubOf();
  const backup = await download(page, keyCard.getByRole('button', { name: '生成新密钥并下载备份' }));
  const text = backup.bytes.toString('utf8');
  await waitFor('the new key shown', async () => (await pubOf()) !== first, 15000);
  await keyCard.getByText('已登记').waitFor();
  const second = await pubOf();
  assert(second !== first && text.includes(`# public key ${second}\n`) && /^[0-9a-f]{64}$/m.test(text), `the backup file names the new key: ${backup.name}`);
  await keyCard.getByRole('button', { name: '从本浏览器删除' }).click();
  await keyCard.getByText('本浏览器中还没有签名密钥').waitFor();
  await keyCard.locator('input[type=file]').setInputFiles(backup.path);
  await keyCard.getByText(second).waitFor();
  await keyCard.getByText('已登记').waitFor();
  // A file that is no key is refused with a message, and the key stays.
  const bad = backup.path.replace(/[^/]+$/, 'not-a-key.txt');
  (await import('node:fs')).writeFileSync(bad, 'hello\n');
  await keyCard.locator('input[type=file]').setInputFiles(bad);
  await keyCard.getByText('不是有效的密钥文件').waitFor();
  assert((await pubOf()) === second, 'the key stays after a bad file');

  // 4. An organisation's administrator (org_admin) manages its users only.
  const bankA = (await call('GET', '/v1/organisations', admin)).find((o) => o.tenant === 'bank-a');
  const oa = `oa${Date.now().toString(36)}`;
  await call('POST', '/v1/users', admin, { username: oa, password: pw(oa), role: 'org_admin', organisation_id: bankA.id });
  const op = await newPage();
  await uiLogin(op, oa, pw(oa));
  await op.waitForURL(/\/org\/users$/);
  await op.getByText('本机构').first().waitFor();
  await op.getByRole('cell', { name: 'alice', exact: true }).waitFor();
  assert(!(await op.getByRole('cell', { name: 'bob', exact: true }).count()), 'another bank\'s users are not listed');
  assert(!(await op.getByText('组织机构').count()), 'no organisations card for an org_admin');
  const hired = `eve${Date.now().toString(36)}`;
  await op.getByRole('button', { name: '新建用户' }).click();
  const od = op.getByRole('dialog');
  await od.locator('#username').fill(hired);
  await od.locator('#password').fill(pw(hired));
  await od.getByRole('button', { name: /保\s*存/ }).click();
  await od.waitFor({ state: 'detached' });
  await op.getByRole('cell', { name: hired, exact: true }).waitFor();
  await screen(op, 'org-admin-users');
  const made = (await call('GET', '/v1/users?limit=1000', admin)).find((x) => x.username === hired);
  assert(made && made.tenant === 'bank-a' && made.role === 'user', `created in the org_admin's bank: ${JSON.stringify(made)}`);
  await uiLogout(op);

  // 5. The administrator revokes the user's sessions: their page falls back to login.
  await ap.goto(`${base}/admin/users`);
  await ap.getByRole('button', { name: `注销会话 ${name}` }).click();
  await ap.locator('.ant-popconfirm').getByRole('button', { name: /注销会话/ }).click();
  await ap.getByText(/已注销会话数: [1-9]/).waitFor();
  await uiLogout(ap);
  await page.goto(`${base}/preservations`);
  await page.locator('#username').waitFor();
  await page.context().close();
}
