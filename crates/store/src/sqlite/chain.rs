//! Linking rows written before the hash chain existed: each channel's unhashed messages get
//! their links, oldest first, from the last hashed one (or from genesis), in one transaction.
//!
//! Runs once per database at open, before the writer starts; afterwards every message is
//! written with its hash by the domain ([`domain::Channel`] links each message it appends).

use domain::chain::Nonce;
use domain::{ChainHash, ChannelId};
use rand::RngCore;
use sqlx::{Connection, SqliteConnection};

use crate::StoreError;
use crate::rows::message_from_unhashed_row;

/// Gives every message without a hash its link. Returns how many it linked.
pub(super) async fn link_unhashed(conn: &mut SqliteConnection) -> Result<u64, StoreError> {
    let channels: Vec<(String,)> =
        sqlx::query_as("SELECT DISTINCT channel_id FROM messages WHERE hash IS NULL")
            .fetch_all(&mut *conn)
            .await?;
    if channels.is_empty() {
        return Ok(0);
    }
    let mut linked = 0;
    let mut tx = conn.begin().await?;
    for (channel,) in channels {
        let id = ChannelId::from_trusted(channel);
        let rows = sqlx::query(
            "SELECT seq, kind, sender, sender_name, body_text, body_data, recipient, nonce, at, hash \
             FROM messages WHERE channel_id = ?1 ORDER BY seq",
        )
        .bind(id.as_str())
        .fetch_all(&mut *tx)
        .await?;
        let mut head = ChainHash::genesis();
        for row in &rows {
            let (mut message, stored) = message_from_unhashed_row(row)?;
            head = match stored {
                Some(hash) => hash,
                None => {
                    // A private message gets its nonce now, before anyone is given its digest:
                    // unsalted, a short move could be guessed from it.
                    if message.to.is_some() && message.nonce.is_none() {
                        let mut nonce = [0u8; 16];
                        rand::rng().fill_bytes(&mut nonce);
                        message.nonce = Some(Nonce(nonce).hex());
                    }
                    let hash = head.link(&id, &message);
                    sqlx::query(
                        "UPDATE messages SET hash = ?3, nonce = ?4 WHERE channel_id = ?1 AND seq = ?2",
                    )
                    .bind(id.as_str())
                    .bind(message.seq.0)
                    .bind(hash.as_str())
                    .bind(message.nonce.as_deref())
                    .execute(&mut *tx)
                    .await?;
                    linked += 1;
                    hash
                }
            };
        }
    }
    tx.commit().await?;
    tracing::info!(
        messages = linked,
        "linked messages written before the hash chain"
    );
    Ok(linked)
}
