//! Serving the app on a smol listener: hyper's HTTP/1.1 connection driven
//! through smol-hyper's I/O and timer adapters, one task per connection.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use smol::{Async, Executor};
use smol_hyper::rt::{FuturesIo, SmolTimer};
use tower::ServiceExt;

/// The peer address of a request's connection (a request extension).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// Time a client gets to send its request headers, counted from the
/// accept (a client that never sends a byte) or from the end of the last
/// answer on a kept-alive connection; then the connection is closed, so a
/// slow or idle client holds a task and a descriptor this long at most
/// (`tests/hostile.rs` checks all three).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections on `listener` forever and serves `app` on each, as
/// tasks of `executor`.
pub async fn serve(executor: Arc<Executor<'static>>, listener: Async<TcpListener>, app: Router) -> io::Result<()> {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors or similar: wait instead of spinning.
                eprintln!("ipvtl-dashboard: accept failed: {e}");
                smol::Timer::after(Duration::from_millis(100)).await;
                continue;
            }
        };
        let app = app.clone();
        executor
            .spawn(async move {
                let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                    req.extensions_mut().insert(Peer(peer));
                    app.clone().oneshot(req.map(Body::new))
                });
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder.timer(SmolTimer::new()).header_read_timeout(HEADER_TIMEOUT).keep_alive(true);
                // A client that goes away mid-answer is not an error worth a line.
                let _ = builder.serve_connection(FuturesIo::new(stream), service).await;
            })
            .detach();
    }
}
