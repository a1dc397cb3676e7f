//! Where the database is and how the binary opens it: the URL from `--data-dir` or
//! `--database-url`, the SQLite file it names, the folder made for it, the URL as it may be
//! shown (password hidden), and the check that a `token` or `keys` command found an existing
//! database.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::config::DatabaseArgs;

/// The database a command works on.
#[derive(Debug, Clone)]
pub struct Database {
    url: String,
    /// The SQLite file the URL names; `None` for in-memory or non-SQLite URLs.
    file: Option<PathBuf>,
    /// Which flag chose it, to say so in errors.
    chosen_by: &'static str,
    /// `--database-connections`.
    connections: u32,
}

impl Database {
    pub fn new(args: &DatabaseArgs) -> Self {
        match &args.database_url {
            Some(url) => Self {
                file: sqlite_file(url),
                url: url.clone(),
                chosen_by: "--database-url (MCP_DATABASE_URL)",
                connections: args.database_connections,
            },
            None => {
                let file = args.data_dir.join("mcp-multiplayer.db");
                Self {
                    url: format!("sqlite://{}", file.display()),
                    file: Some(file),
                    chosen_by: "--data-dir (MCP_DATA_DIR, default ./data)",
                    connections: args.database_connections,
                }
            }
        }
    }

    #[cfg(test)]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What to call this database in logs and errors: its file, or its URL without password.
    pub fn describe(&self) -> String {
        match &self.file {
            Some(file) => absolute(file).display().to_string(),
            None => redact(&self.url),
        }
    }

    /// Creates the folder of the SQLite file, as SQLite creates only the file.
    pub fn create_folder(&self) -> anyhow::Result<()> {
        let Some(folder) = self.file.as_deref().and_then(Path::parent) else {
            return Ok(());
        };
        if folder.as_os_str().is_empty() {
            return Ok(());
        }
        std::fs::create_dir_all(folder)
            .with_context(|| format!("could not create the folder {}", folder.display()))
    }

    /// Refuses a SQLite file that does not exist yet: a `token` or `keys` command run from the
    /// wrong folder would otherwise make a new database that no server reads.
    pub fn require_existing(&self, create_hint: bool) -> anyhow::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        if file.exists() {
            return Ok(());
        }
        bail!(
            "no database at {} (chosen by {}). Point at the server's database with the same \
             --data-dir DIR or --database-url sqlite://PATH that `serve` uses{}",
            absolute(file).display(),
            self.chosen_by,
            if create_hint {
                ", or add --create-database to start a new one"
            } else {
                ""
            }
        )
    }

    pub async fn open(&self) -> anyhow::Result<store::Store> {
        self.create_folder()?;
        let settings = store::StoreSettings {
            connections: self.connections,
            ..store::StoreSettings::default()
        };
        let store = store::Store::open(&self.url, settings)
            .await
            .with_context(|| format!("could not open the database {}", self.describe()))?;
        let durability = store.durability().await?;
        tracing::info!(
            journal = %durability.journal,
            synchronous = %durability.synchronous,
            "database open"
        );
        Ok(store)
    }

    pub async fn open_for_token_admin(&self) -> anyhow::Result<store::Store> {
        self.create_folder()?;
        store::Store::open_for_token_admin(&self.url)
            .await
            .with_context(|| format!("could not open the database {}", self.describe()))
    }

    /// Opens an existing database beside a server that may be running on it, for the `keys`
    /// commands.
    pub async fn open_for_key_admin(&self) -> anyhow::Result<store::Store> {
        store::Store::open_for_key_admin(&self.url)
            .await
            .with_context(|| format!("could not open the database {}", self.describe()))
    }
}

/// The file of a `sqlite:` URL as sqlx reads it (`sqlite://path`, `sqlite:path`, an optional
/// `?query`); `None` for `:memory:` and other schemes.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Hides the user information and any `password=` parameter of a database URL.
pub fn redact(url: &str) -> String {
    let mut shown = match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://***{}", &url[..scheme_end], &url[at..])
        }
        _ => url.to_owned(),
    };
    if let Some(query_start) = shown.find('?') {
        let query = shown[query_start + 1..]
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&");
        shown.truncate(query_start + 1);
        shown.push_str(&query);
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(sqlite_file("sqlite://data/x.db"), Some("data/x.db".into()));
        assert_eq!(
            sqlite_file("sqlite:///abs/x.db?mode=rwc"),
            Some("/abs/x.db".into())
        );
        assert_eq!(sqlite_file("sqlite:x.db"), Some("x.db".into()));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://u:p@h/db"), None);
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact("postgres://user:hunter2@db.example/mcp"),
            "postgres://***@db.example/mcp"
        );
        assert_eq!(
            redact("postgres://db.example/mcp?user=u&password=hunter2&sslmode=require"),
            "postgres://db.example/mcp?user=u&password=***&sslmode=require"
        );
        assert_eq!(redact("sqlite://data/x.db"), "sqlite://data/x.db");
    }
}
