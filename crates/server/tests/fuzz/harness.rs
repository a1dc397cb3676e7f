//! The application under fuzzing: the whole router over a service on a fresh SQLite file, the
//! development authenticator (each token its own principal) and a Host/Origin allow-list, built
//! once per test binary; and how a case's request is sent and its answer judged.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use auth::Authenticator;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use service::{Service, ServiceSettings, SystemClock};
use store::{Store, StoreSettings};
use tokio_util::sync::CancellationToken;
use tower::Service as _;

/// Host names the application answers to.
pub const ALLOWED_HOSTS: &[&str] = &["localhost", "127.0.0.1", "::1", "mcp.example.com"];
/// Origins the application accepts: any port of localhost, one exact HTTPS origin.
pub const ALLOWED_ORIGINS: &[&str] = &["http://localhost:*", "https://mcp.example.com"];

/// Codes a refusal may carry: the domain's stable list and the two the Host/Origin guard owns.
pub fn is_stable_code(code: &str) -> bool {
    domain::ErrorCode::ALL
        .iter()
        .any(|known| known.as_str() == code)
        || ["FORBIDDEN_HOST", "FORBIDDEN_ORIGIN"].contains(&code)
}

pub struct Harness {
    runtime: tokio::runtime::Runtime,
    app: Router,
    /// A channel `alice` owns and sits in, with `bob` seated too and a bot slot.
    pub channel_id: String,
    _database: tempfile::TempDir,
}

/// The one application of this binary, made on first use.
pub fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(Harness::start)
}

/// An answer: its status and its body read as JSON (`Null` when it is not JSON).
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Harness {
    fn start() -> Harness {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let database = tempfile::tempdir().expect("tempdir");
        let app = runtime.block_on(async {
            let url = format!("sqlite://{}", database.path().join("fuzz.db").display());
            let store = Store::open(&url, StoreSettings::default())
                .await
                .expect("store");
            let workers = workers::Pool::start(workers::PoolConfig {
                size: 1,
                command: workers::testing::worker_command("bot_worker"),
                watchdog: workers::Watchdog::default(),
            })
            .await
            .expect("bot workers start");
            let settings = ServiceSettings {
                // The fuzzer is one client sending as fast as it can.
                rate_limit_per_second: 0,
                ..ServiceSettings::default()
            };
            let shutdown = CancellationToken::new();
            let service = Service::new(store, settings, Arc::new(SystemClock), shutdown, workers);
            server::app(server::AppParts {
                service,
                authenticator: Authenticator::Dev,
                host_policy: server::HostPolicy {
                    hosts: ALLOWED_HOSTS.iter().map(|h| h.to_string()).collect(),
                    origins: ALLOWED_ORIGINS.iter().map(|o| o.to_string()).collect(),
                },
                trusted_proxies: server::TrustedProxies::default(),
                request_read_timeout: Duration::from_secs(5),
                transport_shutdown: CancellationToken::new(),
                public_url: "http://localhost:8100".into(),
                metrics_token: None,
            })
        });
        let mut harness = Harness {
            runtime,
            app,
            channel_id: String::new(),
            _database: database,
        };
        harness.channel_id = harness.seat_alice_and_bob();
        harness
    }

    fn seat_alice_and_bob(&self) -> String {
        let created = self.send(request(
            "POST",
            "/api/channels",
            "alice",
            r#"{"name": "fuzz", "slots": ["invite:alice", "invite:bob", "spectator:eve", "bot:ref"]}"#,
        ));
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let invites = created.body["invites"].as_array().expect("invites");
        let code = invites
            .iter()
            .find(|invite| invite["slot"] == "bob")
            .and_then(|invite| invite["code"].as_str())
            .expect("bob's invite");
        let joined = self.send(request(
            "POST",
            "/api/join",
            "bob",
            &serde_json::json!({ "code": code }).to_string(),
        ));
        assert_eq!(joined.status, StatusCode::OK, "{}", joined.body);
        created.body["channel"]["channel_id"]
            .as_str()
            .expect("channel id")
            .to_owned()
    }

    /// Sends `request` through the whole application.
    pub fn send(&self, request: Request<Body>) -> Answer {
        self.runtime.block_on(async {
            let response = self
                .app
                .clone()
                .call(request)
                .await
                .expect("the router is infallible");
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("a response body");
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            Answer { status, body }
        })
    }
}

/// A request to `path` from `token`'s principal, with an allowed Host.
pub fn request(method: &str, path: &str, token: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost:8100")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .expect("a request")
}

impl Answer {
    /// The contract of every answer: never a 5xx, and a refusal names a stable code in the
    /// shape of its surface (REST `error.code`, or an `/mcp` JSON-RPC error's `data.code`).
    pub fn check_contract(&self) -> Result<(), String> {
        if self.status.is_server_error() {
            return Err(format!("answered {}: {}", self.status, self.body));
        }
        if self.status.is_success() {
            return Ok(());
        }
        let code = self.body["error"]["code"]
            .as_str()
            .or_else(|| self.body["error"]["data"]["code"].as_str());
        match code {
            Some(code) if is_stable_code(code) => Ok(()),
            _ => Err(format!(
                "a {} without a stable code: {}",
                self.status, self.body
            )),
        }
    }
}
