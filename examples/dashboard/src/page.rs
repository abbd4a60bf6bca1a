//! The embedded web page: the markup, its stylesheet and its two scripts,
//! compiled into the binary (no build step, nothing read from disk).
//!
//! The page's Content-Security-Policy allows scripts and styles from the
//! dashboard itself only: no inline `<script>`, `<style>`, `on*=` or
//! `style=` anywhere, so injected markup can neither run nor restyle.

use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};

const INDEX: &str = include_str!("../static/index.html");
const APP_CSS: &str = include_str!("../static/app.css");
const APP_JS: &str = include_str!("../static/app.js");
const I18N_JS: &str = include_str!("../static/i18n.js");
const ALERTS_JS: &str = include_str!("../static/alerts.js");
const OVERVIEW_JS: &str = include_str!("../static/overview.js");

/// The page's policy: its own scripts, styles and API, nothing inline.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// `GET /` and `GET /index.html`.
pub(crate) async fn index() -> Response {
    let mut resp = Html(INDEX).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// `GET /app.css`.
pub(crate) async fn app_css() -> Response {
    asset(CSS, APP_CSS)
}

/// `GET /app.js`.
pub(crate) async fn app_js() -> Response {
    asset(JS, APP_JS)
}

/// `GET /i18n.js`.
pub(crate) async fn i18n_js() -> Response {
    asset(JS, I18N_JS)
}

/// `GET /alerts.js`.
pub(crate) async fn alerts_js() -> Response {
    asset(JS, ALERTS_JS)
}

/// A static file. `no-cache`: the browser asks again on every load, so the
/// page of a new binary never runs an old script.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// `GET /overview.js`.
pub(crate) async fn overview_js() -> Response {
    asset(JS, OVERVIEW_JS)
}
