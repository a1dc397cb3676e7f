//! The cookies this server sets, in one place: the person cookie (who approved an app in this
//! browser, and who is signed in to the pages), and the sign-in form's nonce. Every one is
//! `HttpOnly` and `Path=/`, `Secure` when the public URL is HTTPS.

use auth::OAuthServer;
use axum::http::{HeaderMap, header};
use domain::PrincipalId;

/// The signed person id: set by the consent page and by the sign-in page.
pub const PERSON_COOKIE: &str = "mcpmp_person";
/// A random value the sign-in form's token is bound to (against sign-in forgery).
pub const SIGN_IN_COOKIE: &str = "mcpmp_signin";

/// The value of the cookie `name` in a request, if it sent one.
pub fn read<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// `Set-Cookie` for the person cookie: a year, sent on top-level navigation from elsewhere
/// (`Lax`: a link to a channel page opens signed in) but not on cross-site posts.
pub fn person(server: &OAuthServer, person: &PrincipalId) -> String {
    set(
        server,
        PERSON_COOKIE,
        &server.person_cookie(person),
        "Max-Age=31536000; SameSite=Lax",
    )
}

/// `Set-Cookie` for the person cookie of a session signed in with a personal token: it names
/// the person while that token lives.
pub fn person_via_token(server: &OAuthServer, person: &PrincipalId, family: &str) -> String {
    set(
        server,
        PERSON_COOKIE,
        &server.person_cookie_via(person, family),
        "Max-Age=31536000; SameSite=Lax",
    )
}

/// `Set-Cookie` for the sign-in nonce: the page's life, never sent cross-site.
pub fn sign_in_nonce(server: &OAuthServer, nonce: &str) -> String {
    set(
        server,
        SIGN_IN_COOKIE,
        nonce,
        "Max-Age=3600; SameSite=Strict",
    )
}

/// `Set-Cookie` that removes the cookie `name`.
pub fn cleared(server: &OAuthServer, name: &str) -> String {
    set(server, name, "", "Max-Age=0; SameSite=Lax")
}

fn set(server: &OAuthServer, name: &str, value: &str, attributes: &str) -> String {
    let secure = if server.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path=/; {attributes}; HttpOnly{secure}")
}
