// RFC 3161 tokens from Debian's `openssl ts` (scripts/tsa-fixture.sh), RSA
// and ECDSA P-256 TSAs: a token over SHA-256(checkpoint body) verifies
// under the pinned certificate (VALID, genTime reported); a token over
// another digest, or under another TSA's certificate, is INVALID
// (timestamp); without tsa_certs the token is reported as not checked.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { verify } from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'anchord-tsa-'));
execFileSync('bash', [join(__dirname, '../scripts/tsa-fixture.sh'), dir], { stdio: 'pipe' });
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const bytes = (f: string) => new Uint8Array(readFileSync(join(dir, f)));
const text = (f: string) => readFileSync(join(dir, f), 'utf8');
const corpusPolicy = readFileSync(join(__dirname, '../../../testdata/bundles/trust-policy.toml'), 'utf8');

describe.each(['rsa', 'ec'])('%s TSA', (alg) => {
  it('a token over the checkpoint body verifies under the pinned certificate', async () => {
    const r = await verify(bytes(`bundle-token-${alg}.json`), text(`policy-${alg}.toml`));
    expect([r.verdict, r.check]).toEqual(['VALID', null]);
    const now = BigInt(Math.floor(Date.now() / 1000));
    expect(r.report!.timestamp_unix! > now - 3600n && r.report!.timestamp_unix! <= now + 60n).toBe(true);
    expect(r.steps.find((s) => s.check === 'timestamp')?.ok).toBe(true);
  });
  it('a token over another digest is INVALID (timestamp)', async () => {
    const r = await verify(bytes(`bundle-token-other-digest-${alg}.json`), text(`policy-${alg}.toml`));
    expect([r.verdict, r.check]).toEqual(['INVALID', 'timestamp']);
    expect(r.message).toContain('messageImprint');
  });
  it("another TSA's certificate: INVALID (timestamp)", async () => {
    const other = alg === 'rsa' ? 'ec' : 'rsa';
    const r = await verify(bytes(`bundle-token-${alg}.json`), text(`policy-${other}.toml`));
    expect([r.verdict, r.check]).toEqual(['INVALID', 'timestamp']);
  });
  it('a flipped signature byte: INVALID (timestamp)', async () => {
    const b = JSON.parse(text(`bundle-token-${alg}.json`));
    const tok: string = b.checkpoint.timestamp_token;
    const i = tok.length - 10; // inside the signature, the token's last field
    b.checkpoint.timestamp_token = tok.slice(0, i) + (tok[i] === '0' ? '1' : '0') + tok.slice(i + 1);
    const r = await verify(new TextEncoder().encode(JSON.stringify(b)), text(`policy-${alg}.toml`));
    expect([r.verdict, r.check]).toEqual(['INVALID', 'timestamp']);
  });
  it('no tsa_certs in the policy: VALID, the token reported as not checked', async () => {
    const r = await verify(bytes(`bundle-token-${alg}.json`), corpusPolicy);
    expect(r.verdict).toBe('VALID');
    expect(r.report!.timestamp_unchecked).toBe(true);
    expect(r.steps.find((s) => s.check === 'timestamp')?.ok).toBe(false);
  });
});
