//! A webhook receiver on loopback for the alert tests: it checks every
//! request's HMAC-SHA256 signature and timestamp, refuses the first
//! deliveries (500) when told to, and can go down and come back.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

/// The secret the receivers check signatures with (the dashboards read it
/// from `IPVTL_TEST_HOOK_SECRET`).
pub const SECRET: &str = "test-webhook-secret";

/// One request the receiver took.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The body parsed (a CloudEvents envelope).
    pub event: Value,
    /// Answered 2xx.
    pub acknowledged: bool,
}

/// A webhook receiver on loopback: answers 500 to the first `fail_first`
/// requests, then 200; panics the test (by recording) on a bad signature.
pub struct Receiver {
    pub addr: SocketAddr,
    pub deliveries: Arc<Mutex<Vec<Delivery>>>,
    pub bad_signatures: Arc<AtomicUsize>,
    pub seen: Arc<AtomicUsize>,
    fail_first: usize,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    pub fn start(addr: SocketAddr, fail_first: usize) -> Self {
        let mut r = Receiver {
            addr,
            deliveries: Arc::default(),
            bad_signatures: Arc::default(),
            seen: Arc::default(),
            fail_first,
            stop: Arc::default(),
            thread: None,
        };
        r.up();
        r
    }

    /// Listens (again) on its address.
    pub fn up(&mut self) {
        let listener = TcpListener::bind(self.addr).expect("the receiver binds");
        self.addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        self.stop = Arc::default();
        let (stop, deliveries, bad, seen, fail_first) = (
            self.stop.clone(),
            self.deliveries.clone(),
            self.bad_signatures.clone(),
            self.seen.clone(),
            self.fail_first,
        );
        self.thread = Some(std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        serve(s, &deliveries, &bad, &seen, fail_first);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }));
    }

    /// Stops listening: connections are refused.
    pub fn down(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }

    pub fn acknowledged(&self) -> Vec<Value> {
        self.deliveries.lock().unwrap().iter().filter(|d| d.acknowledged).map(|d| d.event.clone()).collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.down();
    }
}

fn serve(s: TcpStream, deliveries: &Mutex<Vec<Delivery>>, bad: &AtomicUsize, seen: &AtomicUsize, fail_first: usize) {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut headers = BTreeMap::new();
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&body);
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let signed = headers.get("x-ipvtl-signature") == Some(&format!("sha256={expected}"));
    let stamped =
        headers.get("x-ipvtl-timestamp").and_then(|t| t.parse::<u64>().ok()).is_some_and(|t| t > 1_600_000_000);
    if !signed || !stamped {
        bad.fetch_add(1, Ordering::SeqCst);
    }
    let n = seen.fetch_add(1, Ordering::SeqCst);
    let acknowledged = n >= fail_first && signed;
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    deliveries.lock().unwrap().push(Delivery { event, acknowledged });
    let status = if acknowledged { "200 OK" } else { "500 Internal Server Error" };
    let mut s = s;
    let _ = write!(s, "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}

/// Writes `dir/alerts.toml`: `rules` (TOML), then one CloudEvents webhook
/// receiver `hook` at `http://HOOK/hook` signed with [`SECRET`] (read from
/// `IPVTL_TEST_HOOK_SECRET`), retried quickly. Returns its path.
pub fn alerts_file(dir: &std::path::Path, hook: SocketAddr, rules: &str) -> std::path::PathBuf {
    let path = dir.join("alerts.toml");
    let text = format!(
        r#"{rules}
[[receivers]]
name = "hook"
type = "webhook"
url = "http://{hook}/hook"
format = "cloudevents"
secret_env = "IPVTL_TEST_HOOK_SECRET"

[delivery]
backoff = "200ms"
backoff_max = "1s"
timeout = "3s"
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}
