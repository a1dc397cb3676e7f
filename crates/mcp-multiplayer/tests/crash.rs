//! Durability: kill the server with SIGKILL while clients post, restart it on the same data
//! directory, and check that every acknowledged message is there, in order, with no gaps and
//! no duplicates.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(data_dir: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-multiplayer"))
            .args([
                "serve",
                "--auth",
                "dev",
                "--listen",
                "127.0.0.1:0",
                "--rate-limit",
                "0",
                "--data-dir",
            ])
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the server starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the server prints its address");
        let address = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .expect("a listening line")
            .to_owned();
        Server {
            child,
            base: address,
        }
    }

    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into()
}

fn call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let auth = format!("Bearer {token}");
    let response = match body {
        Some(body) => agent
            .post(url)
            .header("Authorization", &auth)
            .send_json(body),
        None if method == "GET" => agent.get(url).header("Authorization", &auth).call(),
        None => agent.post(url).header("Authorization", &auth).send_empty(),
    };
    let mut response = response.map_err(|error| error.to_string())?;
    let status = response.status();
    let value: Value = response
        .body_mut()
        .read_json()
        .map_err(|error| error.to_string())?;
    if status.is_success() {
        Ok(value)
    } else {
        Err(format!("{status}: {value}"))
    }
}

#[test]
fn acknowledged_posts_survive_a_kill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let http = agent();
    let created = call(
        &http,
        "POST",
        &format!("{}/api/channels", server.base),
        "alice",
        Some(json!({"name": "Crash test", "slots": ["invite:alice", "invite:bob"]})),
    )
    .expect("create");
    let channel = created["channel"]["channel_id"]
        .as_str()
        .expect("id")
        .to_owned();

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

    let server = Server::start(dir.path());
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
