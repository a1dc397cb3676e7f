//! Request middleware: the Host and Origin checks that stop DNS rebinding and cross-site use,
//! and the authentication that attaches a [`Principal`] to every `/mcp` and `/api` request.

use std::sync::Arc;

use auth::{AuthError, Authenticator};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use domain::ErrorCode;

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

/// Reads the whole request body, up to [`crate::MAX_REQUEST_BYTES`], before anything else runs.
///
/// Every endpoint needs the whole body anyway. Doing it here gives oversized bodies one answer
/// (413, `LIMIT_EXCEEDED`) whether or not they declare a length, and lets a refused request
/// leave its connection clean for the next one.
pub async fn buffer_body(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, crate::MAX_REQUEST_BYTES).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
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

/// Resolves the bearer token to a principal and attaches it to the request, or answers 401.
pub async fn authenticate(
    State(authenticator): State<Authenticator>,
    mut request: Request,
    next: Next,
) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    match authenticator.authenticate(authorization) {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(error) => {
            let challenge = match error {
                AuthError::Missing => r#"Bearer realm="mcp-multiplayer""#,
                AuthError::Invalid => r#"Bearer realm="mcp-multiplayer", error="invalid_token""#,
            };
            let mut response = ApiError::new(
                ErrorCode::Unauthenticated,
                error.to_string(),
                "Send Authorization: Bearer <token>.",
            )
            .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
            response
        }
    }
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
