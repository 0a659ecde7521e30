-- Anchord ledger schema, version 3: the relay.
--
-- The outbox (anchor_jobs), receipts and coverage are in 0001. This adds
-- what the relay records BEFORE it sends anything: the target-specific
-- submission (for an EVM chain the signed raw transaction, its hash and
-- nonce; for a judicial gateway the request it built). A job whose state is
-- 'sending' or 'submitted' may be on chain; the relay asks the target before
-- it ever resubmits, and resubmits the recorded submission (same idempotency
-- key, same EVM nonce), so a crash between send and record cannot anchor the
-- same checkpoint twice.

ALTER TABLE anchor_jobs ADD COLUMN submission jsonb;
ALTER TABLE anchor_jobs ADD COLUMN sent_at timestamptz;
