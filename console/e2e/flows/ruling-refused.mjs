// A ruling request refused with a reason, through the UI: the bank's user applies
// to the court (case description and purpose, required for a ruling); the court
// refuses it with a reason from its queue; the applicant sees the request refused
// and the court's reason. English is a click away.
import { apply, send } from './judicial-common.mjs';

const REASON = '申请材料不足：未提供借款人身份证明，不予受理';

export async function run(ctx) {
  const { base, state, pw, newPage, uiLogin, uiLogout, screen, assert } = ctx;
  assert(state.preservation, 'needs the preservation-anchored flow first');
  let page = await newPage();
  await uiLogin(page, 'alice', pw('alice'));
  const dlg = await apply(page, { base, kind: 'ruling', subjectId: state.preservation.id, institution: '杭州互联网法院', caseDescription: '借款人逾期未还款，申请司法裁决', purpose: 'civil_litigation' });
  const rid = await send(page, dlg);
  await page.locator('[data-status="pending"]').first().waitFor();
  const number = (await page.locator('.ant-card-head-title').first().textContent()).match(/\S+/)[0];
  await uiLogout(page);

  page = await newPage();
  await uiLogin(page, 'judge', pw('judge'));
  await page.getByText(number).first().waitFor();
  await screen(page, 'court-queue');
  await page.getByRole('link', { name: number }).click();
  await page.waitForURL(new RegExp(`/judicial/${rid}$`));
  await page.getByRole('button', { name: /拒\s*绝/ }).click();
  await page.getByRole('dialog').locator('#reason').fill(REASON);
  await page.getByRole('dialog').getByRole('button', { name: /拒\s*绝/ }).click();
  await page.locator('[data-status="refused"]').first().waitFor();
  await screen(page, 'court-refused');
  await uiLogout(page);

  page = await newPage();
  await uiLogin(page, 'alice', pw('alice'));
  await page.goto(`${base}/judicial`);
  await page.getByRole('link', { name: number }).waitFor();
  await page.getByRole('link', { name: number }).click();
  await page.locator('[data-status="refused"]').first().waitFor();
  await page.getByText(REASON).first().waitFor();
  assert(!(await page.getByRole('button', { name: /拒\s*绝/ }).count()), 'the applicant cannot act on a refused request');
  await screen(page, 'user-ruling-refused');
  // English is a click away.
  await page.getByRole('button', { name: 'English' }).click();
  await page.getByText('Sign out').waitFor();
  await page.getByText(REASON).first().waitFor();
  await screen(page, 'user-ruling-refused-english');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.locator('#username').waitFor();
  await page.context().close();
}
