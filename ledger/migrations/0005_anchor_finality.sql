-- Anchord ledger schema, version 5: anchor finality (issue 14).
--
-- A confirmed anchor can be lost afterwards: its block reorganised away, or
-- the whole chain reset (a dev chain restarted empty, a gateway rebuilt).
-- The relay re-verifies recorded receipts on their chain; a receipt found
-- missing is MARKED lost (lost_at, lost_reason), never deleted, and its
-- checkpoint is anchored again. So:
--
-- - `anchor_receipts` becomes a view of the live (not lost) receipts over
--   the table `anchor_receipt_log`, which keeps every receipt ever recorded.
--   Readers of `anchor_receipts` (the verifier's bundles, status, the
--   workflow's chain events) see only anchors that still stand; inserts
--   through the view keep working.
-- - A receipt has a surrogate `id`; coverage rows name the receipt that
--   covers them (`covering_receipt_id`) and are marked lost with it.
-- - Jobs get a state 'lost' (confirmed, then lost); (target, checkpoint)
--   and (target, idempotency key) are unique among the other jobs, so a
--   checkpoint whose anchor was lost can get a new job.
-- - `anchor_receipt_log.genesis_hash` binds a receipt to the chain it was
--   confirmed on; `anchor_chains` holds the chain identity each target last
--   saw (chain id and genesis block hash): a change is a chain reset.
-- - `verified_at` / `verified_depth`: the last re-verification of a
--   receipt and the confirmations it had then (final once deep enough).
-- - `anchor_jobs.discarded_submissions`: submissions replaced before they
--   could land (signed for a chain that is gone, or whose nonce was taken),
--   kept for audit; they are never sent again.

ALTER TABLE anchor_jobs DROP CONSTRAINT anchor_jobs_state_check;
ALTER TABLE anchor_jobs ADD CONSTRAINT anchor_jobs_state_check
    CHECK (state IN ('pending', 'sending', 'submitted', 'confirmed', 'covered', 'failed', 'lost'));
ALTER TABLE anchor_jobs DROP CONSTRAINT anchor_jobs_target_checkpoint_size_key;
ALTER TABLE anchor_jobs DROP CONSTRAINT anchor_jobs_target_idempotency_key_key;
CREATE UNIQUE INDEX anchor_jobs_live_checkpoint ON anchor_jobs (target, checkpoint_size)
    WHERE state <> 'lost';
CREATE UNIQUE INDEX anchor_jobs_live_key ON anchor_jobs (target, idempotency_key)
    WHERE state <> 'lost';
ALTER TABLE anchor_jobs ADD COLUMN discarded_submissions jsonb NOT NULL DEFAULT '[]';

ALTER TABLE anchor_receipts RENAME TO anchor_receipt_log;
ALTER TABLE anchor_receipt_log ADD COLUMN id bigserial;
ALTER TABLE anchor_receipt_log ADD COLUMN genesis_hash text;
ALTER TABLE anchor_receipt_log ADD COLUMN lost_at timestamptz;
ALTER TABLE anchor_receipt_log ADD COLUMN lost_reason text;
ALTER TABLE anchor_receipt_log ADD COLUMN verified_at timestamptz;
ALTER TABLE anchor_receipt_log ADD COLUMN verified_depth bigint;
ALTER TABLE anchor_receipt_log ADD CONSTRAINT anchor_receipt_log_lost_reason
    CHECK ((lost_at IS NULL) = (lost_reason IS NULL));

ALTER TABLE anchor_coverage ADD COLUMN covering_receipt_id bigint;
UPDATE anchor_coverage v SET covering_receipt_id = r.id
    FROM anchor_receipt_log r
    WHERE r.target = v.target AND r.checkpoint_size = v.covered_by_size;
ALTER TABLE anchor_coverage ALTER COLUMN covering_receipt_id SET NOT NULL;
ALTER TABLE anchor_coverage DROP CONSTRAINT anchor_coverage_target_covered_by_size_fkey;
ALTER TABLE anchor_coverage DROP CONSTRAINT anchor_coverage_pkey;
ALTER TABLE anchor_coverage ADD COLUMN lost_at timestamptz;

ALTER TABLE anchor_receipt_log DROP CONSTRAINT anchor_receipts_pkey;
ALTER TABLE anchor_receipt_log DROP CONSTRAINT anchor_receipts_target_tx_id_key;
ALTER TABLE anchor_receipt_log DROP CONSTRAINT anchor_receipts_job_id_key;
ALTER TABLE anchor_receipt_log ADD CONSTRAINT anchor_receipt_log_pkey PRIMARY KEY (id);
CREATE UNIQUE INDEX anchor_receipts_live_checkpoint ON anchor_receipt_log (target, checkpoint_size)
    WHERE lost_at IS NULL;
CREATE UNIQUE INDEX anchor_receipts_live_tx ON anchor_receipt_log (target, tx_id)
    WHERE lost_at IS NULL;
CREATE UNIQUE INDEX anchor_receipts_live_job ON anchor_receipt_log (job_id)
    WHERE lost_at IS NULL;
CREATE INDEX anchor_receipt_log_verify ON anchor_receipt_log (target, verified_at NULLS FIRST)
    WHERE lost_at IS NULL;

ALTER TABLE anchor_coverage ADD CONSTRAINT anchor_coverage_receipt_fkey
    FOREIGN KEY (covering_receipt_id) REFERENCES anchor_receipt_log (id);
CREATE UNIQUE INDEX anchor_coverage_live ON anchor_coverage (target, checkpoint_size)
    WHERE lost_at IS NULL;
CREATE INDEX anchor_coverage_receipt ON anchor_coverage (covering_receipt_id);

CREATE VIEW anchor_receipts AS
    SELECT target, checkpoint_size, job_id, chain_kind, chain_id, tx_id, block_number,
           block_hash, block_time_us, receipt, confirmed_at
    FROM anchor_receipt_log WHERE lost_at IS NULL;

CREATE TABLE anchor_chains (
    target       text PRIMARY KEY,
    chain_id     text NOT NULL,
    genesis_hash text NOT NULL,
    seen_at      timestamptz NOT NULL DEFAULT now(),
    -- How many resets were detected on this target.
    resets       bigint NOT NULL DEFAULT 0
);
