//! Serving the app over HTTP/1.1: the accept loop, hyper's per-connection settings, and the
//! graceful end.
//!
//! axum's `serve` leaves hyper's connection settings at their defaults, and two of them matter
//! for a server on the open internet whose clients hold thousands of long-polling requests:
//!
//! - **A header read timeout.** Without one, a client can open connections and trickle header
//!   bytes forever, holding a socket and a task each. hyper runs this timer whenever it waits
//!   for a request head, so it also closes a keep-alive connection left idle as long (MCP
//!   clients drop idle pooled connections after a few seconds). The body has its own timeout,
//!   in `middleware::buffer_body`.
//! - **An 8 KiB read buffer.** hyper's buffer starts at 8 KiB, and on most of our connections
//!   it grew to 16 KiB and stayed so for the connection's life, the largest single cost of a
//!   waiting sync. Capping it also caps a request's head (request line and headers) at 8 KiB,
//!   which MCP and OAuth requests stay far below; bodies stream through the buffer and are
//!   capped separately.
//!
//! Each connection's bytes pass through `framing::Inspected` on their way to hyper, which
//! tells the application how each request was framed; `middleware::buffer_body` refuses
//! repeated `Content-Length` and `Content-Length` with `Transfer-Encoding` (400, then close).
//!
//! At shutdown, idle connections close at once and busy ones after their answer; one that is
//! half-way through sending a head waits out its header timeout, so a timeout longer than the
//! shutdown grace period makes such a client delay the exit until the grace runs out.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::framing::{Inspected, Verdicts};

/// Largest request head (request line and headers) accepted, in bytes; hyper's minimum.
pub const MAX_REQUEST_HEAD_BYTES: usize = 8 * 1024;

/// How connections are served.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionSettings {
    /// Time a client has to send a request's head, counted from when the connection opened or
    /// last went idle.
    pub header_read_timeout: Duration,
    /// Connections served at once. Past it, new ones wait in the kernel's accept queue until
    /// one closes, so a flood of idle sockets cannot take all memory or file descriptors.
    pub max_connections: usize,
}

/// Serves `app` on `listeners` (one per address a host name resolved to) until `shutdown` is
/// cancelled, then stops accepting and waits for the open connections to finish their requests
/// (and for idle ones to close).
pub async fn serve(
    listeners: Vec<TcpListener>,
    app: Router,
    settings: ConnectionSettings,
    shutdown: CancellationToken,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_buf_size(MAX_REQUEST_HEAD_BYTES);
    let connections = GracefulShutdown::new();
    let capacity = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let mut last_warning = None;
    loop {
        let seat = match capacity.clone().try_acquire_owned() {
            Ok(seat) => seat,
            Err(_) => {
                // Once a minute at most: a flood would otherwise log a line per connection.
                if last_warning.is_none_or(|at: Instant| at.elapsed() >= Duration::from_secs(60)) {
                    last_warning = Some(Instant::now());
                    tracing::warn!(
                        max_connections = settings.max_connections,
                        "connection limit reached; new connections wait until one closes"
                    );
                }
                tokio::select! {
                    seat = capacity.clone().acquire_owned() => match seat {
                        Ok(seat) => seat,
                        Err(_) => break,
                    },
                    () = shutdown.cancelled() => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = accept_any(&listeners) => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    pause_after_accept_error(&error).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        // Answers are small and latency matters more than packet count.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, %error, "could not set TCP_NODELAY");
        }
        // The peer address travels with each request, as axum's `ConnectInfo`, and so does
        // how the request was framed on the wire (see `framing`).
        let verdicts = Verdicts::default();
        let stream = Inspected::new(stream, verdicts.clone());
        let service =
            app.clone()
                .map_request(move |request: hyper::Request<hyper::body::Incoming>| {
                    let mut request = request.map(Body::new);
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request.extensions_mut().insert(verdicts.next());
                    request
                });
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(seat);
        });
    }
    drop(listeners);
    connections.shutdown().await;
}

/// The next connection on whichever listener has one first.
async fn accept_any(listeners: &[TcpListener]) -> io::Result<(TcpStream, SocketAddr)> {
    std::future::poll_fn(|cx| {
        listeners
            .iter()
            .find_map(|listener| match listener.poll_accept(cx) {
                Poll::Ready(accepted) => Some(Poll::Ready(accepted)),
                Poll::Pending => None,
            })
            .unwrap_or(Poll::Pending)
    })
    .await
}

/// Errors that concern one connection (the client gave up before we accepted it) are skipped.
/// Others, such as running out of file descriptors, would fail again at once: wait a moment.
async fn pause_after_accept_error(error: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "could not accept a connection; retrying in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
