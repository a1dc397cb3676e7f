//! Databases for tests, on either backend: the workspace's suites run against SQLite always,
//! and against PostgreSQL where `MCP_TEST_POSTGRES_URL` names one.
//!
//! Each PostgreSQL test database is a fresh schema of that database, so tests run in parallel
//! and leave each other alone. Without the variable the PostgreSQL tests skip and say so; in CI
//! (`CI` set) they fail instead, so a misconfigured CI cannot pass by skipping them.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::{Store, StoreSettings};

/// The environment variable that names the PostgreSQL server tests use, as a URL such as
/// `postgres://postgres@127.0.0.1:5432/test`.
pub const POSTGRES_URL_VARIABLE: &str = "MCP_TEST_POSTGRES_URL";

/// The environment variable that moves whole suites onto PostgreSQL ([`TestDatabase::for_suite`]).
pub const BACKEND_VARIABLE: &str = "MCP_TEST_BACKEND";

/// A database a test owns: a SQLite file in a temporary directory that goes with it, or a
/// PostgreSQL schema, which a later test drops once it is an hour old.
pub enum TestDatabase {
    Sqlite(tempfile::TempDir),
    Postgres { url: String },
}

impl TestDatabase {
    pub fn sqlite() -> Self {
        TestDatabase::Sqlite(tempfile::tempdir().expect("a temporary directory"))
    }

    /// A fresh schema on the PostgreSQL server that [`POSTGRES_URL_VARIABLE`] names, or `None`
    /// (after saying so on stderr) when it names none.
    pub async fn postgres(test: &str) -> Option<Self> {
        let server = postgres_server(test)?;
        let url = fresh_schema(&server)
            .await
            .unwrap_or_else(|error| panic!("a test schema on {POSTGRES_URL_VARIABLE}: {error}"));
        Some(TestDatabase::Postgres { url })
    }

    /// The database of a suite that runs whole on either backend: PostgreSQL when
    /// [`BACKEND_VARIABLE`] is `postgres` (CI runs such suites a second time so), SQLite
    /// otherwise.
    pub async fn for_suite() -> Self {
        match std::env::var(BACKEND_VARIABLE).as_deref() {
            Ok("postgres") => Self::postgres(BACKEND_VARIABLE).await.unwrap_or_else(|| {
                panic!("{BACKEND_VARIABLE}=postgres needs {POSTGRES_URL_VARIABLE}")
            }),
            Ok("sqlite") | Err(_) => Self::sqlite(),
            Ok(other) => panic!("{BACKEND_VARIABLE}={other:?}: use sqlite or postgres"),
        }
    }

    /// The URL the server (or [`Store::open`]) takes.
    pub fn url(&self) -> String {
        match self {
            TestDatabase::Sqlite(dir) => {
                format!("sqlite://{}", dir.path().join("test.db").display())
            }
            TestDatabase::Postgres { url } => url.clone(),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, TestDatabase::Postgres { .. })
    }

    /// Opens the database, with a small pool: many tests run at once on one server.
    pub async fn open(&self) -> Store {
        let settings = StoreSettings {
            connections: 4,
            ..StoreSettings::default()
        };
        Store::open(&self.url(), settings)
            .await
            .unwrap_or_else(|error| panic!("the test database opens: {error}"))
    }
}

/// The PostgreSQL server tests use, if any. A skip is said out loud; in CI it is a failure.
pub fn postgres_server(test: &str) -> Option<String> {
    match std::env::var(POSTGRES_URL_VARIABLE) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!(
            "{test}: CI runs every test on PostgreSQL too; set {POSTGRES_URL_VARIABLE} \
             (for example postgres://postgres@127.0.0.1:5432/test)"
        ),
        _ => {
            eprintln!(
                "SKIPPED {test} on PostgreSQL: set {POSTGRES_URL_VARIABLE} (for example \
                 postgres://postgres@127.0.0.1:5432/test) to run it"
            );
            None
        }
    }
}

/// Makes a fresh schema on the PostgreSQL server at `server` (a URL) and answers the URL that
/// puts it first on the search path, so that a store opened there migrates into it. Test
/// schemas made more than an hour before are dropped on the way.
pub async fn fresh_schema(server: &str) -> Result<String, sqlx::Error> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let schema = format!("test_{now}_{}", hex_suffix());
    let mut conn = PgConnection::connect(server).await?;
    drop_old_schemas(&mut conn, now).await;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await?;
    let separator = if server.contains('?') { '&' } else { '?' };
    Ok(format!("{server}{separator}options[search_path]={schema}"))
}

/// Drops the test schemas made more than an hour ago, by earlier runs.
async fn drop_old_schemas(conn: &mut PgConnection, now: u64) {
    let names: Vec<(String,)> =
        sqlx::query_as("SELECT nspname::TEXT FROM pg_namespace WHERE nspname LIKE 'test\\_%'")
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_default();
    for (name,) in names {
        let made = name
            .split('_')
            .nth(1)
            .and_then(|secs| secs.parse::<u64>().ok());
        if made.is_some_and(|made| made + 3600 < now) {
            // Another test may be dropping it at the same moment; either way it goes.
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .execute(&mut *conn)
                .await;
        }
    }
}

fn hex_suffix() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Runs each named test, an `async fn(TestDatabase)` in scope, once on SQLite and once on
/// PostgreSQL, as two `#[tokio::test]`s in modules `sqlite` and `postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::testing::TestDatabase::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    if let Some(database) =
                        $crate::testing::TestDatabase::postgres(stringify!($test)).await
                    {
                        super::$test(database).await;
                    }
                }
            )*
        }
    };
}
