//! Just enough HTTP/1.1 for IPVTL: request head and optional body in,
//! a `Content-Length` response out, keep-alive unless told otherwise.

use std::io;
use std::net::TcpStream;

use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::Async;

/// Longest request head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Longest request body accepted (control endpoint payloads).
const MAX_BODY: usize = 1024 * 1024;

/// One parsed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Request {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query after `?`, if any.
    pub query: Option<String>,
    /// Whether the connection stays open after the answer.
    pub keep_alive: bool,
    /// The client sent `Expect: 100-continue` and waits before its body.
    pub expect_continue: bool,
    pub body: Vec<u8>,
}

/// A parsed request head: the request (without body), its
/// `Content-Length` and its `User-Agent`, borrowed from the head so that
/// reading it allocates nothing.
#[derive(Debug)]
pub(crate) struct Head<'a> {
    pub request: Request,
    pub content_length: usize,
    /// The `User-Agent` value, trimmed; empty when there was none.
    pub user_agent: &'a str,
}

/// Why no request could be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The bytes were not an acceptable request; answer 400 (or the code)
    /// and close.
    Bad(u16, &'static str),
    /// The connection failed or closed mid-request.
    Io,
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Io
    }
}

/// A server-side connection with its read buffer.
pub(crate) struct Conn {
    pub stream: Async<TcpStream>,
    buf: Vec<u8>,
    /// The last request's `User-Agent`: one buffer per connection, reused,
    /// so requests carry no allocation of it.
    user_agent: String,
}

impl Conn {
    pub fn new(stream: Async<TcpStream>) -> Self {
        Conn { stream, buf: Vec::new(), user_agent: String::new() }
    }

    /// The `User-Agent` of the last request read; empty when it sent none.
    pub fn user_agent(&self) -> &str {
        &self.user_agent
    }

    /// Reads the next request; `Ok(None)` when the peer closed cleanly
    /// between requests.
    pub async fn read_request(&mut self) -> Result<Option<Request>, ReadError> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(ReadError::Bad(431, "request head too large"));
            }
            if self.fill().await? == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(ReadError::Io);
            }
        };
        let head =
            std::str::from_utf8(&self.buf[..head_end]).map_err(|_| ReadError::Bad(400, "request head is not UTF-8"))?;
        let Head { request: mut req, content_length, user_agent } = parse_head(head)?;
        self.user_agent.clear();
        self.user_agent.push_str(user_agent);
        if content_length > MAX_BODY {
            return Err(ReadError::Bad(413, "request body too large"));
        }
        if req.expect_continue && content_length > 0 && self.buf.len() < head_end + content_length {
            self.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
        }
        while self.buf.len() < head_end + content_length {
            if self.fill().await? == 0 {
                return Err(ReadError::Io);
            }
        }
        req.body = self.buf[head_end..head_end + content_length].to_vec();
        self.buf.drain(..head_end + content_length);
        Ok(Some(req))
    }

    async fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Reads and discards until the peer closes (or the connection fails).
    pub async fn drain_until_closed(&mut self) {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = self.stream.read(&mut chunk).await {
            if n == 0 {
                break;
            }
        }
    }

    /// Writes a complete response.
    pub async fn respond(&mut self, resp: &Response, keep_alive: bool) -> io::Result<()> {
        // One write: a separate small body write would wait for the
        // client's delayed ACK (Nagle), adding ~40 ms to every answer.
        let mut bytes = resp.head(resp.body.len(), keep_alive).into_bytes();
        bytes.extend_from_slice(&resp.body);
        self.write_all(&bytes).await?;
        self.stream.flush().await
    }

    /// Writes raw bytes.
    pub async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses the request line and headers.
pub(crate) fn parse_head(head: &str) -> Result<Head<'_>, ReadError> {
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Bad(400, "bad request line"));
    };
    let mut keep_alive = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err(ReadError::Bad(505, "only HTTP/1.0 and HTTP/1.1")),
    };
    if method.is_empty() || !target.starts_with('/') {
        return Err(ReadError::Bad(400, "bad request line"));
    }
    let mut content_length = 0usize;
    let mut expect_continue = false;
    let mut user_agent = "";
    for line in lines.take_while(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Err(ReadError::Bad(400, "bad header line"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().map_err(|_| ReadError::Bad(400, "bad Content-Length"))?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(ReadError::Bad(501, "Transfer-Encoding is not supported"));
        } else if name.eq_ignore_ascii_case("user-agent") {
            user_agent = value;
        } else if name.eq_ignore_ascii_case("expect") {
            expect_continue = value.eq_ignore_ascii_case("100-continue");
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        }
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (target.to_string(), None),
    };
    Ok(Head {
        request: Request { method: method.to_string(), path, query, keep_alive, expect_continue, body: Vec::new() },
        content_length,
        user_agent,
    })
}

/// A response to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Response {
    pub code: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Extra header lines, each without CRLF.
    pub extra: Vec<String>,
}

impl Response {
    pub fn json(code: u16, body: impl Into<Vec<u8>>) -> Self {
        Response { code, content_type: "application/json", body: body.into(), extra: Vec::new() }
    }

    pub fn text(code: u16, body: impl Into<Vec<u8>>) -> Self {
        Response { code, content_type: "text/plain; charset=utf-8", body: body.into(), extra: Vec::new() }
    }

    /// 405 with `Allow`.
    pub fn method_not_allowed(allow: &str) -> Self {
        let mut r = Response::text(405, "method not allowed\n");
        r.extra.push(format!("Allow: {allow}"));
        r
    }

    /// The status line and headers, announcing `len` body bytes.
    pub fn head(&self, len: usize, keep_alive: bool) -> String {
        let mut h = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {len}\r\nConnection: {}\r\n",
            self.code,
            reason(self.code),
            self.content_type,
            if keep_alive { "keep-alive" } else { "close" },
        );
        for e in &self.extra {
            h.push_str(e);
            h.push_str("\r\n");
        }
        h.push_str("\r\n");
        h
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(s: &str) -> Request {
        match parse_head(s) {
            Ok(h) => h.request,
            Err(e) => panic!("{s:?}: {e:?}"),
        }
    }

    #[test]
    fn parses_request_line_query_and_keep_alive() {
        let r = head("GET /channel3?stop HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!((r.method.as_str(), r.path.as_str(), r.query.as_deref()), ("GET", "/channel3", Some("stop")));
        assert!(r.keep_alive);
        assert!(!head("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n").keep_alive);
        assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(head("GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n").keep_alive);
    }

    #[test]
    fn content_length_and_refusals() {
        let h = parse_head("POST /faults HTTP/1.1\r\ncontent-length: 12\r\nExpect: 100-continue\r\n\r\n").unwrap();
        assert_eq!(h.content_length, 12);
        assert!(h.request.expect_continue);
        for bad in [
            "GET /\r\n\r\n",
            "GET / HTTP/2\r\n\r\n",
            "GET x HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nnocolon\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(matches!(parse_head(bad), Err(ReadError::Bad(..))), "{bad:?}");
        }
    }

    #[test]
    fn user_agent_is_borrowed_trimmed_or_empty() {
        let ua = |s: &str| parse_head(s).map(|h| h.user_agent.to_string()).unwrap();
        assert_eq!(ua("GET /status HTTP/1.1\r\nHost: x\r\nUser-Agent:  dash-a/1 (b) \r\n\r\n"), "dash-a/1 (b)");
        assert_eq!(ua("GET /status HTTP/1.1\r\nuser-agent: curl/8 isahc/2\r\n\r\n"), "curl/8 isahc/2");
        assert_eq!(ua("GET /status HTTP/1.1\r\nHost: x\r\n\r\n"), "");
        assert_eq!(ua("GET /status HTTP/1.1\r\nUser-Agent:\r\n\r\n"), "");
    }

    #[test]
    fn response_head() {
        let r = Response::method_not_allowed("GET");
        let h = r.head(3, false);
        assert!(h.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(h.contains("Content-Length: 3\r\n"));
        assert!(h.contains("Connection: close\r\n"));
        assert!(h.contains("Allow: GET\r\n"));
        assert!(h.ends_with("\r\n\r\n"));
    }
}
