//! TicTacToeBot played event by event: whole games, every violation, the turn clock, leaving,
//! params; then thousands of random games against a reference model.

use bots::{Event, Limits, TimerRequest};
use serde_json::{Value, json};

use crate::support::slot;
use crate::table::{
    BOT, Rng, Table, data, find, game_cases, only, play_many, refused_params, text_body, types,
    violation,
};

const MINUTE: i64 = 60_000;

/// A game with alice (X) and bob (O) seated and started.
fn started(params: Value) -> Table {
    let timeout = params["move_timeout_ms"].as_i64().unwrap_or(MINUTE);
    let (mut table, posts) = Table::open("tictactoe", params, &[]);
    assert_eq!(types(&posts), ["rules"]);
    assert!(table.join("alice").is_empty());
    let start = only(&table.join("bob"), "start");
    assert_eq!(start["x"], "alice");
    assert_eq!(start["o"], "bob");
    assert_eq!(start["turn"], "alice");
    assert_eq!(start["deadline"], table.now + timeout);
    table
}

/// Plays `cells` alternately (alice first), each as a public cell number, and returns the posts
/// of the last move.
fn play(table: &mut Table, cells: &[u8]) -> Vec<bots::BotPost> {
    let mut last = Vec::new();
    for (i, cell) in cells.iter().enumerate() {
        let who = if i % 2 == 0 { "alice" } else { "bob" };
        table.now += 1_000;
        last = table.say(who, &cell.to_string());
    }
    last
}

fn board(marks: &str) -> Value {
    Value::Array(
        marks
            .chars()
            .map(|c| match c {
                'X' => json!("X"),
                'O' => json!("O"),
                _ => Value::Null,
            })
            .collect(),
    )
}

#[test]
fn x_wins_with_three_in_a_row() {
    let mut table = started(json!({}));
    let posts = play(&mut table, &[5, 2, 1, 3]);
    let moved = only(&posts, "move");
    assert_eq!(moved["board"], board("XOO.X...."));
    assert_eq!(moved["turn"], "alice");
    assert_eq!(moved["status"], "playing");
    assert_eq!(moved["deadline"], table.now + MINUTE);
    let text = posts[0].body.text.as_deref().unwrap_or("");
    assert!(
        text.contains(" X | O | O\n---+---+---\n 4 | X | 6\n---+---+---\n 7 | 8 | 9"),
        "the board is drawn with the free cells' numbers:\n{text}"
    );
    assert!(table.ended.is_none());

    table.now += 1_000;
    let posts = table.say("alice", "c3");
    assert_eq!(types(&posts), ["move", "result"]);
    let moved = data(&posts[0]);
    assert_eq!(moved["cell"], 9);
    assert_eq!(moved["status"], "win");
    assert_eq!(moved["turn"], Value::Null);
    assert_eq!(moved["deadline"], Value::Null);
    let result = data(&posts[1]);
    assert_eq!(result["result"], "win");
    assert_eq!(result["winner"], "alice");
    assert_eq!(result["loser"], "bob");
    assert_eq!(result["reason"], "three_in_a_row");
    assert!(posts.iter().all(|post| post.to.is_none()), "public posts");
    let reason = table
        .ended
        .clone()
        .expect("the run ended")
        .expect("a reason");
    assert!(reason.contains("Alice"), "{reason}");
    assert!(table.timers.is_empty(), "the clock is cancelled");
    violation(&table.say("bob", "4"), "bob", "GAME_OVER");
}

#[test]
fn o_wins_and_moves_come_in_every_form() {
    let mut table = started(json!({}));
    table.say("alice", "1");
    table.send_data("bob", json!({"cell": 5}), None);
    table.whisper("alice", "move 9");
    table.send_data("bob", json!({"cell": "b1"}), Some(BOT));
    table.say("alice", "  C1 ");
    let posts = table.say("bob", "3b");
    assert_eq!(types(&posts), ["move", "result"]);
    assert_eq!(data(&posts[0])["board"], board("XOX.O..OX"));
    let result = data(&posts[1]);
    assert_eq!(result["winner"], "bob");
    assert_eq!(result["board"], board("XOX.O..OX"));
}

#[test]
fn a_full_board_is_a_draw() {
    let mut table = started(json!({}));
    let posts = play(&mut table, &[1, 2, 3, 5, 4, 6, 8, 7, 9]);
    assert_eq!(types(&posts), ["move", "result"]);
    assert_eq!(data(&posts[0])["status"], "draw");
    let result = data(&posts[1]);
    assert_eq!(result["result"], "draw");
    assert_eq!(result["winner"], Value::Null);
    assert_eq!(result["reason"], "full_board");
    assert_eq!(table.ended, Some(Some("Draw.".into())));
}

#[test]
fn every_violation_is_private_and_changes_nothing() {
    let (mut table, _) = Table::open("tictactoe", json!({}), &[]);
    violation(&table.say("alice", "5"), "alice", "NOT_STARTED");
    table.join("alice");
    violation(&table.say("alice", "resign"), "alice", "NOT_STARTED");
    table.join("bob");
    table.join("carol");
    let before = table.state().clone();
    for (who, text, code) in [
        ("bob", "5", "BAD_TURN"),
        ("carol", "5", "BAD_TURN"),
        ("watcher", "b2", "BAD_TURN"),
        ("alice", "0", "BAD_MOVE"),
        ("alice", "10", "BAD_MOVE"),
        ("alice", "d4", "BAD_MOVE"),
        ("alice", "play x", "BAD_MOVE"),
    ] {
        let step = table.post(who, text_body(text), None);
        violation(&step.posts, who, code);
        assert_eq!(step.reaction.state, None, "{text}: the state is untouched");
        assert!(step.reaction.timers.is_empty() && step.reaction.end.is_none());
    }
    let bad = table.send_data("alice", json!({"cell": 12}), None);
    violation(&bad, "alice", "BAD_MOVE");
    let message = data(&bad[0])["message"].as_str().unwrap_or("").to_owned();
    assert!(message.contains("1, 2, 3, 4, 5, 6, 7, 8, 9"), "{message}");
    violation(
        &table.send_data("alice", json!({"action": "dance"}), None),
        "alice",
        "BAD_MOVE",
    );
    table.say("alice", "5");
    let taken = table.say("bob", "b2");
    violation(&taken, "bob", "BAD_MOVE");
    assert!(
        data(&taken[0])["message"]
            .as_str()
            .is_some_and(|m| m.contains("taken") && m.contains("1, 2, 3, 4, 6, 7, 8, 9")),
        "{taken:?}"
    );
    assert_ne!(table.state(), &before);
    // Chat is ignored, and so are messages addressed to someone else.
    for text in ["good luck!", "5 is mine", "played well", "x", "moves"] {
        assert!(table.say("bob", text).is_empty(), "{text} is chat");
    }
    let to_alice = table.post("bob", text_body("1"), Some("alice"));
    assert!(to_alice.posts.is_empty() && to_alice.reaction.state.is_none());
}

#[test]
fn resigning_works_out_of_turn() {
    let mut table = started(json!({}));
    table.say("alice", "5");
    table.say("bob", "1");
    let result = only(&table.say("bob", "Resign"), "result");
    assert_eq!(result["winner"], "alice");
    assert_eq!(result["reason"], "resigned");
    assert!(table.ended.is_some());
}

#[test]
fn a_player_who_leaves_forfeits() {
    let mut table = started(json!({}));
    table.say("alice", "5");
    let result = only(&table.leave("alice"), "result");
    assert_eq!(result["winner"], "bob");
    assert_eq!(result["reason"], "left");
    assert!(table.ended.is_some());
    assert!(table.timers.is_empty());
}

#[test]
fn leaving_before_the_start_frees_the_seat() {
    let (mut table, _) = Table::open("tictactoe", json!({}), &[]);
    table.join("alice");
    assert!(table.leave("alice").is_empty());
    table.join("bob");
    assert!(table.join("watcher").is_empty(), "spectators do not play");
    let start = only(&table.join("carol"), "start");
    assert_eq!(
        (start["x"].as_str(), start["o"].as_str()),
        (Some("bob"), Some("carol"))
    );
    assert!(table.join("alice").is_empty(), "a third player watches");
    violation(&table.say("alice", "1"), "alice", "BAD_TURN");
}

#[test]
fn players_seated_before_the_bot_start_at_once() {
    let (table, posts) = Table::open("tictactoe", json!({}), &["bob", "alice"]);
    assert_eq!(types(&posts), ["rules", "start"]);
    assert_eq!(data(&posts[1])["x"], "bob");
    assert_eq!(table.timers.get("turn"), Some(&(table.now + MINUTE)));
}

#[test]
fn random_first_player_comes_from_the_seed() {
    let first_for = |seed: u8| {
        let mut table = Table::new(
            "tictactoe",
            json!({"first": "random"}),
            &["alice", "bob"],
            crate::support::relaxed_limits(),
        );
        table.context.seed = bots::BotSeed([seed; 32]);
        let posts = table.event(Event::Init).posts;
        find(&posts, "start")["x"].as_str().unwrap_or("").to_owned()
    };
    let firsts: std::collections::HashSet<String> = (0..16).map(first_for).collect();
    assert_eq!(firsts.len(), 2, "{firsts:?}");
    assert_eq!(first_for(3), first_for(3));
}

#[test]
fn running_out_of_time_forfeits() {
    let mut table = started(json!({"move_timeout_ms": 5_000}));
    table.now += 1_000;
    let step = table.post("alice", text_body("5"), None);
    assert_eq!(
        step.reaction.timers,
        [TimerRequest::Set {
            tag: "turn".into(),
            ms: 5_000
        }],
        "each turn sets the clock again"
    );
    assert_eq!(data(&step.posts[0])["deadline"], table.now + 5_000);
    assert!(table.advance(4_999).is_empty(), "not yet");
    let posts = table.advance(1);
    let result = only(&posts, "result");
    assert_eq!(result["winner"], "alice");
    assert_eq!(result["loser"], "bob");
    assert_eq!(result["reason"], "timeout");
    assert!(table.ended.is_some());
}

#[test]
fn running_out_of_time_with_random_move_plays_a_free_cell() {
    let mut table = started(json!({"on_timeout": "random_move"}));
    table.say("alice", "5");
    let step = table.fire("turn");
    let moved = only(&step.posts, "move");
    assert_eq!(moved["player"], "bob");
    assert_eq!(moved["mark"], "O");
    assert_eq!(moved["timeout"], true);
    let cell = moved["cell"].as_u64().expect("a cell");
    assert!((1..=9).contains(&cell) && cell != 5, "{cell}");
    assert_eq!(moved["turn"], "alice");
    assert_eq!(moved["deadline"], table.now + MINUTE);
    assert_eq!(table.state()["moves"], 2);
    // Nobody moves at all: the bot plays the game out and it ends.
    let mut posts = Vec::new();
    for _ in 0..7 {
        if table.ended.is_some() {
            break;
        }
        posts = table.fire("turn").posts;
    }
    assert!(table.ended.is_some());
    assert_eq!(types(&posts), ["move", "result"]);
}

#[test]
fn stale_and_foreign_timers_are_ignored() {
    let mut table = started(json!({}));
    let before = table.state().clone();
    // A tag the bot never set, and the turn clock firing before the current deadline (as a
    // clock set for an earlier turn would): nothing happens.
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
    // After the end, the clock changes nothing either.
    table.say("alice", "resign");
    table.now += 2 * MINUTE;
    let step = table.step(Event::Timer { tag: "turn".into() });
    assert!(step.posts.is_empty() && step.reaction.state.is_none());
}

#[test]
fn bad_params_are_refused() {
    for (params, expected) in [
        (json!({"first": "last"}), "params.first"),
        (json!({"move_timeout_ms": 0}), "params.move_timeout_ms"),
        (
            json!({"move_timeout_ms": 86_400_001}),
            "params.move_timeout_ms",
        ),
        (
            json!({"move_timeout_ms": "60000"}),
            "params.move_timeout_ms",
        ),
        (json!({"on_timeout": "pass"}), "params.on_timeout"),
        (json!({"timeout": 5}), "unknown param timeout"),
        (json!([1]), "params must be an object"),
    ] {
        let message = refused_params("tictactoe", params);
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

/// What the rules say the game is.
struct Model {
    phase: Phase,
    /// Candidates in join order while waiting; X then O once playing.
    players: Vec<String>,
    board: [Option<char>; 9],
    turn: usize,
    moves: usize,
    deadline: i64,
    timeout_ms: i64,
    random_move: bool,
    random_first: bool,
}

/// A message the driver sends, and what it means.
enum Intent {
    Chat,
    Cell(usize),
    BadCell,
    Resign,
}

fn random_message(rng: &mut Rng) -> (Value, Option<String>, Intent) {
    let cell = rng.below(9) + 1;
    let coordinate = format!("{}{}", ["a", "b", "c"][(cell - 1) % 3], (cell - 1) / 3 + 1);
    match rng.below(12) {
        0..=2 => (json!(null), Some(cell.to_string()), Intent::Cell(cell)),
        3 => (
            json!(null),
            Some(coordinate.to_uppercase()),
            Intent::Cell(cell),
        ),
        4 => (
            json!(null),
            Some(format!("move {cell}")),
            Intent::Cell(cell),
        ),
        5 => (json!({"cell": cell}), None, Intent::Cell(cell)),
        6 => {
            let bad = *rng.pick(&["0", "10", "d4", "play x", "-3"]);
            (json!(null), Some(bad.into()), Intent::BadCell)
        }
        7 => {
            let bad = rng
                .pick(&[json!(0), json!("z9"), json!(2.5), json!(null)])
                .clone();
            (json!({"cell": bad}), None, Intent::BadCell)
        }
        8 if rng.chance(30) => (json!(null), Some("resign".into()), Intent::Resign),
        8 => (json!({"action": "fold"}), None, Intent::BadCell),
        9 => (json!({"note": 5}), None, Intent::Chat),
        _ => {
            let chat = *rng.pick(&["gg", "hello 5", "x marks the spot", "b2 b2"]);
            (json!(null), Some(chat.into()), Intent::Chat)
        }
    }
}

fn winner(board: &[Option<char>; 9], mark: char) -> bool {
    const LINES: [[usize; 3]; 8] = [
        [0, 1, 2],
        [3, 4, 5],
        [6, 7, 8],
        [0, 3, 6],
        [1, 4, 7],
        [2, 5, 8],
        [0, 4, 8],
        [2, 4, 6],
    ];
    LINES
        .iter()
        .any(|line| line.iter().all(|&i| board[i] == Some(mark)))
}

fn board_json(board: &[Option<char>; 9]) -> Value {
    Value::Array(
        board
            .iter()
            .map(|cell| cell.map_or(Value::Null, |mark| json!(mark.to_string())))
            .collect(),
    )
}

impl Model {
    /// Checks a result post and ends the model's game.
    #[track_caller]
    fn expect_end(
        &mut self,
        table: &Table,
        posts: &[bots::BotPost],
        winner: Option<usize>,
        reason: &str,
    ) {
        let result = data(posts.last().expect("a result post"));
        assert_eq!(result["type"], "result", "{posts:#?}");
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
        assert_eq!(result["board"], board_json(&self.board));
        assert!(table.ended.is_some(), "the run ends with the game");
        assert!(table.timers.is_empty(), "no clock after the end");
        self.phase = Phase::Over;
    }

    /// Applies the move of the player to move on `cell` and checks the bot's posts.
    #[track_caller]
    fn expect_move(
        &mut self,
        table: &Table,
        posts: &[bots::BotPost],
        cell: usize,
        at: Option<i64>,
    ) {
        let timeout = at.is_some();
        let mark = if self.turn == 0 { 'X' } else { 'O' };
        assert_eq!(self.board[cell - 1], None, "a move only on a free cell");
        self.board[cell - 1] = Some(mark);
        self.moves += 1;
        let moved = data(&posts[0]);
        assert_eq!(moved["type"], "move");
        assert_eq!(moved["cell"], cell);
        assert_eq!(moved["player"], self.players[self.turn].as_str());
        assert_eq!(moved["timeout"], timeout);
        assert_eq!(moved["board"], board_json(&self.board));
        assert_eq!(table.state()["board"], board_json(&self.board));
        if winner(&self.board, mark) {
            assert_eq!(moved["status"], "win");
            let turn = self.turn;
            self.expect_end(table, posts, Some(turn), "three_in_a_row");
        } else if self.moves == 9 {
            assert_eq!(moved["status"], "draw");
            self.expect_end(table, posts, None, "full_board");
        } else {
            assert_eq!(posts.len(), 1);
            self.turn = 1 - self.turn;
            self.deadline = at.unwrap_or(table.now) + self.timeout_ms;
            assert_eq!(moved["status"], "playing");
            assert_eq!(moved["turn"], self.players[self.turn].as_str());
            assert_eq!(moved["deadline"], self.deadline);
            assert_eq!(table.timers.get("turn"), Some(&self.deadline));
        }
    }
}

/// One random game: random joins, leaves, moves legal and illegal, chat, clock advances that
/// fire the turn timer, stray timers; every event checked against the model.
fn random_game(seed: u64, limits: Limits) -> Table {
    let mut rng = Rng::new(seed);
    let timeout_ms = *rng.pick(&[1_000, 5_000, 60_000]);
    let random_move = rng.chance(50);
    let random_first = rng.chance(30);
    let params = json!({
        "move_timeout_ms": timeout_ms,
        "on_timeout": if random_move { "random_move" } else { "forfeit" },
        "first": if random_first { "random" } else { "join" },
    });
    let mut table = Table::new("tictactoe", params, &[], limits);
    let mut model = Model {
        phase: Phase::Waiting,
        players: Vec::new(),
        board: [None; 9],
        turn: 0,
        moves: 0,
        deadline: 0,
        timeout_ms,
        random_move,
        random_first,
    };
    // Some players are seated before the bot is attached.
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
    while table.ended.is_none() && steps < 200 {
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
                    assert!(posts.is_empty(), "{seat} joins and nothing happens");
                }
            }
            2 if rng.chance(25) => {
                let Some(seat) = seated.get(rng.below(seated.len().max(1))).cloned() else {
                    continue;
                };
                let posts = table.leave(&seat);
                let index = model.players.iter().position(|p| *p == seat);
                match (model.phase, index) {
                    (Phase::Playing, Some(i)) => {
                        assert_eq!(posts.len(), 1);
                        model.expect_end(&table, &posts, Some(1 - i), "left");
                    }
                    (Phase::Waiting, Some(i)) => {
                        model.players.remove(i);
                        assert!(posts.is_empty());
                    }
                    _ => assert!(posts.is_empty()),
                }
            }
            3 | 4 => {
                // Time passes; the turn clock fires if it is due.
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
                        if model.random_move {
                            let cell = data(&posts[0])["cell"].as_u64().expect("a cell") as usize;
                            model.expect_move(&table, &posts, cell, Some(due));
                        } else {
                            assert_eq!(posts.len(), 1);
                            let late = model.turn;
                            model.expect_end(&table, &posts, Some(1 - late), "timeout");
                        }
                    }
                    _ => assert!(posts.is_empty()),
                }
            }
            5 => {
                // A stray timer: a tag never set, or the turn tag before its deadline.
                let tag = if rng.chance(50) { "turn" } else { "stray" };
                let step = table.step(Event::Timer { tag: tag.into() });
                assert!(step.posts.is_empty() && step.reaction.state.is_none());
                assert!(step.reaction.timers.is_empty() && step.reaction.end.is_none());
            }
            _ => {
                // A message, mostly from a player, mostly in turn.
                let sender = if model.phase == Phase::Playing && rng.chance(70) {
                    let p = if rng.chance(80) {
                        model.turn
                    } else {
                        1 - model.turn
                    };
                    model.players[p].clone()
                } else {
                    (*rng.pick(&SEATS)).to_owned()
                };
                let (data_value, text, intent) = random_message(&mut rng);
                let to = match rng.below(10) {
                    0 => Some("carol"),
                    1 | 2 => Some(BOT),
                    _ => None,
                };
                let body = domain::Body::new(
                    text,
                    match data_value {
                        Value::Object(map) => Some(map),
                        _ => None,
                    },
                )
                .expect("valid body");
                let before = table.context.state.clone();
                table.now += rng.below(3_000) as i64;
                if let Some(due) = table.timers.get("turn").copied()
                    && due <= table.now
                {
                    // The clock would have fired first: the service delivers it first.
                    table.now = due - 1;
                }
                let step = table.post(&sender, body, to);
                let posts = &step.posts;
                let ignored = matches!(intent, Intent::Chat) || (to.is_some() && to != Some(BOT));
                let code = if ignored {
                    None
                } else if model.phase == Phase::Over {
                    Some("GAME_OVER")
                } else if model.phase == Phase::Waiting {
                    Some("NOT_STARTED")
                } else if !model.players.contains(&sender) {
                    Some("BAD_TURN")
                } else if matches!(intent, Intent::Resign) {
                    let i = model
                        .players
                        .iter()
                        .position(|p| *p == sender)
                        .expect("a player");
                    model.expect_end(&table, posts, Some(1 - i), "resigned");
                    continue;
                } else if model.players[model.turn] != sender {
                    Some("BAD_TURN")
                } else {
                    match intent {
                        Intent::Cell(cell) if model.board[cell - 1].is_none() => {
                            model.expect_move(&table, posts, cell, None);
                            continue;
                        }
                        _ => Some("BAD_MOVE"),
                    }
                };
                match code {
                    None => assert!(posts.is_empty(), "ignored: {posts:#?}"),
                    Some(code) => {
                        violation(posts, &sender, code);
                    }
                }
                assert_eq!(step.reaction.state, None, "nothing changes");
                assert_eq!(table.context.state, before);
                assert!(step.reaction.timers.is_empty() && step.reaction.end.is_none());
            }
        }
    }
    if table.ended.is_none() {
        // Nobody finished it: let the clock run out.
        assert!(model.phase != Phase::Over);
    }
    assert_eq!(table.ended.is_some(), model.phase == Phase::Over);
    table
}

/// Checks the start (or its absence) after two candidates may have come in.
#[track_caller]
fn check_start(model: &mut Model, table: &Table, posts: &[bots::BotPost]) {
    if model.phase != Phase::Waiting || model.players.len() < 2 {
        assert!(posts.is_empty(), "{posts:#?}");
        return;
    }
    let start = only(posts, "start");
    if model.random_first && start["x"] != model.players[0].as_str() {
        model.players.swap(0, 1);
    }
    assert_eq!(start["x"], model.players[0].as_str());
    assert_eq!(start["o"], model.players[1].as_str());
    model.phase = Phase::Playing;
    model.deadline = table.now + model.timeout_ms;
    assert_eq!(start["deadline"], model.deadline);
    assert_eq!(table.timers.get("turn"), Some(&model.deadline));
}

#[test]
fn random_games_never_break_a_rule() {
    let cases = game_cases(400);
    let started = std::time::Instant::now();
    let summary = play_many(cases, 0x7107_0000, random_game);
    eprintln!(
        "tictactoe: {} games, {} events in {:?}, slowest event (wall clock) {:?}, endings {:?}",
        summary.games,
        summary.events,
        started.elapsed(),
        summary.slowest,
        summary.endings
    );
    assert_eq!(summary.games, cases);
    if cases >= 200 {
        for ending in [
            "win/three_in_a_row",
            "draw/full_board",
            "win/timeout",
            "win/left",
            "win/resigned",
        ] {
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

#[test]
fn slot_labels_in_posts_are_the_channel_s() {
    // The bot names players by slot in data and by display name in text.
    let mut table = started(json!({}));
    let posts = table.say("alice", "5");
    assert_eq!(data(&posts[0])["player"], slot("alice").as_str());
    assert!(
        posts[0]
            .body
            .text
            .as_deref()
            .is_some_and(|t| t.starts_with("Alice (X) played 5 (b2)."))
    );
}
