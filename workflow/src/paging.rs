//! Keyset paging for list endpoints (`docs/workflow-api.md`, "Paging").
//!
//! Lists are newest first by id. `limit` (1-[`MAX_LIMIT`], default
//! [`DEFAULT_LIMIT`]) bounds a page; `after=<id>` continues after the item
//! with that id (the last id of the previous page), so pages stay stable
//! while rows are added. A full page carries the next cursor in the
//! `Anchord-Next-After` header; a page without it is the last.
//!
//! Use: take [`Page`] as the query (or its two fields in a wider query
//! struct), call
//! [`Page::checked`], query `WHERE ($n::bigint IS NULL OR id < $n) ORDER BY
//! id DESC LIMIT $m`, answer with [`Paged`].

use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use crate::error::ApiError;

/// Items in a page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: i64 = 100;
/// The largest page.
pub const MAX_LIMIT: i64 = 1000;
/// The response header naming the next page's `after`.
pub const NEXT_HEADER: &str = "anchord-next-after";

/// `limit` and `after` (unknown query keys are refused: a list with more
/// filters declares these two fields in its own query struct and builds a
/// `Page` from them).
#[derive(Clone, Copy, Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Items in the page (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Continue after the item with this id (the last id of the previous
    /// page; the `Anchord-Next-After` header of a full page).
    #[param(minimum = 1)]
    pub after: Option<i64>,
}

/// A checked page request.
#[derive(Clone, Copy, Debug)]
pub struct Checked {
    pub limit: i64,
    pub after: Option<i64>,
}

impl Page {
    /// 422 for a limit out of range or a non-positive cursor.
    pub fn checked(&self) -> Result<Checked, ApiError> {
        crate::error::in_range("limit", self.limit, 1, MAX_LIMIT)?;
        crate::error::in_range("after", self.after, 1, i64::MAX)?;
        Ok(Checked {
            limit: self.limit.unwrap_or(DEFAULT_LIMIT),
            after: self.after,
        })
    }
}

/// A page of items (a JSON array) with the next cursor, if the page is full.
#[derive(Debug)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next_after: Option<i64>,
}

impl<T> Paged<T> {
    /// `items` in id order, newest first; `id_of` reads an item's id.
    pub fn new(items: Vec<T>, page: Checked, id_of: impl Fn(&T) -> i64) -> Self {
        let next_after = if items.len() as i64 >= page.limit {
            items.last().map(id_of)
        } else {
            None
        };
        Paged { items, next_after }
    }
}

impl<T: Serialize> IntoResponse for Paged<T> {
    fn into_response(self) -> Response {
        let mut resp = axum::Json(self.items).into_response();
        if let Some(n) = self.next_after
            && let Ok(v) = axum::http::HeaderValue::from_str(&n.to_string())
        {
            resp.headers_mut().insert(NEXT_HEADER, v);
        }
        resp
    }
}
