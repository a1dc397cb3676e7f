//! Loading, making and rotating the signing keys over a real database.

use domain::{ChannelId, Seq};
use store::testing::TestDatabase;
use tokio_util::sync::CancellationToken;
use transcript::HeadStatement;

use super::*;
use crate::testing::FixedClock;
use crate::{Clock, ServiceSettings};

async fn open(database: &TestDatabase) -> Store {
    database.open().await
}

fn statement() -> HeadStatement {
    HeadStatement {
        channel: ChannelId::from_random([1; 12]),
        seq: Seq(3),
        head: format!("sha256:{}", "0".repeat(64)),
        at: Timestamp(5),
    }
}

#[tokio::test]
async fn the_first_key_is_made_once_and_read_back_after() {
    let database = TestDatabase::for_suite().await;
    let store = open(&database).await;
    let first = load_keyring(&store, Timestamp(1)).await.expect("made");
    let again = load_keyring(&store, Timestamp(2)).await.expect("read");
    assert_eq!(first.active_id(), again.active_id());
    assert_eq!(again.keys().len(), 1);
    assert_eq!(again.keys()[0].created_at, Timestamp(1));
    // The same secret came back: what one signed, the other's keys verify.
    assert_eq!(again.verify(&first.sign(statement())), Ok(()));
}

#[tokio::test]
async fn two_starts_at_once_sign_with_one_key() {
    let database = TestDatabase::for_suite().await;
    let store = open(&database).await;
    let (one, two) = tokio::join!(
        load_keyring(&store, Timestamp(1)),
        load_keyring(&store, Timestamp(1))
    );
    let (one, two) = (one.expect("loaded"), two.expect("loaded"));
    assert_eq!(one.active_id(), two.active_id());
    assert_eq!(store.server_keys().await.expect("listed").len(), 1);
}

#[tokio::test]
async fn rotation_keeps_old_public_keys_and_old_heads_verify() {
    let database = TestDatabase::for_suite().await;
    let store = open(&database).await;
    let before = load_keyring(&store, Timestamp(1)).await.expect("made");
    let signed = before.sign(statement());
    let rotated = rotate(&store, Timestamp(2)).await.expect("rotated");
    assert_eq!(rotated.retired.as_ref(), Some(before.active_id()));

    let after = load_keyring(&store, Timestamp(3)).await.expect("read");
    assert_eq!(after.active_id(), &rotated.active);
    assert_eq!(after.verify(&signed), Ok(()));
    let published = public_keys(&store).await.expect("listed");
    assert_eq!(published, after.keys());
    assert_eq!(published[0].retired_at, Some(Timestamp(2)));
    assert!(published[1].is_active());
}

#[tokio::test]
async fn a_running_service_notices_a_rotation_only_after_its_recheck() {
    let database = TestDatabase::for_suite().await;
    let store = open(&database).await;
    let patient = ServerKeys::new(Duration::from_secs(3600));
    let eager = ServerKeys::new(Duration::ZERO);
    let loaded = patient.load(&store, Timestamp(1)).await.expect("made");
    eager.load(&store, Timestamp(1)).await.expect("read");

    let rotated = rotate(&store, Timestamp(2)).await.expect("rotated");
    let patient_now = patient.current(&store, Timestamp(3)).await.expect("kept");
    assert_eq!(patient_now.active_id(), loaded.active_id());
    let eager_now = eager.current(&store, Timestamp(3)).await.expect("re-read");
    assert_eq!(eager_now.active_id(), &rotated.active);
    assert_eq!(eager_now.keys().len(), 2);
    // What the old key signed meanwhile still verifies with the new keyring.
    assert_eq!(eager_now.verify(&patient_now.sign(statement())), Ok(()));
}

#[tokio::test]
async fn a_key_whose_parts_do_not_belong_together_is_refused() {
    let database = TestDatabase::for_suite().await;
    let store = open(&database).await;
    let key = ServerKey::from_secret([1; KEY_BYTES], Timestamp(1));
    let other = ServerKey::from_secret([2; KEY_BYTES], Timestamp(1));
    let mismatched = ServerKeyRecord {
        secret_hex: Some(hex::encode(other.secret())),
        ..record_of(&key)
    };
    assert!(store.insert_server_key(mismatched).await.expect("stored"));
    let refused = load_keyring(&store, Timestamp(2)).await;
    assert!(
        matches!(&refused, Err(KeysError::Corrupt { id, .. }) if id == key.id().as_str()),
        "{refused:?}"
    );
}

#[tokio::test]
async fn the_service_publishes_every_key_and_the_active_one() {
    let database = TestDatabase::for_suite().await;
    let store = open(&database).await;
    let service = Service::new(
        store.clone(),
        ServiceSettings {
            key_recheck: Duration::ZERO,
            ..ServiceSettings::default()
        },
        Arc::new(FixedClock),
        CancellationToken::new(),
        crate::testing::workers().await,
    );
    let first = service.load_keys().await.expect("made");
    let published = service.published_keys().await.expect("published");
    assert_eq!(&published.active, first.active_id());
    assert_eq!(published.keys.len(), 1);
    assert_eq!(
        published.keys[0].created_at,
        FixedClock.now(),
        "made at the service's time"
    );

    // Rotated by a process whose clock is far behind the service's: the list keeps the
    // order in which the keys were made.
    let rotated = rotate(&store, Timestamp(2)).await.expect("rotated");
    let published = service.published_keys().await.expect("published");
    assert_eq!(published.active, rotated.active);
    assert_eq!(published.keys.len(), 2);
    assert_eq!(&published.keys[0].id, first.active_id());
}
