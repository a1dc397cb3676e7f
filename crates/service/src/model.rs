//! A model-based test of channels: random sequences of operations run against the real service
//! on every store backend, and checked after every step against a naive model written without
//! the domain's code.
//!
//! The model knows who sits where and since when, which invite codes and rejoin tokens work,
//! who is admin, and every message's sender and recipient. After each step it checks that:
//! - the outcome is the one the rules predict (success, or the exact error code);
//! - a failed operation changed nothing, and a change appended exactly its one message;
//! - seqs are contiguous from 1;
//! - the owner is still admin and can still see the channel;
//! - the three implementations of private visibility agree with the model:
//!   `Message::visible_to`, the query behind a sync, and the query behind unread counts.
//!
//! Cases: `MODEL_CASES` (default 48); failures shrink to a short sequence of operations.

use std::sync::{Arc, OnceLock};

use domain::{Channel, ChannelId, ErrorCode, Message, MessageKind, Notice, Seq, SlotLabel};
use proptest::prelude::*;
use store::testing::TestDatabase;
use store::{Audience, Store};
use tokio_util::sync::CancellationToken;

use crate::service::{AdminRequest, CreateRequest, OsSecrets, PostRequest, ServiceSettings};
use crate::testing::{FixedClock, person};
use crate::{Caller, Service, ServiceError, SyncRequest};

/// The channel every case plays in: three player seats, a spectator seat and a bot slot with
/// no bot attached, so that private messages to "the bot" are in play without a bot's
/// asynchronous replies.
const SLOTS: [&str; 5] = [
    "invite:a",
    "invite:b",
    "invite:c",
    "spectator:s",
    "bot:referee",
];
const BOT_SLOT: usize = 4;
/// The owner is person 0.
const PEOPLE: [&str; 4] = ["owner", "p1", "p2", "p3"];

/// The stores the model runs against.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    const ALL: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

    /// A fresh database; `None` for PostgreSQL when none is configured (the skip is said).
    async fn open(self) -> Option<(Store, TestDatabase)> {
        let database = match self {
            Backend::Sqlite => TestDatabase::sqlite(),
            Backend::Postgres => TestDatabase::postgres("the channel model").await?,
        };
        Some((database.open().await, database))
    }
}

#[derive(Debug, Clone)]
enum Code {
    /// The slot's invite as the model knows it (a made-up one when it has none).
    Current,
    /// One that was replaced, used or cleared by a close.
    Superseded(usize),
    /// One nobody issued.
    Forged,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AdminKind {
    Grant,
    Revoke,
    Kick,
    Yield,
    Reissue,
    Close,
}

#[derive(Debug, Clone)]
enum Op {
    Join {
        person: usize,
        slot: usize,
        code: Code,
    },
    /// Presents the `token`th rejoin token ever handed out.
    Rejoin {
        person: usize,
        token: usize,
    },
    Leave {
        person: usize,
        slot: Option<usize>,
    },
    Admin {
        actor: usize,
        kind: AdminKind,
        slot: usize,
    },
    /// `to` is a slot index, or `SLOTS.len()` for the `bot` alias.
    Post {
        person: usize,
        slot: Option<usize>,
        to: Option<usize>,
    },
}

/// One generated step: an operation, and whether to bend it towards one that can succeed in
/// the state it meets (a held seat to post from, a live invite to redeem…). Unbent steps keep
/// the refusals coming; bent ones let games go deep enough for seats to change hands.
#[derive(Debug, Clone)]
struct Step {
    op: Op,
    fit: bool,
}

fn step() -> impl Strategy<Value = Step> {
    (op(), proptest::bool::weighted(0.75)).prop_map(|(op, fit)| Step { op, fit })
}

/// The `n`th of `candidates` (cyclically), if there is any.
fn nth(candidates: &[usize], n: usize) -> Option<usize> {
    (!candidates.is_empty()).then(|| candidates[n % candidates.len()])
}

impl Step {
    /// The operation to run in `model`'s state.
    fn resolve(&self, model: &Model) -> Op {
        if !self.fit {
            return self.op.clone();
        }
        let slots = |keep: &dyn Fn(usize, &ModelSlot) -> bool| -> Vec<usize> {
            (0..SLOTS.len())
                .filter(|&i| keep(i, &model.slots[i]))
                .collect()
        };
        let held = slots(&|_, s| s.holder.is_some());
        let mut op = self.op.clone();
        match &mut op {
            Op::Join { slot, code, .. } => {
                if let Some(open) = nth(&slots(&|_, s| s.invite.is_some()), *slot) {
                    *slot = open;
                    *code = Code::Current;
                }
            }
            Op::Rejoin { token, .. } => {
                let live: Vec<usize> = model.slots.iter().filter_map(|s| s.token).collect();
                if let Some(live) = nth(&live, *token) {
                    *token = live;
                }
            }
            Op::Leave { person, slot } => {
                if let Some(seat) = nth(&held, *person) {
                    *person = model.slots[seat].holder.unwrap_or_default();
                    *slot = Some(seat);
                }
            }
            Op::Admin { actor, kind, slot } => {
                let admins: Vec<usize> = std::iter::once(0)
                    .chain(
                        slots(&|_, s| s.admin && s.holder.is_some())
                            .into_iter()
                            .filter_map(|i| model.slots[i].holder),
                    )
                    .collect();
                *actor = nth(&admins, *actor).unwrap_or_default();
                let seats = slots(&|i, _| i != BOT_SLOT);
                let fitting = match kind {
                    AdminKind::Kick => slots(&|i, s| i != BOT_SLOT && s.holder.is_some()),
                    AdminKind::Reissue => slots(&|i, s| i != BOT_SLOT && s.holder.is_none()),
                    _ => seats,
                };
                if let Some(target) = nth(&fitting, *slot) {
                    *slot = target;
                }
            }
            Op::Post { person, slot, .. } => {
                let speakers =
                    slots(&|i, s| s.holder.is_some() && ModelSlot::kind(i) != "spectator");
                if let Some(seat) = nth(&speakers, *person) {
                    *person = model.slots[seat].holder.unwrap_or_default();
                    *slot = Some(seat);
                }
            }
        }
        op
    }
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0..PEOPLE.len();
    let slot = 0..SLOTS.len();
    let code = prop_oneof![
        4 => Just(Code::Current),
        1 => any::<usize>().prop_map(Code::Superseded),
        1 => Just(Code::Forged),
    ];
    let kind = prop_oneof![
        3 => Just(AdminKind::Grant),
        2 => Just(AdminKind::Revoke),
        3 => Just(AdminKind::Kick),
        3 => Just(AdminKind::Yield),
        4 => Just(AdminKind::Reissue),
        // Rare: after a close, every other operation is refused.
        1 => Just(AdminKind::Close),
    ];
    prop_oneof![
        6 => (who.clone(), slot.clone(), code)
            .prop_map(|(person, slot, code)| Op::Join { person, slot, code }),
        2 => (who.clone(), any::<usize>()).prop_map(|(person, token)| Op::Rejoin { person, token }),
        2 => (who.clone(), proptest::option::of(slot.clone()))
            .prop_map(|(person, slot)| Op::Leave { person, slot }),
        5 => (who.clone(), kind, slot.clone())
            .prop_map(|(actor, kind, slot)| Op::Admin { actor, kind, slot }),
        10 => (
            who,
            proptest::option::of(slot.clone()),
            proptest::option::weighted(0.6, 0..=SLOTS.len()),
        )
            .prop_map(|(person, slot, to)| Op::Post { person, slot, to }),
    ]
}

/// One slot as the model sees it.
#[derive(Debug, Clone)]
struct ModelSlot {
    holder: Option<usize>,
    /// The seq before the holder's seat was taken with an invite.
    since: i64,
    admin: bool,
    invite: Option<String>,
    /// Index in `Model::tokens` of the token that moves this seat.
    token: Option<usize>,
    /// The read mark, as the service last recorded it for this holder.
    read: i64,
}

impl ModelSlot {
    fn kind(index: usize) -> &'static str {
        SLOTS[index].split(':').next().unwrap_or_default()
    }

    fn label(index: usize) -> &'static str {
        SLOTS[index].split(':').nth(1).unwrap_or_default()
    }

    fn vacate(&mut self) {
        self.holder = None;
        self.admin = false;
        self.token = None;
        self.read = 0;
    }
}

/// A message as the model sees it: who sent it (a slot, or the system) and to whom.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sent {
    sender: Option<usize>,
    to: Option<usize>,
    /// The notice's `event`, for system messages.
    event: Option<&'static str>,
}

#[derive(Debug)]
struct Model {
    closed: bool,
    slots: Vec<ModelSlot>,
    messages: Vec<Sent>,
    tokens: Vec<String>,
    superseded: Vec<String>,
}

/// What the model expects of one operation.
#[derive(Debug)]
enum Expect {
    Refused(ErrorCode),
    /// Succeeds and appends these messages (none for an operation that changes nothing).
    Done(Vec<Sent>),
}

impl Model {
    fn seats_of(&self, who: usize) -> Vec<usize> {
        (0..SLOTS.len())
            .filter(|&i| self.slots[i].holder == Some(who))
            .collect()
    }

    fn acting_seat(&self, who: usize, slot: Option<usize>) -> Result<usize, ErrorCode> {
        match slot {
            Some(slot) if self.slots[slot].holder == Some(who) => Ok(slot),
            Some(_) => Err(ErrorCode::NotMember),
            None => match self.seats_of(who).as_slice() {
                [] => Err(ErrorCode::NotMember),
                [only] => Ok(*only),
                _ => Err(ErrorCode::SlotRequired),
            },
        }
    }

    fn notice(event: &'static str) -> Sent {
        Sent {
            sender: None,
            to: None,
            event: Some(event),
        }
    }

    fn expect(&self, op: &Op, code: &str) -> Expect {
        use Expect::{Done, Refused};
        match *op {
            Op::Join { .. } => {
                match self
                    .slots
                    .iter()
                    .position(|s| s.invite.as_deref() == Some(code))
                {
                    Some(_) => Done(vec![Self::notice("joined")]),
                    None => Refused(ErrorCode::InviteInvalid),
                }
            }
            Op::Rejoin { person, .. } => {
                let Some(seat) = self.seat_moved_by(code) else {
                    return Refused(ErrorCode::InviteInvalid);
                };
                if self.slots[seat].holder == Some(person) {
                    Done(Vec::new())
                } else if self.closed {
                    Refused(ErrorCode::ChannelClosed)
                } else {
                    Done(vec![Self::notice("rejoined")])
                }
            }
            Op::Leave { person, slot } => match self.acting_seat(person, slot) {
                Err(code) => Refused(code),
                Ok(_) if self.closed => Refused(ErrorCode::ChannelClosed),
                Ok(_) => Done(vec![Self::notice("left")]),
            },
            Op::Admin { actor, kind, slot } => self.expect_admin(actor, kind, slot),
            Op::Post { person, slot, to } => {
                let sender = match self.acting_seat(person, slot) {
                    Ok(sender) => sender,
                    Err(code) => return Refused(code),
                };
                if ModelSlot::kind(sender) == "spectator" {
                    return Refused(ErrorCode::ReadOnlySeat);
                }
                if self.closed {
                    return Refused(ErrorCode::ChannelClosed);
                }
                let to = to.map(|to| if to == SLOTS.len() { BOT_SLOT } else { to });
                if to == Some(sender) {
                    return Refused(ErrorCode::InvalidArgument);
                }
                Done(vec![Sent {
                    sender: Some(sender),
                    to,
                    event: None,
                }])
            }
        }
    }

    fn expect_admin(&self, actor: usize, kind: AdminKind, slot: usize) -> Expect {
        use Expect::{Done, Refused};
        let is_owner = actor == 0;
        if !is_owner && self.seats_of(actor).is_empty() {
            return Refused(ErrorCode::NotMember);
        }
        if !is_owner && !self.seats_of(actor).iter().any(|&s| self.slots[s].admin) {
            return Refused(ErrorCode::NotAdmin);
        }
        if self.closed {
            return match kind {
                AdminKind::Close => Done(Vec::new()),
                _ => Refused(ErrorCode::ChannelClosed),
            };
        }
        if kind != AdminKind::Close && slot == BOT_SLOT {
            return Refused(ErrorCode::InvalidArgument);
        }
        let target = &self.slots[slot];
        let unseats_owner = target.holder == Some(0) && !is_owner;
        match kind {
            AdminKind::Grant | AdminKind::Revoke => Done(vec![Self::notice("admin_changed")]),
            AdminKind::Yield if unseats_owner => Refused(ErrorCode::NotAdmin),
            AdminKind::Yield => Done(vec![Self::notice("slot_yielded")]),
            AdminKind::Kick if target.holder.is_none() => Refused(ErrorCode::InvalidArgument),
            AdminKind::Kick if unseats_owner => Refused(ErrorCode::NotAdmin),
            AdminKind::Kick => Done(vec![Self::notice("kicked")]),
            AdminKind::Reissue if target.holder.is_some() => Refused(ErrorCode::InvalidArgument),
            AdminKind::Reissue => Done(vec![Self::notice("invite_reissued")]),
            AdminKind::Close => Done(vec![Self::notice("closed")]),
        }
    }

    fn seat_moved_by(&self, token: &str) -> Option<usize> {
        let index = self.tokens.iter().position(|t| t == token)?;
        self.slots.iter().position(|s| s.token == Some(index))
    }

    fn replace_invite(&mut self, slot: usize, fresh: Option<String>) {
        if let Some(old) = std::mem::replace(&mut self.slots[slot].invite, fresh) {
            self.superseded.push(old);
        }
    }

    /// Moves the model past a successful operation; `outcome` carries what the service handed
    /// out (a rejoin token, an invite code).
    fn apply(&mut self, op: &Op, code: &str, outcome: &Outcome) {
        let before = i64::try_from(self.messages.len()).expect("small");
        match *op {
            Op::Join { person, .. } => {
                let slot = self
                    .slots
                    .iter()
                    .position(|s| s.invite.as_deref() == Some(code))
                    .expect("predicted a valid invite");
                self.replace_invite(slot, None);
                let Outcome::Token(token) = outcome else {
                    panic!("a join hands out a rejoin token")
                };
                self.tokens.push(token.clone());
                let seat = &mut self.slots[slot];
                seat.holder = Some(person);
                seat.since = before;
                seat.token = Some(self.tokens.len() - 1);
                seat.read = 0;
            }
            Op::Rejoin { person, .. } => {
                let seat = self.seat_moved_by(code).expect("predicted a valid token");
                if self.slots[seat].holder != Some(person) {
                    self.slots[seat].holder = Some(person);
                    self.slots[seat].read = 0;
                }
            }
            Op::Leave { person, slot } => {
                let seat = self.acting_seat(person, slot).expect("predicted");
                self.slots[seat].vacate();
            }
            Op::Admin { kind, slot, .. } => match kind {
                AdminKind::Grant => self.slots[slot].admin = true,
                AdminKind::Revoke => self.slots[slot].admin = false,
                AdminKind::Kick => self.slots[slot].vacate(),
                AdminKind::Yield | AdminKind::Reissue => {
                    if kind == AdminKind::Yield {
                        self.slots[slot].vacate();
                    }
                    let Outcome::Invite(fresh) = outcome else {
                        panic!("{kind:?} hands out an invite")
                    };
                    self.replace_invite(slot, Some(fresh.clone()));
                }
                AdminKind::Close => {
                    self.closed = true;
                    for slot in 0..SLOTS.len() {
                        self.replace_invite(slot, None);
                    }
                }
            },
            Op::Post { .. } => {}
        }
    }

    /// The seqs the holder of `slot` may read.
    fn visible(&self, slot: usize) -> Vec<i64> {
        let since = self.slots[slot].since;
        (1..)
            .zip(&self.messages)
            .filter(|(seq, m)| match m.to {
                None => true,
                Some(to) => (to == slot || m.sender == Some(slot)) && *seq > since,
            })
            .map(|(seq, _)| seq)
            .collect()
    }

    fn unread(&self, slot: usize) -> u64 {
        let read = self.slots[slot].read;
        let count = self
            .visible(slot)
            .into_iter()
            .filter(|&seq| {
                seq > read
                    && self.messages[usize::try_from(seq - 1).expect("seq")].sender != Some(slot)
            })
            .count();
        u64::try_from(count).expect("small")
    }
}

/// What a successful operation handed out.
#[derive(Debug)]
enum Outcome {
    Nothing,
    Token(String),
    Invite(String),
}

fn caller(index: usize) -> Caller {
    person(PEOPLE[index])
}

fn label(slot: usize) -> String {
    ModelSlot::label(slot).to_owned()
}

/// One test's service, store and channel.
struct Run {
    service: Service,
    channel: ChannelId,
    _database: TestDatabase,
}

impl Run {
    async fn start(backend: Backend, workers: workers::Pool) -> Option<(Run, Model)> {
        let (store, database) = backend.open().await?;
        let service = Service::new(
            store,
            ServiceSettings {
                rate_limit_per_second: 0,
                ..ServiceSettings::default()
            },
            Arc::new(FixedClock),
            CancellationToken::new(),
            workers,
        );
        let slots: Vec<String> = SLOTS.iter().map(|s| (*s).to_owned()).collect();
        let created = service
            .create_channel(&caller(0), CreateRequest::new("Model", &slots))
            .await
            .expect("create");
        let run = Run {
            channel: created.channel.id.clone(),
            service,
            _database: database,
        };
        // The opening notices are observed, not assumed: the model starts from them.
        let log = run.log().await;
        let mut slots: Vec<ModelSlot> = (0..SLOTS.len())
            .map(|_| ModelSlot {
                holder: None,
                since: 0,
                admin: false,
                invite: None,
                token: None,
                read: 0,
            })
            .collect();
        for (label, code) in &created.invites {
            let index = (0..SLOTS.len())
                .find(|&i| ModelSlot::label(i) == label.as_str())
                .expect("an invite names a slot");
            slots[index].invite = Some(code.clone());
        }
        let joined = created.joined.expect("the creator joins");
        let own = (0..SLOTS.len())
            .find(|&i| ModelSlot::label(i) == joined.slot.as_str())
            .expect("the creator's slot");
        let joined_at = log
            .iter()
            .find(|m| matches!(m.notice(), Some(Ok(Notice::Joined { .. }))))
            .expect("the creator's joined notice")
            .seq;
        // The creator's seat is an admin seat.
        slots[own] = ModelSlot {
            holder: Some(0),
            since: joined_at.0 - 1,
            admin: true,
            invite: None,
            token: Some(0),
            read: 0,
        };
        let messages = log
            .iter()
            .map(|m| Sent {
                sender: None,
                to: None,
                event: event_of(m),
            })
            .collect();
        let model = Model {
            closed: false,
            slots,
            messages,
            tokens: vec![joined.rejoin_token],
            superseded: Vec::new(),
        };
        Some((run, model))
    }

    async fn log(&self) -> Vec<Message> {
        self.service
            .inner
            .store
            .messages(
                &self.channel,
                Audience::Everything,
                Seq(0),
                Seq(i64::MAX),
                100_000,
            )
            .await
            .expect("log")
    }

    async fn load(&self) -> Channel {
        self.service
            .inner
            .store
            .load_channel(&self.channel)
            .await
            .expect("load")
    }

    /// Runs `op` with `code` (the invite or token it presents, if any).
    async fn perform(&self, op: &Op, code: &str) -> Result<Outcome, ServiceError> {
        let id = self.channel.to_string();
        let service = &self.service;
        match *op {
            Op::Join { person, .. } | Op::Rejoin { person, .. } => service
                .join_channel(&caller(person), code)
                .await
                .map(|joined| Outcome::Token(joined.rejoin_token)),
            Op::Leave { person, slot } => service
                .leave_channel(&caller(person), &id, slot.map(label).as_deref())
                .await
                .map(|_| Outcome::Nothing),
            Op::Admin { actor, kind, slot } => {
                let op = match kind {
                    AdminKind::Grant | AdminKind::Revoke => "set_admin",
                    AdminKind::Kick => "kick",
                    AdminKind::Yield => "yield_slot",
                    AdminKind::Reissue => "reissue_invite",
                    AdminKind::Close => "close",
                };
                let request = AdminRequest {
                    channel_id: id,
                    op: op.into(),
                    slot: (kind != AdminKind::Close).then(|| label(slot)),
                    admin: match kind {
                        AdminKind::Grant => Some(true),
                        AdminKind::Revoke => Some(false),
                        _ => None,
                    },
                    name: None,
                };
                service.update_channel(&caller(actor), request).await.map(
                    |(_, invite)| match invite {
                        Some((_, code)) => Outcome::Invite(code),
                        None => Outcome::Nothing,
                    },
                )
            }
            Op::Post { person, slot, to } => {
                let to = to.map(|to| {
                    if to == SLOTS.len() {
                        "bot".to_owned()
                    } else {
                        label(to)
                    }
                });
                let request = PostRequest {
                    channel_id: id,
                    slot: slot.map(label),
                    text: Some("model".into()),
                    to,
                    ..PostRequest::default()
                };
                service
                    .post_message(&caller(person), request)
                    .await
                    .map(|_| Outcome::Nothing)
            }
        }
    }
}

fn event_of(message: &Message) -> Option<&'static str> {
    let notice = message.notice()?.ok()?;
    Some(match notice {
        Notice::Created { .. } => "created",
        Notice::Joined { .. } => "joined",
        Notice::Rejoined { .. } => "rejoined",
        Notice::Left { .. } => "left",
        Notice::Kicked { .. } => "kicked",
        Notice::SlotYielded { .. } => "slot_yielded",
        Notice::InviteReissued { .. } => "invite_reissued",
        Notice::AdminChanged { .. } => "admin_changed",
        Notice::Closed { .. } => "closed",
        _ => "other",
    })
}

/// The code an operation presents: an invite, a rejoin token, or nothing.
fn code_for(model: &Model, op: &Op) -> String {
    let forged = || domain::secret::new_invite_code(&mut OsSecrets);
    match op {
        Op::Join { slot, code, .. } => match code {
            Code::Current => model.slots[*slot].invite.clone().unwrap_or_else(forged),
            Code::Superseded(n) if !model.superseded.is_empty() => {
                model.superseded[n % model.superseded.len()].clone()
            }
            _ => forged(),
        },
        Op::Rejoin { token, .. } => model.tokens[token % model.tokens.len()].clone(),
        _ => String::new(),
    }
}

async fn check_step(run: &Run, model: &mut Model, op: &Op, before: &Channel) {
    let code = code_for(model, op);
    let expected = model.expect(op, &code);
    let outcome = run.perform(op, &code).await;
    let after = run.load().await;
    let log = run.log().await;
    match (&expected, outcome) {
        (Expect::Refused(want), Err(error)) => {
            assert_eq!(
                error.code(),
                *want,
                "{op:?} was refused for another reason: {error}"
            );
            assert_eq!(&after, before, "the refused {op:?} changed the channel");
            assert_eq!(
                log.len(),
                model.messages.len(),
                "the refused {op:?} wrote a message"
            );
        }
        (Expect::Done(sent), Ok(outcome)) => {
            let new: Vec<Sent> = log[model.messages.len().min(log.len())..]
                .iter()
                .map(|m| Sent {
                    sender: m.sender.as_ref().map(|s| {
                        (0..SLOTS.len())
                            .find(|&i| ModelSlot::label(i) == s.as_str())
                            .expect("a sender slot")
                    }),
                    to: m.to.as_ref().map(|s| {
                        (0..SLOTS.len())
                            .find(|&i| ModelSlot::label(i) == s.as_str())
                            .expect("a recipient slot")
                    }),
                    event: (m.kind == MessageKind::System)
                        .then(|| event_of(m))
                        .flatten(),
                })
                .collect();
            assert_eq!(&new, sent, "{op:?} appended other messages than its own");
            if std::env::var_os("MODEL_STATS").is_some() {
                eprintln!("model: done {op:?}");
            }
            model.apply(op, &code, &outcome);
            model.messages.extend(new);
        }
        (expected, outcome) => panic!("{op:?}: expected {expected:?}, got {outcome:?}"),
    }

    // Seqs are contiguous, and the channel's head is the last of them.
    for (index, message) in log.iter().enumerate() {
        assert_eq!(
            message.seq.0,
            i64::try_from(index).expect("small") + 1,
            "a gap in seqs"
        );
    }
    assert_eq!(after.last_seq.0, i64::try_from(log.len()).expect("small"));
    assert_eq!(after.closed, model.closed);

    // The owner stays admin and can always see the channel.
    let owner = caller(0);
    assert!(after.is_admin(&owner.principal.id), "the owner lost admin");
    run.service
        .get_channel(&owner, &run.channel.to_string())
        .await
        .expect("the owner sees the channel");

    check_seats(run, model, &after, &log).await;
}

/// Seats, admins and invites as the model has them; then each seat's view, three ways.
async fn check_seats(run: &Run, model: &mut Model, channel: &Channel, log: &[Message]) {
    for (index, slot) in channel.slots.iter().enumerate() {
        let modelled = &model.slots[index];
        assert_eq!(slot.label.as_str(), ModelSlot::label(index));
        assert_eq!(
            slot.seat.as_ref().map(|seat| seat.holder.clone()),
            modelled.holder.map(|p| caller(p).principal.id),
            "the holder of {}",
            slot.label
        );
        assert_eq!(slot.admin, modelled.admin, "admin of {}", slot.label);
        assert_eq!(
            slot.invite_hash.is_some(),
            modelled.invite.is_some(),
            "invite of {}",
            slot.label
        );
        if let Some(seat) = &slot.seat {
            assert_eq!(seat.since.0, modelled.since, "since of {}", slot.label);
        }
    }
    for person in 1..PEOPLE.len() {
        if model.seats_of(person).is_empty() {
            let refused = run
                .service
                .get_channel(&caller(person), &run.channel.to_string())
                .await
                .expect_err("a stranger sees nothing");
            assert_eq!(refused.code(), ErrorCode::NotMember);
        }
    }

    // Unread counts first: the syncs below move the read marks.
    let held: Vec<(usize, usize)> = (0..SLOTS.len())
        .filter_map(|slot| model.slots[slot].holder.map(|who| (slot, who)))
        .collect();
    let mut listings = std::collections::HashMap::new();
    for &(_, who) in &held {
        if let std::collections::hash_map::Entry::Vacant(entry) = listings.entry(who) {
            let listing = run.service.list_channels(&caller(who)).await;
            entry.insert(listing.expect("list"));
        }
    }
    for &(slot, who) in &held {
        let seat = listings[&who]
            .iter()
            .find(|l| l.channel.id == run.channel)
            .and_then(|l| {
                l.seats
                    .iter()
                    .find(|s| s.slot.as_str() == ModelSlot::label(slot))
            })
            .expect("the seat is listed");
        assert_eq!(
            seat.unread,
            model.unread(slot),
            "unread of {}",
            ModelSlot::label(slot)
        );
    }

    for &(slot, who) in &held {
        let want = model.visible(slot);
        let label = SlotLabel::parse(ModelSlot::label(slot)).expect("label");
        let since = channel.slots[slot].seat.as_ref().expect("held").since;
        let by_rule: Vec<i64> = log
            .iter()
            .filter(|m| m.visible_to(&label, since))
            .map(|m| m.seq.0)
            .collect();
        assert_eq!(by_rule, want, "Message::visible_to for {label}");
        let mut by_sync = Vec::new();
        let mut cursor = 0;
        loop {
            let page = run
                .service
                .sync_messages(
                    &caller(who),
                    SyncRequest {
                        channel_id: run.channel.to_string(),
                        slot: Some(label.to_string()),
                        cursor: Some(cursor),
                        wait_ms: Some(0),
                        limit: None,
                    },
                )
                .await
                .expect("sync");
            by_sync.extend(page.messages.iter().map(|m| m.seq.0));
            cursor = page.next_cursor.0;
            if !page.has_more {
                break;
            }
        }
        assert_eq!(by_sync, want, "the sync query for {label}");
        model.slots[slot].read = model.slots[slot].read.max(cursor);
    }
    // The read marks the syncs recorded, written now rather than at the next 0.5 s flush.
    let marks = run.service.inner.reads.take();
    run.service
        .inner
        .store
        .mark_read(marks)
        .await
        .expect("marks");
}

/// One runtime and one worker pool for every case: starting workers per case would dominate.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn shared_workers() -> &'static workers::Pool {
    static POOL: OnceLock<workers::Pool> = OnceLock::new();
    POOL.get_or_init(|| runtime().block_on(crate::testing::workers()))
}

fn cases() -> u32 {
    std::env::var("MODEL_CASES")
        .ok()
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn channels_behave_like_the_model(steps in proptest::collection::vec(step(), 1..60)) {
        for backend in Backend::ALL {
            let workers = shared_workers().clone();
            runtime().block_on(async {
                let Some((run, mut model)) = Run::start(backend, workers).await else {
                    return;
                };
                for step in &steps {
                    let op = step.resolve(&model);
                    let before = run.load().await;
                    check_step(&run, &mut model, &op, &before).await;
                }
            });
        }
    }
}
