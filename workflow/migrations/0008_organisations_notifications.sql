-- Issue 15: organisations as data, users per organisation, to-do inboxes and
-- e-mail notifications.
--
-- Organisations: banks and enterprises (each maps to its ledger tenant) and
-- judicial institutions (notary offices, courts: each is one row of
-- workflow.institutions). Existing deployments are seeded: one bank per
-- distinct users.tenant, one organisation per institution.
CREATE TABLE workflow.organisations (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('bank', 'enterprise', 'notary', 'court')),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200 AND name !~ '[[:cntrl:]]'),
    -- The ledger tenant of a bank or enterprise (never changes).
    tenant          text UNIQUE,
    -- The institution row of a notary office or court (never changes).
    institution_id  text UNIQUE REFERENCES workflow.institutions (id),
    -- A disabled organisation's users cannot log in; their sessions stop.
    disabled_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind IN ('bank', 'enterprise')) = (tenant IS NOT NULL)),
    CHECK ((kind IN ('notary', 'court')) = (institution_id IS NOT NULL))
);

INSERT INTO workflow.organisations (kind, name, tenant)
SELECT 'bank', t.tenant, t.tenant
  FROM (SELECT DISTINCT tenant FROM workflow.users WHERE tenant IS NOT NULL) t;

INSERT INTO workflow.organisations (kind, name, institution_id, created_at)
SELECT kind, name, id, created_at FROM workflow.institutions;

-- Users belong to an organisation (administrators to none); e-mail address
-- and display name for notifications; a reset password must be changed at
-- the next login.
ALTER TABLE workflow.users
    ADD COLUMN organisation_id bigint REFERENCES workflow.organisations (id),
    ADD COLUMN email text
        CHECK (email IS NULL OR (length(email) BETWEEN 3 AND 254 AND email !~ '[[:cntrl:][:space:]]')),
    ADD COLUMN display_name text
        CHECK (display_name IS NULL OR (length(display_name) BETWEEN 1 AND 100 AND display_name !~ '[[:cntrl:]]')),
    ADD COLUMN must_change_password boolean NOT NULL DEFAULT false;

UPDATE workflow.users u SET organisation_id = o.id
  FROM workflow.organisations o WHERE u.tenant IS NOT NULL AND o.tenant = u.tenant;
UPDATE workflow.users u SET organisation_id = o.id
  FROM workflow.organisations o
 WHERE u.institution_id IS NOT NULL AND o.institution_id = u.institution_id;

ALTER TABLE workflow.users
    -- Outside signers (role 'signer', migration 0007: parties invited to a
    -- contract) belong to no organisation either.
    ADD CONSTRAINT users_organisation CHECK ((role IN ('admin', 'signer')) = (organisation_id IS NULL));
CREATE INDEX users_organisation ON workflow.users (organisation_id, id);

-- A user's tenant and institution are their organisation's: copied from it
-- on every write, and the role must fit the organisation's kind, so the two
-- can never disagree whoever writes the row.
CREATE FUNCTION workflow.user_organisation() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    o workflow.organisations%ROWTYPE;
BEGIN
    IF NEW.organisation_id IS NULL THEN
        RETURN NEW;
    END IF;
    SELECT * INTO o FROM workflow.organisations WHERE id = NEW.organisation_id;
    IF (o.kind IN ('bank', 'enterprise') AND NEW.role NOT IN ('reviewer', 'user'))
       OR (o.kind IN ('notary', 'court') AND NEW.role <> 'institution') THEN
        RAISE EXCEPTION 'workflow.users: role % does not fit an organisation of kind %', NEW.role, o.kind
            USING ERRCODE = 'check_violation';
    END IF;
    NEW.tenant := o.tenant;
    NEW.institution_id := o.institution_id;
    RETURN NEW;
END
$$;
CREATE TRIGGER users_organisation BEFORE INSERT OR UPDATE ON workflow.users
    FOR EACH ROW EXECUTE FUNCTION workflow.user_organisation();

-- E-mail notifications. The mailer's settings as the running service
-- configured them ([workflow.smtp]): events queue mail only while enabled.
CREATE TABLE workflow.mail_settings (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    enabled         boolean NOT NULL DEFAULT false,
    -- Base of the links in mails (the console's address).
    link_base       text NOT NULL DEFAULT ''
);
INSERT INTO workflow.mail_settings DEFAULT VALUES;

-- Per-user opt-outs (no row: on).
CREATE TABLE workflow.notification_prefs (
    user_id         bigint NOT NULL REFERENCES workflow.users (id),
    kind            text NOT NULL CHECK (kind ~ '^[a-z_]+\.[a-z_]+$'),
    enabled         boolean NOT NULL,
    PRIMARY KEY (user_id, kind)
);

-- Outbox of mails, written in the transaction of the event they report; the
-- mailer sends them (at least once: a retry carries the same Message-ID).
CREATE TABLE workflow.mail_outbox (
    id              bigserial PRIMARY KEY,
    message_id      text NOT NULL UNIQUE,
    -- The addressed user; NULL for an outside invitee.
    user_id         bigint REFERENCES workflow.users (id),
    recipient       text NOT NULL CHECK (recipient !~ '[[:cntrl:][:space:]]'),
    kind            text NOT NULL,
    object          text NOT NULL,
    subject         text NOT NULL CHECK (subject !~ '[[:cntrl:]]'),
    body            text NOT NULL,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX mail_outbox_due ON workflow.mail_outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX mail_outbox_user ON workflow.mail_outbox (user_id, id);
