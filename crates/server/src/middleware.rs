//! Request middleware: the framing, Host and Origin checks that stop request smuggling, DNS
//! rebinding and cross-site use; the body cap; the authentication that attaches a
//! `service::Caller` to every `/mcp` and `/api` request; and the answer to a handler that
//! panicked.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use auth::{AuthError, Authenticator, Scope};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use domain::ErrorCode;
use service::{Access, Caller};

use crate::api::{ApiError, status_of};
use crate::framing::Framing;
use crate::wire::ErrorBody;

/// Which Host and Origin headers are accepted.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    /// Host names (without port) that may appear in `Host`. Empty: any.
    pub hosts: Vec<String>,
    /// Origins (`scheme://host[:port]`) that may appear in `Origin`; a port of `*` matches any.
    /// Empty: any. Requests without an `Origin` header (non-browser clients) always pass.
    pub origins: Vec<String>,
}

impl HostPolicy {
    fn host_allowed(&self, host: &str) -> bool {
        if self.hosts.is_empty() {
            return true;
        }
        let name = host_name(host);
        self.hosts
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(name))
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        self.origins.is_empty()
            || self
                .origins
                .iter()
                .any(|allowed| origin_matches(allowed, origin))
    }
}

/// `example.com:8100` → `example.com`; `[::1]:8100` → `::1`. A Host that is neither, such as
/// `[localhost` (found by fuzzing: it passed as `localhost`, then rmcp refused it with a bare
/// 400), is returned whole, so it matches no allowed name.
fn host_name(host: &str) -> &str {
    // Not empty: `::1:` would otherwise pass as the unbracketed `::1` (also found by fuzzing).
    let is_port = |port: &str| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((name, "")) => name,
            Some((name, port)) if port.strip_prefix(':').is_some_and(is_port) => name,
            _ => host,
        };
    }
    host.rsplit_once(':')
        .map_or(host, |(name, port)| if is_port(port) { name } else { host })
}

fn origin_matches(allowed: &str, origin: &str) -> bool {
    match allowed.strip_suffix(":*") {
        Some(prefix) => {
            origin.eq_ignore_ascii_case(prefix)
                || origin
                    .get(..prefix.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
                    && origin[prefix.len()..]
                        .strip_prefix(':')
                        .is_some_and(|port| {
                            !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
                        })
        }
        None => allowed.eq_ignore_ascii_case(origin),
    }
}

/// Refuses requests with two Host headers (400) and those whose Host or Origin is not ours
/// (403).
pub async fn check_host_and_origin(
    State(policy): State<Arc<HostPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    // hyper keeps every Host line and `get` reads the first: a proxy that read the last would
    // have checked a different name than the one we answer to.
    if request
        .headers()
        .get_all(header::HOST)
        .iter()
        .nth(1)
        .is_some()
    {
        tracing::warn!("refused a request with two Host headers");
        return refusal(
            path,
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidArgument.as_str(),
            "the request has more than one Host header".to_owned(),
            "Send exactly one Host header.",
        );
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| {
            request
                .uri()
                .authority()
                .map(|authority| authority.as_str())
        });
    if !host.is_some_and(|host| policy.host_allowed(host)) {
        tracing::warn!(host = host.unwrap_or("<none>"), "refused Host header");
        return refusal(
            path,
            StatusCode::FORBIDDEN,
            "FORBIDDEN_HOST",
            "this server does not answer to that Host name".to_owned(),
            "Connect through the server's public URL, or add the host with --allowed-hosts.",
        );
    }
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let allowed = origin
            .to_str()
            .is_ok_and(|origin| policy.origin_allowed(origin));
        if !allowed {
            tracing::warn!(origin = ?origin, "refused Origin header");
            return refusal(
                path,
                StatusCode::FORBIDDEN,
                "FORBIDDEN_ORIGIN",
                "requests from this Origin are not allowed".to_owned(),
                "Add the origin with --allowed-origins.",
            );
        }
    }
    next.run(request).await
}

/// A refusal made before any handler runs, in the shape of the surface asked: on `/mcp` a
/// JSON-RPC error object (its `id` is null, the body was never parsed; `data` carries our
/// code and hint), so MCP clients show the message instead of a bare status; elsewhere the
/// REST `{"error": {code, message, hint}}`.
///
/// Host, Origin and framing refusals happen outside any tool, so the Host and Origin codes
/// (`FORBIDDEN_HOST`, `FORBIDDEN_ORIGIN`) live here rather than in the domain's list.
fn refusal(path: &str, status: StatusCode, code: &str, message: String, hint: &str) -> Response {
    let body = if path == "/mcp" {
        serde_json::json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": {
                "code": JSONRPC_INVALID_REQUEST,
                "message": message,
                "data": {"code": code, "hint": hint},
            },
        })
    } else {
        serde_json::json!({"error": {"code": code, "message": message, "hint": hint}})
    };
    (status, axum::Json(body)).into_response()
}

/// JSON-RPC 2.0's "Invalid Request": the request as sent is not one we will read.
const JSONRPC_INVALID_REQUEST: i64 = -32600;

/// As [`refusal`], for a request whose connection cannot carry another one.
fn refusal_closing(
    path: &str,
    status: StatusCode,
    code: ErrorCode,
    message: String,
    hint: &str,
) -> Response {
    let mut response = refusal(path, status, code.as_str(), message, hint);
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Refuses a request framed ambiguously on the wire (see [`crate::framing`]), then reads the
/// whole request body, up to [`crate::MAX_REQUEST_BYTES`] and within `timeout`, before
/// anything else runs.
///
/// Every endpoint needs the whole body anyway. Doing it here gives oversized bodies one answer
/// (413, `LIMIT_EXCEEDED`) whether or not they declare a length, lets a refused request leave
/// its connection clean for the next one, and cuts off a client that sends its body a byte at
/// a time (408: hyper's own timeout covers only the head). On `/mcp` these refusals are
/// JSON-RPC errors ([`refusal`]).
pub async fn buffer_body(
    State(timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    // Absent when the app is served by something other than `listen::serve` (tests).
    let framing = request
        .extensions()
        .get::<Framing>()
        .copied()
        .unwrap_or(Framing::Sound);
    if let Some(reason) = framing.refusal() {
        tracing::warn!(?framing, "refused an ambiguously framed request");
        return refusal_closing(
            request.uri().path(),
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidArgument,
            reason.to_owned(),
            "Frame the body with exactly one Content-Length (RFC 9112 section 6.3).",
        );
    }
    let mut response = read_body_then(timeout, request, next).await;
    if framing.closes_connection() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn read_body_then(timeout: Duration, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(
        timeout,
        axum::body::to_bytes(body, crate::MAX_REQUEST_BYTES),
    );
    let Ok(read) = read.await else {
        tracing::debug!(path = %parts.uri.path(), "request body not received in time");
        // The rest of the body may still come; the connection cannot carry another request.
        return refusal_closing(
            parts.uri.path(),
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::InvalidArgument,
            format!(
                "the request body did not arrive within {} s",
                timeout.as_secs()
            ),
            "Send the body right after the headers.",
        );
    };
    match read {
        Ok(bytes) => {
            let mut request = Request::from_parts(parts, axum::body::Body::from(bytes.clone()));
            request.extensions_mut().insert(BufferedBody(bytes));
            next.run(request).await
        }
        Err(error) => {
            let too_large = std::error::Error::source(&error)
                .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            if too_large {
                refusal(
                    parts.uri.path(),
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::LimitExceeded.as_str(),
                    format!(
                        "the request body exceeds the cap of {} bytes",
                        crate::MAX_REQUEST_BYTES
                    ),
                    "Send a smaller request; messages are capped far below this.",
                )
            } else {
                refusal(
                    parts.uri.path(),
                    status_of(ErrorCode::InvalidArgument),
                    ErrorCode::InvalidArgument.as_str(),
                    "the request body could not be read".to_owned(),
                    "Send the complete body.",
                )
            }
        }
    }
}

/// Resolves the bearer token to a caller and attaches it to the request, or answers 401 (no
/// valid token) or 503 (the token could not be checked).
///
/// Whether the caller may do what it asks is not decided here: the service decides it on the
/// decoded call (`service::Caller`). A refusal for scope comes back through a
/// [`ScopeChallenge`] (MCP: the answer is a tool result) or a response marked [`ScopeRefused`]
/// (REST), and is turned here into the 403 with `error="insufficient_scope"` that lets an OAuth
/// client ask for more (RFC 6750 §3.1).
pub async fn authenticate(
    State(authenticator): State<Authenticator>,
    mut request: Request,
    next: Next,
) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    match authenticator.authenticate(authorization).await {
        Ok(caller) => {
            let access = if caller.scopes.contains(Scope::Write) {
                Access::Write
            } else {
                Access::Read
            };
            let challenge = ScopeChallenge::default();
            request
                .extensions_mut()
                .insert(Caller::new(caller.principal, access));
            request.extensions_mut().insert(challenge.clone());
            let path = request.uri().path().to_owned();
            let response = next.run(request).await;
            if challenge.raised() || response.extensions().get::<ScopeRefused>().is_some() {
                return insufficient_scope(&authenticator, &path);
            }
            response
        }
        Err(AuthError::Unavailable(cause)) => {
            tracing::error!(%cause, "token check failed");
            ApiError::new(
                ErrorCode::Internal,
                "the token could not be checked right now",
                "Retry in a moment.",
            )
            .with_status(StatusCode::SERVICE_UNAVAILABLE)
            .into_response()
        }
        Err(error) => {
            let mut response = ApiError::new(
                ErrorCode::Unauthenticated,
                error.to_string(),
                match authenticator {
                    Authenticator::Dev => "Send Authorization: Bearer <token>.",
                    Authenticator::OAuth(_) => {
                        "Sign in through OAuth (your MCP client does this when you connect), \
                         or send a token from `mcp-multiplayer token create`."
                    }
                },
            )
            .into_response();
            if let Ok(challenge) = HeaderValue::from_str(&challenge(&authenticator, &error)) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, challenge);
            }
            response
        }
    }
}

/// Raised by an MCP tool whose call the service refused for scope, so that [`authenticate`]
/// answers the HTTP request with the scope challenge.
#[derive(Clone, Default)]
pub struct ScopeChallenge(Arc<AtomicBool>);

impl ScopeChallenge {
    pub fn raise(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn raised(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Marks a REST response that refused the caller for scope; see [`authenticate`].
#[derive(Clone, Copy)]
pub struct ScopeRefused;

/// The `WWW-Authenticate` value of a 401: where to find out how to get a token (RFC 9728 §5.1).
fn challenge(authenticator: &Authenticator, error: &AuthError) -> String {
    let mut challenge = match authenticator {
        Authenticator::Dev => r#"Bearer realm="mcp-multiplayer""#.to_owned(),
        Authenticator::OAuth(server) => format!(
            r#"Bearer resource_metadata="{}", scope="{}""#,
            server.resource_metadata_url(),
            auth::Scopes::all()
        ),
    };
    if *error == AuthError::Invalid {
        challenge.push_str(r#", error="invalid_token""#);
    }
    challenge
}

fn insufficient_scope(authenticator: &Authenticator, path: &str) -> Response {
    let refused = service::ServiceError::InsufficientScope;
    let mut response = refusal(
        path,
        StatusCode::FORBIDDEN,
        refused.code().as_str(),
        refused.to_string(),
        &refused.hint(),
    );
    let metadata = authenticator
        .oauth()
        .map(|server| {
            format!(
                r#", resource_metadata="{}""#,
                server.resource_metadata_url()
            )
        })
        .unwrap_or_default();
    let value = format!(
        r#"Bearer error="insufficient_scope", scope="{}"{metadata}, error_description="this request needs the mcp:write scope""#,
        auth::Scopes::all()
    );
    if let Ok(value) = HeaderValue::from_str(&value) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// The request body as read by [`buffer_body`], for middleware that must look into it.
#[derive(Clone)]
pub struct BufferedBody(pub axum::body::Bytes);

/// The answer to a request whose handler panicked: a 500 with the usual error body, instead of
/// a connection dropped without a word. The panic itself is logged here and by the panic hook.
pub fn answer_panic(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!(
        panic = panic_message(panic.as_ref()),
        "a request handler panicked"
    );
    let ErrorBody {
        code: _,
        message,
        hint,
    } = ErrorBody::server_fault();
    ApiError::new(ErrorCode::Internal, message, hint).into_response()
}

/// What a panic said, when it said it in text.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not text)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_by_name_whatever_the_port() {
        let policy = HostPolicy {
            hosts: vec![
                "localhost".into(),
                "127.0.0.1".into(),
                "::1".into(),
                "mcp.example.com".into(),
            ],
            origins: vec![],
        };
        for ok in ["localhost:8100", "127.0.0.1", "[::1]:80", "MCP.example.com"] {
            assert!(policy.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.com",
            "localhost.evil.com:8100",
            "127.0.0.2:8100",
            "[localhost",
            "[::1]x",
            "[::1]:80x",
            "::1:",
        ] {
            assert!(!policy.host_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn origins_match_exactly_or_by_port_wildcard() {
        let policy = HostPolicy {
            hosts: vec![],
            origins: vec![
                "http://localhost:*".into(),
                "https://mcp.example.com".into(),
            ],
        };
        for ok in [
            "http://localhost",
            "http://localhost:3000",
            "https://mcp.example.com",
        ] {
            assert!(policy.origin_allowed(ok), "{ok}");
        }
        for bad in [
            "http://localhost.evil.com",
            "http://localhost:3000x",
            "https://mcp.example.com:8443",
            "null",
        ] {
            assert!(!policy.origin_allowed(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_panicking_handler_is_answered_with_a_500_and_the_error_body() {
        use tower::ServiceExt;
        async fn boom() -> &'static str {
            panic!("a bug in a handler")
        }
        let app = axum::Router::new()
            .route("/boom", axum::routing::get(boom))
            .layer(tower_http::catch_panic::CatchPanicLayer::custom(
                answer_panic,
            ));
        let request = Request::builder()
            .uri("/boom")
            .body(axum::body::Body::empty())
            .expect("request");
        let response = app.oneshot(request).await.expect("answered");
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .expect("body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(body["error"]["code"], "INTERNAL");
        assert!(
            body["error"]["hint"]
                .as_str()
                .is_some_and(|hint| !hint.is_empty())
        );
    }
}
