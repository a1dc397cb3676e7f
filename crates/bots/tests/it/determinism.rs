//! Same code, seed and events give the same outputs; the ambient clock and randomness are gone.

use bots::{BotSeed, Event, builtin, run_event};
use domain::{Body, Message, MessageKind, Seq, Timestamp};

use crate::support::{NOW_MS, context, on_init, player, slot, source, texts};

const PROBE: &str = r#"
    ctx.post([Math.random(), Math.random()].join(","));
    ctx.post([Date.now(), new Date().getTime(), new Date(0).getTime(), typeof Date()].join(","));
    ctx.post(String(new (Object.getPrototypeOf(new Date()).constructor)().getTime()));
    ctx.post(ctx.random_bytes(8) + " " + ctx.random_int(1, 1000000));
    ctx.post(String(ctx.now()));
    class Later extends Date {}
    ctx.post(String(new Later().getTime() === ctx.now() && new Later() instanceof Later));
"#;

fn probe(seed: u8, event_seq: i64) -> Vec<String> {
    let mut ctx = context();
    ctx.seed = BotSeed([seed; 32]);
    ctx.event_seq = Seq(event_seq);
    let reaction = run_event(
        &source(&on_init(PROBE)),
        &ctx,
        &Event::Init,
        &crate::support::relaxed_limits(),
    )
    .expect("probe runs");
    texts(&reaction).into_iter().map(str::to_owned).collect()
}

#[test]
fn clock_is_the_event_time() {
    let out = probe(1, 1);
    assert_eq!(out[1], format!("{NOW_MS},{NOW_MS},0,string"));
    assert_eq!(out[2], NOW_MS.to_string(), "the real Date is not reachable");
    assert_eq!(out[4], NOW_MS.to_string());
    assert_eq!(out[5], "true", "subclassing Date still works");
}

#[test]
fn randomness_replays_from_seed_and_event() {
    assert_eq!(probe(1, 1), probe(1, 1));
    assert_ne!(
        probe(1, 1)[0],
        probe(2, 1)[0],
        "another seed, other numbers"
    );
    assert_ne!(
        probe(1, 1)[3],
        probe(1, 2)[3],
        "another event, other numbers"
    );
}

#[test]
fn a_whole_guess_game_replays_identically() {
    let play = || {
        let bot = builtin("guess").expect("builtin");
        let mut ctx = context();
        ctx.players.clear();
        ctx.params = serde_json::json!({"turn_order": "random"});
        let limits = crate::support::relaxed_limits();
        let mut transcript = Vec::new();
        let mut events = vec![
            Event::Init,
            Event::Join(player("alice")),
            Event::Join(player("bob")),
        ];
        for guess in [50, 25, 75, 10, 90] {
            for sender in ["alice", "bob"] {
                events.push(Event::Message(Message {
                    seq: Seq(0),
                    kind: MessageKind::User,
                    sender: Some(slot(sender)),
                    sender_name: sender.into(),
                    body: Body::new(Some(guess.to_string()), None).expect("valid"),
                    to: None,
                    at: Timestamp(NOW_MS),
                    hash: domain::ChainHash::genesis(),
                    nonce: None,
                }));
            }
        }
        for (index, event) in events.iter().enumerate() {
            ctx.event_seq = Seq(index as i64 + 1);
            if let Event::Join(p) = event {
                ctx.players.push(p.clone());
            }
            let reaction = run_event(&bot, &ctx, event, &limits).expect("game events succeed");
            if reaction.state.is_some() {
                ctx.state = reaction.state.clone();
            }
            transcript.push(format!("{:?}", reaction.posts));
        }
        (transcript, ctx.state)
    };
    assert_eq!(play(), play());
}
