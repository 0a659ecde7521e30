-- Issue 15: search as the manual shows it, product field keys in the seed's
-- own styles, and what a certificate discloses (docs/workflow-api.md,
-- "Search", "Product fields", "Certificates").

-- Field keys: the seed's styles (`projName`, `ID_no`, camelCase,
-- snake_case, digits after the first character), 1-64 characters. Keys that
-- differ only by case or by `_` are one key within a product: the
-- normalized unique index refuses a second one whoever inserts it. (A
-- deployment whose products already hold such a pair, e.g. `id_no` and
-- `idno`, fails here naming it: rename one field first.)
ALTER TABLE workflow.product_fields DROP CONSTRAINT IF EXISTS product_fields_key_check;
ALTER TABLE workflow.product_fields
    ADD CONSTRAINT product_fields_key_style CHECK (key ~ '^[A-Za-z][A-Za-z0-9_]{0,63}$');
CREATE UNIQUE INDEX product_fields_key_normalized
    ON workflow.product_fields (product_id, lower(replace(key, '_', '')));

-- Whether a field's value is printed on the preservation certificate (the
-- bank chooses; nothing is disclosed unless it says so).
ALTER TABLE workflow.product_fields
    ADD COLUMN disclose_on_certificate boolean NOT NULL DEFAULT false;

-- Preservation search: every filter is served by an index that starts with
-- the tenant (non-administrators always search their own bank), newest
-- first by id (keyset paging).
CREATE INDEX preservations_tenant_product ON workflow.preservations (tenant, product_id, id);
CREATE INDEX preservations_tenant_status ON workflow.preservations (tenant, status, id);
CREATE INDEX preservations_tenant_creator ON workflow.preservations (tenant, created_by, id);
CREATE INDEX preservations_tenant_created ON workflow.preservations (tenant, created_at);
CREATE INDEX preservations_created ON workflow.preservations (created_at);
CREATE INDEX preservations_number_prefix ON workflow.preservations (number text_pattern_ops);
CREATE INDEX preservations_sm3 ON workflow.preservations (file_sm3) WHERE file_sm3 IS NOT NULL;
-- A template field's value: `fields @> {"key": "value"}` (exact value).
CREATE INDEX preservations_fields ON workflow.preservations USING gin (fields jsonb_path_ops);
-- The on-chain list of 司法出证, by evidence submission.
CREATE INDEX preservations_on_chain ON workflow.preservations (tenant, submission_id)
    WHERE status = 'on_chain';

-- Contract search (the contracts' tables are the contracts feature's; these
-- indexes serve the read-only search of store/search.rs).
CREATE INDEX IF NOT EXISTS contracts_search_tenant ON workflow.contracts (tenant, id);
CREATE INDEX IF NOT EXISTS contracts_search_type ON workflow.contracts (tenant, contract_type_id, id);
CREATE INDEX IF NOT EXISTS contracts_search_status ON workflow.contracts (tenant, status, id);
CREATE INDEX IF NOT EXISTS contracts_search_creator ON workflow.contracts (tenant, created_by, id);
CREATE INDEX IF NOT EXISTS contracts_search_created ON workflow.contracts (tenant, created_at);
CREATE INDEX IF NOT EXISTS contracts_search_created_all ON workflow.contracts (created_at);
CREATE INDEX IF NOT EXISTS contracts_search_number ON workflow.contracts (number text_pattern_ops);
CREATE INDEX IF NOT EXISTS contracts_search_hash ON workflow.contracts (contract_hash);
CREATE INDEX IF NOT EXISTS contracts_search_on_chain ON workflow.contracts (tenant, submission_id)
    WHERE status = 'on_chain';
