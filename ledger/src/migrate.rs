//! Versioned, checksummed migrations.
//!
//! Why not `refinery` or `sqlx migrate`: we need two things they do not give
//! together with `deadpool-postgres` — a cluster-wide advisory lock so that
//! several replicas starting at once (a Kubernetes rollout) apply each
//! migration exactly once, and a refusal to start when an applied migration's
//! text has changed. That is forty lines here.

use crate::LedgerError;

/// One schema change, applied once, in version order, in its own transaction.
#[derive(Debug)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, oldest first. Append only: never edit a released one.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "batcher",
        sql: include_str!("../migrations/0002_batcher.sql"),
    },
    Migration {
        version: 3,
        name: "relay",
        sql: include_str!("../migrations/0003_relay.sql"),
    },
    Migration {
        version: 4,
        name: "evidence_hash_index",
        sql: include_str!("../migrations/0004_evidence_hash_index.sql"),
    },
    Migration {
        version: 5,
        name: "anchor_finality",
        sql: include_str!("../migrations/0005_anchor_finality.sql"),
    },
    Migration {
        version: 6,
        name: "tiles",
        sql: include_str!("../migrations/0006_tiles.sql"),
    },
    Migration {
        version: 7,
        name: "compact_evidence",
        sql: include_str!("../migrations/0007_compact_evidence.sql"),
    },
    Migration {
        version: 8,
        name: "evidence_topic_unchecked",
        sql: include_str!("../migrations/0008_evidence_topic_unchecked.sql"),
    },
    Migration {
        version: 9,
        name: "leaf_tiles",
        sql: include_str!("../migrations/0009_leaf_tiles.sql"),
    },
    Migration {
        version: 10,
        name: "identity_partitions",
        sql: include_str!("../migrations/0010_identity_partitions.sql"),
    },
    Migration {
        version: 11,
        name: "evidence_hash_filters",
        sql: include_str!("../migrations/0011_evidence_hash_filters.sql"),
    },
];

/// A schema's migrations and where their bookkeeping lives. The ledger has
/// one; the workflow layer keeps its own `workflow` schema with another, so
/// the two evolve apart under the same rules.
#[derive(Debug)]
pub struct MigrationSet {
    /// What the set is called in errors and logs ("ledger", "workflow").
    pub name: &'static str,
    /// The cluster-wide advisory lock taken while applying.
    pub lock_key: i64,
    /// Run before anything else (e.g. `CREATE SCHEMA IF NOT EXISTS …`).
    pub setup_sql: &'static str,
    /// The bookkeeping table (schema-qualified where needed).
    pub table: &'static str,
    /// Every migration, oldest first.
    pub migrations: &'static [Migration],
}

/// The ledger's own set: advisory lock "anchmigr" folded into an i64.
pub const LEDGER: MigrationSet = MigrationSet {
    name: "ledger",
    lock_key: 0x616e_6368_6d69_6772,
    setup_sql: "",
    table: "schema_migrations",
    migrations: MIGRATIONS,
};

/// The witness's own set (`anchord witness`, another organisation's
/// service): only its cosigned-checkpoint state, in schema `anchord_witness`
/// of the witness's database, under advisory lock "anchwitn". No ledger
/// table is created there.
pub const WITNESS: MigrationSet = MigrationSet {
    name: "witness",
    lock_key: 0x616e_6368_7769_746e,
    setup_sql: "CREATE SCHEMA IF NOT EXISTS anchord_witness",
    table: "anchord_witness.schema_migrations",
    migrations: WITNESS_MIGRATIONS,
};

/// The witness's migrations, oldest first. Append only.
pub const WITNESS_MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "witness_init",
    sql: include_str!("../migrations/witness/0001_witness_init.sql"),
}];

/// Where a schema stands compared with what this binary expects, read
/// without writing anything (for read-only commands and replicas).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaState {
    /// Every migration of the set is applied, with the binary's text.
    Current,
    /// No bookkeeping table or no migration applied: a new database.
    Empty,
    /// Older than the binary: `anchord migrate` has not run since the upgrade.
    Behind { found: i32, expected: i32 },
    /// Newer than the binary: upgrade anchord.
    Ahead { found: i32, expected: i32 },
    /// An applied migration's text differs from the binary's.
    Changed { version: i32 },
}

/// Read `set`'s bookkeeping table (only SELECTs; safe in a read-only
/// transaction and on a hot standby) and compare it with the binary.
pub async fn state(
    c: &deadpool_postgres::Object,
    set: &MigrationSet,
) -> Result<SchemaState, LedgerError> {
    let exists: bool = c
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&set.table])
        .await?
        .get(0);
    if !exists {
        return Ok(SchemaState::Empty);
    }
    let rows = c
        .query(&format!("SELECT version, checksum FROM {}", set.table), &[])
        .await?;
    let applied: std::collections::HashMap<i32, String> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    Ok(compare(set, &applied))
}

/// The pure half of [`state`].
pub fn compare(
    set: &MigrationSet,
    applied: &std::collections::HashMap<i32, String>,
) -> SchemaState {
    let expected = set.migrations.last().map_or(0, |m| m.version);
    let Some(found) = applied.keys().max().copied() else {
        return SchemaState::Empty;
    };
    if found > expected {
        return SchemaState::Ahead { found, expected };
    }
    for m in set.migrations {
        match applied.get(&m.version) {
            Some(sum) if *sum == checksum(m.sql) => {}
            Some(_) => return SchemaState::Changed { version: m.version },
            None => return SchemaState::Behind { found, expected },
        }
    }
    SchemaState::Current
}

/// Apply `set`'s pending migrations under its advisory lock (safe from
/// several processes at once); refuse a changed applied migration and a
/// database newer than the binary. Returns the migrations applied.
pub async fn apply(
    c: &mut deadpool_postgres::Object,
    set: &MigrationSet,
) -> Result<Vec<&'static Migration>, LedgerError> {
    c.execute("SELECT pg_advisory_lock($1)", &[&set.lock_key])
        .await?;
    let result = apply_pending(c, set).await;
    // Unlock even after a failure; the session may be pooled.
    let unlock = c
        .execute("SELECT pg_advisory_unlock($1)", &[&set.lock_key])
        .await;
    let applied = result?;
    unlock?;
    Ok(applied)
}

async fn apply_pending(
    c: &mut deadpool_postgres::Object,
    set: &MigrationSet,
) -> Result<Vec<&'static Migration>, LedgerError> {
    let table = set.table;
    c.batch_execute(&format!(
        "{}; CREATE TABLE IF NOT EXISTS {table} (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             checksum   text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
        if set.setup_sql.is_empty() {
            "SELECT 1"
        } else {
            set.setup_sql
        }
    ))
    .await?;
    let rows = c
        .query(&format!("SELECT version, checksum FROM {table}"), &[])
        .await?;
    let applied: std::collections::HashMap<i32, String> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    if let Some(max) = applied.keys().max()
        && *max > set.migrations.last().map_or(0, |m| m.version)
    {
        return Err(LedgerError::Migration {
            version: *max,
            name: set.name,
            reason: format!(
                "the {} schema is newer than this binary; upgrade anchord",
                set.name
            ),
        });
    }
    let mut done = Vec::new();
    for m in set.migrations {
        let sum = checksum(m.sql);
        match applied.get(&m.version) {
            Some(stored) if *stored == sum => continue,
            Some(stored) => {
                return Err(LedgerError::Migration {
                    version: m.version,
                    name: m.name,
                    reason: format!(
                        "{} migration text changed after it was applied (stored checksum {stored}, now {sum})",
                        set.name
                    ),
                });
            }
            None => {}
        }
        let tx = c.transaction().await?;
        tx.batch_execute(m.sql)
            .await
            .map_err(|e| LedgerError::Migration {
                version: m.version,
                name: m.name,
                reason: e.to_string(),
            })?;
        tx.execute(
            &format!("INSERT INTO {table} (version, name, checksum) VALUES ($1, $2, $3)"),
            &[&m.version, &m.name, &sum],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(
            set = set.name,
            version = m.version,
            name = m.name,
            "applied migration"
        );
        done.push(m);
    }
    Ok(done)
}

/// Hex SHA-256 of a migration's text.
pub fn checksum(sql: &str) -> String {
    hex::encode(anchord_core::HashSuite::Sha256.digest(sql.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn applied(upto: usize, set: &MigrationSet) -> HashMap<i32, String> {
        set.migrations[..upto]
            .iter()
            .map(|m| (m.version, checksum(m.sql)))
            .collect()
    }

    #[test]
    fn compare_names_empty_behind_ahead_changed_and_current() {
        let n = LEDGER.migrations.len();
        let last = LEDGER.migrations[n - 1].version;
        assert_eq!(compare(&LEDGER, &HashMap::new()), SchemaState::Empty);
        assert_eq!(compare(&LEDGER, &applied(n, &LEDGER)), SchemaState::Current);
        assert_eq!(
            compare(&LEDGER, &applied(n - 1, &LEDGER)),
            SchemaState::Behind {
                found: LEDGER.migrations[n - 2].version,
                expected: last
            }
        );
        let mut ahead = applied(n, &LEDGER);
        ahead.insert(last + 1, "x".into());
        assert_eq!(
            compare(&LEDGER, &ahead),
            SchemaState::Ahead {
                found: last + 1,
                expected: last
            }
        );
        let mut changed = applied(n, &LEDGER);
        changed.insert(1, "0".repeat(64));
        assert_eq!(
            compare(&LEDGER, &changed),
            SchemaState::Changed { version: 1 }
        );
    }

    #[test]
    fn the_witness_set_creates_no_ledger_table() {
        for m in WITNESS.migrations {
            let sql = m.sql.to_lowercase();
            for line in sql
                .lines()
                .filter(|l| l.trim_start().starts_with("create "))
            {
                assert!(
                    line.contains("anchord_witness."),
                    "witness migration {} creates outside its schema: {line}",
                    m.name
                );
            }
        }
    }
}
