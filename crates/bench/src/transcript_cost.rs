//! What the transcript costs: the hash chain on the post path, against the server's own CPU
//! per durable `post_message` measured in the same run (target: hashing within 10% of a post),
//! and the signature on a head, which reads (`get_channel`, sync) pay at most once a second per
//! channel.

use std::hint::black_box;
use std::time::{Duration, Instant};

use domain::{Body, ChainHash, ChannelId, Message, MessageKind, Seq, SlotLabel, Timestamp};
use transcript::{HeadStatement, Keyring, ServerKey};

use crate::report::Row;
use crate::throughput;
use crate::{BenchError, Context};

const LINKS: u32 = 200_000;
const SIGNATURES: u32 = 5_000;

pub async fn transcript_cost(context: &Context) -> Result<Vec<Row>, BenchError> {
    println!();
    println!("== transcript: the chain on the post path, signed heads ==");
    let (link, sign) = tokio::task::spawn_blocking(|| (link_cost(), sign_cost()))
        .await
        .map_err(|error| BenchError::Setup(format!("transcript bench: {error}")))?;
    println!(
        "  link one post (canonical JSON, digest, link): {:.2} µs",
        micros(link)
    );
    println!("  sign one head (Ed25519): {:.2} µs", micros(sign));

    let channels = throughput::prepare_channels(context).await?;
    let posts = throughput::tool_load(context, &channels, "post_message").await?;
    let per_post = posts.cpu.server.map(|percent| {
        let cpu_seconds = percent / 100.0 * posts.elapsed.as_secs_f64();
        Duration::from_secs_f64(cpu_seconds / posts.ok.max(1) as f64)
    });
    let share = per_post.map(|per_post| link.as_secs_f64() / per_post.as_secs_f64() * 100.0);
    match (per_post, share) {
        (Some(per_post), Some(share)) => println!(
            "  post_message: {:.0} req/s, server CPU {:.1} µs per post; the link is {share:.1}% of it (target ≤ 10%)",
            posts.rate(),
            micros(per_post)
        ),
        _ => println!(
            "  post_message: {:.0} req/s (server CPU unknown: pass --server-pid with --url)",
            posts.rate()
        ),
    }
    let note = share.map_or_else(
        || "link share unknown without the server's CPU".to_owned(),
        |share| {
            format!(
                "chain link {:.2} µs = {share:.1}% of server CPU per post (target ≤ 10%); head signature {:.1} µs, reused ≤ 1 s per channel",
                micros(link),
                micros(sign)
            )
        },
    );
    Ok(vec![Row {
        scenario: "post_message with the hash chain".into(),
        rate: Some(posts.rate()),
        latencies: posts.latencies,
        errors: posts.errors,
        note,
    }])
}

/// A post as the bench sends them: a short text from a seat, public.
fn typical_post() -> Message {
    Message {
        seq: Seq(1234),
        kind: MessageKind::User,
        sender: SlotLabel::parse("p1").ok(),
        sender_name: "bench-client-7".into(),
        body: Body {
            text: Some("bench message 12345: a sentence of ordinary length".into()),
            data: None,
        },
        to: None,
        nonce: None,
        at: Timestamp(1_765_000_000_000),
        hash: ChainHash::genesis(),
    }
}

/// The mean time to link one post into its channel's chain.
fn link_cost() -> Duration {
    let channel = ChannelId::from_random([7; 12]);
    let message = typical_post();
    let mut head = ChainHash::genesis();
    let started = Instant::now();
    for _ in 0..LINKS {
        head = black_box(head.link(&channel, black_box(&message)));
    }
    started.elapsed() / LINKS
}

/// The mean time to sign one head.
fn sign_cost() -> Duration {
    let key = ServerKey::from_secret([9; 32], Timestamp(0));
    let info = key.info();
    let Ok(keyring) = Keyring::new(key, vec![info]) else {
        return Duration::ZERO;
    };
    let statement = HeadStatement {
        channel: ChannelId::from_random([7; 12]),
        seq: Seq(1234),
        head: ChainHash::genesis().as_str().to_owned(),
        at: Timestamp(1_765_000_000_000),
    };
    let started = Instant::now();
    for _ in 0..SIGNATURES {
        black_box(keyring.sign(black_box(statement.clone())));
    }
    started.elapsed() / SIGNATURES
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}
