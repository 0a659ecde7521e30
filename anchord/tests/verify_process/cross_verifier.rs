//! Cross-verifier tests (issue 16): the second, independent verifier in
//! TypeScript (`console/verify`, run as its node CLI `dist/cli.mjs`) and
//! `anchord verify --json` must agree, verdict and check, rule by rule, over
//! the whole corpus (valid, invalid, v1-frozen, with and without the
//! evidence, with and without a trust policy) and over a few hundred seeded
//! mutations of the valid bundles (one JSON field or one byte each).
//!
//! It needs `node` on PATH and the CLI built (`npm ci && npm run build` in
//! `console/verify`; `scripts/test` does both first) and fails loudly
//! without them: a missing second verifier is not a pass.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{BIN, corpus};

fn cli() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../console/verify/dist/cli.mjs");
    assert!(
        p.is_file(),
        "the TypeScript verifier's CLI {} is missing: run `npm ci && npm run build` in console/verify \
         (scripts/test does); the cross-verifier test does not pass without it",
        p.display()
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "`node` is not on PATH ({node:?}): the cross-verifier test needs Node 20"
    );
    p
}

/// What one verifier answered: exit code, verdict word and check.
#[derive(Debug, PartialEq, Eq, Clone)]
struct Answer {
    exit: i32,
    verdict: Option<String>,
    check: Option<String>,
}

fn answer(o: &Output, who: &str) -> Answer {
    let exit = o.status.code().unwrap_or(-1);
    if exit == 2 {
        // Usage errors print nothing on stdout.
        return Answer {
            exit,
            verdict: None,
            check: None,
        };
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{who}: stdout is not JSON ({e}), exit {exit}:\n{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    Answer {
        exit,
        verdict: v["verdict"].as_str().map(str::to_owned),
        check: v["check"].as_str().map(str::to_owned),
    }
}

struct Case<'a> {
    bundle: &'a Path,
    trust: Option<&'a Path>,
    file: Option<&'a Path>,
}

fn args(c: &Case<'_>) -> Vec<std::ffi::OsString> {
    let mut a: Vec<std::ffi::OsString> = vec!["--bundle".into(), c.bundle.into(), "--json".into()];
    if let Some(t) = c.trust {
        a.push("--trust".into());
        a.push(t.into());
    }
    if let Some(f) = c.file {
        a.push("--file".into());
        a.push(f.into());
    }
    a
}

/// Both verifiers' answers for one case.
fn both(cli: &Path, c: &Case<'_>) -> (Answer, Answer) {
    let rust = Command::new(BIN)
        .env_clear()
        .arg("verify")
        .args(args(c))
        .output()
        .unwrap();
    let ts = Command::new("node")
        .arg(cli)
        .args(args(c))
        .output()
        .unwrap();
    (answer(&rust, "anchord verify"), answer(&ts, "node cli.mjs"))
}

#[test]
fn both_verifiers_judge_the_corpus_alike_rule_by_rule() {
    let cli = cli();
    let dir = corpus();
    let policy = dir.join("trust-policy.toml");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let mut cases: Vec<(PathBuf, Option<PathBuf>, Option<PathBuf>)> = Vec::new();
    for v in manifest["valid"].as_array().unwrap() {
        let b = dir.join(v["file"].as_str().unwrap());
        let f = dir.join(v["evidence"].as_str().unwrap());
        cases.push((b.clone(), Some(policy.clone()), Some(f)));
        cases.push((b.clone(), Some(policy.clone()), None));
        cases.push((b.clone(), None, None));
        // Another valid bundle's evidence: evidence_mismatch.
        cases.push((
            b,
            Some(policy.clone()),
            Some(dir.join("valid/pending.evidence")),
        ));
    }
    for c in manifest["invalid"].as_array().unwrap() {
        let b = dir.join(c["file"].as_str().unwrap());
        cases.push((b.clone(), Some(policy.clone()), None));
        cases.push((b, None, None));
    }
    let frozen = dir.join("v1-frozen");
    for e in std::fs::read_dir(&frozen).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            cases.push((p.clone(), Some(frozen.join("trust-policy.toml")), None));
            cases.push((p.clone(), Some(frozen.join("trusted-keys.toml")), None));
            // The corpus policy names origins and other keys' quorum.
            cases.push((p, Some(policy.clone()), None));
        }
    }
    let prover = frozen.join("prover");
    for name in ["pending.json", "anchored.json"] {
        cases.push((
            prover.join(name),
            Some(prover.join("trust-policy.toml")),
            Some(prover.join("pending.evidence")),
        ));
    }
    assert!(cases.len() > 100, "{} cases", cases.len());
    let mut valid = 0;
    let mut mismatches = Vec::new();
    for (b, t, f) in &cases {
        let c = Case {
            bundle: b,
            trust: t.as_deref(),
            file: f.as_deref(),
        };
        let (rust, ts) = both(&cli, &c);
        if rust.exit == 0 {
            valid += 1;
        }
        if rust != ts {
            mismatches.push(format!(
                "{} (trust {:?}, file {:?}): anchord verify {rust:?}, TypeScript {ts:?}",
                b.display(),
                t.as_ref().and_then(|p| p.file_name()),
                f.as_ref().and_then(|p| p.file_name()),
            ));
        }
    }
    assert!(valid >= 4 + 5 + 2, "only {valid} VALID answers");
    assert!(
        mismatches.is_empty(),
        "{} of {} cases differ:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
}

/// splitmix64: a fixed, seeded sequence (no dependency, same on every machine).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Every leaf and container of a JSON value, as a JSON pointer.
fn pointers(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                pointers(
                    x,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                pointers(x, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Change one character of a string: a neighbour, another case, a space,
/// a character from elsewhere in the alphabet the format uses.
fn mutate_str(s: &str, rng: &mut Rng) -> String {
    const POOL: &[char] = &[
        '0', '1', '9', 'a', 'f', 'A', 'F', 'g', 'z', '+', '/', '=', ' ', '\n', '—', '.', '-', '_',
        'é', '\u{85}', '\u{2028}', 'x',
    ];
    let mut cs: Vec<char> = s.chars().collect();
    match rng.below(6) {
        0 if !cs.is_empty() => {
            let i = rng.below(cs.len());
            cs[i] = POOL[rng.below(POOL.len())];
        }
        1 if !cs.is_empty() => {
            let i = rng.below(cs.len());
            cs.remove(i);
        }
        2 => {
            let i = rng.below(cs.len() + 1);
            cs.insert(i, POOL[rng.below(POOL.len())]);
        }
        3 => return String::new(),
        4 => return s.to_uppercase(),
        _ if !cs.is_empty() => {
            // a hex digit moved by one (still lowercase hex)
            let i = rng.below(cs.len());
            cs[i] = match cs[i] {
                '0'..='8' | 'a'..='e' => char::from_u32(cs[i] as u32 + 1).unwrap(),
                '9' => 'a',
                'f' => '0',
                c => c,
            };
        }
        _ => cs.push('0'),
    }
    cs.into_iter().collect()
}

fn mutate_value(v: &mut serde_json::Value, rng: &mut Rng) -> String {
    use serde_json::{Value, json};
    match v {
        Value::Number(n) => {
            let x = n.as_i64().unwrap_or(0);
            let new = match rng.below(8) {
                0 => json!(x + 1),
                1 => json!(x - 1),
                2 => json!(0),
                3 => json!(-1),
                4 => json!(u64::MAX),
                5 => json!(x as f64 + 0.5),
                6 => json!(x.to_string()),
                _ => json!(x.saturating_mul(2)),
            };
            *v = new;
            format!("number {x} -> {v}")
        }
        Value::String(s) => {
            let old = s.clone();
            *v = match rng.below(10) {
                0 => Value::Null,
                1 => json!(42),
                _ => Value::String(mutate_str(&old, rng)),
            };
            format!(
                "string {:?} -> {v}",
                old.chars().take(40).collect::<String>()
            )
        }
        Value::Null => {
            *v = match rng.below(3) {
                0 => json!(""),
                1 => json!("00"),
                _ => json!({}),
            };
            format!("null -> {v}")
        }
        Value::Bool(b) => {
            *b = !*b;
            "bool flipped".into()
        }
        Value::Array(a) => match rng.below(4) {
            0 if !a.is_empty() => {
                a.pop();
                "array: last element removed".into()
            }
            1 if !a.is_empty() => {
                let x = a[0].clone();
                a.push(x);
                "array: first element repeated".into()
            }
            2 if a.len() > 1 => {
                a.swap(0, 1);
                "array: first two swapped".into()
            }
            _ => {
                a.clear();
                "array emptied".into()
            }
        },
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            match rng.below(3) {
                0 if !keys.is_empty() => {
                    let k = &keys[rng.below(keys.len())];
                    m.remove(k);
                    format!("object: field {k} removed")
                }
                1 => {
                    m.insert("x_unknown".into(), json!(1));
                    "object: unknown field added".into()
                }
                _ => {
                    *v = json!([]);
                    "object -> []".into()
                }
            }
        }
    }
}

/// The signed note edited as text: a byte of a signature, the body, a line.
fn mutate_note(note: &str, rng: &mut Rng) -> (String, String) {
    let lines: Vec<&str> = note.split_inclusive('\n').collect();
    let i = rng.below(lines.len());
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    let what = match rng.below(4) {
        0 => {
            out.remove(i);
            format!("note line {i} removed")
        }
        1 => {
            let l = out[i].clone();
            out.insert(i, l);
            format!("note line {i} repeated")
        }
        _ => {
            let l = out[i].trim_end_matches('\n').to_owned();
            out[i] = format!("{}\n", mutate_str(&l, rng));
            format!("note line {i} edited")
        }
    };
    (out.concat(), what)
}

#[test]
fn both_verifiers_agree_on_hundreds_of_mutated_bundles() {
    let cli = cli();
    let dir = corpus();
    let policy = dir.join("trust-policy.toml");
    let work = std::env::temp_dir().join(anchord_testkit::unique("anchord_cross"));
    std::fs::create_dir_all(&work).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let valid: Vec<(PathBuf, PathBuf)> = manifest["valid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                dir.join(v["file"].as_str().unwrap()),
                dir.join(v["evidence"].as_str().unwrap()),
            )
        })
        .collect();
    let mut rng = Rng(0x616e_6368_6f72_6431); // "anchord1"
    let n = 320;
    let mut mismatches = Vec::new();
    let mut verdicts = std::collections::BTreeMap::<String, usize>::new();
    for k in 0..n {
        let (src, evidence) = &valid[k % valid.len()];
        let text = std::fs::read_to_string(src).unwrap();
        let (bytes, what) = if k % 4 == 3 {
            // one byte of the file replaced by a printable ASCII byte
            let mut b = text.into_bytes();
            let i = rng.below(b.len());
            let old = b[i];
            let new = b" 0123456789abcdefABCDEF\",:{}[]-.e\\n"[rng.below(35)];
            b[i] = new;
            (
                b,
                format!("byte {i}: {:?} -> {:?}", old as char, new as char),
            )
        } else {
            let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let mut ptrs = Vec::new();
            pointers(&v, String::new(), &mut ptrs);
            let p = ptrs[1 + rng.below(ptrs.len() - 1)].clone();
            let what = if p == "/checkpoint/signed_note" && rng.below(2) == 0 {
                let note = v.pointer(&p).unwrap().as_str().unwrap().to_owned();
                let (m, what) = mutate_note(&note, &mut rng);
                *v.pointer_mut(&p).unwrap() = serde_json::Value::String(m);
                what
            } else {
                mutate_value(v.pointer_mut(&p).unwrap(), &mut rng)
            };
            (
                serde_json::to_vec_pretty(&v).unwrap(),
                format!("{p}: {what}"),
            )
        };
        let path = work.join(format!("m{k:03}.json"));
        std::fs::write(&path, &bytes).unwrap();
        let with_file = k % 3 != 0;
        let c = Case {
            bundle: &path,
            trust: Some(&policy),
            file: with_file.then_some(evidence.as_path()),
        };
        let (rust, ts) = both(&cli, &c);
        *verdicts
            .entry(format!(
                "{} {}",
                rust.verdict.as_deref().unwrap_or("usage"),
                rust.check.as_deref().unwrap_or("-")
            ))
            .or_default() += 1;
        if rust != ts {
            mismatches.push(format!(
                "m{k:03}.json from {} ({what}; file {with_file}): anchord verify {rust:?}, TypeScript {ts:?}",
                src.file_name().unwrap().to_string_lossy()
            ));
        } else {
            std::fs::remove_file(&path).unwrap();
        }
    }
    eprintln!("{n} mutations, anchord verify's answers: {verdicts:#?}");
    // The mutations reach deep checks, not only the parser.
    assert!(
        verdicts.len() >= 10,
        "too few distinct answers: {verdicts:?}"
    );
    assert!(
        mismatches.is_empty(),
        "{} of {n} mutated bundles judged differently (kept in {}):\n{}",
        mismatches.len(),
        work.display(),
        mismatches.join("\n")
    );
    std::fs::remove_dir_all(&work).ok();
}

/// Sizes and indexes at the edge of u64 (found by the mutations above:
/// `anchord verify` panicked on `leaf_count = 2^64 - 1`, "attempt to shift
/// right with overflow" in the proof length): both verifiers answer
/// INVALID with the same check, neither panics.
#[test]
fn hostile_u64_sizes_are_invalid_in_both_verifiers_not_a_panic() {
    let cli = cli();
    let dir = corpus();
    let policy = dir.join("trust-policy.toml");
    let work = std::env::temp_dir().join(anchord_testkit::unique("anchord_cross_edges"));
    std::fs::create_dir_all(&work).unwrap();
    let src: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("valid/anchored-judicial-evm.json")).unwrap(),
    )
    .unwrap();
    let edges: [(&str, u64, &str); 7] = [
        ("/block/leaf_count", u64::MAX, "audit_path"),
        ("/block/leaf_count", 1 << 63, "audit_path"),
        ("/leaf_index", u64::MAX, "leaf_index"),
        ("/checkpoint/size", u64::MAX, "checkpoint"),
        ("/block/height", u64::MAX, "block_header"),
        (
            "/anchor/receipts/1/checkpoint_size",
            u64::MAX,
            "anchor_receipt",
        ),
        (
            "/anchor/receipts/1/checkpoint_size",
            (1 << 63) + 1,
            "anchor_receipt",
        ),
    ];
    for (i, (ptr, value, check)) in edges.iter().enumerate() {
        let mut b = src.clone();
        *b.pointer_mut(ptr).unwrap() = serde_json::json!(value);
        let path = work.join(format!("edge{i}.json"));
        std::fs::write(&path, serde_json::to_vec_pretty(&b).unwrap()).unwrap();
        let (rust, ts) = both(
            &cli,
            &Case {
                bundle: &path,
                trust: Some(&policy),
                file: None,
            },
        );
        let want = Answer {
            exit: 1,
            verdict: Some("INVALID".into()),
            check: Some((*check).into()),
        };
        assert_eq!(rust, want, "anchord verify, {ptr} = {value}");
        assert_eq!(ts, want, "TypeScript, {ptr} = {value}");
    }
    std::fs::remove_dir_all(&work).ok();
}

/// RFC 3161 tokens from Debian's `openssl ts` (`console/verify/scripts/tsa-fixture.sh`:
/// RSA and ECDSA P-256 TSAs, certificates inline in the policy): both
/// verifiers check the token the same way: VALID under the pinned
/// certificate, INVALID (timestamp) over another digest, under the other
/// TSA's certificate or with a flipped signature byte, VALID with the
/// token unchecked when the policy pins no TSA.
#[test]
fn both_verifiers_check_rfc3161_tokens_alike() {
    let cli = cli();
    let work = std::env::temp_dir().join(anchord_testkit::unique("anchord_cross_tsa"));
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../console/verify/scripts/tsa-fixture.sh");
    let o = Command::new("bash")
        .arg(&script)
        .arg(&work)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{} (needs openssl and python3): {}",
        script.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    let corpus_policy = corpus().join("trust-policy.toml");
    let mut expect: Vec<(PathBuf, PathBuf, &str)> = Vec::new();
    for (alg, other) in [("rsa", "ec"), ("ec", "rsa")] {
        let good = work.join(format!("bundle-token-{alg}.json"));
        let policy = work.join(format!("policy-{alg}.toml"));
        expect.push((good.clone(), policy.clone(), "VALID -"));
        expect.push((good.clone(), corpus_policy.clone(), "VALID -"));
        expect.push((
            good.clone(),
            work.join(format!("policy-{other}.toml")),
            "INVALID timestamp",
        ));
        expect.push((
            work.join(format!("bundle-token-other-digest-{alg}.json")),
            policy.clone(),
            "INVALID timestamp",
        ));
        // A hex digit of the signature (the token's last field) flipped.
        let mut b: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&good).unwrap()).unwrap();
        let tok = b["checkpoint"]["timestamp_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let i = tok.len() - 10;
        let flipped = if &tok[i..=i] == "0" { "1" } else { "0" };
        b["checkpoint"]["timestamp_token"] =
            format!("{}{flipped}{}", &tok[..i], &tok[i + 1..]).into();
        let bad = work.join(format!("bundle-token-flipped-{alg}.json"));
        std::fs::write(&bad, serde_json::to_vec(&b).unwrap()).unwrap();
        expect.push((bad, policy, "INVALID timestamp"));
    }
    for (bundle, policy, want) in &expect {
        let (rust, ts) = both(
            &cli,
            &Case {
                bundle,
                trust: Some(policy),
                file: None,
            },
        );
        let got = format!(
            "{} {}",
            rust.verdict.as_deref().unwrap_or("usage"),
            rust.check.as_deref().unwrap_or("-")
        );
        assert_eq!(
            &got,
            want,
            "anchord verify: {} under {}",
            bundle.display(),
            policy.display()
        );
        assert_eq!(rust, ts, "{} under {}", bundle.display(), policy.display());
    }
    std::fs::remove_dir_all(&work).ok();
}

/// The court's trust policy read the same way: a usage error (exit 2) for
/// a file `anchord verify` refuses, the same verdict otherwise (quorum,
/// origins, keys of the wrong type, a witness listed twice, the chain
/// registry).
#[test]
fn both_verifiers_read_trust_policies_alike() {
    let cli = cli();
    let dir = corpus();
    let text = std::fs::read_to_string(dir.join("trust-policy.toml")).unwrap();
    let bundle = dir.join("valid/anchored-judicial-evm.json");
    let w1 = "\"w1.test+75d398c7+BGa+fjMsekUzMr2dCn99sFX1xe8aBq2mbZizn7aBDEc6\"";
    let w2 = "\"w2.test+70beada9+BAtROtm0kkAVygkC7QeQRNOsXb7CMG8GlIwQ2o62458t\"";
    let sealer = "\"anchord.test/ledger+4f509efb+AepKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs\"";
    let variants: Vec<(&str, String, i32)> = vec![
        ("as published", text.clone(), 0),
        (
            "quorum 2.0 (a float)",
            text.replace("quorum = 2", "quorum = 2.0"),
            2,
        ),
        ("quorum -1", text.replace("quorum = 2", "quorum = -1"), 2),
        (
            "quorum above the witnesses",
            text.replace("quorum = 2", "quorum = 3"),
            2,
        ),
        (
            "no quorum: all witnesses",
            text.replace("quorum = 2\n", ""),
            0,
        ),
        ("an unknown key", format!("{text}\nfoo = 1\n"), 2),
        ("a key given twice", format!("{text}\nquorum = 1\n"), 2),
        (
            "another format",
            text.replace("trust-policy/v1", "trust-policy/v2"),
            2,
        ),
        (
            "another origin",
            text.replace("origins = [\"anchord.test/ledger\"]", "origins = [\"x\"]"),
            3,
        ),
        ("a witness key as sealer", text.replace(sealer, w1), 2),
        ("a witness listed twice", text.replace(w2, w1), 3),
        (
            "a chain of another kind",
            text.replace("kind = \"evm\"", "kind = \"eth\""),
            2,
        ),
        (
            "a chain id as an integer",
            text.replace("chain_id = \"31337\"", "chain_id = 31337"),
            2,
        ),
        (
            "an evm chain's other id",
            text.replace("chain_id = \"31337\"", "chain_id = \"1\""),
            1,
        ),
        (
            "a TSA path that does not exist",
            format!("{text}\ntsa_certs = [\"nope.pem\"]\n"),
            2,
        ),
    ];
    let work = std::env::temp_dir().join(anchord_testkit::unique("anchord_cross_policy"));
    std::fs::create_dir_all(&work).unwrap();
    for (i, (what, policy, exit)) in variants.iter().enumerate() {
        let path = work.join(format!("policy{i}.toml"));
        std::fs::write(&path, policy).unwrap();
        let (rust, ts) = both(
            &cli,
            &Case {
                bundle: &bundle,
                trust: Some(&path),
                file: None,
            },
        );
        assert_eq!(rust.exit, *exit, "anchord verify, policy {what}: {rust:?}");
        assert_eq!(rust, ts, "policy {what}");
    }
    std::fs::remove_dir_all(&work).ok();
}

/// Signed notes edited as text (docs/checkpoint-format.md §Signed note):
/// lines by unknown keys, the 100-signature limit, a carriage return, a
/// cosignature without its timestamp, a sealer line with one, an extension
/// line, unpadded base64, reordered lines; both verifiers give the same
/// verdict and check for each.
#[test]
fn both_verifiers_read_signed_notes_alike() {
    use anchord_core::checkpoint::NoteSignature;
    let cli = cli();
    let dir = corpus();
    let policy = dir.join("trust-policy.toml");
    let src: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("valid/anchored-judicial-evm.json")).unwrap(),
    )
    .unwrap();
    let note = src["checkpoint"]["signed_note"]
        .as_str()
        .unwrap()
        .to_owned();
    let split = note.rfind("\n\n").unwrap();
    let body = &note[..=split];
    let sigs = &note[split + 2..];
    let lines: Vec<&str> = sigs.lines().collect();
    assert_eq!(lines.len(), 3);
    let edit = |line: &str, f: &dyn Fn(&[u8]) -> Vec<u8>| {
        let mut s = NoteSignature::parse_line(line).unwrap();
        s.payload = f(&s.payload);
        s.line().trim_end().to_owned()
    };
    let junk = |n: usize| -> String {
        (0..n)
            .map(|i| {
                NoteSignature {
                    name: format!("k{i}"),
                    key_id: [i as u8; 4],
                    payload: vec![i as u8; 64],
                }
                .line()
            })
            .collect()
    };
    let join = |ls: &[String]| format!("{body}\n{}\n", ls.join("\n"));
    let l = |i: usize| lines[i].to_owned();
    let variants: Vec<(&str, String, &str)> = vec![
        (
            "a line by an unknown key",
            format!("{note}{}", junk(1)),
            "VALID -",
        ),
        (
            "100 signature lines",
            format!("{note}{}", junk(97)),
            "VALID -",
        ),
        (
            "101 signature lines",
            format!("{note}{}", junk(98)),
            "INVALID checkpoint",
        ),
        (
            "a carriage return",
            note.replacen("\n\n", "\r\n\n", 1),
            "INVALID checkpoint",
        ),
        (
            "no final newline",
            note[..note.len() - 1].to_owned(),
            "INVALID checkpoint",
        ),
        (
            "a cosignature without its timestamp",
            join(&[l(0), edit(lines[1], &|p| p[8..].to_vec()), l(2)]),
            "INVALID witness_signature",
        ),
        (
            "a cosignature's timestamp changed",
            join(&[
                l(0),
                edit(lines[1], &|p| [&[0u8; 8][..], &p[8..]].concat()),
                l(2),
            ]),
            "INVALID witness_signature",
        ),
        (
            "a sealer line with a timestamp",
            join(&[edit(lines[0], &|p| [&[0u8; 8][..], p].concat()), l(1), l(2)]),
            "INVALID sealer_signature",
        ),
        (
            "an extension line",
            format!("{body}ext\n\n{sigs}"),
            "INVALID sealer_signature",
        ),
        (
            "an empty extension line",
            format!("{body}\nx\n\n{sigs}"),
            "INVALID checkpoint",
        ),
        (
            "lines in reverse order",
            join(&[l(2), l(1), l(0)]),
            "VALID -",
        ),
        (
            "the sealer's line only",
            join(&[l(0)]),
            "INVALID witness_quorum",
        ),
        (
            "unpadded base64",
            join(&[l(0).trim_end_matches('=').to_owned(), l(1), l(2)]),
            "INVALID checkpoint",
        ),
        (
            "a no-break space after the dash",
            note.replacen("— ", "—\u{a0}", 1),
            "INVALID checkpoint",
        ),
        (
            "a size with a leading zero",
            note.replacen("\n3\n", "\n03\n", 1),
            "INVALID checkpoint",
        ),
    ];
    let work = std::env::temp_dir().join(anchord_testkit::unique("anchord_cross_notes"));
    std::fs::create_dir_all(&work).unwrap();
    for (i, (what, n, want)) in variants.iter().enumerate() {
        let mut b = src.clone();
        b["checkpoint"]["signed_note"] = serde_json::Value::String(n.clone());
        let path = work.join(format!("note{i}.json"));
        std::fs::write(&path, serde_json::to_vec(&b).unwrap()).unwrap();
        let (rust, ts) = both(
            &cli,
            &Case {
                bundle: &path,
                trust: Some(&policy),
                file: None,
            },
        );
        let got = format!(
            "{} {}",
            rust.verdict.as_deref().unwrap_or("usage"),
            rust.check.as_deref().unwrap_or("-")
        );
        assert_eq!(&got, want, "anchord verify, note with {what}");
        assert_eq!(rust, ts, "note with {what}");
    }
    std::fs::remove_dir_all(&work).ok();
}
