//! How much one bot event costs: runs GuessBot moves (and ChessBot moves) in fresh runtimes and
//! reports percentiles, and builds the same move as a [`Job`] for measuring it through a worker
//! process.

use std::time::{Duration, Instant};

use domain::{Body, ChannelId, Message, MessageKind, Seq, SlotKind, SlotLabel, Timestamp};

use crate::builtin::builtin;
use crate::event::{BotSeed, Event, EventContext, Player, SlotInfo};
use crate::job::Job;
use crate::limits::Limits;
use crate::sandbox::run_event;
use crate::source::BotSource;

/// Per-event cost of a GuessBot move (a wrong guess, so the game goes on) in this thread,
/// measured over `iterations` runs after a few warm-up runs. Returns (p50, p99).
pub fn event_cost(iterations: usize) -> (Duration, Duration) {
    job_cost(
        &guess_move(builtin("guess").expect("GuessBot is builtin")),
        iterations,
    )
}

/// Per-event cost of a ChessBot move in a middle game ([`chess_move`]), measured like
/// [`event_cost`]. Returns (p50, p99).
pub fn chess_event_cost(iterations: usize) -> (Duration, Duration) {
    job_cost(&chess_move(), iterations)
}

fn job_cost(job: &Job, iterations: usize) -> (Duration, Duration) {
    let mut samples = Vec::with_capacity(iterations);
    for round in 0..iterations + 5 {
        let started = Instant::now();
        let reaction = job.run();
        let elapsed = started.elapsed();
        assert!(reaction.is_ok(), "the move succeeds: {reaction:?}");
        if round >= 5 {
            samples.push(elapsed);
        }
    }
    samples.sort();
    let percentile = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
    (percentile(50), percentile(99))
}

/// The GuessBot-like game in Python that the tests play, for measuring the Python runtime.
pub const PYTHON_GUESS: &str = include_str!("../tests/fixtures/guess.py");

/// A GuessBot move as a job: `bot` (GuessBot, or a game that keeps its secret in
/// `state.target` or `state.secret`) is set up with two players, and the job is a wrong guess, so
/// the game goes on however often it runs.
pub fn guess_move(bot: BotSource) -> Job {
    let limits = Limits::default();
    let mut context = two_player_game(&bot, &[]);
    let target = context
        .state
        .as_ref()
        .and_then(|state| state.get("target").or_else(|| state.get("secret")))
        .and_then(serde_json::Value::as_i64)
        .expect("GuessBot keeps its target in state");
    let wrong_guess = if target == 1 { 2 } else { 1 };
    let guess = Event::Message(Message {
        seq: Seq(10),
        kind: MessageKind::User,
        sender: Some(slot("alice")),
        sender_name: "Alice".into(),
        body: Body::new(Some(wrong_guess.to_string()), None).expect("short text"),
        to: None,
        at: Timestamp(1_700_000_000_500),
        hash: domain::ChainHash::genesis(),
        nonce: None,
    });
    context.event_seq = Seq(10);
    Job::event(bot, context, &guess, limits)
}

/// A ChessBot move as a job: white's 11th move, Nbd2, after 20 plies of a Ruy Lopez (Breyer
/// variation) played through the bot, so the job parses SAN with a disambiguation, checks it
/// against the legal moves, and posts the board, the PGN and the legal replies.
pub fn chess_move() -> Job {
    const OPENING: [&str; 20] = [
        "e4", "e5", "Nf3", "Nc6", "Bb5", "a6", "Ba4", "Nf6", "O-O", "Be7", "Re1", "b5", "Bb3",
        "d6", "c3", "O-O", "h3", "Nb8", "d4", "Nbd7",
    ];
    let bot = builtin("chess").expect("ChessBot is builtin");
    let context = two_player_game(&bot, &OPENING);
    Job::event(
        bot,
        context.clone(),
        &user_message(&context, "alice", "Nbd2"),
        Limits::default(),
    )
}

/// A user message from `sender` (one of the two players) at the context's seq.
fn user_message(context: &EventContext, sender: &str, text: &str) -> Event {
    Event::Message(Message {
        seq: context.event_seq,
        kind: MessageKind::User,
        sender: Some(slot(sender)),
        sender_name: sender.to_owned(),
        body: Body::new(Some(text.to_owned()), None).expect("short text"),
        to: None,
        at: context.now,
        hash: domain::ChainHash::genesis(),
        nonce: None,
    })
}

/// `bot` attached to a channel, then alice and bob join (alice first), then they post `moves`
/// in turn, starting with alice; returns the context of the next event (its state included).
fn two_player_game(bot: &BotSource, moves: &[&str]) -> EventContext {
    let limits = Limits::default();
    let players = [
        Player {
            slot: slot("alice"),
            name: "Alice".into(),
        },
        Player {
            slot: slot("bob"),
            name: "Bob".into(),
        },
    ];
    let mut context = EventContext {
        channel_id: ChannelId::from_random([1; 12]),
        bot_slot: slot("referee"),
        event_seq: Seq(1),
        now: Timestamp(1_700_000_000_000),
        slots: vec![
            SlotInfo {
                slot: slot("referee"),
                kind: SlotKind::Bot,
                holder: None,
            },
            SlotInfo {
                slot: slot("alice"),
                kind: SlotKind::Invite,
                holder: Some("Alice".into()),
            },
            SlotInfo {
                slot: slot("bob"),
                kind: SlotKind::Invite,
                holder: Some("Bob".into()),
            },
        ],
        players: Vec::new(),
        params: serde_json::json!({}),
        state: None,
        seed: BotSeed([42; 32]),
        reveal_private: true,
    };
    // Set the game up: init, then both players join; the first joiner has the first turn.
    let mut events = vec![Event::Init];
    events.extend(players.iter().cloned().map(Event::Join));
    for (index, event) in events.iter().enumerate() {
        context.event_seq = Seq(index as i64 + 1);
        if let Event::Join(player) = event {
            context.players.push(player.clone());
        }
        let reaction = run_event(bot, &context, event, &limits).expect("setup events succeed");
        if let Some(state) = reaction.state {
            context.state = Some(state);
        }
    }
    let mut seq = events.len() as i64;
    for (ply, text) in moves.iter().enumerate() {
        seq += 1;
        context.event_seq = Seq(seq);
        let sender = if ply % 2 == 0 { "alice" } else { "bob" };
        let event = user_message(&context, sender, text);
        let reaction = run_event(bot, &context, &event, &limits).expect("setup moves succeed");
        if let Some(state) = reaction.state {
            context.state = Some(state);
        }
    }
    context.event_seq = Seq(seq + 1);
    context
}

fn slot(label: &str) -> SlotLabel {
    SlotLabel::parse(label).expect("static label")
}
