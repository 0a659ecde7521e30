-- Anchord ledger schema, version 1.
--
-- Invariants the schema enforces itself (the code relies on them, it does not
-- replace them):
--   * one entry per (tenant, external id): evidence.identity is unique;
--   * sequence numbers are assigned only under the ledger_head row lock, so
--     they are gap-free; blocks must cover contiguous, non-overlapping ranges
--     of existing evidence, chained height by height;
--   * a checkpoint exists only for a sealed block; a receipt only for a job.

CREATE TABLE ledger_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- The single row whose lock serialises appends and whose value is the next
-- sequence number to hand out.
CREATE TABLE ledger_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    next_seq  bigint  NOT NULL CHECK (next_seq >= 0)
);
INSERT INTO ledger_head (singleton, next_seq) VALUES (true, 0);

CREATE TABLE evidence (
    seq            bigint   PRIMARY KEY CHECK (seq >= 0),
    identity       bytea    NOT NULL UNIQUE CHECK (octet_length(identity) = 32),
    tenant         text     NOT NULL CHECK (octet_length(tenant) BETWEEN 1 AND 64),
    external_id    text     NOT NULL CHECK (octet_length(external_id) BETWEEN 1 AND 256),
    hash_alg       smallint NOT NULL CHECK (hash_alg BETWEEN 1 AND 3),
    evidence_hash  bytea    NOT NULL CHECK (octet_length(evidence_hash) IN (32, 64)),
    metadata       text     CHECK (octet_length(metadata) BETWEEN 2 AND 8192),
    received_at_us bigint   NOT NULL CHECK (received_at_us >= 0),
    entry_version  smallint NOT NULL CHECK (entry_version = 1),
    leaf_hash      bytea    NOT NULL CHECK (octet_length(leaf_hash) = 32),
    src_topic      text,
    src_partition  integer  CHECK (src_partition >= 0),
    src_offset     bigint   CHECK (src_offset >= 0),
    CHECK ((src_topic IS NULL) = (src_partition IS NULL) AND (src_topic IS NULL) = (src_offset IS NULL))
);
-- Proof lookups by the evidence hash (the verifier's main query).
CREATE INDEX evidence_by_hash ON evidence (evidence_hash);

-- Where each consumer group stands on each partition, written in the same
-- transaction as the rows those offsets cover (Kafka commits are advisory).
CREATE TABLE kafka_positions (
    consumer_group text    NOT NULL,
    topic          text    NOT NULL,
    kafka_partition integer NOT NULL CHECK (kafka_partition >= 0),
    next_offset    bigint  NOT NULL CHECK (next_offset >= 0),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, kafka_partition)
);

-- Every rejected input, durably, with its original bytes; published to the
-- dead-letter topic after commit (published_at marks it done).
CREATE TABLE dead_letters (
    id            bigserial PRIMARY KEY,
    src_topic     text,
    src_partition integer,
    src_offset    bigint,
    reason        text   NOT NULL CHECK (reason ~ '^[a-z_]+$'),
    detail        text   NOT NULL,
    payload       bytea  NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    UNIQUE (src_topic, src_partition, src_offset)
);
CREATE INDEX dead_letters_unpublished ON dead_letters (id) WHERE published_at IS NULL;

CREATE TABLE blocks (
    height        bigint   PRIMARY KEY CHECK (height >= 0),
    hash_suite    smallint NOT NULL CHECK (hash_suite IN (1, 2)),
    first_seq     bigint   NOT NULL UNIQUE REFERENCES evidence (seq),
    last_seq      bigint   NOT NULL REFERENCES evidence (seq),
    leaf_count    bigint   NOT NULL,
    merkle_root   bytea    NOT NULL CHECK (octet_length(merkle_root) = 32),
    prev_hash     bytea    NOT NULL CHECK (octet_length(prev_hash) = 32),
    block_hash    bytea    NOT NULL UNIQUE CHECK (octet_length(block_hash) = 32),
    sealed_at_us  bigint   NOT NULL CHECK (sealed_at_us >= 0),
    -- The previous block, by height and by last sequence number: the foreign
    -- key below makes ranges contiguous and the chain gap-free.
    prev_height   bigint GENERATED ALWAYS AS (CASE WHEN height = 0 THEN NULL ELSE height - 1 END) STORED,
    prev_last_seq bigint GENERATED ALWAYS AS (CASE WHEN height = 0 THEN NULL ELSE first_seq - 1 END) STORED,
    CHECK (last_seq >= first_seq),
    CHECK (leaf_count = last_seq - first_seq + 1),
    CHECK (height > 0 OR first_seq = 0),
    UNIQUE (height, last_seq),
    FOREIGN KEY (prev_height, prev_last_seq) REFERENCES blocks (height, last_seq)
);

-- Checkpoints of the block log (C2SP signed notes). Size n commits to blocks
-- 0..n-1, so the checkpoint of size n is published after block n-1.
CREATE TABLE checkpoints (
    size            bigint PRIMARY KEY CHECK (size > 0),
    last_height     bigint GENERATED ALWAYS AS (size - 1) STORED REFERENCES blocks (height),
    root            bytea  NOT NULL CHECK (octet_length(root) = 32),
    origin          text   NOT NULL,
    signed_note     text   NOT NULL,
    created_at_us   bigint NOT NULL,
    timestamp_token bytea,
    final_at_us     bigint
);

CREATE TABLE checkpoint_signatures (
    size         bigint NOT NULL REFERENCES checkpoints (size),
    key_name     text   NOT NULL,
    key_id       bytea  NOT NULL CHECK (octet_length(key_id) = 4),
    role         text   NOT NULL CHECK (role IN ('sealer', 'witness')),
    signature    bytea  NOT NULL,
    signed_at_us bigint NOT NULL,
    PRIMARY KEY (size, key_name)
);

-- The relay's outbox: one job per checkpoint and target.
CREATE TABLE anchor_jobs (
    id              bigserial PRIMARY KEY,
    target          text   NOT NULL,
    checkpoint_size bigint NOT NULL REFERENCES checkpoints (size),
    state           text   NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sending', 'submitted', 'confirmed', 'covered', 'failed')),
    idempotency_key text   NOT NULL,
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    tx_id           text,
    last_error      text,
    last_error_class text CHECK (last_error_class IN ('retriable', 'permanent')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (target, checkpoint_size),
    UNIQUE (target, idempotency_key)
);
CREATE INDEX anchor_jobs_due ON anchor_jobs (target, next_attempt_at)
    WHERE state IN ('pending', 'sending', 'submitted');

CREATE TABLE anchor_receipts (
    target          text   NOT NULL,
    checkpoint_size bigint NOT NULL REFERENCES checkpoints (size),
    job_id          bigint NOT NULL UNIQUE REFERENCES anchor_jobs (id),
    chain_kind      text   NOT NULL,
    chain_id        text   NOT NULL,
    tx_id           text   NOT NULL,
    block_number    bigint NOT NULL CHECK (block_number >= 0),
    block_hash      text   NOT NULL,
    block_time_us   bigint NOT NULL,
    receipt         jsonb  NOT NULL,
    confirmed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target, checkpoint_size),
    UNIQUE (target, tx_id)
);

-- A checkpoint that was never anchored itself, and the later anchored
-- checkpoint whose block log covers it (outage coalescing).
CREATE TABLE anchor_coverage (
    target          text   NOT NULL,
    checkpoint_size bigint NOT NULL REFERENCES checkpoints (size),
    covered_by_size bigint NOT NULL,
    CHECK (covered_by_size >= checkpoint_size),
    PRIMARY KEY (target, checkpoint_size),
    FOREIGN KEY (target, covered_by_size) REFERENCES anchor_receipts (target, checkpoint_size)
);
