-- Issue 12, flaws 1, 7, 10, 11 and 13: account management.
--
-- A disabled user cannot log in and their sessions stop working (they are
-- also revoked when the account is disabled). `password_changed_at` records
-- the last change or reset (sessions are revoked then, too).
ALTER TABLE workflow.users
    ADD COLUMN disabled_at          timestamptz,
    ADD COLUMN password_changed_at  timestamptz;

-- Expired and revoked sessions are purged by the housekeeping task.
CREATE INDEX sessions_expires ON workflow.sessions (expires_at);
CREATE INDEX sessions_revoked ON workflow.sessions (revoked_at) WHERE revoked_at IS NOT NULL;
