//! ChessBot: its engine checked by perft counts and random games through a test harness
//! appended to the bot's source (`chess_harness.js`, which replaces `on_init` and calls the
//! engine's top-level functions; the bot itself has no test API), and whole games played event
//! by event through the real bot.

use std::time::{Duration, Instant};

use bots::{BotSource, Event, Limits, builtin, run_event};
use serde_json::{Value, json};

use crate::support::context;

const HARNESS: &str = include_str!("chess_harness.js");

/// Runs the harness op `params` in QuickJS with room for a long computation, and returns the
/// state it saved.
fn harness(params: Value) -> Value {
    let chess = builtin("chess").expect("ChessBot is builtin");
    let code = format!("{}\n{HARNESS}", chess.source());
    let bot = BotSource::new("chess-harness.js", code).expect("small enough");
    let mut context = context();
    context.params = params;
    let limits = Limits {
        cpu: Duration::from_secs(600),
        ..Limits::default()
    };
    let reaction = run_event(&bot, &context, &Event::Init, &limits).expect("the harness runs");
    reaction.state.expect("the harness saves its findings")
}

#[track_caller]
fn perft(name: &str, fen: &str, expected: &[u64]) {
    for (depth, &nodes) in (1..).zip(expected) {
        let started = Instant::now();
        let found = harness(json!({"op": "perft", "fen": fen, "depth": depth}));
        println!(
            "perft {name} depth {depth}: {} nodes in {:.2} s",
            found["nodes"],
            started.elapsed().as_secs_f64()
        );
        assert_eq!(found["nodes"], nodes, "perft({depth}) of {name}: {fen}");
    }
}

#[test]
fn perft_from_the_start_position() {
    perft(
        "start",
        "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1",
        &[20, 400, 8_902, 197_281],
    );
}

#[test]
fn perft_kiwipete() {
    perft(
        "kiwipete",
        "r3k2r/p1ppqpb1/bn2pnp1/3PN3/1p2P3/2N2Q1p/PPPBBPPP/R3K2R w KQkq - 0 1",
        &[48, 2_039, 97_862],
    );
}

#[test]
fn perft_position_3() {
    perft(
        "position 3",
        "8/2p5/3p4/KP5r/1R3p1k/8/4P1P1/8 w - - 0 1",
        &[14, 191, 2_812, 43_238],
    );
}

#[test]
fn perft_positions_4_and_5() {
    perft(
        "position 4",
        "r3k2r/Pppp1ppp/1b3nbN/nP6/BBP1P3/q4N2/Pp1P2PP/R2Q1RK1 w kq - 0 1",
        &[6, 264, 9_467],
    );
    perft(
        "position 5",
        "rnbq1k1r/pp1Pbppp/2p5/8/2B5/8/PPP1NnPP/RNBQK2R w KQ - 1 8",
        &[44, 1_486, 62_379],
    );
}

/// A count from the environment variable `name`, or `fallback`.
fn env_count(name: &str, fallback: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(fallback)
}

/// Random games (seeded; captures preferred half of the time so that games reach endgames)
/// checked ply by ply against a board reader written apart from the engine: no move leaves the
/// mover's king in check, unmake restores the FEN, FEN round-trips, every legal move's SAN and
/// UCI read back as that move (on every `CHESS_ROUNDTRIP_EVERY`th ply), the halfmove clock counts as the rules say, and the status
/// (checkmate, stalemate, insufficient material, threefold, 50 moves, check) is the expected
/// one; a game ends only on a final status.
#[test]
fn random_games_keep_every_invariant() {
    // Sized for CI (about 45 s in a debug build); for longer runs, e.g.
    // CHESS_GAMES=2000 CHESS_ROUNDTRIP_EVERY=1 (every legal move of every ply, about 3 min).
    let games = env_count("CHESS_GAMES", 1_000);
    let roundtrip_every = env_count("CHESS_ROUNDTRIP_EVERY", 8).max(1);
    let started = Instant::now();
    let found = harness(json!({
        "op": "games",
        "seed": 20_240_612,
        "games": games,
        "plies": 200,
        "roundtrip_every": roundtrip_every,
    }));
    println!(
        "{games} random games, {} plies, {} SAN/UCI round trips in {:.1} s; endings {}",
        found["plies"],
        found["roundtrips"],
        started.elapsed().as_secs_f64(),
        found["endings"]
    );
    assert_eq!(found["errors"], json!([]), "{found}");
    let endings = &found["endings"];
    for ending in [
        "checkmate",
        "stalemate",
        "insufficient_material",
        "threefold",
        "fifty_moves",
    ] {
        assert!(
            endings[ending].as_u64().unwrap_or(0) > 0 || games < 500,
            "{games} games reach {ending}: {endings}"
        );
    }
}
