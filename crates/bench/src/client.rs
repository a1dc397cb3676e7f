//! One virtual client: a keep-alive HTTP/1.1 connection (hyper over a tokio `TcpStream`) that
//! sends MCP JSON-RPC requests as one bearer-token principal, plus opening many of them with
//! bounded parallelism.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::rpc::{self, ResponseError};

/// Limit for an ordinary request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the server is: the socket to connect to and the `Host` header to send.
#[derive(Debug)]
pub struct Target {
    pub addr: SocketAddr,
    host: HeaderValue,
}

impl Target {
    /// A server on a known socket address.
    pub fn at(addr: SocketAddr) -> Result<Self, String> {
        let host = HeaderValue::from_str(&addr.to_string()).map_err(|error| error.to_string())?;
        Ok(Self { addr, host })
    }

    /// A server named by an `http://host:port` URL.
    pub async fn resolve(url: &str) -> Result<Self, String> {
        let (authority, host, port) = split_http_url(url)?;
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|error| format!("cannot resolve {host}: {error}"))?
            .next()
            .ok_or_else(|| format!("{host} has no address"))?;
        let host = HeaderValue::from_str(&authority).map_err(|error| error.to_string())?;
        Ok(Self { addr, host })
    }
}

/// `http://host:port/…` → (`host:port` for the Host header, host to resolve, port).
pub fn split_http_url(url: &str) -> Result<(String, String, u16), String> {
    let uri: Uri = url
        .parse()
        .map_err(|error| format!("{url:?} is not a URL: {error}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "{url:?}: only plain http:// URLs are supported (the bench measures the server, not TLS)"
        ));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("{url:?} has no host"))?;
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = authority.port_u16().unwrap_or(80);
    Ok((authority.as_str().to_owned(), host, port))
}

/// Why a request did not yield a result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("connect failed: {0}")]
    Connect(String),
    #[error("HTTP exchange failed: {0}")]
    Http(#[from] hyper::Error),
    #[error("HTTP {status}: {body}")]
    Status { status: StatusCode, body: String },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Response(#[from] ResponseError),
}

/// One client: a principal (bearer token) and its own TCP connection, reopened if it breaks.
pub struct Conn {
    target: Arc<Target>,
    authorization: HeaderValue,
    /// `None` after a failed exchange: the next request connects again.
    sender: Option<SendRequest<Full<Bytes>>>,
    next_id: u64,
}

async fn handshake(target: &Target) -> Result<SendRequest<Full<Bytes>>, CallError> {
    let stream = TcpStream::connect(target.addr)
        .await
        .map_err(|error| CallError::Connect(format!("{}: {error}", target.addr)))?;
    stream
        .set_nodelay(true)
        .map_err(|error| CallError::Connect(error.to_string()))?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the server closes; either is reported to the sender.
        let _ = connection.await;
    });
    Ok(sender)
}

impl Conn {
    /// Connects as the principal named by `token`.
    pub async fn open(target: Arc<Target>, token: &str) -> Result<Self, CallError> {
        let authorization = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            CallError::Connect(format!("the token {token:?} is not a header value"))
        })?;
        let sender = handshake(&target).await?;
        Ok(Self {
            target,
            authorization,
            sender: Some(sender),
            next_id: 1,
        })
    }

    /// `GET /healthz`, no MCP.
    pub async fn healthz(&mut self) -> Result<(), CallError> {
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.uri_mut() = Uri::from_static("/healthz");
        request.headers_mut().insert(HOST, self.target.host.clone());
        self.exchange(request, REQUEST_TIMEOUT, None).await?;
        Ok(())
    }

    /// A JSON-RPC call; returns its `result`. `sent` is counted up once the request is handed to
    /// the connection, before the answer is awaited.
    pub async fn rpc(
        &mut self,
        method: &str,
        params: Value,
        limit: Duration,
        sent: Option<&AtomicUsize>,
    ) -> Result<Value, CallError> {
        let (id, body) = self.rpc_body(method, params, limit, sent).await?;
        Ok(rpc::parse_response(&body, id)?)
    }

    /// A JSON-RPC call whose answer the caller reads: returns the request id and the body.
    pub async fn rpc_body(
        &mut self,
        method: &str,
        params: Value,
        limit: Duration,
        sent: Option<&AtomicUsize>,
    ) -> Result<(u64, Bytes), CallError> {
        let id = self.take_id();
        let request = self.mcp_post(rpc::request_body(id, method, params));
        Ok((id, self.exchange(request, limit, sent).await?))
    }

    /// A `tools/call`; returns the tool's `structuredContent`, or its error as an error.
    pub async fn tool(&mut self, name: &str, arguments: Value) -> Result<Value, CallError> {
        self.tool_with(name, arguments, REQUEST_TIMEOUT, None).await
    }

    /// [`Conn::tool`] with a time limit and a sent counter (see [`Conn::rpc`]).
    pub async fn tool_with(
        &mut self,
        name: &str,
        arguments: Value,
        limit: Duration,
        sent: Option<&AtomicUsize>,
    ) -> Result<Value, CallError> {
        let id = self.take_id();
        let request = self.mcp_post(rpc::tool_call_body(id, name, arguments));
        let body = self.exchange(request, limit, sent).await?;
        Ok(rpc::tool_output(rpc::parse_response(&body, id)?)?)
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn mcp_post(&self, body: Vec<u8>) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = Uri::from_static("/mcp");
        let headers = request.headers_mut();
        headers.insert(HOST, self.target.host.clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        headers.insert(AUTHORIZATION, self.authorization.clone());
        headers.insert(
            HeaderName::from_static("mcp-protocol-version"),
            HeaderValue::from_static(rpc::PROTOCOL_VERSION),
        );
        request
    }

    /// Sends one request and reads the whole answer; anything but a 2xx is an error.
    async fn exchange(
        &mut self,
        request: Request<Full<Bytes>>,
        limit: Duration,
        sent: Option<&AtomicUsize>,
    ) -> Result<Bytes, CallError> {
        let (status, body) = tokio::time::timeout(limit, self.exchange_once(request, sent))
            .await
            .map_err(|_| CallError::Timeout(limit))??;
        if !status.is_success() {
            return Err(CallError::Status {
                status,
                body: rpc::snippet(&String::from_utf8_lossy(&body)),
            });
        }
        Ok(body)
    }

    /// The connection is taken out for the exchange and put back only when it completes, so
    /// a failed or abandoned exchange leaves no half-used connection behind.
    async fn exchange_once(
        &mut self,
        request: Request<Full<Bytes>>,
        sent: Option<&AtomicUsize>,
    ) -> Result<(StatusCode, Bytes), CallError> {
        let mut sender = match self.sender.take() {
            Some(sender) if !sender.is_closed() => sender,
            _ => handshake(&self.target).await?,
        };
        sender.ready().await?;
        let response = sender.send_request(request);
        if let Some(sent) = sent {
            sent.fetch_add(1, Ordering::Relaxed);
        }
        let response = response.await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        self.sender = Some(sender);
        Ok((status, body))
    }
}

/// The outcome of opening many connections.
pub struct Opened {
    /// In the order of their index; failed ones are missing.
    pub conns: Vec<Conn>,
    pub failures: usize,
    pub first_error: Option<String>,
    pub elapsed: Duration,
}

/// Opens `count` connections, client `i` with token `token(i)`, at most `parallel` at once
/// between connecting and a first answer (`GET /healthz`), so the server's accept queue does not
/// overflow. With a `label`, prints progress.
pub async fn open_many(
    target: &Arc<Target>,
    count: usize,
    parallel: usize,
    token: impl Fn(usize) -> String,
    label: Option<&str>,
) -> Opened {
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(parallel.max(1)));
    let mut tasks = JoinSet::new();
    for index in 0..count {
        let (gate, target, token) = (gate.clone(), target.clone(), token(index));
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            // A connection counts once the server has answered on it: a completed TCP handshake
            // only means it waits in the accept queue, and letting that queue fill up makes
            // the kernel drop SYNs (retried after a second).
            let opened = match Conn::open(target, &token).await {
                Ok(mut conn) => conn.healthz().await.map(|()| conn),
                Err(error) => Err(error),
            };
            (index, opened)
        });
    }
    let mut slots: Vec<Option<Conn>> = (0..count).map(|_| None).collect();
    let (mut done, mut failures, mut first_error) = (0, 0, None);
    let step = (count / 5).max(1);
    while let Some(joined) = tasks.join_next().await {
        done += 1;
        match joined {
            Ok((index, Ok(conn))) => slots[index] = Some(conn),
            Ok((_, Err(error))) => {
                failures += 1;
                first_error.get_or_insert_with(|| error.to_string());
            }
            Err(error) => {
                failures += 1;
                first_error.get_or_insert_with(|| error.to_string());
            }
        }
        if let Some(label) = label
            && (done % step == 0 || done == count)
        {
            println!(
                "  {label}: {done}/{count} connected ({failures} failed), {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    Opened {
        conns: slots.into_iter().flatten().collect(),
        failures,
        first_error,
        elapsed: started.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_split_into_host_header_and_address() {
        assert_eq!(
            split_http_url("http://127.0.0.1:8100").expect("valid"),
            ("127.0.0.1:8100".into(), "127.0.0.1".into(), 8100)
        );
        assert_eq!(
            split_http_url("http://localhost:8100/mcp").expect("valid"),
            ("localhost:8100".into(), "localhost".into(), 8100)
        );
        assert_eq!(
            split_http_url("http://[::1]:9000/").expect("valid"),
            ("[::1]:9000".into(), "::1".into(), 9000)
        );
        assert_eq!(
            split_http_url("http://example.com").expect("valid"),
            ("example.com".into(), "example.com".into(), 80)
        );
        assert!(split_http_url("https://example.com").is_err());
        assert!(split_http_url("127.0.0.1:8100").is_err());
        assert!(split_http_url("not a url").is_err());
    }
}
