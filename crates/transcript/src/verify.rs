//! Checking an exported transcript offline: [`check`] (the chain, the signatures, the channel's
//! record, each bot's hashes and commitment) and [`replay`] (every bot event the transcript
//! holds the inputs for, run again and compared with what was recorded). Both stop at the
//! first [`Divergence`] and name it: the seq, what was expected, what was found.
//!
//! The steps and their order are `docs/transcript.md`'s "What a verifier checks".

use std::collections::HashMap;
use std::fmt;

use bots::{BotSeed, BotSource, Event, EventContext, Job, Language, Limits};
use domain::chain::{canonical_json, sha256_tagged};
use domain::{
    ChainHash, ChannelId, Message, MessageKind, Notice, Roster, Seq, SlotLabel, Timestamp,
};

use crate::export::{ExportedBot, FORMAT, Transcript, VERSION};
use crate::signing::{AttestationStatement, PublicKeyInfo, SignedHead, verify, verify_attestation};

/// The first thing that does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// Where, when it is one message.
    pub seq: Option<i64>,
    pub what: String,
    pub expected: String,
    pub found: String,
}

impl Divergence {
    fn at(
        seq: i64,
        what: impl Into<String>,
        expected: impl fmt::Display,
        found: impl fmt::Display,
    ) -> Self {
        Divergence {
            seq: Some(seq),
            what: what.into(),
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }

    fn whole(
        what: impl Into<String>,
        expected: impl fmt::Display,
        found: impl fmt::Display,
    ) -> Self {
        Divergence {
            seq: None,
            what: what.into(),
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.seq {
            Some(seq) => write!(f, "diverged at seq {seq}: {}", self.what)?,
            None => write!(f, "diverged: {}", self.what)?,
        }
        write!(
            f,
            "\n  expected: {}\n  found:    {}",
            self.expected, self.found
        )
    }
}

/// What [`check`] established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub channel: ChannelId,
    pub messages: usize,
    pub withheld: usize,
    pub head: SignedHead,
    /// Saved heads found on the chain.
    pub saved_heads: usize,
    /// Bots whose hashes and commitment check out, and which of them have a revealed seed.
    pub bots: Vec<(String, bool)>,
}

/// Checks everything but bot replay. `saved` are signed heads kept from earlier answers.
pub fn check(transcript: &Transcript, saved: &[SignedHead]) -> Result<Checked, Divergence> {
    if transcript.format != FORMAT || transcript.version != VERSION {
        return Err(Divergence::whole(
            "format",
            format!("{FORMAT} version {VERSION}"),
            format!("{} version {}", transcript.format, transcript.version),
        ));
    }
    let channel = channel_of(transcript)?;
    let messages = decode_messages(transcript)?;
    let links = chain_links(&channel, transcript, &messages)?;
    if let Some(key) = transcript
        .keys
        .iter()
        .find(|key| key.algorithm != crate::signing::ALGORITHM)
    {
        return Err(Divergence::whole(
            format!("the algorithm of key {}", key.id),
            crate::signing::ALGORITHM,
            &key.algorithm,
        ));
    }
    let keys: Vec<PublicKeyInfo> = transcript.keys.iter().map(|key| key.info()).collect();
    check_head(
        &channel,
        &transcript.head,
        &keys,
        &links,
        "the export's head",
    )?;
    let mut heads = vec![transcript.head.clone()];
    for head in saved {
        check_head(&channel, head, &keys, &links, "a saved head")?;
        heads.push(head.clone());
    }
    check_header(transcript, &messages)?;
    check_senders(transcript, &messages)?;
    check_attestations(&channel, &messages, &keys)?;
    check_bot_list(transcript, &messages)?;
    let mut bots = Vec::new();
    for bot in &transcript.bots {
        check_bot(&channel, bot, &messages)?;
        bots.push((bot.slot.clone(), bot.seed.is_some()));
    }
    Ok(Checked {
        channel,
        messages: messages.len(),
        withheld: messages.iter().filter(|message| message.is_none()).count(),
        head: transcript.head.clone(),
        saved_heads: saved.len(),
        bots,
    })
}

/// Every readable `fetch_attested` notice carries the server's valid signature over its record,
/// bound to this channel, its slot, tag and asking event.
fn check_attestations(
    channel: &ChannelId,
    messages: &[Option<Message>],
    keys: &[PublicKeyInfo],
) -> Result<(), Divergence> {
    for message in messages.iter().flatten() {
        let Some(Ok(Notice::FetchAttested {
            slot,
            tag,
            requested_by,
            attestation,
            witness,
        })) = message.notice()
        else {
            continue;
        };
        let statement = AttestationStatement {
            channel,
            slot: &slot,
            tag: &tag,
            requested_by,
            attestation: &attestation,
        };
        verify_attestation(&statement, &witness, keys).map_err(|error| {
            Divergence::at(
                message.seq.0,
                "the server's signature over a fetch record",
                "a valid signature by a published key",
                error,
            )
        })?;
    }
    Ok(())
}

/// The header's channel id, which must be one of ours.
fn channel_of(transcript: &Transcript) -> Result<ChannelId, Divergence> {
    transcript.channel_id().ok_or_else(|| {
        Divergence::whole(
            "channel id",
            "ch_ and 24 hex digits",
            &transcript.channel.id,
        )
    })
}

/// Whether two signed heads, both valid, contradict each other: the same channel and seq with
/// different hashes. That is the server's own signature on two histories.
pub fn contradiction(a: &SignedHead, b: &SignedHead, keys: &[PublicKeyInfo]) -> Option<Divergence> {
    let both_valid = verify(a, keys).is_ok() && verify(b, keys).is_ok();
    (both_valid && a.channel == b.channel && a.seq == b.seq && a.head != b.head).then(|| {
        Divergence::at(
            a.seq.0,
            "the server signed two different histories of this channel: proof that it rewrote history",
            &a.head,
            &b.head,
        )
    })
}

/// The messages, decoded; `None` for withheld ones. Seqs must run 1, 2, 3… to the head.
fn decode_messages(transcript: &Transcript) -> Result<Vec<Option<Message>>, Divergence> {
    let mut decoded = Vec::with_capacity(transcript.messages.len());
    for (index, exported) in transcript.messages.iter().enumerate() {
        let expected = i64::try_from(index).unwrap_or(i64::MAX) + 1;
        if exported.seq != expected {
            return Err(Divergence::at(
                expected,
                "message order",
                format!("seq {expected}"),
                format!("seq {}", exported.seq),
            ));
        }
        let message = exported.message().map_err(|problem| {
            Divergence::at(
                exported.seq,
                "malformed message",
                "a message as the server writes it",
                problem,
            )
        })?;
        // Private messages carry a nonce, except those written before the transcript existed.
        if let Some(message) = &message
            && message.to.is_some()
            && message.nonce.is_none()
            && message.seq.0 > transcript.channel.faithful_from
        {
            return Err(Divergence::at(
                message.seq.0,
                "a private message without its nonce",
                "a nonce",
                "none",
            ));
        }
        decoded.push(message);
    }
    let last = i64::try_from(decoded.len()).unwrap_or(i64::MAX);
    if last != transcript.head.seq.0 {
        return Err(Divergence::whole(
            "message count",
            format!("{} messages, up to the head", transcript.head.seq.0),
            format!("{last} messages"),
        ));
    }
    Ok(decoded)
}

/// Each message's link, recomputed from the one before and the message's digest (computed for
/// a readable message, given for a withheld one); `links[0]` is genesis, `links[n]` the hash at
/// seq n.
fn chain_links(
    channel: &ChannelId,
    transcript: &Transcript,
    messages: &[Option<Message>],
) -> Result<Vec<ChainHash>, Divergence> {
    let mut links = vec![ChainHash::genesis()];
    for (exported, message) in transcript.messages.iter().zip(messages) {
        let previous = links.last().cloned().unwrap_or_else(ChainHash::genesis);
        let stored = exported.chain_hash().ok_or_else(|| {
            Divergence::at(
                exported.seq,
                "malformed hash",
                "sha256:<64 hex>",
                &exported.hash,
            )
        })?;
        let recomputed = match message {
            Some(message) => previous.link(channel, message),
            None => {
                let digest = exported.given_digest().ok_or_else(|| {
                    Divergence::at(
                        exported.seq,
                        "a withheld message's digest",
                        "sha256:<64 hex>",
                        exported.digest.as_deref().unwrap_or("none"),
                    )
                })?;
                // Only private messages are withheld; the link says which were.
                previous.link_digest(&digest, true)
            }
        };
        if recomputed != stored {
            return Err(Divergence::at(
                exported.seq,
                "the message does not hash to its link of the chain (its content, or one before it, was changed)",
                recomputed,
                stored,
            ));
        }
        links.push(stored);
    }
    Ok(links)
}

fn check_head(
    channel: &ChannelId,
    head: &SignedHead,
    keys: &[PublicKeyInfo],
    links: &[ChainHash],
    which: &str,
) -> Result<(), Divergence> {
    if &head.channel != channel {
        return Err(Divergence::whole(
            format!("{which} is for another channel"),
            channel,
            &head.channel,
        ));
    }
    verify(head, keys).map_err(|error| {
        Divergence::at(
            head.seq.0,
            format!("{which}'s signature"),
            "a valid Ed25519 signature by a listed key",
            error,
        )
    })?;
    let index = usize::try_from(head.seq.0).ok();
    match index.and_then(|index| links.get(index)) {
        None => Err(Divergence::at(
            head.seq.0,
            format!("{which} is beyond the transcript"),
            format!("at most seq {}", links.len().saturating_sub(1)),
            head.seq.0,
        )),
        Some(link) if link.as_str() != head.head => Err(Divergence::at(
            head.seq.0,
            format!(
                "{which}, signed by the server, disagrees with the chain: proof that the server showed two histories"
            ),
            link,
            &head.head,
        )),
        Some(_) => Ok(()),
    }
}

/// The header against the notices, which the chain covers: seq 1 is the `created` notice
/// with the header's slots and setting, the name is the last one given, `closed` says whether
/// a close notice exists. A channel created since the transcript existed is faithful from 0.
fn check_header(transcript: &Transcript, messages: &[Option<Message>]) -> Result<(), Divergence> {
    let header = &transcript.channel;
    let first = match messages.first() {
        None => return Ok(()),
        Some(Some(first)) => first,
        Some(None) => {
            return Err(Divergence::at(
                1,
                "the first message",
                "the created notice, public",
                "withheld",
            ));
        }
    };
    match first.notice() {
        Some(Ok(Notice::Created {
            slots,
            reveal_private,
            ..
        })) => {
            if slots != header.slots {
                return Err(Divergence::at(
                    1,
                    "the channel's slots",
                    slots.join(", "),
                    header.slots.join(", "),
                ));
            }
            if let Some(reveal_private) = reveal_private {
                if reveal_private != header.reveal_private {
                    return Err(Divergence::at(
                        1,
                        "the channel's reveal_private setting",
                        reveal_private,
                        header.reveal_private,
                    ));
                }
                if header.faithful_from != 0 {
                    return Err(Divergence::whole(
                        "faithful_from of a channel created with the transcript",
                        0,
                        header.faithful_from,
                    ));
                }
            }
        }
        // Channels from before the transcript may start otherwise; nothing to hold them to.
        _ if header.faithful_from > 0 => return Ok(()),
        _ => {
            return Err(Divergence::at(
                1,
                "the first message",
                "the created notice",
                "something else",
            ));
        }
    }
    let mut name = None;
    let mut closed = false;
    for (_, notice) in notices(messages) {
        match notice {
            Notice::Created { name: given, .. } | Notice::Renamed { name: given, .. } => {
                name = Some(given)
            }
            Notice::Closed { .. } => closed = true,
            _ => {}
        }
    }
    if let Some(name) = name
        && name != header.name
    {
        return Err(Divergence::whole(
            "the channel's name, against its notices",
            name,
            &header.name,
        ));
    }
    if closed != header.closed {
        return Err(Divergence::whole(
            "whether the channel is closed, against its notices",
            closed,
            header.closed,
        ));
    }
    Ok(())
}

/// Every slot whose bot was attached has exactly one entry in `bots`: leaving one out would
/// leave its hashes unchecked and its run unreplayed.
fn check_bot_list(transcript: &Transcript, messages: &[Option<Message>]) -> Result<(), Divergence> {
    let mut attached: Vec<String> = notices(messages)
        .filter_map(|(_, notice)| match notice {
            Notice::BotAttached { slot, .. } => Some(slot.to_string()),
            _ => None,
        })
        .collect();
    attached.sort();
    attached.dedup();
    let mut listed: Vec<String> = transcript.bots.iter().map(|bot| bot.slot.clone()).collect();
    listed.sort();
    if listed != attached {
        return Err(Divergence::whole(
            "the bots listed, against the attach notices",
            attached.join(", "),
            listed.join(", "),
        ));
    }
    Ok(())
}

/// Who may have written each readable message: a `user` message comes from a player's seat, a
/// `bot` message from a bot slot, a `system` message from nobody. A message in another's
/// clothes (a "user" post from the referee's slot) would escape replay.
fn check_senders(transcript: &Transcript, messages: &[Option<Message>]) -> Result<(), Divergence> {
    let kinds: Vec<domain::SlotSpec> = transcript
        .channel
        .slots
        .iter()
        .filter_map(|raw| domain::SlotSpec::parse(raw).ok())
        .collect();
    let kind_of = |slot: &SlotLabel| {
        kinds
            .iter()
            .find(|spec| &spec.label == slot)
            .map(|spec| spec.kind)
    };
    for message in messages.iter().flatten() {
        let fits = match (message.kind, &message.sender) {
            (MessageKind::User, Some(sender)) => kind_of(sender) == Some(domain::SlotKind::Invite),
            (MessageKind::Bot, Some(sender)) => kind_of(sender) == Some(domain::SlotKind::Bot),
            (MessageKind::System, None) => message.sender_name == "system",
            _ => false,
        };
        let recipient_known = message.to.as_ref().is_none_or(|to| kind_of(to).is_some());
        if !fits || !recipient_known {
            return Err(Divergence::at(
                message.seq.0,
                "who wrote the message",
                "a user message from a player's seat, a bot message from a bot slot, a notice from the system, to a slot of the channel",
                format!(
                    "a {} message from {:?} to {:?}",
                    message.kind.as_str(),
                    message.sender.as_ref().map(SlotLabel::as_str),
                    message.to.as_ref().map(SlotLabel::as_str)
                ),
            ));
        }
    }
    Ok(())
}

fn check_bot(
    channel: &ChannelId,
    bot: &ExportedBot,
    messages: &[Option<Message>],
) -> Result<(), Divergence> {
    let slot = &bot.slot;
    let at = bot.attached_seq;
    let code_hash = sha256_tagged(bot.source.as_bytes());
    if code_hash != bot.code_hash {
        return Err(Divergence::at(
            at,
            format!("the code of the bot in {slot}"),
            &bot.code_hash,
            code_hash,
        ));
    }
    let params_hash = sha256_tagged(canonical_json(&bot.params).as_bytes());
    if params_hash != bot.params_hash {
        return Err(Divergence::at(
            at,
            format!("the params of the bot in {slot}"),
            &bot.params_hash,
            params_hash,
        ));
    }
    let attached = last_attach(slot, messages).ok_or_else(|| {
        Divergence::whole(
            format!("the bot in {slot}"),
            "a bot_attached notice",
            "none",
        )
    })?;
    if attached.0.0 != at {
        return Err(Divergence::at(
            at,
            format!("where the bot in {slot} was attached"),
            format!("seq {}", attached.0.0),
            format!("seq {at}"),
        ));
    }
    let announced = [
        ("name", &attached.1.name, &bot.name),
        ("language", &attached.1.language, &bot.language),
        ("code hash", &attached.1.code_hash, &bot.code_hash),
        ("params hash", &attached.1.params_hash, &bot.params_hash),
        (
            "seed commitment",
            &attached.1.seed_commitment,
            &bot.seed_commitment,
        ),
    ];
    for (what, notice, exported) in announced {
        if notice != exported {
            return Err(Divergence::at(
                at,
                format!("the {what} of the bot in {slot}, against its attach notice"),
                notice,
                exported,
            ));
        }
    }
    let mut ended = false;
    let mut disabled = false;
    for (seq, notice) in notices(messages) {
        match notice {
            Notice::BotRunEnded { slot: of, .. } if of.as_str() == slot && seq.0 > at => {
                ended = true
            }
            Notice::BotDisabled { slot: of } if of.as_str() == slot && seq.0 > at => {
                disabled = true
            }
            _ => {}
        }
    }
    if (ended, disabled) != (bot.ended, bot.disabled) {
        return Err(Divergence::at(
            at,
            format!("whether the bot in {slot} ended or is disabled, against its notices"),
            format!("ended {ended}, disabled {disabled}"),
            format!("ended {}, disabled {}", bot.ended, bot.disabled),
        ));
    }
    if bot.seed.is_none()
        && let Some((revealed, _)) = revealed_seed(slot, at, messages)
    {
        return Err(Divergence::at(
            revealed.0,
            format!("the seed of the bot in {slot}, revealed here, is missing from the export"),
            "the revealed seed",
            "none",
        ));
    }
    if let Some(seed) = &bot.seed {
        let commitment = bots::commitment(channel.as_str(), slot, seed, b"");
        if commitment != bot.seed_commitment {
            return Err(Divergence::at(
                at,
                format!("the seed of the bot in {slot}, against its commitment"),
                &bot.seed_commitment,
                commitment,
            ));
        }
        let revealed = revealed_seed(slot, at, messages).ok_or_else(|| {
            Divergence::whole(
                format!("the reveal of the seed of the bot in {slot}"),
                "a bot_seed_revealed notice",
                "none",
            )
        })?;
        if &revealed.1 != seed {
            return Err(Divergence::at(
                revealed.0.0,
                format!("the seed of the bot in {slot}, against its reveal notice"),
                revealed.1,
                seed,
            ));
        }
    }
    Ok(())
}

/// The fields of a `bot_attached` notice.
struct Attached {
    name: String,
    language: String,
    code_hash: String,
    params_hash: String,
    seed_commitment: String,
}

fn notices(messages: &[Option<Message>]) -> impl Iterator<Item = (Seq, Notice)> + '_ {
    messages
        .iter()
        .flatten()
        .filter_map(|message| Some((message.seq, message.notice()?.ok()?)))
}

fn last_attach(slot: &str, messages: &[Option<Message>]) -> Option<(Seq, Attached)> {
    notices(messages)
        .filter_map(|(seq, notice)| match notice {
            Notice::BotAttached {
                slot: attached,
                name,
                language,
                code_hash,
                params_hash,
                seed_commitment,
            } if attached.as_str() == slot => Some((
                seq,
                Attached {
                    name,
                    language,
                    code_hash,
                    params_hash,
                    seed_commitment,
                },
            )),
            _ => None,
        })
        .last()
}

fn revealed_seed(slot: &str, after: i64, messages: &[Option<Message>]) -> Option<(Seq, String)> {
    notices(messages).find_map(|(seq, notice)| match notice {
        Notice::BotSeedRevealed {
            slot: revealed,
            seed,
        } if revealed.as_str() == slot && seq.0 > after => Some((seq, seed)),
        _ => None,
    })
}

/// How one bot's replay ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayEnd {
    /// Every event up to the end of the transcript (or of the bot's run) matched.
    Complete,
    /// The seed is not revealed yet: nothing can be replayed.
    SeedSecret,
    /// Attached before the channel's events were faithful to the transcript.
    BeforeFaithful,
    /// A message the viewer may not read stopped it at this seq.
    Withheld(i64),
    /// Every event matched up to the one at this seq, whose outcome the channel's close
    /// refused (it ran as the channel closed).
    ClosedDuring(i64),
    /// The verifier's own limits stopped an event the server ran: not evidence either way.
    Unfinished { seq: i64, reason: String },
}

/// One bot's replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotReplay {
    pub slot: String,
    pub name: String,
    /// Events replayed and found equal.
    pub events: usize,
    pub end: ReplayEnd,
}

/// Kinds of failure that depend on the machine, not on the code and its inputs: a replay may
/// succeed where the server failed (and the reverse is reported as unfinished). `bad_post` is
/// the channel refusing a post the runtime accepted (a recipient that is no slot).
fn depends_on_machine(kind: &str) -> bool {
    [
        "cpu_budget",
        "memory",
        "stack_overflow",
        "crashed",
        "internal",
        "bad_post",
    ]
    .contains(&kind)
}

/// Replays every bot with a revealed seed, running each event through `run` (the caller's
/// sandbox: the binary uses worker processes, since an export's code is untrusted) under
/// `limits`. Call after [`check`] has passed.
pub async fn replay<R>(
    transcript: &Transcript,
    limits: &Limits,
    mut run: R,
) -> Result<Vec<BotReplay>, Divergence>
where
    R: AsyncFnMut(Job) -> Result<bots::job::Outcome, String>,
{
    let channel = channel_of(transcript)?;
    let messages = decode_messages(transcript)?;
    let mut replays = Vec::new();
    for bot in &transcript.bots {
        let end = replay_bot(&channel, transcript, &messages, bot, limits, &mut run).await?;
        replays.push(BotReplay {
            slot: bot.slot.clone(),
            name: bot.name.clone(),
            events: end.1,
            end: end.0,
        });
    }
    Ok(replays)
}

/// What the transcript recorded of one bot's outcomes.
struct Recorded {
    /// Failed events: the event's seq → (the failure's kind, whether the bot was disabled).
    failures: HashMap<i64, (String, bool)>,
    /// Events whose reply was dropped over a cap.
    capped: Vec<i64>,
    /// The bot's own end of run: the notice's seq and reason.
    ended: Option<(i64, Option<String>)>,
    /// The close notice's seq.
    closed_at: Option<i64>,
}

impl Recorded {
    fn of(slot: &SlotLabel, attached: i64, messages: &[Option<Message>]) -> Self {
        let mut recorded = Recorded {
            failures: HashMap::new(),
            capped: Vec::new(),
            ended: None,
            closed_at: None,
        };
        let mut last_failure = None;
        for message in messages
            .iter()
            .flatten()
            .filter(|message| message.seq.0 > attached)
        {
            match message.notice().and_then(Result::ok) {
                Some(Notice::BotError {
                    slot: failed,
                    kind,
                    seq,
                    ..
                }) if &failed == slot => {
                    recorded.failures.insert(seq.0, (kind, false));
                    last_failure = Some(seq.0);
                }
                Some(Notice::BotDisabled { slot: disabled }) if &disabled == slot => {
                    if let Some(entry) =
                        last_failure.and_then(|seq| recorded.failures.get_mut(&seq))
                    {
                        entry.1 = true;
                    }
                }
                Some(Notice::BotOutputCapped {
                    slot: capped, seq, ..
                }) if &capped == slot => recorded.capped.push(seq.0),
                Some(Notice::BotRunEnded {
                    slot: ended,
                    reason,
                }) if &ended == slot && recorded.ended.is_none() => {
                    recorded.ended = Some((message.seq.0, reason));
                }
                Some(Notice::Closed { .. }) => recorded.closed_at = Some(message.seq.0),
                _ => {}
            }
        }
        recorded
    }
}

async fn replay_bot<R>(
    channel: &ChannelId,
    transcript: &Transcript,
    messages: &[Option<Message>],
    bot: &ExportedBot,
    limits: &Limits,
    run: &mut R,
) -> Result<(ReplayEnd, usize), Divergence>
where
    R: AsyncFnMut(Job) -> Result<bots::job::Outcome, String>,
{
    let Some(seed) = bot.seed.as_deref() else {
        return Ok((ReplayEnd::SeedSecret, 0));
    };
    if bot.attached_seq <= transcript.channel.faithful_from {
        return Ok((ReplayEnd::BeforeFaithful, 0));
    }
    let at = bot.attached_seq;
    let slot = SlotLabel::parse(&bot.slot)
        .map_err(|_| Divergence::at(at, "a bot's slot", "a slot label", &bot.slot))?;
    let seed = BotSeed::from_hex(seed)
        .ok_or_else(|| Divergence::at(at, "a bot's seed", "64 hex digits", seed))?;
    let language = Language::parse(&bot.language).ok_or_else(|| {
        Divergence::at(
            at,
            "a bot's language",
            "javascript or python",
            &bot.language,
        )
    })?;
    let source = BotSource::with_language(bot.name.clone(), bot.source.clone(), language).map_err(
        |error| Divergence::at(at, "a bot's source", "a source the runtimes load", error),
    )?;
    let mut roster = roster_of(transcript)?;
    let recorded = Recorded::of(&slot, at, messages);
    // The last seq that holds a post matched to a replayed event.
    let mut cursor = at;
    let mut state = None;
    let mut timers = PendingTimers::default();
    let mut fetches = PendingFetches::default();
    let mut events = 0;
    let end = 'events: {
        for (index, message) in messages.iter().enumerate() {
            let seq = i64::try_from(index).unwrap_or(i64::MAX) + 1;
            let Some(message) = message else {
                if seq >= at {
                    // Nothing after a missing input can be held to anything.
                    return Ok((ReplayEnd::Withheld(seq), events));
                }
                continue;
            };
            if let Some(Ok(notice)) = message.notice() {
                roster.apply(&notice);
            }
            if seq < at {
                continue;
            }
            let Some(event) = Event::for_bot(&slot, message) else {
                continue;
            };
            // Every post of the bot before this event belongs to an earlier one.
            unmatched_post(messages, &slot, cursor, seq)?;
            match event {
                Event::Timer { .. } => timers.fire(message)?,
                Event::Fetch(_) => fetches.answer(message)?,
                _ => {}
            }
            if let Some((notice, _)) = recorded.ended
                && notice < seq
            {
                return Err(Divergence::at(
                    notice,
                    format!("the bot in {slot} ended its run"),
                    "no end (the replay goes on)",
                    "bot_run_ended",
                ));
            }
            let context = EventContext::at(
                channel.clone(),
                slot.clone(),
                message,
                &roster,
                bot.params.clone(),
                state.clone(),
                seed.clone(),
            );
            let outcome = run(Job::event(source.clone(), context, &event, limits.clone()))
                .await
                .map_err(|error| {
                    Divergence::at(
                        seq,
                        "the verifier could not run the bot",
                        "an outcome",
                        error,
                    )
                })?;
            let refused_at_close = recorded.closed_at.is_some_and(|closed| closed > seq);
            // The server refuses a reaction that would leave too many timers or fetches pending,
            // as a failure of the event: so does the replay.
            let outcome = outcome
                .and_then(|reaction| timers.check(&reaction.timers).map(|()| reaction))
                .and_then(|reaction| fetches.check(&reaction.fetches).map(|()| reaction));
            if let Some((kind, disabled)) = recorded.failures.get(&seq) {
                match &outcome {
                    Err(error) if error.kind.as_str() == kind || depends_on_machine(kind) => {}
                    Ok(_) if depends_on_machine(kind) => {}
                    Err(error) => {
                        return Err(Divergence::at(
                            seq,
                            format!("the bot in {slot} failed differently"),
                            kind,
                            error.kind.as_str(),
                        ));
                    }
                    Ok(_) => {
                        return Err(Divergence::at(
                            seq,
                            format!("the bot in {slot}: recorded a failure, replay succeeded"),
                            format!("a failure ({kind})"),
                            "success",
                        ));
                    }
                }
                events += 1;
                if *disabled {
                    break 'events ReplayEnd::Complete;
                }
                continue;
            }
            let reaction = match outcome {
                Ok(reaction) => reaction,
                Err(error) if depends_on_machine(error.kind.as_str()) => {
                    return Ok((
                        ReplayEnd::Unfinished {
                            seq,
                            reason: error.to_string(),
                        },
                        events,
                    ));
                }
                // A failure stored after the close is refused like any outcome: no notice.
                Err(_) if refused_at_close => break 'events ReplayEnd::ClosedDuring(seq),
                Err(error) => {
                    return Err(Divergence::at(
                        seq,
                        format!("the bot in {slot}: recorded a success, replay failed"),
                        "success",
                        error,
                    ));
                }
            };
            events += 1;
            if recorded.capped.contains(&seq) {
                continue;
            }
            match place_reaction(messages, &slot, cursor.max(seq), &reaction.posts)? {
                Some(last) => cursor = last,
                None if refused_at_close => break 'events ReplayEnd::ClosedDuring(seq),
                None => {
                    return Err(Divergence::at(
                        seq,
                        format!(
                            "the posts of the bot in {slot} in reply to this event are missing"
                        ),
                        posts_text(&reaction.posts),
                        "nothing",
                    ));
                }
            }
            if reaction.state.is_some() {
                state = reaction.state;
            }
            timers.apply(&reaction.timers, seq, message.at);
            fetches.apply(&reaction.fetches, seq);
            if let Some(end) = reaction.end {
                match &recorded.ended {
                    Some((_, reason)) if *reason == end.reason => {
                        break 'events ReplayEnd::Complete;
                    }
                    Some((notice, reason)) => {
                        return Err(Divergence::at(
                            *notice,
                            format!("the end of the run of the bot in {slot}"),
                            format!("{:?}", end.reason),
                            format!("{reason:?}"),
                        ));
                    }
                    None if refused_at_close => break 'events ReplayEnd::ClosedDuring(seq),
                    None => {
                        return Err(Divergence::at(
                            seq,
                            format!("the bot in {slot} ended its run here"),
                            "a bot_run_ended notice",
                            "none",
                        ));
                    }
                }
            }
        }
        if let Some((notice, _)) = recorded.ended {
            return Err(Divergence::at(
                notice,
                format!("the bot in {slot} ended its run"),
                "no end (the replay did not end it)",
                "bot_run_ended",
            ));
        }
        ReplayEnd::Complete
    };
    // However the run ended, no post of the bot may follow what the replay matched.
    let last = i64::try_from(messages.len()).unwrap_or(i64::MAX);
    unmatched_post(messages, &slot, cursor, last)?;
    Ok((end, events))
}

/// The timers a replayed bot has pending: tag → (due, the seq of the event that set it).
#[derive(Default)]
struct PendingTimers(HashMap<String, (Timestamp, Seq)>);

impl PendingTimers {
    /// Refuses a reaction that would leave more timers pending than the server allows.
    fn check(&self, requests: &[bots::TimerRequest]) -> Result<(), bots::BotError> {
        let pending: Vec<&str> = self.0.keys().map(String::as_str).collect();
        bots::pending_timers_after(&pending, requests).map(|_| ())
    }

    /// The timers a stored reaction to the event at `seq` (time `at`) set and cancelled.
    fn apply(&mut self, requests: &[bots::TimerRequest], seq: i64, at: Timestamp) {
        for request in requests {
            match request {
                bots::TimerRequest::Set { tag, ms } => {
                    let due = at.0.saturating_add(i64::try_from(*ms).unwrap_or(i64::MAX));
                    self.0.insert(tag.clone(), (Timestamp(due), Seq(seq)));
                }
                bots::TimerRequest::Cancel { tag } => {
                    self.0.remove(tag);
                }
            }
        }
    }

    /// A `timer_fired` notice must fire a pending timer, as it was set, no earlier than due.
    fn fire(&mut self, message: &Message) -> Result<(), Divergence> {
        let seq = message.seq.0;
        let Some(Ok(Notice::TimerFired {
            tag, set_by, due, ..
        })) = message.notice()
        else {
            return Ok(());
        };
        match self.0.remove(&tag) {
            Some(pending) if pending == (due, set_by) && message.at >= due => Ok(()),
            Some((pending_due, pending_set_by)) => Err(Divergence::at(
                seq,
                format!("the timer {tag:?}"),
                format!(
                    "set at seq {} and due at {}, fired no earlier",
                    pending_set_by.0, pending_due.0
                ),
                format!(
                    "set at seq {}, due at {}, fired at {}",
                    set_by.0, due.0, message.at.0
                ),
            )),
            None => Err(Divergence::at(
                seq,
                format!("the timer {tag:?}"),
                "a timer the bot set and did not cancel",
                "no such timer pending",
            )),
        }
    }
}

/// The fetches a replayed bot asked for and the server has not answered: (asking seq, tag, url).
#[derive(Default)]
struct PendingFetches(Vec<(Seq, String, String)>);

impl PendingFetches {
    /// Refuses a reaction that would leave more fetches pending than the server allows.
    fn check(&self, requests: &[bots::FetchRequest]) -> Result<(), bots::BotError> {
        bots::pending_fetches_after(self.0.len(), requests)
    }

    /// The fetches a stored reaction to the event at `seq` asked for.
    fn apply(&mut self, requests: &[bots::FetchRequest], seq: i64) {
        self.0.extend(
            requests
                .iter()
                .map(|request| (Seq(seq), request.tag.clone(), request.url.clone())),
        );
    }

    /// A `fetch_attested` notice must answer a pending request, for the URL it asked.
    fn answer(&mut self, message: &Message) -> Result<(), Divergence> {
        let Some(Ok(Notice::FetchAttested {
            tag,
            requested_by,
            attestation,
            ..
        })) = message.notice()
        else {
            return Ok(());
        };
        let asked = self.0.iter().position(|(seq, pending_tag, url)| {
            *seq == requested_by && *pending_tag == tag && *url == attestation.url
        });
        match asked {
            Some(index) => {
                self.0.remove(index);
                Ok(())
            }
            None => Err(Divergence::at(
                message.seq.0,
                format!("the fetch {tag:?} of {}", attestation.url),
                "a fetch the bot asked for and that was not answered yet",
                format!("no such request pending from seq {}", requested_by.0),
            )),
        }
    }
}

/// Refuses a readable post of the bot with `after < seq <= upto`: one no replayed event made.
fn unmatched_post(
    messages: &[Option<Message>],
    slot: &SlotLabel,
    after: i64,
    upto: i64,
) -> Result<(), Divergence> {
    match messages
        .iter()
        .flatten()
        .find(|message| message.seq.0 > after && message.seq.0 <= upto && is_post_of(message, slot))
    {
        Some(extra) => Err(Divergence::at(
            extra.seq.0,
            format!("a post of the bot in {slot} that no replayed event made"),
            "nothing",
            post_text(extra.to.as_ref(), &extra.body),
        )),
        None => Ok(()),
    }
}

fn is_post_of(message: &Message, slot: &SlotLabel) -> bool {
    message.kind == MessageKind::Bot && message.sender.as_ref() == Some(slot)
}

/// Where one reaction's posts are in the transcript: a run of consecutive seqs after `after`
/// (a reaction is stored in one transaction, so its posts are adjacent), each the bot's post
/// and equal to the replayed one, or withheld where the replayed post is private (a viewer
/// does not see private messages to others). The bot's readable posts are never skipped.
/// Returns the run's last seq (or `after` again when every post is withheld here), or `None`
/// when the transcript ends first.
fn place_reaction(
    messages: &[Option<Message>],
    slot: &SlotLabel,
    after: i64,
    posts: &[bots::BotPost],
) -> Result<Option<i64>, Divergence> {
    let Some(count) = i64::try_from(posts.len()).ok().filter(|count| *count > 0) else {
        return Ok(Some(after));
    };
    let at = |seq: i64| {
        usize::try_from(seq - 1)
            .ok()
            .and_then(|index| messages.get(index))
    };
    let last = i64::try_from(messages.len()).unwrap_or(i64::MAX);
    let fits = |start: i64| {
        posts
            .iter()
            .zip(start..start + count)
            .all(|(post, seq)| match at(seq) {
                Some(Some(found)) => {
                    is_post_of(found, slot) && found.to == post.to && found.body == post.body
                }
                Some(None) => post.to.is_some(),
                None => false,
            })
    };
    let anchored = |start: i64| (start..start + count).any(|seq| matches!(at(seq), Some(Some(_))));
    // First where the viewer reads at least one of the posts, up to the bot's first readable
    // post that does not fit (never skipped).
    let mut blocked = None;
    for start in after + 1..=last {
        if fits(start) && anchored(start) {
            return Ok(Some(start + count - 1));
        }
        if let Some(Some(found)) = at(start)
            && is_post_of(found, slot)
        {
            blocked = Some((start, found));
            break;
        }
    }
    // Else a run of withheld entries: it anchors nothing, since other private messages could
    // stand there, so later reactions search from where this one could have started.
    if (after + 1..=last).any(|start| fits(start) && !anchored(start)) {
        return Ok(Some(after));
    }
    if let Some((start, found)) = blocked {
        return Err(Divergence::at(
            start,
            format!("the post of the bot in {slot}, against the replay"),
            posts_text(posts),
            post_text(found.to.as_ref(), &found.body),
        ));
    }
    Ok(None)
}

fn posts_text(posts: &[bots::BotPost]) -> String {
    posts
        .iter()
        .map(|post| post_text(post.to.as_ref(), &post.body))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The channel's empty roster, from the header's slots.
fn roster_of(transcript: &Transcript) -> Result<Roster, Divergence> {
    let mut slots = Vec::new();
    for raw in &transcript.channel.slots {
        let spec = domain::SlotSpec::parse(raw)
            .map_err(|_| Divergence::whole("the channel's slots", "kind:label", raw))?;
        slots.push((spec.label, spec.kind));
    }
    Ok(Roster::new(slots))
}

/// A post, shown on one line for a divergence report.
fn post_text(to: Option<&SlotLabel>, body: &domain::Body) -> String {
    let to = to.map(|slot| format!(" to {slot}")).unwrap_or_default();
    let text = body
        .text
        .as_deref()
        .map(|text| format!(" text {text:?}"))
        .unwrap_or_default();
    let data = body
        .data
        .as_ref()
        .map(|data| format!(" data {}", serde_json::Value::Object(data.clone())))
        .unwrap_or_default();
    format!("a post{to}{text}{data}")
}
