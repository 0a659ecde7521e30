//! C2SP tlog-proof (c2sp.org/tlog-proof@v1) export of the block-log part of
//! a bundle: `extra` is the block header encoding (its RFC 6962 leaf hash is
//! the block hash), `index` the block height, the block-log inclusion path,
//! then the checkpoint with every signature.

use anchord_core::bundle::Bundle;
use anchord_core::checkpoint::{Checkpoint, SignedNote, encode_hash};
use anchord_core::merkle;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// The `.tlog-proof` text of a bundle.
pub fn export(b: &Bundle) -> String {
    let mut s = String::from("c2sp.org/tlog-proof@v1\n");
    s.push_str(&format!(
        "extra {}\n",
        B64.encode(b.block.header(b.hash_suite).encode())
    ));
    s.push_str(&format!("index {}\n", b.block.height));
    for h in &b.block_log_path {
        s.push_str(&encode_hash(h));
        s.push('\n');
    }
    s.push('\n');
    s.push_str(&b.checkpoint.signed_note);
    s
}

/// Parse a tlog-proof and check its inclusion path against its own
/// checkpoint (signatures are checked by the caller with its trusted keys).
/// Returns (extra, index, checkpoint note).
pub fn check(
    text: &str,
    suite: anchord_core::HashSuite,
) -> Result<(Vec<u8>, u64, SignedNote), String> {
    let rest = text
        .strip_prefix("c2sp.org/tlog-proof@v1\n")
        .ok_or("missing the c2sp.org/tlog-proof@v1 header")?;
    let (head, note) = rest
        .split_once("\n\n")
        .ok_or("no blank line before the checkpoint")?;
    let mut lines = head.lines().peekable();
    let mut extra = Vec::new();
    if let Some(l) = lines.peek()
        && let Some(e) = l.strip_prefix("extra ")
    {
        extra = B64.decode(e).map_err(|_| "extra is not base64")?;
        lines.next();
    }
    let index: u64 = lines
        .next()
        .and_then(|l| l.strip_prefix("index "))
        .and_then(anchord_core::checkpoint::parse_decimal)
        .ok_or("missing or malformed index line")?;
    let path = lines
        .map(|l| anchord_core::checkpoint::decode_hash(l).ok_or("bad proof hash"))
        .collect::<Result<Vec<_>, _>>()?;
    let note = SignedNote::parse(note).map_err(|e| e.to_string())?;
    let cp = Checkpoint::parse(&note.text).map_err(|e| e.to_string())?;
    let leaf = suite.leaf_hash(&extra);
    merkle::verify_inclusion(suite, index, cp.size, &leaf, &path, &cp.root)
        .map_err(|e| e.to_string())?;
    Ok((extra, index, note))
}
