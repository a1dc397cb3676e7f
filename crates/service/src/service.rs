//! [`Service`]: one method per capability. Method names match the MCP tool names.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use domain::bot_output::BotOutputLimits;
use domain::limits::{DEFAULT_MAX_BOT_SLOTS, MAX_OPEN_CHANNELS_PER_OWNER};
use domain::{
    AdminOp, Body, Channel, ChannelId, ChannelSpec, DomainError, Draft, Message, MessageKind,
    Principal, PrincipalId, SecretSource, SlotKind, SlotLabel, Timestamp,
};
use rand::RngCore;
use serde_json::{Map, Value};
use store::{ChannelListing, Store};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::admission::Admission;
use crate::caller::{Access, Caller};
use crate::error::ServiceError;
use crate::reads::ReadTracker;

/// Where "now" comes from; tests pass a fixed clock.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_millis())
            .unwrap_or_default();
        Timestamp(i64::try_from(millis).unwrap_or(i64::MAX))
    }
}

/// Secrets come from the thread-local CSPRNG, seeded by the operating system.
pub(crate) struct OsSecrets;

impl SecretSource for OsSecrets {
    fn fill(&mut self, buf: &mut [u8]) {
        rand::rng().fill_bytes(buf);
    }
}

/// A fresh nonce for a private message's digest.
pub(crate) fn fresh_nonce() -> domain::chain::Nonce {
    let mut bytes = [0u8; 16];
    OsSecrets.fill(&mut bytes);
    domain::chain::Nonce(bytes)
}

/// Tuning that the binary sets from its configuration.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// Requests per second per principal (bursts of twice that); 0 turns limiting off.
    pub rate_limit_per_second: u32,
    /// Syncs one principal may have waiting at once; 0 means no cap.
    pub max_waiting_syncs: usize,
    /// Open channels one principal may own.
    pub max_open_channels: usize,
    /// Caps on every bot event.
    pub bot_limits: bots::Limits,
    /// Most bot slots a new channel may declare.
    pub max_bot_slots: usize,
    /// Caps on what bots write across events: per message they react to, per minute per
    /// channel, per minute per channel owner.
    pub bot_output: BotOutputLimits,
    /// How long the signing keys are used before the store is asked again whether another
    /// process rotated them.
    pub key_recheck: Duration,
    /// How bots' fetches are made and capped (the witness).
    pub fetch: crate::fetches::FetchSettings,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            rate_limit_per_second: 20,
            max_waiting_syncs: 32,
            max_open_channels: MAX_OPEN_CHANNELS_PER_OWNER,
            bot_limits: bots::Limits::default(),
            max_bot_slots: DEFAULT_MAX_BOT_SLOTS,
            bot_output: BotOutputLimits::default(),
            key_recheck: crate::keys::KEY_RECHECK,
            fetch: crate::fetches::FetchSettings::default(),
        }
    }
}

/// The service. Cheap to clone; all clones share one store and one set of limits.
#[derive(Clone)]
pub struct Service {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) admission: Admission,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) settings: ServiceSettings,
    /// Cancelled at shutdown: waiting syncs answer at once with what they have.
    pub(crate) shutdown: CancellationToken,
    pub(crate) reads: ReadTracker,
    pub(crate) bots: crate::bots::BotRunner,
    /// The signing keys, loaded at start or on first use.
    pub(crate) keys: crate::keys::ServerKeys,
    /// The last head signed for each channel, handed out again for a moment.
    pub(crate) heads: crate::export::SignedHeads,
    /// Wakes the task that fires bot timers.
    pub(crate) timers: crate::timers::TimerClock,
    /// What the task that makes bots' fetches shares.
    pub(crate) fetcher: crate::fetches::Fetcher,
    /// This instance's name among those sharing the database: the holder of its leases.
    pub(crate) instance: String,
    /// Held while a quick match finds or opens a table for a game.
    pub(crate) quick_match: crate::lobby::TableLocks,
}

/// What to create: `create_channel`'s arguments.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub name: String,
    /// `kind:label` each, e.g. `invite:alice`.
    pub slots: Vec<String>,
    /// Whether the creator takes the first invite slot.
    pub join: bool,
    pub bot: Option<crate::bots::BotRequest>,
    /// Whether private messages to a bot become readable by all once its run ends; `None`
    /// takes the default ([`domain::ChannelSpec::reveal_private`]).
    pub reveal_private: Option<bool>,
    /// Whether the channel is in the public lobby, where anyone may take an open player seat.
    pub listing: Option<domain::Listing>,
}

impl CreateRequest {
    /// A channel named `name` with these slots, joined by its creator, without a bot.
    pub fn new(name: &str, slots: &[String]) -> Self {
        CreateRequest {
            name: name.to_owned(),
            slots: slots.to_vec(),
            join: true,
            bot: None,
            reveal_private: None,
            listing: None,
        }
    }

    pub fn with_bot(self, bot: crate::bots::BotRequest) -> Self {
        CreateRequest {
            bot: Some(bot),
            ..self
        }
    }
}

/// A channel just created.
#[derive(Debug)]
pub struct Created {
    pub channel: Channel,
    /// One invite code per open seat, shown only now.
    pub invites: Vec<(SlotLabel, String)>,
    /// The creator's seat and rejoin token, unless they chose not to join.
    pub joined: Option<domain::Joined>,
}

/// A seat just taken or moved.
#[derive(Debug)]
pub struct Joined {
    pub channel: Channel,
    pub slot: SlotLabel,
    /// The seat's kind: a spectator seat reads and never posts.
    pub kind: SlotKind,
    pub rejoin_token: String,
    /// The caller's other seats in this channel when the code was an invite: a second seat
    /// taken with an invite was probably meant for someone else. Empty after a rejoin, which
    /// moves a seat the caller already had.
    pub other_seats: Vec<SlotLabel>,
}

/// Arguments of `post_message`, as received.
#[derive(Debug, Default, Clone)]
pub struct PostRequest {
    pub channel_id: String,
    pub slot: Option<String>,
    pub text: Option<String>,
    pub data: Option<Map<String, Value>>,
    pub to: Option<String>,
    pub kind: Option<String>,
}

/// Arguments of `update_channel`, as received.
#[derive(Debug, Default, Clone)]
pub struct AdminRequest {
    pub channel_id: String,
    pub op: String,
    pub name: Option<String>,
    pub slot: Option<String>,
    pub admin: Option<bool>,
}

impl AdminRequest {
    /// The operations `op` can name, for error messages and schemas.
    pub const OPS: [&'static str; 6] = [
        "rename",
        "set_admin",
        "yield_slot",
        "kick",
        "reissue_invite",
        "close",
    ];

    fn to_op(&self) -> Result<AdminOp, DomainError> {
        let slot = || -> Result<SlotLabel, DomainError> {
            let raw = self.slot.as_deref().ok_or_else(|| {
                DomainError::invalid("slot", format!("op {:?} needs a slot", self.op))
            })?;
            SlotLabel::parse(raw)
        };
        Ok(match self.op.as_str() {
            "rename" => AdminOp::Rename {
                name: self
                    .name
                    .clone()
                    .ok_or_else(|| DomainError::invalid("name", "op \"rename\" needs a name"))?,
            },
            "set_admin" => AdminOp::SetAdmin {
                slot: slot()?,
                admin: self.admin.unwrap_or(true),
            },
            "yield_slot" => AdminOp::YieldSlot { slot: slot()? },
            "kick" => AdminOp::Kick { slot: slot()? },
            "reissue_invite" => AdminOp::ReissueInvite { slot: slot()? },
            "close" => AdminOp::Close,
            other => {
                return Err(DomainError::invalid(
                    "op",
                    format!("unknown op {other:?}; use one of {}", Self::OPS.join(", ")),
                ));
            }
        })
    }
}

/// Whether the channel has a bot that still takes events.
pub(crate) fn has_live_bots(channel: &Channel) -> bool {
    channel
        .slots
        .iter()
        .any(|slot| slot.bot.as_ref().is_some_and(|bot| !bot.disabled))
}

pub(crate) fn parse_slot(raw: Option<&str>) -> Result<Option<SlotLabel>, DomainError> {
    raw.map(SlotLabel::parse).transpose()
}

/// A name for this instance that no other instance sharing the database has: the process id,
/// for people reading the `leases` table, and random bytes, for uniqueness across machines.
fn instance_name() -> String {
    use rand::RngCore;
    format!("{}-{:016x}", std::process::id(), rand::rng().next_u64())
}

/// Why an instance should not be sent requests now. Its name is all a probe sees: the
/// database's own error goes to the log, not to an unauthenticated endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReady {
    ShuttingDown,
    DatabaseUnavailable,
}

impl NotReady {
    pub fn as_str(self) -> &'static str {
        match self {
            NotReady::ShuttingDown => "shutting_down",
            NotReady::DatabaseUnavailable => "database_unavailable",
        }
    }
}

impl Service {
    /// A service over `store`, running bot code on `workers`. Cancelling `shutdown` answers
    /// waiting syncs and stops the workers.
    pub fn new(
        store: Store,
        settings: ServiceSettings,
        clock: Arc<dyn Clock>,
        shutdown: CancellationToken,
        workers: workers::Pool,
    ) -> Self {
        let admission = Admission::new(settings.rate_limit_per_second, settings.max_waiting_syncs);
        let bots =
            crate::bots::BotRunner::new(workers, settings.bot_limits.clone(), settings.bot_output);
        let keys = crate::keys::ServerKeys::new(settings.key_recheck);
        let service = Self {
            inner: Arc::new(Inner {
                store,
                admission,
                clock,
                keys,
                heads: crate::export::SignedHeads::default(),
                settings,
                shutdown,
                reads: ReadTracker::default(),
                bots,
                timers: crate::timers::TimerClock::default(),
                fetcher: crate::fetches::Fetcher::default(),
                instance: instance_name(),
                quick_match: crate::lobby::TableLocks::default(),
            }),
        };
        service.spawn_housekeeping();
        service.spawn_timer_clock();
        service.spawn_fetcher();
        if service.inner.store.is_shared() {
            service.spawn_bot_sweeper();
        }
        service
    }

    /// Runs `round` again and again until the service is dropped or shut down. Between rounds
    /// it naps for the duration the round returned, or until `wake` is notified.
    ///
    /// The loop holds the service only while a round runs, never while it naps: two loops that
    /// each held it across their naps would keep a dropped service (and its store) alive
    /// forever, one picking it up before the other let go.
    pub(crate) fn spawn_rounds<Round, Done>(&self, wake: Arc<Notify>, round: Round)
    where
        Round: Fn(Service) -> Done + Send + 'static,
        Done: Future<Output = Duration> + Send,
    {
        let weak = Arc::downgrade(&self.inner);
        let shutdown = self.inner.shutdown.clone();
        tokio::spawn(async move {
            loop {
                let nap = {
                    let Some(inner) = weak.upgrade() else { return };
                    round(Service { inner }).await
                };
                tokio::select! {
                    () = tokio::time::sleep(nap) => {}
                    () = wake.notified() => {}
                    () = shutdown.cancelled() => return,
                }
            }
        });
    }

    /// Hands this instance's work over before the process exits: stops the bot workers and
    /// gives back its leases, so another instance on the same database (or this one restarted)
    /// takes its channels at once instead of when the leases run out. The housekeeping task does
    /// the same when shutdown begins; this waits for it to be done.
    pub async fn hand_over(&self) {
        self.inner.bots.shutdown();
        if let Err(error) = self
            .inner
            .store
            .release_leases_of(&self.inner.instance)
            .await
        {
            tracing::warn!(%error, "could not hand this instance's leases over");
        }
    }

    /// Background upkeep: writes read progress every half second (and once more at shutdown,
    /// when it also stops the bot workers),
    /// and drops the rate-limit state of idle principals every minute.
    fn spawn_housekeeping(&self) {
        let weak = Arc::downgrade(&self.inner);
        let shutdown = self.inner.shutdown.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(500));
            let mut ticks: u64 = 0;
            loop {
                let stopping = tokio::select! {
                    _ = every.tick() => false,
                    () = shutdown.cancelled() => true,
                };
                let Some(inner) = weak.upgrade() else { return };
                if stopping {
                    // Bot code stops with the server, whatever it is doing, and another
                    // instance on the same database may take its channels over at once.
                    inner.bots.shutdown();
                    if let Err(error) = inner.store.release_leases_of(&inner.instance).await {
                        tracing::warn!(%error, "could not hand this instance's leases over");
                    }
                }
                let marks = inner.reads.take();
                if !marks.is_empty()
                    && let Err(error) = inner.store.mark_read(marks).await
                {
                    tracing::warn!(%error, "could not record read progress");
                }
                ticks += 1;
                if ticks.is_multiple_of(120) {
                    inner.admission.forget_idle();
                }
                if stopping {
                    return;
                }
            }
        });
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// Counts one request of `who` against the per-principal rate limit. Every method does it
    /// through [`Self::authorize`]; transports call it for the requests they answer without the
    /// service (an MCP tool list, a resource), so that no kind of request escapes the limit.
    pub fn admit_request(&self, who: &PrincipalId) -> Result<(), ServiceError> {
        self.inner.admission.admit(who)
    }

    /// How many syncs are waiting for a message right now (long-polls over REST and MCP,
    /// parked or not), for `/healthz`.
    pub fn waiting_syncs(&self) -> usize {
        self.inner.admission.waiting_syncs()
    }

    /// The bot events this process ran and its worker pool, for `/metrics`.
    pub fn bot_activity(&self) -> crate::BotActivity {
        self.inner.bots.activity()
    }

    /// The database's connections and notices, for `/metrics`.
    pub fn database_stats(&self) -> store::BackendStats {
        self.inner.store.stats()
    }

    /// Whether this instance should be sent requests: not shutting down, and its database
    /// answers a query. For a load balancer's readiness probe.
    pub async fn check_ready(&self) -> Result<(), NotReady> {
        if self.inner.shutdown.is_cancelled() {
            return Err(NotReady::ShuttingDown);
        }
        if let Err(error) = self.inner.store.durability().await {
            tracing::warn!(%error, "not ready: the database did not answer");
            return Err(NotReady::DatabaseUnavailable);
        }
        Ok(())
    }

    /// The one place where access is decided: every method calls this first, naming what it
    /// needs, and gets the principal to act for. It also counts the call against the caller's
    /// rate limit.
    pub(crate) fn authorize<'a>(
        &self,
        caller: &'a Caller,
        needed: Access,
    ) -> Result<&'a Principal, ServiceError> {
        self.admit_request(&caller.principal.id)?;
        if caller.may(needed) {
            Ok(&caller.principal)
        } else {
            Err(ServiceError::InsufficientScope)
        }
    }

    /// Creates a channel; the creator takes the first invite slot unless `join` is false.
    pub async fn create_channel(
        &self,
        caller: &Caller,
        request: CreateRequest,
    ) -> Result<Created, ServiceError> {
        let who = self.authorize(caller, Access::Write)?;
        let CreateRequest {
            name,
            mut slots,
            join,
            bot,
            reveal_private,
            listing,
        } = request;
        // A bot needs a bot slot; name one for the caller who did not.
        if bot.is_some() && !slots.iter().any(|slot| slot.starts_with("bot:")) {
            slots.insert(0, "bot:referee".to_owned());
        }
        let mut spec = ChannelSpec::new(&name, &slots)?;
        if let Some(reveal_private) = reveal_private {
            spec.reveal_private = reveal_private;
        }

        spec.check_bot_slots(self.inner.settings.max_bot_slots)?;
        let mut id_bytes = [0u8; 12];
        OsSecrets.fill(&mut id_bytes);
        let id = ChannelId::from_random(id_bytes);
        let now = self.now();
        let mut created = Channel::create(id.clone(), spec, who, join, now, &mut OsSecrets);
        let mut records = Vec::new();
        if let Some(bot) = bot {
            let slot = created.channel.bot_slot_for(None)?;
            let prepared = self.prepare_bot(&who.id, &id, &slot, bot).await?;
            records.push(prepared.attach(&mut created.channel, &who.id, now)?);
        }
        // Listed once set up: the creator attached the bot as the admin a quick-match table
        // then stops having.
        created.channel.list(listing);
        let channel = created.channel.clone();
        let has_bots = !records.is_empty();
        self.inner
            .store
            .insert_channel(
                created.channel,
                self.inner.settings.max_open_channels,
                records,
            )
            .await?;
        if has_bots {
            self.wake_bots(&id);
        }
        tracing::info!(channel = %channel.id, slots = channel.slots.len(), "channel created");
        Ok(Created {
            channel,
            invites: created.invites,
            joined: created.joined,
        })
    }

    /// Redeems an invite code (takes its seat) or a rejoin token (moves its seat here).
    pub async fn join_channel(&self, caller: &Caller, code: &str) -> Result<Joined, ServiceError> {
        let who = self.authorize(caller, Access::Write)?;
        let (hash, by_invite) = match domain::secret::classify(code) {
            Some(domain::secret::Redeemable::Invite(hash)) => (hash, true),
            Some(domain::secret::Redeemable::Rejoin(hash)) => (hash, false),
            None => return Err(DomainError::InviteInvalid.into()),
        };
        let id = self
            .inner
            .store
            .find_channel_by_secret(&hash)
            .await?
            .ok_or(DomainError::InviteInvalid)?;
        let (who_for_rule, code) = (who.clone(), code.to_owned());
        let clock = self.inner.clock.clone();
        let ((joined, channel), _) = self
            .inner
            .store
            .update_channel(&id, move |channel| {
                let joined = channel.redeem(&code, &who_for_rule, clock.now(), &mut OsSecrets)?;
                Ok((joined, channel.clone()))
            })
            .await?;
        tracing::info!(channel = %id, slot = %joined.slot, "seat taken");
        if has_live_bots(&channel) {
            self.wake_bots(&id);
        }
        let kind = channel
            .slots
            .iter()
            .find(|slot| slot.label == joined.slot)
            .map_or(SlotKind::Invite, |slot| slot.kind);
        let other_seats = if by_invite {
            channel
                .seats_of(&who.id)
                .map(|slot| slot.label.clone())
                .filter(|label| *label != joined.slot)
                .collect()
        } else {
            Vec::new()
        };
        Ok(Joined {
            slot: joined.slot,
            kind,
            rejoin_token: joined.rejoin_token,
            other_seats,
            channel,
        })
    }

    /// The channel's set-up, for its members and its owner.
    pub async fn get_channel(
        &self,
        caller: &Caller,
        channel_id: &str,
    ) -> Result<Channel, ServiceError> {
        let who = self.authorize(caller, Access::Read)?;
        let channel = self
            .inner
            .store
            .load_channel(&ChannelId::parse(channel_id)?)
            .await?;
        if channel.is_visible_to(&who.id) {
            Ok(channel)
        } else {
            Err(DomainError::NotMember.into())
        }
    }

    /// Posts a participant's message, publicly or privately to one slot.
    pub async fn post_message(
        &self,
        caller: &Caller,
        request: PostRequest,
    ) -> Result<Message, ServiceError> {
        let who = self.authorize(caller, Access::Write)?;
        let id = ChannelId::parse(&request.channel_id)?;
        MessageKind::requested_by_participant(request.kind.as_deref())?;
        let slot = parse_slot(request.slot.as_deref())?;
        let draft = Draft {
            body: Body::new(request.text, request.data)?,
            to: parse_slot(request.to.as_deref())?,
            nonce: fresh_nonce(),
        };
        let (who_id, clock) = (who.id.clone(), self.inner.clock.clone());
        let ((message, has_bots), _) = self
            .inner
            .store
            .update_channel(&id, move |channel| {
                let message = channel.post(&who_id, slot.as_ref(), draft, clock.now())?;
                Ok((message, has_live_bots(channel)))
            })
            .await?;
        if has_bots {
            self.wake_bots(&id);
        }
        Ok(message)
    }

    /// The caller's channels with unread counts per seat.
    pub async fn list_channels(
        &self,
        caller: &Caller,
    ) -> Result<Vec<ChannelListing>, ServiceError> {
        let who = self.authorize(caller, Access::Read)?;
        Ok(self.inner.store.channels_of(&who.id).await?)
    }

    /// Applies an admin operation. Returns the channel after it, and a fresh invite code when
    /// the operation made one.
    pub async fn update_channel(
        &self,
        caller: &Caller,
        request: AdminRequest,
    ) -> Result<(Channel, Option<(SlotLabel, String)>), ServiceError> {
        let who = self.authorize(caller, Access::Write)?;
        let id = ChannelId::parse(&request.channel_id)?;
        let op = request.to_op()?;
        // Closing ends the bots' secrecy: their seeds are published with the close.
        let seeds = if op == AdminOp::Close {
            self.seeds_of(&id).await?
        } else {
            Vec::new()
        };
        let (actor, clock) = (who.clone(), self.inner.clock.clone());
        let (outcome, _) = self
            .inner
            .store
            .update_channel(&id, move |channel| {
                if !channel.is_visible_to(&actor.id) {
                    return Err(DomainError::NotMember);
                }
                let now = clock.now();
                let invite = if op == AdminOp::Close {
                    channel.close(&actor, &seeds, now)?;
                    None
                } else {
                    channel.administer(&actor, op, now, &mut OsSecrets)?
                };
                Ok((channel.clone(), invite))
            })
            .await?;
        if has_live_bots(&outcome.0) {
            self.wake_bots(&id);
        }
        Ok(outcome)
    }

    /// Gives up the caller's seat.
    pub async fn leave_channel(
        &self,
        caller: &Caller,
        channel_id: &str,
        slot: Option<&str>,
    ) -> Result<SlotLabel, ServiceError> {
        let who = self.authorize(caller, Access::Write)?;
        let id = ChannelId::parse(channel_id)?;
        let slot = parse_slot(slot)?;
        let (leaver, clock) = (who.clone(), self.inner.clock.clone());
        let ((left, has_bots), _) = self
            .inner
            .store
            .update_channel(&id, move |channel| {
                let left = channel.leave(&leaver, slot.as_ref(), clock.now())?;
                Ok((left, has_live_bots(channel)))
            })
            .await?;
        if has_bots {
            self.wake_bots(&id);
        }
        Ok(left)
    }
}

#[cfg(test)]
mod tests;
