//! The authorization server's HTTP endpoints: thin adapters over [`auth::OAuthServer`].
//!
//! - metadata: `/.well-known/oauth-protected-resource[/mcp]` (RFC 9728),
//!   `/.well-known/oauth-authorization-server` and `/.well-known/openid-configuration` (RFC 8414);
//! - `/register` (RFC 7591), `/authorize` (GET shows the consent page, POST takes the answer),
//!   `/token`, `/revoke` (RFC 7009); each also under the prototype's `/oauth/…` paths.
//!
//! OAuth errors are JSON `{error, error_description}` with `Cache-Control: no-store`; errors
//! that cannot be sent back to a client are shown to the person as a page.
//!
//! `/register`, `/authorize` and `/token` (with `/revoke`) are limited per client address
//! (`crate::client_address`): past the allowance they answer 429 with `Retry-After` and the
//! OAuth error `too_many_requests`.

mod consent;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use auth::oauth::{
    AuthorizeError, AuthorizeParams, AuthorizeRequest, ClientCredentials, Consent, Endpoint,
    MAX_REGISTRATION_BYTES, OAuthError, PassphraseCheck, RegistrationRequest, TokenParams,
};
use auth::{ApprovalMode, OAuthServer};
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use crate::client_address::{self, ClientAddress, TrustedProxies};
use crate::cookies;
use consent::{ConsentView, Page};

type Shared = State<Arc<OAuthServer>>;

/// The endpoints, to merge beside the protected ones. `trusted_proxies` decides whose
/// `X-Forwarded-For` names the client address that the limits count.
pub fn router(server: Arc<OAuthServer>, trusted_proxies: TrustedProxies) -> Router {
    let limited = |routes: Router<Arc<OAuthServer>>, endpoint: Endpoint| {
        routes.route_layer(axum::middleware::from_fn_with_state(
            (server.clone(), endpoint),
            limit_per_address,
        ))
    };
    let register = Router::new()
        .route("/register", post(register))
        .route("/oauth/register", post(register));
    let authorize = Router::new()
        .route("/authorize", get(authorize).post(authorize))
        .route("/oauth/authorize", get(authorize).post(authorize));
    let token = Router::new()
        .route("/token", post(token))
        .route("/oauth/token", post(token))
        .route("/revoke", post(revoke))
        .route("/oauth/revoke", post(revoke));
    Router::new()
        .route(
            "/.well-known/oauth-protected-resource",
            get(resource_metadata),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(resource_metadata),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(server_metadata),
        )
        .route("/.well-known/openid-configuration", get(server_metadata))
        .merge(limited(register, Endpoint::Register))
        .merge(limited(authorize, Endpoint::Authorize))
        .merge(limited(token, Endpoint::Token))
        .with_state(server.clone())
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(trusted_proxies),
            client_address::resolve,
        ))
}

/// Counts the request against its client address's allowance for `endpoint`; past it, 429.
async fn limit_per_address(
    State((server, endpoint)): State<(Arc<OAuthServer>, Endpoint)>,
    request: Request,
    next: Next,
) -> Response {
    let from = client_ip(request.extensions().get::<ClientAddress>());
    match server.admit(endpoint, from) {
        Ok(()) => next.run(request).await,
        Err(refused) => {
            tracing::debug!(%from, path = endpoint.path(), "per-address limit reached");
            let mut response = oauth_error(refused.error());
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(refused.retry_after_secs()),
            );
            response
        }
    }
}

/// The address `client_address::resolve` found (always there inside this router).
fn client_ip(address: Option<&ClientAddress>) -> IpAddr {
    address.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ClientAddress(ip)| *ip)
}

async fn resource_metadata(State(server): Shared) -> Response {
    metadata(server.resource_metadata())
}

async fn server_metadata(State(server): Shared) -> Response {
    metadata(server.server_metadata())
}

fn metadata(document: serde_json::Value) -> Response {
    let mut response = Json(document).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

async fn register(State(server): Shared, body: Bytes) -> Response {
    if body.len() > MAX_REGISTRATION_BYTES {
        return oauth_error(OAuthError::new(
            "invalid_client_metadata",
            format!(
                "the registration request is larger than {MAX_REGISTRATION_BYTES} bytes; \
                 send only the metadata the client needs"
            ),
        ));
    }
    let request: RegistrationRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return oauth_error(OAuthError::new(
                "invalid_client_metadata",
                format!("the registration request is not valid JSON metadata: {error}"),
            ));
        }
    };
    match server.register(request).await {
        Ok(client) => no_store((StatusCode::CREATED, Json(client)).into_response()),
        Err(error) => oauth_error(error),
    }
}

async fn token(State(server): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let (params, basic) = match token_request(&headers, &body) {
        Ok(parsed) => parsed,
        Err(error) => return oauth_error(error),
    };
    match server.token(params, basic).await {
        Ok(tokens) => no_store(Json(tokens).into_response()),
        Err(error) => oauth_error(error),
    }
}

async fn revoke(State(server): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let (params, basic) = match token_request(&headers, &body) {
        Ok(parsed) => parsed,
        Err(error) => return oauth_error(error),
    };
    match server.revoke(params, basic).await {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(error) => oauth_error(error),
    }
}

/// Parses a form-encoded token or revocation request and its optional Basic credentials.
fn token_request(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(TokenParams, Option<ClientCredentials>), OAuthError> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return Err(OAuthError::invalid_request(
            "send the request as application/x-www-form-urlencoded",
        ));
    }
    let params: TokenParams = serde_urlencoded::from_bytes(body).map_err(|error| {
        OAuthError::invalid_request(format!("the form could not be read: {error}"))
    })?;
    let basic = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => Some(basic_credentials(value).ok_or_else(|| {
            OAuthError::invalid_client("the Authorization header is not valid Basic credentials")
        })?),
    };
    Ok((params, basic))
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
fn basic_credentials(value: &HeaderValue) -> Option<ClientCredentials> {
    let value = value.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |raw: &str| {
        percent_encoding::percent_decode_str(&raw.replace('+', " "))
            .decode_utf8()
            .ok()
            .map(|text| text.into_owned())
    };
    Some(ClientCredentials {
        client_id: unescape(id)?,
        client_secret: unescape(secret)?,
    })
}

/// What the consent form posts beside the authorization parameters.
#[derive(Debug, Default, Deserialize)]
struct ConsentForm {
    #[serde(flatten)]
    params: AuthorizeParams,
    #[serde(default)]
    form_token: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    passphrase: Option<String>,
}

async fn authorize(
    State(server): Shared,
    address: Option<Extension<ClientAddress>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = if method == Method::POST {
        serde_urlencoded::from_bytes::<ConsentForm>(&body)
    } else {
        serde_urlencoded::from_str::<AuthorizeParams>(uri.query().unwrap_or_default()).map(
            |params| ConsentForm {
                params,
                ..ConsentForm::default()
            },
        )
    };
    let form = match form {
        Ok(form) => form,
        Err(error) => {
            return Page::error(
                "This sign-in link is broken",
                &format!("The request could not be read ({error}). Start again from your app."),
            )
            .into_response(StatusCode::BAD_REQUEST);
        }
    };
    let request = match server.check_authorize(&form.params).await {
        Ok(request) => request,
        Err(AuthorizeError::Page { title, detail }) => {
            return Page::error(&title, &detail).into_response(StatusCode::BAD_REQUEST);
        }
        Err(AuthorizeError::Redirect(url)) => return redirect(&url, &method),
    };
    if server.config().approval == ApprovalMode::Auto {
        return match server.approve_automatically(&request).await {
            Ok(url) => redirect(&url, &method),
            Err(error) => server_failure(&error),
        };
    }
    let remembered = remembered_person(&server, &headers).await;
    if method == Method::GET {
        return consent_page(&server, &request, remembered.as_ref(), None, StatusCode::OK);
    }
    let from = client_ip(address.as_ref().map(|Extension(address)| address));
    answer_consent(&server, &request, form, remembered, from).await
}

async fn answer_consent(
    server: &OAuthServer,
    request: &AuthorizeRequest,
    form: ConsentForm,
    remembered: Option<store::oauth::Person>,
    from: IpAddr,
) -> Response {
    match server.spend_form_token(request, &form.form_token).await {
        Ok(true) => {}
        Ok(false) => {
            return Page::error(
                "This page has expired",
                "The consent form is no longer valid, or was already answered. \
                 Start again from your app.",
            )
            .into_response(StatusCode::BAD_REQUEST);
        }
        Err(error) => return server_failure(&error),
    }
    if form.decision == "deny" {
        return match server.decide(request, Consent::Deny).await {
            Ok(url) => redirect(&url, &Method::POST),
            Err(error) => server_failure(&error),
        };
    }
    if form.decision != "approve" {
        return consent_page(
            server,
            request,
            remembered.as_ref(),
            Some("Choose Allow or Deny."),
            StatusCode::BAD_REQUEST,
        );
    }
    match server.check_passphrase(form.passphrase.as_deref(), from) {
        PassphraseCheck::Right => {}
        PassphraseCheck::Wrong => {
            // Slows down guessing; the page says what went wrong.
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            tracing::warn!(client = %request.client_id, %from, "wrong passphrase on the consent page");
            return consent_page(
                server,
                request,
                remembered.as_ref(),
                Some("That passphrase is not right. Ask the person who runs this server."),
                StatusCode::UNAUTHORIZED,
            );
        }
        PassphraseCheck::TooManyAttempts { wait } => {
            tracing::warn!(client = %request.client_id, %from, "passphrase attempts used up");
            let minutes = wait.as_secs().div_ceil(60).max(1);
            return consent_page(
                server,
                request,
                remembered.as_ref(),
                Some(&format!(
                    "Too many passphrase attempts from your network. Try again in {minutes} minute(s)."
                )),
                StatusCode::TOO_MANY_REQUESTS,
            );
        }
    }
    let typed_name = form
        .display_name
        .as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty());
    let person = match (typed_name, remembered) {
        (None, Some(person)) => person,
        (typed, _) => match server.create_person(typed.unwrap_or_default()).await {
            Ok(person) => person,
            Err(error) if error.error == "invalid_request" => {
                return consent_page(
                    server,
                    request,
                    None,
                    Some(&error.description),
                    StatusCode::BAD_REQUEST,
                );
            }
            Err(error) => return server_failure(&error),
        },
    };
    match server
        .decide(request, Consent::Approve(person.id.clone()))
        .await
    {
        Ok(url) => {
            let mut response = redirect(&url, &Method::POST);
            let cookie = cookies::person(server, &person.id);
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(error) => server_failure(&error),
    }
}

fn consent_page(
    server: &OAuthServer,
    request: &AuthorizeRequest,
    remembered: Option<&store::oauth::Person>,
    problem: Option<&str>,
    status: StatusCode,
) -> Response {
    ConsentView {
        request,
        form_token: &server.form_token(request),
        remembered_name: remembered.map(|person| person.display_name.as_str()),
        ask_passphrase: matches!(server.config().approval, ApprovalMode::Passphrase(_)),
        problem,
    }
    .render()
    .into_response(status)
}

/// The person named by this browser's cookie, if it is signed by us and they still exist.
async fn remembered_person(
    server: &OAuthServer,
    headers: &HeaderMap,
) -> Option<store::oauth::Person> {
    let id = server.person_from_cookie(cookies::read(headers, cookies::PERSON_COOKIE)?)?;
    server.person(&id).await.ok().flatten()
}

/// Sends the browser on: 302 after a GET, 303 after a POST so the next request is a GET.
fn redirect(url: &str, method: &Method) -> Response {
    let status = if method == Method::POST {
        StatusCode::SEE_OTHER
    } else {
        StatusCode::FOUND
    };
    match HeaderValue::from_str(url) {
        Ok(location) => no_store((status, [(header::LOCATION, location)]).into_response()),
        Err(_) => Page::error(
            "The return address is not valid",
            "Start again from your app.",
        )
        .into_response(StatusCode::BAD_REQUEST),
    }
}

fn server_failure(error: &OAuthError) -> Response {
    Page::error(
        "Something went wrong on our side",
        &format!("{} Try again in a moment.", error.description),
    )
    .into_response(StatusCode::INTERNAL_SERVER_ERROR)
}

fn oauth_error(error: OAuthError) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let body = serde_json::json!({
        "error": error.error,
        "error_description": error.description,
    });
    let mut response = no_store((status, Json(body)).into_response());
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Basic realm="mcp-multiplayer""#),
        );
    }
    response
}

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
