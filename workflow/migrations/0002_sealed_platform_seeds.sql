-- Platform-held signing keys are stored only sealed (workflow/src/keyseal.rs):
-- version byte || KEK id || nonce || XChaCha20-Poly1305(seed), bound to the
-- row and its public key. Seeds stored in clear by version 1 are dropped
-- (there were no deployments): those signers register a key again.
DELETE FROM workflow.signing_keys WHERE custody = 'platform';
ALTER TABLE workflow.signing_keys DROP COLUMN platform_seed;
ALTER TABLE workflow.signing_keys
    ADD COLUMN platform_seed_sealed bytea
        CHECK (octet_length(platform_seed_sealed) >= 2),
    ADD CONSTRAINT signing_keys_sealed_iff_platform
        CHECK ((custody = 'platform') = (platform_seed_sealed IS NOT NULL));
