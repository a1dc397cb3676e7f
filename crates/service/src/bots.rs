//! Bots in channels: attaching them (checked source, secret seed, public commitment), and
//! running them.
//!
//! Bot code never runs on the server's threads: each event, and each check of a source, is a
//! [`Job`] for the worker [`Pool`], which kills what overruns and shares the workers fairly
//! between the principals who own the channels. Each channel's bot events run one at a time,
//! in channel order; different channels run in parallel. An event's reaction (posts, state) and the bot's progress
//! counter are stored in one transaction, guarded by the counter's old value, so every message
//! reaches a bot exactly once even across crashes: after a restart, [`Service::resume_bots`]
//! picks up where the counters stand, and a re-run of an event whose reaction was never stored
//! gives the same reaction (bots are deterministic in code, seed and events).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bots::{BotSeed, BotSource, Event, EventContext, Job, Limits, Reaction};
use domain::bot_output::{BotOutputLedger, BotOutputLimits, CapHit, Output};
use domain::{Body, BotCard, BotFailure, Channel, ChannelId, DomainError, Roster, Seq, SlotLabel};
use rand::RngCore;
use serde_json::{Value, json};
use store::Audience;
use store::bots::{BotRecord, BotWrite, lease};
use workers::{Account, Pool, PoolError};

use crate::caller::{Access, Caller};
use crate::error::ServiceError;
use crate::service::Service;

/// Consecutive failed events after which a bot is disabled.
pub const MAX_BOT_FAILURES: u32 = 3;
/// How long an instance's lease on a channel's bot events lasts without renewal: how long
/// the events of a channel wait when the instance running them dies. Renewed before each
/// event, so it must exceed the longest event (a CPU budget of seconds, plus the wait for a
/// worker).
pub const BOT_LEASE_TERM: Duration = Duration::from_secs(15);
/// Failed drains in a row after which a channel's bot task gives up until the next message
/// (or, on a shared database, the sweeper's next look).
const MAX_DRAIN_RETRIES: u32 = 3;
/// Largest `bot_params`, in bytes of JSON.
pub const MAX_BOT_PARAMS_BYTES: usize = 16 * 1024;

/// Which bot to attach, as asked for.
#[derive(Debug, Clone, Default)]
pub struct BotRequest {
    /// A builtin bot's name (see `list_bots`).
    pub preset: Option<String>,
    /// Inline source, in JavaScript or Python.
    pub code: Option<String>,
    /// `javascript` or `python` (any case); inferred from `code` when absent.
    pub language: Option<String>,
    /// The bot's parameters: the second argument of its constructor.
    pub params: Option<Value>,
}

/// Where a bot's code is asked for.
#[derive(Debug, Clone)]
pub enum CodeOf {
    Preset(String),
    Attached {
        channel_id: String,
        slot: Option<String>,
    },
}

/// A bot's code as `get_bot_code` returns it.
#[derive(Debug, Clone)]
pub struct BotCode {
    pub name: String,
    pub language: bots::Language,
    pub code_hash: String,
    pub source: String,
    /// An attached bot's parameters: participants may read what configures their referee.
    pub params: Option<Value>,
    pub params_hash: Option<String>,
}

/// Runs bot events: at most one task per channel, each event on the worker pool.
pub(crate) struct BotRunner {
    /// Channels with a running task; `true` when more work arrived while it ran.
    busy: Mutex<HashMap<ChannelId, bool>>,
    pool: Pool,
    pub(crate) limits: Limits,
    output_limits: BotOutputLimits,
    /// What bots wrote recently, per channel and per owner. In memory, for this process: see
    /// [`domain::bot_output`] for what a restart does to it.
    output: Mutex<BotOutputLedger>,
    /// Events run by this process, and those that failed, by kind: for `/metrics`.
    tally: Mutex<BotTally>,
}

/// Bot events run by this process since it started.
#[derive(Debug, Clone, Default)]
pub struct BotTally {
    pub events: u64,
    /// Failed events by [`bots::error::BotErrorKind::as_str`], in name order.
    pub failures: std::collections::BTreeMap<&'static str, u64>,
}

/// The worker pool and the bot events, as `/metrics` shows them.
#[derive(Debug, Clone)]
pub struct BotActivity {
    pub tally: BotTally,
    pub workers: workers::PoolStats,
}

impl BotRunner {
    pub(crate) fn new(pool: Pool, limits: Limits, output_limits: BotOutputLimits) -> Self {
        BotRunner {
            busy: Mutex::new(HashMap::new()),
            pool,
            limits,
            output_limits,
            output: Mutex::new(BotOutputLedger::default()),
            tally: Mutex::new(BotTally::default()),
        }
    }

    pub(crate) fn activity(&self) -> BotActivity {
        BotActivity {
            tally: self
                .tally
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .clone(),
            workers: self.pool.stats(),
        }
    }

    /// Counts a reaction against the output caps (all or nothing). A std mutex, held for the
    /// count only: channels' bot tasks run in parallel, and the owner's caps span them.
    fn charge_output(
        &self,
        channel: &Channel,
        trigger: Seq,
        reaction: &Reaction,
        now: domain::Timestamp,
    ) -> Result<(), CapHit> {
        let output = reaction
            .posts
            .iter()
            .fold(Output::default(), |total, post| Output {
                messages: total.messages + 1,
                bytes: total.bytes + body_bytes(&post.body),
            });
        self.output
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .charge(
                &self.output_limits,
                &channel.id,
                &channel.owner,
                trigger,
                output,
                now,
            )
    }

    /// Runs `job` on a worker, paid for by `payer`. A pool that shut down is no outcome: the
    /// event stays pending for the next start.
    pub(crate) async fn run(
        &self,
        payer: &domain::PrincipalId,
        channel: &str,
        job: Job,
    ) -> Result<bots::job::Outcome, ServiceError> {
        let account = Account {
            principal: payer.as_str().to_owned(),
            channel: channel.to_owned(),
        };
        let outcome = self
            .pool
            .run(account, job)
            .await
            .map_err(|PoolError::Closed| ServiceError::internal("the bot workers are shut down"))?;
        let mut tally = self
            .tally
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        tally.events += 1;
        if let Err(error) = &outcome {
            *tally.failures.entry(error.kind.as_str()).or_default() += 1;
        }
        Ok(outcome)
    }

    /// Stops every worker; bot events in progress end without an outcome.
    pub(crate) fn shutdown(&self) {
        self.pool.shutdown();
    }

    /// The channels with a running task. A std mutex: held for a map operation, never across
    /// an await.
    pub(crate) fn busy(&self) -> std::sync::MutexGuard<'_, HashMap<ChannelId, bool>> {
        self.busy
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// Why a bot's source was refused. A JavaScript syntax error in a source that reads like
/// Python (or the reverse) most likely means the wrong `bot_language`; say so.
fn source_refusal(source: &BotSource, error: &bots::BotError) -> String {
    let inferred = bots::Language::infer(source.source());
    if error.kind == bots::BotErrorKind::BadSource && inferred != source.language() {
        format!(
            "{error}. The source reads like {inferred}, but bot_language is {}: set \
             bot_language to {inferred}, or see the guide mcp-multiplayer://docs/bot-api",
            source.language()
        )
    } else {
        error.to_string()
    }
}

impl BotRequest {
    /// Resolves the request into a source and parameters, unchecked.
    fn resolve(self) -> Result<(BotSource, Value), ServiceError> {
        if self.preset.is_some() && self.language.is_some() {
            return Err(DomainError::invalid(
                "bot_language",
                "bot_language goes with bot_code; a builtin bot has its own language",
            )
            .into());
        }
        let source = match (self.preset, self.code) {
            (Some(_), Some(_)) => {
                return Err(DomainError::invalid(
                    "bot_code",
                    "give bot_preset or bot_code, not both",
                )
                .into());
            }
            (Some(preset), None) => bots::builtin(&preset).ok_or_else(|| {
                let names: Vec<&str> = bots::catalog().iter().map(|bot| bot.name).collect();
                DomainError::invalid(
                    "bot_preset",
                    format!("unknown bot {preset:?}; builtin bots: {}", names.join(", ")),
                )
            })?,
            (None, Some(code)) => {
                let language = match &self.language {
                    Some(raw) => bots::Language::parse(raw).ok_or_else(|| {
                        DomainError::invalid(
                            "bot_language",
                            format!("unknown language {raw:?}; use javascript or python"),
                        )
                    })?,
                    None => bots::Language::infer(&code),
                };
                BotSource::with_language("inline", code, language)
                    .map_err(|error| DomainError::invalid("bot_code", error.to_string()))?
            }
            (None, None) => {
                return Err(
                    DomainError::invalid("bot_preset", "give bot_preset or bot_code").into(),
                );
            }
        };
        let params = self.params.unwrap_or_else(|| json!({}));
        let Some(object) = params.as_object() else {
            return Err(
                DomainError::invalid("bot_params", "bot_params must be a JSON object").into(),
            );
        };
        domain::message::check_numbers("bot_params", object)?;
        if serde_json::to_string(&params).map_or(usize::MAX, |text| text.len())
            > MAX_BOT_PARAMS_BYTES
        {
            return Err(DomainError::LimitExceeded {
                what: "bot_params (bytes of JSON)",
                limit: MAX_BOT_PARAMS_BYTES,
            }
            .into());
        }
        Ok((source, params))
    }
}

/// A bot ready to attach: its stored record (processed up to just before its notice) and card.
pub(crate) struct Prepared {
    pub record: BotRecord,
    pub card: BotCard,
}

impl Prepared {
    fn new(channel_id: &ChannelId, slot: &SlotLabel, source: &BotSource, params: Value) -> Self {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        let seed_hex = hex::encode(seed);
        let seed_commitment = bots::commitment(channel_id.as_str(), slot.as_str(), &seed_hex, b"");
        let params_hash =
            domain::chain::sha256_tagged(domain::chain::canonical_json(&params).as_bytes());
        let card = BotCard {
            name: source.name().to_owned(),
            language: source.language().as_str().to_owned(),
            code_hash: source.code_hash().as_str().to_owned(),
            params_hash: params_hash.clone(),
            seed_commitment: seed_commitment.clone(),
            disabled: false,
            ended: false,
        };
        let record = BotRecord {
            channel_id: channel_id.clone(),
            slot: slot.clone(),
            name: card.name.clone(),
            source: source.source().to_owned(),
            language: card.language.clone(),
            code_hash: card.code_hash.clone(),
            params,
            params_hash,
            seed: seed_hex,
            seed_commitment,
            state: None,
            processed_seq: Seq(0),
            failures: 0,
            disabled: false,
            ended: false,
        };
        Prepared { record, card }
    }

    /// Attaches to `channel` (which checks the caller's rights) and returns the row to store.
    pub(crate) fn attach(
        mut self,
        channel: &mut Channel,
        who: &domain::PrincipalId,
        now: domain::Timestamp,
    ) -> Result<BotRecord, DomainError> {
        let notice = channel.attach_bot(who, &self.record.slot, self.card, now)?;
        // The notice itself is the bot's first event (`on_init`).
        self.record.processed_seq = Seq(notice.0 - 1);
        Ok(self.record)
    }
}

impl Service {
    /// Checks a bot request (its source loads in a worker, paid for by `payer`) and prepares
    /// its record for `slot` of `channel_id`.
    pub(crate) async fn prepare_bot(
        &self,
        payer: &domain::PrincipalId,
        channel_id: &ChannelId,
        slot: &SlotLabel,
        request: BotRequest,
    ) -> Result<Prepared, ServiceError> {
        let (source, params) = request.resolve()?;
        let runner = &self.inner.bots;
        let check = Job::check(source.clone(), runner.limits.clone());
        runner
            .run(payer, channel_id.as_str(), check)
            .await?
            .map_err(|error| DomainError::invalid("bot_code", source_refusal(&source, &error)))?;
        Ok(Prepared::new(channel_id, slot, &source, params))
    }

    /// Attaches a bot to a bot slot (admins only), replacing and revealing any bot there.
    pub async fn attach_bot(
        &self,
        caller: &Caller,
        channel_id: &str,
        slot: Option<&str>,
        request: BotRequest,
    ) -> Result<Channel, ServiceError> {
        let who = self.authorize(caller, Access::Write)?;
        let id = ChannelId::parse(channel_id)?;
        let slot = slot.map(SlotLabel::parse).transpose()?;
        let current = self.inner.store.load_channel(&id).await?;
        if !current.is_visible_to(&who.id) {
            return Err(DomainError::NotMember.into());
        }
        let slot = current.bot_slot_for(slot.as_ref())?;
        let prepared = self.prepare_bot(&who.id, &id, &slot, request).await?;
        let previous = self
            .inner
            .store
            .bots_of(&id)
            .await?
            .into_iter()
            .find(|bot| bot.slot == slot);
        let (actor, clock) = (who.id.clone(), self.inner.clock.clone());
        let (channel, _) = self
            .inner
            .store
            .update_channel_and_bots(&id, move |channel| {
                let now = clock.now();
                if let Some(previous) = &previous {
                    if !channel.is_admin(&actor) {
                        return Err(DomainError::NotAdmin);
                    }
                    // A bot that ended its run revealed its seed then.
                    if !previous.ended {
                        channel.reveal_bot_seed(&previous.slot, &previous.seed, now)?;
                    }
                }
                let record = prepared.attach(channel, &actor, now)?;
                Ok((channel.clone(), vec![BotWrite::Attach(Box::new(record))]))
            })
            .await?;
        tracing::info!(channel = %id, slot = %slot, "bot attached");
        self.wake_bots(&id);
        Ok(channel)
    }

    /// The builtin bots: name, summary, code hash.
    pub fn list_bots(&self, caller: &Caller) -> Result<&'static [bots::BuiltinInfo], ServiceError> {
        self.authorize(caller, Access::Read)?;
        Ok(Self::catalog())
    }

    /// The builtin bots for anyone, signed in or not: they are compiled into the binary and
    /// published so that anyone can check a referee before meeting it.
    pub fn catalog() -> &'static [bots::BuiltinInfo] {
        bots::catalog()
    }

    /// The exact source of the builtin bot `name`, for anyone (see [`Self::catalog`]).
    pub fn builtin_code(name: &str) -> Result<BotCode, ServiceError> {
        let source = bots::builtin(name).ok_or_else(|| {
            DomainError::invalid("preset", format!("unknown bot {name:?}; see list_bots"))
        })?;
        Ok(BotCode {
            name: source.name().to_owned(),
            language: source.language(),
            code_hash: source.code_hash().as_str().to_owned(),
            source: source.source().to_owned(),
            params: None,
            params_hash: None,
        })
    }

    /// The exact source of a builtin bot, or of a bot attached to a channel the caller is in.
    pub async fn get_bot_code(&self, caller: &Caller, of: CodeOf) -> Result<BotCode, ServiceError> {
        let who = self.authorize(caller, Access::Read)?;
        match of {
            CodeOf::Preset(name) => Self::builtin_code(&name),
            CodeOf::Attached { channel_id, slot } => {
                let id = ChannelId::parse(&channel_id)?;
                let channel = self.inner.store.load_channel(&id).await?;
                if !channel.is_visible_to(&who.id) {
                    return Err(DomainError::NotMember.into());
                }
                let slot = channel
                    .bot_slot_for(slot.map(|raw| SlotLabel::parse(&raw)).transpose()?.as_ref())?;
                let bot = self
                    .inner
                    .store
                    .bots_of(&id)
                    .await?
                    .into_iter()
                    .find(|bot| bot.slot == slot)
                    .ok_or_else(|| {
                        DomainError::invalid("slot", format!("no bot is attached to {slot}"))
                    })?;
                Ok(BotCode {
                    language: stored_language(&bot)?,
                    name: bot.name,
                    code_hash: bot.code_hash,
                    source: bot.source,
                    params: Some(bot.params),
                    params_hash: Some(bot.params_hash),
                })
            }
        }
    }

    /// The roster of `channel` as of `seq`, folded from its notices: what the bot sees for the
    /// event at `seq`, whenever that event runs ([`EventContext::at`]).
    async fn roster_at(
        &self,
        channel: &Channel,
        seq: Seq,
        cached: &mut Option<RosterAt>,
    ) -> Result<Roster, ServiceError> {
        let mut at = match cached.take() {
            Some(at) if at.seq <= seq => at,
            _ => RosterAt {
                seq: Seq::ZERO,
                roster: channel.empty_roster(),
            },
        };
        for message in self.inner.store.notices(&channel.id, at.seq, seq).await? {
            match message.notice() {
                Some(Ok(notice)) => at.roster.apply(&notice),
                Some(Err(error)) => {
                    tracing::warn!(channel = %channel.id, seq = message.seq.0, %error, "a notice this server cannot read");
                }
                None => {}
            }
        }
        at.seq = seq;
        let roster = at.roster.clone();
        *cached = Some(at);
        Ok(roster)
    }

    /// Seeds of every bot of the channel whose seed is still secret, for the reveal at close.
    pub(crate) async fn seeds_of(
        &self,
        id: &ChannelId,
    ) -> Result<Vec<(SlotLabel, String)>, ServiceError> {
        Ok(self
            .inner
            .store
            .bots_of(id)
            .await?
            .into_iter()
            .filter(|bot| !bot.ended)
            .map(|bot| (bot.slot, bot.seed))
            .collect())
    }

    /// Starts (or re-arms) the channel's bot task.
    pub(crate) fn wake_bots(&self, id: &ChannelId) {
        let mut busy = self.inner.bots.busy();
        if let Some(again) = busy.get_mut(id) {
            *again = true;
            return;
        }
        busy.insert(id.clone(), false);
        drop(busy);
        let service = self.clone();
        let id = id.clone();
        tokio::spawn(async move { service.run_bots(id).await });
    }

    /// Wakes the bots of every channel that has events left over, e.g. after a restart.
    pub async fn resume_bots(&self) -> Result<usize, ServiceError> {
        let behind = self.inner.store.channels_with_bots_behind().await?;
        for id in &behind {
            self.wake_bots(id);
        }
        Ok(behind.len())
    }

    /// On a database shared with other instances, looks for channels whose bots are behind
    /// every third of a lease term: work an instance left when it died resumes here once its
    /// lease has run out.
    pub(crate) fn spawn_bot_sweeper(&self) {
        let never = std::sync::Arc::new(tokio::sync::Notify::new());
        self.spawn_rounds(never, |service| async move {
            if let Err(error) = service.resume_bots().await {
                tracing::warn!(%error, "could not look for bot events left behind; trying again");
            }
            BOT_LEASE_TERM / 3
        });
    }

    async fn run_bots(self, id: ChannelId) {
        let mut roster = None;
        loop {
            if let Err(error) = self.drain_bots_under_lease(&id, &mut roster).await {
                tracing::warn!(channel = %id, %error, "bot events stopped; they resume with the next message");
            }
            let mut busy = self.inner.bots.busy();
            match busy.get_mut(&id) {
                Some(again) if *again => *again = false,
                _ => {
                    busy.remove(&id);
                    return;
                }
            }
        }
    }

    /// [`Service::drain_bots`], while this instance holds the channel's lease: on a database
    /// that several instances share, one of them at a time runs a channel's bot events.
    ///
    /// An instance refused the lease leaves the work to the holder, which, after giving the
    /// lease back, looks once more for events: a message committed while it held the lease
    /// was committed before the refusal, so before that look, and is never stranded.
    async fn drain_bots_under_lease(
        &self,
        id: &ChannelId,
        roster: &mut Option<RosterAt>,
    ) -> Result<(), ServiceError> {
        let store = &self.inner.store;
        if !store.is_shared() {
            return self.drain_bots(id, roster).await;
        }
        let lease = lease::bot_events(id);
        let holder = self.inner.instance.as_str();
        let mut failures = 0;
        loop {
            // A stopping instance takes no more work; its leases are handed over at shutdown.
            if self.inner.shutdown.is_cancelled() {
                return Ok(());
            }
            if !store.take_lease(&lease, holder, BOT_LEASE_TERM).await? {
                tracing::debug!(channel = %id, "another instance runs this channel's bots");
                return Ok(());
            }
            // Another instance may have run events since this one last did.
            *roster = None;
            let drained = self.drain_bots(id, roster).await;
            store.release_lease(&lease, holder).await?;
            // A failed drain (a lost lease, a conflict with another instance's commit) still
            // looks again, a few times: messages refused the lease meanwhile wait on this look.
            if let Err(error) = drained {
                failures += 1;
                if failures >= MAX_DRAIN_RETRIES {
                    return Err(error);
                }
                tracing::debug!(channel = %id, %error, "bot events stopped; looking again");
            }
            if self.inner.shutdown.is_cancelled() || !self.bots_are_behind(id).await? {
                return Ok(());
            }
        }
    }

    /// Whether an enabled bot of the open channel has events left.
    async fn bots_are_behind(&self, id: &ChannelId) -> Result<bool, ServiceError> {
        let channel = self.inner.store.load_channel(id).await?;
        Ok(!channel.closed
            && self
                .inner
                .store
                .bots_of(id)
                .await?
                .iter()
                .any(|bot| !bot.disabled && !bot.ended && bot.processed_seq < channel.last_seq))
    }

    /// Gives every enabled bot of the channel its pending events, one at a time, in order.
    async fn drain_bots(
        &self,
        id: &ChannelId,
        roster: &mut Option<RosterAt>,
    ) -> Result<(), ServiceError> {
        loop {
            if self.inner.shutdown.is_cancelled() {
                return Ok(());
            }
            let channel = self.inner.store.load_channel(id).await?;
            if channel.closed {
                return Ok(());
            }
            let pending: Vec<BotRecord> = self
                .inner
                .store
                .bots_of(id)
                .await?
                .into_iter()
                .filter(|bot| !bot.disabled && !bot.ended && bot.processed_seq < channel.last_seq)
                .collect();
            if pending.is_empty() {
                return Ok(());
            }
            for bot in pending {
                self.renew_bot_lease(id).await?;
                self.next_bot_event(&channel, bot, roster).await?;
            }
        }
    }

    /// Renews this instance's lease on the channel's bot events before the next one, or stops
    /// if it was lost (the instance stalled past the lease's term and another took over).
    async fn renew_bot_lease(&self, id: &ChannelId) -> Result<(), ServiceError> {
        let store = &self.inner.store;
        if store.is_shared()
            && !store
                .take_lease(&lease::bot_events(id), &self.inner.instance, BOT_LEASE_TERM)
                .await?
        {
            return Err(ServiceError::internal(
                "this instance lost the lease on the channel's bots to another",
            ));
        }
        Ok(())
    }

    /// Handles the bot's next event, or skips the messages that are no event for it.
    async fn next_bot_event(
        &self,
        channel: &Channel,
        bot: BotRecord,
        roster: &mut Option<RosterAt>,
    ) -> Result<(), ServiceError> {
        let messages = self
            .inner
            .store
            .messages(
                &channel.id,
                Audience::Everything,
                bot.processed_seq,
                channel.last_seq,
                100,
            )
            .await?;
        let Some(last) = messages.last().map(|message| message.seq) else {
            return Ok(());
        };
        let found = messages
            .into_iter()
            .find_map(|message| Event::for_bot(&bot.slot, &message).map(|event| (message, event)));
        let Some((message, event)) = found else {
            // Nothing here for this bot: move its counter past these messages.
            let progress = BotWrite::Progress {
                slot: bot.slot.clone(),
                from: bot.processed_seq,
                to: last,
                state: None,
                failures: bot.failures,
                disabled: false,
                ended: false,
                timers: Vec::new(),
                fetches: Vec::new(),
            };
            self.store_bot_outcome(&channel.id, progress, |_| Ok(()))
                .await?;
            return Ok(());
        };
        let seed = BotSeed::from_hex(&bot.seed)
            .ok_or_else(|| ServiceError::internal("stored bot seed is corrupt"))?;
        let context = EventContext::at(
            channel.id.clone(),
            bot.slot.clone(),
            &message,
            &self.roster_at(channel, message.seq, roster).await?,
            bot.params.clone(),
            bot.state.clone(),
            seed,
        );
        let source =
            BotSource::with_language(bot.name.clone(), bot.source.clone(), stored_language(&bot)?)
                .map_err(|error| ServiceError::internal(format!("stored bot source: {error}")))?;
        let job = Job::event(source, context, &event, self.inner.bots.limits.clone());
        let outcome = self
            .inner
            .bots
            .run(&channel.owner, channel.id.as_str(), job)
            .await?;
        let (slot, now, seq) = (bot.slot.clone(), message.at, message.seq);
        match outcome {
            Ok(reaction) => {
                if let Err(hit) =
                    self.inner
                        .bots
                        .charge_output(channel, seq, &reaction, self.inner.clock.now())
                {
                    // Over a cap: the reaction is dropped whole (posts, state, end), the event is
                    // consumed, and the transcript says so every time (replay must drop it too),
                    // in full once per window and in a short line after. Not the bot's failure:
                    // the same code is fine in a quieter channel.
                    tracing::info!(channel = %channel.id, slot = %slot, cap = hit.cap.as_str(), "bot output capped");
                    let progress = BotWrite::Progress {
                        slot: slot.clone(),
                        from: bot.processed_seq,
                        to: seq,
                        state: None,
                        failures: bot.failures,
                        disabled: false,
                        ended: false,
                        timers: Vec::new(),
                        fetches: Vec::new(),
                    };
                    let notice_at = self.inner.clock.now();
                    self.store_bot_outcome(&channel.id, progress, move |channel| {
                        channel.bot_output_capped(&slot, seq, &hit, notice_at)
                    })
                    .await?;
                    return Ok(());
                }
                let fetches = if reaction.fetches.is_empty() {
                    Vec::new()
                } else {
                    let pending = self.inner.store.fetches_of(&channel.id, &slot).await?;
                    match crate::fetches::fetch_writes(pending.len(), &reaction.fetches, seq, now) {
                        Ok(writes) => writes,
                        Err(error) => {
                            return self
                                .record_bot_failure(channel, &bot, bot.failures, seq, now, error)
                                .await;
                        }
                    }
                };
                let asks_fetches = !fetches.is_empty();
                let timers = if reaction.timers.is_empty() {
                    Vec::new()
                } else {
                    let pending = self.inner.store.timers_of(&channel.id, &slot).await?;
                    match crate::timers::timer_writes(&pending, &reaction.timers, seq, now) {
                        Ok(writes) => writes,
                        Err(error) => {
                            return self
                                .record_bot_failure(channel, &bot, bot.failures, seq, now, error)
                                .await;
                        }
                    }
                };
                let sets_timers = !timers.is_empty();
                let progress = BotWrite::Progress {
                    slot: slot.clone(),
                    from: bot.processed_seq,
                    to: seq,
                    state: reaction.state.clone(),
                    failures: 0,
                    disabled: false,
                    ended: reaction.end.is_some(),
                    timers,
                    fetches,
                };
                let failures = bot.failures;
                let seed = bot.seed.clone();
                let stored = self
                    .store_bot_outcome(&channel.id, progress, move |channel| {
                        apply_reaction(channel, &slot, reaction, &seed, now)
                    })
                    .await?;
                if stored && sets_timers {
                    self.inner.timers.timers_changed();
                }
                if stored && asks_fetches {
                    self.inner.fetcher.requests_changed();
                }
                if !stored {
                    // The reaction could not be posted (e.g. to a slot that does not exist):
                    // that is the bot's failure, recorded as such.
                    let error = bots::BotError::new(
                        bots::BotErrorKind::BadPost,
                        "a post was refused by the channel (unknown recipient slot, or the channel closed)",
                    );
                    self.record_bot_failure(channel, &bot, failures, seq, now, error)
                        .await?;
                }
            }
            Err(error) => {
                self.record_bot_failure(channel, &bot, bot.failures, seq, now, error)
                    .await?;
            }
        }
        Ok(())
    }

    async fn record_bot_failure(
        &self,
        channel: &Channel,
        bot: &BotRecord,
        failures: u32,
        seq: Seq,
        now: domain::Timestamp,
        error: bots::BotError,
    ) -> Result<(), ServiceError> {
        let failures = failures.saturating_add(1);
        let disable = failures >= MAX_BOT_FAILURES;
        tracing::info!(channel = %channel.id, slot = %bot.slot, kind = error.kind.as_str(), failures, "bot event failed");
        let progress = BotWrite::Progress {
            slot: bot.slot.clone(),
            from: bot.processed_seq,
            to: seq,
            state: None,
            failures,
            disabled: disable,
            ended: false,
            timers: Vec::new(),
            fetches: Vec::new(),
        };
        let slot = bot.slot.clone();
        let failure = BotFailure {
            kind: error.kind.as_str().to_owned(),
            message: error.message,
            line: error.line,
            event_seq: seq,
        };
        self.store_bot_outcome(&channel.id, progress, move |channel| {
            channel.bot_failed(&slot, &failure, disable, now)
        })
        .await?;
        Ok(())
    }

    /// Stores a bot's outcome with its progress; `Ok(false)` when the channel refused the
    /// change (nothing was stored). A conflict (the bot was replaced meanwhile) voids the
    /// outcome and is no error. A storage failure stops this round of events; the next write
    /// to the channel (or the next start) resumes them.
    async fn store_bot_outcome(
        &self,
        id: &ChannelId,
        progress: BotWrite,
        change: impl FnOnce(&mut Channel) -> Result<(), DomainError> + Send + 'static,
    ) -> Result<bool, ServiceError> {
        let result = self
            .inner
            .store
            .update_channel_and_bots(id, move |channel| {
                change(channel)?;
                Ok(((), vec![progress]))
            })
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(store::StoreError::Domain(_)) => Ok(false),
            // The bot was replaced (attach_bot) while this event ran: its outcome is void.
            Err(store::StoreError::Conflict(reason)) => {
                tracing::debug!(channel = %id, %reason, "bot outcome dropped: the bot moved on");
                Ok(true)
            }
            Err(error) => Err(error.into()),
        }
    }
}

/// The language of a stored bot.
fn stored_language(bot: &BotRecord) -> Result<bots::Language, ServiceError> {
    bots::Language::parse(&bot.language).ok_or_else(|| {
        ServiceError::internal(format!("stored bot language {:?} is unknown", bot.language))
    })
}

/// What a bot post weighs against the output caps: text bytes plus the data's compact JSON.
fn body_bytes(body: &Body) -> usize {
    let text = body.text.as_ref().map_or(0, String::len);
    let data = body
        .data
        .as_ref()
        .and_then(|data| serde_json::to_string(data).ok())
        .map_or(0, |json| json.len());
    text + data
}

/// Posts the reaction's messages from the bot's slot and, when the bot ended its run, the end
/// and the reveal of `seed_hex`: all or none.
fn apply_reaction(
    channel: &mut Channel,
    slot: &SlotLabel,
    reaction: Reaction,
    seed_hex: &str,
    now: domain::Timestamp,
) -> Result<(), DomainError> {
    let mut trial = channel.clone();
    for post in reaction.posts {
        let nonce = crate::service::fresh_nonce();
        trial.bot_post(slot, post.body, post.to, nonce, now)?;
    }
    if let Some(end) = reaction.end {
        trial.end_bot_run(slot, end.reason, seed_hex, now)?;
    }
    *channel = trial;
    Ok(())
}

/// A channel's roster as of `seq`, kept by its bot task between events so that each event
/// folds only the notices since the last.
pub(crate) struct RosterAt {
    seq: Seq,
    roster: Roster,
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod runner_tests;
