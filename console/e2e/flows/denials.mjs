// A user of another bank cannot open a bank's preservation by URL (the record
// preservation-anchored left in ctx.state).
export async function run({ base, state, pw, newPage, uiLogin, uiLogout, screen, assert }) {
  assert(state.preservation, 'needs the preservation-anchored flow first');
  const page = await newPage();
  await uiLogin(page, 'bob', pw('bob'));
  await page.goto(`${base}/preservations/${state.preservation.id}`);
  await page.getByRole('alert').first().waitFor();
  assert(!(await page.getByText(state.preservation.file).count()), 'bank-b cannot see bank-a records');
  assert(!(await page.getByText(state.preservation.number).count()), 'bank-b does not see the record number');
  await screen(page, 'denied-other-bank');
  await uiLogout(page);
}
