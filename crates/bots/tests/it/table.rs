//! A small stand-in for the service, for the turn-based builtins (tictactoe, rps): it feeds a
//! builtin its events in channel order, keeps its state, keeps a clock, applies the bot's timer
//! requests and fires a timer when the clock reaches it, and records every post and the end of
//! the run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bots::{
    BotError, BotPost, Event, EventContext, Limits, Reaction, TimerRequest, builtin, run_event,
};
use domain::{Body, Message, MessageKind, Seq, Timestamp};
use serde_json::Value;

use crate::support::{NOW_MS, context, player, slot};

/// The bot's slot in [`context`].
pub const BOT: &str = "referee";

pub struct Table {
    pub bot: &'static str,
    pub context: EventContext,
    pub limits: Limits,
    next_seq: i64,
    /// The clock: the next event happens at this time.
    pub now: i64,
    /// Pending timers: tag → when it is due.
    pub timers: BTreeMap<String, i64>,
    /// `Some(reason)` once the bot ended its run.
    pub ended: Option<Option<String>>,
    /// Every post, in order.
    pub log: Vec<BotPost>,
    /// The longest event, in wall-clock time.
    pub slowest: Duration,
}

/// What one event did.
pub struct Step {
    pub posts: Vec<BotPost>,
    pub reaction: Reaction,
}

impl Table {
    /// `bot` attached with `params`, players `seated` already in their seats.
    pub fn open(bot: &'static str, params: Value, seated: &[&str]) -> (Self, Vec<BotPost>) {
        let mut table = Self::new(bot, params, seated, crate::support::relaxed_limits());
        let posts = table.event(Event::Init).posts;
        (table, posts)
    }

    pub fn new(bot: &'static str, params: Value, seated: &[&str], limits: Limits) -> Self {
        let mut context = context();
        context.params = params;
        context.players = seated.iter().map(|label| player(label)).collect();
        Self {
            bot,
            context,
            limits,
            next_seq: 1,
            now: NOW_MS,
            timers: BTreeMap::new(),
            ended: None,
            log: Vec::new(),
            slowest: Duration::ZERO,
        }
    }

    pub fn try_event(&mut self, event: Event) -> Result<Step, BotError> {
        self.context.event_seq = Seq(self.next_seq);
        self.context.now = Timestamp(self.now);
        self.next_seq += 1;
        let bot = builtin(self.bot).expect("the bot is builtin");
        let started = Instant::now();
        let reaction = run_event(&bot, &self.context, &event, &self.limits)?;
        self.slowest = self.slowest.max(started.elapsed());
        if let Some(state) = &reaction.state {
            self.context.state = Some(state.clone());
        }
        for request in &reaction.timers {
            match request {
                TimerRequest::Set { tag, ms } => {
                    self.timers
                        .insert(tag.clone(), self.now + i64::try_from(*ms).expect("small"));
                }
                TimerRequest::Cancel { tag } => {
                    self.timers.remove(tag);
                }
            }
        }
        if let Some(end) = &reaction.end {
            self.ended = Some(end.reason.clone());
        }
        self.log.extend(reaction.posts.iter().cloned());
        Ok(Step {
            posts: reaction.posts.clone(),
            reaction,
        })
    }

    pub fn step(&mut self, event: Event) -> Step {
        let bot = self.bot;
        self.try_event(event)
            .unwrap_or_else(|error| panic!("{bot} events succeed: {error}"))
    }

    pub fn event(&mut self, event: Event) -> Step {
        self.step(event)
    }

    /// Moves the clock on by `ms`, firing every timer that comes due on the way, as the
    /// service would. Returns the posts of the timers' events.
    pub fn advance(&mut self, ms: i64) -> Vec<BotPost> {
        let until = self.now + ms;
        let mut posts = Vec::new();
        while let Some((tag, due)) = self
            .timers
            .iter()
            .filter(|(_, due)| **due <= until)
            .min_by_key(|(_, due)| **due)
            .map(|(tag, due)| (tag.clone(), *due))
        {
            self.timers.remove(&tag);
            self.now = self.now.max(due);
            posts.extend(self.event(Event::Timer { tag }).posts);
        }
        self.now = until;
        posts
    }

    /// Fires the pending timer `tag` now, at its due time.
    pub fn fire(&mut self, tag: &str) -> Step {
        let due = self.timers.remove(tag).expect("the timer is pending");
        self.now = self.now.max(due);
        self.event(Event::Timer { tag: tag.into() })
    }

    pub fn join(&mut self, label: &str) -> Vec<BotPost> {
        let joined = player(label);
        if !self.context.players.contains(&joined) {
            self.context.players.push(joined.clone());
        }
        self.event(Event::Join(joined)).posts
    }

    pub fn leave(&mut self, label: &str) -> Vec<BotPost> {
        self.context.players.retain(|p| p.slot.as_str() != label);
        self.event(Event::Leave(player(label))).posts
    }

    /// A public text message.
    pub fn say(&mut self, label: &str, text: &str) -> Vec<BotPost> {
        self.post(label, text_body(text), None).posts
    }

    /// A text message addressed to the bot only.
    pub fn whisper(&mut self, label: &str, text: &str) -> Vec<BotPost> {
        self.post(label, text_body(text), Some(BOT)).posts
    }

    pub fn send_data(&mut self, label: &str, data: Value, to: Option<&str>) -> Vec<BotPost> {
        self.post(label, data_body(data), to).posts
    }

    pub fn post(&mut self, label: &str, body: Body, to: Option<&str>) -> Step {
        let event = self.message(label, body, to);
        self.step(event)
    }

    pub fn message(&self, label: &str, body: Body, to: Option<&str>) -> Event {
        Event::Message(Message {
            seq: Seq(self.next_seq),
            kind: MessageKind::User,
            sender: Some(slot(label)),
            sender_name: player(label).name,
            body,
            to: to.map(slot),
            at: Timestamp(self.now),
            hash: domain::ChainHash::genesis(),
            nonce: None,
        })
    }

    /// How many events the bot has run.
    pub fn events(&self) -> usize {
        usize::try_from(self.next_seq - 1).expect("positive")
    }

    pub fn state(&self) -> &Value {
        self.context.state.as_ref().expect("the bot keeps state")
    }
}

pub fn text_body(text: &str) -> Body {
    Body::new(Some(text.to_owned()), None).expect("valid text")
}

pub fn data_body(data: Value) -> Body {
    let Value::Object(map) = data else {
        panic!("data is an object")
    };
    Body::new(None, Some(map)).expect("valid data")
}

pub fn data(post: &BotPost) -> Value {
    Value::Object(
        post.body
            .data
            .clone()
            .expect("these bots' posts carry data"),
    )
}

/// The one post of `posts`, with its data type checked.
#[track_caller]
pub fn only(posts: &[BotPost], kind: &str) -> Value {
    assert_eq!(posts.len(), 1, "{posts:#?}");
    let data = data(&posts[0]);
    assert_eq!(data["type"], kind, "{data}");
    data
}

/// The data types of `posts`, in order.
pub fn types(posts: &[BotPost]) -> Vec<String> {
    posts
        .iter()
        .map(|post| data(post)["type"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// The post of type `kind` in `posts`.
#[track_caller]
pub fn find(posts: &[BotPost], kind: &str) -> Value {
    posts
        .iter()
        .map(data)
        .find(|data| data["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} post in {posts:#?}"))
}

/// A single private violation with `code` to `to`.
#[track_caller]
pub fn violation(posts: &[BotPost], to: &str, code: &str) {
    let data = only(posts, "violation");
    assert_eq!(data["code"], code, "{data}");
    assert_eq!(posts[0].to, Some(slot(to)), "violations are private");
}

/// Runs `bot`'s `on_init` with `params` and returns the error's message (it must throw).
#[track_caller]
pub fn refused_params(bot: &str, params: Value) -> String {
    let mut context = context();
    context.params = params.clone();
    let source = builtin(bot).expect("builtin");
    let error = run_event(
        &source,
        &context,
        &Event::Init,
        &crate::support::relaxed_limits(),
    )
    .expect_err(&format!("{params} is refused"));
    assert_eq!(error.kind, bots::BotErrorKind::Threw, "{error}");
    assert!(error.line.is_some(), "{error}");
    error.message
}

/// A small seeded generator for the property tests (splitmix64): no dependency, and the same
/// games on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// How many games a property test plays: `GAME_CASES` or `fallback`.
pub fn game_cases(fallback: usize) -> usize {
    std::env::var("GAME_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(fallback)
}

/// What a run of random games came to.
#[derive(Default)]
pub struct Summary {
    pub games: usize,
    pub events: usize,
    pub slowest: Duration,
    /// How games ended: `result/reason` of their result post, or `unfinished`.
    pub endings: BTreeMap<String, usize>,
}

/// Plays `cases` random games, `game(seed, limits)` each, on every core. One game in four runs
/// under the default limits (the 50 ms budget, not relaxed); the others get the relaxed ones so
/// that a loaded machine cannot fail them.
pub fn play_many(cases: usize, seed: u64, game: fn(u64, Limits) -> Table) -> Summary {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let summaries: Vec<Summary> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                scope.spawn(move || {
                    let mut summary = Summary::default();
                    for case in (thread..cases).step_by(threads) {
                        let limits = if case % 4 == 0 {
                            Limits::default()
                        } else {
                            crate::support::relaxed_limits()
                        };
                        let table = game(seed + case as u64, limits);
                        summary.games += 1;
                        summary.events += table.events();
                        summary.slowest = summary.slowest.max(table.slowest);
                        let ending = table
                            .log
                            .iter()
                            .rev()
                            .map(data)
                            .find(|d| d["type"] == "result")
                            .map_or("unfinished".to_owned(), |d| {
                                format!(
                                    "{}/{}",
                                    d["result"].as_str().unwrap_or(""),
                                    d["reason"].as_str().unwrap_or("")
                                )
                            });
                        *summary.endings.entry(ending).or_default() += 1;
                    }
                    summary
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut total = Summary::default();
    for summary in summaries {
        total.games += summary.games;
        total.events += summary.events;
        total.slowest = total.slowest.max(summary.slowest);
        for (ending, count) in summary.endings {
            *total.endings.entry(ending).or_default() += count;
        }
    }
    total
}
