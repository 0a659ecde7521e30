-- Issue 15 (H18): the notification outbox carries SMS as well as e-mail,
-- keeps when each row was finished (sent or given up) so the mailer can
-- purge old rows after a retention, and an invitation can be claimed by
-- one registration at a time (the password is hashed only by the claimant).

-- The channel of an outbox row: `email` (the SMTP relay, recipient an
-- address) or `sms` (the SMS gateway, recipient a phone number).
ALTER TABLE workflow.mail_outbox
    ADD COLUMN channel text NOT NULL DEFAULT 'email' CHECK (channel IN ('email', 'sms')),
    ADD COLUMN finished_at timestamptz;
UPDATE workflow.mail_outbox
   SET finished_at = coalesce(sent_at, next_attempt_at, created_at)
 WHERE state <> 'pending';
ALTER TABLE workflow.mail_outbox
    ADD CONSTRAINT mail_outbox_finished CHECK ((state = 'pending') = (finished_at IS NULL));
-- The retention purge walks finished rows by age, per channel.
CREATE INDEX mail_outbox_finished_at ON workflow.mail_outbox (channel, finished_at)
    WHERE state <> 'pending';

-- What the running service sends by SMS ([workflow.sms]): invitations by
-- phone are queued only while enabled, with links under sms_link_base.
ALTER TABLE workflow.mail_settings
    ADD COLUMN sms_enabled boolean NOT NULL DEFAULT false,
    ADD COLUMN sms_link_base text NOT NULL DEFAULT '';

-- A registration in progress holds the invitation until claimed_until
-- (others are refused at once, before any password work); a crash frees it
-- when the claim lapses.
ALTER TABLE workflow.contract_invitations
    ADD COLUMN claimed_until timestamptz;
