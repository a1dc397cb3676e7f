//! `mcp-multiplayer export` and `mcp-multiplayer verify`: a channel's transcript out of the
//! database, and an exported transcript checked offline, its bots replayed in worker processes
//! (an export's code is untrusted, so it runs confined like any bot's).

use std::process::ExitCode;

use anyhow::Context;
use serde::Deserialize;
use service::Clock;
use transcript::export::Transcript;
use transcript::{PublicKeyInfo, ReplayEnd, SignedHead};

use crate::config::{self, ExportArgs, VerifyArgs};
use crate::database::Database;

pub async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let database = Database::new(&args.database);
    database.require_existing(false)?;
    let store = database.open_for_key_admin().await?;
    let transcript =
        service::export_everything(&store, &args.channel_id, service::SystemClock.now()).await?;
    let json = serde_json::to_string_pretty(&transcript)?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, json + "\n")
                .with_context(|| format!("could not write {}", path.display()))?;
            eprintln!(
                "Wrote the transcript of {} ({} messages, head seq {}) to {}.",
                args.channel_id,
                transcript.messages.len(),
                transcript.head.seq.0,
                path.display()
            );
        }
        None => println!("{json}"),
    }
    Ok(())
}

/// The published key list, as `/.well-known/mcp-multiplayer-keys` serves it: only what a
/// verifier needs is read.
#[derive(Deserialize)]
struct PublishedKeys {
    keys: Vec<PublishedKey>,
}

#[derive(Deserialize)]
struct PublishedKey {
    id: transcript::KeyId,
    public: String,
}

/// Exit 0 verified, 1 a divergence, 2 input that cannot be read.
pub fn verify(args: VerifyArgs) -> ExitCode {
    let inputs = match read_inputs(&args) {
        Ok(inputs) => inputs,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")
        .and_then(|runtime| runtime.block_on(check_and_replay(&args, inputs)));
    match outcome {
        Ok(Ok(report)) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Ok(Err(divergence)) => {
            println!("{divergence}");
            ExitCode::from(1)
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

struct Inputs {
    transcript: Transcript,
    heads: Vec<SignedHead>,
    trusted: Option<Vec<PublicKeyInfo>>,
}

fn read_inputs(args: &VerifyArgs) -> anyhow::Result<Inputs> {
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).with_context(|| format!("could not read {}", path.display()))
    };
    let transcript: Transcript = serde_json::from_str(&read(&args.file)?).with_context(|| {
        format!(
            "{} is not a transcript export (docs/transcript.md)",
            args.file.display()
        )
    })?;
    let mut heads = Vec::new();
    for path in &args.heads {
        heads.push(
            serde_json::from_str(&read(path)?)
                .with_context(|| format!("{} is not a signed head", path.display()))?,
        );
    }
    let trusted = match &args.keys {
        None => None,
        Some(path) => {
            let published: PublishedKeys = serde_json::from_str(&read(path)?)
                .with_context(|| format!("{} is not a published key list", path.display()))?;
            Some(
                published
                    .keys
                    .into_iter()
                    .map(|key| PublicKeyInfo {
                        id: key.id,
                        public: key.public,
                        created_at: domain::Timestamp(0),
                        retired_at: None,
                    })
                    .collect(),
            )
        }
    };
    Ok(Inputs {
        transcript,
        heads,
        trusted,
    })
}

async fn check_and_replay(
    args: &VerifyArgs,
    inputs: Inputs,
) -> anyhow::Result<Result<String, transcript::Divergence>> {
    let Inputs {
        mut transcript,
        heads,
        trusted,
    } = inputs;
    let keys_note = match &trusted {
        Some(trusted) => {
            // The export's own key list proves nothing: check against the keys given.
            transcript.keys = trusted
                .iter()
                .map(transcript::export::ExportedKey::from)
                .collect();
            "checked against the keys given with --keys"
        }
        None => "",
    };
    let checked = match transcript::check(&transcript, &heads) {
        Ok(checked) => checked,
        Err(divergence) => return Ok(Err(divergence)),
    };
    let mut lines = vec![format!(
        "verified: {} ({}), {} messages ({} withheld), head seq {} {}",
        checked.channel,
        transcript.channel.name,
        checked.messages,
        checked.withheld,
        checked.head.seq.0,
        checked.head.head,
    )];
    let signer = transcript
        .keys
        .iter()
        .find(|key| key.id == checked.head.key_id)
        .map_or_else(String::new, |key| key.public.clone());
    if trusted.is_some() {
        lines.push(format!(
            "  signed by {} at {} ms; {keys_note}",
            checked.head.key_id, checked.head.at.0
        ));
    } else {
        // Anyone can sign a chain of their own: without the server's published keys, this
        // proves only that the file is consistent.
        lines.push(format!(
            "  UNAUTHENTICATED SIGNER: signed at {} ms by the key this file names, Ed25519 public key {signer}; \
             only the server's published keys (--keys, from /.well-known/mcp-multiplayer-keys) show it is the server's",
            checked.head.at.0
        ));
    }
    if checked.saved_heads > 0 {
        lines.push(format!(
            "  {} saved head(s) lie on the chain",
            checked.saved_heads
        ));
    }
    if args.no_replay {
        lines.push("  bot replay skipped (--no-replay)".into());
    } else {
        let pool = workers::Pool::start(config::worker_pool(config::DEFAULT_WORKER_MEMORY_MIB, 0))
            .await
            .context("could not start the bot workers that replay bot events")?;
        let limits = replay_limits();
        let replayed = transcript::replay(&transcript, &limits, async |job| {
            let account = workers::Account {
                principal: "verify".into(),
                channel: "verify".into(),
            };
            pool.run(account, job)
                .await
                .map_err(|error| error.to_string())
        })
        .await;
        pool.shutdown();
        match replayed {
            Ok(bots) => lines.extend(bots.iter().map(|bot| {
                let how = match &bot.end {
                    ReplayEnd::Complete => "every event replayed identically".to_owned(),
                    ReplayEnd::SeedSecret => "not replayed: its seed is still secret".to_owned(),
                    ReplayEnd::BeforeFaithful => {
                        "not replayed: attached before this channel's transcript was faithful"
                            .to_owned()
                    }
                    ReplayEnd::Withheld(seq) => {
                        format!("replayed up to seq {seq}, a message withheld from this export")
                    }
                    ReplayEnd::Unfinished { seq, reason } => {
                        format!("replay stopped at seq {seq} by this machine's limits: {reason}")
                    }
                    ReplayEnd::ClosedDuring(seq) => format!(
                        "every event replayed identically up to seq {seq}, whose outcome the channel's close refused"
                    ),
                };
                format!(
                    "  bot {} in {}: {} events, {how}",
                    bot.name, bot.slot, bot.events
                )
            })),
            Err(divergence) => return Ok(Err(divergence)),
        }
    }
    Ok(Ok(lines.join("\n")))
}

/// Replay runs with room to spare: a verifier's machine may be slower than the server's, and
/// a replay cut short proves nothing. Memory and output caps stay the server's, since they
/// change what a bot can do.
fn replay_limits() -> bots::Limits {
    let server = bots::Limits::default();
    bots::Limits {
        cpu: server.cpu * 20,
        ..server
    }
}
