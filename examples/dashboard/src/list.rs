//! `GET /api/servers` at fleet size: the body's per-server index,
//! compressed variants, and the filtered, paginated answers.
//!
//! The body is rendered once per change ([`render`]) as one buffer, `[` +
//! each server's `{config, state}` object joined by `,` + `]`: the same
//! bytes `serde_json` writes for the whole list, with the range of each
//! server's object (its fragment) kept beside it, and what the filters read
//! (health, tags, lowercase search text). So:
//!
//! - a filtered or paginated answer is a concatenation of fragments, never a
//!   re-serialization;
//! - the gzip and br variants of the whole body are compressed at most once
//!   per body (on the first request that asks for each, off the executor;
//!   concurrent requests wait for that one compression), see
//!   [`crate::cache::ServersCache::encoded`];
//! - `fields=summary` answers from each fragment with its `"channels":[...]`
//!   replaced by its channel counts: made once per body, by the first
//!   request that asks.

use std::io::Write;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use axum::body::Bytes;
use axum::http::HeaderValue;
use ipvtl_client::wire::ServerView;

use crate::error::ApiError;
use crate::legacy::{ChannelContext, LegacyServer};
use crate::state::AppState;

// Measured on the list of 10 000 servers (11.6 MB; 2 cores, AMD EPYC),
// compressed once per body, which changes every sweep:
//
// | coding | size | time |
// | --- | ---: | ---: |
// | gzip 1 / 3 / 6 | 15.0 / 10.8 / 9.0 % | 67 / 118 / 190 ms |
// | br 1 / 3 / 4 / 5 | 23.3 / 9.5 / 8.3 / 7.3 % | 75 / 96 / 222 / 669 ms |
//
// br 3 is a third smaller than gzip 1 for 40 % more time; br 4 is 13 %
// smaller again for 2.3 times the time, br 5 7 times: not worth it for a
// body made once a sweep.

/// gzip level for the whole list (see the measurements above).
const GZIP_LEVEL: u32 = 1;
/// br quality for the whole list (0–11; see the measurements above).
const BR_QUALITY: i32 = 3;
/// A filtered answer up to this size is compressed for the request that
/// asks. Measured: 256 KiB takes 0.5 ms (gzip 1) to 1.6 ms (br 3), 1 MiB
/// 2 to 5 ms, and both shrink to 9–15 %. With 1 MiB, 32 clients asking
/// for pages of 100 servers of 16 channels (300 KB) held the dashboard's
/// CPU and halved its sweeps (5 instead of 10 in 10 s at 1 000 servers);
/// uncompressed they cost a seventh. So a larger answer is served
/// uncompressed (page with a smaller `limit`, or `fields=summary`, to have
/// it compressed).
pub(crate) const FILTERED_COMPRESS_MAX: usize = 256 * 1024;
/// The largest `limit`.
pub(crate) const LIMIT_MAX: usize = 10_000;
/// What `?status=` may name.
const STATUSES: [&str; 4] = ["online", "offline", "error", "unknown"];
/// The channel states counted by name in `fields=summary` (always present,
/// 0 included); any other state a server reports is counted under its own
/// name after them.
const CHANNEL_STATES: [&str; 3] = ["idle", "running", "stopping"];

/// One server of the list, as filters and pages read it.
#[derive(Debug)]
pub(crate) struct ServerEntry {
    /// Its `{config, state}` object: this range of the body.
    fragment: Range<usize>,
    id: String,
    health: &'static str,
    tags: Vec<String>,
    /// Id, name, host and description, lowercase, one per line.
    search: String,
    /// Its channels by state: [`CHANNEL_STATES`], then any other.
    counts: [u32; 3],
    other_counts: Vec<(String, u32)>,
}

/// A rendered list: the body and its index.
#[derive(Debug)]
pub(crate) struct Rendered {
    pub bytes: Bytes,
    pub servers: Vec<ServerEntry>,
}

impl Rendered {
    /// No body: what the cache holds while nobody reads the list.
    pub(crate) fn empty() -> Self {
        Rendered { bytes: Bytes::new(), servers: Vec::new() }
    }
}

/// A body without an index (the cache's own tests).
#[cfg(test)]
impl From<Bytes> for Rendered {
    fn from(bytes: Bytes) -> Self {
        Rendered { bytes, servers: Vec::new() }
    }
}

/// Serializes the fleet in the original tool's shape, indexing each server.
pub(crate) fn render(views: &[ServerView], context: &ChannelContext) -> Rendered {
    let mut buf = Vec::with_capacity(views.len() * 2048 + 2);
    let mut servers = Vec::with_capacity(views.len());
    buf.push(b'[');
    for (i, v) in views.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        let start = buf.len();
        if serde_json::to_writer(&mut buf, &LegacyServer::new(v, context)).is_err() {
            return Rendered { bytes: Bytes::from_static(b"[]"), servers: Vec::new() };
        }
        let c = &v.config;
        let mut counts = [0; 3];
        let mut other_counts: Vec<(String, u32)> = Vec::new();
        for ch in &v.state.channels {
            match CHANNEL_STATES.iter().position(|s| *s == ch.state) {
                Some(k) => counts[k] += 1,
                None => match other_counts.iter_mut().find(|(s, _)| *s == ch.state) {
                    Some((_, n)) => *n += 1,
                    None => other_counts.push((ch.state.clone(), 1)),
                },
            }
        }
        servers.push(ServerEntry {
            fragment: start..buf.len(),
            id: c.id.clone(),
            health: v.state.health,
            tags: c.tags.clone(),
            search: format!("{}\n{}\n{}\n{}", c.id, c.name, c.host, c.description).to_lowercase(),
            counts,
            other_counts,
        });
    }
    buf.push(b']');
    Rendered { bytes: Bytes::from(buf), servers }
}

/// The index kept with a body, and what is derived from it on demand (at
/// most once per body).
#[derive(Debug)]
pub(crate) struct ListIndex {
    servers: Vec<ServerEntry>,
    gzip: OnceLock<Bytes>,
    br: OnceLock<Bytes>,
    /// Whether a request has started compressing (gzip, br).
    started: [AtomicBool; 2],
    /// Each server's `fields=summary` fragment.
    summary: OnceLock<Summary>,
}

/// The `fields=summary` fragments of a body, one per server, in order.
#[derive(Debug)]
struct Summary {
    bytes: Vec<u8>,
    fragments: Vec<Range<usize>>,
}

impl Summary {
    /// Each fragment of `body` with `"channels":[...]` replaced by
    /// `"channel_counts":{...}`.
    fn of(body: &[u8], servers: &[ServerEntry]) -> Self {
        let mut bytes = Vec::with_capacity(body.len() / 2);
        let mut fragments = Vec::with_capacity(servers.len());
        for s in servers {
            let fragment = &body[s.fragment.clone()];
            let start = bytes.len();
            match channels_span(fragment) {
                Some(span) => {
                    bytes.extend_from_slice(&fragment[..span.start]);
                    write_counts(&mut bytes, s);
                    bytes.extend_from_slice(&fragment[span.end..]);
                }
                // Not the shape rendered here: left whole rather than broken.
                None => bytes.extend_from_slice(fragment),
            }
            fragments.push(start..bytes.len());
        }
        Summary { bytes, fragments }
    }
}

impl ListIndex {
    pub fn new(servers: Vec<ServerEntry>) -> Self {
        ListIndex {
            servers,
            gzip: OnceLock::new(),
            br: OnceLock::new(),
            started: [AtomicBool::new(false), AtomicBool::new(false)],
            summary: OnceLock::new(),
        }
    }

    /// True for the first caller for `encoding` (who compresses); false
    /// for the others and for identity.
    pub fn start(&self, encoding: Encoding) -> bool {
        let k = match encoding {
            Encoding::Identity => return false,
            Encoding::Gzip => 0,
            Encoding::Br => 1,
        };
        !self.started[k].swap(true, Ordering::SeqCst)
    }

    /// The compressed body in `encoding`, if already made.
    pub fn encoded(&self, encoding: Encoding) -> Option<Bytes> {
        self.slot(encoding)?.get().cloned()
    }

    /// The slot holding the body compressed in `encoding` (none: identity).
    pub(crate) fn slot(&self, encoding: Encoding) -> Option<&OnceLock<Bytes>> {
        match encoding {
            Encoding::Identity => None,
            Encoding::Gzip => Some(&self.gzip),
            Encoding::Br => Some(&self.br),
        }
    }
}

/// A content coding the list is served in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    Identity,
    Gzip,
    Br,
}

impl Encoding {
    /// The `Content-Encoding` value (none for identity).
    pub fn header(self) -> Option<HeaderValue> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some(HeaderValue::from_static("gzip")),
            Encoding::Br => Some(HeaderValue::from_static("br")),
        }
    }

    /// Appended to the ETag, so each encoding has its own.
    pub fn etag_suffix(self) -> &'static str {
        match self {
            Encoding::Identity => "",
            Encoding::Gzip => "-gzip",
            Encoding::Br => "-br",
        }
    }
}

/// The coding to answer in, from `Accept-Encoding` (RFC 9110 §12.5.3):
/// the highest q-value wins, br before gzip before identity at equal q; a
/// coding not named takes the q of `*` if given; identity, when not named
/// (nor `*`), is acceptable but comes after any coding named with q > 0
/// (`gzip;q=0.5` means gzip), and is excluded only by `identity;q=0` (or
/// `*;q=0` without `identity`). No header, or nothing acceptable: identity.
pub(crate) fn negotiate(accept: Option<&HeaderValue>) -> Encoding {
    let Some(value) = accept.and_then(|v| v.to_str().ok()) else { return Encoding::Identity };
    let (mut br, mut gzip, mut identity, mut star) = (None, None, None, None);
    for item in value.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1.0f32;
        for p in parts {
            let p = p.trim();
            if let Some(v) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
                q = v.trim().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q)).unwrap_or(0.0);
            }
        }
        let slot = match coding.as_str() {
            "br" => &mut br,
            "gzip" | "x-gzip" => &mut gzip,
            "identity" => &mut identity,
            "*" => &mut star,
            _ => continue,
        };
        slot.get_or_insert(q);
    }
    let candidates = [
        (Encoding::Br, br.or(star).unwrap_or(0.0)),
        (Encoding::Gzip, gzip.or(star).unwrap_or(0.0)),
        // Not named: acceptable, but after any coding named with q > 0.
        (Encoding::Identity, identity.or(star).unwrap_or(f32::MIN_POSITIVE)),
    ];
    let mut best = (Encoding::Identity, 0.0);
    for (e, q) in candidates {
        if q > best.1 {
            best = (e, q);
        }
    }
    best.0
}

/// `bytes` compressed in `encoding` (identity: a copy).
pub(crate) fn compress(encoding: Encoding, bytes: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(bytes.len() / 8 + 64);
    match encoding {
        Encoding::Identity => out.extend_from_slice(bytes),
        Encoding::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::new(GZIP_LEVEL));
            // Writing to memory does not fail.
            let _ = gz.write_all(bytes);
            out = gz.finish().unwrap_or_default();
        }
        Encoding::Br => {
            // A window no larger than the input: the encoder zeroes its
            // tables, which costs more than compressing a small page.
            let lgwin = (usize::BITS - bytes.len().leading_zeros()).clamp(16, 22) as i32;
            let params = brotli::enc::BrotliEncoderParams {
                quality: BR_QUALITY,
                lgwin,
                size_hint: bytes.len(),
                ..Default::default()
            };
            let _ = brotli::BrotliCompress(&mut &bytes[..], &mut out, &params);
        }
    }
    Bytes::from(out)
}

/// Where a page resumes: after the server `id`, which was at `pos - 1`.
#[derive(Debug, PartialEq)]
struct Cursor {
    pos: usize,
    id: String,
}

impl Cursor {
    /// Opaque to clients: the hex of `pos:id`.
    fn encode(&self) -> String {
        format!("{}:{}", self.pos, self.id).bytes().map(|b| format!("{b:02x}")).collect()
    }

    fn decode(s: &str) -> Option<Self> {
        if !s.len().is_multiple_of(2) || !s.is_ascii() {
            return None;
        }
        let bytes: Option<Vec<u8>> =
            (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect();
        let text = String::from_utf8(bytes?).ok()?;
        let (pos, id) = text.split_once(':')?;
        Some(Cursor { pos: pos.parse().ok()?, id: id.to_string() })
    }
}

/// A list query: filters (each matches any of its values; all must match),
/// a page, and the field set.
#[derive(Debug, Default)]
pub(crate) struct ListQuery {
    statuses: Vec<&'static str>,
    tags: Vec<String>,
    /// Lowercase.
    q: Option<String>,
    limit: Option<usize>,
    cursor: Option<Cursor>,
    summary: bool,
    /// A hash of the query as sent, for the answer's ETag.
    hash: u64,
}

impl ListQuery {
    /// The query of `GET /api/servers`: `None` when it has none of
    /// `status`, `tag`, `q`, `limit`, `cursor`, `fields` (the plain list;
    /// other parameters are ignored, as the original tool did).
    pub fn parse(raw: Option<&str>) -> Result<Option<Self>, ApiError> {
        let Some(raw) = raw else { return Ok(None) };
        let mut query = ListQuery::default();
        let mut any = false;
        let mut seen: Vec<&'static str> = Vec::new();
        let mut once = |name: &'static str| {
            if seen.contains(&name) {
                return Err(ApiError::unprocessable(format!("{name}: given more than once")));
            }
            seen.push(name);
            Ok(())
        };
        for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
            match key.as_ref() {
                "status" => {
                    for s in value.split(',').map(str::trim) {
                        let Some(known) = STATUSES.iter().find(|k| k.eq_ignore_ascii_case(s)) else {
                            return Err(ApiError::unprocessable(format!(
                                "status: {s:?} is not a server status: use online, offline, error or unknown \
                                 (repeat the parameter, or separate with commas, for any of several)"
                            )));
                        };
                        if !query.statuses.contains(known) {
                            query.statuses.push(known);
                        }
                    }
                }
                "tag" => {
                    for t in value.split(',').map(str::trim) {
                        if t.is_empty() {
                            return Err(ApiError::unprocessable(
                                "tag: empty: name a tag (repeat the parameter, or separate with commas, for any of several)",
                            ));
                        }
                        query.tags.push(t.to_string());
                    }
                }
                "q" => {
                    once("q")?;
                    query.q = Some(value.to_lowercase()).filter(|q| !q.is_empty());
                }
                "limit" => {
                    once("limit")?;
                    let n = value.trim().parse::<usize>().ok().filter(|n| (1..=LIMIT_MAX).contains(n));
                    query.limit = Some(n.ok_or_else(|| {
                        ApiError::unprocessable(format!(
                            "limit: {value:?} must be a whole number from 1 to {LIMIT_MAX}"
                        ))
                    })?);
                }
                "cursor" => {
                    once("cursor")?;
                    query.cursor = Some(Cursor::decode(value.trim()).ok_or_else(|| {
                        ApiError::unprocessable(format!(
                            "cursor: {value:?} is not a cursor: pass the next_cursor of the previous page as it was given"
                        ))
                    })?);
                }
                "fields" => {
                    once("fields")?;
                    query.summary = match value.trim() {
                        "full" => false,
                        "summary" => true,
                        other => {
                            return Err(ApiError::unprocessable(format!(
                                "fields: {other:?} is not a field set: use full (the default) or summary \
                                 (each server without state.channels, with state.channel_counts)"
                            )))
                        }
                    };
                }
                _ => continue,
            }
            any = true;
        }
        query.hash = fnv1a(raw.as_bytes());
        Ok(any.then_some(query))
    }

    /// The ETag of this query's answer from body `generation` in `encoding`.
    pub fn etag(&self, generation: u64, encoding: Encoding) -> String {
        format!("\"{generation}-{:016x}{}\"", self.hash, encoding.etag_suffix())
    }

    fn matches(&self, s: &ServerEntry) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&s.health))
            && (self.tags.is_empty() || s.tags.iter().any(|t| self.tags.contains(t)))
            && self.q.as_ref().is_none_or(|q| s.search.contains(q.as_str()))
    }

    /// Where the page starts in `servers`: after the cursor's server (found
    /// where it was, or where it is now after a change), or at its old
    /// position if it is no longer listed.
    fn start(&self, servers: &[ServerEntry]) -> usize {
        let Some(c) = &self.cursor else { return 0 };
        if c.pos >= 1 && servers.get(c.pos - 1).is_some_and(|s| s.id == c.id) {
            return c.pos;
        }
        match servers.iter().position(|s| s.id == c.id) {
            Some(i) => i + 1,
            None => c.pos.min(servers.len()),
        }
    }

    /// The answer `{"servers": [...], "next_cursor": ..., "total": N}`
    /// from `body` (a fleet body and its index). Blocking work for a large
    /// fleet: call it off the executor.
    pub fn answer(&self, body: &[u8], index: &ListIndex) -> Vec<u8> {
        let servers = &index.servers;
        let start = self.start(servers);
        let limit = self.limit.unwrap_or(usize::MAX);
        let mut page: Vec<usize> = Vec::new();
        let mut total = 0;
        let mut more = false;
        for (i, s) in servers.iter().enumerate() {
            if !self.matches(s) {
                continue;
            }
            total += 1;
            if i >= start {
                if page.len() < limit {
                    page.push(i);
                } else {
                    more = true;
                }
            }
        }
        let summary = self.summary.then(|| index.summary.get_or_init(|| Summary::of(body, servers)));
        let fragment = |i: usize| match summary {
            Some(s) => &s.bytes[s.fragments[i].clone()],
            None => &body[servers[i].fragment.clone()],
        };
        let size: usize = page.iter().map(|&i| fragment(i).len() + 1).sum();
        let mut out = Vec::with_capacity(size + 96);
        out.extend_from_slice(b"{\"servers\":[");
        for (n, &i) in page.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(fragment(i));
        }
        out.extend_from_slice(b"],\"next_cursor\":");
        match page.last().filter(|_| more) {
            Some(&i) => {
                let cursor = Cursor { pos: i + 1, id: servers[i].id.clone() }.encode();
                out.push(b'"');
                out.extend_from_slice(cursor.as_bytes());
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        let _ = write!(out, ",\"total\":{total}}}");
        out
    }
}

/// `"channel_counts":{"idle":N,"running":N,"stopping":N,...}`.
fn write_counts(out: &mut Vec<u8>, s: &ServerEntry) {
    out.extend_from_slice(b"\"channel_counts\":{");
    for (k, name) in CHANNEL_STATES.iter().enumerate() {
        let _ = write!(out, "{}\"{name}\":{}", if k > 0 { "," } else { "" }, s.counts[k]);
    }
    for (name, n) in &s.other_counts {
        out.push(b',');
        let _ = serde_json::to_writer(&mut *out, name);
        let _ = write!(out, ":{n}");
    }
    out.push(b'}');
}

/// Where `"channels":[...]` (key to closing bracket) sits in one server's
/// compact `{"config":{...},"state":{...}}`: the key `channels` of the
/// object under the key `state`. Strings are skipped whole, so no text a
/// server reports can be mistaken for structure.
fn channels_span(f: &[u8]) -> Option<Range<usize>> {
    let mut depth = 0usize;
    let mut in_state = false;
    let mut i = 0;
    while i < f.len() {
        match f[i] {
            b'"' => {
                let start = i;
                i = string_end(f, i)?;
                let is_key = f.get(i + 1) == Some(&b':');
                if is_key && depth == 1 {
                    in_state = &f[start..=i] == b"\"state\"";
                } else if is_key && depth == 2 && in_state && &f[start..=i] == b"\"channels\"" {
                    let open = i + 2;
                    if f.get(open) != Some(&b'[') {
                        return None;
                    }
                    return Some(start..close_of(f, open)? + 1);
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.checked_sub(1)?,
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index of the quote closing the string opening at `open`.
fn string_end(f: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    while i < f.len() {
        match f[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// The index of the bracket closing the one at `open`.
fn close_of(f: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < f.len() {
        match f[i] {
            b'"' => i = string_end(f, i)?,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

impl AppState {
    /// How many times a whole `/api/servers` body has been compressed
    /// (each encoding counts; at most once per body and encoding).
    pub fn list_compressions(&self) -> u64 {
        self.inner.cache.compressions()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn the_body_is_the_list_serialized_whole() {
        use ipvtl_client::wire::Wall;
        use ipvtl_client::{Cluster, ServerConfig, Settings};
        for n in [0, 1, 3] {
            let servers = (0..n).map(|i| ServerConfig::new(format!("s{i}"), "127.0.0.1").with_port(9)).collect();
            let cluster = Cluster::new(servers, Settings { background: false, ..Settings::default() }).unwrap();
            let fleet = cluster.snapshot();
            let wall = Wall(cluster.clock());
            let views: Vec<ServerView> =
                fleet.servers.iter().map(|s| ServerView::new(s, fleet.taken_at, wall)).collect();
            let context = ChannelContext::default();
            let whole: Vec<LegacyServer<'_>> = views.iter().map(|v| LegacyServer::new(v, &context)).collect();
            let rendered = render(&views, &context);
            assert_eq!(rendered.bytes, serde_json::to_vec(&whole).unwrap(), "{n} servers");
            assert_eq!(rendered.servers.len(), n);
        }
    }

    #[test]
    fn accept_encoding_is_negotiated_by_q_value() {
        use Encoding::*;
        let cases = [
            ("", Identity),
            ("identity", Identity),
            ("gzip", Gzip),
            ("br", Br),
            ("gzip, br", Br),
            ("gzip, deflate, br, zstd", Br),
            ("br;q=0, gzip", Gzip),
            ("br;q=0.5, gzip;q=0.8", Gzip),
            ("br;q=0.8, gzip;q=0.8", Br),
            ("gzip;q=0.5, identity", Identity),
            ("*", Br),
            ("*;q=0.5, gzip", Gzip),
            ("*;q=0", Identity),
            ("br;q=0, gzip;q=0", Identity),
            ("deflate", Identity),
            ("x-gzip", Gzip),
            ("GZIP;Q=1.0", Gzip),
            ("br;q=nonsense, gzip", Gzip),
            ("br;q=2, gzip", Gzip),
        ];
        for (header, want) in cases {
            assert_eq!(negotiate(Some(&hv(header))), want, "{header:?}");
        }
        assert_eq!(negotiate(None), Identity);
    }

    #[test]
    fn cursors_round_trip_and_reject_what_they_did_not_make() {
        let c = Cursor { pos: 42, id: "edge:7 é".into() };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        for bad in ["", "zz", "abc", "3a", "ff00"] {
            assert_eq!(Cursor::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_channels_span_skips_strings_and_the_config() {
        let f = br#"{"config":{"id":"a","description":"\"channels\":[1]","tags":["state"]},"state":{"server_id":"a","cpu_cores":[1.0],"channels":[{"name":"x]","drift":{"a":[]}}],"last_poll_time":null}}"#;
        let span = channels_span(f).unwrap();
        assert_eq!(&f[span], &br#""channels":[{"name":"x]","drift":{"a":[]}}]"#[..]);
    }

    #[test]
    fn compression_round_trips() {
        let body = br#"[{"config":{"id":"a"}},{"config":{"id":"b"}}]"#.repeat(100);
        let gz = compress(Encoding::Gzip, &body);
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut plain).unwrap();
        assert_eq!(plain, body);
        let br = compress(Encoding::Br, &body);
        let mut plain = Vec::new();
        brotli::BrotliDecompress(&mut &br[..], &mut plain).unwrap();
        assert_eq!(plain, body);
    }
}
