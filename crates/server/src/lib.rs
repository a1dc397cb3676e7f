//! The HTTP application: one axum [`Router`] serving the MCP endpoint, the REST API and health.
//!
//! - [`mcp`]: `/mcp`, rmcp's Streamable HTTP service with our tools and resources.
//! - [`api`]: `/api`, the REST API.
//! - [`ops`]: the capabilities in wire types, shared by both surfaces.
//! - [`wire`]: the JSON shapes clients see.
//! - [`oauth`]: the authorization server's endpoints and consent page (OAuth mode only).
//! - [`middleware`]: framing and Host/Origin checks, the body cap, bearer authentication.
//! - [`web`]: pages for people: home (`/`), sign-in, a channel's live view and admin actions,
//!   replay, verify, the bot catalog and connections; [`cookies`] names what they set.
//! - [`metrics`]: `/metrics` (Prometheus), `/livez` and `/readyz`, and the call counts both
//!   surfaces feed.
//! - `/.well-known/mcp-multiplayer-keys` ([`KEYS_PATH`]): the public keys that verify signed
//!   heads; its handler is here, beside `/healthz`.
//! - [`listen`]: the accept loop and hyper's connection settings.
//! - [`client_address`]: the client address that per-address limits count (trusted proxies).
//! - [`framing`]: how each request was framed on the wire (request smuggling guards).
//!
//! This crate knows HTTP and MCP; it holds no rules and no SQL.

pub mod api;
pub mod client_address;
pub mod cookies;
pub mod framing;
pub mod listen;
pub mod mcp;
pub mod metrics;
pub mod middleware;
pub mod oauth;
pub mod ops;
pub mod web;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use auth::Authenticator;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use service::Service;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

pub use client_address::TrustedProxies;
pub use middleware::HostPolicy;

/// Largest request body accepted, in bytes. Messages are capped far below this.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// Where the server publishes its public signing keys.
pub const KEYS_PATH: &str = "/.well-known/mcp-multiplayer-keys";

/// How long a client may cache the key list: short, since a rotation adds a key. A verifier
/// that meets a `key_id` it does not know fetches the list again.
const KEYS_CACHE_CONTROL: &str = "public, max-age=300";

/// Everything the router needs.
pub struct AppParts {
    pub service: Service,
    pub authenticator: Authenticator,
    pub host_policy: HostPolicy,
    /// Proxies whose `X-Forwarded-For` is believed for per-address limits.
    pub trusted_proxies: TrustedProxies,
    /// Time a client has to send a request's body once its head has arrived.
    pub request_read_timeout: Duration,
    /// Cancelled only when the grace period after a shutdown signal runs out: it cuts open MCP
    /// streams. Cancelling it any earlier would drop the answers of syncs that the service is
    /// still releasing.
    pub transport_shutdown: CancellationToken,
    /// The URL clients use to reach this server, without a trailing slash (shown on `/`).
    pub public_url: String,
    /// The bearer token `/metrics` answers to; without one, `/metrics` is off.
    pub metrics_token: Option<String>,
}

/// Builds the whole application. Separate from `main` so tests can drive it directly.
pub fn app(parts: AppParts) -> Router {
    let pages = web::router(
        web::WebState {
            service: parts.service.clone(),
            oauth: parts.authenticator.oauth().cloned(),
            home: web::home::Home::new(
                &parts.public_url,
                matches!(parts.authenticator, Authenticator::Dev),
            ),
            lobby: web::lobby::LobbyCache::default(),
        },
        parts.trusted_proxies.clone(),
    );
    let keys = get(published_keys).with_state(parts.service.clone());
    let health = get(healthz).with_state(parts.service.clone());
    let metrics = metrics::Metrics::new(parts.service.clone(), parts.metrics_token);
    let ready = get(metrics::ready).with_state(parts.service.clone());
    let authorization_server = match parts.authenticator.oauth() {
        Some(server) => oauth::router(server.clone(), parts.trusted_proxies),
        None => Router::new(),
    };
    let authenticated = Router::new()
        .route_service(
            "/mcp",
            mcp::service(
                parts.service.clone(),
                Arc::clone(&metrics),
                parts.transport_shutdown,
            ),
        )
        // A route layer covers the routes added before it: `/mcp` only.
        .route_layer(axum::middleware::from_fn_with_state(
            mcp::FirstPasses::default(),
            mcp::park_waiting_syncs,
        ))
        // Outside the parking: a plain call answered here never reaches it.
        .route_layer(axum::middleware::from_fn_with_state(
            mcp::DirectCalls::new(parts.service.clone(), Arc::clone(&metrics)),
            mcp::answer_directly,
        ))
        .nest(api::PREFIX, api::router(parts.service, &metrics))
        .layer(axum::middleware::from_fn_with_state(
            parts.authenticator,
            middleware::authenticate,
        ));
    Router::new()
        .route("/healthz", health)
        .route("/livez", get(metrics::live))
        .route("/readyz", ready)
        .route("/metrics", get(metrics::serve).with_state(metrics))
        .route("/api/openapi.json", api::openapi_route())
        .route(KEYS_PATH, keys)
        .merge(authorization_server)
        .merge(pages)
        .merge(authenticated)
        // Unknown paths and methods answer JSON, like every refusal (axum's own are empty).
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(parts.host_policy),
            middleware::check_host_and_origin,
        ))
        .layer(axum::middleware::from_fn_with_state(
            parts.request_read_timeout,
            middleware::buffer_body,
        ))
        .layer(CatchPanicLayer::custom(middleware::answer_panic))
        .layer(TraceLayer::new_for_http())
}

/// `GET /healthz`: up, the version, and how many syncs are waiting now. That count is also
/// what lets a test know a long-poll is parked before it posts, instead of sleeping on it.
async fn healthz(State(service): State<Service>) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "waiting_syncs": service.waiting_syncs(),
    }))
}

/// `GET /.well-known/mcp-multiplayer-keys`: every public key that ever signed a head (active
/// and retired) and the active one's id. No authentication: anyone holding a signed head may
/// check it.
async fn published_keys(State(service): State<Service>) -> Result<Response, api::ApiError> {
    let keys = wire::KeysView::from(service.published_keys().await?);
    let mut response = axum::Json(keys).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(KEYS_CACHE_CONTROL),
    );
    Ok(response)
}
