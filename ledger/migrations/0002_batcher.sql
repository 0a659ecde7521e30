-- Anchord ledger schema, version 2: the batcher and the witness.
--
-- Blocks, checkpoints and their signatures are in 0001. This adds the state
-- a witness (`anchord witness`) keeps: per origin, the latest checkpoint it
-- cosigned. Updates are compare-and-swap on (size, root) so that checking a
-- consistency proof against the stored checkpoint and persisting the new one
-- are atomic (c2sp.org/tlog-witness); a witness in production has a database
-- of its own, with this same schema.

CREATE TABLE witness_checkpoints (
    origin        text   PRIMARY KEY CHECK (octet_length(origin) BETWEEN 1 AND 256),
    size          bigint NOT NULL CHECK (size >= 0),
    root          bytea  NOT NULL CHECK (octet_length(root) = 32),
    checkpoint    text   NOT NULL,
    updated_at_us bigint NOT NULL
);

-- Checkpoints still waiting for their witness quorum (the batcher's cosigner
-- picks up the newest one after a restart).
CREATE INDEX checkpoints_not_final ON checkpoints (size) WHERE final_at_us IS NULL;
