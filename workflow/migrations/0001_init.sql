-- The workflow layer's schema. Owned by anchord-workflow; the ledger's
-- tables are never referenced from here (evidence reaches the ledger through
-- Kafka, like every bank stream, and is linked back by (tenant, external id)).

CREATE SCHEMA IF NOT EXISTS workflow;

-- Notary offices and courts.
CREATE TABLE workflow.institutions (
    id              text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind            text NOT NULL CHECK (kind IN ('notary', 'court')),
    -- Notarization fee in fen (CNY cents); shown to users when they apply.
    fee_cents       bigint NOT NULL DEFAULT 0 CHECK (fee_cents >= 0),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE workflow.users (
    id              bigserial PRIMARY KEY,
    username        text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
    -- argon2id PHC string.
    password_hash   text NOT NULL,
    role            text NOT NULL CHECK (role IN ('admin', 'reviewer', 'user', 'institution')),
    -- The bank (ledger tenant) of reviewers and users.
    tenant          text,
    institution_id  text REFERENCES workflow.institutions (id),
    failed_logins   integer NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((role IN ('reviewer', 'user')) = (tenant IS NOT NULL)),
    CHECK ((role = 'institution') = (institution_id IS NOT NULL))
);

-- Opaque bearer tokens: only their SHA-256 is stored.
CREATE TABLE workflow.sessions (
    token_hash      bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    user_id         bigint NOT NULL REFERENCES workflow.users (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz
);
CREATE INDEX sessions_user ON workflow.sessions (user_id);

CREATE TABLE workflow.products (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description     text NOT NULL DEFAULT '',
    channels        text[] NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);

CREATE TABLE workflow.product_fields (
    product_id      bigint NOT NULL REFERENCES workflow.products (id),
    key             text NOT NULL CHECK (key ~ '^[a-z][a-z0-9_]{0,63}$'),
    position        integer NOT NULL,
    display_name    text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    field_type      text NOT NULL CHECK (field_type IN ('text', 'number', 'date', 'email', 'phone', 'id_number')),
    max_length      integer NOT NULL CHECK (max_length BETWEEN 1 AND 4096),
    required        boolean NOT NULL,
    PRIMARY KEY (product_id, key),
    UNIQUE (product_id, position) DEFERRABLE INITIALLY DEFERRED
);

-- Evidence the workflow puts into the ledger, through the evidence topic.
-- A transactional outbox: written with the approval, published afterwards,
-- then linked to its ledger entry and block.
CREATE TABLE workflow.submissions (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('preservation', 'contract', 'certificate', 'audit_head')),
    object_id       bigint NOT NULL,
    tenant          text NOT NULL,
    external_id     text NOT NULL,
    hash_alg        text NOT NULL,
    hash            text NOT NULL,
    metadata        jsonb NOT NULL,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'published', 'recorded', 'sealed')),
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    ledger_seq      bigint,
    block_height    bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz,
    sealed_at       timestamptz,
    UNIQUE (tenant, external_id)
);
CREATE INDEX submissions_open ON workflow.submissions (id) WHERE state <> 'sealed';

CREATE TABLE workflow.preservations (
    id              bigserial PRIMARY KEY,
    number          text GENERATED ALWAYS AS ('BQ' || lpad(id::text, 10, '0')) STORED UNIQUE,
    tenant          text NOT NULL,
    product_id      bigint NOT NULL REFERENCES workflow.products (id),
    created_by      bigint NOT NULL REFERENCES workflow.users (id),
    status          text NOT NULL DEFAULT 'saved'
                    CHECK (status IN ('saved', 'submitted', 'approved', 'on_chain', 'rejected')),
    fields          jsonb NOT NULL,
    file_name       text,
    file_size       bigint,
    file_sha256     text,
    file_sm3        text,
    reject_reason   text,
    reviewed_by     bigint REFERENCES workflow.users (id),
    submission_id   bigint REFERENCES workflow.submissions (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    submitted_at    timestamptz,
    reviewed_at     timestamptz
);
CREATE INDEX preservations_tenant ON workflow.preservations (tenant, id);
CREATE INDEX preservations_sha256 ON workflow.preservations (file_sha256);

CREATE TABLE workflow.contract_types (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    template_text   text NOT NULL CHECK (length(template_text) BETWEEN 1 AND 100000),
    created_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);

CREATE TABLE workflow.contracts (
    id              bigserial PRIMARY KEY,
    number          text GENERATED ALWAYS AS ('HT' || lpad(id::text, 10, '0')) STORED UNIQUE,
    tenant          text NOT NULL,
    contract_type_id bigint NOT NULL REFERENCES workflow.contract_types (id),
    title           text NOT NULL,
    body            text NOT NULL,
    -- Hex SHA-256 (or SM3 under the sm3 suite) of the UTF-8 body.
    hash_alg        text NOT NULL,
    contract_hash   text NOT NULL,
    created_by      bigint NOT NULL REFERENCES workflow.users (id),
    status          text NOT NULL DEFAULT 'signing'
                    CHECK (status IN ('signing', 'awaiting_review', 'approved', 'on_chain', 'refused', 'rejected')),
    reject_reason   text,
    reviewed_by     bigint REFERENCES workflow.users (id),
    submission_id   bigint REFERENCES workflow.submissions (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    reviewed_at     timestamptz
);

-- Signing keys: the signer's own (public key only) or one the platform keeps
-- for them (seed stored; stated as such wherever it is used).
CREATE TABLE workflow.signing_keys (
    user_id         bigint PRIMARY KEY REFERENCES workflow.users (id),
    custody         text NOT NULL CHECK (custody IN ('client', 'platform')),
    public_key      bytea NOT NULL CHECK (octet_length(public_key) = 32),
    platform_seed   bytea CHECK (octet_length(platform_seed) = 32),
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((custody = 'platform') = (platform_seed IS NOT NULL))
);

CREATE TABLE workflow.contract_signers (
    contract_id     bigint NOT NULL REFERENCES workflow.contracts (id),
    idx             integer NOT NULL,
    user_id         bigint NOT NULL REFERENCES workflow.users (id),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'signed', 'refused')),
    custody         text CHECK (custody IN ('client', 'platform')),
    public_key      bytea,
    signature       bytea,
    refuse_reason   text,
    invited_at      timestamptz NOT NULL DEFAULT now(),
    signed_at       timestamptz,
    refused_at      timestamptz,
    PRIMARY KEY (contract_id, idx),
    UNIQUE (contract_id, user_id)
);

CREATE TABLE workflow.judicial_requests (
    id              bigserial PRIMARY KEY,
    number          text GENERATED ALWAYS AS ('SF' || lpad(id::text, 10, '0')) STORED UNIQUE,
    kind            text NOT NULL CHECK (kind IN ('notarization', 'ruling')),
    tenant          text NOT NULL,
    subject_kind    text NOT NULL CHECK (subject_kind IN ('preservation', 'contract')),
    subject_id      bigint NOT NULL,
    institution_id  text NOT NULL REFERENCES workflow.institutions (id),
    fee_cents       bigint,
    case_description text,
    purpose         text CHECK (purpose IN ('civil_litigation', 'evidence_retention', 'other')),
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'in_review', 'certified', 'refused')),
    refuse_reason   text,
    comparison      jsonb,
    certificate_sha256 text,
    certificate_size bigint,
    certificate_submission_id bigint REFERENCES workflow.submissions (id),
    created_by      bigint NOT NULL REFERENCES workflow.users (id),
    decided_by      bigint REFERENCES workflow.users (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    decided_at      timestamptz
);
CREATE INDEX judicial_requests_institution ON workflow.judicial_requests (institution_id, status, id);

-- The application log, hash-chained: row_hash = SHA-256(prev_hash || the
-- row's canonical JSON); see docs/workflow-api.md.
CREATE TABLE workflow.audit_log (
    id              bigint PRIMARY KEY,
    at_us           bigint NOT NULL,
    user_id         bigint,
    username        text NOT NULL,
    action          text NOT NULL,
    object          text NOT NULL,
    result          text NOT NULL CHECK (result IN ('ok', 'denied', 'failed')),
    detail          text NOT NULL DEFAULT '',
    prev_hash       bytea NOT NULL CHECK (octet_length(prev_hash) = 32),
    row_hash        bytea NOT NULL UNIQUE CHECK (octet_length(row_hash) = 32)
);
CREATE INDEX audit_log_at ON workflow.audit_log (at_us);

-- Each anchoring of the audit chain's head.
CREATE TABLE workflow.audit_anchors (
    upto_id         bigint PRIMARY KEY,
    head_hash       bytea NOT NULL,
    submission_id   bigint NOT NULL REFERENCES workflow.submissions (id),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE workflow.webhooks (
    id              bigserial PRIMARY KEY,
    -- NULL: every tenant's events (platform administrators only).
    tenant          text,
    url             text NOT NULL,
    secret          text NOT NULL,
    created_by      bigint NOT NULL REFERENCES workflow.users (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);

-- Outbox of webhook deliveries, written in the transaction of the change.
CREATE TABLE workflow.webhook_deliveries (
    id              bigserial PRIMARY KEY,
    delivery_id     text NOT NULL UNIQUE,
    webhook_id      bigint NOT NULL REFERENCES workflow.webhooks (id),
    event           text NOT NULL,
    body            text NOT NULL,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);
CREATE INDEX webhook_deliveries_due ON workflow.webhook_deliveries (next_attempt_at) WHERE state = 'pending';
