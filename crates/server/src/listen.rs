//! Serving the app over HTTP/1.1: the accept loop, hyper's per-connection settings, and the
//! graceful end.
//!
//! axum's `serve` leaves hyper's connection settings at their defaults, and two of them matter
//! for a server on the open internet whose clients hold thousands of long-polling requests:
//!
//! - **A header read timeout.** Without one, a client can open connections and trickle header
//!   bytes forever, holding a socket and a task each.
//! - **An 8 KiB read buffer.** hyper's buffer starts at 8 KiB but doubles whenever a read finds
//!   it part-full, and stays doubled for the connection's life: 16 KiB on most of our
//!   connections, the largest single cost of a waiting sync. Capping it also caps a request's
//!   head (request line and headers) at 8 KiB, which MCP and OAuth requests stay far below;
//!   bodies stream through the buffer and are capped separately.

use std::io;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Largest request head (request line and headers) accepted, in bytes; hyper's minimum.
pub const MAX_REQUEST_HEAD_BYTES: usize = 8 * 1024;

/// Serves `app` on `listener` until `shutdown` is cancelled, then stops accepting and waits for
/// the open connections to finish their requests (and for idle ones to close). A client that
/// starts a request has `header_read_timeout` to send its head.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_read_timeout: Duration,
    shutdown: CancellationToken,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_buf_size(MAX_REQUEST_HEAD_BYTES);
    let connections = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
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
        let service = app
            .clone()
            .map_request(|request: hyper::Request<hyper::body::Incoming>| request.map(Body::new));
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.shutdown().await;
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
