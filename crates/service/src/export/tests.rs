//! Exports checked by the verifier: random games of every builtin bot, played through the
//! service over a real SQLite file and real worker processes, each exported and verified
//! (chain, signatures, hashes, and every bot event replayed); then tampered with.

use std::time::Duration;

use domain::PrincipalId;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use transcript::export::Transcript;
use transcript::{Divergence, ReplayEnd};

use super::*;
use crate::service::{CreateRequest, ServiceSettings};
use crate::testing::{close, person, service_with, settled};
use crate::{BotRequest, PostRequest};

async fn service() -> (Service, store::testing::TestDatabase) {
    service_with(ServiceSettings::default()).await
}

/// Checks an export and replays its bots on the service's workers, through its JSON.
pub(crate) async fn verified(
    service: &Service,
    transcript: &Transcript,
) -> Result<Vec<transcript::BotReplay>, Divergence> {
    let json = serde_json::to_string(transcript).expect("serialize");
    let read: Transcript = serde_json::from_str(&json).expect("the export reads back");
    assert_eq!(&read, transcript, "the JSON round trip is exact");
    transcript::check(&read, &[])?;
    let limits = bots::Limits {
        cpu: Duration::from_secs(2),
        ..bots::Limits::default()
    };
    transcript::replay(&read, &limits, async |job| {
        service
            .inner
            .bots
            .run(&PrincipalId::new("verifier"), "verify", job)
            .await
            .map_err(|error| error.to_string())
    })
    .await
}

async fn post(service: &Service, who: &Caller, id: &ChannelId, text: String, to: Option<&str>) {
    // Refusals (a closed game, a player who left) are part of random play.
    let _ = service
        .post_message(
            who,
            PostRequest {
                channel_id: id.to_string(),
                text: Some(text),
                to: to.map(str::to_owned),
                ..PostRequest::default()
            },
        )
        .await;
}

/// One random game of `preset`: two or three players join, chat, move (in and out of turn,
/// valid or not, publicly and privately to the bot), sometimes leave; then the channel closes.
/// Moves are drawn from what the bot's game takes ([`random_move`]), so games get somewhere.
async fn random_game(service: &Service, preset: &str, rng: &mut StdRng) -> ChannelId {
    let names = ["alice", "bob", "carol"];
    let players = rng.random_range(2..=3);
    let slots: Vec<String> = names[..players]
        .iter()
        .map(|name| format!("invite:{name}"))
        .collect();
    let created = service
        .create_channel(
            &person("alice"),
            CreateRequest {
                // The sealed exchange refuses a channel that reveals private messages.
                reveal_private: Some(preset != "sealed" && rng.random_bool(0.5)),
                ..CreateRequest::new("random", &slots).with_bot(BotRequest {
                    preset: Some(preset.into()),
                    params: Some(random_params(preset, players, rng)),
                    ..BotRequest::default()
                })
            },
        )
        .await
        .expect("create");
    let id = created.channel.id.clone();
    for (slot, code) in &created.invites {
        service
            .join_channel(&person(slot.as_str()), code)
            .await
            .expect("join");
    }
    for _ in 0..rng.random_range(3..25) {
        // Turn games need the bot's answer to the last move to pick the next; the others not.
        let latest = if matches!(preset, "chess" | "blackjack" | "tictactoe") {
            settled(service, &id).await;
            latest_bot_data(service, &id).await
        } else {
            serde_json::Value::Null
        };
        // Mostly whoever the bot says is to move, so the game goes on; sometimes anyone.
        let mover = whose_turn(&latest)
            .filter(|slot| names[..players].contains(&slot.as_str()) && rng.random_bool(0.8))
            .unwrap_or_else(|| names[rng.random_range(0..players)].to_owned());
        let (text, to) = random_move(preset, &latest, rng);
        post(service, &person(&mover), &id, text, to).await;
        if rng.random_bool(0.04) {
            let _ = service
                .leave_channel(&person(&mover), id.as_str(), None)
                .await;
        }
    }
    settled(service, &id).await;
    close(service, &person("alice"), &id).await;
    id
}

fn random_params(preset: &str, players: usize, rng: &mut StdRng) -> serde_json::Value {
    match preset {
        "guess" => {
            let max = rng.random_range(4..40);
            json!({"min": 1, "max": max})
        }
        "tictactoe" => {
            let first = if rng.random_bool(0.5) {
                "join"
            } else {
                "random"
            };
            json!({ "first": first })
        }
        "rps" => {
            let best_of = [1, 3, 5][rng.random_range(0..3)];
            json!({"best_of": best_of})
        }
        "chess" => {
            let colors = if rng.random_bool(0.5) {
                "join"
            } else {
                "random"
            };
            json!({ "colors": colors })
        }
        "blackjack" => {
            let hands = rng.random_range(1..4);
            json!({"hands": hands, "min_players": players, "decks": 1, "chips": 100})
        }
        "sealed" => {
            if rng.random_bool(0.5) {
                json!({"question": "yes or no?", "participants": players})
            } else {
                let price = if rng.random_bool(0.5) {
                    "first"
                } else {
                    "second"
                };
                json!({"question": "your bid?", "participants": players, "mode": "auction",
                       "min_bid": 1, "max_bid": 50, "price": price})
            }
        }
        _ => json!({}),
    }
}

/// The `data` of the bot's newest post (private ones included).
async fn latest_bot_data(service: &Service, id: &ChannelId) -> serde_json::Value {
    let messages = service
        .inner
        .store
        .messages(
            id,
            store::Audience::Everything,
            domain::Seq(0),
            domain::Seq(i64::MAX),
            1_000,
        )
        .await
        .expect("history");
    messages
        .iter()
        .rev()
        .find(|message| message.kind == domain::MessageKind::Bot && message.to.is_none())
        .and_then(|message| message.body.data.clone())
        .map(serde_json::Value::Object)
        .unwrap_or_default()
}

/// The slot a game's post says is to move: chess's `next`, tic-tac-toe's `turn`, Blackjack's
/// `turn.slot`.
fn whose_turn(data: &serde_json::Value) -> Option<String> {
    [&data["next"], &data["turn"], &data["turn"]["slot"]]
        .into_iter()
        .find_map(|value| value.as_str().map(str::to_owned))
}

/// A move for `preset` given the bot's newest post: mostly one the game takes (a legal chess
/// move from its list, a bet when betting is open), sometimes a wrong one or chat. Returns the
/// text and, for a private message, the bot's slot.
fn random_move(
    preset: &str,
    latest: &serde_json::Value,
    rng: &mut StdRng,
) -> (String, Option<&'static str>) {
    let pick =
        |rng: &mut StdRng, options: &[&str]| options[rng.random_range(0..options.len())].to_owned();
    let private = |rng: &mut StdRng, p: f64| rng.random_bool(p).then_some("referee");
    if rng.random_bool(0.08) {
        return (
            pick(rng, &["hello there", "resign", "concede"]),
            private(rng, 0.2),
        );
    }
    match preset {
        "guess" => (
            format!("guess {}", rng.random_range(-1..42)),
            private(rng, 0.3),
        ),
        "tictactoe" => {
            let cells = [
                "1", "2", "3", "4", "5", "6", "7", "8", "9", "b2", "a3", "c1", "0", "d4",
            ];
            (pick(rng, &cells), private(rng, 0.2))
        }
        "rps" => (
            pick(rng, &["rock", "paper", "scissors", "r", "play s", "lizard"]),
            private(rng, 0.85),
        ),
        "chess" => {
            let legal: Vec<&str> = latest["legal"]
                .as_array()
                .map(|moves| moves.iter().filter_map(serde_json::Value::as_str).collect())
                .unwrap_or_default();
            let text = if !legal.is_empty() && rng.random_bool(0.85) {
                pick(rng, &legal)
            } else {
                pick(
                    rng,
                    &["e4", "e2e4", "Nf3", "Ke2", "O-O", "draw", "accept", "e9"],
                )
            };
            (text, private(rng, 0.1))
        }
        "blackjack" => match latest["type"].as_str() {
            Some("entropy_round") => (format!("entropy {}", rng.random::<u32>()), Some("referee")),
            Some("betting") => (
                format!("bet {}", rng.random_range(5..40)),
                private(rng, 0.1),
            ),
            _ => (
                pick(
                    rng,
                    &["hit", "stand", "double", "split", "bet 10", "entropy x"],
                ),
                private(rng, 0.1),
            ),
        },
        "sealed" => {
            let answer = if rng.random_bool(0.1) {
                "withdraw".to_owned()
            } else {
                pick(rng, &["yes", "no", "bid 7", "12", "0", "bid 51"])
            };
            (answer, private(rng, 0.9))
        }
        // Addresses the witness refuses without going out: no test reaches the internet.
        "witness" => (
            pick(
                rng,
                &[
                    "fetch https://10.0.0.1/",
                    "fetch https://169.254.169.254/latest/meta-data/",
                    "fetch http://example.com/",
                    "fetch https://[::1]/",
                ],
            ),
            private(rng, 0.2),
        ),
        "judge" => (
            pick(rng, &["accept sha256:00", "confirm a", "hello", "dispute"]),
            private(rng, 0.1),
        ),
        _ => ("hello".into(), None),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_games_of_every_builtin_bot_export_and_verify() {
    let (service, _dir) = service().await;
    let games_per_bot = 100;
    for (index, bot) in bots::catalog().iter().enumerate() {
        let mut rng = StdRng::seed_from_u64(0x5eed_0000 + index as u64);
        for game in 0..games_per_bot {
            let id = random_game(&service, bot.name, &mut rng).await;
            let everything = export_everything(&service.inner.store, id.as_str(), service.now())
                .await
                .expect("export");
            let replays = verified(&service, &everything)
                .await
                .unwrap_or_else(|divergence| {
                    panic!("{} game {game} ({id}): {divergence}", bot.name)
                });
            assert_eq!(replays.len(), 1);
            assert_eq!(
                replays[0].end,
                ReplayEnd::Complete,
                "{} game {game}",
                bot.name
            );
            assert!(replays[0].events >= 1, "at least on_init");

            // A player's view: what they may not read is withheld, and what they hold verifies.
            // Players may have left; a channel's owner may always export.
            let channel = service.inner.store.load_channel(&id).await.expect("load");
            let viewer = channel
                .slots
                .iter()
                .rev()
                .find_map(|slot| slot.seat.as_ref().map(|seat| seat.holder_name.clone()))
                .unwrap_or_else(|| "alice".to_owned());
            let view = service
                .export_transcript(&person(&viewer), id.as_str())
                .await
                .expect("a player's export");
            assert_eq!(view.messages.len(), everything.messages.len());
            for (mine, all) in view.messages.iter().zip(&everything.messages) {
                assert_eq!(mine.hash, all.hash, "one chain for every viewer");
            }
            verified(&service, &view)
                .await
                .unwrap_or_else(|divergence| {
                    for message in &view.messages {
                        eprintln!(
                            "{} {:?} {:?}->{:?} {:?} {}",
                            message.seq,
                            message.kind,
                            message.sender,
                            message.to,
                            message.text,
                            message.withheld
                        );
                    }
                    panic!("{viewer}'s view of {id}: {divergence}")
                });
        }
    }
}

/// A finished GuessBot game, exported whole.
async fn finished_game(service: &Service) -> Transcript {
    let mut rng = StdRng::seed_from_u64(7);
    let id = random_game(service, "guess", &mut rng).await;
    export_everything(&service.inner.store, id.as_str(), service.now())
        .await
        .expect("export")
}

/// Every single-byte change of an export's JSON is caught: it no longer reads, the check
/// names a divergence, or it reads as the same transcript but for the fields nothing covers
/// (when it was exported, whose view it is, and the keys' informational dates).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_single_byte_tamper_of_an_export_is_caught() {
    let (service, _dir) = service().await;
    let original = finished_game(&service).await;
    let json = serde_json::to_string(&original).expect("json");
    let uncovered = |mut transcript: Transcript| {
        transcript.exported_at = 0;
        transcript.viewer = transcript::export::Viewer::Operator { operator: true };
        for key in &mut transcript.keys {
            key.created_at = 0;
            key.retired_at = None;
        }
        transcript
    };
    let baseline = uncovered(original.clone());
    let (mut unreadable, mut diverged) = (0, 0);
    for position in 0..json.len() {
        let mut bytes = json.clone().into_bytes();
        bytes[position] = match bytes[position] {
            b'0'..=b'8' | b'a'..=b'y' | b'A'..=b'Y' => bytes[position] + 1,
            b'9' => b'0',
            b'z' | b'Z' => b'a',
            b'"' => b'\'',
            _ => b'x',
        };
        let Ok(tampered) = std::str::from_utf8(&bytes)
            .map_err(drop)
            .and_then(|text| serde_json::from_str::<Transcript>(text).map_err(drop))
        else {
            unreadable += 1;
            continue;
        };
        match transcript::check(&tampered, &[]) {
            Err(_) => diverged += 1,
            Ok(_) => assert!(
                uncovered(tampered) == baseline,
                "a tamper at byte {position} passed: …{}…",
                String::from_utf8_lossy(
                    &json.as_bytes()[position.saturating_sub(40)..(position + 40).min(json.len())]
                )
            ),
        }
    }
    assert!(
        diverged > json.len() / 2,
        "{diverged} of {} caught by the check",
        json.len()
    );
    assert!(unreadable > 0);
}

/// Named tampers, each caught where it happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_tamper_is_named() {
    let (service, _dir) = service().await;
    let original = finished_game(&service).await;
    let first_bot_post = original
        .messages
        .iter()
        .position(|message| message.kind.as_deref() == Some("bot"))
        .expect("a bot post");
    let first_user = original
        .messages
        .iter()
        .position(|message| message.kind.as_deref() == Some("user"))
        .expect("a user message");
    type Tamper = Box<dyn Fn(&mut Transcript)>;
    let cases: Vec<(&str, Tamper, &str)> = vec![
        (
            "message text",
            Box::new(move |t| t.messages[first_user].text = Some("42".into())),
            "does not hash",
        ),
        (
            "order",
            Box::new(|t| t.messages.swap(3, 4)),
            "message order",
        ),
        ("seq", Box::new(|t| t.messages[2].seq += 1), "message order"),
        (
            "sender",
            Box::new(move |t| t.messages[first_user].sender = Some("carol".into())),
            "does not hash",
        ),
        (
            "bot output",
            Box::new(move |t| t.messages[first_bot_post].text = Some("I cheat".into())),
            "does not hash",
        ),
        (
            "signature",
            Box::new(|t| t.head.signature = t.head.signature.chars().rev().collect()),
            "signature",
        ),
        (
            "seed",
            Box::new(|t| t.bots[0].seed = Some("00".repeat(32))),
            "commitment",
        ),
        ("code", Box::new(|t| t.bots[0].source.push(' ')), "code"),
        (
            "params",
            Box::new(|t| t.bots[0].params = json!({"min": 1, "max": 2})),
            "params",
        ),
        (
            "a head off the chain",
            Box::new(|t| t.head.seq = domain::Seq(t.head.seq.0 - 1)),
            "count",
        ),
    ];
    for (name, tamper, named) in cases {
        let mut tampered = original.clone();
        tamper(&mut tampered);
        let divergence = transcript::check(&tampered, &[]).expect_err(name);
        assert!(
            divergence.to_string().contains(named),
            "{name}: {divergence}"
        );
    }
}

/// Re-links every message and signs the new head with the server's own key: what a server that
/// lies would do.
pub(crate) async fn resign(service: &Service, transcript: &mut Transcript) {
    let keyring = service.keyring().await.expect("keyring");
    let channel = transcript.channel_id().expect("id");
    let mut link = domain::ChainHash::genesis();
    for message in &mut transcript.messages {
        let decoded = message.message().expect("decodes").expect("readable");
        link = link.link(&channel, &decoded);
        message.hash = link.as_str().to_owned();
    }
    transcript.head = keyring.sign(HeadStatement {
        channel,
        seq: transcript.head.seq,
        head: link.as_str().to_owned(),
        at: service.now(),
    });
}

/// Lies a signing server could tell besides changing a post: a bot post no event made, a
/// post in the referee's name passed off as a player's, a bot left out of the list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_lies_of_a_signing_server_are_caught() {
    let (service, _dir) = service().await;
    let original = finished_game(&service).await;

    // The last user message becomes a post of the referee's.
    let mut extra = original.clone();
    let last_user = extra
        .messages
        .iter()
        .rposition(|message| message.kind.as_deref() == Some("user"))
        .expect("a user message");
    extra.messages[last_user].kind = Some("bot".into());
    extra.messages[last_user].sender = Some("referee".into());
    extra.messages[last_user].sender_name = Some("guess".into());
    if extra.messages[last_user].to.is_some() {
        extra.messages[last_user].to = None;
        extra.messages[last_user].nonce = None;
    }
    resign(&service, &mut extra).await;
    transcript::check(&extra, &[]).expect("its chain and signature hold");
    verified(&service, &extra)
        .await
        .expect_err("no event made that post");

    // A referee's post passed off as a player's, which replay would not look at.
    let mut dressed = original.clone();
    let bot_post = dressed
        .messages
        .iter()
        .position(|message| message.kind.as_deref() == Some("bot"))
        .expect("a bot post");
    dressed.messages[bot_post].kind = Some("user".into());
    resign(&service, &mut dressed).await;
    let divergence = transcript::check(&dressed, &[]).expect_err("a user message from a bot slot");
    assert!(divergence.what.contains("who wrote"), "{divergence}");

    // The referee left out: its hashes and its run would go unchecked.
    let mut missing = original.clone();
    missing.bots.clear();
    let divergence = transcript::check(&missing, &[]).expect_err("a bot missing");
    assert!(divergence.what.contains("bots listed"), "{divergence}");
}

/// A server that rewrites history and signs it anyway: its chain and signature are valid, but
/// the replay finds the bot's code never said that, and a head kept from before contradicts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewritten_history_signed_by_the_server_is_caught() {
    let (service, _dir) = service().await;
    let original = finished_game(&service).await;
    let keyring = service.keyring().await.expect("keyring");
    let kept = original.head.clone();

    let mut forged = original.clone();
    let post = forged
        .messages
        .iter()
        .position(|message| message.kind.as_deref() == Some("bot") && message.seq > 4)
        .expect("a bot post after the start");
    forged.messages[post].text = Some("You lose, whatever you guessed.".into());
    resign(&service, &mut forged).await;
    transcript::check(&forged, &[]).expect("the forger's chain and signature hold");
    let divergence = verified(&service, &forged)
        .await
        .expect_err("the replay disagrees");
    assert_eq!(
        divergence.seq,
        Some(forged.messages[post].seq),
        "{divergence}"
    );

    let divergence =
        transcript::check(&forged, std::slice::from_ref(&kept)).expect_err("the kept head");
    assert!(divergence.what.contains("proof"), "{divergence}");
    let keys: Vec<_> = keyring.keys().to_vec();
    let proof =
        transcript::verify::contradiction(&kept, &forged.head, &keys).expect("contradiction");
    assert!(proof.what.contains("rewrote history"), "{proof}");
    assert!(transcript::verify::contradiction(&kept, &kept, &keys).is_none());
}

/// Only those who may see a channel export it, and a read-only credential may: an export
/// changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_members_export_and_reading_is_enough() {
    let (service, _dir) = service().await;
    let created = service
        .create_channel(
            &person("alice"),
            CreateRequest::new("private", &["invite:alice".into(), "invite:bob".into()]),
        )
        .await
        .expect("create");
    let id = created.channel.id.to_string();
    let refused = service
        .export_transcript(&person("mallory"), &id)
        .await
        .expect_err("a stranger");
    assert_eq!(refused.code(), domain::ErrorCode::NotMember);
    let reader = Caller::new(person("alice").principal, crate::Access::Read);
    let export = service
        .export_transcript(&reader, &id)
        .await
        .expect("a read-only credential exports");
    assert_eq!(
        export.viewer,
        transcript::export::Viewer::Participant {
            slots: vec!["alice".into()]
        }
    );
    transcript::check(&export, &[]).expect("verifies");
}
