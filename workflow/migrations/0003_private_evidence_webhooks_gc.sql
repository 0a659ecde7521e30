-- Issue 12, flaws 3, 6 and 12.
--
-- Workflow evidence in the public ledger carries only a salted commitment:
-- commitment = SHA-256("anchord-workflow/commitment/v1" || 0x00 || salt || JCS(record)).
-- The salt (32 random bytes) and the committed record stay here, shown only
-- to parties authorised for the object. External ids become random
-- (`wf-<32 hex>`); rows written before this migration keep theirs.
ALTER TABLE workflow.submissions
    ADD COLUMN salt bytea CHECK (salt IS NULL OR octet_length(salt) = 32),
    ADD COLUMN record jsonb;

-- Webhooks can be disabled (no new deliveries, pending ones wait).
ALTER TABLE workflow.webhooks ADD COLUMN disabled_at timestamptz;
CREATE INDEX webhooks_tenant ON workflow.webhooks (tenant) WHERE deleted_at IS NULL;
CREATE INDEX webhook_deliveries_hook ON workflow.webhook_deliveries (webhook_id, id);

-- Stored files that may have lost their last reference (replaced, refused or
-- abandoned uploads). The collector deletes a file only when, under the
-- file's advisory lock, no row references it.
CREATE TABLE workflow.file_gc (
    sha256          text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    since           timestamptz NOT NULL DEFAULT now()
);
