//! The real `ipvtl-dashboard` binary over a real socket: start it, talk
//! HTTP/1.1 to it, kill it when the test ends.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_ipvtl-dashboard");

/// The binary, with the environment it would read cleared and an
/// in-memory store.
pub fn dashboard(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args).env_remove("IPVTL_API_KEY").env_remove("IPVTL_LISTEN").env_remove("IPVTL_SERVERS_CONFIG_PATH");
    // A store of its own that leaves nothing behind, unless `--store` says
    // otherwise (tests that restart on one store).
    c.env("IPVTL_STORE", "sqlite::memory:");
    c
}

/// A running dashboard, killed (SIGKILL) when dropped, also when a test fails.
pub struct Dashboard {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Dashboard {
    /// Starts the binary and waits for its "serving on" line.
    pub fn spawn(args: &[&str]) -> Self {
        let mut child =
            dashboard(args).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("the binary starts");
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

    /// `kill -9`, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
        let headers = key.map(|k| format!("X-API-Key: {k}\r\n")).unwrap_or_default();
        json_of(http_with(self.addr, method, path, &headers, body.map(Value::to_string).as_deref()))
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

/// One HTTP/1.1 request on a connection of its own (a JSON body if any);
/// returns the status code and the body (de-chunked).
pub fn http(addr: SocketAddr, method: &str, path: &str, json: Option<&str>) -> (u16, String) {
    http_with(addr, method, path, "", json)
}

/// [`http`] with extra header lines (each ending in `\r\n`).
pub fn http_with(addr: SocketAddr, method: &str, path: &str, headers: &str, json: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the dashboard");
    s.set_read_timeout(Some(Duration::from_secs(20))).expect("a read timeout");
    let body = json.unwrap_or("");
    let ctype = if json.is_some() { "Content-Type: application/json\r\n" } else { "" };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}{ctype}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send the request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the answer");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked { dechunk(rest) } else { rest.to_string() };
    (code, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).expect("a chunk size");
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}
