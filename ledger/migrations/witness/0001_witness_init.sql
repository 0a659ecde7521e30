-- Anchord witness schema, version 1 (`anchord witness`).
--
-- A witness is another organisation's service (a notary office, a court)
-- with a database of its own. All it keeps is, per log origin, the latest
-- checkpoint it cosigned. Updates are compare-and-swap on (size, root) so
-- that checking a consistency proof against the stored checkpoint and
-- persisting the new one are atomic (c2sp.org/tlog-witness).

CREATE TABLE anchord_witness.checkpoints (
    origin        text   PRIMARY KEY CHECK (octet_length(origin) BETWEEN 1 AND 256),
    size          bigint NOT NULL CHECK (size >= 0),
    root          bytea  NOT NULL CHECK (octet_length(root) = 32),
    checkpoint    text   NOT NULL,
    updated_at_us bigint NOT NULL
);

-- Witnesses before this set kept their state in the ledger schema's
-- witness_checkpoints table (created in the witness's database by the old
-- start-up). Carry it over so that an upgraded witness never forgets what
-- it cosigned (forgetting would let it cosign a fork). The old table is
-- left in place, unused.
DO $$
BEGIN
    IF to_regclass('public.witness_checkpoints') IS NOT NULL THEN
        INSERT INTO anchord_witness.checkpoints (origin, size, root, checkpoint, updated_at_us)
        SELECT origin, size, root, checkpoint, updated_at_us FROM public.witness_checkpoints;
    END IF;
END
$$;
