// A notarization request from application to issued certificate, through the UI:
// the bank's user applies with the preserved (anchored) file, authorising the
// notary office to read it; the notary opens it from its queue, starts the
// review, runs the automatic comparison of the preserved file ("结果一致，数据未篡改"),
// downloads the comparison report (a PDF), issues the certificate (uploads its
// PDF); the applicant sees it certified and downloads the very same certificate.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { apply, pdf, send } from './judicial-common.mjs';

export async function run(ctx) {
  const { base, dir, state, pw, newPage, uiLogin, uiLogout, screen, download, assert } = ctx;
  assert(state.preservation, 'needs the preservation-anchored flow first');
  // 1. The applicant.
  let page = await newPage();
  await uiLogin(page, 'alice', pw('alice'));
  const dlg = await apply(page, { base, kind: 'notarization', subjectId: state.preservation.id, institution: '上海市公证处', caseDescription: '借款合同纠纷，申请对保全的借款合同出具公证书' });
  await screen(page, 'user-notarization-apply');
  const rid = await send(page, dlg);
  await page.locator('[data-status="pending"]').first().waitFor();
  const number = (await page.locator('.ant-card-head-title').first().textContent()).match(/\S+/)[0];
  await screen(page, 'user-notarization-pending');
  await uiLogout(page);

  // 2. The notary office.
  page = await newPage();
  await uiLogin(page, 'nora', pw('nora'));
  await page.getByText(number).first().waitFor();
  await screen(page, 'notary-queue');
  await page.getByRole('link', { name: number }).click();
  await page.waitForURL(new RegExp(`/judicial/${rid}$`));
  await page.getByRole('button', { name: '开始审查' }).click();
  await page.locator('[data-status="in_review"]').first().waitFor();
  await page.getByRole('button', { name: '比对保全文件' }).click();
  await page.getByText('结果一致，数据未篡改').first().waitFor();
  await page.getByText(state.preservation.evidenceHash).first().waitFor();
  await screen(page, 'notary-comparison-match');
  const report = await download(page, page.getByRole('link', { name: '下载比对报告' }));
  assert(report.bytes.subarray(0, 5).toString() === '%PDF-' && report.bytes.length > 1000, `the comparison report is a PDF (${report.name}, ${report.bytes.length} bytes)`);
  const certificate = pdf(`Notarial certificate ${number}`);
  const certFile = join(dir, `${number}-notarial-certificate.pdf`);
  writeFileSync(certFile, certificate);
  await page.locator('input[type=file][accept="application/pdf"]').setInputFiles(certFile);
  await page.locator('[data-status="certified"]').first().waitFor();
  await screen(page, 'notary-certified');
  await uiLogout(page);

  // 3. The applicant downloads the certificate.
  page = await newPage();
  await uiLogin(page, 'alice', pw('alice'));
  await page.goto(`${base}/judicial/${rid}`);
  await page.locator('[data-status="certified"]').first().waitFor();
  await screen(page, 'user-notarization-certified');
  const got = await download(page, page.getByRole('link', { name: '下载证书' }));
  assert(got.bytes.equals(certificate), `the applicant downloads the certificate the notary issued (${got.bytes.length} vs ${certificate.length} bytes)`);
  console.log(`  ${number}: comparison report ${report.bytes.length} bytes, certificate downloaded by the applicant`);
  await uiLogout(page);
}
