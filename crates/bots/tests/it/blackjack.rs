//! BlackjackBot played through whole games with a stand-in for the service: events in channel
//! order, the state kept between them, timers fired on demand. Every game is audited from its
//! public posts alone: the shoe recomputed from the revealed values with the construction the
//! bot's header documents, every card dealt checked against it, chips and totals checked.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bots::{
    BotPost, BotSeed, Event, EventContext, Limits, Player, SlotInfo, TimerRequest, builtin,
    run_event,
};
use domain::{Body, ChannelId, Message, MessageKind, Seq, SlotKind, Timestamp};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{NOW_MS, slot};

const SEATS: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "frank"];
const SHOE_LABEL: &str = "mcp-multiplayer/blackjack-shoe/v1";

fn name_of(label: &str) -> String {
    let mut name = label.to_owned();
    name[..1].make_ascii_uppercase();
    name
}

fn seat(label: &str) -> Player {
    Player {
        slot: slot(label),
        name: name_of(label),
    }
}

/// A channel with BlackjackBot in `referee`, six invite slots and a spectator `watcher`.
struct Table {
    context: EventContext,
    limits: Limits,
    next_seq: i64,
    now: i64,
    /// Pending timers: tag and due time.
    timers: Vec<(String, i64)>,
    /// Every post, in order, with the seq of the event that made it.
    posts: Vec<BotPost>,
    ended: bool,
    /// What each entropy commitment was made over, as the sender wrote it.
    entropy_texts: HashMap<String, String>,
    /// CPU of the slowest event.
    slowest: Duration,
}

impl Table {
    fn new(params: Value, seated: &[&str], seed: u8) -> Self {
        let mut slots = vec![SlotInfo {
            slot: slot("referee"),
            kind: SlotKind::Bot,
            holder: None,
        }];
        for label in SEATS {
            slots.push(SlotInfo {
                slot: slot(label),
                kind: SlotKind::Invite,
                holder: Some(name_of(label)),
            });
        }
        slots.push(SlotInfo {
            slot: slot("watcher"),
            kind: SlotKind::Spectator,
            holder: Some("Watcher".into()),
        });
        let context = EventContext {
            channel_id: ChannelId::from_random([0xb1; 12]),
            bot_slot: slot("referee"),
            event_seq: Seq(1),
            now: Timestamp(NOW_MS),
            slots,
            players: seated.iter().map(|label| seat(label)).collect(),
            params,
            state: None,
            seed: BotSeed([seed; 32]),
            reveal_private: true,
        };
        let mut table = Self {
            context,
            limits: crate::support::relaxed_limits(),
            next_seq: 1,
            now: NOW_MS,
            timers: Vec::new(),
            posts: Vec::new(),
            ended: false,
            entropy_texts: HashMap::new(),
            slowest: Duration::ZERO,
        };
        table.event(Event::Init);
        table
    }

    fn event(&mut self, event: Event) -> Vec<BotPost> {
        assert!(!self.ended, "no events after the run ended");
        self.context.event_seq = Seq(self.next_seq);
        self.context.now = Timestamp(self.now);
        self.next_seq += 1;
        let bot = builtin("blackjack").expect("BlackjackBot is builtin");
        let started = Instant::now();
        let reaction = run_event(&bot, &self.context, &event, &self.limits)
            .unwrap_or_else(|error| panic!("event {event:?} failed: {error}"));
        self.slowest = self.slowest.max(started.elapsed());
        if let Some(state) = reaction.state {
            let size = serde_json::to_vec(&state).expect("json").len();
            assert!(size < 64 * 1024, "state of {size} bytes");
            self.context.state = Some(state);
        }
        for timer in reaction.timers {
            match timer {
                TimerRequest::Set { tag, ms } => {
                    self.timers.retain(|(t, _)| *t != tag);
                    self.timers.push((tag, self.now + ms as i64));
                }
                TimerRequest::Cancel { tag } => self.timers.retain(|(t, _)| *t != tag),
            }
        }
        if reaction.end.is_some() {
            self.ended = true;
        }
        self.posts.extend(reaction.posts.iter().cloned());
        reaction.posts
    }

    fn join(&mut self, label: &str) -> Vec<BotPost> {
        if !self
            .context
            .players
            .iter()
            .any(|p| p.slot.as_str() == label)
        {
            self.context.players.push(seat(label));
        }
        self.event(Event::Join(seat(label)))
    }

    fn leave(&mut self, label: &str) -> Vec<BotPost> {
        self.context.players.retain(|p| p.slot.as_str() != label);
        self.event(Event::Leave(seat(label)))
    }

    fn message(&mut self, label: &str, body: Body, to: Option<&str>) -> Vec<BotPost> {
        self.now += 1000;
        let seq = Seq(self.next_seq);
        self.event(Event::Message(Message {
            seq,
            kind: MessageKind::User,
            sender: Some(slot(label)),
            sender_name: name_of(label),
            body,
            to: to.map(slot),
            at: Timestamp(self.now),
            hash: domain::ChainHash::genesis(),
            nonce: None,
        }))
    }

    fn say(&mut self, label: &str, text: &str) -> Vec<BotPost> {
        self.message(
            label,
            Body::new(Some(text.into()), None).expect("text"),
            None,
        )
    }

    fn send_data(&mut self, label: &str, data: Value) -> Vec<BotPost> {
        let Value::Object(map) = data else {
            panic!("data is an object")
        };
        self.message(label, Body::new(None, Some(map)).expect("data"), None)
    }

    /// Sends `text` privately to the bot and remembers it if the bot took it as entropy.
    fn entropy(&mut self, label: &str, text: &str) -> Vec<BotPost> {
        let body = Body::new(Some(text.into()), None).expect("text");
        let posts = self.message(label, body, Some("referee"));
        if let Some(received) = posts.iter().find(|p| kind(p) == "entropy_received") {
            let data = data(received);
            assert_eq!(data["slot"], label);
            self.entropy_texts.insert(
                data["commitment"].as_str().expect("commitment").to_owned(),
                text.to_owned(),
            );
        }
        posts
    }

    /// Fires the pending timer `tag` (moving the clock to its due time).
    fn fire(&mut self, prefix: &str) -> Vec<BotPost> {
        let index = self
            .timers
            .iter()
            .position(|(tag, _)| tag.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} timer pending: {:?}", self.timers));
        let (tag, due) = self.timers.remove(index);
        self.now = self.now.max(due);
        self.event(Event::Timer { tag })
    }

    /// Fires the earliest pending timer; false when none is pending.
    fn fire_next(&mut self) -> bool {
        let Some(index) = (0..self.timers.len()).min_by_key(|&i| self.timers[i].1) else {
            return false;
        };
        let (tag, due) = self.timers.remove(index);
        self.now = self.now.max(due);
        self.event(Event::Timer { tag });
        true
    }

    fn state(&self) -> &Value {
        self.context.state.as_ref().expect("state")
    }

    fn phase(&self) -> String {
        self.state()["phase"].as_str().unwrap_or("").to_owned()
    }

    /// The slot and legal actions of whoever is to act, if anyone.
    fn turn(&self) -> Option<(String, Vec<String>)> {
        let posts = self.posts.iter().rev();
        for post in posts {
            if post.to.is_some() {
                continue;
            }
            let data = data(post);
            if data["type"] == "table" {
                let turn = &data["turn"];
                if turn.is_null() {
                    return None;
                }
                let legal = turn["legal"]
                    .as_array()
                    .expect("legal")
                    .iter()
                    .map(|a| a.as_str().expect("action").to_owned())
                    .collect();
                return Some((turn["slot"].as_str().expect("slot").to_owned(), legal));
            }
            if ["result", "betting", "entropy_round", "void", "final"]
                .contains(&data["type"].as_str().unwrap_or(""))
            {
                return None;
            }
        }
        None
    }

    /// Sends entropy for everyone the open round waits for.
    fn all_entropy(&mut self) {
        let waiting: Vec<String> = self.state()["round"]["entries"]
            .as_array()
            .expect("an entropy round is open")
            .iter()
            .filter(|e| e["h"].is_null())
            .map(|e| e["slot"].as_str().expect("slot").to_owned())
            .collect();
        for (index, label) in waiting.iter().enumerate() {
            self.entropy(
                label,
                &format!("entropy: {label} says {index} purple otters"),
            );
        }
    }
}

fn data(post: &BotPost) -> Value {
    Value::Object(
        post.body
            .data
            .clone()
            .expect("BlackjackBot posts carry data"),
    )
}

fn kind(post: &BotPost) -> String {
    post.body
        .data
        .as_ref()
        .and_then(|d| d.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

fn find(posts: &[BotPost], wanted: &str) -> Value {
    let post = posts
        .iter()
        .find(|p| kind(p) == wanted)
        .unwrap_or_else(|| panic!("no {wanted} post in {posts:#?}"));
    data(post)
}

#[track_caller]
fn violation(posts: &[BotPost], to: &str, code: &str) {
    assert_eq!(posts.len(), 1, "{posts:#?}");
    let data = data(&posts[0]);
    assert_eq!(data["type"], "violation");
    assert_eq!(data["code"], code, "{data}");
    assert_eq!(posts[0].to, Some(slot(to)), "violations are private");
}

// ---- the documented construction, in Rust ----

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn unshuffled(decks: usize) -> Vec<String> {
    let mut cards = Vec::new();
    for _ in 0..decks {
        for suit in "SHDC".chars() {
            for rank in "A23456789TJQK".chars() {
                cards.push(format!("{rank}{suit}"));
            }
        }
    }
    cards
}

fn shoe_key(decks: usize, bot_random: &str, entropy_hashes: &[String]) -> String {
    let mut input = format!("{SHOE_LABEL}|{decks}|{bot_random}");
    for hash in entropy_hashes {
        input.push('|');
        input.push_str(hash);
    }
    sha256_hex(&input)
}

fn shoe_order(key: &str, decks: usize) -> String {
    let mut cards = unshuffled(decks);
    let mut stream = Vec::new();
    let mut block = 0u64;
    let mut offset = 0;
    let mut next32 = || {
        if offset + 4 > stream.len() {
            stream = Sha256::digest(format!("{key}:{block}").as_bytes()).to_vec();
            block += 1;
            offset = 0;
        }
        let x = u32::from_be_bytes(stream[offset..offset + 4].try_into().expect("4 bytes"));
        offset += 4;
        u64::from(x)
    };
    for i in (1..cards.len()).rev() {
        let m = i as u64 + 1;
        let limit = (1u64 << 32) - ((1u64 << 32) % m);
        let mut x = next32();
        while x >= limit {
            x = next32();
        }
        cards.swap(i, (x % m) as usize);
    }
    cards.concat()
}

fn commit(channel: &str, value: &str, salt_hex: &str) -> String {
    let salt = hex::decode(salt_hex).expect("hex salt");
    assert!(salt.len() >= 16);
    bots::commitment(channel, "referee", value, &salt)
}

fn value(card: char) -> u32 {
    match card {
        'A' => 1,
        'T' | 'J' | 'Q' | 'K' => 10,
        digit => digit.to_digit(10).expect("rank"),
    }
}

/// (total, soft) of a hand of card codes.
fn total(cards: &[String]) -> (u32, bool) {
    let sum: u32 = cards
        .iter()
        .map(|c| value(c.chars().next().expect("rank")))
        .sum();
    let ace = cards.iter().any(|c| c.starts_with('A'));
    if ace && sum + 10 <= 21 {
        (sum + 10, true)
    } else {
        (sum, false)
    }
}

fn cards_of(value: &Value) -> Vec<String> {
    value
        .as_array()
        .expect("cards")
        .iter()
        .map(|c| c.as_str().expect("card").to_owned())
        .collect()
}

/// What an audit of a whole game found, for the property test's tallies.
#[derive(Default, Debug)]
struct Audit {
    shoes: usize,
    hands: usize,
    cards: usize,
    blackjacks: usize,
    splits: usize,
    doubles: usize,
    voids: usize,
    dealer_busts: usize,
}

struct ShoeAudit {
    commitment: String,
    bot_random_commitment: String,
    entries: Vec<(String, Option<String>)>,
    /// (pos, to, card): the hole card is None until it turns.
    draws: Vec<(u64, String, Option<String>)>,
}

/// Audits a game from its public posts: the shoe, every card, chips, totals and the dealer's rule.
fn audit(table: &Table, chips_each: i64) -> Audit {
    let channel = table.context.channel_id.as_str().to_owned();
    let mut found = Audit::default();
    let mut round_commitment: Option<String> = None;
    let mut shoe: Option<ShoeAudit> = None;
    let mut hand_draws: Vec<(String, Option<String>, u64)> = Vec::new();
    let mut hole_commitment: Option<String> = None;
    let mut players_ever: usize = 0;
    for post in table.posts.iter().filter(|p| p.to.is_none()) {
        let data = data(post);
        let kind = data["type"].as_str().expect("type").to_owned();
        if let Some(draws) = data
            .get("draws")
            .and_then(Value::as_array)
            .filter(|d| !d.is_empty())
        {
            let shoe = shoe.as_mut().expect("cards are dealt from a shuffled shoe");
            for draw in draws {
                let pos = draw["pos"].as_u64().expect("pos");
                let to = draw["to"].as_str().expect("to").to_owned();
                let card = draw["card"].as_str().map(str::to_owned);
                let expected = shoe.draws.len() as u64;
                assert_eq!(pos, expected, "cards come off the shoe in order");
                shoe.draws.push((pos, to.clone(), card.clone()));
                hand_draws.push((to, card, pos));
            }
        }
        if let Some(hole) = data.get("hole").filter(|h| !h.is_null()) {
            let card = hole["card"].as_str().expect("card");
            let salt = hole["salt"].as_str().expect("salt");
            assert_eq!(
                commit(&channel, card, salt),
                hole["commitment"].as_str().expect("commitment"),
                "the hole card matches its commitment"
            );
            assert_eq!(
                Some(
                    hole["commitment"]
                        .as_str()
                        .expect("well-formed, as the bot posts it")
                        .to_owned()
                ),
                hole_commitment
            );
            let pos = hole["pos"].as_u64().expect("pos");
            let shoe = shoe.as_mut().expect("a shoe");
            let draw = &mut shoe.draws[pos as usize];
            assert_eq!(draw.1, "dealer");
            assert!(draw.2.is_none(), "the hole card was hidden");
            draw.2 = Some(card.to_owned());
            for draw in hand_draws.iter_mut().filter(|d| d.2 == pos) {
                draw.1 = Some(card.to_owned());
            }
        }
        match kind.as_str() {
            "rules" | "seated" | "left" | "bet" | "entropy_received" => {}
            "entropy_round" => {
                round_commitment = Some(
                    data["bot_random_commitment"]
                        .as_str()
                        .expect("well-formed, as the bot posts it")
                        .into(),
                );
            }
            "shuffle" => {
                assert!(shoe.is_none(), "the last shoe was revealed first");
                assert_eq!(
                    data["bot_random_commitment"].as_str(),
                    round_commitment.as_deref()
                );
                shoe = Some(ShoeAudit {
                    commitment: data["commitment"]
                        .as_str()
                        .expect("well-formed, as the bot posts it")
                        .into(),
                    bot_random_commitment: round_commitment.take().expect("a round"),
                    entries: data["entries"]
                        .as_array()
                        .expect("well-formed, as the bot posts it")
                        .iter()
                        .map(|e| {
                            (
                                e["slot"]
                                    .as_str()
                                    .expect("well-formed, as the bot posts it")
                                    .to_owned(),
                                e["commitment"].as_str().map(str::to_owned),
                            )
                        })
                        .collect(),
                    draws: Vec::new(),
                });
            }
            "betting" => {
                assert!(hand_draws.is_empty(), "every hand was settled or void");
            }
            "table" => {
                hole_commitment = data["dealer"]["hole_commitment"]
                    .as_str()
                    .map(str::to_owned);
                assert!(hole_commitment.is_some());
                for hand in data["hands"]
                    .as_array()
                    .expect("well-formed, as the bot posts it")
                {
                    let cards = cards_of(&hand["cards"]);
                    assert_eq!(hand["total"], total(&cards).0);
                    assert_eq!(hand["soft"], total(&cards).1);
                    if hand["status"] == "play" {
                        assert!(total(&cards).0 < 21);
                    }
                }
                if let Some(action) = data.get("action").filter(|a| !a.is_null()) {
                    match action["action"].as_str() {
                        Some("split") => found.splits += 1,
                        Some("double") => found.doubles += 1,
                        _ => {}
                    }
                }
            }
            "result" => {
                found.hands += 1;
                check_result(&data, &hand_draws);
                let dealer = cards_of(&data["dealer"]["cards"]);
                if total(&dealer).0 > 21 {
                    found.dealer_busts += 1;
                }
                hand_draws.clear();
                hole_commitment = None;
                check_chips(&data, chips_each);
                players_ever = players_ever.max(
                    data["chips"]
                        .as_object()
                        .expect("well-formed, as the bot posts it")
                        .len(),
                );
            }
            "void" => {
                found.voids += 1;
                hand_draws.clear();
                check_chips(&data, chips_each);
            }
            "shoe_reveal" => {
                let shoe = shoe.take().expect("a shoe to reveal");
                found.shoes += 1;
                found.cards += shoe.draws.len();
                check_reveal(table, &channel, &data, &shoe);
            }
            "round_reveal" => {
                let value = data["bot_random"]
                    .as_str()
                    .expect("well-formed, as the bot posts it");
                let salt = data["bot_random_salt"]
                    .as_str()
                    .expect("well-formed, as the bot posts it");
                assert_eq!(
                    Some(commit(&channel, value, salt)),
                    round_commitment.take(),
                    "an unused round's value matches its commitment"
                );
            }
            "final" => {
                let standings = data["standings"]
                    .as_array()
                    .expect("well-formed, as the bot posts it");
                let chips: i64 = standings
                    .iter()
                    .map(|s| {
                        s["chips"]
                            .as_i64()
                            .expect("well-formed, as the bot posts it")
                    })
                    .sum();
                let house = data["house"]
                    .as_i64()
                    .expect("well-formed, as the bot posts it");
                assert_eq!(
                    chips + house,
                    chips_each * standings.len() as i64,
                    "chips are conserved"
                );
                assert!(standings.len() >= players_ever);
            }
            other => panic!("unknown post type {other}"),
        }
        if kind == "result" || kind == "void" {
            for post in &data["results"].as_array().cloned().unwrap_or_default() {
                if post["outcome"] == "blackjack" {
                    found.blackjacks += 1;
                }
            }
        }
    }
    assert!(shoe.is_none(), "the last shoe was revealed");
    assert!(table.ended, "the game ended");
    found
}

fn check_chips(data: &Value, chips_each: i64) {
    let chips = data["chips"]
        .as_object()
        .expect("well-formed, as the bot posts it");
    let sum: i64 = chips
        .values()
        .map(|c| c.as_i64().expect("well-formed, as the bot posts it"))
        .sum();
    assert_eq!(
        sum + data["house"]
            .as_i64()
            .expect("well-formed, as the bot posts it"),
        chips_each * chips.len() as i64,
        "chips are conserved between hands: {data}"
    );
    assert!(
        chips
            .values()
            .all(|c| c.as_i64().expect("well-formed, as the bot posts it") >= 0)
    );
}

/// A settled hand: the cards come from this hand's draws, totals and payouts follow the rules,
/// and the dealer drew to 17, hitting soft 17.
fn check_result(data: &Value, hand_draws: &[(String, Option<String>, u64)]) {
    let dealer = cards_of(&data["dealer"]["cards"]);
    let dealt_to = |to: &str| -> Vec<String> {
        hand_draws
            .iter()
            .filter(|d| d.0 == to)
            .map(|d| d.1.clone().expect("every card is known at settlement"))
            .collect()
    };
    assert_eq!(
        dealer,
        dealt_to("dealer"),
        "the dealer's cards are the ones dealt"
    );
    let (dealer_total, _) = total(&dealer);
    assert_eq!(data["dealer"]["total"], dealer_total);
    let dealer_blackjack = data["dealer"]["blackjack"]
        .as_bool()
        .expect("well-formed, as the bot posts it");
    assert_eq!(dealer_blackjack, dealer.len() == 2 && dealer_total == 21);
    let results = data["results"]
        .as_array()
        .expect("well-formed, as the bot posts it");
    let live = results
        .iter()
        .any(|r| r["outcome"] != "bust" && r["outcome"] != "blackjack" && !dealer_blackjack)
        || results
            .iter()
            .any(|r| r["outcome"] == "push" && !dealer_blackjack);
    // The dealer's rule: every card after the first two was drawn on < 17 or soft 17, and the
    // dealer stopped on hard 17+ or soft 18+ (or did not draw at all when no hand was live).
    for n in 2..dealer.len() {
        let (t, soft) = total(&dealer[..n]);
        assert!(
            t < 17 || (t == 17 && soft),
            "dealer drew on {t} ({dealer:?})"
        );
    }
    if live && !dealer_blackjack {
        let (t, soft) = total(&dealer);
        assert!(
            t >= 17 && !(t == 17 && soft),
            "dealer stopped early: {dealer:?}"
        );
    } else {
        assert_eq!(dealer.len(), 2, "no live hand: the dealer does not draw");
    }
    let mut per_slot: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for result in results {
        let cards = cards_of(&result["cards"]);
        let (t, _) = total(&cards);
        assert_eq!(result["total"], t);
        let bet = result["bet"]
            .as_i64()
            .expect("well-formed, as the bot posts it");
        let net = result["net"]
            .as_i64()
            .expect("well-formed, as the bot posts it");
        let outcome = result["outcome"]
            .as_str()
            .expect("well-formed, as the bot posts it");
        let expected = match outcome {
            "bust" => {
                assert!(t > 21);
                -bet
            }
            "blackjack" => {
                assert!(cards.len() == 2 && t == 21 && !dealer_blackjack);
                bet * 3 / 2
            }
            "win" => {
                assert!(t <= 21 && (dealer_total > 21 || t > dealer_total));
                bet
            }
            "push" => {
                assert!(t == dealer_total || (dealer_blackjack && t == 21 && cards.len() == 2));
                0
            }
            "lose" => {
                assert!(t <= 21 && (dealer_blackjack || (dealer_total <= 21 && t < dealer_total)));
                -bet
            }
            other => panic!("unknown outcome {other}"),
        };
        assert_eq!(net, expected, "{result}");
        per_slot
            .entry(
                result["slot"]
                    .as_str()
                    .expect("well-formed, as the bot posts it")
                    .to_owned(),
            )
            .or_default()
            .extend(cards);
    }
    for (slot, mut cards) in per_slot {
        let mut dealt = dealt_to(&slot);
        cards.sort();
        dealt.sort();
        assert_eq!(cards, dealt, "{slot}'s cards are the ones dealt to {slot}");
    }
}

fn check_reveal(table: &Table, channel: &str, data: &Value, shoe: &ShoeAudit) {
    let decks = data["decks"]
        .as_u64()
        .expect("well-formed, as the bot posts it") as usize;
    let order = data["order"]
        .as_str()
        .expect("well-formed, as the bot posts it");
    assert_eq!(data["commitment"].as_str(), Some(shoe.commitment.as_str()));
    assert_eq!(
        commit(
            channel,
            order,
            data["salt"]
                .as_str()
                .expect("well-formed, as the bot posts it")
        ),
        shoe.commitment,
        "the order matches the commitment posted at the shuffle"
    );
    let bot_random = data["bot_random"]
        .as_str()
        .expect("well-formed, as the bot posts it");
    assert_eq!(bot_random.len(), 64);
    assert_eq!(
        commit(
            channel,
            bot_random,
            data["bot_random_salt"]
                .as_str()
                .expect("well-formed, as the bot posts it")
        ),
        shoe.bot_random_commitment,
        "the bot's value matches the commitment posted before any entropy"
    );
    let entries = data["entries"]
        .as_array()
        .expect("well-formed, as the bot posts it");
    assert_eq!(entries.len(), shoe.entries.len());
    let mut hashes = Vec::new();
    for (entry, (slot, commitment)) in entries.iter().zip(&shoe.entries) {
        assert_eq!(entry["slot"].as_str(), Some(slot.as_str()));
        let hash = entry["entropy_sha256"]
            .as_str()
            .expect("well-formed, as the bot posts it")
            .to_owned();
        match commitment {
            None => {
                assert_eq!(entry["missing"], true);
                assert_eq!(hash, sha256_hex(""), "missing entropy is the empty string");
            }
            Some(commitment) => {
                assert_eq!(entry["commitment"].as_str(), Some(commitment.as_str()));
                let text = &table.entropy_texts[commitment];
                assert_eq!(hash, sha256_hex(text), "the entropy went in unchanged");
                assert_eq!(
                    &commit(
                        channel,
                        text,
                        entry["salt"]
                            .as_str()
                            .expect("well-formed, as the bot posts it")
                    ),
                    commitment
                );
            }
        }
        hashes.push(hash);
    }
    let key = shoe_key(decks, bot_random, &hashes);
    assert_eq!(data["shoe_key"].as_str(), Some(key.as_str()));
    let recomputed = shoe_order(&key, decks);
    assert_eq!(recomputed, order, "the order is the documented shuffle");
    // The shoe holds exactly `decks` of every card.
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for i in (0..order.len()).step_by(2) {
        *counts.entry(&order[i..i + 2]).or_default() += 1;
    }
    assert_eq!(counts.len(), 52);
    assert!(counts.values().all(|&n| n == decks));
    // Every card dealt was the next card of the order.
    assert_eq!(data["dealt"].as_u64(), Some(shoe.draws.len() as u64));
    for (pos, _, card) in &shoe.draws {
        let expected = &order[*pos as usize * 2..*pos as usize * 2 + 2];
        assert_eq!(
            card.as_deref(),
            Some(expected),
            "card {pos} of the shoe (hidden cards are revealed by now)"
        );
    }
}

// ---- whole hands ----

/// Opens a table for `players`, sends everyone's entropy: betting is open for hand 1.
fn open_table(params: Value, players: &[&str], seed: u8) -> Table {
    let mut table = Table::new(params, &[], seed);
    for label in players {
        table.join(label);
    }
    assert_eq!(table.phase(), "entropy");
    table.all_entropy();
    assert_eq!(table.phase(), "betting");
    table
}

/// Plays until the game ends with a simple strategy: hit below 17, stand otherwise, double on
/// 11, split eights and aces.
fn play_out(table: &mut Table, bet: i64) {
    for _ in 0..10_000 {
        if table.ended {
            return;
        }
        match table.phase().as_str() {
            "entropy" => table.all_entropy(),
            "betting" => {
                let waiting: Vec<String> = table.state()["players"]
                    .as_array()
                    .expect("well-formed, as the bot posts it")
                    .iter()
                    .filter(|p| {
                        p["left"] == false
                            && p["bet"] == 0
                            && p["chips"]
                                .as_i64()
                                .expect("well-formed, as the bot posts it")
                                >= table.state()["cfg"]["min_bet"]
                                    .as_i64()
                                    .expect("well-formed, as the bot posts it")
                    })
                    .map(|p| {
                        p["slot"]
                            .as_str()
                            .expect("well-formed, as the bot posts it")
                            .to_owned()
                    })
                    .collect();
                for label in waiting {
                    let chips = table.state()["players"]
                        .as_array()
                        .expect("well-formed, as the bot posts it")
                        .iter()
                        .find(|p| p["slot"] == label.as_str())
                        .expect("well-formed, as the bot posts it")["chips"]
                        .as_i64()
                        .expect("well-formed, as the bot posts it");
                    table.say(&label, &format!("bet {}", bet.min(chips)));
                }
            }
            "playing" => {
                let (label, legal) = table.turn().expect("someone is to act");
                let state = table.state();
                let turn = &state["turn"];
                let player = &state["players"][turn["p"]
                    .as_u64()
                    .expect("well-formed, as the bot posts it")
                    as usize];
                let hand = &player["hands"][turn["h"]
                    .as_u64()
                    .expect("well-formed, as the bot posts it")
                    as usize];
                let code = hand["c"]
                    .as_str()
                    .expect("well-formed, as the bot posts it");
                let cards: Vec<String> = (0..code.len())
                    .step_by(2)
                    .map(|i| code[i..i + 2].to_owned())
                    .collect();
                let (t, _) = total(&cards);
                let can = |a: &str| legal.iter().any(|l| l == a);
                let pair = cards.len() == 2 && cards[0][..1] == cards[1][..1];
                let action = if can("split")
                    && pair
                    && (cards[0].starts_with('8') || cards[0].starts_with('A'))
                {
                    "split"
                } else if can("double") && t == 11 {
                    "double"
                } else if t < 17 {
                    "hit"
                } else {
                    "stand"
                };
                table.say(&label, action);
            }
            other => panic!("stuck in {other}"),
        }
    }
    panic!("the game did not end");
}

#[test]
fn one_player_plays_a_whole_game_and_the_shoe_checks_out() {
    let mut table = open_table(json!({"hands": 6, "decks": 1}), &["alice"], 1);
    play_out(&mut table, 50);
    let found = audit(&table, 1000);
    assert_eq!(found.hands, 6);
    assert!(found.shoes >= 1);
    let last = table.posts.last().expect("posts");
    assert_eq!(kind(last), "shoe_reveal");
}

#[test]
fn three_players_play_a_whole_game_across_shoes() {
    let mut table = open_table(
        json!({"hands": 12, "decks": 1}),
        &["alice", "bob", "carol"],
        2,
    );
    play_out(&mut table, 100);
    let found = audit(&table, 1000);
    assert_eq!(found.hands, 12);
    assert!(
        found.shoes >= 2,
        "a one-deck shoe for three players is reshuffled: {found:?}"
    );
    let final_post = table
        .posts
        .iter()
        .find(|p| kind(p) == "final")
        .map(data)
        .expect("well-formed, as the bot posts it");
    assert_eq!(final_post["hands_played"], 12);
    assert_eq!(
        final_post["standings"]
            .as_array()
            .expect("well-formed, as the bot posts it")
            .len(),
        3
    );
}

/// Finds a seed and table whose first deal satisfies `wanted` (the state shows the cards).
fn dealt_where(players: &[&str], params: Value, wanted: impl Fn(&Value) -> bool) -> Table {
    for seed in 0..=255u8 {
        let mut table = open_table(params.clone(), players, seed);
        for label in players {
            table.say(label, "bet 100");
        }
        if !table.ended && table.phase() == "playing" && wanted(table.state()) {
            return table;
        }
    }
    panic!("no seed deals that");
}

fn hand_cards(state: &Value, player: usize, hand: usize) -> String {
    state["players"][player]["hands"][hand]["c"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[test]
fn a_hand_with_split_and_double() {
    let mut table = dealt_where(&["alice"], json!({"hands": 1}), |state| {
        let c = hand_cards(state, 0, 0);
        c.len() == 4 && c[..1] == c[2..3] && c[..1] != *"A" && state["turn"]["p"] == 0
    });
    let before = table.posts.len();
    let split = find(&table.say("alice", "split"), "table");
    assert_eq!(
        split["hands"]
            .as_array()
            .expect("well-formed, as the bot posts it")
            .len(),
        2
    );
    assert_eq!(split["chips"]["alice"], 800, "a split puts up a second bet");
    // Play both hands: double the first if allowed, stand on the second.
    let legal = split["turn"]["legal"].clone();
    if split["turn"]["hand"] == 0
        && legal
            .as_array()
            .expect("well-formed, as the bot posts it")
            .contains(&json!("double"))
    {
        let posts = table.send_data("alice", json!({"action": "double"}));
        let doubled = find(&posts, "table");
        assert_eq!(doubled["hands"][0]["bet"], 200);
        assert_eq!(
            doubled["hands"][0]["cards"]
                .as_array()
                .expect("well-formed, as the bot posts it")
                .len(),
            3
        );
    }
    while table.phase() == "playing" {
        table.say("alice", "stand");
    }
    assert!(table.ended, "one hand and the game is over");
    assert!(table.posts[before..].iter().any(|p| kind(p) == "result"));
    let found = audit(&table, 1000);
    assert_eq!(found.splits, 1);
}

#[test]
fn blackjack_pays_three_to_two() {
    let mut table = dealt_where(&["alice", "bob"], json!({"hands": 1}), |state| {
        let c = hand_cards(state, 0, 0);
        let cards: Vec<String> = (0..c.len())
            .step_by(2)
            .map(|i| c[i..i + 2].to_owned())
            .collect();
        cards.len() == 2 && total(&cards).0 == 21
    });
    while table.phase() == "playing" {
        let (label, _) = table.turn().expect("someone is to act");
        table.say(&label, "stand");
    }
    let result = table
        .posts
        .iter()
        .rev()
        .find(|p| kind(p) == "result")
        .map(data)
        .expect("well-formed, as the bot posts it");
    let alice = result["results"]
        .as_array()
        .expect("well-formed, as the bot posts it")
        .iter()
        .find(|r| r["slot"] == "alice")
        .expect("well-formed, as the bot posts it");
    if result["dealer"]["blackjack"] == true {
        assert_eq!(alice["outcome"], "push");
    } else {
        assert_eq!(alice["outcome"], "blackjack");
        assert_eq!(alice["net"], 150);
        assert_eq!(result["chips"]["alice"], 1150);
    }
    audit(&table, 1000);
}

#[test]
fn outcomes_cover_push_bust_and_dealer_rules() {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for seed in 0..24u8 {
        let mut table = open_table(
            json!({"hands": 8, "decks": 2}),
            &["alice", "bob", "carol"],
            seed,
        );
        play_out(&mut table, 20);
        audit(&table, 1000);
        for post in table.posts.iter().filter(|p| kind(p) == "result") {
            let data = data(post);
            for result in data["results"]
                .as_array()
                .expect("well-formed, as the bot posts it")
            {
                *seen
                    .entry(
                        result["outcome"]
                            .as_str()
                            .expect("well-formed, as the bot posts it")
                            .to_owned(),
                    )
                    .or_default() += 1;
            }
            if total(&cards_of(&data["dealer"]["cards"])).0 > 21 {
                *seen.entry("dealer_bust".into()).or_default() += 1;
            }
            let dealer = cards_of(&data["dealer"]["cards"]);
            if dealer.len() > 2 && total(&dealer[..dealer.len() - 1]) == (17, true) {
                *seen.entry("dealer_hit_soft_17".into()).or_default() += 1;
            }
        }
    }
    for outcome in [
        "win",
        "lose",
        "push",
        "bust",
        "blackjack",
        "dealer_bust",
        "dealer_hit_soft_17",
    ] {
        assert!(seen.contains_key(outcome), "no {outcome} in {seen:?}");
    }
}

#[test]
fn violations_are_private_and_change_nothing() {
    let mut table = Table::new(json!({"hands": 2, "min_players": 2}), &[], 3);
    violation(&table.say("alice", "bet 50"), "alice", "NOT_STARTED");
    table.join("alice");
    assert_eq!(table.phase(), "waiting", "two players are needed");
    violation(&table.say("alice", "hit"), "alice", "NOT_STARTED");
    table.join("bob");
    assert_eq!(table.phase(), "entropy");
    violation(&table.say("alice", "bet 50"), "alice", "NOT_STARTED");
    let public = table.say("alice", "entropy: in public");
    violation(&public, "alice", "BAD_MOVE");
    assert!(
        public[0]
            .body
            .text
            .as_deref()
            .expect("well-formed, as the bot posts it")
            .contains("privately")
    );
    table.all_entropy();
    assert_eq!(table.phase(), "betting");
    violation(&table.say("watcher", "bet 50"), "watcher", "BAD_TURN");
    violation(&table.say("alice", "bet 5"), "alice", "BAD_MOVE");
    violation(&table.say("alice", "bet 501"), "alice", "BAD_MOVE");
    violation(&table.say("alice", "bet lots"), "alice", "BAD_MOVE");
    violation(
        &table.send_data("alice", json!({"bet": "50"})),
        "alice",
        "BAD_MOVE",
    );
    violation(&table.say("alice", "hit"), "alice", "BAD_MOVE");
    violation(&table.say("alice", "entropy: more"), "alice", "BAD_MOVE");
    assert!(
        table.say("alice", "good luck, bob").is_empty(),
        "chat is ignored"
    );
    let before = table.state().clone();
    table.say("alice", "bet 50");
    violation(&table.say("alice", "bet 60"), "alice", "BAD_MOVE");
    assert_ne!(&before, table.state());
    let posts = table.say("bob", "bet 50");
    if table.phase() == "playing" {
        let (to_act, legal) = table.turn().expect("someone is to act");
        let other = if to_act == "alice" { "bob" } else { "alice" };
        let state = table.state().clone();
        violation(&table.say(other, "hit"), other, "BAD_TURN");
        violation(&table.say(&to_act, "bet 10"), &to_act, "BAD_MOVE");
        violation(
            &table.send_data(&to_act, json!({"action": "dance"})),
            &to_act,
            "BAD_MOVE",
        );
        if !legal.contains(&"split".to_owned()) {
            let posts = table.say(&to_act, "split");
            violation(&posts, &to_act, "BAD_MOVE");
            assert!(
                posts[0]
                    .body
                    .text
                    .as_deref()
                    .expect("well-formed, as the bot posts it")
                    .contains("legal now: hit, stand")
            );
        }
        assert_eq!(&state, table.state(), "violations change nothing");
    } else {
        assert!(
            posts.iter().any(|p| kind(p) == "result"),
            "dealer blackjack"
        );
    }
    play_out(&mut table, 10);
    violation(
        &table_after_end(&mut table, "alice", "hit"),
        "alice",
        "GAME_OVER",
    );
}

/// Runs one more message after the run ended, as a test of GAME_OVER (the service would not
/// deliver it).
fn table_after_end(table: &mut Table, label: &str, text: &str) -> Vec<BotPost> {
    table.ended = false;
    let posts = table.say(label, text);
    table.ended = true;
    posts
}

#[test]
fn timeouts_stand_or_play_a_random_move_and_entropy_may_be_missing() {
    let mut table = Table::new(json!({"hands": 3, "move_timeout_ms": 5000}), &[], 4);
    table.join("alice");
    table.join("bob");
    table.entropy("alice", "entropy: alice only");
    let posts = table.fire("entropy");
    let shuffle = find(&posts, "shuffle");
    assert_eq!(shuffle["entries"][1]["missing"], true, "bob sent nothing");
    table.say("alice", "bet 30");
    let posts = table.fire("bet");
    // Bob sat out: only alice was dealt in.
    if let Some(post) = posts.iter().find(|p| kind(p) == "table") {
        let data = data(post);
        assert!(
            data["hands"]
                .as_array()
                .expect("well-formed, as the bot posts it")
                .iter()
                .all(|h| h["slot"] == "alice")
        );
        if !data["turn"].is_null() {
            assert_eq!(data["deadline"], table.now + 5000);
            let posts = table.fire("turn");
            let timed_out = find(&posts, "table");
            assert_eq!(timed_out["action"]["action"], "stand", "forfeit = stand");
            assert_eq!(timed_out["action"]["timeout"], true);
        }
    }
    // Nobody bets: the idle table ends the game.
    assert_eq!(table.phase(), "betting");
    let posts = table.fire("bet");
    assert_eq!(find(&posts, "final")["reason"], "nobody_bet");
    assert!(table.ended);
    audit(&table, 1000);

    // random_move plays a legal action.
    let mut actions = BTreeMap::new();
    for seed in 0..12u8 {
        let mut table = open_table(
            json!({"hands": 1, "on_timeout": "random_move"}),
            &["alice"],
            seed,
        );
        table.say("alice", "bet 10");
        if table.phase() == "playing" {
            let (_, legal) = table.turn().expect("someone is to act");
            let posts = table.fire("turn");
            let action = find(&posts, "table")["action"]["action"]
                .as_str()
                .expect("well-formed, as the bot posts it")
                .to_owned();
            assert!(legal.contains(&action));
            *actions.entry(action).or_insert(0) += 1;
        }
    }
    assert!(actions.len() >= 2, "random moves vary: {actions:?}");
}

#[test]
fn a_leaving_player_forfeits_the_bet_and_the_last_one_ends_the_game() {
    let mut table = open_table(json!({"hands": 5}), &["alice", "bob"], 5);
    table.say("alice", "bet 40");
    let posts = table.leave("alice");
    assert_eq!(find(&posts, "left")["forfeited"], 40);
    assert_eq!(table.state()["house"], 40);
    table.say("bob", "bet 20");
    // Bob plays on alone, then leaves mid-hand or between hands.
    if table.phase() == "playing" {
        let posts = table.leave("bob");
        assert_eq!(find(&posts, "left")["forfeited"], 20);
    } else {
        table.leave("bob");
    }
    assert!(table.ended);
    let final_post = table
        .posts
        .iter()
        .find(|p| kind(p) == "final")
        .map(data)
        .expect("well-formed, as the bot posts it");
    assert_eq!(final_post["reason"], "everyone_left");
    audit(&table, 1000);
}

#[test]
fn joins_beyond_five_seats_are_turned_away_and_rejoins_keep_chips() {
    let mut table = Table::new(json!({"hands": 1, "chips": 300}), &[], 6);
    for label in ["alice", "bob", "carol", "dave", "erin"] {
        table.join(label);
    }
    let posts = table.join("frank");
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].to, Some(slot("frank")));
    assert_eq!(
        table.state()["players"]
            .as_array()
            .expect("well-formed, as the bot posts it")
            .len(),
        5
    );
    table.all_entropy();
    table.say("alice", "bet 100");
    table.leave("alice");
    table.join("alice");
    let alice = &table.state()["players"][0];
    assert_eq!(
        alice["chips"], 200,
        "the forfeited bet is gone, the rest stays"
    );
    play_out(&mut table, 10);
    audit(&table, 300);
}

#[test]
fn the_shoe_is_the_documented_shuffle_of_the_revealed_values() {
    // Two tables with the same seed and different entropy get different shoes; the same entropy
    // gives the same shoe.
    let shoe_of = |entropy: &str| {
        let mut table = Table::new(json!({"hands": 1}), &["alice"], 9);
        table.entropy("alice", entropy);
        table.say("alice", "bet 10");
        while table.phase() == "playing" {
            table.say("alice", "stand");
        }
        audit(&table, 1000);
        find(&table.posts, "shoe_reveal")["order"]
            .as_str()
            .expect("well-formed, as the bot posts it")
            .to_owned()
    };
    assert_eq!(shoe_of("x"), shoe_of("x"));
    assert_ne!(
        shoe_of("x"),
        shoe_of("y"),
        "one player's entropy changes the shoe"
    );
    // The construction on fixed inputs, so a verifier in another language can compare.
    let key = shoe_key(1, &"00".repeat(32), &[sha256_hex("")]);
    assert_eq!(shoe_order(&key, 1).len(), 104);
}

#[test]
fn state_stays_small_at_a_full_table_with_eight_decks() {
    let mut table = open_table(
        json!({"hands": 4, "decks": 8, "chips": 5000, "max_bet": 2000}),
        &["alice", "bob", "carol", "dave", "erin"],
        7,
    );
    play_out(&mut table, 2000);
    audit(&table, 5000);
}

// ---- random games ----

/// SplitMix64: a small seeded generator for the drivers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// One random game: random params, joins and leaves, legal and illegal moves, timeouts.
fn random_game(case: u64, default_limits: bool) -> Audit {
    let mut rng = Rng(case.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0xb1ac);
    let chips = *rng.pick(&[60, 200, 1000]);
    let params = json!({
        "hands": 1 + rng.below(6),
        "decks": *rng.pick(&[1, 1, 2, 6, 8]),
        "chips": chips,
        "min_bet": 10,
        "max_bet": *rng.pick(&[50, 500]),
        "min_players": 1 + rng.below(2),
        "on_timeout": *rng.pick(&["forfeit", "random_move"]),
        "move_timeout_ms": 1000 + rng.below(5) * 1000,
    });
    let players = 1 + rng.below(5) as usize;
    let mut table = Table::new(params, &SEATS[..rng.below(2) as usize], (case % 251) as u8);
    if default_limits {
        table.limits = Limits::default();
    }
    let mut steps = 0;
    while !table.ended && steps < 400 {
        steps += 1;
        let seated: Vec<String> = table
            .context
            .players
            .iter()
            .map(|p| p.slot.as_str().to_owned())
            .collect();
        let roll = rng.below(100);
        if seated.len() < players && (roll < 30 || seated.is_empty()) {
            let label = SEATS[rng.below(6) as usize];
            table.join(label);
            continue;
        }
        if roll < 3 && !seated.is_empty() {
            let label = rng.pick(&seated).clone();
            table.leave(&label);
            continue;
        }
        if roll < 10 {
            table.fire_next();
            continue;
        }
        if roll < 16 {
            // Noise: chat, junk, moves out of turn, spectators.
            let who = *rng.pick(&["alice", "bob", "watcher", "frank"]);
            let text = *rng.pick(&[
                "hello",
                "bet 7",
                "bet 99999",
                "hit",
                "split",
                "double",
                "entropy: public",
                "stand",
                "bet x",
            ]);
            table.say(who, text);
            continue;
        }
        let phase = table.phase();
        match phase.as_str() {
            "entropy" => {
                let waiting: Vec<String> = table.state()["round"]["entries"]
                    .as_array()
                    .expect("well-formed, as the bot posts it")
                    .iter()
                    .filter(|e| e["h"].is_null())
                    .map(|e| {
                        e["slot"]
                            .as_str()
                            .expect("well-formed, as the bot posts it")
                            .to_owned()
                    })
                    .collect();
                if waiting.is_empty() || rng.chance(10) {
                    table.fire_next();
                } else {
                    let label = rng.pick(&waiting).clone();
                    let text = format!("entropy: {} {}", label, rng.next());
                    if rng.chance(20) {
                        let body = Body::new(None, json!({"entropy": text}).as_object().cloned())
                            .expect("well-formed, as the bot posts it");
                        let posts = table.message(&label, body, Some("referee"));
                        if let Some(received) = posts.iter().find(|p| kind(p) == "entropy_received")
                        {
                            let c = data(received)["commitment"]
                                .as_str()
                                .expect("well-formed, as the bot posts it")
                                .to_owned();
                            table.entropy_texts.insert(c, text);
                        }
                    } else {
                        table.entropy(&label, &text);
                    }
                }
            }
            "betting" => {
                if seated.is_empty() || rng.chance(8) {
                    table.fire_next();
                } else {
                    let label = rng.pick(&seated).clone();
                    let amount = *rng.pick(&[10, 25, 50, 100, 500, 5, 1000]);
                    if rng.chance(50) {
                        table.say(&label, &format!("bet {amount}"));
                    } else {
                        table.send_data(&label, json!({"bet": amount}));
                    }
                }
            }
            "playing" => match table.turn() {
                Some((label, legal)) if !rng.chance(8) => {
                    let action = if rng.chance(90) {
                        rng.pick(&legal).clone()
                    } else {
                        rng.pick(&["hit", "stand", "double", "split"]).to_string()
                    };
                    if rng.chance(50) {
                        table.say(&label, &action);
                    } else {
                        table.send_data(&label, json!({"action": action}));
                    }
                }
                _ => {
                    table.fire_next();
                }
            },
            _ => {
                table.fire_next();
            }
        }
    }
    // Whatever is left, the clocks end it.
    while !table.ended {
        if !table.fire_next() {
            // Only a table still waiting for players has no clock running.
            assert_eq!(
                table.phase(),
                "waiting",
                "a game under way has a timer pending"
            );
            let free = SEATS[..5]
                .iter()
                .find(|label| {
                    !table
                        .context
                        .players
                        .iter()
                        .any(|p| p.slot.as_str() == **label)
                })
                .expect("a free seat");
            table.join(free);
        }
    }
    // With `default_limits`, every event ran under the default caps (run_event enforces the
    // CPU budget, posts and state size; a failure would have panicked in Table::event).
    audit(&table, chips)
}

#[test]
fn random_games_keep_every_card_and_chip_accounted_for() {
    let cases: u64 = std::env::var("GAME_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let started = Instant::now();
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4) as u64;
    let totals = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut sum = Audit::default();
                    let mut case = t;
                    while case < cases {
                        let found = random_game(case, case % 4 == 0);
                        sum.shoes += found.shoes;
                        sum.hands += found.hands;
                        sum.cards += found.cards;
                        sum.blackjacks += found.blackjacks;
                        sum.splits += found.splits;
                        sum.doubles += found.doubles;
                        sum.voids += found.voids;
                        sum.dealer_busts += found.dealer_busts;
                        case += threads;
                    }
                    sum
                })
            })
            .collect();
        let mut sum = Audit::default();
        for handle in handles {
            let found = handle.join().expect("no game failed");
            sum.shoes += found.shoes;
            sum.hands += found.hands;
            sum.cards += found.cards;
            sum.blackjacks += found.blackjacks;
            sum.splits += found.splits;
            sum.doubles += found.doubles;
            sum.voids += found.voids;
            sum.dealer_busts += found.dealer_busts;
        }
        sum
    });
    println!(
        "{cases} random games in {:?}: {totals:?}",
        started.elapsed()
    );
    assert!(totals.hands > cases as usize / 2, "{totals:?}");
    assert!(
        totals.splits > 0 && totals.doubles > 0 && totals.blackjacks > 0,
        "{totals:?}"
    );
}

#[test]
fn one_hand_end_to_end_costs_little() {
    let mut table = open_table(json!({"hands": 1000, "decks": 8}), &["alice"], 11);
    table.limits = Limits::default();
    let mut samples = Vec::new();
    while samples.len() < 100 {
        match table.phase().as_str() {
            "entropy" => table.all_entropy(),
            "betting" => {
                let started = Instant::now();
                table.say("alice", "bet 10");
                while table.phase() == "playing" {
                    table.say("alice", "stand");
                }
                samples.push(started.elapsed());
            }
            other => panic!("unexpected phase {other}"),
        }
    }
    samples.sort();
    let p50 = samples[samples.len() / 2];
    let p99 = samples[samples.len() * 99 / 100];
    let (guess_p50, _) = bots::bench::event_cost(50);
    println!(
        "blackjack: one hand (bet, deal, stand, settle) p50 {p50:?}, p99 {p99:?} over {} hands, \
         slowest event {:?}; for scale, one GuessBot event p50 {guess_p50:?}",
        samples.len(),
        table.slowest
    );
}

#[test]
fn a_shoe_that_runs_out_mid_hand_voids_the_hand() {
    for seed in 0..32u8 {
        let mut table = open_table(json!({"hands": 3, "decks": 1}), &["alice", "bob"], seed);
        table.say("alice", "bet 40");
        table.say("bob", "bet 60");
        if table.phase() != "playing" {
            continue;
        }
        let (label, _) = table.turn().expect("someone is to act");
        // Pretend the shoe is spent: the next card cannot be dealt.
        let state = table.context.state.as_mut().expect("state");
        let cards = state["shoe"]["order"]
            .as_str()
            .expect("well-formed, as the bot posts it")
            .len()
            / 2;
        state["shoe"]["pos"] = json!(cards);
        let posts = table.say(&label, "hit");
        let void = find(&posts, "void");
        assert_eq!(
            void["chips"],
            json!({"alice": 1000, "bob": 1000}),
            "stakes go back"
        );
        assert_eq!(void["house"], 0);
        assert!(!void["hole"].is_null(), "the hole card is revealed");
        assert_eq!(find(&posts, "shoe_reveal")["dealt"], cards);
        find(&posts, "entropy_round");
        assert_eq!(table.phase(), "entropy");
        assert_eq!(
            table.state()["played"],
            0,
            "a void hand is not a hand played"
        );
        table.all_entropy();
        play_out(&mut table, 10);
        return;
    }
    panic!("no seed left a hand to play");
}
