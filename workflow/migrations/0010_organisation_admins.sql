-- Issue 15 (second pass): organisation administrators. A user of role
-- 'org_admin' belongs to one organisation of any kind (bank, enterprise,
-- notary office, court) and manages that organisation's users only; the
-- platform administrator ('admin') still has no organisation.

ALTER TABLE workflow.users DROP CONSTRAINT users_role_check;
ALTER TABLE workflow.users ADD CONSTRAINT users_role_check
    CHECK (role IN ('admin', 'org_admin', 'reviewer', 'user', 'institution', 'signer'));

-- Migration 0001 tied the tenant to the roles reviewer and user, and the
-- institution to the role institution, both ways. An organisation
-- administrator has its organisation's tenant (bank, enterprise) or
-- institution (notary, court), copied by the trigger of migration 0008;
-- so: reviewers and users have a tenant, institution users an institution,
-- and whoever has no organisation has neither.
ALTER TABLE workflow.users DROP CONSTRAINT users_check;
ALTER TABLE workflow.users DROP CONSTRAINT users_check1;
ALTER TABLE workflow.users ADD CONSTRAINT users_tenant
    CHECK (role NOT IN ('reviewer', 'user') OR (tenant IS NOT NULL AND institution_id IS NULL));
ALTER TABLE workflow.users ADD CONSTRAINT users_institution
    CHECK (role <> 'institution' OR (institution_id IS NOT NULL AND tenant IS NULL));
ALTER TABLE workflow.users ADD CONSTRAINT users_unaffiliated
    CHECK (organisation_id IS NOT NULL OR (tenant IS NULL AND institution_id IS NULL));

-- The role must fit the organisation's kind: an organisation administrator
-- fits every kind.
CREATE OR REPLACE FUNCTION workflow.user_organisation() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    o workflow.organisations%ROWTYPE;
BEGIN
    IF NEW.organisation_id IS NULL THEN
        RETURN NEW;
    END IF;
    SELECT * INTO o FROM workflow.organisations WHERE id = NEW.organisation_id;
    IF (o.kind IN ('bank', 'enterprise') AND NEW.role NOT IN ('reviewer', 'user', 'org_admin'))
       OR (o.kind IN ('notary', 'court') AND NEW.role NOT IN ('institution', 'org_admin')) THEN
        RAISE EXCEPTION 'workflow.users: role % does not fit an organisation of kind %', NEW.role, o.kind
            USING ERRCODE = 'check_violation';
    END IF;
    NEW.tenant := o.tenant;
    NEW.institution_id := o.institution_id;
    RETURN NEW;
END
$$;
