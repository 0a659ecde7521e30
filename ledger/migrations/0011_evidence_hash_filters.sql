-- Anchord ledger schema, version 11: a filter of the evidence hashes of
-- each closed partition (issue 17).
--
-- Why: a proof by evidence hash looked the hash up in the hash index of
-- every `evidence` partition (a hash says nothing of its sequence number,
-- so nothing prunes them): O(partitions) index probes, 20 pages per cold
-- proof at 50,000,000 entries against 9 at 10,000,000. With a Bloom filter
-- per closed partition (format in core/src/filter.rs, keys
-- `evidence_hash_key(hash)`), the verifier starts the lookup at the first
-- partition that may hold the hash (`seq >= $lo`, which PostgreSQL prunes
-- by); the oldest entry is found there (the ordered scan stops at the first
-- partition with a row), so a cold proof probes one closed partition, or
-- none and the open one, whatever the ledger's size.
--
-- Same layout and rules as `identity_filters` (version 10): built once per
-- closed partition by the batcher's leader, `digest` checked at load (a
-- filter that fails it is not used), checked entry by entry by `anchord
-- audit`.

CREATE TABLE evidence_hash_filters (
    lo       bigint      PRIMARY KEY CHECK (lo >= 0),
    hi       bigint      NOT NULL CHECK (hi > lo),
    keys     bigint      NOT NULL CHECK (keys >= 0),
    format   smallint    NOT NULL,
    bits     bytea       NOT NULL,
    digest   bytea       NOT NULL CHECK (octet_length(digest) = 32),
    built_at timestamptz NOT NULL DEFAULT now()
);
