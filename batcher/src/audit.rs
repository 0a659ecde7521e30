//! `anchord audit`: recompute every leaf hash from its entry, every block
//! root, the block chain, the block log and every checkpoint from the
//! ledger; verify every signature. Reports every problem with its location
//! instead of stopping at the first.

use anchord_core::checkpoint::NoteVerifier;
use anchord_core::{Digest32, HashSuite, merkle, tiles};
use anchord_ledger::{Ledger, SignatureRole};

use crate::BatcherError;
use crate::sealer::{check_block_header, check_checkpoint};

/// What an audit found.
#[derive(Debug, Default, Clone)]
pub struct AuditReport {
    pub blocks: u64,
    pub entries_sealed: u64,
    pub entries_unsealed: u64,
    pub checkpoints: u64,
    pub final_checkpoints: u64,
    pub timestamped_checkpoints: u64,
    /// Each inconsistency, saying where (block height, seq, checkpoint size).
    pub problems: Vec<String>,
}

impl AuditReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

fn problem(e: BatcherError) -> String {
    match e {
        BatcherError::Integrity(s) => s,
        other => other.to_string(),
    }
}

/// Keys and rules an audit checks against.
#[derive(Debug, Clone)]
pub struct AuditKeys {
    pub sealer: NoteVerifier,
    pub witnesses: Vec<NoteVerifier>,
    pub quorum: usize,
    /// The TSA certificate (DER), to verify stored timestamp tokens.
    pub tsa_cert: Option<Vec<u8>>,
}

/// Run the audit. `progress` draws a progress bar on stderr.
pub async fn audit(
    ledger: &Ledger,
    suite: HashSuite,
    keys: &AuditKeys,
    progress: bool,
) -> Result<AuditReport, BatcherError> {
    let mut r = AuditReport::default();
    let blocks = ledger.blocks().await?;
    let head = ledger.next_seq().await?;
    let sealed = blocks.last().map_or(0, |b| b.header.last_seq + 1);
    r.blocks = blocks.len() as u64;
    r.entries_sealed = sealed;
    r.entries_unsealed = head.saturating_sub(sealed);
    let bar = if progress {
        let b = indicatif::ProgressBar::new(sealed);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} auditing [{bar:40}] {pos}/{len} entries ({per_sec}, eta {eta}) {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };

    let mut log_leaves = Vec::with_capacity(blocks.len());
    let mut prev = anchord_core::checkpoint::GENESIS_PREV_HASH;
    for (i, b) in blocks.iter().enumerate() {
        let h = &b.header;
        bar.set_message(format!("block {}", h.height));
        if let Err(e) = check_block_header(b, suite, i as u64, &prev) {
            r.problems.push(problem(e));
        }
        let expected_first = if i == 0 {
            0
        } else {
            blocks[i - 1].header.last_seq + 1
        };
        if h.first_seq != expected_first {
            r.problems.push(format!(
                "block {}: starts at seq {} but should start at {expected_first}",
                h.height, h.first_seq
            ));
        }
        let entries = ledger
            .entries_range(h.first_seq, h.last_seq.saturating_add(1))
            .await?;
        if let Err(e) = h.check_leaf_count(entries.len()) {
            r.problems.push(e.to_string());
        }
        let mut leaves = Vec::with_capacity(entries.len());
        for e in &entries {
            match e.entry.check_leaf_hash(suite, &e.leaf_hash) {
                Ok(leaf) => leaves.push(leaf),
                Err(m) => {
                    r.problems.push(m.clone().in_block(h.height).to_string());
                    leaves.push(m.recomputed);
                }
            }
        }
        if let Err(e) = h.check_root(merkle::root(suite, &leaves)) {
            r.problems.push(e.to_string());
        }
        if let Err(e) = check_block_tiles(ledger, suite, h.height, &leaves).await {
            r.problems.push(e);
        }
        prev = b.block_hash;
        log_leaves.push(h.hash());
        bar.inc(h.leaf_count);
    }
    bar.set_message("block-log tiles");
    // The block log's tiles, recomputed from the block headers, against the
    // stored ones: every stored tile must be the recomputed tile (or a
    // prefix of it: the stored tile of an older size); none may be missing.
    let reference = tiles::build_tiles(suite, &log_leaves);
    let mut log_tiles = tiles::TileSet::new();
    for (t, h) in &reference {
        log_tiles.insert(t.level, t.index, h.clone());
    }
    let stored = ledger.all_tiles().await?;
    let mut seen = std::collections::HashSet::new();
    for s in stored.iter().filter(|s| s.height.is_none()) {
        seen.insert((s.level, s.index));
        let want = log_tiles.get(s.level, s.index);
        let path = |w: usize| {
            tiles::Tile {
                level: s.level,
                index: s.index,
                width: w.clamp(1, 256) as u16,
            }
            .path()
        };
        match (tiles::tile_hashes(&s.bytes), want) {
            (Err(e), _) => r.problems.push(format!("block-log tile {}: {e}", path(0))),
            (Ok(_), None) => r.problems.push(format!(
                "block-log tile {}: stored but the {} blocks have no such tile",
                path(s.bytes.len() / 32),
                log_leaves.len()
            )),
            (Ok(got), Some(want)) => {
                if got.len() != want.len() {
                    r.problems.push(format!(
                        "block-log tile {}: {} hashes stored, the blocks give {}",
                        path(got.len()),
                        got.len(),
                        want.len()
                    ));
                } else if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
                    r.problems.push(format!(
                        "block-log tile {}: hash {i} is {} but the blocks recompute {}",
                        path(got.len()),
                        hex::encode(got[i]),
                        hex::encode(want[i])
                    ));
                }
            }
        }
    }
    for (t, _) in &reference {
        if !seen.contains(&(t.level, t.index)) {
            r.problems.push(format!("block-log tile {t}: missing"));
        }
    }
    bar.set_message("checkpoints");

    let checkpoints = ledger.checkpoints().await?;
    let signatures = ledger.checkpoint_signatures().await?;
    r.checkpoints = checkpoints.len() as u64;
    let mut expected_size = 1u64;
    for cp in &checkpoints {
        if cp.size != expected_size {
            r.problems.push(format!(
                "checkpoint {}: expected the next checkpoint to have size {expected_size}",
                cp.size
            ));
        }
        expected_size = cp.size + 1;
        let recomputed = (cp.size <= log_leaves.len() as u64)
            .then(|| tiles::root_from(suite, &log_tiles, cp.size).ok())
            .flatten();
        match check_checkpoint(
            cp,
            recomputed,
            log_leaves.len() as u64,
            &keys.sealer,
            &keys.witnesses,
        ) {
            Ok(cosigned) => {
                let reached = keys.witnesses.is_empty() || cosigned.len() >= keys.quorum;
                if cp.final_at_us.is_some() {
                    if reached {
                        r.final_checkpoints += 1;
                    } else {
                        r.problems.push(format!(
                            "checkpoint {}: marked final with {} of the {} cosignatures needed",
                            cp.size,
                            cosigned.len(),
                            keys.quorum
                        ));
                    }
                }
            }
            Err(e) => r.problems.push(problem(e)),
        }
        if let (Some(token), Some(cert)) = (&cp.timestamp_token, &keys.tsa_cert) {
            let text = anchord_core::checkpoint::SignedNote::parse(&cp.signed_note)
                .map(|n| n.text)
                .unwrap_or_default();
            match crate::tsa::verify_token(token, &HashSuite::Sha256.digest(text.as_bytes()), cert)
            {
                Ok(_) => r.timestamped_checkpoints += 1,
                Err(e) => r
                    .problems
                    .push(format!("checkpoint {}: timestamp token: {e}", cp.size)),
            }
        }
    }
    if r.checkpoints != r.blocks {
        r.problems.push(format!(
            "{} blocks but {} checkpoints (one per block expected)",
            r.blocks, r.checkpoints
        ));
    }
    // Signature rows must be the signatures in the notes.
    for s in &signatures {
        let Some(cp) = checkpoints.iter().find(|c| c.size == s.size) else {
            continue;
        };
        let in_note = anchord_core::checkpoint::SignedNote::parse(&cp.signed_note)
            .map(|n| {
                n.signatures.iter().any(|x| {
                    x.name == s.key_name && x.key_id == s.key_id && x.payload == s.signature
                })
            })
            .unwrap_or(false);
        if !in_note {
            r.problems.push(format!(
                "checkpoint {}: the {} signature row of {} is not in the signed note",
                s.size,
                match s.role {
                    SignatureRole::Sealer => "sealer",
                    SignatureRole::Witness => "witness",
                },
                s.key_name
            ));
        }
    }
    bar.finish_and_clear();
    Ok(r)
}

/// A block's stored tiles (levels 1 and up) against those its leaves give.
/// A block sealed before tiles has none (the verifier recomputes its tree),
/// but a block that has some must have all, each exactly.
async fn check_block_tiles(
    ledger: &Ledger,
    suite: HashSuite,
    height: u64,
    leaves: &[Digest32],
) -> Result<(), String> {
    let stored = ledger
        .block_tiles(height)
        .await
        .map_err(|e| format!("block {height}: tiles: {e}"))?;
    if stored.is_empty() {
        return Ok(());
    }
    let reference: Vec<_> = tiles::build_tiles(suite, leaves)
        .into_iter()
        .filter(|(t, _)| t.level > 0)
        .collect();
    if stored.len() != reference.len() {
        return Err(format!(
            "block {height}: {} tiles stored, its {} entries give {}",
            stored.len(),
            leaves.len(),
            reference.len()
        ));
    }
    for (t, want) in &reference {
        match stored.get(t.level, t.index) {
            Some(got) if got == want.as_slice() => {}
            Some(_) => {
                return Err(format!(
                    "block {height}: tile {t} does not match its entries"
                ));
            }
            None => return Err(format!("block {height}: tile {t} is missing")),
        }
    }
    Ok(())
}
