//! The store layer (issue 15): per feature, the module that owns its SQL and
//! its status transitions and answers in a domain error ([`StoreError`]).
//! Handlers extract, authorise, call the store with the one connection or
//! transaction they hold (`conn.rs`: never two), and convert the error once
//! (`From<StoreError> for ApiError`), where a database failure is logged
//! once.
//!
//! Moved so far: preservations (`store/preservations.rs`). The status
//! transition helper (`status.rs`) answers in the same error.

pub mod audit;
pub mod audit_anchor;
// Contracts and judicial requests (H8).
pub mod contracts;
pub mod files;
pub mod judicial;
pub mod monitor;
// Organisations, users and sessions, inboxes, notifications, webhooks (H9).
pub mod inbox;
pub mod notify;
pub mod orgs;
pub mod preservations;
pub mod products;
pub mod search;
pub mod submissions;
pub mod users;
pub mod webhooks;

use crate::error::ApiError;

/// What a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record does not exist.
    #[error("no such {0}")]
    NotFound(&'static str),
    /// The record's status does not allow the change.
    #[error("the {what} is {status}; {action} is allowed only when it is {allowed}")]
    InvalidState {
        what: &'static str,
        status: String,
        action: String,
        allowed: String,
    },
    /// A field's value refused (422 with the field named).
    #[error("{0}: {1}")]
    Field(&'static str, String),
    /// The record changed meanwhile (a concurrent request won).
    #[error("{0}")]
    Changed(&'static str),
    /// A duplicate (409 `conflict`), with what it collides with.
    #[error("{0}")]
    Conflict(String),
    /// A transition outside its table or a status the code does not know:
    /// a bug, never the caller's fault.
    #[error("{0}")]
    Inconsistent(String),
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    /// An answer a lower layer (the audit log) already made and logged.
    #[error("{}", .0.message)]
    Reported(ApiError),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::InvalidState { ref status, .. } => {
                let mut a = ApiError::invalid_state(e.to_string());
                a.fields.insert("status".into(), status.clone());
                a
            }
            StoreError::Changed(m) => ApiError::invalid_state(m),
            StoreError::Field(k, m) => ApiError::field(k, m),
            StoreError::Conflict(m) => ApiError::conflict(m),
            StoreError::Inconsistent(m) => {
                tracing::error!(error = %m, "workflow store inconsistency");
                ApiError::internal()
            }
            // Logged here, once.
            StoreError::Db(e) => e.into(),
            StoreError::Reported(a) => a,
        }
    }
}
