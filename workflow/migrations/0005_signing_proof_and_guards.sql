-- Issue 12, flaws 2 and 5: contract signatures bound to contract and signer,
-- keys proven and not shared, contract bodies bounded.
--
-- Client-held keys need a proof of possession: a signature over the
-- registration statement (anchord-signing-key-registration/v1) naming the
-- user, the key and a one-time server challenge. Both are kept with the key
-- so the proof can be checked again later. Client keys registered before
-- this migration had no proof: they are dropped and their holders register
-- again. Platform-held keys were generated here and stay.
DELETE FROM workflow.signing_keys WHERE custody = 'client';
ALTER TABLE workflow.signing_keys
    ADD COLUMN pop_statement text,
    ADD COLUMN pop_signature bytea CHECK (pop_signature IS NULL OR octet_length(pop_signature) = 64),
    ADD CONSTRAINT signing_keys_client_proven
        CHECK ((custody = 'client') = (pop_statement IS NOT NULL AND pop_signature IS NOT NULL));
-- A public key belongs to one user.
CREATE UNIQUE INDEX signing_keys_public_key ON workflow.signing_keys (public_key);

-- One outstanding challenge per user; used once, valid until expires_at.
CREATE TABLE workflow.signing_key_challenges (
    user_id         bigint PRIMARY KEY REFERENCES workflow.users (id),
    challenge       bytea NOT NULL CHECK (octet_length(challenge) = 32),
    expires_at      timestamptz NOT NULL
);

-- The exact statement each signature covers (anchord-contract-signature/v1);
-- NULL for signatures made before (over the bare contract hash).
ALTER TABLE workflow.contract_signers ADD COLUMN statement text;
-- Who has signed with a key (a key that signed for one user is not
-- registered to another).
CREATE INDEX contract_signers_public_key ON workflow.contract_signers (public_key)
    WHERE public_key IS NOT NULL;

-- Contract bodies are rendered in one pass and bounded (256 KiB); rows
-- written before are not checked.
ALTER TABLE workflow.contracts
    ADD CONSTRAINT contracts_body_bounded CHECK (octet_length(body) <= 262144) NOT VALID;
