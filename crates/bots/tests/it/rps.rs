//! RockPaperScissorsBot played event by event: private moves, commitments checked against the
//! reveals, every violation, the round clock, leaving, params; then thousands of random games
//! against a reference model.

use bots::{BotPost, Event, Limits, TimerRequest};
use serde_json::{Value, json};

use crate::support::slot;
use crate::table::{
    BOT, Rng, Table, data, find, game_cases, only, play_many, refused_params, text_body, types,
    violation,
};

const MINUTE: i64 = 60_000;
const MOVES: [&str; 3] = ["rock", "paper", "scissors"];

/// A game with alice and bob seated and round 1 started.
fn started(params: Value) -> Table {
    let timeout = params["move_timeout_ms"].as_i64().unwrap_or(MINUTE);
    let (mut table, posts) = Table::open("rps", params, &[]);
    assert_eq!(types(&posts), ["rules"]);
    assert!(table.join("alice").is_empty());
    let start = only(&table.join("bob"), "start");
    assert_eq!(start["players"], json!(["alice", "bob"]));
    assert_eq!(start["round"], 1);
    assert_eq!(start["deadline"], table.now + timeout);
    assert_eq!(table.timers.get("turn"), Some(&(table.now + timeout)));
    table
}

/// The commitment formula of docs/bot-api.md, recomputed in Rust for `slot`'s move in a reveal.
#[track_caller]
fn assert_commitment_opens(reveal: &Value, player: &str, committed: &Value, table: &Table) {
    assert_eq!(reveal["scheme"], "mcp-multiplayer/commit/v1");
    assert_eq!(reveal["channel_id"], table.context.channel_id.as_str());
    assert_eq!(reveal["bot_slot"], BOT);
    let salt = hex::decode(reveal["salts"][player].as_str().expect("a salt")).expect("hex");
    assert_eq!(salt.len(), 16, "128 bits of salt");
    let value = reveal["moves"][player].as_str().expect("a move");
    assert!(MOVES.contains(&value), "{value}");
    let recomputed = bots::commitment(table.context.channel_id.as_str(), BOT, value, &salt);
    assert_eq!(reveal["commitments"][player], recomputed);
    assert_eq!(
        committed,
        &Value::String(recomputed),
        "the commitment posted before the reveal"
    );
}

/// Public posts before the reveal name no move.
#[track_caller]
fn assert_no_move_in_public(posts: &[BotPost]) {
    for post in posts.iter().filter(|post| post.to.is_none()) {
        let data = data(post);
        if matches!(data["type"].as_str(), Some("reveal" | "result")) {
            continue;
        }
        let text = post.body.text.as_deref().unwrap_or("").to_lowercase();
        let json = data.to_string().to_lowercase();
        for word in MOVES {
            assert!(
                !text.contains(word) || data["type"] == "rules" || data["type"] == "start",
                "{word} in a public post: {text}"
            );
            assert!(!json.contains(word), "{word} in public data: {json}");
        }
    }
}

#[test]
fn a_best_of_three_with_commitments_checked() {
    let mut table = started(json!({}));
    // Round 1: alice rock, bob scissors.
    let posts = table.whisper("alice", "rock");
    assert_eq!(types(&posts), ["your_move", "moved"]);
    assert_eq!(
        posts[0].to,
        Some(slot("alice")),
        "the echo of the move is private"
    );
    assert_eq!(data(&posts[0])["move"], "rock");
    assert_eq!(posts[1].to, None, "the commitment is public");
    let moved = data(&posts[1]);
    assert_eq!(moved["player"], "alice");
    assert_eq!(moved["waiting_for"], "bob");
    assert_eq!(moved["round"], 1);
    let alice_commitment = moved["commitment"].clone();
    assert!(
        alice_commitment
            .as_str()
            .is_some_and(|c| c.starts_with("sha256:"))
    );
    assert_no_move_in_public(&posts);

    let posts = table.send_data("bob", json!({"move": "S"}), Some(BOT));
    assert_eq!(types(&posts), ["your_move", "moved", "reveal"]);
    let bob_commitment = data(&posts[1])["commitment"].clone();
    assert_eq!(data(&posts[1])["waiting_for"], Value::Null);
    assert_no_move_in_public(&posts[..2]);
    let reveal = data(&posts[2]);
    assert_eq!(reveal["moves"], json!({"alice": "rock", "bob": "scissors"}));
    assert_eq!(reveal["winner"], "alice");
    assert_eq!(reveal["score"], json!({"alice": 1, "bob": 0}));
    assert_eq!(reveal["next_round"], 2);
    assert_eq!(reveal["deadline"], table.now + MINUTE);
    assert_commitment_opens(&reveal, "alice", &alice_commitment, &table);
    assert_commitment_opens(&reveal, "bob", &bob_commitment, &table);

    // Round 2: a draw, replayed as round 3.
    table.whisper("bob", "p");
    let reveal = find(&table.whisper("alice", "play paper"), "reveal");
    assert_eq!(reveal["winner"], Value::Null);
    assert_eq!(reveal["score"], json!({"alice": 1, "bob": 0}));
    assert_eq!(reveal["next_round"], 3);

    // Round 3: bob wins; round 4: bob wins the game.
    table.whisper("alice", "scissors");
    let reveal = find(&table.whisper("bob", "r"), "reveal");
    assert_eq!(reveal["winner"], "bob");
    assert_eq!(reveal["score"], json!({"alice": 1, "bob": 1}));
    let first = table.whisper("alice", "rock");
    let alice_commitment = data(&first[1])["commitment"].clone();
    let posts = table.whisper("bob", "paper");
    assert_eq!(types(&posts), ["your_move", "moved", "reveal", "result"]);
    let reveal = data(&posts[2]);
    assert_eq!(reveal["status"], "over");
    assert_eq!(reveal["deadline"], Value::Null);
    assert_commitment_opens(&reveal, "alice", &alice_commitment, &table);
    let result = data(&posts[3]);
    assert_eq!(result["result"], "win");
    assert_eq!(result["winner"], "bob");
    assert_eq!(result["loser"], "alice");
    assert_eq!(result["reason"], "rounds");
    assert_eq!(result["score"], json!({"alice": 1, "bob": 2}));
    assert_eq!(result["unrevealed"]["moves"], json!({}));
    let reason = table.ended.clone().expect("ended").expect("a reason");
    assert!(reason.contains("Bob wins"), "{reason}");
    assert!(table.timers.is_empty());
    violation(&table.whisper("alice", "rock"), "alice", "GAME_OVER");
}

#[test]
fn best_of_one_ends_at_the_first_won_round() {
    let mut table = started(json!({"best_of": 1}));
    table.whisper("bob", "rock");
    let posts = table.whisper("alice", "paper");
    assert_eq!(types(&posts), ["your_move", "moved", "reveal", "result"]);
    assert_eq!(data(&posts[3])["winner"], "alice");
    assert!(table.ended.is_some());
}

#[test]
fn public_moves_are_refused_and_do_not_count() {
    let mut table = started(json!({}));
    let before = table.state().clone();
    for body in [
        text_body("rock"),
        text_body("R"),
        crate::table::data_body(json!({"move": "paper"})),
    ] {
        let step = table.post("alice", body, None);
        violation(&step.posts, "alice", "BAD_MOVE");
        let message = data(&step.posts[0])["message"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        assert!(message.contains("privately"), "{message}");
        assert_eq!(step.reaction.state, None);
    }
    assert_eq!(table.state(), &before);
    // alice has not moved: her private move is taken.
    assert_eq!(
        types(&table.whisper("alice", "rock")),
        ["your_move", "moved"]
    );
}

#[test]
fn every_violation_is_private_and_changes_nothing() {
    let (mut table, _) = Table::open("rps", json!({}), &[]);
    violation(&table.whisper("alice", "rock"), "alice", "NOT_STARTED");
    table.join("alice");
    table.join("bob");
    table.join("carol");
    table.whisper("alice", "rock");
    let before = table.state().clone();
    for (who, text, code) in [
        ("alice", "paper", "BAD_TURN"),
        ("carol", "rock", "BAD_TURN"),
        ("watcher", "rock", "BAD_TURN"),
        ("bob", "play lizard", "BAD_MOVE"),
        ("bob", "move: 5", "BAD_MOVE"),
    ] {
        let step = table.post(who, text_body(text), Some(BOT));
        violation(&step.posts, who, code);
        assert_eq!(step.reaction.state, None, "{text}");
        assert!(step.reaction.timers.is_empty() && step.reaction.end.is_none());
    }
    violation(
        &table.send_data("bob", json!({"move": 3}), Some(BOT)),
        "bob",
        "BAD_MOVE",
    );
    assert_eq!(table.state(), &before);
    for text in ["lizard", "rock on", "good luck", "papers"] {
        assert!(table.whisper("bob", text).is_empty(), "{text} is chat");
        assert!(table.say("bob", text).is_empty(), "{text} is chat");
    }
    let to_alice = table.post("bob", text_body("rock"), Some("alice"));
    assert!(to_alice.posts.is_empty() && to_alice.reaction.state.is_none());
    assert_eq!(table.state(), &before);
}

#[test]
fn a_player_who_leaves_forfeits_and_their_commitment_opens() {
    let mut table = started(json!({}));
    let posts = table.whisper("bob", "scissors");
    let committed = data(&posts[1])["commitment"].clone();
    let result = only(&table.leave("bob"), "result");
    assert_eq!(result["winner"], "alice");
    assert_eq!(result["reason"], "left");
    let unrevealed = &result["unrevealed"];
    assert_eq!(unrevealed["moves"], json!({"bob": "scissors"}));
    let mut opened = unrevealed.clone();
    for key in ["scheme", "channel_id", "bot_slot"] {
        opened[key] = result[key].clone();
    }
    assert_commitment_opens(&opened, "bob", &committed, &table);
    assert!(table.ended.is_some() && table.timers.is_empty());
}

#[test]
fn running_out_of_time_forfeits_the_missing_player() {
    let mut table = started(json!({"move_timeout_ms": 5_000}));
    table.now += 4_000;
    table.whisper("bob", "rock");
    assert!(
        table.advance(999).is_empty(),
        "one clock for both moves: it started with the round"
    );
    let result = only(&table.advance(1), "result");
    assert_eq!(result["winner"], "bob");
    assert_eq!(result["loser"], "alice");
    assert_eq!(result["reason"], "timeout");
    assert_eq!(result["unrevealed"]["moves"], json!({"bob": "rock"}));
    assert!(table.ended.is_some());
}

#[test]
fn when_neither_player_moves_both_forfeit_and_it_is_a_draw() {
    let mut table = started(json!({}));
    let result = only(&table.fire("turn").posts, "result");
    assert_eq!(result["result"], "draw");
    assert_eq!(result["winner"], Value::Null);
    assert_eq!(result["reason"], "timeout");
    assert!(table.ended.is_some());
}

#[test]
fn running_out_of_time_with_random_move_moves_for_the_missing() {
    let mut table = started(json!({"on_timeout": "random_move", "best_of": 5}));
    let posts = table.whisper("alice", "rock");
    let alice_commitment = data(&posts[1])["commitment"].clone();
    let step = table.fire("turn");
    assert_eq!(types(&step.posts), ["moved", "reveal"]);
    let moved = data(&step.posts[0]);
    assert_eq!(moved["player"], "bob");
    assert_eq!(moved["timeout"], true);
    let reveal = data(&step.posts[1]);
    assert_commitment_opens(&reveal, "alice", &alice_commitment, &table);
    assert_commitment_opens(&reveal, "bob", &moved["commitment"], &table);
    assert_eq!(reveal["next_round"], 2);
    assert_eq!(reveal["deadline"], table.now + MINUTE);
    assert!(
        step.reaction.timers.contains(&TimerRequest::Set {
            tag: "turn".into(),
            ms: 60_000
        }),
        "the next round's clock"
    );
    // Nobody moves: the bot moves for both until someone wins three rounds.
    let mut rounds = 1;
    while table.ended.is_none() {
        let posts = table.fire("turn").posts;
        assert_eq!(types(&posts[..3]), ["moved", "moved", "reveal"]);
        rounds += 1;
        assert!(rounds < 200);
    }
}

#[test]
fn stale_and_foreign_timers_are_ignored() {
    let mut table = started(json!({}));
    let before = table.state().clone();
    for (tag, at) in [("other", table.now + 2 * MINUTE), ("turn", table.now + 10)] {
        let saved = table.now;
        table.now = at;
        let step = table.step(Event::Timer { tag: tag.into() });
        assert!(step.posts.is_empty(), "{tag}");
        assert_eq!(step.reaction.state, None);
        assert!(step.reaction.end.is_none() && step.reaction.timers.is_empty());
        table.now = saved;
    }
    assert_eq!(table.state(), &before);
    table.leave("alice");
    table.now += 2 * MINUTE;
    let step = table.step(Event::Timer { tag: "turn".into() });
    assert!(step.posts.is_empty() && step.reaction.state.is_none());
}

#[test]
fn bad_params_are_refused() {
    for (params, expected) in [
        (json!({"best_of": 4}), "must be odd"),
        (json!({"best_of": 101}), "params.best_of"),
        (json!({"best_of": 0}), "params.best_of"),
        (json!({"best_of": "3"}), "params.best_of"),
        (json!({"move_timeout_ms": 999}), "params.move_timeout_ms"),
        (json!({"on_timeout": "draw"}), "params.on_timeout"),
        (json!({"rounds": 3}), "unknown param rounds"),
        (json!("best of 3"), "params must be an object"),
    ] {
        let message = refused_params("rps", params);
        assert!(message.contains(expected), "{message}");
    }
}

// ---------------------------------------------------------------------------------------------
// Random games against a reference model.

const SEATS: [&str; 4] = ["alice", "bob", "carol", "watcher"];

#[derive(Clone, Copy, PartialEq, Debug)]
enum Phase {
    Waiting,
    Playing,
    Over,
}

struct Model {
    phase: Phase,
    players: Vec<String>,
    score: [u32; 2],
    round: u32,
    /// This round's moves, and the commitments the bot published for them.
    moved: [Option<(usize, Value)>; 2],
    deadline: i64,
    timeout_ms: i64,
    wins_needed: u32,
    random_move: bool,
}

enum Intent {
    Chat,
    Move(usize),
    BadMove,
}

fn random_message(rng: &mut Rng) -> (Option<Value>, Option<String>, Intent) {
    let m = rng.below(3);
    match rng.below(10) {
        0..=2 => (None, Some(MOVES[m].to_uppercase()), Intent::Move(m)),
        3 => (None, Some(MOVES[m][..1].into()), Intent::Move(m)),
        4 => (None, Some(format!("play {}", MOVES[m])), Intent::Move(m)),
        5 => (Some(json!({"move": MOVES[m]})), None, Intent::Move(m)),
        6 => {
            let bad = *rng.pick(&["play lizard", "move 3", "play: spock"]);
            (None, Some(bad.into()), Intent::BadMove)
        }
        7 => {
            let bad = rng.pick(&[json!(1), json!("stone"), json!(null)]).clone();
            (Some(json!({"move": bad})), None, Intent::BadMove)
        }
        _ => {
            let chat = *rng.pick(&["gg", "rock on", "paper beats rock", "x"]);
            (None, Some(chat.into()), Intent::Chat)
        }
    }
}

fn beats(a: usize, b: usize) -> bool {
    // rock 0 beats scissors 2, paper 1 beats rock 0, scissors 2 beat paper 1.
    (a + 3 - b) % 3 == 1
}

impl Model {
    fn scores(&self) -> Value {
        json!({self.players[0].clone(): self.score[0], self.players[1].clone(): self.score[1]})
    }

    #[track_caller]
    fn expect_end(&mut self, table: &Table, result: &Value, winner: Option<usize>, reason: &str) {
        assert_eq!(result["type"], "result", "{result}");
        assert_eq!(result["reason"], reason);
        match winner {
            Some(w) => {
                assert_eq!(result["result"], "win");
                assert_eq!(result["winner"], self.players[w].as_str());
                assert_eq!(result["loser"], self.players[1 - w].as_str());
            }
            None => {
                assert_eq!(result["result"], "draw");
                assert_eq!(result["winner"], Value::Null);
            }
        }
        assert_eq!(result["score"], self.scores());
        // The moves of a round cut short open their commitments.
        let mut opened = result["unrevealed"].clone();
        for key in ["scheme", "channel_id", "bot_slot"] {
            opened[key] = result[key].clone();
        }
        for (i, moved) in self.moved.iter().enumerate() {
            let player = self.players[i].as_str();
            match moved {
                Some((m, commitment)) => {
                    assert_eq!(opened["moves"][player], MOVES[*m]);
                    assert_commitment_opens(&opened, player, commitment, table);
                }
                None => assert_eq!(opened["moves"][player], Value::Null),
            }
        }
        assert!(table.ended.is_some(), "the run ends with the game");
        assert!(table.timers.is_empty(), "no clock after the end");
        self.phase = Phase::Over;
    }

    /// Checks a `moved` post for player `i` and records the move.
    #[track_caller]
    fn expect_moved(&mut self, post: &BotPost, i: usize, m: usize, timeout: bool) {
        assert_eq!(post.to, None);
        let moved = data(post);
        assert_eq!(moved["type"], "moved");
        assert_eq!(moved["player"], self.players[i].as_str());
        assert_eq!(moved["round"], self.round);
        assert_eq!(moved["timeout"], timeout);
        assert_eq!(moved["deadline"], self.deadline);
        self.moved[i] = Some((m, moved["commitment"].clone()));
    }

    /// Both moves are in: checks the reveal (and the result) in `posts`.
    #[track_caller]
    fn expect_reveal(&mut self, table: &Table, posts: &[BotPost], at: i64) {
        let reveal = data(&posts[0]);
        assert_eq!(reveal["type"], "reveal");
        assert_eq!(reveal["round"], self.round);
        let (Some((a, ca)), Some((b, cb))) = (self.moved[0].clone(), self.moved[1].clone()) else {
            panic!("both moves are in");
        };
        for (i, (m, commitment)) in [(a, ca), (b, cb)].iter().enumerate() {
            let player = self.players[i].as_str();
            assert_eq!(reveal["moves"][player], MOVES[*m]);
            assert_commitment_opens(&reveal, player, commitment, table);
        }
        let winner = if beats(a, b) {
            Some(0)
        } else if beats(b, a) {
            Some(1)
        } else {
            None
        };
        if let Some(w) = winner {
            self.score[w] += 1;
            assert_eq!(reveal["winner"], self.players[w].as_str());
        } else {
            assert_eq!(reveal["winner"], Value::Null);
        }
        assert_eq!(reveal["score"], self.scores());
        self.moved = [None, None];
        match winner {
            Some(w) if self.score[w] >= self.wins_needed => {
                assert_eq!(reveal["status"], "over");
                assert_eq!(posts.len(), 2);
                self.expect_end(table, &data(&posts[1]), Some(w), "rounds");
            }
            _ => {
                assert_eq!(posts.len(), 1);
                self.round += 1;
                self.deadline = at + self.timeout_ms;
                assert_eq!(reveal["next_round"], self.round);
                assert_eq!(reveal["deadline"], self.deadline);
                assert_eq!(table.timers.get("turn"), Some(&self.deadline));
            }
        }
    }
}

#[track_caller]
fn check_start(model: &mut Model, table: &Table, posts: &[BotPost]) {
    if model.phase != Phase::Waiting || model.players.len() < 2 {
        assert!(posts.is_empty(), "{posts:#?}");
        return;
    }
    let start = only(posts, "start");
    assert_eq!(start["players"], json!(model.players));
    model.phase = Phase::Playing;
    model.round = 1;
    model.deadline = table.now + model.timeout_ms;
    assert_eq!(start["deadline"], model.deadline);
    assert_eq!(table.timers.get("turn"), Some(&model.deadline));
}

fn random_game(seed: u64, limits: Limits) -> Table {
    let mut rng = Rng::new(seed);
    let timeout_ms = *rng.pick(&[1_000, 5_000, 60_000]);
    let random_move = rng.chance(50);
    let best_of: u32 = *rng.pick(&[1, 3, 3, 5, 9]);
    let params = json!({
        "move_timeout_ms": timeout_ms,
        "on_timeout": if random_move { "random_move" } else { "forfeit" },
        "best_of": best_of,
    });
    let mut table = Table::new("rps", params, &[], limits);
    let mut model = Model {
        phase: Phase::Waiting,
        players: Vec::new(),
        score: [0, 0],
        round: 0,
        moved: [None, None],
        deadline: 0,
        timeout_ms,
        wins_needed: best_of.div_ceil(2),
        random_move,
    };
    for seat in SEATS {
        if rng.chance(20) {
            table.context.players.push(crate::support::player(seat));
        }
    }
    let posts = table.step(Event::Init).posts;
    let seated: Vec<String> = table
        .context
        .players
        .iter()
        .map(|p| p.slot.to_string())
        .collect();
    for seat in &seated {
        if seat != "watcher" && model.players.len() < 2 {
            model.players.push(seat.clone());
        }
    }
    check_start(&mut model, &table, &posts[1..]);

    let mut steps = 0;
    while table.ended.is_none() && steps < 300 {
        steps += 1;
        let seated: Vec<String> = table
            .context
            .players
            .iter()
            .map(|p| p.slot.to_string())
            .collect();
        let action = if model.phase == Phase::Waiting && rng.chance(50) {
            0
        } else {
            rng.below(20)
        };
        match action {
            0 | 1 => {
                let seat = *rng.pick(&SEATS);
                if seated.iter().any(|s| s == seat) {
                    continue;
                }
                let posts = table.join(seat);
                if model.phase == Phase::Waiting && seat != "watcher" && model.players.len() < 2 {
                    model.players.push(seat.into());
                    check_start(&mut model, &table, &posts);
                } else {
                    assert!(posts.is_empty());
                }
            }
            2 if rng.chance(20) => {
                let Some(seat) = seated.get(rng.below(seated.len().max(1))).cloned() else {
                    continue;
                };
                let posts = table.leave(&seat);
                let index = model.players.iter().position(|p| *p == seat);
                match (model.phase, index) {
                    (Phase::Playing, Some(i)) => {
                        let result = only(&posts, "result");
                        model.expect_end(&table, &result, Some(1 - i), "left");
                    }
                    (Phase::Waiting, Some(i)) => {
                        model.players.remove(i);
                        assert!(posts.is_empty());
                    }
                    _ => assert!(posts.is_empty()),
                }
            }
            3 | 4 => {
                let ms = if rng.chance(50) {
                    timeout_ms
                } else {
                    rng.below(timeout_ms as usize) as i64
                };
                let due = table.timers.get("turn").copied();
                let posts = table.advance(ms);
                match due {
                    Some(due) if due <= table.now => {
                        assert_eq!(model.phase, Phase::Playing);
                        assert_eq!(due, model.deadline);
                        let missing: Vec<usize> =
                            (0..2).filter(|&i| model.moved[i].is_none()).collect();
                        assert!(!missing.is_empty(), "a round with both moves in is over");
                        if model.random_move {
                            for (k, &i) in missing.iter().enumerate() {
                                let moved = data(&posts[k]);
                                // The bot's random move is only known from the reveal.
                                let reveal = find(&posts, "reveal");
                                let m = MOVES
                                    .iter()
                                    .position(|w| reveal["moves"][model.players[i].as_str()] == *w)
                                    .expect("a move");
                                assert_eq!(moved["timeout"], true);
                                model.expect_moved(&posts[k], i, m, true);
                            }
                            model.expect_reveal(&table, &posts[missing.len()..], due);
                        } else {
                            let result = only(&posts, "result");
                            let winner = if missing.len() == 2 {
                                None
                            } else {
                                Some(1 - missing[0])
                            };
                            model.expect_end(&table, &result, winner, "timeout");
                        }
                    }
                    _ => assert!(posts.is_empty()),
                }
            }
            5 => {
                let tag = if rng.chance(50) { "turn" } else { "stray" };
                let step = table.step(Event::Timer { tag: tag.into() });
                assert!(step.posts.is_empty() && step.reaction.state.is_none());
                assert!(step.reaction.timers.is_empty() && step.reaction.end.is_none());
            }
            _ => {
                let sender = if model.phase == Phase::Playing && rng.chance(75) {
                    model.players[rng.below(2)].clone()
                } else {
                    (*rng.pick(&SEATS)).to_owned()
                };
                let (data_value, text, intent) = random_message(&mut rng);
                let to = match rng.below(10) {
                    0 => Some("carol"),
                    1 | 2 => None,
                    _ => Some(BOT),
                };
                let body = domain::Body::new(
                    text,
                    data_value.map(|value| match value {
                        Value::Object(map) => map,
                        _ => unreachable!(),
                    }),
                )
                .expect("valid body");
                let before = table.context.state.clone();
                table.now += rng.below(3_000) as i64;
                if let Some(due) = table.timers.get("turn").copied()
                    && due <= table.now
                {
                    table.now = due - 1;
                }
                let step = table.post(&sender, body, to);
                let posts = &step.posts;
                let index = model.players.iter().position(|p| *p == sender);
                let ignored = matches!(intent, Intent::Chat) || (to.is_some() && to != Some(BOT));
                let code = if ignored {
                    None
                } else if model.phase == Phase::Over {
                    Some("GAME_OVER")
                } else if model.phase == Phase::Waiting {
                    Some("NOT_STARTED")
                } else if index.is_none() {
                    Some("BAD_TURN")
                } else if to.is_none() {
                    Some("BAD_MOVE")
                } else if model.moved[index.expect("a player")].is_some() {
                    Some("BAD_TURN")
                } else if let Intent::Move(m) = intent {
                    let i = index.expect("a player");
                    assert_eq!(
                        posts[0].to.as_ref().map(|s| s.as_str()),
                        Some(sender.as_str())
                    );
                    assert_eq!(data(&posts[0])["move"], MOVES[m]);
                    model.expect_moved(&posts[1], i, m, false);
                    assert_no_move_in_public(&posts[..2]);
                    if model.moved[1 - i].is_some() {
                        let at = table.now;
                        model.expect_reveal(&table, &posts[2..], at);
                    } else {
                        assert_eq!(posts.len(), 2);
                    }
                    continue;
                } else {
                    Some("BAD_MOVE")
                };
                match code {
                    None => assert!(posts.is_empty(), "ignored: {posts:#?}"),
                    Some(code) => violation(posts, &sender, code),
                }
                assert_eq!(step.reaction.state, None, "nothing changes");
                assert_eq!(table.context.state, before);
                assert!(step.reaction.timers.is_empty() && step.reaction.end.is_none());
            }
        }
    }
    assert_eq!(table.ended.is_some(), model.phase == Phase::Over);
    table
}

/// Across a whole game, no public post before a reveal names a move.
fn random_game_with_no_move_shown(seed: u64, limits: Limits) -> Table {
    let table = random_game(seed, limits);
    let mut round_posts = Vec::new();
    for post in &table.log {
        let kind = data(post)["type"].as_str().unwrap_or("").to_owned();
        if kind == "reveal" || kind == "result" {
            assert_no_move_in_public(&round_posts);
            round_posts.clear();
        } else {
            round_posts.push(post.clone());
        }
    }
    table
}

#[test]
fn random_games_never_break_a_rule() {
    let cases = game_cases(400);
    let started = std::time::Instant::now();
    let summary = play_many(cases, 0x4095_0000, random_game_with_no_move_shown);
    eprintln!(
        "rps: {} games, {} events in {:?}, slowest event (wall clock) {:?}, endings {:?}",
        summary.games,
        summary.events,
        started.elapsed(),
        summary.slowest,
        summary.endings
    );
    assert_eq!(summary.games, cases);
    if cases >= 200 {
        for ending in ["win/rounds", "draw/timeout", "win/timeout", "win/left"] {
            assert!(
                summary.endings.contains_key(ending),
                "no game ended with {ending}: {:?}",
                summary.endings
            );
        }
    }
    assert!(
        !summary.endings.contains_key("unfinished"),
        "{:?}",
        summary.endings
    );
}
