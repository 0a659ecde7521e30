// The combined search (H20), as a bank's user: preservations by the beginning of
// the number in any case, by hash and by initiator; contracts; the on-chain list
// of 司法出证, whose row opens the application form with its subject filled in.
// Needs the preservation on chain of preservation-anchored (state.preservation).
export async function run(ctx) {
  const { base, state, pw, newPage, uiLogin, uiLogout, screen, assert } = ctx;
  const p = state.preservation;
  assert(p, 'search needs the preservation of the preservation-anchored flow (run it first)');
  const page = await newPage();
  await uiLogin(page, 'alice', pw('alice'));
  await page.goto(`${base}/search`);
  const form = page.locator('form[id="preservation-search"]');
  await form.locator('#preservation-search_number').fill(p.number.slice(0, 6).toLowerCase());
  await form.locator('#preservation-search_hash').fill(p.evidenceHash.toUpperCase());
  await form.locator('#preservation-search_initiator').fill('alice');
  await form.getByRole('button', { name: /查\s*询/ }).click();
  await page.getByRole('link', { name: p.number, exact: true }).waitFor();
  await screen(page, 'search-preservations');
  await form.locator('#preservation-search_initiator').fill('nobody-such');
  await form.getByRole('button', { name: /查\s*询/ }).click();
  await page.getByRole('link', { name: p.number, exact: true }).waitFor({ state: 'detached' });
  // A malformed hash is refused in the form, before any request.
  await form.locator('#preservation-search_hash').fill('abc');
  await form.getByRole('button', { name: /查\s*询/ }).click();
  await page.getByText('请输入 64 位十六进制哈希值').waitFor();

  await page.getByRole('tab', { name: '电子合同' }).click();
  await page.locator('#contract-search_number').fill('ht');
  await page.locator('form[id="contract-search"]').getByRole('button', { name: /查\s*询/ }).click();
  await page.locator('.ant-table').first().waitFor();
  await screen(page, 'search-contracts');

  await page.getByRole('tab', { name: '已上链数据（司法出证）' }).click();
  await page.getByRole('link', { name: p.number, exact: true }).waitFor();
  await screen(page, 'search-on-chain');
  await page.getByRole('link', { name: `申请司法出证 ${p.number}` }).click();
  await page.waitForURL(/\/judicial\?apply=preservation:\d+$/);
  const dlg = page.getByRole('dialog');
  assert((await dlg.locator('#subject_id').inputValue()) === String(p.id), 'the form opens with the subject filled in');
  await page.keyboard.press('Escape');
  await uiLogout(page);
}
