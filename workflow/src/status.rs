//! Record statuses as types, their transition tables, and the one
//! transition helper (issue 15).
//!
//! Each status is a Rust enum serialised as the same snake_case strings the
//! HTTP API has always shown, and a PostgreSQL CHECK on its column
//! (`0001_init.sql`); migration `0006_status_transitions.sql` holds the
//! same transition tables (`workflow.status_transitions`) and a trigger
//! that refuses any other status change, whoever issues it.
//!
//! [`transition`] is how preservations, contracts and judicial requests
//! change status: it locks the row, checks `from → to` against the table,
//! updates it guarded in SQL (`WHERE status = ANY(allowed_from)`), and
//! appends the audit row (`<kind>.<to>`, `from -> to`) in the same
//! transaction. A record in another status answers 409 naming it.

use serde::{Deserialize, Serialize};
use tokio_postgres::types::ToSql;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::store::StoreError;

/// A status column's values and its transition table.
pub trait Status: Copy + Eq + std::fmt::Debug + Send + Sync + 'static {
    /// The table whose `status` column this is.
    const TABLE: &'static str;
    /// The record's kind in messages, events and audit rows.
    const KIND: &'static str;
    /// Its name in 409 messages.
    const WHAT: &'static str;
    /// Every value.
    const ALL: &'static [Self];
    /// Every allowed change `(from, to)`.
    const TRANSITIONS: &'static [(Self, Self)];
    fn as_str(self) -> &'static str;

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.as_str() == s)
    }

    /// May a record in `from` move to `to`?
    fn allowed(from: Self, to: Self) -> bool {
        Self::TRANSITIONS.contains(&(from, to))
    }
}

macro_rules! status_enum {
    (
        $(#[$doc:meta])* $name:ident, table = $table:literal, kind = $kind:literal, what = $what:literal,
        { $($(#[$vdoc:meta])* $v:ident = $s:literal),+ $(,)? },
        transitions = [$(($f:ident, $t:ident)),* $(,)?]
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vdoc])* $v),+ }

        impl Status for $name {
            const TABLE: &'static str = $table;
            const KIND: &'static str = $kind;
            const WHAT: &'static str = $what;
            const ALL: &'static [Self] = &[$($name::$v),+];
            const TRANSITIONS: &'static [(Self, Self)] = &[$(($name::$f, $name::$t)),*];
            fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_enum! {
    /// A preservation's status.
    PreservationStatus, table = "workflow.preservations", kind = "preservation", what = "preservation",
    {
        /// Created or edited, not submitted.
        Saved = "saved",
        /// Awaiting the bank's reviewer.
        Submitted = "submitted",
        /// Approved: its evidence is on its way to the ledger.
        Approved = "approved",
        /// Sealed in a ledger block.
        OnChain = "on_chain",
        /// Rejected by the reviewer (editable, may be submitted again).
        Rejected = "rejected",
    },
    transitions = [
        (Saved, Submitted), (Rejected, Submitted), (Rejected, Saved),
        (Submitted, Approved), (Submitted, Rejected),
        (Approved, OnChain),
    ]
}

status_enum! {
    /// A contract's status.
    ContractStatus, table = "workflow.contracts", kind = "contract", what = "contract",
    {
        /// Awaiting its signers.
        Signing = "signing",
        /// Every signer signed; awaiting the bank's reviewer.
        AwaitingReview = "awaiting_review",
        /// Approved: its evidence is on its way to the ledger.
        Approved = "approved",
        /// Sealed in a ledger block.
        OnChain = "on_chain",
        /// A signer refused.
        Refused = "refused",
        /// Rejected by the reviewer.
        Rejected = "rejected",
    },
    transitions = [
        (Signing, AwaitingReview), (Signing, Refused),
        (AwaitingReview, Approved), (AwaitingReview, Rejected),
        (Approved, OnChain),
    ]
}

status_enum! {
    /// A judicial request's status.
    JudicialStatus, table = "workflow.judicial_requests", kind = "judicial_request", what = "judicial request",
    {
        /// Sent to the institution.
        Pending = "pending",
        /// The institution is reviewing it (it compared, or started).
        InReview = "in_review",
        /// Decided: a certificate (notarial certificate, ruling) issued.
        Certified = "certified",
        /// Decided: refused.
        Refused = "refused",
    },
    transitions = [
        (Pending, InReview), (InReview, InReview),
        (Pending, Certified), (InReview, Certified),
        (Pending, Refused), (InReview, Refused),
    ]
}

status_enum! {
    /// A contract signer's slot.
    SignerStatus, table = "workflow.contract_signers", kind = "contract_signer", what = "signature",
    {
        Pending = "pending",
        Signed = "signed",
        Refused = "refused",
    },
    transitions = [(Pending, Signed), (Pending, Refused)]
}

/// `a or b or c`, for messages.
pub(crate) fn names<S: Status>(v: &[S]) -> String {
    v.iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" or ")
}

pub(crate) fn strs<S: Status>(v: &[S]) -> Vec<&'static str> {
    v.iter().map(|s| s.as_str()).collect()
}

/// Who makes a change (the audit row's user).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Actor<'a> {
    pub id: Option<i64>,
    pub username: &'a str,
}

impl<'a> Actor<'a> {
    pub(crate) fn user(c: &'a crate::authz::Caller) -> Self {
        Actor {
            id: Some(c.id),
            username: &c.username,
        }
    }
    pub(crate) const SYSTEM: Actor<'static> = Actor {
        id: None,
        username: "system",
    };
}

/// What else a transition sets and checks: `set` is appended to the SET
/// list (`, col = $4`), `guard` to the WHERE clause (`AND col = $5`); their
/// parameters start at `$4` (`$1` id, `$2` new status, `$3` allowed from).
#[derive(Default)]
pub(crate) struct Change<'a> {
    pub set: &'a str,
    pub guard: &'a str,
    pub params: &'a [&'a (dyn ToSql + Sync)],
    /// Appended to the audit row's detail.
    pub note: Option<&'a str>,
}

/// Move record `id` from one of `from` to `to`, guarded in SQL, and append
/// the audit row in the same transaction. `Ok(Some(previous))` when it
/// moved, `Ok(None)` when the record is missing or in another status (or
/// `change.guard` did not hold).
pub(crate) async fn try_transition<S: Status>(
    tx: &tokio_postgres::Transaction<'_>,
    actor: Actor<'_>,
    id: i64,
    from: &[S],
    to: S,
    change: Change<'_>,
) -> Result<Option<S>, StoreError> {
    if let Some(f) = from.iter().find(|f| !S::allowed(**f, to)) {
        // A programming error: the table is the one definition.
        return Err(StoreError::Inconsistent(format!(
            "{} {} -> {} is outside the transition table",
            S::KIND,
            f.as_str(),
            to.as_str()
        )));
    }
    // The row lock orders concurrent transitions of one record; the guard
    // below is what decides.
    let Some(row) = tx
        .query_opt(
            &format!("SELECT status FROM {} WHERE id = $1 FOR UPDATE", S::TABLE),
            &[&id],
        )
        .await?
    else {
        return Ok(None);
    };
    let previous: String = row.get(0);
    let Some(previous) = S::parse(&previous) else {
        return Err(StoreError::Inconsistent(format!(
            "unknown {} status {previous:?} in the database",
            S::KIND
        )));
    };
    let sql = format!(
        "UPDATE {} SET status = $2, updated_at = now(){} WHERE id = $1 AND status = ANY($3){}",
        S::TABLE,
        change.set,
        change.guard
    );
    let from_strs = strs(from);
    let to_str = to.as_str();
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&id, &to_str, &from_strs];
    params.extend_from_slice(change.params);
    if tx.execute(&sql, &params).await? == 0 {
        return Ok(None);
    }
    let mut detail = format!("{} -> {}", previous.as_str(), to.as_str());
    if let Some(n) = change.note {
        detail.push_str(&format!(" ({n})"));
    }
    crate::audit::append_in(
        tx,
        actor.id,
        actor.username,
        &format!("{}.{}", S::KIND, to.as_str()),
        &format!("{}/{id}", S::KIND),
        "ok",
        &detail,
    )
    .await
    .map_err(StoreError::Reported)?;
    Ok(Some(previous))
}

/// [`try_transition`], answering 409 (naming the current status) or 404
/// when the record did not move. `action` names the change in the message
/// ("approval", "refusing").
pub(crate) async fn transition<S: Status>(
    tx: &tokio_postgres::Transaction<'_>,
    actor: Actor<'_>,
    id: i64,
    from: &[S],
    to: S,
    action: &str,
    change: Change<'_>,
) -> Result<S, StoreError> {
    match try_transition(tx, actor, id, from, to, change).await? {
        Some(previous) => Ok(previous),
        None => Err(conflict_error(tx, id, action, from).await),
    }
}

/// Why record `id` cannot make the change `action` (allowed from `from`):
/// its current status, or that it is gone.
pub(crate) async fn conflict_error<S: Status, C>(
    c: &C,
    id: i64,
    action: &str,
    from: &[S],
) -> StoreError
where
    C: tokio_postgres::GenericClient + Sync,
{
    match c
        .query_opt(
            &format!("SELECT status FROM {} WHERE id = $1", S::TABLE),
            &[&id],
        )
        .await
    {
        Ok(Some(r)) => StoreError::InvalidState {
            what: S::WHAT,
            status: r.get(0),
            action: action.to_owned(),
            allowed: names(from),
        },
        Ok(None) => StoreError::NotFound(S::WHAT),
        Err(e) => e.into(),
    }
}

/// [`conflict_error`] as the HTTP answer: 409 naming the current status
/// (also in `fields.status`), or 404.
pub(crate) async fn conflict<S: Status, C>(c: &C, id: i64, action: &str, from: &[S]) -> ApiError
where
    C: tokio_postgres::GenericClient + Sync,
{
    conflict_error(c, id, action, from).await.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check_table<S: Status + serde::Serialize>() {
        for s in S::ALL {
            assert_eq!(S::parse(s.as_str()), Some(*s));
            let json = serde_json::to_string(s).expect("serialises");
            assert_eq!(json, format!("\"{}\"", s.as_str()), "serde and SQL agree");
        }
        for (f, t) in S::TRANSITIONS {
            assert!(S::ALL.contains(f) && S::ALL.contains(t));
        }
    }

    #[test]
    fn every_status_serialises_as_its_sql_text() {
        check_table::<PreservationStatus>();
        check_table::<ContractStatus>();
        check_table::<JudicialStatus>();
        check_table::<SignerStatus>();
    }

    /// Walk the table from `start` by arbitrary choices.
    fn walk<S: Status>(start: S, choices: &[usize]) -> Vec<S> {
        let mut at = start;
        let mut path = vec![at];
        for c in choices {
            let next: Vec<S> = S::TRANSITIONS
                .iter()
                .filter(|(f, _)| *f == at)
                .map(|(_, t)| *t)
                .collect();
            if next.is_empty() {
                break;
            }
            at = next[c % next.len()];
            path.push(at);
        }
        path
    }

    proptest! {
        /// Whatever happens to a preservation, it reaches the chain only
        /// approved, is approved only after a submission, and leaves
        /// `on_chain` never.
        #[test]
        fn preservations_reach_the_chain_only_through_review(choices in proptest::collection::vec(0usize..8, 0..20)) {
            use PreservationStatus::*;
            let path = walk(Saved, &choices);
            for w in path.windows(2) {
                prop_assert!(PreservationStatus::allowed(w[0], w[1]));
                if w[1] == OnChain { prop_assert_eq!(w[0], Approved); }
                if w[1] == Approved { prop_assert_eq!(w[0], Submitted); }
                prop_assert_ne!(w[0], OnChain);
            }
        }

        /// A contract is approved only after every signature (awaiting
        /// review), and `refused`, `rejected` and `on_chain` are final.
        #[test]
        fn contracts_are_final_once_refused_rejected_or_on_chain(choices in proptest::collection::vec(0usize..8, 0..20)) {
            use ContractStatus::*;
            let path = walk(Signing, &choices);
            for w in path.windows(2) {
                prop_assert!(![Refused, Rejected, OnChain].contains(&w[0]));
                if w[1] == Approved { prop_assert_eq!(w[0], AwaitingReview); }
            }
        }

        /// A decided judicial request never changes again (issue 12, flaw
        /// 8: a certified request's comparison was overwritten).
        #[test]
        fn decided_judicial_requests_stay_decided(choices in proptest::collection::vec(0usize..8, 0..20)) {
            use JudicialStatus::*;
            let path = walk(Pending, &choices);
            for w in path.windows(2) {
                prop_assert!(![Certified, Refused].contains(&w[0]));
            }
        }

        /// `allowed` is exactly the table, for any pair.
        #[test]
        fn allowed_is_the_table(a in 0usize..6, b in 0usize..6) {
            let all = ContractStatus::ALL;
            let (f, t) = (all[a % all.len()], all[b % all.len()]);
            prop_assert_eq!(ContractStatus::allowed(f, t), ContractStatus::TRANSITIONS.contains(&(f, t)));
        }
    }
}
