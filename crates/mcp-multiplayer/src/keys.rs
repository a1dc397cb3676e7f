//! `mcp-multiplayer keys …`: the server's signing keys, administered straight in the database
//! (through `service::keys`, the one place that makes and reads keys), so the commands work
//! whether or not a server is running on it. Like `token`, they refuse a database that does
//! not exist yet and say which one they used.

use service::Clock;

use crate::config::KeysCommand;
use crate::database::Database;
use crate::token::format_time;

pub async fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::List(database) => {
            let database = Database::new(&database);
            database.require_existing(false)?;
            let store = database.open_for_key_admin().await?;
            let keys = service::keys::public_keys(&store).await?;
            if keys.is_empty() {
                println!(
                    "No signing keys in {} yet: the server makes the first when it starts.",
                    database.describe()
                );
                return Ok(());
            }
            // On stderr, so stdout stays a table.
            eprintln!("Signing keys in the database {}:", database.describe());
            println!("{:<26} {:<22} {:<22} STATE", "ID", "CREATED", "RETIRED");
            for key in keys {
                println!(
                    "{:<26} {:<22} {:<22} {}",
                    key.id.as_str(),
                    format_time(key.created_at),
                    key.retired_at.map_or_else(|| "-".to_owned(), format_time),
                    if key.is_active() { "active" } else { "retired" }
                );
            }
        }
        KeysCommand::Rotate(database) => {
            let database = Database::new(&database);
            database.require_existing(false)?;
            let store = database.open_for_key_admin().await?;
            let rotated = service::keys::rotate(&store, service::SystemClock.now()).await?;
            match rotated.retired {
                Some(retired) => println!(
                    "Retired {retired}; {} is now the active key. The retired one stays published, \
                     so what it signed still verifies.",
                    rotated.active
                ),
                None => println!("Made {}, the first signing key.", rotated.active),
            }
            eprintln!(
                "In the database {}. A running server signs with the new key within {} \
                 seconds, or at its next start.",
                database.describe(),
                service::keys::KEY_RECHECK.as_secs()
            );
        }
    }
    Ok(())
}
