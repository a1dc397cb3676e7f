//! How a refusal reaches a REST client: an HTTP status and `{"error": {code, message, hint}}`.

use axum::Json;
use axum::extract::FromRequest;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use domain::ErrorCode;
use service::ServiceError;

use crate::wire::{ErrorBody, ErrorResponse};

/// The REST error type. Every handler returns it, so the mapping lives only here.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    retry_after_secs: Option<u64>,
}

pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidArgument | ErrorCode::SlotRequired => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::NotMember
        | ErrorCode::NotAdmin
        | ErrorCode::ReadOnlySeat
        | ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
        ErrorCode::ChannelNotFound
        | ErrorCode::SlotNotFound
        | ErrorCode::InviteInvalid
        | ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::ChannelClosed => StatusCode::CONFLICT,
        ErrorCode::LimitExceeded => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            status: status_of(code),
            body: ErrorBody {
                code: code.as_str(),
                message: message.into(),
                hint: hint.into(),
            },
            retry_after_secs: None,
        }
    }

    /// Overrides the status that the code implies (e.g. 413 for a body over the size cap).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    fn invalid(reason: impl Into<String>) -> Self {
        Self::new(
            ErrorCode::InvalidArgument,
            reason,
            "Send a JSON body (Content-Type: application/json) shaped as the README documents.",
        )
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        let retry_after_secs = match &error {
            ServiceError::RateLimited { retry_after_ms } => Some(retry_after_ms.div_ceil(1000)),
            _ => None,
        };
        Self {
            status: status_of(error.code()),
            body: ErrorBody::from(&error),
            retry_after_secs,
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError::invalid(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        // Not `invalid`: its hint is about bodies, and a query has none.
        Self::new(
            ErrorCode::InvalidArgument,
            rejection.body_text(),
            "Check the query parameters against GET /api/openapi.json.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let scope_refused = self.body.code == ErrorCode::InsufficientScope.as_str();
        let code = self.body.code;
        let mut response = (self.status, Json(ErrorResponse { error: self.body })).into_response();
        response
            .extensions_mut()
            .insert(crate::metrics::RefusedWith(code));
        if scope_refused {
            // The authentication middleware answers with the OAuth scope challenge instead.
            response
                .extensions_mut()
                .insert(crate::middleware::ScopeRefused);
        }
        if let Some(secs) = self.retry_after_secs
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// `Json` whose rejections use our error format.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// Where the REST routes are described, named in the hints of the two answers below.
const ROUTES_HINT: &str = "The REST API is described at GET /api/openapi.json and in the README; \
                           MCP clients connect to /mcp.";

/// The answer for a path that no route serves, JSON like every other refusal.
pub async fn not_found(uri: Uri) -> ApiError {
    not_found_at(uri.path())
}

/// The answer for a route asked with a method it does not take.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    method_not_allowed_at(&method, uri.path())
}

/// [`not_found`] for `path` as the client sent it (a nested router sees it without its prefix).
pub fn not_found_at(path: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("nothing is served at {path}"),
        ROUTES_HINT,
    )
}

/// [`method_not_allowed`] for `path` as the client sent it.
pub fn method_not_allowed_at(method: &Method, path: &str) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{path} does not take {method}"),
        ROUTES_HINT,
    )
}
