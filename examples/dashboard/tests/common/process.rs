//! The real `ipvtl-dashboard` binary over a real socket: start it, talk
//! HTTP/1.1 to it, kill it when the test ends.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_ipvtl-dashboard");

/// How long a request waits for its answer unless told otherwise.
pub const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// The binary, with the environment it would read cleared and an
/// in-memory store.
pub fn dashboard(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args);
    for var in
        ["IPVTL_API_KEY", "IPVTL_LISTEN", "IPVTL_SERVERS_CONFIG_PATH", "IPVTL_PUBLIC_URL", "IPVTL_TRUSTED_PROXIES"]
    {
        c.env_remove(var);
    }
    // A store of its own that leaves nothing behind, unless `--store` says
    // otherwise (tests that restart on one store).
    c.env("IPVTL_STORE", "sqlite::memory:");
    c
}

/// `--servers servers --listen 127.0.0.1:0 --audit-log audit`, then
/// `extra`: the arguments of a dashboard over a servers file.
pub fn file_args<'a>(servers: &'a Path, audit: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args =
        vec!["--servers", servers.to_str().unwrap(), "--listen", "127.0.0.1:0", "--audit-log", audit.to_str().unwrap()];
    args.extend_from_slice(extra);
    args
}

/// A running dashboard, killed (SIGKILL) when dropped, also when a test fails.
pub struct Dashboard {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Dashboard {
    /// Starts the binary and waits for its "serving on" line.
    pub fn spawn(args: &[&str]) -> Self {
        Self::spawn_with_env(args, &[])
    }

    /// [`Dashboard::spawn`] with environment variables set (after the
    /// ones [`dashboard`] clears, so they may set those too).
    pub fn spawn_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = dashboard(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the binary starts");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let addr = loop {
            let line = lines.next().expect("a 'serving on' line").expect("stdout");
            if let Some(rest) = line.strip_prefix("serving on http://") {
                break rest.trim_end_matches('/').parse().expect("an address");
            }
        };
        // Keep reading stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Dashboard { child, addr }
    }

    /// Waits until the first sweep is listed: every server online.
    pub fn wait_first_sweep(&self) {
        super::wait_until("the first sweep is listed", || {
            let (_, list) = self.get("/api/servers");
            list.as_array().is_some_and(|l| l.iter().all(|s| s["state"]["status"] == "online"))
        });
    }

    /// `kill -9`, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Open file descriptors of the dashboard process.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).expect("/proc/PID/fd").count()
    }

    /// Resident memory of the dashboard process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("/proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("a VmRSS line")
    }

    /// The `ipvtl_sse_clients` gauge.
    pub fn sse_clients(&self) -> u64 {
        let metrics = self.request("GET", "/metrics", &[], None);
        assert_eq!(metrics.status, 200);
        metrics
            .body
            .lines()
            .find_map(|l| l.strip_prefix("ipvtl_sse_clients "))
            .and_then(|v| v.trim().parse().ok())
            .expect("an ipvtl_sse_clients line")
    }

    /// [`request`] to this dashboard.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Reply {
        request(self.addr, method, path, headers, body)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        json_of(http(self.addr, "GET", path, None))
    }

    pub fn post(&self, path: &str) -> (u16, Value) {
        json_of(http(self.addr, "POST", path, None))
    }

    pub fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        json_of(http(self.addr, "POST", path, Some(&body.to_string())))
    }

    /// A request with `X-API-Key: key` (when given) and a JSON body (when given).
    pub fn send(&self, method: &str, path: &str, key: Option<&str>, body: Option<&Value>) -> (u16, Value) {
        let mut headers = Vec::new();
        if let Some(k) = key {
            headers.push(("X-API-Key", k));
        }
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let r = self.request(method, path, &headers, body.map(Value::to_string).as_deref());
        json_of((r.status, r.body))
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        self.kill();
    }
}

fn json_of((code, body): (u16, String)) -> (u16, Value) {
    let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}), status {code}: {body}"));
    (code, v)
}

/// An HTTP answer as read off the socket: status, head (status line and
/// headers) and body (de-chunked).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}), status {}: {:?}", self.status, self.body))
    }

    pub fn detail(&self) -> String {
        self.json()["detail"].as_str().unwrap_or_else(|| panic!("a detail: {}", self.body)).to_string()
    }
}

/// One HTTP/1.1 request on a connection of its own, waiting up to
/// [`READ_TIMEOUT`]: `Host:` the dashboard's address unless `headers` give
/// one, then `headers`, `Content-Length` and `Connection: close`.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Reply {
    request_within(READ_TIMEOUT, addr, method, path, headers, body)
}

/// [`request`], waiting up to `timeout` for the answer.
pub fn request_within(
    timeout: Duration,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or("");
    head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()));
    exchange_within(timeout, addr, head.as_bytes())
}

/// One HTTP/1.1 request (a JSON body if any, with its `Content-Type`);
/// returns the status code and the body.
pub fn http(addr: SocketAddr, method: &str, path: &str, json: Option<&str>) -> (u16, String) {
    let headers: &[(&str, &str)] = if json.is_some() { &[("Content-Type", "application/json")] } else { &[] };
    let r = request(addr, method, path, headers, json);
    (r.status, r.body)
}

/// Sends `raw` on a connection of its own and reads the answer until the
/// server closes (the request says `Connection: close`, or is HTTP/1.0).
pub fn exchange(addr: SocketAddr, raw: &[u8]) -> Reply {
    exchange_within(READ_TIMEOUT, addr, raw)
}

fn exchange_within(timeout: Duration, addr: SocketAddr, raw: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).expect("connect to the dashboard");
    s.set_read_timeout(Some(timeout)).expect("a read timeout");
    s.write_all(raw).expect("send the request");
    read_reply(s)
}

/// Reads an answer until the server closes the connection.
pub fn read_reply(mut s: TcpStream) -> Reply {
    let mut raw = Vec::new();
    // A reset after the answer (the server closing with unread input) is
    // not a failure: what arrived before it is the answer.
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !raw.is_empty() => break,
            Err(e) => panic!("read the answer: {e} (so far {:?})", String::from_utf8_lossy(&raw)),
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked { dechunk(rest) } else { rest.to_string() };
    Reply { status, head: head.to_string(), body }
}

/// The body of a chunked answer, up to the last chunk or as far as it is
/// whole.
fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// The event stream replayed from event 0 (`Last-Event-ID: 0`), read until
/// it has sent what it holds (1.5 s without a byte): the raw SSE text.
#[allow(dead_code)] // Not every test binary reads the stream.
pub fn sse_replay(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).expect("connects");
    s.set_read_timeout(Some(Duration::from_millis(1500))).expect("a read timeout");
    write!(s, "GET /api/events HTTP/1.1\r\nHost: {addr}\r\nLast-Event-ID: 0\r\n\r\n").expect("writes");
    let mut text = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&text).into_owned()
}
