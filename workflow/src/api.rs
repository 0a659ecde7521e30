//! The axum router, the audit middleware and the OpenAPI document.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use utoipa::OpenApi;

use crate::auth;
use crate::authz::{self, Caller};
use crate::console::UniqueOperationIds;
use crate::error::ApiError;
use crate::{
    Workflow, audit, audit_anchor, contracts, judicial, monitor, preservations, products, webhooks,
};
use crate::{certificates, search};
use crate::{inbox, mailer, orgs, proofs};

/// Every route of `docs/workflow-api.md`.
pub fn router(wf: Arc<Workflow>) -> Router {
    let uploads = Router::new()
        .route("/v1/preservations/{id}/file", put(preservations::upload))
        .route(
            "/v1/judicial-requests/{id}/compare",
            post(judicial::compare),
        )
        .route(
            "/v1/judicial-requests/{id}/certificate",
            post(judicial::issue_certificate),
        )
        // contracts & judicial (H8): the applicant's evidence upload.
        .route(
            "/v1/judicial-requests/{id}/evidence",
            put(judicial::attach_evidence).get(judicial::download_evidence),
        )
        // The whole request body, multipart envelope included, is bounded:
        // multer buffers a part's header section in memory until it ends,
        // so an unbounded body let one request grow memory without limit.
        .layer(DefaultBodyLimit::max(crate::files::upload_body_limit(
            &wf.config,
        )));
    let api = Router::new()
        .route("/v1/auth/login", post(auth::login))
        .route("/v1/auth/logout", post(auth::logout))
        .route("/v1/me", get(auth::me))
        .route(
            "/v1/me/signing-key",
            get(contracts::get_key).put(contracts::register_key),
        )
        .route(
            "/v1/me/signing-key/challenge",
            post(contracts::key_challenge),
        )
        .route("/v1/contract-types/{id}", get(contracts::get_type))
        .route("/v1/users", get(auth::list_users).post(auth::post_user))
        .route("/v1/users/{id}/disable", post(auth::disable_user))
        .route("/v1/users/{id}/enable", post(auth::enable_user))
        .route("/v1/users/{id}/password", put(auth::reset_password))
        .route(
            "/v1/users/{id}/sessions",
            axum::routing::delete(auth::revoke_user_sessions),
        )
        .route("/v1/me/password", put(auth::change_password))
        .route(
            "/v1/institutions",
            get(auth::list_institutions).post(auth::post_institution),
        )
        .route("/v1/products", get(products::list).post(products::create))
        .route(
            "/v1/products/{id}",
            get(products::get)
                .patch(products::patch)
                .delete(products::delete),
        )
        .route("/v1/products/{id}/preview", get(products::preview))
        .route("/v1/products/{id}/fields", post(products::add_field))
        .route("/v1/products/{id}/fields/order", put(products::reorder))
        .route(
            "/v1/products/{id}/fields/{key}",
            axum::routing::patch(products::edit_field).delete(products::delete_field),
        )
        .route(
            "/v1/preservations",
            get(preservations::list).post(preservations::create),
        )
        .route(
            "/v1/preservations/{id}",
            get(preservations::get).patch(preservations::edit),
        )
        .route("/v1/preservations/{id}/file", get(preservations::download))
        .route("/v1/preservations/{id}/submit", post(preservations::submit))
        .route(
            "/v1/preservations/{id}/approve",
            post(preservations::approve),
        )
        .route("/v1/preservations/{id}/reject", post(preservations::reject))
        .route("/v1/preservations/{id}/proof", get(preservations::proof))
        .route(
            "/v1/preservations/{id}/certificate",
            get(preservations::certificate),
        )
        .route(
            "/v1/contract-types",
            get(contracts::list_types).post(contracts::create_type),
        )
        .route(
            "/v1/contracts",
            get(contracts::list).post(contracts::create),
        )
        .route("/v1/contracts/{id}", get(contracts::get))
        .route("/v1/contracts/{id}/sign", post(contracts::sign))
        .route("/v1/contracts/{id}/refuse", post(contracts::refuse))
        .route("/v1/contracts/{id}/approve", post(contracts::approve))
        .route("/v1/contracts/{id}/reject", post(contracts::reject))
        .route("/v1/contracts/{id}/proof", get(contracts::proof))
        .route(
            "/v1/contracts/{id}/certificate",
            get(contracts::certificate),
        )
        .route(
            "/v1/judicial-requests",
            get(judicial::list).post(judicial::create),
        )
        .route("/v1/judicial-requests/{id}", get(judicial::get))
        .route("/v1/judicial-requests/{id}/review", post(judicial::review))
        .route("/v1/judicial-requests/{id}/refuse", post(judicial::refuse))
        .route(
            "/v1/judicial-requests/{id}/certificate",
            get(judicial::download_certificate),
        )
        // contracts & judicial (H8): invitations of outside signers,
        // contract certificates as JSON, the evidence handover.
        .route(
            "/v1/invitations/preview",
            post(contracts::invitation_preview),
        )
        .route(
            "/v1/invitations/register",
            post(contracts::invitation_register),
        )
        .route("/v1/invitations/accept", post(contracts::invitation_accept))
        .route(
            "/v1/contracts/{id}/certificate.json",
            get(contracts::certificate_json),
        )
        .route(
            "/v1/judicial-requests/{id}/subject",
            get(judicial::subject_view),
        )
        .route(
            "/v1/judicial-requests/{id}/proof",
            get(judicial::subject_proof),
        )
        .route(
            "/v1/judicial-requests/{id}/compare-evidence",
            post(judicial::compare_evidence),
        )
        .route(
            "/v1/judicial-requests/{id}/comparison-report",
            get(judicial::comparison_report),
        )
        .route("/v1/audit", get(audit::list))
        .route("/v1/audit/verify", get(audit::verify))
        .route("/v1/audit/anchor", post(audit_anchor::anchor_now))
        .route("/v1/system/events", get(monitor::events))
        .route("/v1/monitoring/summary", get(monitor::summary))
        .route("/v1/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/v1/webhooks/{id}", axum::routing::delete(webhooks::delete))
        .route("/v1/webhooks/{id}/disable", post(webhooks::disable))
        .route("/v1/webhooks/{id}/enable", post(webhooks::enable))
        .route("/v1/webhooks/{id}/deliveries", get(webhooks::deliveries))
        // Organisations, users per organisation, inboxes, notification
        // settings (H9).
        .route("/v1/organisations", get(orgs::list).post(orgs::create))
        .route("/v1/organisations/{id}", get(orgs::get).patch(orgs::patch))
        .route("/v1/organisations/{id}/disable", post(orgs::disable))
        .route("/v1/organisations/{id}/enable", post(orgs::enable))
        .route(
            "/v1/organisations/{id}/users",
            get(orgs::list_users).post(orgs::create_user),
        )
        .route("/v1/users/{id}", axum::routing::patch(auth::patch_user))
        .route("/v1/inbox", get(inbox::summary))
        .route("/v1/inbox/{kind}", get(inbox::items))
        .route(
            "/v1/me/notifications",
            get(mailer::get_notifications).put(mailer::put_notifications),
        )
        // Search, per-instance monitoring, certificates as JSON (H10).
        .route("/v1/search/contracts", get(search::contracts))
        .route("/v1/search/on-chain", get(search::on_chain))
        .route("/v1/monitoring/instances", get(monitor::instances))
        .route(
            "/v1/preservations/{id}/certificate.json",
            get(certificates::preservation_json),
        )
        .route("/v1/openapi.json", get(openapi_json))
        // Public: the court's page at /verify/ fetches bundles from its own origin.
        .route("/v1/proofs/{evidence_hash}", get(proofs::by_hash))
        .layer(DefaultBodyLimit::max(wf.config.max_json_bytes))
        .merge(uploads);
    api.route_layer(middleware::from_fn_with_state(wf.clone(), audit_layer))
        .route_layer(middleware::from_fn(crate::metrics::track))
        // Non-API paths are the web console's (console.rs).
        .fallback(crate::console::fallback)
        .method_not_allowed_fallback(method_not_allowed)
        // The console's session cookie, before the session is resolved.
        .layer(middleware::from_fn_with_state(
            wf.clone(),
            crate::console::cookie_sessions,
        ))
        // Outermost: the security headers of every answer (fallbacks
        // included), and the one-connection scope of every request.
        .layer(middleware::from_fn_with_state(wf.clone(), security_headers))
        .layer(middleware::from_fn(request_scope))
        .with_state(wf)
}

/// Every request is one unit of the one-connection rule (`conn.rs`).
async fn request_scope(req: Request, next: Next) -> Response {
    crate::conn::scope(next.run(req)).await
}

/// The security headers of every answer: `nosniff`, the configured strict
/// `Content-Security-Policy` (no framing), `X-Frame-Options: DENY`,
/// `Referrer-Policy: no-referrer`, `Cross-Origin-Opener-Policy` and
/// `Cross-Origin-Resource-Policy: same-origin`, and `Cache-Control:
/// no-store` (unless the handler set a cache policy; none of the answers
/// that carry a session's data do).
async fn security_headers(State(wf): State<Arc<Workflow>>, req: Request, next: Next) -> Response {
    use axum::http::{HeaderValue, header};
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    // The console's index.html sets its own (the policy plus a style nonce).
    if !h.contains_key(header::CONTENT_SECURITY_POLICY)
        && let Ok(v) = HeaderValue::from_str(&wf.config.content_security_policy)
    {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take this method; see /v1/openapi.json",
    )
}

/// Resolve the session once (handlers reuse it), apply the rate limits
/// (`limits.rs`), and append every change, and every denied read, to the
/// audit chain. Requests without a valid session and rate-limited ones are
/// counted into the periodic `audit.noise_summary` row instead of one row
/// each. The object of a creation (201) is the created record
/// (`<path>/<id>`, from the answer's `id`), or what the handler put in an
/// [`audit::AuditObject`].
async fn audit_layer(State(wf): State<Arc<Workflow>>, mut req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let action = format!("{method} {route}");
    let ip = wf.limits.client_ip(req.headers(), req.extensions());
    let mutating = !(method == Method::GET || method == Method::HEAD);
    let login = route == "/v1/auth/login";
    // Limits by address first: they cost no database work.
    let by_ip = if login {
        wf.limits.login_ip(ip)
    } else if mutating {
        wf.limits.writes_ip(ip)
    } else {
        Ok(())
    };
    if let Err(over) = by_ip {
        wf.limits.note_noise("*", &action, 429, ip);
        return crate::limits::too_many(over);
    }
    let (caller, had_token) = {
        let (mut parts, body) = req.into_parts();
        let token = authz::bearer(&parts).map(str::to_owned);
        let caller = match &token {
            Some(t) => authz::resolve(&wf, t).await.ok(),
            None => None,
        };
        if let Some(c) = &caller {
            parts.extensions.insert(c.clone());
        }
        req = Request::from_parts(parts, body);
        (caller, token.is_some())
    };
    let public = login || route == "/v1/openapi.json";
    let by_caller = match &caller {
        Some(c) if mutating => wf.limits.writes_user(c.id),
        Some(_) => Ok(()),
        None if public => Ok(()),
        None => wf.limits.anonymous_ip(ip),
    };
    if let Err(over) = by_caller {
        let who = caller.as_ref().map_or("anonymous", |c| c.username.as_str());
        wf.limits.note_noise(who, &action, 429, ip);
        return crate::limits::too_many(over);
    }
    let mut resp = next.run(req).await;
    let status = resp.status();
    if status == axum::http::StatusCode::TOO_MANY_REQUESTS {
        // The per-username login limit, the invitation routes' slots
        // (inside the handler); every 429 carries `Retry-After`.
        crate::error::ensure_retry_after(&mut resp, 1);
        wf.limits.note_noise("anonymous", &action, 429, ip);
        return resp;
    }
    if login || public {
        // Logins audit themselves, one row per attempt.
        return resp;
    }
    let denied = status.as_u16() == 401 || status.as_u16() == 403;
    let Some(Caller { id, username, .. }) = &caller else {
        // No valid session: noise (a 401 from every route), aggregated.
        if mutating || denied {
            let who = if had_token {
                "anonymous (bad token)"
            } else {
                "anonymous"
            };
            wf.limits.note_noise(who, &action, status.as_u16(), ip);
        }
        return resp;
    };
    if mutating || denied {
        let result = if status.is_success() {
            "ok"
        } else if denied {
            "denied"
        } else {
            "failed"
        };
        let object = match resp.extensions().get::<audit::AuditObject>() {
            Some(o) => o.0.clone(),
            None if status == axum::http::StatusCode::CREATED => {
                let (o, r) = created_object(&path, resp).await;
                resp = r;
                o
            }
            None => path.clone(),
        };
        audit::record(
            &wf,
            Some(*id),
            username,
            &action,
            &object,
            result,
            status.as_str(),
        )
        .await;
    }
    resp
}

/// `<path>/<id>` for a 201 answer whose JSON body has an `id` (the created
/// record), else `path`; the answer is rebuilt unchanged.
async fn created_object(path: &str, resp: Response) -> (String, Response) {
    let (parts, body) = resp.into_parts();
    // Creation answers are small JSON documents; a larger one keeps `path`.
    let Ok(bytes) = axum::body::to_bytes(body, 4 << 20).await else {
        return (
            path.to_owned(),
            Response::from_parts(parts, axum::body::Body::empty()),
        );
    };
    let id = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| match v.get("id") {
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            _ => None,
        });
    let object = match id {
        Some(id) => format!("{}/{id}", path.trim_end_matches('/')),
        None => path.to_owned(),
    };
    (
        object,
        Response::from_parts(parts, axum::body::Body::from(bytes)),
    )
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Anchord workflow API",
        version = "2",
        description = "Products, preservations, e-contracts, judicial services, audit and webhooks (docs/workflow-api.md)."
    ),
    paths(
        auth::login, auth::logout, auth::me, auth::post_user, auth::list_users,
        auth::disable_user, auth::enable_user, auth::reset_password, auth::revoke_user_sessions,
        auth::change_password,
        auth::post_institution, auth::list_institutions,
        products::create, products::list, products::get, products::patch, products::delete,
        products::add_field, products::edit_field, products::delete_field, products::reorder,
        products::preview,
        preservations::create, preservations::edit, preservations::upload, preservations::submit,
        preservations::approve, preservations::reject, preservations::get, preservations::proof, preservations::certificate,
        preservations::download, preservations::list,
        contracts::create_type, contracts::list_types, contracts::register_key, contracts::get_key, contracts::create,
        contracts::key_challenge, contracts::get_type,
        contracts::get, contracts::list, contracts::sign, contracts::refuse, contracts::approve,
        contracts::reject, contracts::proof, contracts::certificate,
        judicial::create, judicial::list, judicial::get, judicial::review, judicial::compare,
        judicial::issue_certificate, judicial::refuse, judicial::download_certificate,
        // contracts & judicial (H8)
        contracts::invitation_preview, contracts::invitation_register, contracts::invitation_accept,
        contracts::certificate_json,
        judicial::attach_evidence, judicial::download_evidence, judicial::subject_view,
        judicial::subject_proof, judicial::compare_evidence, judicial::comparison_report,
        audit::list, audit::verify, audit_anchor::anchor_now,
        monitor::summary, monitor::events,
        search::contracts, search::on_chain, monitor::instances, certificates::preservation_json,
        webhooks::create, webhooks::list, webhooks::delete, webhooks::disable, webhooks::enable,
        webhooks::deliveries,
        // organisations, users, inboxes, notifications (H9)
        orgs::create, orgs::list, orgs::get, orgs::patch, orgs::disable, orgs::enable,
        orgs::list_users, orgs::create_user, auth::patch_user,
        inbox::summary, inbox::items,
        mailer::get_notifications, mailer::put_notifications,
        proofs::by_hash,
        openapi_json
    ),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail, crate::error::FileUpload)),
    modifiers(&BearerAuth, &CommonResponses, &UniqueOperationIds),
    // The session cookie (console.rs) is the web console's alternative to
    // the bearer token: declared as a scheme below and specified in
    // docs/workflow-api.md, but not listed as an alternative requirement:
    // schemathesis 3.39 fails on every operation that names an apiKey
    // cookie beside a bearer alternative ('NoneType' object does not
    // support item assignment), and API clients use the bearer token.
    security(("bearer" = []))
)]
pub struct ApiDoc;

#[derive(Debug)]
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("a token from POST /v1/auth/login"))
                    .build(),
            ),
        );
        // The web console's alternative (console.rs): changes need the
        // X-Anchord-CSRF header and this origin.
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Cookie(
                utoipa::openapi::security::ApiKeyValue::with_description(
                    crate::console::SESSION_COOKIE,
                    "the HttpOnly cookie set by POST /v1/auth/login sent with X-Anchord-CSRF (named anchord_session, without the __Host- prefix, when workflow.session_cookie_secure = false); changes need that header too",
                ),
            )),
        );
    }
}

/// Documents, on every operation, the error answers any request can get
/// (all with the one error body): 400 for a malformed path, query or body;
/// 401 and 403 where a session is needed; 404 where a record is named;
/// 409 for changes refused in the record's state; 413, 415 and 422 where
/// there is a body (and 422 for invalid query values); 500 and 503.
#[derive(Debug)]
struct CommonResponses;

impl utoipa::Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            if path == "/v1/openapi.json" {
                continue;
            }
            let public = path == "/v1/auth/login" || path == "/v1/proofs/{evidence_hash}";
            let named = path.contains('{');
            for (get, op) in [
                (true, &mut item.get),
                (false, &mut item.post),
                (false, &mut item.put),
                (false, &mut item.patch),
                (false, &mut item.delete),
            ] {
                let Some(op) = op.as_mut() else { continue };
                let has_query = op.parameters.as_ref().is_some_and(|ps| {
                    ps.iter().any(|p| {
                        matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query)
                    })
                });
                let body = op.request_body.is_some();
                let mut wanted: Vec<(&str, &str)> = vec![(
                    "400",
                    "`bad_request` / `bad_json`: a malformed path parameter, query or body",
                )];
                if !public {
                    wanted.push((
                        "401",
                        "`unauthenticated` / `session_expired`: no, an unknown, a revoked or an expired session token",
                    ));
                    wanted.push((
                        "403",
                        "`forbidden` / `self_approval`: the caller's role, bank or institution does not allow it",
                    ));
                    if named || !get {
                        wanted.push(("404", "`not_found`: no such record"));
                    }
                    if !get {
                        wanted.push((
                            "409",
                            "`conflict` / `invalid_state`: a duplicate, or not allowed in the record's status",
                        ));
                    }
                }
                if body {
                    wanted.push(("413", "`too_large`: the body is over the configured limit"));
                    wanted.push((
                        "415",
                        "`unsupported_media_type`: the body is not of the documented content type",
                    ));
                }
                if body || has_query {
                    wanted.push((
                        "422",
                        "`validation_failed` (per-field problems in `fields`) / `bad_json` (well-formed JSON of the wrong shape)",
                    ));
                }
                wanted.push((
                    "429",
                    "`rate_limited`: over a rate limit (login attempts, changes, requests without a session); retry after `Retry-After` seconds",
                ));
                wanted.push(("500", "`internal`: an internal error (never with its text)"));
                wanted.push((
                    "503",
                    "`unavailable`: the database or a needed facility is unavailable; retry later",
                ));
                for (code, description) in wanted {
                    op.responses
                        .responses
                        .entry(code.to_owned())
                        .or_insert_with(|| error(description).into());
                }
            }
        }
    }
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", security(()), responses(
    (status = 200, description = "the OpenAPI document", body = Object),
))]
async fn openapi_json() -> Response {
    axum::Json(ApiDoc::openapi()).into_response()
}

/// The API's OpenAPI document, as `GET /v1/openapi.json` serves it (the
/// console's typed client is generated from its committed copy,
/// `docs/workflow-openapi.json`: `anchord workflow openapi`).
pub fn openapi_document() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod operation_ids {
    use super::openapi_document;

    #[test]
    fn every_operation_id_is_unique() {
        let doc = openapi_document();
        let mut seen = std::collections::BTreeMap::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if let Some(id) = op.get("operationId").and_then(|v| v.as_str()) {
                    let at = format!("{method} {path}");
                    if let Some(other) = seen.insert(id.to_owned(), at.clone()) {
                        panic!("operationId {id} of {at} is also {other}'s");
                    }
                }
            }
        }
        assert!(seen.contains_key("get_preservations_id_file"), "{seen:?}");
    }
}
