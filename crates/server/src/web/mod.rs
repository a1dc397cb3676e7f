//! Pages for people, served by the same binary: home, sign-in, a channel's live view with its
//! admin actions, replay, verify, the lobby, the bot catalog and connections.
//!
//! - Server-rendered HTML (maud: every interpolation is escaped unless marked, so names,
//!   messages and bot sources from others can never become markup) with a little JavaScript
//!   from `/assets` ([`assets`]), under a CSP that runs no inline script and loads nothing from
//!   elsewhere ([`respond`]).
//! - A person is signed in by the cookie the consent page sets ([`session`]); the pages act
//!   through the same `service` methods as the MCP tools, as that person.
//! - Every form carries the person's page-form token, checked before anything changes, on top
//!   of the Origin check every request passes and a `SameSite` cookie.
//! - Pages that hold anything private answer `Cache-Control: no-store`.

mod assets;
mod bots;
mod channel;
mod connections;
pub mod home;
mod layout;
pub mod lobby;
mod replay;
mod session;
mod sign_in;
mod verify;

use std::sync::Arc;

use auth::OAuthServer;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use service::{Service, ServiceError};

use crate::client_address::{self, TrustedProxies};
pub use session::Visitor;

/// What every page handler needs.
pub struct WebState {
    pub service: Service,
    /// The authorization server, whose cookie signs people in; `None` under development
    /// authentication, where the pages show only what is public.
    pub oauth: Option<Arc<OAuthServer>>,
    pub home: home::Home,
    pub lobby: lobby::LobbyCache,
}

type Shared = axum::extract::State<Arc<WebState>>;

/// The pages and their assets.
pub fn router(state: WebState, trusted_proxies: TrustedProxies) -> Router {
    Router::new()
        .route("/", get(home::page))
        .route("/signin", get(sign_in::page).post(sign_in::submit))
        .route("/signout", post(sign_in::sign_out))
        .route("/channels/{id}", get(channel::page))
        .route("/channels/{id}/feed", get(channel::feed))
        .route("/channels/{id}/admin", post(channel::admin))
        .route("/channels/{id}/replay", get(replay::page))
        .route("/channels/{id}/transcript.json", get(replay::download))
        .route("/lobby", get(lobby::page))
        .route("/lobby/seat", post(lobby::take_seat))
        .route("/bots", get(bots::catalog))
        .route("/bots/{name}", get(bots::one))
        .route("/connections", get(connections::page))
        .route("/connections/revoke", post(connections::revoke))
        .route("/verify", get(verify::page))
        .route("/assets/{file}", get(assets::serve))
        .with_state(Arc::new(state))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(trusted_proxies),
            client_address::resolve,
        ))
}

/// A page with the headers every page carries: a CSP that allows our own scripts and styles
/// only, no framing, no caching (pages show private things), and no MIME sniffing.
fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, axum::response::Html(markup.into_string())).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // `same-origin` rather than `no-referrer`: under the latter browsers send `Origin: null`
    // with our own forms, which the Origin check refuses.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn ok(markup: Markup) -> Response {
    respond(StatusCode::OK, markup)
}

/// A refusal shown as a page: what went wrong and what to do.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    title: String,
    detail: String,
}

impl PageError {
    fn new(status: StatusCode, title: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            status,
            title: title.into(),
            detail: detail.into(),
        }
    }

    fn expired_form() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Reload the page and try again. (Forms are valid for twelve hours, and only from \
             this site.)",
        )
    }

    fn sign_in_needed() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Sign in first",
            "This page shows what is yours: sign in to see it.",
        )
    }
}

impl From<ServiceError> for PageError {
    fn from(error: ServiceError) -> Self {
        let status = crate::api::status_of(error.code());
        // A channel one is not in reads like one that does not exist: the page must not tell
        // an outsider which ids are real.
        if matches!(
            error.code(),
            domain::ErrorCode::NotMember | domain::ErrorCode::ChannelNotFound
        ) {
            return Self::new(
                StatusCode::NOT_FOUND,
                "No such channel here",
                "Either it does not exist or you hold no seat in it. Join with an invite code \
                 from your assistant first.",
            );
        }
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(%error, "a page failed");
            return Self::new(
                status,
                "Something went wrong on our side",
                "Try again in a moment.",
            );
        }
        Self::new(status, error.to_string(), error.hint())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let body = html! {
            h1 { (self.title) }
            p.lead { (self.detail) }
            p {
                @if self.status == StatusCode::UNAUTHORIZED {
                    a href="/signin" { "Sign in" } " · "
                }
                a href="/" { "Back to the home page" }
            }
        };
        respond(self.status, layout::bare(&self.title, body))
    }
}

/// Refuses a form whose token is not the person's: what every `POST` handler calls first.
fn check_form(
    state: &WebState,
    signed_in: &session::SignedIn,
    token: &str,
) -> Result<(), PageError> {
    let oauth = state.oauth.as_ref().ok_or_else(PageError::sign_in_needed)?;
    if oauth.check_page_form_token(&signed_in.caller.principal.id, token) {
        Ok(())
    } else {
        Err(PageError::expired_form())
    }
}
