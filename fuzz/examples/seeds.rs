//! Regenerate the derived seeds of `fuzz/corpus/` from the published test
//! vectors (`testdata/bundles/`) and the docs' examples:
//! `cargo run -p anchord-fuzz --example seeds`. The RFC 3161 seeds come from
//! `fuzz/assets/make-tsa-seeds` (openssl).

use std::path::Path;

use anchord_core::anchor::AnchorPayload;
use anchord_core::bundle::{corpus, parse_bundle};
use anchord_core::checkpoint::encode_hash;

fn write(dir: &Path, target: &str, name: &str, data: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).expect("corpus dir");
    std::fs::write(d.join(name), data).expect("write seed");
}

fn main() {
    let root = anchord_fuzz::fuzz_dir();
    let out = root.join("corpus");
    let testdata = root.join("..").join("testdata").join("bundles");
    let mut files: Vec<_> = ["valid", "invalid"]
        .iter()
        .flat_map(|d| {
            std::fs::read_dir(testdata.join(d))
                .expect("testdata")
                .flatten()
        })
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for p in &files {
        let stem = p.file_stem().and_then(|s| s.to_str()).expect("name");
        let kind = p
            .parent()
            .and_then(|d| d.file_name())
            .and_then(|d| d.to_str())
            .expect("dir");
        let text = std::fs::read_to_string(p).expect("read bundle");
        let name = format!("{kind}-{stem}.json");
        write(&out, "bundle", &name, text.as_bytes());
        write(&out, "ots", &name, text.as_bytes());
        let Ok(b) = parse_bundle(&text) else { continue };
        if kind != "valid" {
            continue;
        }
        write(&out, "entry", &format!("{stem}.bin"), &b.entry.encode());
        let h = b.block.header(b.hash_suite);
        write(
            &out,
            "checkpoint",
            &format!("{stem}-header.bin"),
            &h.encode(),
        );
        let note = &b.checkpoint.signed_note;
        write(
            &out,
            "checkpoint",
            &format!("{stem}-note.txt"),
            note.as_bytes(),
        );
        let keys = std::iter::once(b.keys.sealer.clone())
            .chain(b.keys.witnesses.iter().cloned())
            .collect::<Vec<_>>()
            .join("\n");
        write(
            &out,
            "checkpoint",
            &format!("{stem}-vkeys.txt"),
            keys.as_bytes(),
        );
        // add-checkpoint: a first checkpoint, and one with a proof.
        write(
            &out,
            "witness_add_checkpoint",
            &format!("{stem}-old0.txt"),
            format!("old 0\n\n{note}").as_bytes(),
        );
        let proof: String = b
            .audit_path
            .iter()
            .map(|h| format!("{}\n", encode_hash(h)))
            .collect();
        write(
            &out,
            "witness_add_checkpoint",
            &format!("{stem}-proof.txt"),
            format!("old 1\n{proof}\n{note}").as_bytes(),
        );
        for (i, r) in b.anchor.receipts.iter().enumerate() {
            let json = serde_json::to_vec_pretty(r).expect("receipt");
            write(&out, "relay", &format!("{stem}-receipt{i}.json"), &json);
        }
        let payload = AnchorPayload::new(
            b.checkpoint.origin.clone(),
            b.checkpoint.size,
            b.checkpoint.root,
        );
        write(
            &out,
            "relay",
            &format!("{stem}-tagged.bin"),
            &payload.encode(),
        );
    }
    // A cosigner's private key text (the witness key file format).
    let w = corpus::witness(0);
    write(
        &out,
        "checkpoint",
        "witness-key.txt",
        w.private_key_text().as_bytes(),
    );
}
