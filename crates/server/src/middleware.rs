//! Request middleware: the Host and Origin checks that stop DNS rebinding and cross-site use,
//! and the authentication that attaches a `service::Caller` to every `/mcp` and `/api` request.

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

use crate::api::ApiError;

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

/// `example.com:8100` → `example.com`; `[::1]:8100` → `::1`.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            name
        } else {
            host
        }
    })
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

/// Refuses requests whose Host or Origin is not ours (403).
pub async fn check_host_and_origin(
    State(policy): State<Arc<HostPolicy>>,
    request: Request,
    next: Next,
) -> Response {
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
        return forbidden(
            "FORBIDDEN_HOST",
            "this server does not answer to that Host name",
            "Connect through the server's public URL, or add the host with --allowed-hosts.",
        );
    }
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let allowed = origin
            .to_str()
            .is_ok_and(|origin| policy.origin_allowed(origin));
        if !allowed {
            tracing::warn!(origin = ?origin, "refused Origin header");
            return forbidden(
                "FORBIDDEN_ORIGIN",
                "requests from this Origin are not allowed",
                "Add the origin with --allowed-origins.",
            );
        }
    }
    next.run(request).await
}

/// Host and Origin refusals happen before authentication, outside any tool, so their codes live
/// here rather than in the domain's list.
fn forbidden(code: &str, message: &str, hint: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message, "hint": hint}});
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}

/// Reads the whole request body, up to [`crate::MAX_REQUEST_BYTES`] and within `timeout`,
/// before anything else runs.
///
/// Every endpoint needs the whole body anyway. Doing it here gives oversized bodies one answer
/// (413, `LIMIT_EXCEEDED`) whether or not they declare a length, lets a refused request leave
/// its connection clean for the next one, and cuts off a client that sends its body a byte at
/// a time (408: hyper's own timeout covers only the head).
pub async fn buffer_body(
    State(timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(
        timeout,
        axum::body::to_bytes(body, crate::MAX_REQUEST_BYTES),
    );
    let Ok(read) = read.await else {
        tracing::debug!(path = %parts.uri.path(), "request body not received in time");
        let mut response = ApiError::new(
            ErrorCode::InvalidArgument,
            format!(
                "the request body did not arrive within {} s",
                timeout.as_secs()
            ),
            "Send the body right after the headers.",
        )
        .with_status(StatusCode::REQUEST_TIMEOUT)
        .into_response();
        // The rest of the body may still come; the connection cannot carry another request.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
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
                ApiError::new(
                    ErrorCode::LimitExceeded,
                    format!(
                        "the request body exceeds {} bytes",
                        crate::MAX_REQUEST_BYTES
                    ),
                    "Send a smaller request; messages are capped far below this.",
                )
                .with_status(StatusCode::PAYLOAD_TOO_LARGE)
                .into_response()
            } else {
                ApiError::new(
                    ErrorCode::InvalidArgument,
                    "the request body could not be read",
                    "Send the complete body.",
                )
                .into_response()
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
            let response = next.run(request).await;
            if challenge.raised() || response.extensions().get::<ScopeRefused>().is_some() {
                return insufficient_scope(&authenticator);
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

fn insufficient_scope(authenticator: &Authenticator) -> Response {
    let mut response = ApiError::new(
        ErrorCode::InsufficientScope,
        "this token may only read",
        "Authorize again and grant the mcp:write scope, or use a token created with it.",
    )
    .with_status(StatusCode::FORBIDDEN)
    .into_response();
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
        for bad in ["evil.com", "localhost.evil.com:8100", "127.0.0.2:8100"] {
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
}
