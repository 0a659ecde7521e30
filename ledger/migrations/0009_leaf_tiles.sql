-- Anchord ledger schema, version 9: the level-0 tiles of block trees are
-- stored (issue 17, cold proofs).
--
-- Until version 8 a proof read its entry's 256-leaf range of the block's
-- leaves from the evidence table (up to 256 rows of ~350 bytes: ~11 heap
-- pages per cold proof). Now each block's level-0 tiles (its leaf hashes,
-- 256 per tile, the last one partial; c2sp.org/tlog-tiles, core::tiles) are
-- written by the batcher in the sealing transaction, and a proof reads its
-- tile with one index probe.
--
-- Physical layout (measured, docs/ledger-schema.md "Level-0 tiles"): an
-- 8,192-byte tile does not fit a heap page inline (at most 8,160 bytes per
-- tuple with its header), so as one bytea it is TOASTed: the TOAST index
-- and two chunk pages are read on top of the row (7 buffers per read
-- against 3 here). A tile is stored as two rows, its halves: hashes
-- 0..128 (half 0) and 128..256 (half 1), each at most 4,096 bytes, kept
-- inline and uncompressed (STORAGE PLAIN: random hashes do not compress),
-- one per heap page. The halves' hashes concatenated are exactly the tile.
-- Each row also holds the root of the tile's other half (`sibling`), so one
-- row alone gives the whole path of its leaves inside the tile
-- (core::tiles::path_in_tile).
--
-- Rows are written once, with the block (or by the batcher's back-fill for
-- blocks sealed before this version), and never change.

CREATE TABLE block_leaf_tiles (
    height   bigint   NOT NULL REFERENCES blocks (height),
    idx      bigint   NOT NULL CHECK (idx >= 0),
    half     smallint NOT NULL CHECK (half IN (0, 1)),
    hashes   bytea    NOT NULL CHECK (octet_length(hashes) BETWEEN 32 AND 4096
                                      AND octet_length(hashes) % 32 = 0),
    sibling  bytea    CHECK (octet_length(sibling) = 32),
    PRIMARY KEY (height, idx, half),
    -- Half 1 exists only beside a full half 0; both name each other's root.
    CHECK (half = 0 OR sibling IS NOT NULL)
);
ALTER TABLE block_leaf_tiles
    ALTER COLUMN hashes SET STORAGE PLAIN,
    ALTER COLUMN sibling SET STORAGE PLAIN;

CREATE FUNCTION block_leaf_tiles_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'level-0 block tiles are immutable (block %)', OLD.height;
END $$;

CREATE TRIGGER block_leaf_tiles_immutable BEFORE UPDATE OR DELETE ON block_leaf_tiles
    FOR EACH ROW EXECUTE FUNCTION block_leaf_tiles_immutable();
