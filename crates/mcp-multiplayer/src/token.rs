//! `mcp-multiplayer token …`: personal tokens, administered straight in the database, so the
//! commands work whether or not a server is running on it. They refuse a database that does
//! not exist yet (unless `token create --create-database`) and say which one they used: a
//! token written to the wrong file is one no server accepts.

use std::time::Duration;

use crate::config::TokenCommand;
use crate::database::Database;

pub async fn run(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create(args) => {
            let database = Database::new(&args.database);
            if !args.create_database {
                database.require_existing(true)?;
            }
            let store = database.open_for_token_admin().await?;
            let issued = auth::personal::create(
                &store,
                auth::personal::PersonalTokenRequest {
                    name: args.name.clone(),
                    person: args.person.map(domain::PrincipalId::new),
                    display_name: args.display_name,
                    scopes: if args.read_only {
                        auth::Scopes::parse_request(Some("mcp:read")).map_err(anyhow::Error::msg)?
                    } else {
                        auth::Scopes::all()
                    },
                    expires_in: args
                        .expires_in_days
                        .map(|days| Duration::from_secs(u64::from(days) * 24 * 3600)),
                },
            )
            .await
            .map_err(anyhow::Error::msg)?;
            eprintln!(
                "Created token {:?} in the database {}, acting as {} ({}){}. \
                 A server accepts it only if it serves that database. It is shown only once:",
                args.name,
                database.describe(),
                issued.display_name,
                issued.person,
                match issued.expires_at {
                    Some(at) => format!(", expiring {}", format_time(at)),
                    None => ", never expiring".to_owned(),
                }
            );
            println!("{}", issued.token);
            eprintln!("Use it as: curl -H \"Authorization: Bearer <token>\" …/api/channels");
        }
        TokenCommand::List(database) => {
            let database = Database::new(&database);
            database.require_existing(false)?;
            let store = database.open_for_token_admin().await?;
            let tokens = auth::personal::list(&store)
                .await
                .map_err(anyhow::Error::msg)?;
            if tokens.is_empty() {
                println!(
                    "No personal tokens in {}. Create one with: mcp-multiplayer token create --name NAME",
                    database.describe()
                );
                return Ok(());
            }
            // On stderr, so stdout stays a table.
            eprintln!("Personal tokens in the database {}:", database.describe());
            println!(
                "{:<24} {:<20} {:<36} {:<22} STATE",
                "NAME", "DISPLAY NAME", "PERSON", "SCOPES"
            );
            for token in tokens {
                let state = if token.revoked {
                    "revoked".to_owned()
                } else {
                    match token.record.expires_at {
                        Some(at) => format!("expires {}", format_time(at)),
                        None => "never expires".to_owned(),
                    }
                };
                println!(
                    "{:<24} {:<20} {:<36} {:<22} {}",
                    token.record.name.as_deref().unwrap_or("-"),
                    token.display_name,
                    token.record.person,
                    token.record.scope,
                    state
                );
            }
        }
        TokenCommand::Revoke { name, database } => {
            let database = Database::new(&database);
            database.require_existing(false)?;
            let store = database.open_for_token_admin().await?;
            auth::personal::revoke(&store, &name)
                .await
                .map_err(anyhow::Error::msg)?;
            println!(
                "Revoked {name:?}. A running server stops accepting it within {} seconds.",
                auth::oauth::TOKEN_MEMORY.as_secs()
            );
        }
    }
    Ok(())
}

/// A time as RFC 3339, to the second, for the admin commands' output.
pub(crate) fn format_time(at: domain::Timestamp) -> String {
    time::OffsetDateTime::from_unix_timestamp(at.0 / 1000)
        .ok()
        .and_then(|time| {
            time.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| at.0.to_string())
}
