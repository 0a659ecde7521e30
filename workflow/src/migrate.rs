//! The `workflow` schema's migrations. They run through the ledger's
//! migration runner (`anchord_ledger::migrate`: advisory lock, checksums,
//! refusal of a newer schema) with their own lock key and their own
//! `workflow.schema_migrations` table, so the two schemas evolve apart.

use anchord_ledger::migrate::{self, Migration, MigrationSet};

use crate::WorkflowError;

/// Every migration, oldest first. Append only: never edit a released one.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "sealed_platform_seeds",
        sql: include_str!("../migrations/0002_sealed_platform_seeds.sql"),
    },
    Migration {
        version: 3,
        name: "private_evidence_webhooks_gc",
        sql: include_str!("../migrations/0003_private_evidence_webhooks_gc.sql"),
    },
    Migration {
        version: 4,
        name: "account_security",
        sql: include_str!("../migrations/0004_account_security.sql"),
    },
    Migration {
        version: 5,
        name: "signing_proof_and_guards",
        sql: include_str!("../migrations/0005_signing_proof_and_guards.sql"),
    },
    Migration {
        version: 6,
        name: "status_transitions",
        sql: include_str!("../migrations/0006_status_transitions.sql"),
    },
    Migration {
        version: 7,
        name: "contract_parties_evidence_handover",
        sql: include_str!("../migrations/0007_contract_parties_evidence_handover.sql"),
    },
    Migration {
        version: 8,
        name: "organisations_notifications",
        sql: include_str!("../migrations/0008_organisations_notifications.sql"),
    },
    Migration {
        version: 9,
        name: "search_keys_disclosure",
        sql: include_str!("../migrations/0009_search_keys_disclosure.sql"),
    },
    Migration {
        version: 10,
        name: "organisation_admins",
        sql: include_str!("../migrations/0010_organisation_admins.sql"),
    },
    Migration {
        version: 11,
        name: "outbox_sms_retention_invitation_claims",
        sql: include_str!("../migrations/0011_outbox_sms_retention_invitation_claims.sql"),
    },
    Migration {
        version: 12,
        name: "usernames_one_case",
        sql: include_str!("../migrations/0012_usernames_one_case.sql"),
    },
];

/// The workflow's set: advisory lock "anchwkfl" folded into an i64 (the
/// ledger's is "anchmigr").
pub const WORKFLOW: MigrationSet = MigrationSet {
    name: "workflow",
    lock_key: 0x616e_6368_776b_666c,
    setup_sql: "CREATE SCHEMA IF NOT EXISTS workflow",
    table: "workflow.schema_migrations",
    migrations: MIGRATIONS,
};

/// Apply pending migrations under the advisory lock; returns the versions
/// applied.
pub async fn run(c: &mut deadpool_postgres::Object) -> Result<Vec<i32>, WorkflowError> {
    let applied = migrate::apply(c, &WORKFLOW)
        .await
        .map_err(|e| WorkflowError::Db(e.to_string()))?;
    Ok(applied.iter().map(|m| m.version).collect())
}
