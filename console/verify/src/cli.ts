// `anchord-verify`: the node command line of the second verifier.
//   node dist/cli.mjs --bundle B.json [--trust policy.toml] [--file F | --hash HEX] [--json]
//   node dist/cli.mjs B.json --trust policy.toml --json
// Output and exit codes as `anchord verify` (docs/trust-policy.md §Verdicts).
import { createReadStream, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fromBase64 } from './bytes.ts';
import { incremental } from './hashes.ts';
import { type Evidence, resultJson, verify, decodeText } from './index.ts';
import { parseBundle } from './bundle.ts';
import { pemToDer } from './policy.ts';

function usage(msg: string): never {
  process.stderr.write(`error: ${msg}\n`);
  process.exit(2);
}

async function main(argv: string[]): Promise<number> {
  let bundle: string | undefined;
  let trust: string | undefined;
  let file: string | undefined;
  let hash: string | undefined;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => argv[++i] ?? usage(`${a} needs a value`);
    if (a === '--bundle') bundle = val();
    else if (a === '--trust' || a === '--trusted-keys') trust = val();
    else if (a === '--file') file = val();
    else if (a === '--hash') hash = val();
    else if (a === '--json') json = true;
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: anchord-verify [--bundle] BUNDLE.json [--trust POLICY.toml] [--file FILE | --hash HEX] [--json]\n');
      return 0;
    } else if (!a.startsWith('-') && bundle === undefined) bundle = a;
    else usage(`unexpected argument ${JSON.stringify(a)}`);
  }
  if (!bundle) usage('--bundle is required');
  if (file && hash) usage('--file and --hash conflict');
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(bundle);
  } catch (e) {
    usage(`reading ${bundle}: ${(e as Error).message}`);
  }
  let evidence: Evidence | undefined;
  if (hash !== undefined) evidence = { kind: 'hex', hex: hash };
  if (file !== undefined) {
    // Hash the file in chunks with the bundle's algorithm (an unparseable
    // bundle is INVALID (format) before the file is read, as anchord verify).
    let alg;
    try {
      alg = parseBundle(decodeText(bytes, bundle)).entry.hash_alg;
    } catch {
      alg = undefined;
    }
    if (alg) {
      const h = incremental(alg);
      try {
        for await (const chunk of createReadStream(file, { highWaterMark: 1 << 16 })) h.update(chunk as Uint8Array);
      } catch (e) {
        usage(`reading ${file}: ${(e as Error).message}`);
      }
      evidence = { kind: 'digest', digest: h.digest() };
    }
  }
  let policyText: string | null = null;
  let base = '.';
  if (trust !== undefined) {
    base = dirname(trust);
    // The policy is read after the bundle parses (as anchord verify).
    try {
      policyText = decodeText(readFileSync(trust), trust);
    } catch (e) {
      let parses = true;
      try {
        parseBundle(decodeText(bytes, bundle));
      } catch {
        parses = false;
      }
      if (parses) usage(`--trust: ${trust}: ${(e as Error).message}`);
    }
  }
  const loadCert = (p: string) => {
    const raw = readFileSync(resolve(base, p));
    const text = new TextDecoder().decode(raw);
    return text.includes('-----BEGIN') ? pemToDer(text) : raw;
  };
  void fromBase64;
  const r = await verify(bytes, policyText, evidence, { loadCert });
  if (r.verdict === 'ERROR') usage(r.message ?? 'error');
  if (json) process.stdout.write(resultJson(r) + '\n');
  else {
    process.stdout.write(r.check ? `${r.verdict} (${r.check}): ${r.message}\n` : `${r.verdict}\n`);
    for (const s of r.steps) process.stdout.write(`  ${s.ok ? 'ok ' : 'FAIL'} ${s.check}: ${Object.entries(s.values).map(([k, v]) => `${k}=${v}`).join(' ')}\n`);
    if (r.trust_policy_sha256) process.stdout.write(`policy     trust policy sha256 ${r.trust_policy_sha256}\n`);
  }
  return r.exit;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`error: ${(e as Error).stack ?? e}\n`);
    process.exit(2);
  },
);
