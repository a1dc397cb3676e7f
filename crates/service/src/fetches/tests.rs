//! Bot fetches over a real SQLite file, real workers and a local HTTPS server signed by a test
//! CA: a request is answered once with a signed record that the bot reads and the replay
//! checks; private addresses, the per-minute caps and the pending cap refuse; a channel that
//! closes drops what is in flight; a record the server fakes is caught.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use domain::attestation::FetchFailureCode;
use domain::{ChannelId, MessageKind, Notice};
use outbound::testing::{Answer, PAGE, Server, TestPki, pki, serve};

use super::FetchSettings;
use crate::Service;
use crate::service::ServiceSettings;
use crate::testing::{alice_says, channel_with_bot, close, history, person, service_in, settled};

/// Posting "get <url>" asks for a fetch of `url`; "get4 <url>" asks four times. Each answer
/// is posted back: "got <tag> <status or error code> <body text>".
const FETCH_BOT: &str = r#"
class Bot {
  constructor(ctx) { this.ctx = ctx; }
  on_message(msg) {
    const [verb, url] = (msg.body.text || "").split(" ");
    if (verb === "get") this.ctx.request_fetch(url, {tag: "t" + msg.seq});
    if (verb === "get4") for (let i = 0; i < 4; i++) this.ctx.request_fetch(url, {tag: "t" + i});
  }
  on_fetch(r) {
    const outcome = r.ok ? String(r.status) : r.error.code;
    this.ctx.post(`got ${r.tag} ${outcome} ${r.body && r.body.text ? r.body.text.trim() : "-"}`);
  }
}
"#;

async fn service_with(
    pki: &TestPki,
    change: impl FnOnce(&mut outbound::WitnessPolicy, &mut FetchSettings),
) -> (Service, store::testing::TestDatabase) {
    let mut policy = outbound::WitnessPolicy {
        extra_roots: vec![pki.ca.clone()],
        allow_loopback: true,
        ..outbound::WitnessPolicy::default()
    };
    let mut fetch = FetchSettings::default();
    change(&mut policy, &mut fetch);
    fetch.witness = Arc::new(
        outbound::Witness::new(policy, Arc::new(outbound::SystemResolver)).expect("witness"),
    );
    let database = store::testing::TestDatabase::for_suite().await;
    let settings = ServiceSettings {
        fetch,
        ..ServiceSettings::default()
    };
    let service = service_in(&database, settings, Arc::new(crate::service::SystemClock)).await;
    (service, database)
}

/// Waits until the bot's fetches are answered (or dropped) and the bot has read the answers.
async fn answered(service: &Service, id: &ChannelId) {
    none_pending(service, id).await;
    settled(service, id).await;
}

/// Waits until the bot has no fetch pending.
async fn none_pending(service: &Service, id: &ChannelId) {
    let slot = domain::SlotLabel::parse("referee").expect("label");
    for _ in 0..2000 {
        let pending = service
            .inner
            .store
            .fetches_of(id, &slot)
            .await
            .expect("fetches");
        if pending.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("fetches still pending after 10 s");
}

async fn records(
    service: &Service,
    id: &ChannelId,
) -> Vec<(String, domain::attestation::Attestation)> {
    history(service, id)
        .await
        .iter()
        .filter_map(|message| match message.notice()?.ok()? {
            Notice::FetchAttested {
                tag, attestation, ..
            } => Some((tag, *attestation)),
            _ => None,
        })
        .collect()
}

async fn bot_lines(service: &Service, id: &ChannelId) -> Vec<String> {
    history(service, id)
        .await
        .iter()
        .filter(|message| message.kind == MessageKind::Bot)
        .filter_map(|message| message.body.text.clone())
        .collect()
}

fn url(server: &Server) -> String {
    format!("https://localhost:{}/page", server.address.port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_is_answered_once_with_a_signed_record_the_bot_reads_and_replay_checks() {
    let pki = pki();
    let server = serve(&pki, Answer::Page).await;
    let (service, _dir) = service_with(&pki, |_, _| {}).await;
    let alice = person("alice");
    let id = channel_with_bot(&service, &alice, "fetches", FETCH_BOT).await;
    alice_says(&service, &id, &format!("get {}", url(&server))).await;
    answered(&service, &id).await;

    let records = records(&service, &id).await;
    assert_eq!(records.len(), 1, "answered once");
    let (tag, record) = &records[0];
    assert!(tag.starts_with('t'));
    assert_eq!(record.status, Some(200));
    assert_eq!(
        record.body.as_ref().and_then(|b| b.text.as_deref()),
        Some(PAGE)
    );
    assert_eq!(
        bot_lines(&service, &id).await,
        [format!("got {tag} 200 {}", PAGE.trim())]
    );
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);

    close(&service, &alice, &id).await;
    let export = crate::export_everything(service.store(), id.as_str(), service.now())
        .await
        .expect("export");
    let replays = crate::export::tests::verified(&service, &export)
        .await
        .expect("the transcript verifies");
    assert_eq!(
        replays[0].end,
        transcript::ReplayEnd::Complete,
        "{replays:?}"
    );
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        1,
        "the replay read the record and fetched nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_records_too_and_nothing_connects() {
    let pki = pki();
    let server = serve(&pki, Answer::Page).await;
    let (service, _dir) = service_with(&pki, |policy, fetch| {
        policy.allow_loopback = false;
        fetch.per_channel_per_minute = 2;
    })
    .await;
    let id = channel_with_bot(&service, &person("alice"), "fetches", FETCH_BOT).await;
    for _ in 0..3 {
        alice_says(&service, &id, &format!("get {}", url(&server))).await;
        answered(&service, &id).await;
    }
    let codes: Vec<_> = records(&service, &id)
        .await
        .iter()
        .map(|(_, record)| record.error.as_ref().map(|failure| failure.code))
        .collect();
    assert_eq!(
        codes,
        [
            Some(FetchFailureCode::AddressRefused),
            Some(FetchFailureCode::AddressRefused),
            Some(FetchFailureCode::RateLimited),
        ]
    );
    assert_eq!(server.connections.load(Ordering::SeqCst), 0);
    assert!(bot_lines(&service, &id).await[0].contains("ADDRESS_REFUSED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_eight_pending_fetches_the_event_fails_whole() {
    let pki = pki();
    // A server that never answers keeps the fetches pending while the test asks for more.
    let server = serve(&pki, Answer::Silence).await;
    let (service, _dir) = service_with(&pki, |policy, _| {
        policy.timeout = Duration::from_secs(30);
    })
    .await;
    let id = channel_with_bot(&service, &person("alice"), "fetches", FETCH_BOT).await;
    alice_says(&service, &id, &format!("get4 {}", url(&server))).await;
    alice_says(&service, &id, &format!("get4 {}", url(&server))).await;
    alice_says(&service, &id, &format!("get {}", url(&server))).await;
    let failure =
        history(&service, &id)
            .await
            .iter()
            .find_map(|message| match message.notice()?.ok()? {
                Notice::BotError { kind, message, .. } => Some((kind, message)),
                _ => None,
            });
    let (kind, message) = failure.expect("the ninth request fails its event");
    assert_eq!(kind, "bad_argument");
    assert!(
        message.contains("8 fetches pending") || message.contains("9 fetches"),
        "{message}"
    );
    let slot = domain::SlotLabel::parse("referee").expect("label");
    let pending = service.inner.store.fetches_of(&id, &slot).await.expect("f");
    assert_eq!(pending.len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_that_closes_drops_its_fetches_unanswered() {
    let pki = pki();
    let server = serve(&pki, Answer::Silence).await;
    let (service, _dir) = service_with(&pki, |policy, _| {
        policy.timeout = Duration::from_millis(500);
    })
    .await;
    let alice = person("alice");
    let id = channel_with_bot(&service, &alice, "fetches", FETCH_BOT).await;
    alice_says(&service, &id, &format!("get {}", url(&server))).await;
    close(&service, &alice, &id).await;
    none_pending(&service, &id).await;
    assert!(
        records(&service, &id).await.is_empty(),
        "no record after the close"
    );
}

/// A server that signs its own history cannot slip in a record no bot asked for, nor one
/// signed for another place: the replay refuses the first, the signature check the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_the_server_fakes_is_caught() {
    let pki = pki();
    let server = serve(&pki, Answer::Page).await;
    let (service, _dir) = service_with(&pki, |_, _| {}).await;
    let alice = person("alice");
    let id = channel_with_bot(&service, &alice, "fetches", FETCH_BOT).await;
    alice_says(&service, &id, &format!("get {}", url(&server))).await;
    answered(&service, &id).await;
    close(&service, &alice, &id).await;
    let honest = crate::export_everything(service.store(), id.as_str(), service.now())
        .await
        .expect("export");
    let index = honest
        .messages
        .iter()
        .position(|message| {
            message
                .message()
                .ok()
                .flatten()
                .and_then(|message| message.notice()?.ok())
                .is_some_and(|notice| matches!(notice, Notice::FetchAttested { .. }))
        })
        .expect("a fetch_attested notice");
    let keyring = service.keyring().await.expect("keyring");

    type Lie = fn(&mut Notice);
    let lies: [(&str, Lie, bool); 3] = [
        // Re-signed properly, but for a fetch the bot never asked for.
        (
            "never asked",
            |notice| {
                if let Notice::FetchAttested { tag, .. } = notice {
                    *tag = "invented".into();
                }
            },
            true,
        ),
        (
            "another URL",
            |notice| {
                if let Notice::FetchAttested { attestation, .. } = notice {
                    attestation.url = "https://example.com/other".into();
                }
            },
            true,
        ),
        // The body changed and the old signature kept.
        (
            "another body",
            |notice| {
                if let Notice::FetchAttested { attestation, .. } = notice
                    && let Some(body) = attestation.body.as_mut()
                {
                    body.text = Some("the sky is green\n".into());
                }
            },
            false,
        ),
    ];
    for (lie, change, resign_record) in lies {
        let mut forged = honest.clone();
        let mut message = forged.messages[index]
            .message()
            .expect("decodes")
            .expect("readable");
        let mut notice = message.notice().expect("a notice").expect("decodes");
        change(&mut notice);
        if resign_record
            && let Notice::FetchAttested {
                slot,
                tag,
                requested_by,
                attestation,
                witness,
            } = &mut notice
        {
            *witness = keyring.sign_attestation(&transcript::signing::AttestationStatement {
                channel: &id,
                slot,
                tag,
                requested_by: *requested_by,
                attestation,
            });
        }
        message.body = notice.body(message.at);
        forged.messages[index] = transcript::export::ExportedMessage::readable(&message);
        crate::export::tests::resign(&service, &mut forged).await;
        let divergence = match transcript::check(&forged, &[]) {
            Err(divergence) => divergence,
            Ok(_) => crate::export::tests::verified(&service, &forged)
                .await
                .expect_err(lie),
        };
        assert_eq!(divergence.seq, Some(message.seq.0), "{lie}: {divergence}");
        assert!(divergence.what.contains("fetch"), "{lie}: {divergence}");
    }
}
