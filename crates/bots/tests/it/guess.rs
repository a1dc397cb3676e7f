//! GuessBot played through whole games, with a small stand-in for the service that feeds events
//! in channel order and keeps the bot's state between them.

use bots::{BotErrorKind, BotPost, BotSeed, Event, EventContext, builtin, run_event};
use domain::{Body, Message, MessageKind, Seq, Timestamp};
use serde_json::{Value, json};

use crate::support::{NOW_MS, context, player, slot};

/// A channel with GuessBot attached: alice, bob and carol may join; watcher is a spectator.
struct Game {
    context: EventContext,
    next_seq: i64,
}

impl Game {
    fn new(params: Value) -> (Self, Vec<BotPost>) {
        Self::with_players(params, &[])
    }

    fn with_players(params: Value, seated: &[&str]) -> (Self, Vec<BotPost>) {
        let mut context = context();
        context.params = params;
        context.players = seated.iter().map(|label| player(label)).collect();
        let mut game = Self {
            context,
            next_seq: 1,
        };
        let posts = game.event(Event::Init);
        (game, posts)
    }

    fn event(&mut self, event: Event) -> Vec<BotPost> {
        self.try_event(event).expect("GuessBot events succeed")
    }

    fn try_event(&mut self, event: Event) -> Result<Vec<BotPost>, bots::BotError> {
        self.context.event_seq = Seq(self.next_seq);
        self.next_seq += 1;
        let bot = builtin("guess").expect("GuessBot is builtin");
        let reaction = run_event(
            &bot,
            &self.context,
            &event,
            &crate::support::relaxed_limits(),
        )?;
        if let Some(state) = reaction.state {
            self.context.state = Some(state);
        }
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
            at: Timestamp(NOW_MS + seq.0),
            hash: domain::ChainHash::genesis(),
            nonce: None,
        }))
    }

    fn state(&self) -> &Value {
        self.context.state.as_ref().expect("GuessBot keeps state")
    }

    fn target(&self) -> i64 {
        self.state()["target"].as_i64().expect("target is a number")
    }
}

fn data(post: &BotPost) -> Value {
    Value::Object(post.body.data.clone().expect("GuessBot posts carry data"))
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
fn violation(posts: &[BotPost], to: &str, code: &str) {
    let data = only(posts, "violation");
    assert_eq!(data["code"], code, "{data}");
    assert_eq!(posts[0].to, Some(slot(to)), "violations are private");
}

/// Checks a reveal against the commitment posted at init, recomputing it in Rust.
#[track_caller]
fn assert_reveal_matches(reveal: &Value, commitment_post: &Value, game: &Game) {
    assert_eq!(reveal["commitment"], commitment_post["commitment"]);
    assert_eq!(reveal["channel_id"], game.context.channel_id.as_str());
    assert_eq!(reveal["bot_slot"], "referee");
    assert_eq!(reveal["scheme"], "mcp-multiplayer/commit/v1");
    let salt = hex::decode(reveal["salt"].as_str().expect("salt is hex")).expect("valid hex");
    assert!(salt.len() >= 16, "at least 128 bits of salt");
    let value = reveal["target"].to_string();
    assert_eq!(reveal["value"], value);
    let recomputed = bots::commitment(
        reveal["channel_id"].as_str().expect("string"),
        reveal["bot_slot"].as_str().expect("string"),
        &value,
        &salt,
    );
    assert_eq!(reveal["commitment"], recomputed);
}

#[test]
fn a_full_game_from_commitment_to_reveal() {
    let (mut game, posts) = Game::new(json!({}));
    let commitment = only(&posts, "commitment");
    assert_eq!(
        (commitment["min"].as_i64(), commitment["max"].as_i64()),
        (Some(1), Some(100))
    );
    let target = game.target();
    assert!((1..=100).contains(&target));

    violation(&game.say("alice", "50"), "alice", "GAME_NOT_STARTED");
    assert!(game.join("alice").is_empty(), "one player is not enough");
    violation(&game.say("alice", "50"), "alice", "GAME_NOT_STARTED");
    let start = only(&game.join("bob"), "start");
    assert_eq!(start["order"], json!(["alice", "bob"]));
    assert_eq!(start["next"], "alice", "the first to join plays first");

    violation(&game.say("bob", "50"), "bob", "BAD_TURN");
    violation(&game.say("alice", "101"), "alice", "BAD_MOVE");
    violation(&game.say("alice", "guess fifty"), "alice", "BAD_MOVE");
    violation(&game.say("carol", "50"), "carol", "BAD_TURN");
    assert!(
        game.say("alice", "good luck bob!").is_empty(),
        "chat is ignored"
    );

    // Binary search, alternating players, until someone hits the target.
    let (mut low, mut high) = (1, 100);
    let players = ["alice", "bob"];
    let mut turn = 0;
    let reveal = loop {
        let guess = (low + high) / 2;
        let text = if turn % 2 == 0 {
            format!("{guess}")
        } else {
            format!("guess {guess}")
        };
        let posts = game.say(players[turn % 2], &text);
        let data = data(&posts[0]);
        assert_eq!(posts.len(), 1);
        assert_eq!(posts[0].to, None, "hints are public");
        if data["type"] == "reveal" {
            assert_eq!(guess, target);
            break data;
        }
        assert_eq!(data["type"], "hint");
        assert_eq!(data["player"], players[turn % 2]);
        assert_eq!(data["next"], players[(turn + 1) % 2]);
        let distance = (guess - target).abs();
        let expected_hint = match distance {
            0..=3 => "hot",
            4..=10 => "warm",
            _ => "cold",
        };
        assert_eq!(data["hint"], expected_hint, "distance {distance}");
        if data["direction"] == "higher" {
            assert!(guess < target);
            low = guess + 1;
        } else {
            assert!(guess > target);
            high = guess - 1;
        }
        turn += 1;
    };
    assert_eq!(reveal["winner"], players[turn % 2]);
    assert_eq!(reveal["target"], target);
    assert_reveal_matches(&reveal, &commitment, &game);

    violation(&game.say("alice", "1"), "alice", "GAME_OVER");
    assert!(
        game.join("carol").is_empty(),
        "nobody joins a finished game"
    );
}

#[test]
fn rejoining_does_not_duplicate_a_player() {
    let (mut game, _) = Game::new(json!({}));
    game.join("alice");
    game.join("alice");
    let start = only(&game.join("bob"), "start");
    assert_eq!(start["order"], json!(["alice", "bob"]));
    assert!(game.join("alice").is_empty());
    assert!(game.join("bob").is_empty());
    assert_eq!(game.state()["players"].as_array().map(Vec::len), Some(2));
}

#[test]
fn spectators_do_not_play() {
    let (mut game, _) = Game::new(json!({}));
    game.join("alice");
    assert!(game.join("watcher").is_empty());
    assert_eq!(game.state()["phase"], "waiting");
}

#[test]
fn players_seated_before_the_bot_start_at_once() {
    let (_, posts) = Game::with_players(json!({}), &["bob", "alice"]);
    assert_eq!(posts.len(), 2);
    let start = data(&posts[1]);
    assert_eq!(start["type"], "start");
    assert_eq!(start["order"], json!(["bob", "alice"]));
}

#[test]
fn concede_hands_the_win_to_the_last_player() {
    let (mut game, posts) = Game::new(json!({"min": 10, "max": 20}));
    let commitment = only(&posts, "commitment");
    game.join("alice");
    game.join("bob");
    // Conceding works out of turn.
    let reveal = only(&game.say("bob", "Concede"), "reveal");
    assert_eq!(reveal["winner"], "alice");
    assert!((10..=20).contains(&game.target()));
    assert_reveal_matches(&reveal, &commitment, &game);
}

#[test]
fn three_players_continue_after_one_concedes_or_leaves() {
    let (mut game, _) = Game::new(json!({}));
    game.join("alice");
    game.join("bob");
    game.join("carol");
    let target = game.target();
    let miss = if target == 1 { 2 } else { 1 };
    let hint = only(&game.say("alice", &miss.to_string()), "hint");
    assert_eq!(hint["next"], "bob");
    let out = only(
        &game.send_data("bob", json!({"action": "concede"})),
        "player_out",
    );
    assert_eq!(out["next"], "carol", "bob's turn passes on");
    let hint = only(&game.send_data("carol", json!({"guess": miss})), "hint");
    assert_eq!(hint["next"], "alice");
    let reveal = only(&game.leave("carol"), "reveal");
    assert_eq!(reveal["winner"], "alice");
}

#[test]
fn data_moves_and_their_violations() {
    let (mut game, _) = Game::new(json!({}));
    game.join("alice");
    game.join("bob");
    violation(
        &game.send_data("alice", json!({"guess": "50"})),
        "alice",
        "BAD_MOVE",
    );
    violation(
        &game.send_data("alice", json!({"action": "dance"})),
        "alice",
        "BAD_MOVE",
    );
    violation(
        &game.send_data("alice", json!({"guess": 0})),
        "alice",
        "BAD_MOVE",
    );
    violation(
        &game.send_data("bob", json!({"guess": 5})),
        "bob",
        "BAD_TURN",
    );
    let target = game.target();
    let reveal = only(
        &game.send_data("alice", json!({"action": "guess", "value": target})),
        "reveal",
    );
    assert_eq!(reveal["winner"], "alice");
    assert_eq!(reveal["guesses"], 1);
}

#[test]
fn private_messages_to_others_are_not_moves() {
    let (mut game, _) = Game::new(json!({}));
    game.join("alice");
    game.join("bob");
    let body = || Body::new(Some("50".into()), None).expect("valid");
    assert!(game.post("alice", body(), Some("bob")).is_empty());
    let to_bot = game.post("alice", body(), Some("referee"));
    assert_eq!(to_bot.len(), 1, "a move addressed to the bot counts");
}

#[test]
fn random_turn_order_comes_from_the_seed() {
    let order_for = |seed: u8| {
        let mut context_seed = None;
        let (mut game, _) = Game::new(json!({"turn_order": "random"}));
        game.context.seed = BotSeed([seed; 32]);
        game.context.state = None;
        game.event(Event::Init);
        for label in ["alice", "bob", "carol"] {
            if let Some(start) = game.join(label).first() {
                context_seed = Some(data(start)["order"].clone());
            }
        }
        context_seed.expect("the game started")
    };
    let orders: std::collections::HashSet<String> =
        (0..12).map(|seed| order_for(seed).to_string()).collect();
    assert!(
        orders.len() > 1,
        "random order varies with the seed: {orders:?}"
    );
    assert_eq!(order_for(3), order_for(3));
}

#[test]
fn bad_params_fail_init_with_a_clear_message() {
    for (params, expected) in [
        (json!({"min": 5, "max": 5}), "must be less than"),
        (json!({"min": "1"}), "params.min must be an integer"),
        (json!({"turn_order": "fastest"}), "turn_order"),
    ] {
        let mut context = context();
        context.params = params;
        let bot = builtin("guess").expect("builtin");
        let error = run_event(
            &bot,
            &context,
            &Event::Init,
            &crate::support::relaxed_limits(),
        )
        .unwrap_err();
        assert_eq!(error.kind, BotErrorKind::Threw);
        assert!(error.message.contains(expected), "{error}");
        assert!(error.line.is_some(), "{error}");
    }
}
