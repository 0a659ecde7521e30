-- Issue 15: status transitions as data, enforced by the database.
--
-- The Rust enums of workflow/src/status.rs are the one definition of each
-- transition table; this table is its copy (a unit of the workflow's tests
-- compares them), and the trigger refuses any status change not in it,
-- whoever issues the UPDATE. Keeping the same status is always allowed (a
-- guarded UPDATE that sets other columns).
CREATE TABLE workflow.status_transitions (
    tbl         text NOT NULL,
    from_status text NOT NULL,
    to_status   text NOT NULL,
    PRIMARY KEY (tbl, from_status, to_status)
);

INSERT INTO workflow.status_transitions (tbl, from_status, to_status) VALUES
    ('preservations', 'saved', 'submitted'),
    ('preservations', 'rejected', 'submitted'),
    ('preservations', 'rejected', 'saved'),
    ('preservations', 'submitted', 'approved'),
    ('preservations', 'submitted', 'rejected'),
    ('preservations', 'approved', 'on_chain'),
    ('contracts', 'signing', 'awaiting_review'),
    ('contracts', 'signing', 'refused'),
    ('contracts', 'awaiting_review', 'approved'),
    ('contracts', 'awaiting_review', 'rejected'),
    ('contracts', 'approved', 'on_chain'),
    ('judicial_requests', 'pending', 'in_review'),
    ('judicial_requests', 'in_review', 'in_review'),
    ('judicial_requests', 'pending', 'certified'),
    ('judicial_requests', 'in_review', 'certified'),
    ('judicial_requests', 'pending', 'refused'),
    ('judicial_requests', 'in_review', 'refused'),
    ('contract_signers', 'pending', 'signed'),
    ('contract_signers', 'pending', 'refused');

CREATE FUNCTION workflow.guard_status_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND NOT EXISTS (
        SELECT 1 FROM workflow.status_transitions
         WHERE tbl = TG_TABLE_NAME AND from_status = OLD.status AND to_status = NEW.status
    ) THEN
        RAISE EXCEPTION 'workflow.%: status % -> % is not an allowed transition',
            TG_TABLE_NAME, OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER preservations_status_transition BEFORE UPDATE OF status ON workflow.preservations
    FOR EACH ROW EXECUTE FUNCTION workflow.guard_status_transition();
CREATE TRIGGER contracts_status_transition BEFORE UPDATE OF status ON workflow.contracts
    FOR EACH ROW EXECUTE FUNCTION workflow.guard_status_transition();
CREATE TRIGGER judicial_requests_status_transition BEFORE UPDATE OF status ON workflow.judicial_requests
    FOR EACH ROW EXECUTE FUNCTION workflow.guard_status_transition();
CREATE TRIGGER contract_signers_status_transition BEFORE UPDATE OF status ON workflow.contract_signers
    FOR EACH ROW EXECUTE FUNCTION workflow.guard_status_transition();
