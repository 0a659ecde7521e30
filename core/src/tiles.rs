//! Inclusion proofs from stored chunk roots ("tiles"), so that a proof for
//! one leaf of a large block never rebuilds the block's whole tree.
//!
//! Split a tree's `n` leaves into aligned chunks of `C` leaves (`C` a power
//! of two; the last chunk may be shorter). Every split point of RFC 6962's
//! left-balanced tree above the chunks is a multiple of `C`: for `n > C` the
//! split `k` (largest power of two below `n`) is at least `C`, and `k / C`
//! is the largest power of two below `ceil(n / C)`. So the tree over the
//! leaves is the tree over the chunk roots, each chunk a subtree; and the
//! inclusion path of leaf `i` is its path inside its chunk followed by the
//! chunk's path among the chunk roots. Checked against [`merkle`] for every
//! size up to 300 with small chunks.

use crate::merkle::{self, ProofError};
use crate::suite::{Digest32, HashSuite};

/// Roots of the aligned `chunk`-leaf chunks of `leaves` (`chunk` a power of two).
pub fn chunk_roots(suite: HashSuite, leaves: &[Digest32], chunk: usize) -> Vec<Digest32> {
    debug_assert!(chunk.is_power_of_two());
    leaves
        .chunks(chunk)
        .map(|c| merkle::root(suite, c))
        .collect()
}

/// The inclusion path of leaf `index` of a tree of `size` leaves, from the
/// leaves of its chunk (`chunk_leaves`, chunk number `index / chunk`) and the
/// roots of every chunk.
pub fn inclusion_proof(
    suite: HashSuite,
    size: u64,
    index: u64,
    chunk: u64,
    chunk_leaves: &[Digest32],
    roots: &[Digest32],
) -> Result<Vec<Digest32>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let c = index / chunk;
    let want_leaves = chunk.min(size - c * chunk);
    let want_roots = size.div_ceil(chunk);
    if chunk_leaves.len() as u64 != want_leaves || roots.len() as u64 != want_roots {
        return Err(ProofError::WrongProofLength {
            got: chunk_leaves.len(),
            want: want_leaves as usize,
        });
    }
    let mut path = merkle::inclusion_proof(suite, chunk_leaves, index % chunk)?;
    path.extend(merkle::inclusion_proof(suite, roots, c)?);
    Ok(path)
}

// ---------------------------------------------------------------------------
// C2SP tlog-tiles (c2sp.org/tlog-tiles)
// ---------------------------------------------------------------------------
//
// A tree of `size` leaves is stored as tiles: the tile at level `L`, index
// `N` holds the Merkle Tree Hashes `MTH(D[(N*256 + i) * 256^L ..
// (N*256 + i + 1) * 256^L])` for `i` in `0..W`, where `W` is 256 for a full
// tile and `floor(size / 256^L) mod 256` for the rightmost (partial) tile of
// the level. Level 0 holds the leaf hashes; each hash at level `L + 1` is the
// root of a *full* tile at level `L`. Any perfect subtree of height `h` is
// `2^(h mod 8)` consecutive hashes of one tile at level `h / 8`, so every
// RFC 6962 proof and root needs O(log n) tiles. Tiles only ever grow: the
// tile of a larger tree starts with the hashes of the same tile in a smaller
// tree, so one stored tile per (level, index) serves every tree size.

/// Hashes per full tile.
pub const TILE_WIDTH: u64 = 256;
/// Tree levels per tile level (`256 = 2^8`).
pub const TILE_HEIGHT: u32 = 8;
/// The highest tile level the spec allows.
pub const MAX_LEVEL: u8 = 63;

/// One tile of a tree of some size: its level, index and width
/// (1..=256 hashes; 256 is a full tile).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    pub level: u8,
    pub index: u64,
    pub width: u16,
}

/// Why a tile path, a tile's bytes or a tile read is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    #[error("malformed tile path {path:?}: {why}")]
    Path { path: String, why: &'static str },
    #[error("tile {tile} is missing")]
    Missing { tile: String },
    #[error("tile {tile}: {got} hashes stored, {want} needed")]
    Short {
        tile: String,
        got: usize,
        want: usize,
    },
    #[error("tile bytes: {0} is not a positive multiple of 32 up to 8192")]
    Bytes(usize),
    #[error("index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("size {size1} is larger than size {size2}")]
    SizeOrder { size1: u64, size2: u64 },
}

impl Tile {
    pub fn is_full(&self) -> bool {
        u64::from(self.width) == TILE_WIDTH
    }

    /// The resource path: `tile/<L>/<N>[.p/<W>]`.
    pub fn path(&self) -> String {
        let mut p = format!("tile/{}/{}", self.level, index_path(self.index));
        if !self.is_full() {
            p.push_str(&format!(".p/{}", self.width));
        }
        p
    }

    /// The entry bundle path of the level-0 tile: `tile/entries/<N>[.p/<W>]`.
    pub fn entries_path(&self) -> String {
        let mut p = format!("tile/entries/{}", index_path(self.index));
        if !self.is_full() {
            p.push_str(&format!(".p/{}", self.width));
        }
        p
    }

    /// Parse a path as served (`tile/<L>/<N>[.p/<W>]`, or with `entries` for
    /// `<L>`: level `None`). Strict: no leading zeroes in `L` or `W`, every
    /// index element exactly three digits, all but the last `x`-prefixed,
    /// no redundant leading `x000` element, `W` in 1..=255.
    pub fn parse_path(path: &str) -> Result<(Option<u8>, u64, u16), TileError> {
        let bad = |why: &'static str| TileError::Path {
            path: path.chars().take(200).collect(),
            why,
        };
        let rest = path
            .strip_prefix("tile/")
            .ok_or_else(|| bad("not under tile/"))?;
        let (level_s, rest) = rest.split_once('/').ok_or_else(|| bad("no index"))?;
        let level = if level_s == "entries" {
            None
        } else {
            let l = parse_small_decimal(level_s).ok_or_else(|| bad("level is not a decimal"))?;
            if l > u64::from(MAX_LEVEL) {
                return Err(bad("level above 63"));
            }
            Some(l as u8)
        };
        let (index_s, width) = match rest.split_once(".p/") {
            Some((i, w)) => {
                let w = parse_small_decimal(w).ok_or_else(|| bad("width is not a decimal"))?;
                if w == 0 || w >= TILE_WIDTH {
                    return Err(bad("partial width must be 1 to 255"));
                }
                (i, w as u16)
            }
            None => (rest, TILE_WIDTH as u16),
        };
        let parts: Vec<&str> = index_s.split('/').collect();
        let (last, front) = parts.split_last().expect("split yields one part");
        let mut index: u64 = 0;
        for (i, p) in front.iter().enumerate() {
            let d = p
                .strip_prefix('x')
                .ok_or_else(|| bad("index element lacks its x"))?;
            let v = three_digits(d).ok_or_else(|| bad("index element is not 3 digits"))?;
            if i == 0 && v == 0 {
                return Err(bad("leading x000 element"));
            }
            index = index
                .checked_mul(1000)
                .and_then(|x| x.checked_add(v))
                .ok_or_else(|| bad("index too large"))?;
        }
        let v = three_digits(last).ok_or_else(|| bad("last index element is not 3 digits"))?;
        index = index
            .checked_mul(1000)
            .and_then(|x| x.checked_add(v))
            .ok_or_else(|| bad("index too large"))?;
        Ok((level, index, width))
    }
}

impl std::fmt::Display for Tile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.path())
    }
}

fn parse_small_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

fn three_digits(s: &str) -> Option<u64> {
    if s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// `N` as zero-padded 3-digit path elements, all but the last `x`-prefixed:
/// 1234067 is `x001/x234/067`.
pub fn index_path(mut n: u64) -> String {
    let mut parts = vec![format!("{:03}", n % 1000)];
    n /= 1000;
    while n > 0 {
        parts.push(format!("x{:03}", n % 1000));
        n /= 1000;
    }
    parts.reverse();
    parts.join("/")
}

/// How many hashes level `level` has in a tree of `size` leaves:
/// `floor(size / 256^level)`.
pub fn level_len(size: u64, level: u8) -> u64 {
    let shift = u32::from(level) * TILE_HEIGHT;
    if shift >= 64 { 0 } else { size >> shift }
}

/// The width of tile (`level`, `index`) in a tree of `size` leaves, `None`
/// if the tree has no such tile (empty tiles do not exist).
pub fn tile_width(size: u64, level: u8, index: u64) -> Option<u16> {
    let n = level_len(size, level);
    let start = index.checked_mul(TILE_WIDTH)?;
    (n > start).then(|| (n - start).min(TILE_WIDTH) as u16)
}

/// The tile (with its width in a tree of `size`) holding hash `pos` of
/// `level`, if the tree has that hash.
pub fn tile_for(size: u64, level: u8, pos: u64) -> Option<Tile> {
    let index = pos / TILE_WIDTH;
    let width = tile_width(size, level, index)?;
    (pos % TILE_WIDTH < u64::from(width)).then_some(Tile {
        level,
        index,
        width,
    })
}

/// Every tile of a tree of `size` leaves, by level then index.
pub fn tiles_for_size(size: u64) -> Vec<Tile> {
    let mut out = Vec::new();
    for level in 0..=MAX_LEVEL {
        let n = level_len(size, level);
        if n == 0 {
            break;
        }
        for index in 0..n.div_ceil(TILE_WIDTH) {
            let width = tile_width(size, level, index).expect("index below the level's length");
            out.push(Tile {
                level,
                index,
                width,
            });
        }
    }
    out
}

/// The rightmost tile of each level of a tree of `size` leaves, full or
/// partial: what [`TileEdge::from_tiles`] reads.
pub fn edge_tiles(size: u64) -> Vec<Tile> {
    let mut out = Vec::new();
    for level in 0..=MAX_LEVEL {
        let n = level_len(size, level);
        if n == 0 {
            break;
        }
        let w = n % TILE_WIDTH;
        if w > 0 {
            out.push(Tile {
                level,
                index: n / TILE_WIDTH,
                width: w as u16,
            });
        }
    }
    out
}

/// The tiles whose contents differ between a tree of `old` and one of `new`
/// leaves (`old <= new`), with their widths at `new`: what appending
/// `new - old` leaves writes.
pub fn tiles_touched(old: u64, new: u64) -> Vec<Tile> {
    let mut out = Vec::new();
    if new <= old {
        return out;
    }
    for level in 0..=MAX_LEVEL {
        let (a, b) = (level_len(old, level), level_len(new, level));
        if b == a {
            break;
        }
        for index in a / TILE_WIDTH..b.div_ceil(TILE_WIDTH) {
            let width = tile_width(new, level, index).expect("index below the level's length");
            out.push(Tile {
                level,
                index,
                width,
            });
        }
    }
    out
}

/// Every tile of the tree over `leaves` with its hashes, by level then
/// index: the in-memory reference (and the backfill of a small tree).
pub fn build_tiles(suite: HashSuite, leaves: &[Digest32]) -> Vec<(Tile, Vec<Digest32>)> {
    let mut out = Vec::new();
    let mut level_hashes: Vec<Digest32> = leaves.to_vec();
    let mut level = 0u8;
    while !level_hashes.is_empty() {
        let mut next = Vec::with_capacity(level_hashes.len() / TILE_WIDTH as usize);
        for (index, chunk) in level_hashes.chunks(TILE_WIDTH as usize).enumerate() {
            out.push((
                Tile {
                    level,
                    index: index as u64,
                    width: chunk.len() as u16,
                },
                chunk.to_vec(),
            ));
            if chunk.len() as u64 == TILE_WIDTH {
                next.push(merkle::root(suite, chunk));
            }
        }
        level_hashes = next;
        level += 1;
    }
    out
}

/// Hashes per stored half of a block tree's level-0 tile (ledger schema
/// version 9, `block_leaf_tiles`): a full 8,192-byte tile does not fit a
/// PostgreSQL heap page inline (TOAST would add an index and two chunk
/// pages to every read), a 4,096-byte half does.
pub const HALF_WIDTH: usize = 128;

/// One stored half of a level-0 tile: hashes `128 * half ..` of the tile
/// (at most 128), and the root of the tile's other half when the tile has
/// one (`MTH` of hashes 128.. for half 0, of hashes ..128 for half 1), so
/// that one half alone gives the whole path of its leaves inside the tile.
/// The halves' hashes concatenated are exactly the C2SP tile's contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TileHalf {
    pub half: u8,
    pub hashes: Vec<Digest32>,
    pub sibling: Option<Digest32>,
}

/// A level-0 tile's hashes (1 to 256) split into its stored halves.
pub fn tile_halves(suite: HashSuite, hashes: &[Digest32]) -> Vec<TileHalf> {
    let (left, right) = hashes.split_at(hashes.len().min(HALF_WIDTH));
    if right.is_empty() {
        return vec![TileHalf {
            half: 0,
            hashes: left.to_vec(),
            sibling: None,
        }];
    }
    vec![
        TileHalf {
            half: 0,
            hashes: left.to_vec(),
            sibling: Some(merkle::root(suite, right)),
        },
        TileHalf {
            half: 1,
            hashes: right.to_vec(),
            sibling: Some(merkle::root(suite, left)),
        },
    ]
}

/// The RFC 9162 path of hash `pos` (0..256) of a level-0 tile inside that
/// tile, from the one stored half holding it: the path inside the half,
/// then the other half's root. (A tile of more than 128 leaves splits at
/// 128: its left subtree is half 0, its right subtree half 1.)
pub fn path_in_tile(suite: HashSuite, h: &TileHalf, pos: u64) -> Result<Vec<Digest32>, ProofError> {
    let first = u64::from(h.half) * HALF_WIDTH as u64;
    if pos < first || pos - first >= h.hashes.len() as u64 {
        return Err(ProofError::IndexOutOfRange {
            index: pos,
            size: first + h.hashes.len() as u64,
        });
    }
    let mut path = merkle::inclusion_proof(suite, &h.hashes, pos - first)?;
    path.extend(h.sibling);
    Ok(path)
}

/// What a proof reads of its entry's level-0 tile: the one stored half
/// holding the entry (with the other half's root), or, for a block whose
/// tiles are not stored yet, the whole tile from the evidence rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Level0 {
    Half(TileHalf),
    Tile(Vec<Digest32>),
}

impl Level0 {
    /// Whether this is the data of position `pos` (0..256) of a level-0
    /// tile `width` hashes wide: the whole tile, or the half holding `pos`
    /// with as many hashes as that half has and the other half's root
    /// exactly when the tile has another half.
    pub fn fits(&self, width: u64, pos: u64) -> bool {
        let half = HALF_WIDTH as u64;
        match self {
            Level0::Tile(t) => t.len() as u64 == width && pos < width,
            Level0::Half(h) => {
                let first = u64::from(h.half) * half;
                let len = width.saturating_sub(first).min(half);
                h.half <= 1
                    && pos < width
                    && pos / half == u64::from(h.half)
                    && h.hashes.len() as u64 == len
                    && h.sibling.is_some() == (width > half)
            }
        }
    }

    /// The RFC 9162 path of position `pos` inside the tile.
    pub fn path(&self, suite: HashSuite, pos: u64) -> Result<Vec<Digest32>, ProofError> {
        match self {
            Level0::Tile(t) => merkle::inclusion_proof(suite, t, pos),
            Level0::Half(h) => path_in_tile(suite, h, pos),
        }
    }
}

/// Tiles as stored: 32-byte hashes concatenated.
pub fn tile_bytes(hashes: &[Digest32]) -> Vec<u8> {
    hashes.concat()
}

/// Parse stored or served tile bytes into hashes.
pub fn tile_hashes(bytes: &[u8]) -> Result<Vec<Digest32>, TileError> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(32) || bytes.len() > 32 * TILE_WIDTH as usize
    {
        return Err(TileError::Bytes(bytes.len()));
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|c| c.try_into().expect("32 bytes"))
        .collect())
}

/// An entry bundle (`tile/entries/<N>`): each entry preceded by its length
/// as a big-endian uint16. Entries longer than 65,535 bytes cannot be
/// bundled (`None`); the block log's entries are 119-byte block headers.
pub fn entry_bundle<E: AsRef<[u8]>>(entries: &[E]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(entries.iter().map(|e| e.as_ref().len() + 2).sum());
    for e in entries {
        let e = e.as_ref();
        out.extend_from_slice(&u16::try_from(e.len()).ok()?.to_be_bytes());
        out.extend_from_slice(e);
    }
    Some(out)
}

/// Split an entry bundle into its entries (`None` if truncated).
pub fn parse_entry_bundle(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (len, tail) = rest.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len));
        if tail.len() < len {
            return None;
        }
        let (e, tail) = tail.split_at(len);
        out.push(e);
        rest = tail;
    }
    Some(out)
}

/// Where tiles come from. `read` returns the tile's hashes: at least
/// `tile.width` of them (a stored tile that has grown since may return
/// more; only the first `tile.width` are used).
pub trait TileReader {
    fn read(&self, tile: Tile) -> Result<Vec<Digest32>, TileError>;

    /// True for a reader that only records which tiles are read (its
    /// hashes are placeholders): the computation then skips hashing.
    fn records_only(&self) -> bool {
        false
    }
}

/// Tiles in memory, by (level, index), each as long as it was stored.
#[derive(Clone, Debug, Default)]
pub struct TileSet {
    tiles: std::collections::HashMap<(u8, u64), Vec<Digest32>>,
}

impl TileSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, level: u8, index: u64, hashes: Vec<Digest32>) {
        self.tiles.insert((level, index), hashes);
    }

    pub fn get(&self, level: u8, index: u64) -> Option<&[Digest32]> {
        self.tiles.get(&(level, index)).map(Vec::as_slice)
    }

    pub fn len(&self) -> usize {
        self.tiles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tiles.is_empty()
    }
}

impl TileReader for TileSet {
    fn read(&self, tile: Tile) -> Result<Vec<Digest32>, TileError> {
        let got = self
            .tiles
            .get(&(tile.level, tile.index))
            .ok_or_else(|| TileError::Missing { tile: tile.path() })?;
        if got.len() < usize::from(tile.width) {
            return Err(TileError::Short {
                tile: tile.path(),
                got: got.len(),
                want: tile.width.into(),
            });
        }
        Ok(got[..usize::from(tile.width)].to_vec())
    }
}

/// Records which tiles a computation reads (answering zeroes): the set to
/// fetch before running it for real.
#[derive(Default)]
struct Recorder(std::cell::RefCell<std::collections::BTreeSet<Tile>>);

impl TileReader for Recorder {
    fn read(&self, tile: Tile) -> Result<Vec<Digest32>, TileError> {
        self.0.borrow_mut().insert(tile);
        Ok(vec![[0u8; 32]; usize::from(tile.width)])
    }

    fn records_only(&self) -> bool {
        true
    }
}

fn recorded(f: impl FnOnce(&Recorder) -> Result<(), TileError>) -> Result<Vec<Tile>, TileError> {
    let r = Recorder::default();
    f(&r)?;
    Ok(r.0.into_inner().into_iter().collect())
}

/// The tiles [`inclusion_proof_from`] reads for leaf `index` of a tree of `size`.
pub fn inclusion_tiles(size: u64, index: u64) -> Result<Vec<Tile>, TileError> {
    recorded(|r| inclusion_proof_from(HashSuite::Sha256, r, size, index).map(drop))
}

/// The tiles [`consistency_proof_from`] reads (and those of both roots).
pub fn consistency_tiles(size1: u64, size2: u64) -> Result<Vec<Tile>, TileError> {
    recorded(|r| {
        consistency_proof_from(HashSuite::Sha256, r, size1, size2)?;
        root_from(HashSuite::Sha256, r, size1)?;
        root_from(HashSuite::Sha256, r, size2).map(drop)
    })
}

/// The tiles [`root_from`] reads for a tree of `size`.
pub fn root_tiles(size: u64) -> Vec<Tile> {
    recorded(|r| root_from(HashSuite::Sha256, r, size).map(drop)).unwrap_or_default()
}

/// The hash of the perfect subtree of height `height` whose leaves are
/// `k * 2^height ..= (k + 1) * 2^height - 1`, in a tree of `size` leaves
/// (the subtree must be complete in it): one tile read.
fn perfect_hash(
    suite: HashSuite,
    r: &dyn TileReader,
    size: u64,
    height: u32,
    k: u64,
) -> Result<Digest32, TileError> {
    let level = (height / TILE_HEIGHT) as u8;
    let sub = height % TILE_HEIGHT;
    let first = k << sub;
    let count = 1u64 << sub;
    let tile = tile_for(size, level, first + count - 1).ok_or(TileError::IndexOutOfRange {
        index: (first + count) << (u32::from(level) * TILE_HEIGHT),
        size,
    })?;
    let hashes = r.read(tile)?;
    if hashes.len() < usize::from(tile.width) {
        return Err(TileError::Short {
            tile: tile.path(),
            got: hashes.len(),
            want: tile.width.into(),
        });
    }
    if r.records_only() {
        return Ok([0u8; 32]);
    }
    let off = (first % TILE_WIDTH) as usize;
    Ok(merkle::root(suite, &hashes[off..off + count as usize]))
}

/// `MTH(D[lo:hi])` in a tree of `size` leaves (`lo < hi <= size`), from
/// tiles: RFC 6962's recursion, reading one tile per aligned perfect subtree.
pub fn range_hash(
    suite: HashSuite,
    r: &dyn TileReader,
    size: u64,
    lo: u64,
    hi: u64,
) -> Result<Digest32, TileError> {
    if hi > size || lo >= hi {
        return Err(TileError::IndexOutOfRange { index: hi, size });
    }
    let n = hi - lo;
    if n.is_power_of_two() && lo.is_multiple_of(n) {
        return perfect_hash(suite, r, size, n.trailing_zeros(), lo / n);
    }
    let k = split_point(n);
    let left = range_hash(suite, r, size, lo, lo + k)?;
    let right = range_hash(suite, r, size, lo + k, hi)?;
    if r.records_only() {
        return Ok(left);
    }
    Ok(suite.node_hash(&left, &right))
}

fn split_point(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The RFC 6962 root of the tree of `size` leaves, from tiles.
pub fn root_from(suite: HashSuite, r: &dyn TileReader, size: u64) -> Result<Digest32, TileError> {
    if size == 0 {
        return Ok(suite.empty_root());
    }
    range_hash(suite, r, size, 0, size)
}

/// The RFC 9162 inclusion proof of leaf `index` in the tree of `size`
/// leaves, from tiles (bottom-up, as [`merkle::inclusion_proof`]).
pub fn inclusion_proof_from(
    suite: HashSuite,
    r: &dyn TileReader,
    size: u64,
    index: u64,
) -> Result<Vec<Digest32>, TileError> {
    if index >= size {
        return Err(TileError::IndexOutOfRange { index, size });
    }
    let (mut lo, mut hi) = (0u64, size);
    let mut path = Vec::new();
    while hi - lo > 1 {
        let mid = lo + split_point(hi - lo);
        if index < mid {
            path.push(range_hash(suite, r, size, mid, hi)?);
            hi = mid;
        } else {
            path.push(range_hash(suite, r, size, lo, mid)?);
            lo = mid;
        }
    }
    path.reverse();
    Ok(path)
}

/// The RFC 9162 consistency proof from the tree of `size1` leaves to the
/// tree of `size2`, from the tiles of the larger tree.
pub fn consistency_proof_from(
    suite: HashSuite,
    r: &dyn TileReader,
    size1: u64,
    size2: u64,
) -> Result<Vec<Digest32>, TileError> {
    if size1 > size2 {
        return Err(TileError::SizeOrder { size1, size2 });
    }
    if size1 == 0 || size1 == size2 {
        return Ok(Vec::new());
    }
    let (mut lo, mut hi, mut m, mut whole_old_tree) = (0u64, size2, size1, true);
    let mut proof = Vec::new();
    loop {
        let n = hi - lo;
        if m == n {
            if !whole_old_tree {
                proof.push(range_hash(suite, r, size2, lo, hi)?);
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            proof.push(range_hash(suite, r, size2, lo + k, hi)?);
            hi = lo + k;
        } else {
            proof.push(range_hash(suite, r, size2, lo, lo + k)?);
            lo += k;
            m -= k;
            whole_old_tree = false;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// The right edge of a tiled tree: the hashes of the rightmost (partial)
/// tile of every level. Enough to append leaves, to name and fill the tiles
/// each append changes, and to compute the root: O(log n) memory, whatever
/// the size (at most 255 hashes per level).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TileEdge {
    suite: HashSuite,
    size: u64,
    /// `levels[L]`: the partial tile of level `L` (fewer than 256 hashes).
    levels: Vec<Vec<Digest32>>,
}

impl TileEdge {
    pub fn new(suite: HashSuite) -> Self {
        TileEdge {
            suite,
            size: 0,
            levels: Vec::new(),
        }
    }

    /// The edge of a tree of `size` leaves, reading [`edge_tiles`]`(size)`.
    pub fn from_tiles(suite: HashSuite, r: &dyn TileReader, size: u64) -> Result<Self, TileError> {
        let mut levels = Vec::new();
        for level in 0..=MAX_LEVEL {
            let n = level_len(size, level);
            if n == 0 {
                break;
            }
            let w = (n % TILE_WIDTH) as usize;
            let hashes = if w == 0 {
                Vec::new()
            } else {
                let t = Tile {
                    level,
                    index: n / TILE_WIDTH,
                    width: w as u16,
                };
                let mut h = r.read(t)?;
                if h.len() < w {
                    return Err(TileError::Short {
                        tile: t.path(),
                        got: h.len(),
                        want: w,
                    });
                }
                h.truncate(w);
                h
            };
            levels.push(hashes);
        }
        Ok(TileEdge {
            suite,
            size,
            levels,
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn suite(&self) -> HashSuite {
        self.suite
    }

    /// Append one leaf; returns the tiles it changed with their new
    /// contents (a tile that just became full is returned whole).
    pub fn push(&mut self, leaf: Digest32) -> Vec<(Tile, Vec<Digest32>)> {
        let mut changed = Vec::new();
        let mut carry = leaf;
        let mut level = 0usize;
        self.size += 1;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let l = &mut self.levels[level];
            l.push(carry);
            let index = level_len(self.size, level as u8).saturating_sub(1) / TILE_WIDTH;
            let tile = Tile {
                level: level as u8,
                index,
                width: l.len() as u16,
            };
            changed.push((tile, l.clone()));
            if l.len() as u64 == TILE_WIDTH {
                carry = merkle::root(self.suite, l);
                l.clear();
                level += 1;
            } else {
                break;
            }
        }
        changed
    }

    /// Append several leaves; returns the final contents of every tile
    /// changed ([`tiles_touched`]), by level then index.
    pub fn extend(&mut self, leaves: &[Digest32]) -> Vec<(Tile, Vec<Digest32>)> {
        let mut changed: std::collections::BTreeMap<(u8, u64), (Tile, Vec<Digest32>)> =
            Default::default();
        for l in leaves {
            for (t, h) in self.push(*l) {
                changed.insert((t.level, t.index), (t, h));
            }
        }
        changed.into_values().collect()
    }

    /// The RFC 6962 root: the edge is a compact range (each level's partial
    /// tile splits into perfect subtrees by the binary digits of its width).
    pub fn root(&self) -> Digest32 {
        let mut parts: Vec<Digest32> = Vec::new();
        for l in self.levels.iter().rev() {
            let mut off = 0usize;
            for bit in (0..TILE_HEIGHT).rev() {
                let c = 1usize << bit;
                if l.len() & c != 0 {
                    parts.push(merkle::root(self.suite, &l[off..off + c]));
                    off += c;
                }
            }
        }
        let mut it = parts.into_iter().rev();
        let Some(mut acc) = it.next() else {
            return self.suite.empty_root();
        };
        for left in it {
            acc = self.suite.node_hash(&left, &acc);
        }
        acc
    }

    /// The root with one more leaf, without appending it.
    pub fn root_with(&self, leaf: Digest32) -> Digest32 {
        let mut next = self.clone();
        next.push(leaf);
        next.root()
    }

    /// The edge's tiles as a reader (the rightmost tile of each level).
    pub fn tile_set(&self) -> TileSet {
        let mut s = TileSet::new();
        for (level, l) in self.levels.iter().enumerate() {
            if !l.is_empty() {
                let index = level_len(self.size, level as u8) / TILE_WIDTH;
                s.insert(level as u8, index, l.clone());
            }
        }
        s
    }

    /// The last leaf appended, if the tree is not empty and it is still in
    /// the edge (always, unless the size is a multiple of 256).
    pub fn last_leaf(&self) -> Option<Digest32> {
        self.levels.first().and_then(|l| l.last().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_halves_concatenate_to_the_tile_and_give_its_paths() {
        for suite in HashSuite::ALL {
            let leaves: Vec<Digest32> = (0..256u32)
                .map(|i| suite.leaf_hash(&i.to_be_bytes()))
                .collect();
            for w in 1..=256usize {
                let tile = &leaves[..w];
                let halves = tile_halves(suite, tile);
                assert_eq!(halves.len(), if w > 128 { 2 } else { 1 }, "width {w}");
                let joined: Vec<Digest32> = halves.iter().flat_map(|h| h.hashes.clone()).collect();
                assert_eq!(joined, tile, "width {w}");
                for (i, h) in halves.iter().enumerate() {
                    assert_eq!(usize::from(h.half), i);
                    assert!(h.hashes.len() <= HALF_WIDTH);
                }
                for pos in 0..w as u64 {
                    let h = &halves[pos as usize / HALF_WIDTH];
                    assert_eq!(
                        path_in_tile(suite, h, pos).unwrap(),
                        merkle::inclusion_proof(suite, tile, pos).unwrap(),
                        "width {w} pos {pos}"
                    );
                }
                let other = &halves[halves.len() - 1];
                if w > 128 {
                    assert!(path_in_tile(suite, other, 0).is_err());
                }
                assert!(path_in_tile(suite, other, w as u64).is_err());
            }
        }
    }

    /// A proof's level-0 data fits only its own position and width: a half
    /// read for another position, a half one hash short or long, a sibling
    /// root missing or extra, or a whole tile of another width is refused
    /// (the prover then reads the leaves); what fits gives the tile's path.
    #[test]
    fn level0_data_fits_only_its_own_position_and_width() {
        let suite = HashSuite::Sha256;
        let leaves: Vec<Digest32> = (0..256u32)
            .map(|i| suite.leaf_hash(&i.to_be_bytes()))
            .collect();
        for w in [1usize, 2, 127, 128, 129, 200, 255, 256] {
            let tile = &leaves[..w];
            let halves = tile_halves(suite, tile);
            for pos in 0..w as u64 {
                let want = merkle::inclusion_proof(suite, tile, pos).unwrap();
                let mine = Level0::Half(halves[pos as usize / HALF_WIDTH].clone());
                assert!(mine.fits(w as u64, pos), "width {w} pos {pos}");
                assert_eq!(mine.path(suite, pos).unwrap(), want);
                let whole = Level0::Tile(tile.to_vec());
                assert!(whole.fits(w as u64, pos));
                assert_eq!(whole.path(suite, pos).unwrap(), want);
                assert!(!whole.fits(w as u64 + 1, pos));
                assert!(!mine.fits(w as u64, w as u64));
                if w > 128 {
                    let other = Level0::Half(halves[1 - pos as usize / HALF_WIDTH].clone());
                    assert!(!other.fits(w as u64, pos), "width {w} pos {pos}");
                }
            }
            for h in &halves {
                let mut short = h.clone();
                short.hashes.pop();
                let mut long = h.clone();
                long.hashes.push([7; 32]);
                let mut flipped = h.clone();
                flipped.sibling = if h.sibling.is_some() {
                    None
                } else {
                    Some([7; 32])
                };
                let pos = u64::from(h.half) * HALF_WIDTH as u64;
                for bad in [short, long, flipped] {
                    assert!(!Level0::Half(bad).fits(w as u64, pos), "width {w}");
                }
            }
        }
    }

    #[test]
    fn tiled_paths_equal_whole_tree_paths() {
        let suite = HashSuite::Sha256;
        let leaves: Vec<Digest32> = (0..300u32)
            .map(|i| suite.leaf_hash(&i.to_be_bytes()))
            .collect();
        for chunk in [1u64, 2, 4, 16, 64] {
            for n in 1..=leaves.len() {
                let t = &leaves[..n];
                let roots = chunk_roots(suite, t, chunk as usize);
                assert_eq!(merkle::root(suite, &roots), merkle::root(suite, t));
                for i in (0..n as u64).step_by(7).chain([n as u64 - 1]) {
                    let c = (i / chunk) as usize;
                    let cl = &t[c * chunk as usize..((c + 1) * chunk as usize).min(n)];
                    let got = inclusion_proof(suite, n as u64, i, chunk, cl, &roots).unwrap();
                    assert_eq!(
                        got,
                        merkle::inclusion_proof(suite, t, i).unwrap(),
                        "n {n} i {i} chunk {chunk}"
                    );
                }
            }
        }
    }
    use proptest::prelude::*;

    fn leaves(n: u64) -> Vec<Digest32> {
        (0..n)
            .map(|i| HashSuite::Sha256.leaf_hash(&i.to_be_bytes()))
            .collect()
    }

    fn set_of(built: &[(Tile, Vec<Digest32>)]) -> TileSet {
        let mut s = TileSet::new();
        for (t, h) in built {
            s.insert(t.level, t.index, h.clone());
        }
        s
    }

    #[test]
    fn entry_bundles_are_uint16_length_prefixed() {
        let b = entry_bundle(&[b"ab".as_slice(), b"".as_slice(), b"xyz".as_slice()]).unwrap();
        assert_eq!(b, b"\x00\x02ab\x00\x00\x00\x03xyz");
        assert_eq!(
            parse_entry_bundle(&b).unwrap(),
            vec![&b"ab"[..], &b""[..], &b"xyz"[..]]
        );
        assert!(parse_entry_bundle(&b[..b.len() - 1]).is_none());
        assert!(parse_entry_bundle(&[0]).is_none());
        assert!(entry_bundle(&[vec![0u8; 65_536]]).is_none());
    }

    #[test]
    fn tile_paths_follow_the_spec() {
        assert_eq!(index_path(0), "000");
        assert_eq!(index_path(999), "999");
        assert_eq!(index_path(1000), "x001/000");
        assert_eq!(index_path(1234067), "x001/x234/067");
        let t = Tile {
            level: 0,
            index: 1234067,
            width: 256,
        };
        assert_eq!(t.path(), "tile/0/x001/x234/067");
        let p = Tile {
            level: 2,
            index: 5,
            width: 17,
        };
        assert_eq!(p.path(), "tile/2/005.p/17");
        assert_eq!(p.entries_path(), "tile/entries/005.p/17");
        assert_eq!(
            Tile::parse_path("tile/0/x001/x234/067").unwrap(),
            (Some(0), 1234067, 256)
        );
        assert_eq!(
            Tile::parse_path("tile/2/005.p/17").unwrap(),
            (Some(2), 5, 17)
        );
        assert_eq!(
            Tile::parse_path("tile/entries/000.p/1").unwrap(),
            (None, 0, 1)
        );
        assert_eq!(Tile::parse_path("tile/63/000").unwrap(), (Some(63), 0, 256));
        for bad in [
            "tile/0/1",
            "tile/00/000",
            "tile/64/000",
            "tile/0/x000/001",
            "tile/0/001/002",
            "tile/0/x01/002",
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/0/000.p/017",
            "tile/0/000.p/",
            "tile/0/",
            "tile/0",
            "tiles/0/000",
            "tile/-1/000",
            "tile/0/00a",
            "tile/0/x001/x234/067/",
            "tile/0/x999/x999/x999/x999/x999/x999/x999/999",
            "tile/a/000",
            "tile/0/+01",
        ] {
            assert!(Tile::parse_path(bad).is_err(), "{bad} accepted");
        }
    }

    /// The spec's example (a tree of 70,000 leaves) and hashes computed by
    /// an independent Python implementation of RFC 6962 (leaves are
    /// `H(0x00 || i as 8 big-endian bytes)`).
    #[test]
    fn tiles_of_70000_leaves_match_the_spec_example_and_independent_vectors() {
        let all = tiles_for_size(70_000);
        let count = |l: u8, full: bool| {
            all.iter()
                .filter(|t| t.level == l && t.is_full() == full)
                .count()
        };
        assert_eq!((count(0, true), count(0, false)), (273, 1));
        assert_eq!((count(1, true), count(1, false)), (1, 1));
        assert_eq!((count(2, true), count(2, false)), (0, 1));
        assert_eq!(all.len(), 277);
        assert!(all.contains(&Tile {
            level: 0,
            index: 273,
            width: 112
        }));
        assert!(all.contains(&Tile {
            level: 1,
            index: 1,
            width: 17
        }));
        assert!(all.contains(&Tile {
            level: 2,
            index: 0,
            width: 1
        }));
        assert_eq!(
            tiles_for_size(256),
            vec![
                Tile {
                    level: 0,
                    index: 0,
                    width: 256
                },
                Tile {
                    level: 1,
                    index: 0,
                    width: 1
                }
            ]
        );
        let built = build_tiles(HashSuite::Sha256, &leaves(70_000));
        assert_eq!(built.iter().map(|(t, _)| *t).collect::<Vec<_>>(), all);
        let sha = |t: Tile| {
            let (_, h) = built.iter().find(|(x, _)| *x == t).unwrap();
            hex::encode(HashSuite::Sha256.digest(&tile_bytes(h)))
        };
        assert_eq!(
            sha(Tile {
                level: 0,
                index: 272,
                width: 256
            }),
            "f33da3aeeb4da30453ed750cea6fd7a46dbb364aaf65b9747d180a316fdf6571"
        );
        assert_eq!(
            sha(Tile {
                level: 1,
                index: 0,
                width: 256
            }),
            "dbf848d70619481ec09adf64ff73d027ffd27f3cab12570d5087d7e9fede902a"
        );
        assert_eq!(
            sha(Tile {
                level: 1,
                index: 1,
                width: 17
            }),
            "4fd210567f39abfd6af3acd3f895698cbaaf1b83bd764f98d7d81f431454aa54"
        );
        let (_, l2) = built.iter().find(|(t, _)| t.level == 2).unwrap();
        assert_eq!(
            hex::encode(l2[0]),
            "bc9bca909516d5bf148c2bf2dea0a0d9f717ce4987d2fe7504d6694363b41598"
        );
        let root = root_from(HashSuite::Sha256, &set_of(&built), 70_000).unwrap();
        assert_eq!(
            hex::encode(root),
            "0759167a0f98e35e802d46ff7c7d29d2c3f03a63a256deb6abbff357a91b63b1"
        );
    }

    /// Every hash of every tile is the RFC 6962 hash of the leaves it spans.
    fn check_tiles_against_reference(suite: HashSuite, l: &[Digest32]) {
        for (t, hashes) in build_tiles(suite, l) {
            let span = 1usize << (u32::from(t.level) * TILE_HEIGHT);
            assert_eq!(hashes.len(), usize::from(t.width));
            for (i, h) in hashes.iter().enumerate() {
                let start = (t.index as usize * 256 + i) * span;
                assert_eq!(
                    *h,
                    merkle::root(suite, &l[start..start + span]),
                    "{t} hash {i}"
                );
            }
        }
    }

    /// Roots, inclusion and consistency proofs from tiles equal the
    /// in-memory computation; old sizes are served from grown tiles.
    fn check_proofs(suite: HashSuite, l: &[Digest32], size1: u64, indices: &[u64]) {
        let size = l.len() as u64;
        let set = set_of(&build_tiles(suite, l));
        assert_eq!(
            root_from(suite, &set, size).unwrap(),
            merkle::root(suite, l),
            "root {size}"
        );
        assert_eq!(
            root_from(suite, &set, size1).unwrap(),
            merkle::root(suite, &l[..size1 as usize]),
            "root {size1} from the tiles of {size}"
        );
        for &i in indices {
            let got = inclusion_proof_from(suite, &set, size, i).unwrap();
            assert_eq!(
                got,
                merkle::inclusion_proof(suite, l, i).unwrap(),
                "size {size} index {i}"
            );
            assert!(
                inclusion_tiles(size, i).unwrap().len()
                    <= 2 * tiles_for_size(size).iter().map(|t| t.level).max().unwrap() as usize + 3
            );
            if i < size1 {
                let old = inclusion_proof_from(suite, &set, size1, i).unwrap();
                assert_eq!(
                    old,
                    merkle::inclusion_proof(suite, &l[..size1 as usize], i).unwrap()
                );
            }
        }
        let c = consistency_proof_from(suite, &set, size1, size).unwrap();
        assert_eq!(
            c,
            merkle::consistency_proof(suite, l, size1).unwrap(),
            "{size1} -> {size}"
        );
        // Only the tiles the recorder names are needed.
        let mut needed = TileSet::new();
        for t in consistency_tiles(size1, size).unwrap() {
            needed.insert(
                t.level,
                t.index,
                set.get(t.level, t.index).unwrap().to_vec(),
            );
        }
        assert_eq!(
            consistency_proof_from(suite, &needed, size1, size).unwrap(),
            c
        );
    }

    #[test]
    fn tiles_and_proofs_equal_the_reference_at_tile_boundaries() {
        let big = leaves(65_537 + 300);
        for size in [
            1u64,
            2,
            3,
            255,
            256,
            257,
            511,
            512,
            513,
            65_535,
            65_536,
            65_537,
            65_537 + 300,
        ] {
            let l = &big[..size as usize];
            if size <= 513 {
                for suite in HashSuite::ALL {
                    let l: Vec<Digest32> = (0..size)
                        .map(|i| suite.leaf_hash(&i.to_be_bytes()))
                        .collect();
                    check_tiles_against_reference(suite, &l);
                    check_proofs(
                        suite,
                        &l,
                        size / 2 + 1,
                        &(0..size).step_by(7).chain([size - 1]).collect::<Vec<_>>(),
                    );
                }
            } else {
                check_tiles_against_reference(HashSuite::Sha256, l);
                for size1 in [1, 255, 256, 257, 65_535, 65_536, size - 1, size] {
                    check_proofs(
                        HashSuite::Sha256,
                        l,
                        size1.min(size),
                        &[0, 255, 256, 65_535.min(size - 1), size - 1],
                    );
                }
            }
        }
    }

    #[test]
    fn the_edge_appends_exactly_the_reference_tiles() {
        for suite in HashSuite::ALL {
            let l: Vec<Digest32> = (0..66_100u64)
                .map(|i| suite.leaf_hash(&i.to_be_bytes()))
                .collect();
            let mut edge = TileEdge::new(suite);
            assert_eq!(edge.root(), suite.empty_root());
            let mut done = 0usize;
            for step in [1usize, 254, 1, 1, 300, 65_000, 1, 443] {
                let before = edge.size();
                let predicted = edge.root_with(l[done]);
                let changed = edge.extend(&l[done..done + step]);
                if step == 1 {
                    assert_eq!(predicted, edge.root());
                }
                done += step;
                let reference = build_tiles(suite, &l[..done]);
                let want: Vec<_> = tiles_touched(before, done as u64)
                    .into_iter()
                    .map(|t| reference.iter().find(|(x, _)| *x == t).unwrap().clone())
                    .collect();
                assert_eq!(changed, want, "append {before} -> {done}");
                assert_eq!(
                    edge.root(),
                    merkle::root(suite, &l[..done]),
                    "root at {done}"
                );
                let reread = TileEdge::from_tiles(suite, &set_of(&reference), done as u64).unwrap();
                assert_eq!(reread, edge, "edge at {done}");
            }
        }
    }

    #[test]
    fn proofs_read_a_handful_of_tiles_on_a_huge_tree() {
        let size = 1u64 << 40 | 123_456_789;
        for i in [0, 1, 255, 256, size / 3, size - 256, size - 1] {
            let n = inclusion_tiles(size, i).unwrap().len();
            assert!(n <= 12, "{n} tiles for index {i}");
        }
        assert!(consistency_tiles(size / 2 + 7, size).unwrap().len() <= 20);
        assert!(root_tiles(size).len() <= 6);
        assert_eq!(edge_tiles(size).len(), 5);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn tiles_and_proofs_equal_the_reference_for_random_sizes(size in 1u64..3_000, a in any::<u64>(), b in any::<u64>()) {
            let l = leaves(size);
            check_tiles_against_reference(HashSuite::Sha256, &l);
            check_proofs(HashSuite::Sha256, &l, a % size + 1, &[a % size, b % size]);
        }

        #[test]
        fn tile_paths_round_trip(level in 0u8..=63, index in any::<u64>(), width in 1u16..=256) {
            let t = Tile { level, index: index >> 4, width };
            prop_assert_eq!(Tile::parse_path(&t.path()).unwrap(), (Some(level), index >> 4, width));
        }
    }
}
