// Shared by the judicial flows (not a flow itself): the applicant's 申请司法出证 form.

import { choose } from '../select.mjs';

/** Fills and sends the application form on /judicial; returns the new request's id. */
export async function apply(page, { base, kind, subjectId, institution, caseDescription, purpose }) {
  await page.goto(`${base}/judicial`);
  await page.getByRole('button', { name: '申请司法出证' }).click();
  const dlg = page.getByRole('dialog');
  await choose(page, dlg, 'kind', kind === 'ruling' ? '裁决' : '公证');
  await dlg.locator('#subject_id').fill(String(subjectId));
  await choose(page, dlg, 'institution_id', institution);
  if (caseDescription) await dlg.locator('#case_description').fill(caseDescription);
  if (purpose) {
    await choose(page, dlg, 'purpose', purpose);
  }
  return dlg;
}

/** Sends the filled form; waits for the request's page; returns its id. */
export async function send(page, dlg) {
  await dlg.getByRole('button', { name: /新\s*建/ }).click();
  await page.waitForURL(/\/judicial\/\d+$/);
  return Number(page.url().split('/').pop());
}

/** A minimal well-formed one-page PDF (what an institution's own system would issue). */
export function pdf(text) {
  const objs = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    null,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ];
  const stream = `BT /F1 18 Tf 72 770 Td (${text.replace(/[()\\]/g, '')}) Tj ET`;
  objs[3] = `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`;
  let out = '%PDF-1.4\n';
  const offsets = [];
  objs.forEach((o, i) => {
    offsets.push(out.length);
    out += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = out.length;
  out += `xref\n0 ${objs.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}`;
  out += `trailer\n<< /Size ${objs.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}
