-- Anchord ledger schema, version 10: identities partitioned by sequence
-- range, and a filter per closed partition (issue 17).
--
-- Why: `evidence_identity`'s primary key was one B-tree over random
-- SHA-256 keys. Every append touched pages all over it, so once it outgrew
-- memory each insert read a page and, after every checkpoint, logged a
-- full-page image: on the 50,000,000-entry run the append slowed to 0.47 of
-- its first rate (docs/ledger-schema.md). Now:
--
-- * `evidence_identity` is partitioned like `evidence` (RANGE (seq), the
--   same bounds, `evidence_identity_pNNNNNNNNNNNN`). Each partition has a
--   unique index on `identity`: an append only touches the index of the
--   partitions its rows land in, which stays bounded in size.
-- * Uniqueness across partitions is the writer's explicit check: a closed
--   partition (every sequence number of it committed) never changes again,
--   and `identity_filters` holds a Bloom filter of its identities (format in
--   core/src/filter.rs), built by the batcher. The writer probes a closed
--   partition's index only for the identities its filter may hold, and
--   probes every partition without a filter under the head lock
--   (ledger/src/evidence.rs).

ALTER TABLE evidence_identity RENAME TO evidence_identity_v9;
ALTER INDEX evidence_identity_pkey RENAME TO evidence_identity_v9_pkey;

CREATE TABLE evidence_identity (
    seq      bigint NOT NULL CHECK (seq >= 0),
    identity bytea  NOT NULL CHECK (octet_length(identity) = 32)
) PARTITION BY RANGE (seq);

DO $$
DECLARE
    size bigint;
    high bigint;
    lo   bigint := 0;
    part text;
BEGIN
    SELECT value::bigint INTO size FROM ledger_meta WHERE key = 'evidence_partition_size';
    SELECT partition_high INTO high FROM ledger_head;
    WHILE lo < high LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF evidence_identity FOR VALUES FROM (%s) TO (%s)',
                       'evidence_identity_p' || lpad(lo::text, 12, '0'), lo, lo + size);
        lo := lo + size;
    END LOOP;
    INSERT INTO evidence_identity (seq, identity)
        SELECT seq, identity FROM evidence_identity_v9 ORDER BY seq;
    lo := 0;
    WHILE lo < high LOOP
        part := 'evidence_identity_p' || lpad(lo::text, 12, '0');
        EXECUTE format('CREATE UNIQUE INDEX %I ON %I (identity)', part || '_key', part);
        lo := lo + size;
    END LOOP;
END
$$;
DROP TABLE evidence_identity_v9;

-- The Bloom filter of a closed partition's identities. `digest` is
-- core::filter::filter_digest over (lo, hi, keys, bits): a filter whose
-- digest does not match is not used (its partition's index answers) and
-- `anchord audit` reports it; audit also checks that every identity of the
-- partition is in its filter.
CREATE TABLE identity_filters (
    lo       bigint      PRIMARY KEY CHECK (lo >= 0),
    hi       bigint      NOT NULL CHECK (hi > lo),
    keys     bigint      NOT NULL CHECK (keys >= 0),
    format   smallint    NOT NULL,
    bits     bytea       NOT NULL,
    digest   bytea       NOT NULL CHECK (octet_length(digest) = 32),
    built_at timestamptz NOT NULL DEFAULT now()
);
