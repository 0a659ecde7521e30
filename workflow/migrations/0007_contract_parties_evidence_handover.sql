-- Issue 15: contracts across organisations and outside signers; evidence
-- handover in judicial requests.

-- Outside signers: parties invited to a contract by e-mail or phone, who
-- register with the invitation and then read and sign only the contracts
-- they are a signer of. They belong to no bank.
ALTER TABLE workflow.users DROP CONSTRAINT users_role_check;
ALTER TABLE workflow.users ADD CONSTRAINT users_role_check
    CHECK (role IN ('admin', 'reviewer', 'user', 'institution', 'signer'));

-- A signer's slot of an invited party has no user until the invitation is
-- redeemed; only a bound slot is signed or refused.
ALTER TABLE workflow.contract_signers ALTER COLUMN user_id DROP NOT NULL;
ALTER TABLE workflow.contract_signers
    ADD CONSTRAINT contract_signers_bound CHECK (status = 'pending' OR user_id IS NOT NULL);

-- One invitation per invited slot: only the token's SHA-256 is stored; it
-- works once (redeemed_at) and until expires_at.
CREATE TABLE workflow.contract_invitations (
    contract_id     bigint NOT NULL,
    idx             integer NOT NULL,
    email           text CHECK (email IS NULL OR (length(email) BETWEEN 3 AND 254 AND email !~ '[[:cntrl:][:space:]]')),
    phone           text CHECK (phone IS NULL OR phone ~ '^\+?[0-9]{6,20}$'),
    token_hash      bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    expires_at      timestamptz NOT NULL,
    redeemed_at     timestamptz,
    redeemed_by     bigint REFERENCES workflow.users (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (contract_id, idx),
    FOREIGN KEY (contract_id, idx) REFERENCES workflow.contract_signers (contract_id, idx),
    CHECK ((email IS NULL) <> (phone IS NULL)),
    CHECK ((redeemed_at IS NULL) = (redeemed_by IS NULL))
);
CREATE INDEX contract_signers_user ON workflow.contract_signers (user_id, contract_id);

-- Judicial requests: how the applicant hands the evidence over (an attached
-- file, or the institution authorised to read the preserved one), and the
-- attached file (stored content-addressed like every workflow file).
ALTER TABLE workflow.judicial_requests
    ADD COLUMN evidence text CHECK (evidence IN ('attached', 'authorised')),
    ADD COLUMN evidence_name text,
    ADD COLUMN evidence_size bigint CHECK (evidence_size >= 0),
    ADD COLUMN evidence_sha256 text CHECK (evidence_sha256 ~ '^[0-9a-f]{64}$'),
    ADD COLUMN evidence_sm3 text CHECK (evidence_sm3 ~ '^[0-9a-f]{64}$'),
    ADD CONSTRAINT judicial_evidence_attached
        CHECK (evidence_sha256 IS NULL OR evidence = 'attached');
CREATE INDEX judicial_requests_evidence ON workflow.judicial_requests (evidence_sha256)
    WHERE evidence_sha256 IS NOT NULL;
