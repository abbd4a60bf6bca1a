//! [`IsahcTransport`]: the core's [`Transport`] over one shared isahc client.

use std::io;
use std::time::Duration;

use futures::AsyncReadExt;
use ipvtl_core::{Request, Response, ServerConfig, Transport, TransportError};
use isahc::config::Configurable;
use isahc::http::header::{HeaderValue, USER_AGENT};

/// Default cap on a response body: 1 MiB (a real `/status` is a few KiB).
pub const DEFAULT_BODY_LIMIT: u64 = 1024 * 1024;

/// Settings of the HTTP transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportOptions {
    /// Largest body accepted; a larger one is [`TransportError::TooLarge`].
    pub body_limit: u64,
    /// Idle connections kept for reuse across sweeps.
    pub connection_cache: usize,
    /// Connect phase bound (the request timeout bounds the whole exchange).
    pub connect_timeout: Duration,
    /// The `User-Agent` header sent with every request, so that servers (and
    /// the simulator's records) can tell several clients apart; `None` keeps
    /// isahc's own (`curl/<version> isahc/<version>`).
    pub user_agent: Option<String>,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            body_limit: DEFAULT_BODY_LIMIT,
            connection_cache: 1024,
            connect_timeout: Duration::from_secs(3),
            user_agent: None,
        }
    }
}

/// One isahc (curl multi) client shared by the whole fleet: connections are
/// reused, every request carries its own timeout, bodies are capped.
///
/// It sets no connection limit of its own: the core's poller owns the
/// concurrency cap, and a limit here would make an urgent restart queue
/// behind a sweep inside curl.
pub struct IsahcTransport {
    client: isahc::HttpClient,
    body_limit: u64,
    /// Parsed once; each request carries a clone (a reference count, where
    /// a client-wide default header would cost an interceptor per request).
    user_agent: Option<HeaderValue>,
}

impl std::fmt::Debug for IsahcTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsahcTransport")
            .field("body_limit", &self.body_limit)
            .field("user_agent", &self.user_agent)
            .finish_non_exhaustive()
    }
}

impl IsahcTransport {
    /// Builds the shared client. A `user_agent` that is not a valid header
    /// value (a control character, a line break) is
    /// [`TransportError::Invalid`].
    pub fn new(options: &TransportOptions) -> Result<Self, TransportError> {
        let user_agent = match &options.user_agent {
            Some(ua) => Some(
                HeaderValue::from_str(ua)
                    .map_err(|e| TransportError::Invalid(format!("user agent {ua:?} is not a header value: {e}")))?,
            ),
            None => None,
        };
        let client = isahc::HttpClient::builder()
            .connection_cache_size(options.connection_cache)
            .connect_timeout(options.connect_timeout)
            .redirect_policy(isahc::config::RedirectPolicy::None)
            // Servers are mostly IP literals; curl's DNS cache would grow to
            // one entry per server and is pruned by walking it on lookups.
            .dns_cache(isahc::net::dns::DnsCache::Disable)
            .build()
            .map_err(|e| map_error(&e))?;
        Ok(IsahcTransport { client, body_limit: options.body_limit, user_agent })
    }

    /// The body cap in bytes.
    pub fn body_limit(&self) -> u64 {
        self.body_limit
    }
}

/// `http://host:port/path`, with IPv6 literals bracketed. The path comes
/// from the core; the host was validated by the config parser.
pub fn url(server: &ServerConfig, request: &Request) -> String {
    let host = &server.host;
    if host.contains(':') && !host.starts_with('[') {
        format!("http://[{host}]:{}{}", server.port, request.path())
    } else {
        format!("http://{host}:{}{}", server.port, request.path())
    }
}

#[async_trait::async_trait]
impl Transport for IsahcTransport {
    async fn send(&self, server: &ServerConfig, request: Request) -> Result<Response, TransportError> {
        let mut builder = isahc::Request::get(url(server, &request)).timeout(request.timeout);
        if let Some(ua) = &self.user_agent {
            builder = builder.header(USER_AGENT, ua.clone());
        }
        let http_request = builder.body(()).map_err(|e| TransportError::Invalid(e.to_string()))?;
        let mut response = self.client.send_async(http_request).await.map_err(|e| map_error(&e))?;
        let code = response.status().as_u16();
        let declared =
            response.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.body_limit) {
            return Err(TransportError::TooLarge { limit: self.body_limit });
        }
        let mut body = Vec::with_capacity(declared.unwrap_or(4096).min(self.body_limit) as usize);
        let mut limited = response.body_mut().take(self.body_limit + 1);
        limited.read_to_end(&mut body).await.map_err(|e| map_io(&e))?;
        if body.len() as u64 > self.body_limit {
            return Err(TransportError::TooLarge { limit: self.body_limit });
        }
        Ok(Response { code, body })
    }
}

/// The one place where isahc's errors become the core's.
fn map_error(e: &isahc::Error) -> TransportError {
    use isahc::error::ErrorKind;
    match e.kind() {
        ErrorKind::Timeout => TransportError::Timeout,
        ErrorKind::ConnectionFailed | ErrorKind::NameResolution => TransportError::Connect(with_fd_shortage(e)),
        ErrorKind::InvalidRequest | ErrorKind::ClientInitialization => TransportError::Invalid(e.to_string()),
        _ if e.is_timeout() => TransportError::Timeout,
        _ => TransportError::Io(with_fd_shortage(e)),
    }
}

/// The error's message, plus the reason when the process is out of file
/// descriptors. curl then says only "failed to connect to the server" (the
/// OS error of its `socket()` call goes to its verbose log), and isahc does
/// not pass on the errno; opening a file shows it. Only failed requests
/// pay for the probe, and it holds no descriptor after it returns.
fn with_fd_shortage(e: &isahc::Error) -> String {
    match fd_shortage() {
        Some(os) => format!("{e} (this process is out of file descriptors: {os})"),
        None => e.to_string(),
    }
}

#[cfg(unix)]
fn fd_shortage() -> Option<io::Error> {
    // EMFILE (this process's limit) and ENFILE (the system's) are 24 and 23
    // on Linux, the BSDs and macOS alike.
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    match std::fs::File::open("/dev/null") {
        Err(e) if matches!(e.raw_os_error(), Some(ENFILE | EMFILE)) => Some(e),
        _ => None,
    }
}

#[cfg(not(unix))]
fn fd_shortage() -> Option<io::Error> {
    None
}

fn map_io(e: &io::Error) -> TransportError {
    if e.kind() == io::ErrorKind::TimedOut {
        return TransportError::Timeout;
    }
    // isahc wraps its own error in the io::Error of a body read.
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<isahc::Error>()) {
        return map_error(inner);
    }
    TransportError::Io(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipvtl_core::{ChannelId, RequestKind};
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn urls_bracket_ipv6_and_use_core_paths() {
        let req = |kind| Request { kind, timeout: Duration::from_secs(1) };
        let v4 = ServerConfig::new("a", "127.0.0.1").with_port(9000);
        assert_eq!(url(&v4, &req(RequestKind::Status)), "http://127.0.0.1:9000/status");
        let v6 = ServerConfig::new("b", "::1");
        let ch = ChannelId::new(3).unwrap();
        assert_eq!(url(&v6, &req(RequestKind::Stop(ch))), "http://[::1]:9527/channel3?stop");
        let bracketed = ServerConfig::new("c", "[::1]");
        assert_eq!(url(&bracketed, &req(RequestKind::Start(ch))), "http://[::1]:9527/channel3?start");
    }

    /// Sends one `/status` through a transport built with `user_agent` to a
    /// loopback listener; returns the request head it read.
    fn head_sent_with(user_agent: Option<&str>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
                head.push(byte[0]);
            }
            stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}").unwrap();
            String::from_utf8(head).unwrap()
        });
        let options = TransportOptions { user_agent: user_agent.map(str::to_string), ..TransportOptions::default() };
        let transport = IsahcTransport::new(&options).unwrap();
        let server_config = ServerConfig::new("a", "127.0.0.1").with_port(port);
        let request = Request { kind: RequestKind::Status, timeout: Duration::from_secs(5) };
        let response = smol::block_on(transport.send(&server_config, request)).unwrap();
        assert_eq!((response.code, response.body.as_slice()), (200, &b"{}"[..]));
        server.join().unwrap()
    }

    fn user_agents(head: &str) -> Vec<&str> {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(name, _)| name.eq_ignore_ascii_case("user-agent"))
            .map(|(_, value)| value.trim())
            .collect()
    }

    #[test]
    fn every_request_carries_the_user_agent_once() {
        let head = head_sent_with(Some("ipvtl-dashboard/0.1 (instance b)"));
        assert!(head.starts_with("GET /status HTTP/1.1\r\n"), "{head}");
        assert_eq!(user_agents(&head), ["ipvtl-dashboard/0.1 (instance b)"], "{head}");
    }

    #[test]
    fn without_a_user_agent_isahc_sends_its_own() {
        let head = head_sent_with(None);
        let agents = user_agents(&head);
        assert!(agents.len() == 1 && agents[0].starts_with("curl/") && agents[0].contains("isahc/"), "{head}");
    }

    #[test]
    fn a_user_agent_with_a_line_break_is_refused() {
        let options = TransportOptions { user_agent: Some("a\r\nX-Injected: 1".into()), ..TransportOptions::default() };
        assert!(matches!(IsahcTransport::new(&options), Err(TransportError::Invalid(_))));
    }
}
