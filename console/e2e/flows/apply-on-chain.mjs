// 申请上链 (H20): a saved preservation with its file, made through the API, is
// sent on its way to the chain from its detail page by the manual's action; it
// then waits for the bank's reviewer (submitted).
export async function run(ctx) {
  const { base, pw, login, call, product, newPage, uiLogin, uiLogout, screen, assert } = ctx;
  const alice = await login('alice', pw('alice'));
  const p = await call('POST', '/v1/preservations', alice, { product_id: product.id, fields: { borrower: '赵六', amount: '5000' } });
  const form = new FormData();
  form.append('file', new Blob([`申请上链 ${Date.now()}\n`]), '申请上链.txt');
  const up = await fetch(`${base}/v1/preservations/${p.id}/file`, { method: 'PUT', headers: { authorization: `Bearer ${alice}` }, body: form });
  assert(up.ok, `upload: ${up.status} ${await up.text()}`);
  const page = await newPage();
  await uiLogin(page, 'alice', pw('alice'));
  await page.goto(`${base}/preservations/${p.id}`);
  await page.locator('[data-status="saved"]').first().waitFor();
  await screen(page, 'user-preservation-saved');
  await page.getByRole('button', { name: '申请上链' }).click();
  await page.locator('[data-status="submitted"]').first().waitFor();
  assert(!(await page.getByRole('button', { name: '申请上链' }).count()), 'the action is gone once submitted');
  assert((await call('GET', `/v1/preservations/${p.id}`, alice)).status === 'submitted', 'submitted on the server');
  await uiLogout(page);
}
