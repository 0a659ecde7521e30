// The invited party (H20): a bank-a user starts a contract (发起邀约) naming an
// outside party by e-mail; the one-time link is shown once; the invitee opens it
// with no session (/invitation#token=…), sees what it opens, registers, lands on
// the contract and signs with a key held in the browser: the private key is a
// non-extractable CryptoKey in IndexedDB, only the public key and signatures reach
// the server, and the signature verifies offline over the statement the server
// shows. A used, an unknown and a malformed link each say so.
import { createPublicKey, verify } from 'node:crypto';
import { choose } from '../select.mjs';

/** An Ed25519 public key (64 hex) as a KeyObject (SPKI DER: the RFC 8410 prefix). */
const ed25519 = (hex) => createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(hex, 'hex')]), format: 'der', type: 'spki' });

export async function run(ctx) {
  const { base, adminPassword, pw, login, call, newPage, uiLogin, uiLogout, screen, assert } = ctx;
  const admin = await login('admin', adminPassword);
  const type = await call('POST', '/v1/contract-types', admin, { name: '保密协议（邀请）', template_text: '甲方与{{party}}约定对本合作内容保密。' });
  const title = `保密协议 ${Date.now()}`;
  const email = `wang.${Date.now()}@example.com`;
  const invitee = `wang.${Date.now().toString(36)}`; // unique: other flows register invitees too

  // 1. alice starts it in the UI: herself, then an outside party by e-mail.
  let page = await newPage();
  await uiLogin(page, 'alice', pw('alice'));
  await page.goto(`${base}/contracts`);
  await page.getByRole('button', { name: '发起邀约' }).click();
  const dlg = page.getByRole('dialog');
  await choose(page, dlg, 'contract-type', type.name);
  await dlg.locator('#title').fill(title);
  await dlg.locator('#variables_party').fill('王五');
  await dlg.locator('#signers_0_username').fill('alice');
  await dlg.getByRole('button', { name: '添加签署方' }).click();
  await choose(page, dlg, 'signers_1_kind', '邮箱邀请');
  await dlg.locator('#signers_1_contact').fill(email);
  await screen(page, 'user-contract-invite');
  await dlg.getByRole('button', { name: /新\s*建/ }).click();
  const links = page.getByRole('dialog', { name: '邀请链接' });
  await links.waitFor();
  const link = (await links.locator('.anchord-invitation-link .anchord-mono').first().textContent()).trim();
  assert(new RegExp(`^${base}/invitation#token=[0-9a-f]{64}$`).test(link), `the invitation link is the console's, the token in the fragment: ${link}`);
  // No mail relay in this run: the link was not sent, and the dialog says so.
  await links.locator('[data-delivery="none"]').getByText('未发送，请自行转交').waitFor();
  await screen(page, 'user-invitation-links');
  await links.getByRole('button', { name: /确\s*定|OK/ }).click();
  await page.waitForURL(/\/contracts\/\d+$/);
  const cid = Number(page.url().split('/').pop());
  // The contract's own card, not the list page's card still on screen
  // while the detail page loads (a CI run read "电子合同" from it).
  const head = page.locator('.ant-card-head-title').filter({ has: page.locator('[data-status]') }).first();
  await head.waitFor();
  const number = (await head.textContent()).split(' ')[0];
  assert(/^HT\d+$/.test(number), `a contract number: ${number}`);
  // Her to-do inbox lists it under 待我签署, with its count.
  await page.goto(`${base}/inbox`);
  await page.getByRole('link', { name: number, exact: true }).click();
  await page.waitForURL(new RegExp(`/contracts/${cid}$`));
  // alice signs her slot with the key this browser makes and registers.
  await page.getByRole('button', { name: /签\s*署/ }).click();
  await page.getByRole('button', { name: /签\s*署/ }).waitFor({ state: 'detached' });
  await uiLogout(page);

  // 2. The invitee, with no session: the public page, register, sign.
  page = await newPage();
  const sent = [];
  page.on('request', (r) => r.url().includes('/v1/') && sent.push(`${r.method()} ${new URL(r.url()).pathname} ${r.postData() ?? ''}`));
  await page.goto(link);
  await page.getByText(title).first().waitFor();
  await page.getByText(email).first().waitFor();
  await screen(page, 'invitation-page');
  // By keyboard only: the labelled fields in order, Enter sends the form.
  await page.locator('#invite-register_username').focus();
  await page.keyboard.type(invitee);
  for (const id of ['invite-register_password', 'invite-register_confirm']) {
    for (let i = 0; i < 4 && (await page.evaluate(() => document.activeElement?.id)) !== id; i++) await page.keyboard.press('Tab');
    assert((await page.evaluate(() => document.activeElement?.id)) === id, `Tab reaches #${id}`);
    await page.keyboard.type(pw(invitee));
  }
  await page.keyboard.press('Enter');
  await page.waitForURL(new RegExp(`/contracts/${cid}$`));
  assert(!page.url().includes('token'), `the token left the address bar: ${page.url()}`);
  await page.getByText(title).first().waitFor();
  await screen(page, 'invitee-contract');
  await page.getByRole('button', { name: /签\s*署/ }).click();
  await page.locator('.ant-card-head-title [data-status="awaiting_review"]').first().waitFor();
  await screen(page, 'invitee-contract-signed');
  // The key in IndexedDB: a CryptoKey that cannot be exported.
  const held = await page.evaluate(
    () =>
      new Promise((ok, bad) => {
        const r = indexedDB.open('anchord-keys');
        r.onerror = () => bad(String(r.error));
        r.onsuccess = () => {
          const q = r.result.transaction('signing-keys').objectStore('signing-keys').getAll();
          q.onsuccess = async () => {
            const k = q.result[0];
            let exported = 'refused';
            try {
              await crypto.subtle.exportKey('pkcs8', k.privateKey);
              exported = 'exported';
            } catch {}
            ok({ n: q.result.length, publicKey: k.publicKey, extractable: k.privateKey.extractable, type: k.privateKey.type, exported });
          };
        };
      }),
  );
  assert(held.n === 1 && held.type === 'private' && held.extractable === false && held.exported === 'refused', `the private key is held non-extractable: ${JSON.stringify(held)}`);
  const key = sent.find((s) => s.startsWith('PUT /v1/me/signing-key '));
  assert(key && JSON.parse(key.slice(key.indexOf('{'))).custody === 'client', `a client-held key was registered: ${sent.join('\n')}`);
  for (const s of sent) assert(!/private|pkcs8|"d"\s*:/i.test(s), `nothing like a private key was sent: ${s}`);
  const c = await call('GET', `/v1/contracts/${cid}`, await login(invitee, pw(invitee)));
  const me = c.signers[1];
  assert(me.username === invitee && me.status === 'signed' && me.custody === 'client' && me.public_key === held.publicKey, `the invitee signed with the browser's key: ${JSON.stringify(me)}`);
  assert(verify(null, Buffer.from(me.statement, 'utf8'), ed25519(me.public_key), Buffer.from(me.signature, 'hex')), 'the signature verifies offline over the statement');
  assert(me.statement.includes(`contract-id ${cid}\n`) && me.statement.includes('signer-index 1\n') && me.statement.includes(`signer-username ${invitee}\n`), me.statement);
  const first = c.signers[0];
  assert(first.custody === 'client' && verify(null, Buffer.from(first.statement), ed25519(first.public_key), Buffer.from(first.signature, 'hex')), `alice signed in her browser too: ${JSON.stringify(first)}`);
  await uiLogout(page);

  // 3. The link works once; an unknown and a malformed one say so.
  for (const [url, text, shot] of [
    [link, '邀请链接已被使用或已过期', 'invitation-used'],
    [`${base}/invitation#token=${'ab'.repeat(32)}`, '邀请链接无效', null],
    [`${base}/invitation#token=xyz`, '邀请链接不完整或格式错误', null],
  ]) {
    page = await newPage();
    await page.goto(url);
    await page.getByText(text).first().waitFor();
    if (shot) await screen(page, shot);
    await page.context().close();
  }
  // The English page.
  page = await newPage();
  await page.goto(`${base}/invitation#token=xyz`);
  await page.getByRole('button', { name: 'English' }).click();
  await page.getByText('Invitation to sign a contract').waitFor();
  await page.context().close();
}
