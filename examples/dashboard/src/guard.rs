//! The guard in front of every route: the API key on mutating requests
//! (constant-time comparison), a same-origin check against cross-site
//! requests, and CORS for explicitly allowed origins only.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::serve::Peer;
use crate::state::AppState;

/// Who made a request, as the audit log records it.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct Who {
    pub addr: String,
    /// The request carried the right API key.
    #[serde(rename = "api_key")]
    pub key: bool,
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

/// The origin this request was addressed to, as a browser would write it.
fn own_origin(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    Some(format!("http://{host}"))
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
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST"));
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("content-type, x-api-key, last-event-id"),
            );
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        }
        return resp;
    }

    let addr = req.extensions().get::<Peer>().map_or_else(|| "local".to_string(), |p| p.0.to_string());
    let mut key_used = false;
    if is_mutating(req.method()) {
        // A browser on another site may send simple POSTs here; only our own
        // page and explicitly allowed origins may change anything.
        if let Some(o) = &origin {
            let same = own_origin(req.headers()).is_some_and(|own| &own == o);
            if !same && allowed.is_none() {
                return ApiError::new(StatusCode::FORBIDDEN, format!("origin {o} is not allowed")).into_response();
            }
        }
        if let Some(key) = &config.api_key {
            let given = req.headers().get("x-api-key").map(|v| v.as_bytes());
            match given {
                Some(g) if same_secret(g, key.as_bytes()) => key_used = true,
                Some(_) => return unauthorized("wrong API key (X-API-Key)"),
                None => return unauthorized("this endpoint needs an API key in the X-API-Key header"),
            }
        }
    }
    req.extensions_mut().insert(Who { addr, key: key_used });
    let mut resp = next.run(req).await;
    if let Some(o) = &allowed {
        cors_headers(resp.headers_mut(), o);
    }
    resp
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
    use super::same_secret;

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
