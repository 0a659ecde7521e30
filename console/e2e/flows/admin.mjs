/* global document -- page.evaluate callbacks run in the browser */
// The login page, the session cookie, and the administrator's screens: the
// product's field-template editor (a field added, the preview shows it), users,
// monitoring, the audit log.
export async function run({ base, adminPassword, newPage, uiLogin, uiLogout, screen, assert }) {
  const page = await newPage();
  await page.goto(`${base}/`);
  await page.locator('#username').waitFor();
  const cookieJs = await page.evaluate(() => document.cookie);
  await screen(page, 'login');
  await uiLogin(page, 'admin', adminPassword);
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === '__Host-anchord_session');
  assert(session && session.httpOnly && session.sameSite === 'Strict' && session.secure && session.path === '/', `the session cookie is __Host-, HttpOnly, Secure and SameSite=Strict: ${JSON.stringify(cookies)}`);
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
}
