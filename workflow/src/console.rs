//! The web console (`console/`, a React single-page application built by
//! Vite) served from the same origin as the API, and the console's session
//! cookie.
//!
//! **Assets.** `workflow.console_dir` (default `console/dist`, relative to
//! the working directory) holds the build: `index.html` and `assets/` with
//! content-hashed names. Hashed assets are cached for a year (`immutable`);
//! `index.html` is answered for `/` and every path that is neither an API
//! path (`/v1/...`) nor a file (the application routes itself), with
//! `Cache-Control: no-cache`, a fresh style nonce (below) and the strict
//! `Content-Security-Policy` of every answer. Without a built console the
//! API works as before and `/` answers 503 with a page saying how to build
//! it. `/verify/` serves the court's offline verification page
//! (`workflow.verify_dir`, default `console/verify/dist`) the same way.
//!
//! **Styles and the CSP.** Ant Design 6 runs in its zero-runtime mode: its
//! styles are the static `antd.css`, bundled into a hashed asset, so
//! `style-src 'self'` holds without `'unsafe-inline'`. The few `<style>`
//! elements its helpers still insert at run time (e.g. the scroll lock of a
//! modal) carry the per-answer nonce, which `index.html` hands to the
//! application in `<meta name="csp-nonce">`: the answer's policy adds
//! `'nonce-…'` to `style-src` and nothing else. Scripts stay `'self'` only.
//!
//! **Sessions no script can read.** `POST /v1/auth/login` sent with the
//! header `X-Anchord-CSRF` (the console always sends it) answers the session
//! in an `HttpOnly; SameSite=Strict; Path=/; Secure` cookie named
//! `__Host-anchord_session` ([`SESSION_COOKIE`]; `anchord_session`, not
//! `Secure`, when `workflow.session_cookie_secure = false`), and the answer's `token` is
//! empty. A request without an `Authorization` header but with that cookie
//! is authenticated by it; when its method is not GET/HEAD/OPTIONS it must
//! carry `X-Anchord-CSRF` (which a cross-site form cannot send, and a
//! cross-site script cannot without a CORS preflight the API never grants)
//! and, when the browser names them, an `Origin` of this host and a
//! `Sec-Fetch-Site` of `same-origin`: else 403 `csrf_failed`. Logout clears
//! the cookie. Bearer clients are unchanged (the header wins over the
//! cookie, and needs no CSRF guard).

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use crate::Workflow;
use crate::error::ApiError;

/// The session cookie's name. The `__Host-` prefix makes the browser keep
/// it only when it is `Secure`, has `Path=/` and no `Domain`, and was set
/// by this very host: a sibling site under the same parent domain cannot
/// plant one, e.g. its own valid session, which the victim's console would
/// then use (login CSRF by "cookie tossing").
pub const SESSION_COOKIE: &str = "__Host-anchord_session";
/// Its name when `workflow.session_cookie_secure = false` (plain http on a
/// host other than localhost): a `__Host-` cookie must be `Secure`.
pub const SESSION_COOKIE_PLAIN: &str = "anchord_session";

/// The session cookie's name for this configuration; a cookie of the other
/// name is never read.
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        SESSION_COOKIE
    } else {
        SESSION_COOKIE_PLAIN
    }
}
/// The header the console sends with every request; required on changes
/// authenticated by the cookie.
pub const CSRF_HEADER: &str = "x-anchord-csrf";

/// Hashed assets (`assets/<name>-<hash>.<ext>`): cached for a year.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `index.html` and other unhashed files: revalidated every time.
const NO_CACHE: &str = "no-cache";

// ---------------------------------------------------------------------------
// Serving the assets
// ---------------------------------------------------------------------------

/// The router's fallback: API paths answer the JSON 404 as before; every
/// other GET/HEAD path is the console's (or the verification page's).
pub async fn fallback(State(wf): State<Arc<Workflow>>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    if path == "/v1" || path.starts_with("/v1/") {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such endpoint; see /v1/openapi.json",
        )
        .into_response();
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "the console's pages are read with GET",
        )
        .into_response();
    }
    let csp = &wf.config.content_security_policy;
    if path == "/verify" {
        return redirect("/verify/");
    }
    if let Some(rest) = path.strip_prefix("/verify/") {
        return serve(
            &wf.config.verify_dir,
            rest,
            req,
            csp,
            "the court verification page",
            "console/verify",
            false,
        )
        .await;
    }
    serve(
        &wf.config.console_dir,
        path.trim_start_matches('/'),
        req,
        csp,
        "the web console",
        "console",
        true,
    )
    .await
}

fn redirect(to: &'static str) -> Response {
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, HeaderValue::from_static(to))],
    )
        .into_response()
}

/// `rel` (a URL path below the application's root) from `dir`: a file when
/// there is one, else `index.html` (`spa`: for any path without a file
/// extension; otherwise only for the root).
async fn serve(
    dir: &Path,
    rel: &str,
    req: Request,
    csp: &str,
    what: &str,
    source: &str,
    spa: bool,
) -> Response {
    let index = dir.join("index.html");
    if dir.as_os_str().is_empty() || !tokio::fs::try_exists(&index).await.unwrap_or(false) {
        return not_built(dir, what, source);
    }
    if !rel.is_empty() && !rel.ends_with('/') {
        let immutable = rel.starts_with("assets/");
        if !confined(dir, rel).await {
            return plain(StatusCode::NOT_FOUND, "no such file\n");
        }
        let resp = serve_file(dir, req).await;
        if resp.status() != StatusCode::NOT_FOUND {
            return with_cache(resp, if immutable { IMMUTABLE } else { NO_CACHE });
        }
        // A missing file: a 404, unless it names an application route.
        let last = rel.rsplit('/').next().unwrap_or("");
        if immutable || !spa || last.contains('.') {
            return plain(StatusCode::NOT_FOUND, "no such file\n");
        }
    } else if !rel.is_empty() && !spa {
        return plain(StatusCode::NOT_FOUND, "no such file\n");
    }
    // A page built with its own policy (console/verify writes its inline
    // script's and style's hashes to index.html.csp) is served under it,
    // with framing always refused.
    if let Ok(own) = tokio::fs::read_to_string(dir.join("index.html.csp")).await {
        return own_policy_html(&index, own.trim()).await;
    }
    index_html(&index, csp).await
}

/// `index` under the policy its build wrote (`frame-ancestors 'none'` added
/// when it lacks one); an unusable policy is a 503, never an answer without
/// one.
async fn own_policy_html(index: &Path, policy: &str) -> Response {
    let mut policy = policy.to_owned();
    if !policy.contains("frame-ancestors") {
        policy.push_str("; frame-ancestors 'none'");
    }
    let (Ok(body), Ok(csp)) = (tokio::fs::read(index).await, HeaderValue::from_str(&policy)) else {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "index.html or its index.html.csp is unreadable\n",
        );
    };
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE)),
            (header::CONTENT_SECURITY_POLICY, csp),
        ],
        body,
    )
        .into_response()
}

/// The longest URL path below an application's root that names a file.
const MAX_FILE_PATH_BYTES: usize = 1024;
/// The longest name of one path segment (the file system's `NAME_MAX`).
const MAX_NAME_BYTES: usize = 255;

/// May `rel` (a URL path below the application's root, percent-encoded as
/// received) be opened below `dir`? `ServeDir` refuses `..` but follows
/// symbolic links anywhere, and answers 500 for a name the file system
/// refuses (a NUL byte, a segment over 255 bytes). Refused here: paths over
/// [`MAX_FILE_PATH_BYTES`], what is not UTF-8 once decoded, `.`/`..`
/// segments, control characters and backslashes, over-long segments, and
/// any path whose real location (links resolved) is outside `dir`. Those
/// answer 404, as a missing file does.
async fn confined(dir: &Path, rel: &str) -> bool {
    if rel.len() > MAX_FILE_PATH_BYTES {
        return false;
    }
    let Ok(decoded) = percent_encoding::percent_decode_str(rel).decode_utf8() else {
        return false;
    };
    let mut candidate = dir.to_path_buf();
    for seg in decoded.split('/').filter(|s| !s.is_empty()) {
        if seg == "."
            || seg == ".."
            || seg.len() > MAX_NAME_BYTES
            || seg.chars().any(|c| c.is_control() || c == '\\')
        {
            return false;
        }
        candidate.push(seg);
    }
    let Ok(root) = tokio::fs::canonicalize(dir).await else {
        return false;
    };
    match tokio::fs::canonicalize(&candidate).await {
        Ok(real) => real.starts_with(&root),
        // Nothing there: ServeDir answers 404 (or the application route).
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
        ),
    }
}

/// A file below `dir`, through `tower-http`'s `ServeDir` (which refuses
/// `..` and other escapes, answers ranges and conditional requests, and
/// names the content type). `req`'s path must be relative to the app's root.
async fn serve_file(dir: &Path, req: Request) -> Response {
    use tower::ServiceExt as _;
    let (mut parts, body) = req.into_parts();
    if let Some(rest) = parts.uri.path().strip_prefix("/verify/") {
        // ServeDir maps the URL path onto the directory: drop the mount.
        if let Ok(uri) = format!("/{rest}").parse() {
            parts.uri = uri;
        }
    }
    let req = Request::from_parts(parts, body);
    match tower_http::services::ServeDir::new(dir)
        .append_index_html_on_directories(false)
        .oneshot(req)
        .await
    {
        Ok(resp) => resp.map(Body::new),
        Err(never) => match never {},
    }
}

fn with_cache(mut resp: Response, policy: &'static str) -> Response {
    if resp.status().is_success() || resp.status() == StatusCode::NOT_MODIFIED {
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    }
    resp
}

/// `index.html` with a fresh style nonce in its `csp-nonce` meta element
/// and in the answer's policy.
async fn index_html(index: &Path, csp: &str) -> Response {
    let Ok(text) = tokio::fs::read_to_string(index).await else {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "index.html is unreadable\n",
        );
    };
    let nonce = base64::engine::general_purpose::STANDARD.encode(&crate::random32()[..18]);
    let body = text.replace("__CSP_NONCE__", &nonce);
    let mut resp = (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE)),
        ],
        body,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&csp_with_style_nonce(csp, &nonce)) {
        resp.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}

/// `csp` with `'nonce-<nonce>'` added to its `style-src` directive (one is
/// added, `'self'` and the nonce, when it has none).
pub fn csp_with_style_nonce(csp: &str, nonce: &str) -> String {
    let mut found = false;
    let mut out: Vec<String> = csp
        .split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            let name = d.split_ascii_whitespace().next().unwrap_or("");
            if name.eq_ignore_ascii_case("style-src") {
                found = true;
                format!("{d} 'nonce-{nonce}'")
            } else {
                d.to_owned()
            }
        })
        .collect();
    if !found {
        out.push(format!("style-src 'self' 'nonce-{nonce}'"));
    }
    out.join("; ")
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// 503 with a page saying how to build the missing application.
fn not_built(dir: &Path, what: &str, source: &str) -> Response {
    let dir = html_escape(&dir.display().to_string());
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Anchord: {what} is not built</title></head>\n\
         <body><h1>{what} is not built</h1>\n\
         <p>This server looks for it in <code>{dir}</code> (relative to its working directory), which holds no <code>index.html</code>.</p>\n\
         <p>Build it with Node.js 20 or later: <code>cd {source} &amp;&amp; npm ci &amp;&amp; npm run build</code>, \
         or set <code>workflow.console_dir</code> / <code>workflow.verify_dir</code> to where it was built. \
         The API under <code>/v1/</code> works without it.</p></body></html>\n"
    );
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

// ---------------------------------------------------------------------------
// The session cookie and its CSRF guard
// ---------------------------------------------------------------------------

/// The session cookie's value in `headers`: `Ok(None)` without one,
/// `Err(())` when the request carries two different ones. A browser sends
/// every cookie of the name whose domain and path match, the most specific
/// path first: a cookie planted for a parent domain or for `/v1/` by a
/// sibling site ("cookie tossing") would otherwise decide whose session a
/// request runs in. Two sessions are refused, never chosen between.
fn session_cookie(headers: &HeaderMap, name: &str) -> Result<Option<String>, ()> {
    let mut found: Option<String> = None;
    for c in headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(|c| c.name() == name && !c.value().is_empty())
    {
        match &found {
            Some(v) if v != c.value() => return Err(()),
            Some(_) => {}
            None => found = Some(c.value().to_owned()),
        }
    }
    Ok(found)
}

/// Why a cookie-authenticated change is refused, if it is.
fn csrf_refusal(headers: &HeaderMap) -> Option<&'static str> {
    if headers.get(CSRF_HEADER).is_none_or(|v| v.is_empty()) {
        return Some(
            "a change authenticated by the session cookie needs the X-Anchord-CSRF header",
        );
    }
    if let Some(site) = headers.get("sec-fetch-site")
        && site.as_bytes() != b"same-origin"
    {
        return Some(
            "a change authenticated by the session cookie must come from this origin (Sec-Fetch-Site)",
        );
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, rest)| rest.trim_end_matches('/'));
        match (origin_host, host) {
            (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => {}
            _ => {
                return Some(
                    "a change authenticated by the session cookie must come from this origin (Origin)",
                );
            }
        }
    }
    None
}

fn csrf_failed(why: &'static str) -> Response {
    ApiError::new(StatusCode::FORBIDDEN, "csrf_failed", why).into_response()
}

fn is_safe(m: &Method) -> bool {
    m == Method::GET || m == Method::HEAD || m == Method::OPTIONS
}

/// The session cookie as an alternative to `Authorization: Bearer` (see
/// the module's documentation): runs before the session is resolved.
pub async fn cookie_sessions(
    State(wf): State<Arc<Workflow>>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    let is_api = path.starts_with("/v1/");
    let login = path == "/v1/auth/login" && req.method() == Method::POST;
    let logout = path == "/v1/auth/logout";
    let has_bearer = req.headers().contains_key(header::AUTHORIZATION);
    let cookie_login = login && req.headers().contains_key(CSRF_HEADER);
    let mut used_cookie = false;
    if cookie_login {
        if let Some(why) = csrf_refusal(req.headers()) {
            return csrf_failed(why);
        }
    } else if is_api
        && !has_bearer
        && let Some(token) = match session_cookie(
            req.headers(),
            session_cookie_name(wf.config.session_cookie_secure),
        ) {
            Ok(token) => token,
            Err(()) => {
                return ApiError::unauthenticated(
                    "the request carries two different session cookies (one may have been planted by another site): clear this site's cookies and log in again",
                )
                .into_response();
            }
        }
    {
        if !is_safe(req.method())
            && let Some(why) = csrf_refusal(req.headers())
        {
            return csrf_failed(why);
        }
        let Ok(v) = HeaderValue::from_str(&format!("Bearer {token}")) else {
            return ApiError::unauthenticated("the session cookie is malformed").into_response();
        };
        req.headers_mut().insert(header::AUTHORIZATION, v);
        used_cookie = true;
    }
    let resp = next.run(req).await;
    if cookie_login && resp.status() == StatusCode::OK {
        return move_token_to_cookie(&wf, resp).await;
    }
    if logout && used_cookie {
        let mut resp = resp;
        if let Ok(v) = HeaderValue::from_str(&clear_cookie(&wf).to_string()) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
        return resp;
    }
    resp
}

fn session_cookie_builder(wf: &Workflow, value: String) -> cookie::CookieBuilder<'static> {
    cookie::Cookie::build((session_cookie_name(wf.config.session_cookie_secure), value))
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .secure(wf.config.session_cookie_secure)
}

fn clear_cookie(wf: &Workflow) -> cookie::Cookie<'static> {
    session_cookie_builder(wf, String::new())
        .max_age(cookie::time::Duration::ZERO)
        .build()
}

/// The login answer with its token moved into the session cookie.
async fn move_token_to_cookie(wf: &Workflow, resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
        .into_response();
    };
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let Some(token) = v.get("token").and_then(|t| t.as_str()).map(str::to_owned) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let ttl = i64::try_from(wf.config.session_ttl_s).unwrap_or(i64::MAX);
    let c = session_cookie_builder(wf, token)
        .max_age(cookie::time::Duration::seconds(ttl))
        .build();
    v["token"] = serde_json::Value::String(String::new());
    let body = serde_json::to_vec(&v).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    if let Ok(h) = HeaderValue::from_str(&c.to_string()) {
        parts.headers.append(header::SET_COOKIE, h);
    }
    Response::from_parts(parts, Body::from(body))
}

/// Gives every operation of the OpenAPI document a unique `operationId`
/// (`<method>_<path>`, e.g. `get_preservations_id_file`): utoipa names
/// operations after their handler functions, and `list`, `create`, `get`
/// repeat across modules, which OpenAPI forbids and which made generated
/// clients (openapi-typescript) merge the operations of different paths.
#[derive(Debug)]
pub struct UniqueOperationIds;

impl utoipa::Modify for UniqueOperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let name: String = path
                .trim_start_matches("/v1")
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect::<String>()
                .split('_')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("_");
            for (method, op) in [
                ("get", &mut item.get),
                ("post", &mut item.post),
                ("put", &mut item.put),
                ("patch", &mut item.patch),
                ("delete", &mut item.delete),
                ("head", &mut item.head),
                ("options", &mut item.options),
                ("trace", &mut item.trace),
            ] {
                if let Some(op) = op.as_mut() {
                    op.operation_id = Some(format!("{method}_{name}"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_style_nonce_joins_style_src_only() {
        let csp = crate::config::DEFAULT_CSP;
        let out = csp_with_style_nonce(csp, "abc");
        assert!(out.contains("style-src 'self' 'nonce-abc'"), "{out}");
        assert!(out.contains("script-src 'self';"), "{out}");
        assert_eq!(out.matches("nonce-").count(), 1);
        let out = csp_with_style_nonce("default-src 'self'", "n");
        assert_eq!(out, "default-src 'self'; style-src 'self' 'nonce-n'");
    }

    #[test]
    fn csrf_guard_wants_the_header_and_this_origin() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8090"));
        assert!(csrf_refusal(&h).is_some());
        h.insert(CSRF_HEADER, HeaderValue::from_static("1"));
        assert!(csrf_refusal(&h).is_none());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8090"),
        );
        assert!(csrf_refusal(&h).is_none());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(csrf_refusal(&h).is_some());
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(csrf_refusal(&h).is_some());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8090"),
        );
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(csrf_refusal(&h).is_some());
    }
}
