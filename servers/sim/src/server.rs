//! One simulated server on the wire: its listener (closed while down) and
//! its connections, with faults applied.

use std::future::pending;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use smol::future::FutureExt as _;
use smol::{Async, Executor, Timer};

use crate::faults::Fault;
use crate::http::{Conn, ReadError, Request, Response};
use crate::record::{Action, InFlightGuard, Seen};
use crate::shared::{lock, Shared};

/// Spawns connection tasks without keeping the executor alive: the fleet
/// owns the executor, and dropping it drops every task and socket.
#[derive(Clone)]
pub(crate) struct Spawner(pub Weak<Executor<'static>>);

impl Spawner {
    pub fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        if let Some(ex) = self.0.upgrade() {
            ex.spawn(fut).detach();
        }
    }
}

/// Binds a listener on `addr`.
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<Async<TcpListener>> {
    Async::new(TcpListener::bind(addr)?)
}

enum Wait {
    Changed,
    Accepted(std::io::Result<(Async<TcpStream>, SocketAddr)>),
}

/// Runs server `i`: accepts while up, closes the listener while down.
pub(crate) async fn run_listener(shared: Arc<Shared>, i: usize, listener: Async<TcpListener>, spawner: Spawner) {
    let server = &shared.servers[i];
    let mut listener = Some(listener);
    loop {
        let now = Instant::now();
        let fault = server.fault();
        let down = fault.is_some_and(|(f, since)| f.is_down(since, now));
        let mut next = fault.and_then(|(f, since)| f.next_change(since, now));
        if down {
            // Dropping the listener closes it: new connections are refused.
            listener = None;
            server.listening.store(false, Ordering::SeqCst);
        } else if listener.is_none() {
            match bind(server.addr) {
                Ok(l) => {
                    listener = Some(l);
                    server.listening.store(true, Ordering::SeqCst);
                }
                // Someone else holds the address for now; try again soon.
                Err(_) => next = Some(now + Duration::from_millis(100)),
            }
        }
        let changed = async {
            let _ = server.wake_rx.recv().await;
            Wait::Changed
        };
        let timer = async {
            match next {
                Some(t) => Timer::at(t).await,
                None => pending().await,
            };
            Wait::Changed
        };
        let accept = async {
            match &listener {
                Some(l) => Wait::Accepted(l.accept().await),
                None => pending().await,
            }
        };
        match changed.or(timer).or(accept).await {
            Wait::Changed => {}
            Wait::Accepted(Ok((stream, _))) => {
                spawner.spawn(serve(shared.clone(), i, stream));
            }
            // Out of file descriptors or similar: back off instead of spinning.
            Wait::Accepted(Err(_)) => {
                Timer::after(Duration::from_millis(50)).await;
            }
        }
    }
}

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Status,
    Command(u32, Action),
    /// `/channel{N}` with N not a channel of this server.
    NoSuchChannel,
    /// `/channel{N}` with a query other than `start` or `stop`.
    BadAction,
    NotFound,
    BadMethod,
}

impl Route {
    pub fn of(req: &Request, channels: u32) -> Route {
        if req.method != "GET" {
            return Route::BadMethod;
        }
        if req.path == "/status" {
            return Route::Status;
        }
        let Some(n) = req.path.strip_prefix("/channel") else {
            return Route::NotFound;
        };
        let ch = match n.bytes().all(|b| b.is_ascii_digit()) {
            true => n.parse::<u32>().ok().filter(|c| (1..=channels).contains(c)),
            false => None,
        };
        let Some(ch) = ch else {
            return Route::NoSuchChannel;
        };
        match req.query.as_deref() {
            Some("start") => Route::Command(ch, Action::Start),
            Some("stop") => Route::Command(ch, Action::Stop),
            _ => Route::BadAction,
        }
    }

    /// What the record notes; `user_agent` names the client of a status
    /// request.
    fn seen(self, user_agent: &str) -> Seen<'_> {
        match self {
            Route::Status => Seen::Status(user_agent),
            Route::Command(ch, a) => Seen::Command(ch, a),
            _ => Seen::Other,
        }
    }
}

/// Serves one connection of server `i` until it closes.
async fn serve(shared: Arc<Shared>, i: usize, stream: Async<TcpStream>) {
    let server = &shared.servers[i];
    let _open = shared.conns.enter();
    let mut conn = Conn::new(stream);
    loop {
        let idle = async {
            Timer::after(shared.config.idle_timeout).await;
            Ok(None)
        };
        let req = match conn.read_request().or(idle).await {
            Ok(Some(r)) => r,
            // Closed by the client, broken, or idle too long.
            Ok(None) | Err(ReadError::Io) => return,
            Err(ReadError::Bad(code, why)) => {
                let _ = conn.respond(&Response::text(code, format!("{why}\n")), false).await;
                return;
            }
        };
        let route = Route::of(&req, shared.config.channels);
        let (in_flight, n) = InFlightGuard::enter(&server.in_flight, &shared.in_flight);
        lock(&server.record).note(route.seen(conn.user_agent()), shared.elapsed(), n);

        let fault = server.fault();
        if fault.is_some_and(|(f, since)| f.is_down(since, Instant::now())) {
            // Down: drop the connection without an answer.
            return;
        }
        let fault = fault.map(|(f, _)| f);
        match fault {
            Some(Fault::Hang) => {
                conn.drain_until_closed().await;
                return;
            }
            Some(Fault::Reset) => {
                reset(conn).await;
                return;
            }
            Some(Fault::Slow(d)) => {
                Timer::after(d).await;
            }
            _ => {}
        }
        let resp = if fault == Some(Fault::Http500) {
            Response::text(500, "internal error\n")
        } else {
            answer(&shared, i, route, fault)
        };
        // Leave before writing: once the answer is out, the client may send
        // its next request at once, and the count must never see both.
        drop(in_flight);
        let keep = req.keep_alive && shared.conns.may_keep();
        if conn.respond(&resp, keep).await.is_err() || !keep {
            return;
        }
    }
}

/// The answer of a healthy (or `Malformed`/`Oversized`/command-faulty)
/// server; carries out commands.
fn answer(shared: &Shared, i: usize, route: Route, fault: Option<Fault>) -> Response {
    let server = &shared.servers[i];
    let now = Instant::now();
    let ok_body = match route {
        Route::BadMethod => return Response::method_not_allowed("GET"),
        Route::NotFound => return Response::text(404, "not found\n"),
        Route::NoSuchChannel => return Response::text(404, "no such channel\n"),
        Route::BadAction => return Response::text(400, "expected ?start or ?stop\n"),
        Route::Command(..) if fault == Some(Fault::RejectCommands) => {
            return Response::text(500, "command rejected\n");
        }
        Route::Status => {
            let stalled_at = server.fault().and_then(|(f, since)| (f == Fault::Stalled).then_some(since));
            lock(&server.model).status_json(now, shared.elapsed(), stalled_at).into_bytes()
        }
        Route::Command(ch, Action::Start) => {
            lock(&server.model).start(ch, now, shared.config.start_delay);
            b"OK".to_vec()
        }
        Route::Command(ch, Action::Stop) => {
            let stopping = (fault != Some(Fault::StuckStopping)).then_some(shared.config.stopping_time);
            lock(&server.model).stop(ch, now, stopping);
            b"OK".to_vec()
        }
    };
    let content_type = if route == Route::Status { "application/json" } else { "text/plain; charset=utf-8" };
    let body = match fault {
        Some(Fault::Malformed) => {
            let status = lock(&server.model).status_json(now, shared.elapsed(), None);
            status.as_bytes()[..status.len() / 2].to_vec()
        }
        Some(Fault::Oversized) => shared.oversized_body().to_vec(),
        _ => ok_body,
    };
    let mut resp = Response::json(200, body);
    if !matches!(fault, Some(Fault::Malformed | Fault::Oversized)) {
        resp.content_type = content_type;
    }
    resp
}

/// Writes the start of a response, then resets the connection.
async fn reset(mut conn: Conn) {
    let partial =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{\"channels\":[{\"sta";
    let _ = conn.write_all(partial).await;
    // Give the partial answer a moment to reach the client before the reset.
    Timer::after(Duration::from_millis(20)).await;
    let _ = socket2::SockRef::from(conn.stream.get_ref()).set_linger(Some(Duration::ZERO));
    drop(conn);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse_head;
    use crate::{SimConfig, SimFleet};
    use std::io::{Read, Write};

    fn route(line: &str) -> Route {
        let head = format!("{line}\r\n\r\n");
        Route::of(&parse_head(&head).unwrap().request, 4)
    }

    #[test]
    fn routes() {
        assert_eq!(route("GET /status HTTP/1.1"), Route::Status);
        assert_eq!(route("GET /status?x=1 HTTP/1.1"), Route::Status);
        assert_eq!(route("GET /channel4?start HTTP/1.1"), Route::Command(4, Action::Start));
        assert_eq!(route("GET /channel1?stop HTTP/1.1"), Route::Command(1, Action::Stop));
        for bad in [
            "/channel0?start",
            "/channel5?start",
            "/channelx?start",
            "/channel?stop",
            "/channel+1?stop",
            "/channel-1?stop",
        ] {
            assert_eq!(route(&format!("GET {bad} HTTP/1.1")), Route::NoSuchChannel, "{bad}");
        }
        assert_eq!(route("GET /channel99999999999999?stop HTTP/1.1"), Route::NoSuchChannel);
        assert_eq!(route("GET /channel1?restart HTTP/1.1"), Route::BadAction);
        assert_eq!(route("GET /channel1 HTTP/1.1"), Route::BadAction);
        assert_eq!(route("GET /nope HTTP/1.1"), Route::NotFound);
        assert_eq!(route("POST /status HTTP/1.1"), Route::BadMethod);
        assert_eq!(route("HEAD /status HTTP/1.1"), Route::BadMethod);
    }

    /// Sends `count` `GET /status` on one keep-alive connection with the
    /// given `User-Agent` line (none when `None`), reading each answer.
    fn poll(addr: SocketAddr, user_agent: Option<&str>, count: usize) {
        let mut stream = TcpStream::connect(addr).unwrap();
        let ua = user_agent.map(|ua| format!("User-Agent: {ua}\r\n")).unwrap_or_default();
        let request = format!("GET /status HTTP/1.1\r\nHost: sim\r\n{ua}Accept: */*\r\n\r\n");
        let mut buf = vec![0u8; 64 * 1024];
        for _ in 0..count {
            stream.write_all(request.as_bytes()).unwrap();
            let mut got = Vec::new();
            // Head, then exactly Content-Length bytes of body.
            loop {
                let n = stream.read(&mut buf).unwrap();
                assert!(n > 0, "closed early");
                got.extend_from_slice(&buf[..n]);
                let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                let head = std::str::from_utf8(&got[..end]).unwrap();
                assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
                let len: usize =
                    head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).and_then(|v| v.parse().ok()).unwrap();
                if got.len() >= end + 4 + len {
                    break;
                }
            }
        }
    }

    #[test]
    fn status_polls_are_recorded_by_user_agent() {
        let fleet = SimFleet::start(SimConfig::new(2)).unwrap();
        let servers = fleet.servers();
        let (one, two) = (&servers[0], &servers[1]);
        let addr = |s: &ipvtl_core::ServerConfig| SocketAddr::new(s.host.parse().unwrap(), s.port);
        poll(addr(one), Some("dash-a/1"), 3);
        poll(addr(one), Some("dash-b/1"), 2);
        poll(addr(one), None, 1);
        poll(addr(two), Some("dash-b/1"), 1);
        // Another connection of a known client adds to its count.
        poll(addr(one), Some("dash-a/1"), 1);

        let rec = fleet.record(one.id.as_str()).unwrap();
        let counts: Vec<(&str, u64)> = rec.status_by_client.iter().map(|(k, n)| (k.as_str(), *n)).collect();
        assert_eq!(counts, [("-", 1), ("dash-a/1", 4), ("dash-b/1", 2)]);
        let times: Vec<(&str, usize)> = rec.status_times_by_client.iter().map(|(k, t)| (k.as_str(), t.len())).collect();
        assert_eq!(times, [("-", 1), ("dash-a/1", 4), ("dash-b/1", 2)]);
        let a = &rec.status_times_by_client["dash-a/1"];
        assert!(a.windows(2).all(|w| w[0] <= w[1]));
        assert!(a[3] >= rec.status_times_by_client["dash-b/1"][1], "the later connection's poll is last");
        let rec2 = fleet.record(two.id.as_str()).unwrap();
        assert_eq!(rec2.status_by_client.into_iter().collect::<Vec<_>>(), [("dash-b/1".to_string(), 1)]);

        fleet.reset_records();
        let rec = fleet.record(one.id.as_str()).unwrap();
        assert!(rec.status_by_client.is_empty() && rec.status_times_by_client.is_empty());
    }
}
