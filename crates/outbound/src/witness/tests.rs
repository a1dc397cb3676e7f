//! The witness against a local HTTPS server signed by a test CA: what a fetch records, and
//! every refusal: private addresses (also when a name resolves to them), the operator's lists,
//! an untrusted certificate, a body past the cap, a server that never answers, a redirect.

use std::sync::atomic::Ordering;

use super::*;
use crate::testing::{Answer, PAGE, TestPki, pki, serve};

fn witness(pki: &TestPki, change: impl FnOnce(&mut WitnessPolicy)) -> Witness {
    let mut policy = WitnessPolicy {
        extra_roots: vec![pki.ca.clone()],
        allow_loopback: true,
        timeout: Duration::from_secs(10),
        ..WitnessPolicy::default()
    };
    change(&mut policy);
    Witness::new(policy, Arc::new(SystemResolver)).expect("witness")
}

const NOW: Timestamp = Timestamp(1_765_000_000_000);

fn code(record: &Attestation) -> Option<FetchFailureCode> {
    record.error.as_ref().map(|failure| failure.code)
}

#[tokio::test]
async fn a_fetch_records_the_tls_session_the_status_and_the_body() {
    let pki = pki();
    let server = serve(&pki, Answer::Page).await;
    let url = format!("https://localhost:{}/page?x=1", server.address.port());
    let record = witness(&pki, |_| {}).fetch(&url, NOW).await;
    assert_eq!(record.error, None, "{record:?}");
    assert_eq!(record.url, url);
    assert_eq!(record.fetched_at, NOW);
    assert_eq!(
        record.address.as_deref(),
        Some(server.address.to_string().as_str())
    );
    assert_eq!(record.status, Some(200));
    assert_eq!(
        record.headers.get("content-type").map(String::as_str),
        Some("text/plain")
    );
    assert!(
        !record.headers.contains_key("set-cookie"),
        "only the listed headers"
    );
    let body = record.body.as_ref().expect("a body");
    assert_eq!(body.text.as_deref(), Some(PAGE));
    assert_eq!(body.bytes, PAGE.len() as u64);
    assert_eq!(body.sha256, hex::encode(Sha256::digest(PAGE.as_bytes())));
    assert!(!body.truncated);
    let tls = record.tls.as_ref().expect("a TLS record");
    assert_eq!(tls.version, "TLSv1_3");
    assert!(tls.cipher.starts_with("TLS13_"), "{}", tls.cipher);
    assert_eq!(tls.server_name, "localhost");
    assert_eq!(tls.chain.len(), 2, "the leaf and the CA the server sent");
    assert_eq!(
        tls.chain[0].sha256,
        hex::encode(Sha256::digest(pki.leaf.as_ref()))
    );
    assert_eq!(
        STANDARD.decode(&tls.chain[0].der).expect("base64"),
        pki.leaf.as_ref()
    );
}

#[tokio::test]
async fn loopback_is_refused_unless_the_operator_allows_it_and_nothing_connects() {
    let pki = pki();
    let server = serve(&pki, Answer::Page).await;
    for host in ["localhost", "127.0.0.1", "[::1]"] {
        let url = format!("https://{host}:{}/", server.address.port());
        let record = witness(&pki, |policy| policy.allow_loopback = false)
            .fetch(&url, NOW)
            .await;
        assert_eq!(
            code(&record),
            Some(FetchFailureCode::AddressRefused),
            "{host}: {record:?}"
        );
        assert_eq!(record.address, None);
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 0);
}

/// A resolver that answers what the test says, as a hostile DNS server would.
struct Fixed(Vec<IpAddr>);

impl Resolve for Fixed {
    fn resolve<'a>(
        &'a self,
        _host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        let addresses = self.0.iter().map(|ip| SocketAddr::new(*ip, port)).collect();
        Box::pin(async move { Ok(addresses) })
    }
}

#[tokio::test]
async fn names_and_literals_of_private_link_local_and_metadata_addresses_are_refused() {
    let refused: Vec<IpAddr> = [
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "127.0.0.1",
        "::1",
        "fe80::1",
        "fd00:ec2::254",
        "::ffff:10.0.0.1",
    ]
    .iter()
    .map(|raw| raw.parse().expect("ip"))
    .collect();
    for ip in &refused {
        let witness =
            Witness::new(WitnessPolicy::default(), Arc::new(Fixed(vec![*ip]))).expect("witness");
        let record = witness
            .fetch("https://rebound.example/latest/meta-data", NOW)
            .await;
        assert_eq!(
            code(&record),
            Some(FetchFailureCode::AddressRefused),
            "{ip}: {record:?}"
        );
        let literal = match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        let record = witness.fetch(&format!("https://{literal}/"), NOW).await;
        assert_eq!(
            code(&record),
            Some(FetchFailureCode::AddressRefused),
            "{ip}: {record:?}"
        );
    }
    // A name whose every answer is private is refused whatever the order.
    let witness = Witness::new(WitnessPolicy::default(), Arc::new(Fixed(refused))).expect("w");
    let record = witness.fetch("https://rebound.example/", NOW).await;
    assert_eq!(code(&record), Some(FetchFailureCode::AddressRefused));
}

#[tokio::test]
async fn an_untrusted_certificate_fails_the_handshake() {
    let pki = pki();
    let server = serve(&pki, Answer::Page).await;
    let url = format!("https://localhost:{}/", server.address.port());
    let record = witness(&pki, |policy| policy.extra_roots.clear())
        .fetch(&url, NOW)
        .await;
    assert_eq!(code(&record), Some(FetchFailureCode::Tls), "{record:?}");
    assert_eq!(record.status, None);
}

#[tokio::test]
async fn a_body_past_the_cap_is_cut_there_and_kept_in_part() {
    let pki = pki();
    let server = serve(&pki, Answer::Flood).await;
    let url = format!("https://localhost:{}/", server.address.port());
    let started = std::time::Instant::now();
    let record = witness(&pki, |policy| policy.max_body_bytes = 256 * 1024)
        .fetch(&url, NOW)
        .await;
    assert_eq!(
        code(&record),
        Some(FetchFailureCode::TooLarge),
        "{record:?}"
    );
    let body = record.body.as_ref().expect("what was read");
    assert_eq!(body.bytes, 256 * 1024);
    assert!(body.truncated);
    assert_eq!(
        body.text.as_ref().map(String::len),
        Some(MAX_RECORDED_BODY_BYTES)
    );
    assert_eq!(
        body.sha256,
        hex::encode(Sha256::digest(vec![b'x'; 256 * 1024]))
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopped at the cap, not at 50 MB"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_runs_out_of_time() {
    let pki = pki();
    let server = serve(&pki, Answer::Silence).await;
    let url = format!("https://localhost:{}/", server.address.port());
    let record = witness(&pki, |policy| policy.timeout = Duration::from_millis(300))
        .fetch(&url, NOW)
        .await;
    assert_eq!(code(&record), Some(FetchFailureCode::Timeout), "{record:?}");
    assert!(record.address.is_some(), "it got as far as connecting");
}

#[tokio::test]
async fn a_redirect_is_recorded_not_followed() {
    let pki = pki();
    let server = serve(&pki, Answer::Redirect).await;
    let url = format!("https://localhost:{}/", server.address.port());
    let record = witness(&pki, |_| {}).fetch(&url, NOW).await;
    assert_eq!(record.error, None);
    assert_eq!(record.status, Some(302));
    assert_eq!(
        record.headers.get("location").map(String::as_str),
        Some("https://10.0.0.1/admin")
    );
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        1,
        "one fetch, nothing followed"
    );
}

#[tokio::test]
async fn the_operators_lists_and_the_url_rules_refuse_before_any_connection() {
    let pki = pki();
    let server = serve(&pki, Answer::Page).await;
    let port = server.address.port();
    let denied = witness(&pki, |policy| {
        policy.deny = vec![HostPattern::parse("localhost").expect("pattern")];
    });
    let record = denied
        .fetch(&format!("https://localhost:{port}/"), NOW)
        .await;
    assert_eq!(code(&record), Some(FetchFailureCode::NotAllowed));
    let allow_only = witness(&pki, |policy| {
        policy.allow = vec![HostPattern::parse("*.example.com").expect("pattern")];
    });
    let record = allow_only
        .fetch(&format!("https://localhost:{port}/"), NOW)
        .await;
    assert_eq!(code(&record), Some(FetchFailureCode::NotAllowed));
    for url in [
        format!("http://localhost:{port}/"),
        format!("https://user:pw@localhost:{port}/"),
        "not a url".to_owned(),
    ] {
        let record = witness(&pki, |_| {}).fetch(&url, NOW).await;
        assert_eq!(code(&record), Some(FetchFailureCode::BadUrl), "{url}");
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 0);
}

#[test]
fn host_patterns_match_names_or_names_under_them() {
    let exact = HostPattern::parse("Example.com").expect("pattern");
    assert!(exact.matches("example.com"));
    assert!(!exact.matches("www.example.com"));
    let under = HostPattern::parse("*.example.com").expect("pattern");
    assert!(under.matches("www.example.com") && under.matches("a.b.example.com"));
    assert!(!under.matches("example.com") && !under.matches("badexample.com"));
    for bad in ["", "*.", "exa mple.com", "a/b"] {
        assert!(HostPattern::parse(bad).is_err(), "{bad:?}");
    }
}
