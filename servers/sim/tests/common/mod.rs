//! A tiny HTTP/1.1 client over `std::net::TcpStream`, for the tests only.

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ipvtl_core::ServerConfig;

/// One response.
#[derive(Debug)]
pub struct Reply {
    pub code: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub fn addr(server: &ServerConfig) -> SocketAddr {
    format!("{}:{}", server.host, server.port).parse().expect("simulator hosts are IP addresses")
}

/// Connects with a read timeout of `timeout`.
pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok(s)
}

/// Sends one request on `stream` (kept alive unless `close`) and reads the
/// response by its `Content-Length`.
pub fn send(stream: &mut TcpStream, method: &str, path: &str, body: &str, close: bool) -> io::Result<Reply> {
    let connection = if close { "close" } else { "keep-alive" };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: sim\r\nConnection: {connection}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes())?;
    read_reply(stream)
}

/// Reads one response.
pub fn read_reply(stream: &mut TcpStream) -> io::Result<Reply> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let code = status.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or(io::ErrorKind::InvalidData)?;
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_string(), v.trim().to_string())).collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .ok_or(io::ErrorKind::InvalidData)?;
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(len);
    Ok(Reply { code, headers, body })
}

/// `GET path` on a fresh connection with `Connection: close`.
pub fn get(addr: SocketAddr, path: &str) -> io::Result<Reply> {
    let mut s = connect(addr, Duration::from_secs(10))?;
    send(&mut s, "GET", path, "", true)
}

/// `POST path` with a JSON body on a fresh connection.
pub fn post(addr: SocketAddr, path: &str, body: &str) -> io::Result<Reply> {
    let mut s = connect(addr, Duration::from_secs(10))?;
    send(&mut s, "POST", path, body, true)
}

/// Polls `f` every 20 ms until it is true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Uptime in seconds of every running channel in a `/status` body.
pub fn uptimes(status: &serde_json::Value) -> Vec<Option<u64>> {
    status["channels"]
        .as_array()
        .map(|chs| {
            chs.iter()
                .map(|c| ipvtl_core::parse_stats(c["status"].as_str().unwrap_or_default()).map(|s| s.uptime_s))
                .collect()
        })
        .unwrap_or_default()
}
