-- Anchord ledger schema, version 6: persistent tiles (issue 17).
--
-- The block log (leaves: block hashes; entries: block headers) and each
-- block's tree (leaves: the entries' leaf hashes) are stored as C2SP
-- tlog-tiles (c2sp.org/tlog-tiles, core::tiles): tile (level, idx) holds up
-- to 256 consecutive Merkle Tree Hashes of one level, 32 bytes each. Any
-- root, inclusion or consistency proof reads O(log n) tiles instead of every
-- leaf, so the sealer keeps only the right edge in memory and the verifier
-- answers cold proofs with a few indexed reads.
--
-- One row per tile, holding the tile as it is now: a partial tile (fewer
-- than 256 hashes) grows as blocks are sealed, in the sealing transaction,
-- and a tile only ever grows by appending (its old hashes stay a prefix), so
-- the same row serves the tile of every earlier tree size. A full tile
-- (8,192 bytes) never changes again. Both rules are enforced here.
--
-- Block trees: level 0 of a block's tree is the evidence table's leaf_hash
-- column (rows first_seq .. last_seq), not stored twice; levels 1 and up are
-- written once with the block and never change.
--
-- Ledgers sealed before this version get their block-log tiles from the
-- batcher at its next start (in batches, with progress in the log); blocks
-- sealed before it have no block_tiles rows and the verifier computes their
-- tree from the leaves, as before.

CREATE TABLE log_tiles (
    level   smallint NOT NULL CHECK (level BETWEEN 0 AND 63),
    idx     bigint   NOT NULL CHECK (idx >= 0),
    hashes  bytea    NOT NULL CHECK (octet_length(hashes) BETWEEN 32 AND 8192
                                     AND octet_length(hashes) % 32 = 0),
    PRIMARY KEY (level, idx)
);

CREATE TABLE block_tiles (
    height  bigint   NOT NULL REFERENCES blocks (height),
    level   smallint NOT NULL CHECK (level BETWEEN 1 AND 63),
    idx     bigint   NOT NULL CHECK (idx >= 0),
    hashes  bytea    NOT NULL CHECK (octet_length(hashes) BETWEEN 32 AND 8192
                                     AND octet_length(hashes) % 32 = 0),
    PRIMARY KEY (height, level, idx)
);

-- Tiles grow by appending only; full tiles and block tiles never change;
-- no tile is ever deleted.
CREATE FUNCTION log_tiles_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'log tile (%, %) cannot be deleted', OLD.level, OLD.idx;
    END IF;
    IF NEW.level <> OLD.level OR NEW.idx <> OLD.idx
       OR octet_length(OLD.hashes) = 8192
       OR octet_length(NEW.hashes) <= octet_length(OLD.hashes)
       OR substring(NEW.hashes FROM 1 FOR octet_length(OLD.hashes)) <> OLD.hashes THEN
        RAISE EXCEPTION 'log tile (%, %) can only grow by appending hashes', OLD.level, OLD.idx;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER log_tiles_append_only BEFORE UPDATE OR DELETE ON log_tiles
    FOR EACH ROW EXECUTE FUNCTION log_tiles_append_only();

CREATE FUNCTION block_tiles_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'block tiles are immutable (block %)', OLD.height;
END $$;

CREATE TRIGGER block_tiles_immutable BEFORE UPDATE OR DELETE ON block_tiles
    FOR EACH ROW EXECUTE FUNCTION block_tiles_immutable();
