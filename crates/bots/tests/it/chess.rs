//! ChessBot: its engine checked by perft counts and random games through a test harness
//! appended to the bot's source (`chess_harness.js`, which replaces `on_init` and calls the
//! engine's top-level functions; the bot itself has no test API), and whole games played event
//! by event through the real bot.

use std::time::{Duration, Instant};

use bots::{
    BotErrorKind, BotPost, BotSeed, BotSource, Event, EventContext, Limits, RunEnd, TimerRequest,
    builtin, run_event,
};
use domain::{Body, Message, MessageKind, Seq, Timestamp};
use serde_json::{Value, json};

use crate::support::{NOW_MS, context, player, relaxed_limits, slot};

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

// ---- Whole games through the real bot, event by event. ----

/// A channel with ChessBot attached: alice, bob and carol may join; watcher is a spectator.
/// Each event is one second after the last.
struct Game {
    context: EventContext,
    next_seq: i64,
    /// What the last event did besides posting: its end of the run and timer requests.
    end: Option<RunEnd>,
    timers: Vec<TimerRequest>,
}

impl Game {
    fn new(params: Value) -> (Self, Vec<BotPost>) {
        let mut context = context();
        context.params = params;
        context.players = Vec::new();
        let mut game = Self {
            context,
            next_seq: 1,
            end: None,
            timers: Vec::new(),
        };
        let posts = game.event(Event::Init);
        (game, posts)
    }

    /// A game between alice (white) and bob (black), started.
    fn started(params: Value) -> Self {
        let (mut game, _) = Self::new(params);
        game.join("alice");
        let start = only(&game.join("bob"), "start");
        assert_eq!(start["white"], "alice");
        game
    }

    fn now(&self) -> i64 {
        self.context.now.0
    }

    fn event(&mut self, event: Event) -> Vec<BotPost> {
        self.try_event(event).expect("ChessBot events succeed")
    }

    fn try_event(&mut self, event: Event) -> Result<Vec<BotPost>, bots::BotError> {
        self.context.event_seq = Seq(self.next_seq);
        self.context.now = Timestamp(NOW_MS + 1_000 * self.next_seq);
        self.next_seq += 1;
        let bot = builtin("chess").expect("ChessBot is builtin");
        let reaction = run_event(&bot, &self.context, &event, &relaxed_limits())?;
        if let Some(state) = reaction.state {
            self.context.state = Some(state);
        }
        self.end = reaction.end;
        self.timers = reaction.timers;
        Ok(reaction.posts)
    }

    fn join(&mut self, label: &str) -> Vec<BotPost> {
        let joined = player(label);
        if !self.context.players.contains(&joined) {
            self.context.players.push(joined.clone());
        }
        self.event(Event::Join(joined))
    }

    fn leave(&mut self, label: &str) -> Vec<BotPost> {
        self.context.players.retain(|p| p.slot.as_str() != label);
        self.event(Event::Leave(player(label)))
    }

    fn say(&mut self, label: &str, text: &str) -> Vec<BotPost> {
        let body = Body::new(Some(text.to_owned()), None).expect("valid text");
        self.post(label, body, None)
    }

    fn send_data(&mut self, label: &str, data: Value) -> Vec<BotPost> {
        let Value::Object(map) = data else {
            panic!("data is an object")
        };
        self.post(label, Body::new(None, Some(map)).expect("valid data"), None)
    }

    fn post(&mut self, label: &str, body: Body, to: Option<&str>) -> Vec<BotPost> {
        let seq = Seq(self.next_seq);
        self.event(Event::Message(Message {
            seq,
            kind: MessageKind::User,
            sender: Some(slot(label)),
            sender_name: player(label).name,
            body,
            to: to.map(slot),
            at: Timestamp(NOW_MS + 1_000 * seq.0),
            hash: domain::ChainHash::genesis(),
            nonce: None,
        }))
    }

    /// Fires the turn timer at `at` (ms since the epoch).
    fn timer_at(&mut self, at: i64) -> Vec<BotPost> {
        self.context.event_seq = Seq(self.next_seq);
        self.next_seq += 1;
        self.context.now = Timestamp(at);
        let bot = builtin("chess").expect("ChessBot is builtin");
        let event = Event::Timer { tag: "turn".into() };
        let reaction =
            run_event(&bot, &self.context, &event, &relaxed_limits()).expect("timers run");
        if let Some(state) = reaction.state {
            self.context.state = Some(state);
        }
        self.end = reaction.end;
        self.timers = reaction.timers;
        reaction.posts
    }

    fn state(&self) -> &Value {
        self.context.state.as_ref().expect("ChessBot keeps state")
    }

    /// Plays `moves` in turn from the side to move; each must be accepted. Returns the last
    /// move's posts.
    fn play(&mut self, moves: &[&str]) -> Vec<BotPost> {
        let mut posts = Vec::new();
        for text in moves {
            let mover = if self.state()["fen"]
                .as_str()
                .is_some_and(|fen| fen.contains(" w "))
            {
                "alice"
            } else {
                "bob"
            };
            posts = self.say(mover, text);
            let data = data(&posts[0]);
            assert_eq!(data["type"], "move", "{text}: {posts:?}");
            assert_eq!(posts[0].to, None, "moves are public");
        }
        posts
    }
}

fn data(post: &BotPost) -> Value {
    Value::Object(post.body.data.clone().expect("ChessBot posts carry data"))
}

/// The one post of `posts`, with its data type checked.
#[track_caller]
fn only(posts: &[BotPost], kind: &str) -> Value {
    assert_eq!(posts.len(), 1, "{posts:?}");
    let data = data(&posts[0]);
    assert_eq!(data["type"], kind, "{data}");
    data
}

#[track_caller]
fn violation(posts: &[BotPost], to: &str, code: &str) -> String {
    let data = only(posts, "violation");
    assert_eq!(data["code"], code, "{data}");
    assert_eq!(posts[0].to, Some(slot(to)), "violations are private");
    data["message"].as_str().unwrap_or_default().to_owned()
}

#[track_caller]
fn timer_set(game: &Game, ms: u64) {
    assert_eq!(
        game.timers,
        [TimerRequest::Set {
            tag: "turn".into(),
            ms
        }]
    );
}

#[test]
fn scholars_mate_from_start_to_result() {
    let (mut game, posts) = Game::new(json!({}));
    let rules = only(&posts, "rules");
    assert_eq!(rules["move_timeout_ms"], 60_000);
    violation(&game.say("alice", "e4"), "alice", "NOT_STARTED");
    assert!(game.join("alice").is_empty(), "one player is not enough");
    violation(&game.say("alice", "e4"), "alice", "NOT_STARTED");
    let posts = game.join("bob");
    let start = only(&posts, "start");
    assert_eq!(
        (start["white"].as_str(), start["black"].as_str()),
        (Some("alice"), Some("bob"))
    );
    assert_eq!(start["next"], "alice");
    assert_eq!(start["clock"]["deadline"], game.now() + 60_000);
    assert_eq!(start["legal"].as_array().map(Vec::len), Some(20));
    timer_set(&game, 60_000);
    let text = posts[0].body.text.as_deref().unwrap_or_default();
    assert!(text.contains("8 r n b q k b n r 8"), "{text}");
    assert!(text.contains("1 R N B Q K B N R 1"), "{text}");

    // SAN, UCI, "move …", data, move numbers and check marks are all read.
    let posts = game.say("alice", "e4");
    let moved = only(&posts, "move");
    assert_eq!(moved["san"], "e4");
    assert_eq!(moved["uci"], "e2e4");
    assert_eq!(moved["turn"], "black");
    assert_eq!(moved["next"], "bob");
    assert_eq!(moved["status"], "playing");
    assert_eq!(
        moved["fen"],
        "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq e3 0 1"
    );
    assert_eq!(moved["clock"]["deadline"], game.now() + 60_000);
    timer_set(&game, 60_000);
    let text = posts[0].body.text.as_deref().unwrap_or_default();
    assert!(text.contains("4 . . . . P . . . 4"), "{text}");
    assert!(text.contains("black to move: Bob"), "{text}");

    assert_eq!(only(&game.say("bob", "e7e5"), "move")["san"], "e5");
    assert_eq!(only(&game.say("alice", "move Bc4"), "move")["uci"], "f1c4");
    assert_eq!(
        only(&game.send_data("bob", json!({"move": "b8c6"})), "move")["san"],
        "Nc6"
    );
    assert_eq!(only(&game.say("alice", "3. Qh5"), "move")["san"], "Qh5");
    assert_eq!(only(&game.say("bob", "3... Nf6??"), "move")["san"], "Nf6");
    let posts = game.say("alice", "Qxf7");
    assert_eq!(
        posts.len(),
        2,
        "the mating move, then the result: {posts:?}"
    );
    let mate = data(&posts[0]);
    assert_eq!(mate["san"], "Qxf7#");
    assert_eq!(mate["status"], "checkmate");
    assert_eq!(mate["next"], Value::Null);
    let result = data(&posts[1]);
    assert_eq!(result["type"], "result");
    assert_eq!(result["result"], "1-0");
    assert_eq!(result["winner"], "alice");
    let pgn = result["pgn"].as_str().expect("the PGN");
    assert!(
        pgn.contains("[White \"Alice\"]\n[Black \"Bob\"]\n[Result \"1-0\"]"),
        "{pgn}"
    );
    assert!(
        pgn.ends_with("1. e4 e5 2. Bc4 Nc6 3. Qh5 Nf6 4. Qxf7# 1-0"),
        "{pgn}"
    );
    let end = game.end.clone().expect("the run ends");
    assert_eq!(end.reason.as_deref(), Some("1-0: Alice (white) mates"));
    assert_eq!(game.timers, [TimerRequest::Cancel { tag: "turn".into() }]);

    violation(&game.say("bob", "Ke7"), "bob", "GAME_OVER");
}

#[test]
fn violations_change_nothing() {
    let mut game = Game::started(json!({}));
    let before = game.state().clone();
    violation(&game.say("bob", "e5"), "bob", "BAD_TURN");
    violation(&game.say("carol", "e4"), "carol", "BAD_TURN");
    violation(&game.say("watcher", "e4"), "watcher", "BAD_TURN");
    violation(&game.say("watcher", "resign"), "watcher", "BAD_TURN");
    let hint = violation(&game.say("alice", "e5"), "alice", "BAD_MOVE");
    assert!(hint.contains("not a legal move"), "{hint}");
    for legal in [" a3 ", " e4 ", " Nf3 ", " Nc3 "] {
        assert!(hint.contains(legal), "{legal} in {hint}");
    }
    violation(&game.say("alice", "move banana"), "alice", "BAD_MOVE");
    violation(&game.say("alice", "Ke2"), "alice", "BAD_MOVE");
    violation(&game.say("alice", "e2e5"), "alice", "BAD_MOVE");
    violation(
        &game.send_data("alice", json!({"move": 42})),
        "alice",
        "BAD_MOVE",
    );
    violation(
        &game.send_data("alice", json!({"action": "dance"})),
        "alice",
        "BAD_MOVE",
    );
    violation(&game.say("alice", "accept"), "alice", "BAD_MOVE");
    // Chat, and messages to someone else, are not moves.
    assert!(game.say("alice", "good luck, Bob!").is_empty());
    assert!(game.say("bob", "thanks, you too").is_empty());
    let body = Body::new(Some("e4".into()), None).expect("valid");
    assert!(game.post("alice", body.clone(), Some("bob")).is_empty());
    assert_eq!(game.state(), &before, "violations change nothing");
    // A private message to the bot is a move.
    let posts = game.post("alice", body, Some("referee"));
    assert_eq!(only(&posts, "move")["san"], "e4");
    let chat = Body::new(Some("hello".into()), None).expect("valid");
    violation(&game.post("bob", chat, Some("referee")), "bob", "BAD_MOVE");
}

#[test]
fn ambiguous_moves_need_disambiguation() {
    let mut game = Game::started(json!({}));
    game.play(&["Nf3", "d5", "d3", "e5"]);
    let hint = violation(&game.say("alice", "Nd2"), "alice", "BAD_MOVE");
    assert!(hint.contains("ambiguous: Nbd2, Nfd2"), "{hint}");
    let moved = only(&game.say("alice", "N1d2"), "move");
    assert_eq!(moved["san"], "Nbd2");
    assert_eq!(moved["uci"], "b1d2");
    // A lowercase "b" is a pawn when a pawn can make the move, and a bishop otherwise.
    game.play(&["c5", "b4", "Nc6"]);
    assert_eq!(only(&game.say("alice", "bxc5"), "move")["uci"], "b4c5");
    game.play(&["Bxc5"]);
    assert_eq!(only(&game.say("alice", "nb3"), "move")["san"], "Nb3");
}

#[test]
fn promotion_under_and_to_a_queen() {
    let mut game = Game::started(json!({}));
    game.play(&["a4", "b5", "axb5", "a6", "bxa6", "Bb7", "axb7", "Nc6"]);
    let hint = violation(&game.say("alice", "bxa8"), "alice", "BAD_MOVE");
    assert!(hint.contains("promotes"), "{hint}");
    violation(&game.say("alice", "b7a8"), "alice", "BAD_MOVE");
    let moved = only(&game.say("alice", "bxa8=N"), "move");
    assert_eq!(moved["san"], "bxa8=N");
    assert_eq!(moved["uci"], "b7a8n");
    assert!(
        moved["fen"]
            .as_str()
            .is_some_and(|fen| fen.starts_with("N2qkbnr/")),
        "{moved}"
    );

    let mut game = Game::started(json!({}));
    game.play(&["b4", "a5", "bxa5", "b6", "axb6", "Ba6", "b7", "Nc6"]);
    let moved = only(&game.say("alice", "b7a8q"), "move");
    assert_eq!(moved["san"], "bxa8=Q");
    let moved = only(&game.say("bob", "Qxa8"), "move");
    assert_eq!(moved["uci"], "d8a8");
}

#[test]
fn castling_rules() {
    // Kingside castling through f1, attacked by the bishop on a6, is refused.
    let mut game = Game::started(json!({}));
    game.play(&["e4", "b6", "g3", "Ba6", "Bg2", "e6", "Nf3", "Nc6"]);
    let hint = violation(&game.say("alice", "O-O"), "alice", "BAD_MOVE");
    assert!(hint.contains("not a legal move"), "{hint}");
    violation(&game.say("alice", "e1g1"), "alice", "BAD_MOVE");
    // Once the diagonal is blocked, it is allowed; written with zeros.
    game.play(&["d3", "Nf6"]);
    let moved = only(&game.say("alice", "0-0"), "move");
    assert_eq!(moved["san"], "O-O");
    assert_eq!(moved["uci"], "e1g1");
    let fen = moved["fen"].as_str().expect("fen");
    assert!(fen.contains("RNBQ1RK1 b kq "), "{fen}");

    // Queenside, and the king that moved loses its rights.
    let mut game = Game::started(json!({}));
    game.play(&["d4", "d5", "Nc3", "Nc6", "Bf4", "Bf5", "Qd2", "Qd7"]);
    let moved = only(&game.say("alice", "O-O-O"), "move");
    assert_eq!(moved["san"], "O-O-O");
    assert!(
        moved["fen"]
            .as_str()
            .is_some_and(|fen| fen.contains("2KR1BNR b kq ")),
        "{moved}"
    );
    let moved = only(&game.say("bob", "Ke8d8"), "move");
    assert_eq!(moved["san"], "Kd8");
    assert!(
        moved["fen"]
            .as_str()
            .is_some_and(|fen| fen.contains(" w - ")),
        "{moved}"
    );
}

#[test]
fn en_passant() {
    let mut game = Game::started(json!({}));
    game.play(&["e4", "a6", "e5", "d5"]);
    let moved = only(&game.say("alice", "exd6"), "move");
    assert_eq!(moved["san"], "exd6");
    assert_eq!(moved["uci"], "e5d6");
    assert_eq!(
        moved["fen"],
        "rnbqkbnr/1pp1pppp/p2P4/8/8/8/PPPP1PPP/RNBQKBNR b KQkq - 0 3"
    );
    // Too late a move after: the right to capture en passant lapses.
    let mut game = Game::started(json!({}));
    game.play(&["e4", "a6", "e5", "d5", "h3", "h6"]);
    violation(&game.say("alice", "exd6"), "alice", "BAD_MOVE");
}

#[test]
fn resigning_out_of_turn_and_leaving_forfeit() {
    let mut game = Game::started(json!({}));
    let result = only(&game.say("bob", "Resign"), "result");
    assert_eq!(result["result"], "1-0");
    assert_eq!(result["winner"], "alice");
    assert!(game.end.is_some());

    let mut game = Game::started(json!({}));
    game.play(&["e4"]);
    let result = only(
        &game.send_data("alice", json!({"action": "resign"})),
        "result",
    );
    assert_eq!(result["result"], "0-1");
    assert!(
        result["pgn"]
            .as_str()
            .is_some_and(|pgn| pgn.ends_with("1. e4 0-1"))
    );

    let mut game = Game::started(json!({}));
    game.play(&["e4", "e5"]);
    assert!(game.leave("carol").is_empty(), "not a player");
    let result = only(&game.leave("alice"), "result");
    assert_eq!(result["result"], "0-1");
    assert_eq!(result["winner"], "bob");
    assert!(
        game.end
            .as_ref()
            .and_then(|end| end.reason.as_deref())
            .is_some_and(|reason| reason.contains("left")),
        "{:?}",
        game.end
    );
}

#[test]
fn a_player_leaving_before_the_start_makes_room() {
    let (mut game, _) = Game::new(json!({}));
    game.join("alice");
    assert!(game.leave("alice").is_empty());
    game.join("bob");
    let start = only(&game.join("carol"), "start");
    assert_eq!(start["white"], "bob");
    assert_eq!(start["black"], "carol");
    assert!(game.join("alice").is_empty(), "two players are enough");
    violation(&game.say("alice", "e4"), "alice", "BAD_TURN");
}

#[test]
fn draws_by_agreement_and_by_repetition() {
    let mut game = Game::started(json!({}));
    game.play(&["e4"]);
    let offer = only(&game.say("alice", "draw"), "draw_offer");
    assert_eq!(offer["to"], "bob");
    violation(&game.say("alice", "draw"), "alice", "BAD_MOVE");
    let result = only(&game.say("bob", "accept"), "result");
    assert_eq!(result["result"], "1/2-1/2");
    assert_eq!(result["winner"], Value::Null);

    // An offer lapses when the other side moves instead.
    let mut game = Game::started(json!({}));
    only(&game.say("bob", "draw"), "draw_offer");
    game.play(&["d4"]);
    violation(&game.say("alice", "accept"), "alice", "BAD_MOVE");

    // The start position for the third time, after two knight rounds.
    let mut game = Game::started(json!({}));
    game.play(&["Nf3", "Nf6", "Ng1", "Ng8", "Nf3", "Nf6", "Ng1"]);
    let posts = game.say("bob", "Ng8");
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert_eq!(data(&posts[0])["status"], "threefold");
    let result = data(&posts[1]);
    assert_eq!(result["result"], "1/2-1/2");
    assert_eq!(result["reason"], "threefold");
    assert_eq!(result["detail"], "draw by threefold repetition");
    assert_eq!(
        (&result["winner"], &result["loser"]),
        (&json!(null), &json!(null))
    );
}

#[test]
fn stalemate_and_insufficient_material_end_in_draws() {
    // The fastest known stalemate (Sam Loyd): ten moves.
    let mut game = Game::started(json!({}));
    game.play(&[
        "e3", "a5", "Qh5", "Ra6", "Qxa5", "h5", "h4", "Rah6", "Qxc7", "f6", "Qxd7+", "Kf7", "Qxb7",
        "Qd3", "Qxb8", "Qh7", "Qxc8", "Kg6",
    ]);
    let posts = game.say("alice", "Qe6");
    assert_eq!(data(&posts[0])["status"], "stalemate");
    assert_eq!(data(&posts[1])["result"], "1/2-1/2");
}

#[test]
fn timeouts_forfeit_or_play_a_random_move() {
    let mut game = Game::started(json!({"move_timeout_ms": 5_000}));
    timer_set(&game, 5_000);
    game.play(&["e4"]);
    timer_set(&game, 5_000);
    let deadline = game.state()["deadline"].as_i64().expect("a deadline");
    assert!(
        game.timer_at(deadline - 1).is_empty(),
        "a timer before the deadline is stale"
    );
    let result = only(&game.timer_at(deadline), "result");
    assert_eq!(result["result"], "1-0", "black ran out of time");
    assert_eq!(result["reason"], "timeout");
    assert!(
        result["detail"]
            .as_str()
            .is_some_and(|r| r.contains("ran out of time"))
    );
    assert_eq!(
        (&result["winner"], &result["loser"]),
        (&json!("alice"), &json!("bob"))
    );
    assert!(game.end.is_some());
    assert_eq!(game.timers, [TimerRequest::Cancel { tag: "turn".into() }]);

    let mut game = Game::started(json!({"move_timeout_ms": 5_000, "on_timeout": "random_move"}));
    let deadline = game.state()["deadline"].as_i64().expect("a deadline");
    let moved = only(&game.timer_at(deadline + 10), "move");
    assert_eq!(moved["random"], true);
    assert_eq!(moved["turn"], "black");
    assert_eq!(moved["clock"]["deadline"], deadline + 10 + 5_000);
    timer_set(&game, 5_000);
    assert!(game.end.is_none());
    // The game goes on from the random move.
    let reply = game.play(&["e5"]);
    assert_eq!(data(&reply[0])["ply"], 2);
}

#[test]
fn random_colours_come_from_the_seed() {
    let white_for = |seed: u8| {
        let (mut game, _) = Game::new(json!({"colors": "random"}));
        game.context.seed = BotSeed([seed; 32]);
        game.join("alice");
        only(&game.join("bob"), "start")["white"].clone()
    };
    let whites: std::collections::HashSet<String> =
        (0..12).map(|seed| white_for(seed).to_string()).collect();
    assert_eq!(whites.len(), 2, "both colours happen: {whites:?}");
    assert_eq!(white_for(3), white_for(3));
}

#[test]
fn bad_params_fail_init_with_a_clear_message() {
    for (params, expected) in [
        (json!({"colors": "blue"}), "params.colors"),
        (json!({"move_timeout_ms": 0}), "params.move_timeout_ms"),
        (json!({"move_timeout_ms": "60s"}), "params.move_timeout_ms"),
        (json!({"on_timeout": "pass"}), "params.on_timeout"),
    ] {
        let mut context = context();
        context.params = params;
        let bot = builtin("chess").expect("builtin");
        let error = run_event(&bot, &context, &Event::Init, &relaxed_limits()).unwrap_err();
        assert_eq!(error.kind, BotErrorKind::Threw);
        assert!(error.message.contains(expected), "{error}");
    }
}

/// What one move costs in QuickJS under the default limits: white's 11th move of a Ruy Lopez
/// (`bots::bench::chess_move`), fresh runtime and source load included. Printed with
/// `--nocapture`; the target is p50 ≤ 2 ms in an optimized build.
#[test]
fn a_middle_game_move_fits_the_budget() {
    let (p50, p99) = bots::bench::chess_event_cost(200);
    println!(
        "ChessBot move event, 200 runs: p50 {:.2} ms, p99 {:.2} ms",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    assert!(p50 < Limits::default().cpu, "p50 {p50:?}");
}

#[test]
fn a_long_name_still_ends_the_run_within_the_reason_cap() {
    let (mut game, _) = Game::new(json!({}));
    game.join("alice");
    game.join("bob");
    // Rename alice to 120 three-byte characters by rejoining.
    let long = "é".repeat(50) + &"名".repeat(120);
    game.context.players[0].name = long.clone();
    game.event(Event::Join(bots::Player {
        slot: slot("alice"),
        name: long,
    }));
    only(&game.say("alice", "resign"), "result");
    let reason = game
        .end
        .as_ref()
        .and_then(|end| end.reason.clone())
        .expect("a reason");
    assert!(reason.len() <= bots::MAX_END_REASON_BYTES, "{reason}");
    assert!(reason.starts_with("0-1: éé"), "{reason}");
}
