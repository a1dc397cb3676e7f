//! The binary as a new user meets it: `token` and `keys` commands and the database they write
//! (a key rotated beside a running server, the published key list), `serve`'s
//! flags (`--listen` with a host name, `--database-url`), what it logs when stderr is not a
//! terminal, errors that must not show a password, and the `/` page.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::{Server, serve_command};

const BINARY: &str = env!("CARGO_BIN_EXE_mcp-multiplayer");

fn run(args: &[&str], cwd: &Path) -> Output {
    Command::new(BINARY)
        .args(args)
        .current_dir(cwd)
        .env_remove("MCP_DATA_DIR")
        .env_remove("MCP_DATABASE_URL")
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `serve` with `args` in `cwd`, logging at info without colour settings from the caller, its
/// stderr kept for [`Server::stop_and_read_log`].
fn serve(args: &[&str], cwd: &Path) -> Server {
    let mut command = serve_command();
    command
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stderr(Stdio::piped());
    Server::launch(command)
}

fn get(url: &str, accept: &str) -> (u16, String, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent.get(url).header("Accept", accept).call().expect("GET");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.body_mut().read_to_string().expect("a body");
    (response.status().as_u16(), content_type, body)
}

#[test]
fn token_create_refuses_to_start_a_database_nobody_serves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let refused = run(&["token", "create", "--name", "ci"], dir.path());
    assert!(!refused.status.success());
    let error = text(&refused.stderr);
    let expected = dir.path().join("data").join("mcp-multiplayer.db");
    assert!(
        error.contains(&expected.display().to_string()),
        "the error says where it looked: {error}"
    );
    assert!(error.contains("--data-dir"), "{error}");
    assert!(error.contains("--create-database"), "{error}");
    assert!(
        !dir.path().join("data").exists(),
        "a database was made anyway"
    );

    let created = run(
        &["token", "create", "--name", "ci", "--create-database"],
        dir.path(),
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    assert!(text(&created.stdout).starts_with("mcp_pat_"));
    assert!(
        text(&created.stderr).contains(&expected.display().to_string()),
        "the database written is named: {}",
        text(&created.stderr)
    );

    // Now that it exists, no flag is needed; `list` has a header row.
    let again = run(&["token", "create", "--name", "ci2"], dir.path());
    assert!(again.status.success(), "{}", text(&again.stderr));
    let listed = run(&["token", "list"], dir.path());
    let listed = text(&listed.stdout);
    let mut lines = listed.lines();
    let header = lines.next().expect("a header");
    for column in ["NAME", "DISPLAY NAME", "PERSON", "SCOPES", "STATE"] {
        assert!(header.contains(column), "{header}");
    }
    assert_eq!(lines.count(), 2, "{listed}");

    let elsewhere = tempfile::tempdir().expect("tempdir");
    let listed = run(&["token", "list"], elsewhere.path());
    assert!(
        !listed.status.success(),
        "list made or read a database that does not exist"
    );
}

#[test]
fn no_error_shows_a_database_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    for url in [
        "postgres://mcp:hunter2@127.0.0.1:1/mcp",
        "postgres://127.0.0.1:1/mcp?user=mcp&password=hunter2",
    ] {
        let output = run(
            &[
                "serve",
                "--auth",
                "dev",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                url,
            ],
            dir.path(),
        );
        assert!(!output.status.success(), "{url} opened");
        let shown = format!("{}{}", text(&output.stdout), text(&output.stderr));
        assert!(shown.contains("could not"), "{shown}");
        assert!(!shown.contains("hunter2"), "the password is shown: {shown}");
    }
    let output = run(
        &[
            "token",
            "list",
            "--database-url",
            "postgres://mcp:hunter2@127.0.0.1:1/mcp",
        ],
        dir.path(),
    );
    assert!(!output.status.success());
    assert!(
        !text(&output.stderr).contains("hunter2"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn serve_resolves_a_listen_name_and_makes_the_database_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("nested").join("deeper").join("x.db");
    let url = format!("sqlite://{}", file.display());
    let served = serve(
        &[
            "--auth",
            "dev",
            "--listen",
            "localhost:0",
            "--database-url",
            &url,
        ],
        dir.path(),
    );
    let (status, _, body) = get(&format!("{}/healthz", served.base), "*/*");
    assert_eq!(status, 200, "{body}");
    assert!(file.exists(), "the database's folder was not made");

    // `/`: what this is, its MCP URL and where the docs are; no token needed.
    let (status, content_type, page) = get(&format!("{}/", served.base), "text/html");
    assert_eq!(status, 200, "{page}");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let port = served.base.rsplit(':').next().expect("a port");
    assert!(
        page.contains(&format!("http://localhost:{port}/mcp")),
        "{page}"
    );
    assert!(page.contains("README"), "{page}");
    assert!(page.contains("Bearer"), "{page}");
    let (status, content_type, json) = get(&format!("{}/", served.base), "application/json");
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let json: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(json["mcp_url"], format!("http://localhost:{port}/mcp"));

    // Not a terminal: no colour codes; and the log (written before the address line on
    // stdout) says how to connect.
    let port = port.to_owned();
    let logged = served.stop_and_read_log();
    assert!(
        !logged.contains('\u{1b}'),
        "ANSI escapes in a piped log: {logged:?}"
    );
    assert!(
        logged.contains("Authorization: Bearer <any name>"),
        "{logged}"
    );
    assert!(
        logged.contains(&format!("http://localhost:{port}/mcp")),
        "{logged}"
    );
}

#[test]
fn the_oauth_startup_log_says_how_to_connect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let served = serve(
        &["--listen", "127.0.0.1:0", "--data-dir", "data"],
        dir.path(),
    );
    let base = served.base.clone();
    let logged = served.stop_and_read_log();
    assert!(
        logged.contains(&format!("add {base}/mcp as a custom connector")),
        "{logged}"
    );
    assert!(logged.contains("mcp-multiplayer token create"), "{logged}");
}

#[test]
fn keys_rotate_beside_a_running_server_and_every_key_stays_published() {
    let dir = tempfile::tempdir().expect("tempdir");
    let refused = run(&["keys", "rotate"], dir.path());
    assert!(
        !refused.status.success(),
        "rotated keys in a database nobody serves"
    );
    assert!(text(&refused.stderr).contains("--data-dir"));

    let args = [
        "--auth",
        "dev",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        "data",
    ];
    let served = serve(&args, dir.path());
    let published = |base: &str| {
        let (status, content_type, body) =
            get(&format!("{base}/.well-known/mcp-multiplayer-keys"), "*/*");
        assert_eq!(status, 200, "{body}");
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        serde_json::from_str::<serde_json::Value>(&body).expect("JSON")
    };
    // The server made its first key at start, and publishes it without a token.
    let first = published(&served.base);
    let keys = first["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1, "{first}");
    let first_id = keys[0]["id"].as_str().expect("an id").to_owned();
    assert!(first_id.starts_with("ed25519:"), "{first}");
    assert_eq!(first["active"], first_id.as_str());
    assert_eq!(keys[0]["algorithm"], "Ed25519");
    assert_eq!(
        keys[0]["public"].as_str().map(str::len),
        Some(43),
        "{first}"
    );
    assert!(keys[0]["retired_at"].is_null(), "{first}");

    // Beside the running server.
    let rotated = run(&["keys", "rotate"], dir.path());
    assert!(rotated.status.success(), "{}", text(&rotated.stderr));
    assert!(
        text(&rotated.stdout).contains(&first_id),
        "{}",
        text(&rotated.stdout)
    );
    assert!(
        text(&rotated.stderr).contains("within 60 seconds"),
        "{}",
        text(&rotated.stderr)
    );
    let listed = run(&["keys", "list"], dir.path());
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let listed = text(&listed.stdout);
    let mut lines = listed.lines();
    let header = lines.next().expect("a header");
    for column in ["ID", "CREATED", "RETIRED", "STATE"] {
        assert!(header.contains(column), "{header}");
    }
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{listed}");
    assert!(
        rows[0].starts_with(&first_id) && rows[0].ends_with("retired"),
        "{listed}"
    );
    assert!(rows[1].ends_with("active"), "{listed}");
    let second_id = rows[1].split_whitespace().next().expect("an id").to_owned();
    assert_ne!(second_id, first_id);
    let logged = served.stop_and_read_log();
    assert!(
        logged.contains(&first_id),
        "the start names its key: {logged}"
    );

    // At its next start the server signs with the new key, and still publishes the old one.
    let served = serve(&args, dir.path());
    let after = published(&served.base);
    assert_eq!(after["active"], second_id.as_str(), "{after}");
    let keys = after["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2, "{after}");
    assert_eq!(keys[0]["id"], first_id.as_str());
    assert!(keys[0]["retired_at"].is_string(), "{after}");
    assert!(keys[1]["retired_at"].is_null(), "{after}");
}
