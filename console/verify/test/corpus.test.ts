// The corpus testdata/bundles (manifest.json) judged by the TypeScript
// verifier: every valid bundle VALID with its evidence, every invalid one
// with manifest's verdict, check and reason; the v1-frozen bundles VALID
// under their policy.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verify } from '../src/index.ts';

const CORPUS = join(__dirname, '../../../testdata/bundles');
const manifest = JSON.parse(readFileSync(join(CORPUS, 'manifest.json'), 'utf8'));
const policy = readFileSync(join(CORPUS, 'trust-policy.toml'), 'utf8');
const read = (p: string) => new Uint8Array(readFileSync(join(CORPUS, p)));

describe('valid bundles', () => {
  it('the manifest lists at least 4', () => expect(manifest.valid.length).toBeGreaterThanOrEqual(4));
  for (const v of manifest.valid) {
    it(`${v.file} is VALID with its evidence`, async () => {
      const r = await verify(read(v.file), policy, { kind: 'bytes', bytes: read(v.evidence) });
      expect([r.verdict, r.check, r.message]).toEqual(['VALID', null, null]);
      expect(r.exit).toBe(0);
      expect(r.report?.evidence_hash).toBe(JSON.parse(readFileSync(join(CORPUS, v.file), 'utf8')).entry.evidence_hash);
      expect(r.trust_policy_sha256).toMatch(/^[0-9a-f]{64}$/);
    });
    it(`${v.file} is INVALID (evidence_mismatch) with other bytes`, async () => {
      const r = await verify(read(v.file), policy, { kind: 'bytes', bytes: new Uint8Array([1, 2, 3]) });
      expect([r.verdict, r.check]).toEqual(['INVALID', 'evidence_mismatch']);
    });
    it(`${v.file} without a policy is UNTRUSTED (no_trust_policy)`, async () => {
      const r = await verify(read(v.file), null);
      expect([r.verdict, r.check, r.exit]).toEqual(['UNTRUSTED', 'no_trust_policy', 3]);
    });
  }
});

describe('invalid bundles: manifest verdict, check and reason', () => {
  it('the manifest lists at least 30', () => expect(manifest.invalid.length).toBeGreaterThanOrEqual(30));
  for (const c of manifest.invalid) {
    it(`${c.file}: ${c.rule}`, async () => {
      const r = await verify(read(c.file), policy);
      expect({ exit: r.exit, check: r.check }).toEqual({ exit: c.exit, check: c.check });
      expect(r.verdict).toBe(c.exit === 3 ? 'UNTRUSTED' : 'INVALID');
      expect(r.message).toContain(c.reason);
      // the failed check is the last one listed
      if (r.verdict === 'INVALID') expect(r.steps.at(-1)?.ok).toBe(false);
    });
  }
});

describe('v1-frozen bundles keep verifying', () => {
  const dir = 'v1-frozen';
  const frozenPolicy = readFileSync(join(CORPUS, dir, 'trust-policy.toml'), 'utf8');
  const oldKeys = readFileSync(join(CORPUS, dir, 'trusted-keys.toml'), 'utf8');
  const files = readdirSync(join(CORPUS, dir)).filter((f) => f.endsWith('.json'));
  it('there are 5', () => expect(files.length).toBe(5));
  for (const f of files) {
    it(`${f} is VALID under its trust policy`, async () => {
      const r = await verify(read(join(dir, f)), frozenPolicy);
      expect([r.verdict, r.check]).toEqual(['VALID', null]);
    });
    it(`${f} under its v1 --trusted-keys file`, async () => {
      const r = await verify(read(join(dir, f)), oldKeys);
      if (f.includes('pending')) expect(r.verdict).toBe('VALID');
      else expect([r.verdict, r.check]).toEqual(['UNTRUSTED', 'anchor_not_trusted']);
    });
  }
  for (const f of ['pending.json', 'anchored.json']) {
    it(`prover/${f} is VALID with its evidence`, async () => {
      const r = await verify(read(join(dir, 'prover', f)), readFileSync(join(CORPUS, dir, 'prover/trust-policy.toml'), 'utf8'), {
        kind: 'bytes',
        bytes: read(join(dir, 'prover/pending.evidence')),
      });
      expect([r.verdict, r.check]).toEqual(['VALID', null]);
    });
  }
});

describe('usage errors (exit 2)', () => {
  it('a bundle that is not UTF-8', async () => {
    const r = await verify(new Uint8Array([0x7b, 0xff, 0x7d]), policy);
    expect([r.verdict, r.exit]).toEqual(['ERROR', 2]);
  });
  it('a policy with an unknown key', async () => {
    const r = await verify(read(manifest.valid[0].file), policy + '\nextra = 1\n');
    expect([r.verdict, r.exit]).toEqual(['ERROR', 2]);
    expect(r.message).toContain('unknown field');
  });
  it('a hash of the wrong length', async () => {
    const r = await verify(read(manifest.valid[0].file), policy, { kind: 'hex', hex: 'abcd' });
    expect([r.verdict, r.exit]).toEqual(['ERROR', 2]);
  });
});
