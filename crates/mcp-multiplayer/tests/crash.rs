//! Durability: kill the server with SIGKILL while clients post, restart it on the same data
//! directory, and check that every acknowledged message is there, in order, with no gaps and
//! no duplicates.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Server, agent, call, create_channel};

#[test]
fn acknowledged_posts_survive_a_kill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let http = agent();
    let (_, channel) = create_channel(
        &server,
        "alice",
        json!({"name": "Crash test", "slots": ["invite:alice", "invite:bob"]}),
    );

    // Writers post until the server dies; each remembers what was acknowledged.
    let acknowledged: Arc<Mutex<Vec<(i64, String)>>> = Arc::default();
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let (url, acknowledged) = (
                format!("{}/api/channels/{channel}/messages", server.base),
                acknowledged.clone(),
            );
            std::thread::spawn(move || {
                let http = agent();
                for n in 0.. {
                    let text = format!("writer {writer} message {n}");
                    match call(&http, "POST", &url, "alice", Some(json!({ "text": text }))) {
                        Ok(posted) => {
                            let seq = posted["message"]["seq"].as_i64().expect("seq");
                            acknowledged.lock().expect("lock").push((seq, text));
                        }
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    while acknowledged.lock().expect("lock").len() < 200
        && started.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    server.kill();
    for writer in writers {
        writer.join().expect("writer thread");
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(
        acknowledged.len() >= 200,
        "the writers got going before the kill"
    );

    let server = Server::start(dir.path(), &[]);
    let mut stored = Vec::new();
    let mut cursor = 0;
    loop {
        let page = call(
            &http,
            "GET",
            &format!(
                "{}/api/channels/{channel}/messages?cursor={cursor}&wait_ms=0&limit=200",
                server.base
            ),
            "alice",
            None,
        )
        .expect("sync after restart");
        for message in page["messages"].as_array().expect("messages") {
            stored.push((
                message["seq"].as_i64().expect("seq"),
                message["text"].as_str().unwrap_or_default().to_owned(),
            ));
        }
        cursor = page["next_cursor"].as_i64().expect("cursor");
        if !page["has_more"].as_bool().expect("has_more") {
            break;
        }
    }
    let seqs: Vec<i64> = stored.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "no gaps, no duplicates"
    );
    for (seq, text) in &acknowledged {
        let found = stored.iter().find(|(stored_seq, _)| stored_seq == seq);
        assert_eq!(
            found.map(|(_, t)| t),
            Some(text),
            "acknowledged seq {seq} survived intact"
        );
    }
    // The conversation goes on after the restart.
    call(
        &http,
        "POST",
        &format!("{}/api/channels/{channel}/messages", server.base),
        "alice",
        Some(json!({"text": "after the crash"})),
    )
    .expect("post after restart");
}
