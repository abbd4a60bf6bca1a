//! The guard in front of every route: the API key and its role on
//! mutating requests, a same-origin check against cross-site requests, and
//! CORS for explicitly allowed origins only.
//!
//! Keys: when `--api-key` is set or the store holds any key, a mutating
//! request needs `X-API-Key`: the `--api-key` value (compared in constant
//! time; an admin key) or a stored key's token (looked up by its SHA-256).
//! Without either, 401; with a key whose role is too low for the route,
//! 403 naming the key, its role and the role needed, and nothing is done.
//! Reads need no key (the page and the original tool's scripts read
//! without one). Routes need `admin` to reload the servers file, manage
//! keys and set healing policies or the reconciler's settings, and
//! `operator` for everything else that changes something.
//!
//! Same-origin means the browser's `Origin` names the host it addressed:
//! the `Host` header, or `X-Forwarded-Host` / `Forwarded: host=` when the
//! peer is a `--trusted-proxy`, or the `--public-url` the operator gave.
//! A proxy that rewrites `Host` (nginx's default `$proxy_host`) without any
//! of these makes the page's own actions look cross-site: the 403 says so.

use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::keys::{hash_token, Role, FLAG_KEY_NAME};
use crate::options::origin_of;
use crate::serve::Peer;
use crate::state::{AppState, StateConfig};

/// Who made a request, as the audit log records it.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct Who {
    pub addr: String,
    /// The request carried a valid API key.
    #[serde(rename = "api_key")]
    pub key: bool,
    /// The key's name (never its token): a stored key's, or `--api-key`.
    #[serde(rename = "key")]
    pub key_name: Option<String>,
    /// The key's role.
    pub role: Option<&'static str>,
}

/// The role a mutating request to `path` needs: `admin` to reload the
/// servers file, manage keys, set healing policies and the reconciler's
/// fleet-wide settings; `operator` for the rest (pausing and resuming
/// healing included: the brake is an operator's).
fn role_needed(path: &str) -> Role {
    let admin = path == "/api/servers/reload"
        || path == "/api/keys"
        || path.starts_with("/api/keys/")
        || path == "/api/reconciler"
        || path == "/api/alerts/reload"
        || path.ends_with("/healing");
    if admin {
        Role::Admin
    } else {
        Role::Operator
    }
}

/// The key a request carries, checked: `Ok(None)` when no key is needed
/// and none was given.
async fn authenticate(state: &AppState, given: Option<&[u8]>) -> Result<Option<(String, Role)>, Response> {
    let config = &state.inner.config;
    if let (Some(g), Some(key)) = (given, &config.api_key) {
        if same_secret(g, key.as_bytes()) {
            return Ok(Some((FLAG_KEY_NAME.to_string(), Role::Admin)));
        }
    }
    let store = &config.store;
    let unavailable = |e: crate::store::StoreError| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("cannot check the API key, nothing was done: {e}"))
            .into_response()
    };
    match given {
        Some(g) => {
            let token = std::str::from_utf8(g).unwrap_or("");
            match store.key_by_hash(&hash_token(token)).await.map_err(unavailable)? {
                Some((name, role)) => Ok(Some((name, Role::parse(&role).unwrap_or(Role::Viewer)))),
                None => Err(unauthorized("wrong API key (X-API-Key)")),
            }
        }
        None if config.api_key.is_some() || store.has_keys().await.map_err(unavailable)? => {
            Err(unauthorized("this endpoint needs an API key in the X-API-Key header"))
        }
        None => Ok(None),
    }
}

/// Compares two byte strings in time that depends on their lengths only.
pub(crate) fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u64;
    let n = a.len().max(b.len());
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= u64::from(x ^ y);
    }
    diff == 0
}

fn is_mutating(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The host (with port, if any) a browser addressed: the `Host` header, or
/// what a trusted proxy says it forwarded (`Forwarded: host=`, else
/// `X-Forwarded-Host`; the first, client-facing entry of either). The second
/// value says whether a proxy's word was taken.
fn addressed_host(headers: &HeaderMap, peer: Option<IpAddr>, config: &StateConfig) -> (Option<String>, bool) {
    let trusted = peer.is_some_and(|ip| config.trusted_proxies.iter().any(|p| p.contains(ip)));
    if trusted {
        if let Some(h) = forwarded_host(headers) {
            return (Some(h), true);
        }
    }
    (headers.get(header::HOST).and_then(|h| h.to_str().ok()).map(|h| h.trim().to_string()), false)
}

fn forwarded_host(headers: &HeaderMap) -> Option<String> {
    let first = |name: &str| headers.get(name)?.to_str().ok()?.split(',').next().map(str::trim);
    let from_forwarded = first("forwarded").and_then(|element| {
        element.split(';').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            k.trim().eq_ignore_ascii_case("host").then(|| v.trim().trim_matches('"').to_string())
        })
    });
    from_forwarded.or_else(|| first("x-forwarded-host").map(str::to_string)).filter(|h| !h.is_empty())
}

/// True when a browser at `origin` addressed `host`: the same host and port
/// whatever the scheme, since a proxy in front may terminate TLS. A `Host`
/// without a port matches either scheme's default.
fn same_site(origin: &str, host: &str) -> bool {
    let Some(origin) = origin_of(origin, false) else { return false };
    let Some((scheme, authority)) = origin.split_once("://") else { return false };
    let host = host.to_ascii_lowercase();
    if authority == host {
        return true;
    }
    let default = if scheme == "https" { ":443" } else { ":80" };
    host.strip_suffix(default).is_some_and(|h| h == authority)
}

pub(crate) async fn guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let config = &state.inner.config;
    let origin = req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()).map(str::to_owned);
    let allowed = origin.as_ref().filter(|o| config.cors_origins.iter().any(|a| a == *o)).cloned();

    // CORS preflight from an allowed origin.
    if req.method() == Method::OPTIONS {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        if let Some(o) = &allowed {
            cors_headers(resp.headers_mut(), o);
            let h = resp.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, PUT, DELETE"));
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("content-type, x-api-key, last-event-id"),
            );
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        }
        return resp;
    }

    let peer = req.extensions().get::<Peer>().map(|p| p.0);
    let addr = peer.map_or_else(|| "local".to_string(), |p| p.to_string());
    let mut key = None;
    if is_mutating(req.method()) {
        // A browser on another site may send simple POSTs here; only our own
        // page and explicitly allowed origins may change anything.
        if let Some(o) = &origin {
            let public = config.public_origin.as_ref().is_some_and(|p| origin_of(o, false).as_ref() == Some(p));
            let (host, forwarded) = addressed_host(req.headers(), peer.map(|p| p.ip()), config);
            let same = public || host.as_deref().is_some_and(|h| same_site(o, h));
            if !same && allowed.is_none() {
                return cross_site(o, host.as_deref(), forwarded);
            }
        }
        let given = req.headers().get("x-api-key").map(|v| v.as_bytes().to_vec());
        key = match authenticate(&state, given.as_deref()).await {
            Ok(k) => k,
            Err(resp) => return resp,
        };
        let need = role_needed(req.uri().path());
        if let Some((name, role)) = &key {
            if *role < need {
                return forbidden_role(name, *role, need);
            }
        }
    }
    let (key_name, role) = match key {
        Some((name, role)) => (Some(name), Some(role.as_str())),
        None => (None, None),
    };
    req.extensions_mut().insert(Who { addr, key: key_name.is_some(), key_name, role });
    let mut resp = next.run(req).await;
    if let Some(o) = &allowed {
        cors_headers(resp.headers_mut(), o);
    }
    resp
}

/// 403 for a mutating request from an origin that is neither ours nor
/// allowed, saying how to allow it when it is ours behind a proxy.
fn cross_site(origin: &str, host: Option<&str>, forwarded: bool) -> Response {
    let to = match (host, forwarded) {
        (Some(h), true) => format!("addressed to {h} (as forwarded by a trusted proxy)"),
        (Some(h), false) => format!("addressed to {h} (the Host header)"),
        (None, _) => "addressed to no host (no Host header)".to_string(),
    };
    let detail = format!(
        "origin {origin} is not allowed: this request was {to}, so it looks cross-site. \
         If browsers reach the dashboard at {origin} through a reverse proxy that rewrites Host, \
         start it with --public-url {origin} (or IPVTL_PUBLIC_URL), or allow that origin with \
         --cors-origin {origin}; or have the proxy forward the browser's Host \
         (nginx: proxy_set_header Host $host), or send X-Forwarded-Host from an address given \
         with --trusted-proxy"
    );
    ApiError::new(StatusCode::FORBIDDEN, detail).into_response()
}

/// 403 for a valid key whose role is too low.
fn forbidden_role(name: &str, role: Role, need: Role) -> Response {
    let detail = format!(
        "the API key {name:?} has the role {role}, and this needs {need}: nothing was done \
         (viewer reads; operator also acts on channels, runs batches, refreshes and sets maintenance; \
         admin also reloads the servers file and manages keys)"
    );
    ApiError::new(StatusCode::FORBIDDEN, detail)
        .with(serde_json::json!({"role": role.as_str(), "role_needed": need.as_str()}))
        .into_response()
}

fn unauthorized(detail: &str) -> Response {
    let mut resp = ApiError::new(StatusCode::UNAUTHORIZED, detail).into_response();
    resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("ApiKey header=\"X-API-Key\""));
    resp
}

fn cors_headers(h: &mut HeaderMap, origin: &str) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.append(header::VARY, HeaderValue::from_static("origin"));
    }
}

#[cfg(test)]
mod tests {
    use super::{forwarded_host, same_secret, same_site};
    use axum::http::{HeaderMap, HeaderValue};

    #[test]
    fn an_origin_is_same_site_with_the_host_it_addressed_whatever_the_scheme() {
        assert!(same_site("http://127.0.0.1:8000", "127.0.0.1:8000"));
        assert!(same_site("https://ops.example", "ops.example"), "TLS ended at a proxy");
        assert!(same_site("https://ops.example", "ops.example:443"));
        assert!(same_site("http://ops.example", "OPS.example:80"));
        assert!(same_site("https://ops.example:8443", "ops.example:8443"));
        assert!(!same_site("https://ops.example", "ops.example:8000"));
        assert!(!same_site("https://ops.example:8000", "ops.example"));
        assert!(!same_site("https://evil.example", "ops.example"));
        assert!(!same_site("https://ops.example.evil.example", "ops.example"));
        assert!(!same_site("null", "ops.example"));
        assert!(!same_site("https://ops.example", ""));
    }

    #[test]
    fn forwarded_hosts_take_the_client_facing_entry() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.append(*k, HeaderValue::from_static(v));
            }
            h
        };
        let h = headers(&[("x-forwarded-host", "ops.example, inner.local")]);
        assert_eq!(forwarded_host(&h).as_deref(), Some("ops.example"));
        let h = headers(&[("forwarded", "for=192.0.2.1;Host=\"ops.example:8443\";proto=https, host=inner")]);
        assert_eq!(forwarded_host(&h).as_deref(), Some("ops.example:8443"));
        let h = headers(&[("forwarded", "for=192.0.2.1"), ("x-forwarded-host", "ops.example")]);
        assert_eq!(forwarded_host(&h).as_deref(), Some("ops.example"));
        assert_eq!(forwarded_host(&headers(&[("x-forwarded-host", "")])), None);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3cret", b"s3creT"));
        assert!(!same_secret(b"s3cret", b"s3cre"));
        assert!(!same_secret(b"", b"x"));
        assert!(!same_secret(b"s3cret\xff", b"s3cret"));
        assert!(same_secret(b"", b""));
    }
}
