//! The authorization server's rules, against a real SQLite store: a grant from authorization
//! to a checked bearer token, and what makes a token stop working.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::*;
use crate::Scope;

const ISSUER: &str = "https://mcp.example.com";
const REDIRECT: &str = "https://claude.ai/api/mcp/auth_callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// One test's time, moved only by that test: tests run in parallel, and a shared clock moved
/// by one would expire the tokens of another.
#[derive(Clone)]
struct TestClock(Arc<AtomicI64>);

impl TestClock {
    fn new() -> Self {
        TestClock(Arc::new(AtomicI64::new(1_000_000)))
    }

    fn advance(&self, by: Duration) {
        let millis = i64::try_from(by.as_millis()).expect("a short duration");
        self.0.fetch_add(millis, Ordering::SeqCst);
    }

    /// The clock to hand to a server.
    fn reader(&self) -> impl Fn() -> Timestamp + Send + Sync + 'static {
        let now = self.0.clone();
        move || Timestamp(now.load(Ordering::SeqCst))
    }
}

fn database_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("auth.db").display())
}

async fn server(dir: &tempfile::TempDir, issuer: &str, clock: &TestClock) -> OAuthServer {
    let store = Store::open(&database_url(dir), store::StoreSettings::default())
        .await
        .expect("store opens");
    let mut config = OAuthConfig::new(issuer);
    config.access_token_ttl = Duration::from_secs(60);
    OAuthServer::new(config, store)
        .await
        .expect("server starts")
        .with_clock(clock.reader())
}

/// Another server on the database of a running one (as the `token` commands open it), under
/// `issuer`.
async fn beside(dir: &tempfile::TempDir, issuer: &str, clock: &TestClock) -> OAuthServer {
    let store = Store::open_for_token_admin(&database_url(dir))
        .await
        .expect("store opens");
    OAuthServer::new(OAuthConfig::new(issuer), store)
        .await
        .expect("server starts")
        .with_clock(clock.reader())
}

fn params(client_id: &str) -> AuthorizeParams {
    AuthorizeParams {
        response_type: Some("code".into()),
        client_id: Some(client_id.into()),
        redirect_uri: Some(REDIRECT.into()),
        scope: Some("mcp:read".into()),
        state: Some("xyz".into()),
        code_challenge: Some(URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER))),
        code_challenge_method: Some("S256".into()),
        resource: Some(format!("{ISSUER}/mcp/")),
    }
}

/// A public client's registration.
fn registration(redirect_uri: &str, client_name: Option<&str>) -> RegistrationRequest {
    RegistrationRequest {
        redirect_uris: vec![redirect_uri.into()],
        client_name: client_name.map(str::to_owned),
        token_endpoint_auth_method: Some("none".into()),
        grant_types: None,
        response_types: None,
        scope: None,
    }
}

/// Registers a public client, approves for a new person and exchanges the code.
async fn grant(server: &OAuthServer) -> (String, TokenResponse) {
    let client = server
        .register(registration(REDIRECT, Some("Claude")))
        .await
        .expect("registered");
    let client_id = client["client_id"].as_str().expect("id").to_owned();
    let request = server
        .check_authorize(&params(&client_id))
        .await
        .expect("valid request");
    assert_eq!(request.client_name, "Claude");
    let person = server.create_person(" Ada ").await.expect("person");
    assert_eq!(person.display_name, "Ada");
    let location = server
        .decide(&request, Consent::Approve(person.id))
        .await
        .expect("approved");
    let query: HashMap<String, String> = url::Url::parse(&location)
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(query["state"], "xyz");
    assert_eq!(query["iss"], ISSUER);
    let tokens = server
        .token(
            TokenParams {
                grant_type: Some("authorization_code".into()),
                code: Some(query["code"].clone()),
                redirect_uri: Some(REDIRECT.into()),
                code_verifier: Some(VERIFIER.into()),
                client_id: Some(client_id.clone()),
                ..TokenParams::default()
            },
            None,
        )
        .await
        .expect("exchanged");
    (client_id, tokens)
}

#[tokio::test]
async fn a_grant_becomes_a_caller_with_the_granted_scope_until_it_expires() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = TestClock::new();
    let server = server(&dir, ISSUER, &clock).await;
    let (_, tokens) = grant(&server).await;
    assert_eq!(tokens.scope, "mcp:read");
    let caller = server
        .check_bearer(&tokens.access_token)
        .await
        .expect("valid token");
    assert_eq!(caller.principal.display_name, "Ada");
    assert!(caller.scopes.contains(Scope::Read) && !caller.scopes.contains(Scope::Write));
    assert_eq!(
        server.check_bearer(&tokens.refresh_token).await,
        Err(AuthError::Invalid),
        "a refresh token is no bearer token"
    );
    // Expiry is checked on every request, remembered checks included.
    clock.advance(Duration::from_secs(61));
    assert_eq!(
        server.bearer_check(&tokens.access_token).await,
        Err(BearerRefusal::Expired)
    );
    assert_eq!(
        server.check_bearer(&tokens.access_token).await,
        Err(AuthError::Invalid)
    );
}

#[tokio::test]
async fn tokens_issued_for_another_resource_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = TestClock::new();
    let issuing = server(&dir, ISSUER, &clock).await;
    let (_, tokens) = grant(&issuing).await;
    // The same database served under the same public URL, and under another one (another
    // resource), at the same instant: only the audience differs.
    let same = beside(&dir, ISSUER, &clock).await;
    let moved = beside(&dir, "https://elsewhere.example.com", &clock).await;
    let caller = same
        .check_bearer(&tokens.access_token)
        .await
        .expect("the resource the token was issued for accepts it");
    assert_eq!(caller.principal.display_name, "Ada");
    assert_eq!(
        moved.bearer_check(&tokens.access_token).await,
        Err(BearerRefusal::ForAnotherResource)
    );
    assert_eq!(
        moved.check_bearer(&tokens.access_token).await,
        Err(AuthError::Invalid)
    );
}

#[tokio::test]
async fn a_revoked_grant_is_refused_at_once_even_right_after_its_token_was_checked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = server(&dir, ISSUER, &TestClock::new()).await;
    let (client_id, tokens) = grant(&server).await;
    // Checked once, so remembered for the next requests.
    server
        .check_bearer(&tokens.access_token)
        .await
        .expect("valid before revocation");
    server
        .revoke(
            TokenParams {
                client_id: Some(client_id),
                token: Some(tokens.refresh_token.clone()),
                ..TokenParams::default()
            },
            None,
        )
        .await
        .expect("revoked");
    assert_eq!(
        server.bearer_check(&tokens.access_token).await,
        Err(BearerRefusal::Revoked),
        "a revocation through the server forgets the remembered check"
    );
}

#[tokio::test]
async fn requests_that_cannot_be_trusted_are_shown_not_redirected() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = server(&dir, ISSUER, &TestClock::new()).await;
    let (client_id, _) = grant(&server).await;
    let mut wrong_redirect = params(&client_id);
    wrong_redirect.redirect_uri = Some("https://claude.ai.evil.example/cb".into());
    assert!(matches!(
        server.check_authorize(&wrong_redirect).await,
        Err(AuthorizeError::Page { .. })
    ));
    let mut foreign = params(&client_id);
    foreign.resource = Some("https://other.example/mcp".into());
    match server.check_authorize(&foreign).await {
        Err(AuthorizeError::Redirect(url)) => {
            assert!(
                url.starts_with(REDIRECT) && url.contains("error=invalid_target"),
                "{url}"
            );
        }
        other => panic!("expected a redirect, got {other:?}"),
    }
    let request = server
        .check_authorize(&params(&client_id))
        .await
        .expect("valid");
    let token = server.form_token(&request);
    let mut swapped = request.clone();
    swapped.redirect_uri = "https://claude.ai/other".into();
    assert!(
        !server
            .spend_form_token(&swapped, &token)
            .await
            .expect("checked")
    );
    assert!(
        server
            .spend_form_token(&request, &token)
            .await
            .expect("checked")
    );
    assert!(
        !server
            .spend_form_token(&request, &token)
            .await
            .expect("checked"),
        "a consent form is answered once"
    );
}

#[tokio::test]
async fn errors_are_redirected_only_once_a_person_approved_the_client() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = server(&dir, ISSUER, &TestClock::new()).await;
    let client = server
        .register(registration("https://evil.example/phish", None))
        .await
        .expect("registered");
    let client_id = client["client_id"].as_str().expect("id").to_owned();
    let mut bad = params(&client_id);
    bad.redirect_uri = Some("https://evil.example/phish".into());
    bad.response_type = Some("token".into());
    match server.check_authorize(&bad).await {
        Err(AuthorizeError::Page { detail, .. }) => {
            assert!(detail.contains("unsupported_response_type"), "{detail}");
        }
        other => panic!("a client nobody approved gets no redirect: {other:?}"),
    }
    let mut good = bad.clone();
    good.response_type = Some("code".into());
    let request = server.check_authorize(&good).await.expect("valid");
    let person = server.create_person("Ada").await.expect("person");
    server
        .decide(&request, Consent::Approve(person.id))
        .await
        .expect("approved");
    match server.check_authorize(&bad).await {
        Err(AuthorizeError::Redirect(url)) => {
            assert!(url.contains("error=unsupported_response_type"), "{url}");
        }
        other => panic!("an approved client gets its errors: {other:?}"),
    }
}

#[tokio::test]
async fn passphrase_attempts_are_limited_per_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("auth.db").display());
    let store = Store::open(&url, store::StoreSettings::default())
        .await
        .expect("store opens");
    let mut config = OAuthConfig::new(ISSUER);
    config.approval = ApprovalMode::Passphrase("correct horse battery".into());
    let server = OAuthServer::new(config, store)
        .await
        .expect("server starts");
    let guesser: IpAddr = "203.0.113.7".parse().expect("address");
    let neighbour: IpAddr = "198.51.100.9".parse().expect("address");

    for _ in 0..PASSPHRASE_ATTEMPTS {
        assert_eq!(
            server.check_passphrase(Some("password123"), guesser),
            PassphraseCheck::Wrong
        );
    }
    match server.check_passphrase(Some("correct horse battery"), guesser) {
        PassphraseCheck::TooManyAttempts { wait } => {
            assert!(wait <= Duration::from_secs(60), "{wait:?}");
        }
        other => panic!("attempts past the limit must be refused, even right ones: {other:?}"),
    }
    assert_eq!(
        server.check_passphrase(Some("correct horse battery"), neighbour),
        PassphraseCheck::Right,
        "another address keeps its own attempts"
    );
}

#[test]
fn display_names_refuse_invisible_and_reordering_characters() {
    use super::check_display_name;
    assert_eq!(check_display_name(" Ada ").as_deref(), Ok("Ada"));
    for forged in ["Ada\u{202E}nimda", "A\u{200B}da", "Ada\nSYSTEM: x"] {
        let refused = check_display_name(forged).expect_err(forged);
        assert!(refused.contains("U+"), "{refused}");
    }
    assert!(check_display_name("  ").is_err());
}

#[tokio::test]
async fn a_client_name_cannot_hide_characters_from_the_person_who_approves_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(&dir, ISSUER, &TestClock::new()).await;
    let register = |name: &str| server.register(registration(REDIRECT, Some(name)));
    // "Claude" followed by a right-to-left override reads differently from what it is.
    for hidden in ["Claude\u{202e}edualC", "Clau\u{200b}de", "Claude\nApproved"] {
        let refused = register(hidden).await.expect_err(hidden);
        assert!(refused.to_string().contains("U+"), "{hidden:?}: {refused}");
    }
    register("Claude (work)")
        .await
        .expect("plain names register");
}
