//! The storage contract, checked against a real SQLite file and, where one is configured
//! (see [`crate::testing`]), a real PostgreSQL database.

use domain::{
    Body, Channel, ChannelId, ChannelSpec, Draft, Listing, PageBudget, Principal, PrincipalId,
    SecretSource, Seq, SlotLabel, Timestamp,
};

use super::*;
use crate::testing::TestDatabase;

/// Deterministic, never-repeating bytes: a counter run through a multiplicative hash, seeded
/// per channel so that different channels get different secrets.
struct OsLikeSource(u64);

impl OsLikeSource {
    fn seeded(seed: u8) -> Self {
        Self(u64::from(seed) << 40)
    }
}

impl SecretSource for OsLikeSource {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 += 1;
            let mixed = self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes();
            chunk.copy_from_slice(&mixed[..chunk.len()]);
        }
    }
}

fn person(name: &str) -> Principal {
    Principal {
        id: PrincipalId::new(format!("id-{name}")),
        display_name: name.into(),
    }
}

fn draft(text: &str, to: Option<&str>) -> Draft {
    Draft {
        body: Body::new(Some(text.into()), None).expect("valid body"),
        to: to.map(|slot| SlotLabel::parse(slot).expect("valid label")),
        nonce: domain::chain::Nonce([3; 16]),
    }
}

async fn open(dir: &tempfile::TempDir) -> Store {
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    Store::open(&url, StoreSettings::default())
        .await
        .expect("store opens")
}

/// Alice posts `text` to channel `id`.
async fn alice_posts(
    store: &Store,
    id: &ChannelId,
    text: &str,
) -> Result<(Message, Vec<Message>), StoreError> {
    let text = text.to_owned();
    store
        .update_channel(id, move |channel| {
            channel.post(&person("alice").id, None, draft(&text, None), Timestamp(7))
        })
        .await
}

async fn new_channel(store: &Store, seed: u8) -> (ChannelId, Vec<(SlotLabel, String)>) {
    let spec =
        ChannelSpec::new("Test", &["invite:alice".into(), "invite:bob".into()]).expect("spec");
    let created = Channel::create(
        ChannelId::from_random([seed; 12]),
        spec,
        &person("alice"),
        true,
        Timestamp(1),
        &mut OsLikeSource::seeded(seed),
    );
    let id = created.channel.id.clone();
    store
        .insert_channel(created.channel, 100, Vec::new())
        .await
        .expect("insert");
    (id, created.invites)
}

async fn changes_survive_reopening(db: TestDatabase) {
    let store = db.open().await;
    let (id, invites) = new_channel(&store, 1).await;
    let code = invites[0].1.clone();
    let (joined, _) = store
        .update_channel(&id, move |channel| {
            channel.redeem(
                &code,
                &person("bob"),
                Timestamp(2),
                &mut OsLikeSource::seeded(9),
            )
        })
        .await
        .expect("join");
    assert_eq!(joined.slot.as_str(), "bob");
    let (message, stored) = store
        .update_channel(&id, |channel| {
            channel.post(&person("bob").id, None, draft("hello", None), Timestamp(3))
        })
        .await
        .expect("post");
    assert_eq!(stored, vec![message.clone()]);
    drop(store);

    let store = db.open().await;
    let channel = store.load_channel(&id).await.expect("load");
    assert_eq!(channel.last_seq, message.seq);
    assert!(
        channel
            .slot(&joined.slot)
            .expect("slot")
            .held_by(&person("bob").id)
    );
    let all = store
        .messages(&id, Audience::Everything, Seq::ZERO, channel.last_seq, 100)
        .await
        .expect("messages");
    assert_eq!(all.last(), Some(&message));
    assert_eq!(
        all.iter().map(|m| m.seq.0).collect::<Vec<_>>(),
        (1..=message.seq.0).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn the_writer_commits_in_wal_mode_with_a_full_fsync() {
    // SQLite's own crash tests (a VFS that drops and reorders unsynced writes) carry what these
    // settings promise on power loss; this holds that they are the settings in force.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir).await;
    let durability = store.durability().await.expect("pragmas");
    assert_eq!(durability.journal, "wal");
    assert_eq!(durability.synchronous, "full");
}

#[tokio::test]
async fn one_process_per_database_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir).await;
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let second = Store::open(&url, StoreSettings::default()).await;
    assert!(matches!(second, Err(StoreError::Backend(message)) if message.contains("in use")));
    drop(store);
}

#[tokio::test]
async fn a_database_failure_rolls_back_its_group_and_the_writer_carries_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir).await;
    let (id, _) = new_channel(&store, 7).await;
    let before = store.load_channel(&id).await.expect("load");
    // Inserting the same channel id again violates the primary key inside the writer.
    let spec = ChannelSpec::new("Twin", &["invite:alice".into()]).expect("spec");
    let twin = Channel::create(
        ChannelId::from_random([7; 12]),
        spec,
        &person("alice"),
        true,
        Timestamp(9),
        &mut OsLikeSource::seeded(70),
    );
    let (duplicate, post) = tokio::join!(
        store.insert_channel(twin.channel, 100, Vec::new()),
        store.update_channel(&id, |channel| {
            channel.post(
                &person("alice").id,
                None,
                draft("same group, maybe", None),
                Timestamp(9),
            )
        })
    );
    assert!(matches!(duplicate, Err(StoreError::Backend(_))));
    let after = store.load_channel(&id).await.expect("load");
    match post {
        // The post was committed in a group of its own: it is there.
        Ok((message, _)) => assert_eq!(after.last_seq, message.seq),
        // It shared the broken group: nothing of it was kept.
        Err(StoreError::Backend(_)) => assert_eq!(after, before),
        Err(other) => panic!("unexpected {other:?}"),
    }
    assert_eq!(after.name, "Test", "the original channel is untouched");
    store
        .update_channel(&id, |channel| {
            channel.post(
                &person("alice").id,
                None,
                draft("later", None),
                Timestamp(10),
            )
        })
        .await
        .expect("the writer carries on");
}

async fn refused_changes_write_nothing(db: TestDatabase) {
    let store = db.open().await;
    let (id, _) = new_channel(&store, 2).await;
    let before = store.load_channel(&id).await.expect("load");
    let refused = store
        .update_channel(&id, |channel| {
            channel.post(&person("mallory").id, None, draft("hi", None), Timestamp(5))
        })
        .await;
    assert!(matches!(
        refused,
        Err(StoreError::Domain(domain::DomainError::NotMember))
    ));
    assert_eq!(store.load_channel(&id).await.expect("load"), before);
    let missing = store
        .update_channel(&ChannelId::from_random([0xee; 12]), |_| Ok(()))
        .await;
    assert!(matches!(
        missing,
        Err(StoreError::Domain(domain::DomainError::ChannelNotFound))
    ));
}

/// The backstop where the write happens: whatever a rule does in memory, a channel that was
/// closed before the change takes no new message.
async fn a_closed_channel_takes_no_new_message_even_from_a_rule_that_reopens_it(db: TestDatabase) {
    let store = db.open().await;
    let (id, _) = new_channel(&store, 3).await;
    store
        .update_channel(&id, |channel| {
            channel.close(&person("alice"), &[], Timestamp(4))
        })
        .await
        .expect("close");
    let closed = store.load_channel(&id).await.expect("load");
    let refused = store
        .update_channel(&id, |channel| {
            channel.closed = false;
            channel.post(&person("alice").id, None, draft("late", None), Timestamp(5))
        })
        .await;
    assert!(matches!(
        refused,
        Err(StoreError::Domain(domain::DomainError::ChannelClosed))
    ));
    assert_eq!(store.load_channel(&id).await.expect("load"), closed);
}

async fn a_panicking_rule_does_not_stop_the_writer(db: TestDatabase) {
    let store = db.open().await;
    let (id, _) = new_channel(&store, 3).await;
    let panicked = store
        .update_channel(&id, |_| -> Result<(), _> { panic!("rule bug") })
        .await;
    assert!(matches!(panicked, Err(StoreError::Backend(_))));
    store
        .update_channel(&id, |channel| {
            channel.post(
                &person("alice").id,
                None,
                draft("still up", None),
                Timestamp(4),
            )
        })
        .await
        .expect("the writer carries on");
}

async fn concurrent_posts_get_consecutive_seqs(db: TestDatabase) {
    let store = db.open().await;
    let (id, _) = new_channel(&store, 4).await;
    let start = store.load_channel(&id).await.expect("load").last_seq;
    let posts = (0..200).map(|i| {
        let store = store.clone();
        let id = id.clone();
        tokio::spawn(async move {
            store
                .update_channel(&id, move |channel| {
                    channel.post(
                        &person("alice").id,
                        None,
                        draft(&format!("m{i}"), None),
                        Timestamp(10),
                    )
                })
                .await
                .expect("post")
                .0
                .seq
        })
    });
    let mut seqs = Vec::new();
    for post in posts {
        seqs.push(post.await.expect("task").0);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, ((start.0 + 1)..=(start.0 + 200)).collect::<Vec<_>>());
}

/// Changes to one channel that arrive together (and on PostgreSQL commit as one group): the
/// refused ones write nothing and say why, a panicking one fails alone, and every accepted one
/// is stored, in one run of seqs, and chained.
async fn refused_changes_among_concurrent_ones_write_nothing(db: TestDatabase) {
    let store = db.open().await;
    let (id, _) = new_channel(&store, 6).await;
    let start = store.load_channel(&id).await.expect("load").last_seq;
    let changes = (0..120).map(|i| {
        let store = store.clone();
        let id = id.clone();
        tokio::spawn(async move {
            store
                .update_channel(&id, move |channel| {
                    if i % 40 == 39 {
                        panic!("a rule that panics");
                    }
                    // Every third change comes from someone without a seat.
                    let who = if i % 3 == 0 { "mallory" } else { "alice" };
                    channel.post(
                        &person(who).id,
                        None,
                        draft(&format!("m{i}"), None),
                        Timestamp(10),
                    )
                })
                .await
                .map(|(message, _)| message.seq)
        })
    });
    let (mut stored, mut refused, mut failed) = (Vec::new(), 0, 0);
    for change in changes {
        match change.await.expect("task") {
            Ok(seq) => stored.push(seq.0),
            Err(StoreError::Domain(domain::DomainError::NotMember)) => refused += 1,
            Err(StoreError::Backend(_)) => failed += 1,
            Err(other) => panic!("unexpected failure: {other}"),
        }
    }

    assert_eq!(
        (refused, failed),
        (39, 3),
        "mallory's posts refused, the panics failed alone"
    );
    stored.sort_unstable();
    assert_eq!(stored, ((start.0 + 1)..=(start.0 + 78)).collect::<Vec<_>>());
    let messages = store
        .messages(&id, Audience::Everything, Seq::ZERO, Seq(i64::MAX), 1000)
        .await
        .expect("messages");
    assert_eq!(
        messages.len() as i64,
        start.0 + 78,
        "nothing refused was written"
    );
    let mut link = domain::ChainHash::genesis();
    for message in &messages {
        link = link.link(&id, message);
        assert_eq!(message.hash, link, "seq {} is chained", message.seq.0);
    }
}

async fn private_messages_reach_sender_and_recipient_only(db: TestDatabase) {
    let store = db.open().await;
    let spec = ChannelSpec::new(
        "Three",
        &["invite:a".into(), "invite:b".into(), "invite:c".into()],
    )
    .expect("spec");
    let created = Channel::create(
        ChannelId::from_random([5; 12]),
        spec,
        &person("a"),
        true,
        Timestamp(1),
        &mut OsLikeSource::seeded(5),
    );
    let id = created.channel.id.clone();
    store
        .insert_channel(created.channel, 100, Vec::new())
        .await
        .expect("insert");
    for (seed, (label, code)) in (100..).zip(created.invites) {
        let who = person(label.as_str());
        store
            .update_channel(&id, move |channel| {
                channel.redeem(&code, &who, Timestamp(2), &mut OsLikeSource::seeded(seed))
            })
            .await
            .expect("join");
    }
    store
        .update_channel(&id, |channel| {
            channel.post(
                &person("a").id,
                None,
                draft("secret", Some("b")),
                Timestamp(3),
            )
        })
        .await
        .expect("post");
    let last = store.load_channel(&id).await.expect("load").last_seq;
    let seen_by = |slot: &'static str| {
        let store = store.clone();
        let id = id.clone();
        async move {
            let label = SlotLabel::parse(slot).expect("label");
            store
                .messages(
                    &id,
                    Audience::Seat {
                        slot: &label,
                        since: Seq::ZERO,
                    },
                    Seq::ZERO,
                    last,
                    100,
                )
                .await
                .expect("messages")
                .into_iter()
                .any(|m| m.body.text.as_deref() == Some("secret"))
        }
    };
    assert!(seen_by("a").await);
    assert!(seen_by("b").await);
    assert!(!seen_by("c").await);
}

async fn open_channels_per_owner_are_capped(db: TestDatabase) {
    let store = db.open().await;
    for seed in 0..2u8 {
        let spec = ChannelSpec::new("c", &["invite:a".into()]).expect("spec");
        let created = Channel::create(
            ChannelId::from_random([seed; 12]),
            spec,
            &person("a"),
            true,
            Timestamp(1),
            &mut OsLikeSource::seeded(seed),
        );
        store
            .insert_channel(created.channel, 2, Vec::new())
            .await
            .expect("under the cap");
    }
    let spec = ChannelSpec::new("c", &["invite:a".into()]).expect("spec");
    let created = Channel::create(
        ChannelId::from_random([9; 12]),
        spec,
        &person("a"),
        true,
        Timestamp(1),
        &mut OsLikeSource::seeded(9),
    );
    let refused = store.insert_channel(created.channel, 2, Vec::new()).await;
    assert!(matches!(
        refused,
        Err(StoreError::Domain(
            domain::DomainError::LimitExceeded { .. }
        ))
    ));
}

async fn commits_wake_subscribers_and_unread_counts_follow_reads(db: TestDatabase) {
    let store = db.open().await;
    let (id, _) = new_channel(&store, 6).await;
    let mut subscription = store.signals().subscribe(&id);
    let (message, _) = store
        .update_channel(&id, |channel| {
            channel.post(&person("alice").id, None, draft("wake", None), Timestamp(5))
        })
        .await
        .expect("post");
    // The channel's creation may still be announced after its insert returned (answers go out
    // before wake-ups): skip announcements older than the post.
    let advance = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            let advance = subscription.advanced().await;
            if advance.seq >= message.seq {
                break advance;
            }
        }
    })
    .await
    .expect("woken after commit");
    assert_eq!(advance.seq, message.seq);
    let snapshot = advance
        .snapshot
        .expect("the writer attaches what it committed");
    assert_eq!(snapshot.messages, vec![message.clone()]);
    assert!(snapshot.covers(Seq(message.seq.0 - 1)));
    assert!(
        !snapshot.covers(Seq(message.seq.0 - 2)),
        "older messages are not in it"
    );
    assert_eq!(store.signals().watched_channels(), 1);
    drop(subscription);
    assert_eq!(store.signals().watched_channels(), 0);

    let alice = person("alice").id;
    let listing = store.channels_of(&alice).await.expect("list");
    assert_eq!(listing.len(), 1);
    // Alice's own post does not count as unread; the two system messages do.
    assert_eq!(listing[0].seats[0].unread, 2);
    let slot = listing[0].seats[0].slot.clone();
    let mark = ReadMark {
        channel: id.clone(),
        slot,
        holder: alice.clone(),
        seq: message.seq,
    };
    store.mark_read(vec![mark]).await.expect("mark");
    assert_eq!(
        store.channels_of(&alice).await.expect("list")[0].seats[0].unread,
        0
    );
    assert!(
        store
            .channels_of(&person("mallory").id)
            .await
            .expect("list")
            .is_empty()
    );
}

mod oauth {
    use crate::Store;
    use crate::oauth::*;
    use crate::testing::TestDatabase;
    use domain::{PrincipalId, SecretHash, Timestamp};

    async fn with_person(store: &Store) -> PrincipalId {
        let id = PrincipalId::new("usr_test");
        store
            .create_person(Person {
                id: id.clone(),
                display_name: "Ada".into(),
                created_at: Timestamp(1),
            })
            .await
            .expect("person stored");
        id
    }

    fn token(secret: &str, kind: TokenKind, family: &str, person: &PrincipalId) -> TokenRecord {
        TokenRecord {
            token_hash: SecretHash::of(secret),
            kind,
            family: family.into(),
            person: person.clone(),
            client_id: Some("client".into()),
            resource: "http://127.0.0.1/mcp".into(),
            scope: "mcp:read mcp:write".into(),
            name: None,
            created_at: Timestamp(1),
            expires_at: Some(Timestamp(10_000)),
        }
    }

    fn code(secret: &str, person: &PrincipalId) -> AuthorizationCode {
        AuthorizationCode {
            code_hash: SecretHash::of(secret),
            client_id: "client".into(),
            person: person.clone(),
            redirect_uri: "http://127.0.0.1:9/cb".into(),
            code_challenge: "challenge".into(),
            resource: "http://127.0.0.1/mcp".into(),
            scope: "mcp:read".into(),
            expires_at: Timestamp(100),
        }
    }

    async fn a_code_is_exchanged_once_and_a_replay_revokes_what_it_gave(db: TestDatabase) {
        let store = db.open().await;
        let person = with_person(&store).await;
        store
            .insert_code(code("c1", &person))
            .await
            .expect("code stored");
        let first = store
            .exchange_code(
                &SecretHash::of("c1"),
                Timestamp(2),
                vec![
                    token("a1", TokenKind::Access, "fam1", &person),
                    token("r1", TokenKind::Refresh, "fam1", &person),
                ],
            )
            .await
            .expect("exchanged");
        assert_eq!(first, CodeExchange::Issued);
        let (_, spent) = store
            .code(&SecretHash::of("c1"))
            .await
            .expect("read")
            .expect("code kept");
        assert!(spent);

        let replay = store
            .exchange_code(
                &SecretHash::of("c1"),
                Timestamp(3),
                vec![token("a2", TokenKind::Access, "fam2", &person)],
            )
            .await
            .expect("replay answered");
        assert_eq!(replay, CodeExchange::Replayed);
        for secret in ["a1", "r1"] {
            let stored = store
                .token(&SecretHash::of(secret))
                .await
                .expect("read")
                .expect("token kept");
            assert!(stored.revoked, "{secret} must be revoked after the replay");
        }
        assert!(
            store
                .token(&SecretHash::of("a2"))
                .await
                .expect("read")
                .is_none(),
            "a replay issues nothing"
        );
        let unknown = store
            .exchange_code(&SecretHash::of("nope"), Timestamp(3), Vec::new())
            .await
            .expect("answered");
        assert_eq!(unknown, CodeExchange::Unknown);
    }

    async fn a_refresh_token_rotates_once_and_reuse_revokes_the_family(db: TestDatabase) {
        let store = db.open().await;
        let person = with_person(&store).await;
        for secret in ["a1", "r1"] {
            let kind = if secret == "a1" {
                TokenKind::Access
            } else {
                TokenKind::Refresh
            };
            store
                .insert_token(token(secret, kind, "fam", &person))
                .await
                .expect("stored");
        }
        let rotated = store
            .rotate_refresh(
                &SecretHash::of("r1"),
                Timestamp(5),
                vec![
                    token("a2", TokenKind::Access, "fam", &person),
                    token("r2", TokenKind::Refresh, "fam", &person),
                ],
            )
            .await
            .expect("rotated");
        assert_eq!(rotated, Rotation::Rotated);
        let live = store
            .token(&SecretHash::of("r2"))
            .await
            .expect("read")
            .expect("new refresh token");
        assert!(!live.revoked && !live.rotated);
        assert_eq!(live.display_name, "Ada");

        let reused = store
            .rotate_refresh(
                &SecretHash::of("r1"),
                Timestamp(6),
                vec![token("a3", TokenKind::Access, "fam", &person)],
            )
            .await
            .expect("answered");
        assert_eq!(reused, Rotation::Reused);
        for secret in ["a1", "a2", "r2"] {
            let stored = store
                .token(&SecretHash::of(secret))
                .await
                .expect("read")
                .expect("kept");
            assert!(stored.revoked, "{secret} must be revoked after reuse");
        }
        // An access token is never a refresh token.
        let wrong_kind = store
            .rotate_refresh(&SecretHash::of("a1"), Timestamp(7), Vec::new())
            .await
            .expect("answered");
        assert_eq!(wrong_kind, Rotation::Unknown);
    }

    async fn person_named(store: &Store, id: &str, created_at: i64) -> PrincipalId {
        let id = PrincipalId::new(id);
        store
            .create_person(Person {
                id: id.clone(),
                display_name: id.as_str().into(),
                created_at: Timestamp(created_at),
            })
            .await
            .expect("person stored");
        id
    }

    async fn registered(store: &Store, client_id: &str, created_at: i64) {
        store
            .register_client(RegisteredClient {
                client_id: client_id.into(),
                secret_hash: None,
                name: "Test".into(),
                redirect_uris: vec!["http://127.0.0.1:9/cb".into()],
                auth_method: "none".into(),
                created_at: Timestamp(created_at),
            })
            .await
            .expect("client stored");
    }

    async fn the_sweep_forgets_unused_clients_and_people_who_hold_nothing(db: TestDatabase) {
        let store = db.open().await;
        // People named like `super::person` so that channels and seats refer to them.
        let owner = person_named(&store, "id-alice", 1).await;
        let seated = person_named(&store, "id-bob", 1).await;
        let with_token = person_named(&store, "usr_token", 1).await;
        let with_code = person_named(&store, "usr_code", 1).await;
        let idle = person_named(&store, "usr_idle", 1).await;
        let recent = person_named(&store, "usr_recent", 5_000).await;
        let (channel, invites) = super::new_channel(&store, 3).await;
        let invite = invites[0].1.clone();
        store
            .update_channel(&channel, move |channel| {
                channel.redeem(
                    &invite,
                    &super::person("bob"),
                    Timestamp(2),
                    &mut super::OsLikeSource::seeded(4),
                )
            })
            .await
            .expect("bob joins");
        store
            .insert_token(token("t", TokenKind::Personal, "f", &with_token))
            .await
            .expect("token stored");
        registered(&store, "unused", 1).await;
        registered(&store, "client", 1).await;
        registered(&store, "fresh", 5_000).await;
        store
            .insert_code(code("c", &with_code))
            .await
            .expect("code stored");
        let mut spent_code = code("spent", &with_code);
        spent_code.client_id = "client".into();
        store.insert_code(spent_code).await.expect("code stored");
        store
            .exchange_code(
                &SecretHash::of("spent"),
                Timestamp(3),
                vec![token("a", TokenKind::Access, "fam", &with_code)],
            )
            .await
            .expect("exchanged");
        let mut unused_code = code("unused-code", &idle);
        unused_code.client_id = "unused".into();
        store.insert_code(unused_code).await.expect("code stored");

        let swept = store
            .sweep_unused(Timestamp(1_000), Timestamp(1_000))
            .await
            .expect("swept");

        // "unused" never obtained a token, and its code went with it, so `idle` holds nothing.
        assert_eq!(swept.clients, 1);
        assert_eq!(swept.people, 1);
        for (client, kept) in [("unused", false), ("client", true), ("fresh", true)] {
            let found = store.registered_client(client).await.expect("read");
            assert_eq!(found.is_some(), kept, "{client}");
        }
        assert!(!store.client_approved("unused").await.expect("read"));
        assert!(store.client_approved("client").await.expect("read"));
        for (id, kept) in [
            (&owner, true),
            (&seated, true),
            (&with_token, true),
            (&with_code, true),
            (&idle, false),
            (&recent, true),
        ] {
            let found = store.person(id).await.expect("read");
            assert_eq!(found.is_some(), kept, "{id}");
        }
    }

    async fn approvals_are_remembered_and_form_tokens_spend_once(db: TestDatabase) {
        let store = db.open().await;
        let person = with_person(&store).await;
        assert!(!store.client_approved("client").await.expect("read"));
        store
            .insert_code(code("c1", &person))
            .await
            .expect("code stored");
        assert!(store.client_approved("client").await.expect("read"));

        let form = SecretHash::of("form");
        assert!(store.spend_form(&form, Timestamp(50)).await.expect("spent"));
        assert!(
            !store
                .spend_form(&form, Timestamp(50))
                .await
                .expect("answered")
        );
        let swept = store
            .sweep_unused(Timestamp(0), Timestamp(51))
            .await
            .expect("swept");
        assert_eq!(swept.forms, 1);
    }

    async fn a_setting_is_generated_once(db: TestDatabase) {
        let store = db.open().await;
        let first = store
            .setting_or_insert("cookie_key", "one".into())
            .await
            .expect("stored");
        let second = store
            .setting_or_insert("cookie_key", "two".into())
            .await
            .expect("read");
        assert_eq!((first.as_str(), second.as_str()), ("one", "one"));
    }

    async fn token_admin_opens_beside_a_running_server(db: TestDatabase) {
        let server = db.open().await;
        let person = with_person(&server).await;
        let url = db.url();
        let admin = Store::open_for_token_admin(&url)
            .await
            .expect("admin opens");
        let mut personal = token("p1", TokenKind::Personal, "p1", &person);
        personal.name = Some("ci".into());
        personal.expires_at = None;
        admin.insert_token(personal).await.expect("stored");
        let seen = server
            .token(&SecretHash::of("p1"))
            .await
            .expect("read")
            .expect("the server sees the admin's token");
        assert_eq!(seen.record.name.as_deref(), Some("ci"));
        assert_eq!(admin.personal_tokens().await.expect("listed").len(), 1);
    }

    async fn a_persons_tokens_are_theirs_and_live(db: TestDatabase) {
        let store = db.open().await;
        let person = with_person(&store).await;
        let other = PrincipalId::new("usr_other");
        store
            .create_person(Person {
                id: other.clone(),
                display_name: "Bo".into(),
                created_at: Timestamp(1),
            })
            .await
            .expect("person stored");
        for (secret, family, owner) in [
            ("a1", "fam_a", &person),
            ("r1", "fam_a", &person),
            ("b1", "fam_b", &person),
            ("o1", "fam_o", &other),
        ] {
            store
                .insert_token(token(secret, TokenKind::Access, family, owner))
                .await
                .expect("stored");
        }
        store
            .revoke_family("fam_b", Timestamp(5))
            .await
            .expect("revoked");
        let families: Vec<String> = store
            .tokens_of(&person)
            .await
            .expect("listed")
            .into_iter()
            .map(|token| token.record.family)
            .collect();
        assert_eq!(families, ["fam_a", "fam_a"]);
    }

    crate::on_both_backends!(
        a_persons_tokens_are_theirs_and_live,
        a_code_is_exchanged_once_and_a_replay_revokes_what_it_gave,
        a_refresh_token_rotates_once_and_reuse_revokes_the_family,
        the_sweep_forgets_unused_clients_and_people_who_hold_nothing,
        approvals_are_remembered_and_form_tokens_spend_once,
        a_setting_is_generated_once,
        token_admin_opens_beside_a_running_server,
    );
}

mod bots {
    use super::{new_channel, person};
    use crate::StoreError;
    use crate::bots::{BotRecord, BotWrite, FetchWrite, TimerWrite};
    use crate::testing::TestDatabase;
    use domain::{Seq, SlotLabel, Timestamp};

    /// Attaches a bot row to the channel's "bob" slot (standing in for a bot slot: the rows are
    /// what matter here), given events up to seq 1.
    async fn attach(store: &crate::Store, id: &domain::ChannelId) -> SlotLabel {
        let slot = SlotLabel::parse("bob").expect("label");
        let record = BotRecord {
            channel_id: id.clone(),
            slot: slot.clone(),
            name: "echo".into(),
            source: "class Bot {}".into(),
            language: "javascript".into(),
            code_hash: "sha256:00".into(),
            params: serde_json::json!({}),
            params_hash: "sha256:11".into(),
            seed: "22".repeat(32),
            seed_commitment: "33".into(),
            state: None,
            processed_seq: Seq(1),
            failures: 0,
            disabled: false,
            ended: false,
        };
        store
            .update_channel_and_bots(id, move |_| {
                Ok(((), vec![BotWrite::Attach(Box::new(record))]))
            })
            .await
            .expect("attached");
        slot
    }

    async fn timers_are_set_replaced_cancelled_fired_once_and_go_with_their_bot(db: TestDatabase) {
        let store = db.open().await;
        let (id, _) = new_channel(&store, 4).await;
        let slot = attach(&store, &id).await;
        let set = |tag: &str, due: i64, set_by: i64| TimerWrite::Set {
            tag: tag.into(),
            due: Timestamp(due),
            set_by: Seq(set_by),
        };
        let progress =
            |from: i64, to: i64, ended: bool, timers: Vec<TimerWrite>| BotWrite::Progress {
                slot: slot.clone(),
                from: Seq(from),
                to: Seq(to),
                state: None,
                failures: 0,
                disabled: false,
                ended,
                timers,
                fetches: Vec::new(),
            };
        let write = |change: BotWrite| {
            let store = store.clone();
            let id = id.clone();
            async move {
                store
                    .update_channel_and_bots(&id, move |_| Ok(((), vec![change])))
                    .await
                    .map(|_| ())
            }
        };
        write(progress(
            1,
            2,
            false,
            vec![set("turn", 500, 2), set("ping", 900, 2)],
        ))
        .await
        .expect("set");
        // The same tag again replaces; a cancel removes.
        let replace = vec![
            set("turn", 700, 3),
            TimerWrite::Cancel { tag: "ping".into() },
        ];
        write(progress(2, 3, false, replace))
            .await
            .expect("replace");
        let pending = store.timers_of(&id, &slot).await.expect("timers");
        assert_eq!(pending.len(), 1);
        assert_eq!(
            (pending[0].tag.as_str(), pending[0].due, pending[0].set_by),
            ("turn", Timestamp(700), Seq(3))
        );
        assert_eq!(store.next_timers(10).await.expect("next"), pending);

        // Firing a timer that was replaced meanwhile is refused; firing the pending one works
        // once.
        let fire = |set_by: i64| BotWrite::FireTimer {
            slot: slot.clone(),
            tag: "turn".into(),
            set_by: Seq(set_by),
        };
        assert!(matches!(write(fire(2)).await, Err(StoreError::Conflict(_))));
        write(fire(3)).await.expect("fired");
        assert!(
            matches!(write(fire(3)).await, Err(StoreError::Conflict(_))),
            "fires once"
        );
        assert!(
            store
                .timers_of(&id, &slot)
                .await
                .expect("timers")
                .is_empty()
        );

        // A bot that ends its run keeps none; a replacement starts with none.
        write(progress(3, 4, false, vec![set("a", 1_000, 4)]))
            .await
            .expect("set");
        write(progress(4, 5, true, vec![set("b", 2_000, 5)]))
            .await
            .expect("ended");
        assert!(
            store
                .timers_of(&id, &slot)
                .await
                .expect("timers")
                .is_empty()
        );
        let slot = attach(&store, &id).await;
        write(progress(1, 2, false, vec![set("c", 3_000, 2)]))
            .await
            .expect("set");
        attach(&store, &id).await;
        assert!(
            store
                .timers_of(&id, &slot)
                .await
                .expect("timers")
                .is_empty(),
            "attach clears"
        );
    }

    async fn fetches_are_kept_with_their_reaction_answered_once_and_go_with_their_bot(
        db: TestDatabase,
    ) {
        let store = db.open().await;
        let (id, _) = new_channel(&store, 4).await;
        let slot = attach(&store, &id).await;
        let fetch = |requested_by: i64, position: u32| FetchWrite {
            requested_by: Seq(requested_by),
            position,
            tag: format!("t{position}"),
            url: "https://example.com/".into(),
            requested_at: Timestamp(100 + requested_by),
        };
        let progress =
            |from: i64, to: i64, ended: bool, fetches: Vec<FetchWrite>| BotWrite::Progress {
                slot: slot.clone(),
                from: Seq(from),
                to: Seq(to),
                state: None,
                failures: 0,
                disabled: false,
                ended,
                timers: Vec::new(),
                fetches,
            };
        let write = |change: BotWrite| {
            let store = store.clone();
            let id = id.clone();
            async move {
                store
                    .update_channel_and_bots(&id, move |_| Ok(((), vec![change])))
                    .await
                    .map(|_| ())
            }
        };
        write(progress(1, 2, false, vec![fetch(2, 0), fetch(2, 1)]))
            .await
            .expect("asked");
        // A progress that fails (the bot moved on meanwhile) stores no fetch.
        assert!(
            write(progress(1, 3, false, vec![fetch(3, 0)]))
                .await
                .is_err()
        );
        let pending = store.fetches_of(&id, &slot).await.expect("fetches");
        assert_eq!(
            pending
                .iter()
                .map(|f| (f.requested_by, f.position, f.tag.as_str()))
                .collect::<Vec<_>>(),
            [(Seq(2), 0, "t0"), (Seq(2), 1, "t1")]
        );
        assert_eq!(store.next_fetches(10).await.expect("next"), pending);
        let answer = |position: u32| BotWrite::AnswerFetch {
            slot: slot.clone(),
            requested_by: Seq(2),
            position,
        };
        write(answer(0)).await.expect("answered");
        assert!(
            matches!(write(answer(0)).await, Err(StoreError::Conflict(_))),
            "answered once"
        );
        store.drop_fetch(&pending[1]).await.expect("dropped");
        assert!(store.fetches_of(&id, &slot).await.expect("f").is_empty());

        // A bot that ends its run keeps none; a replacement starts with none.
        write(progress(2, 3, true, vec![fetch(3, 0)]))
            .await
            .expect("ended");
        assert!(store.fetches_of(&id, &slot).await.expect("f").is_empty());
        let slot = attach(&store, &id).await;
        write(progress(1, 2, false, vec![fetch(2, 0)]))
            .await
            .expect("asked");
        attach(&store, &id).await;
        assert!(
            store.fetches_of(&id, &slot).await.expect("f").is_empty(),
            "attach clears"
        );
    }

    async fn bot_progress_moves_once_and_with_its_channel_change(db: TestDatabase) {
        let store = db.open().await;
        // A channel whose "bob" slot stands in for a bot slot: the row is what matters here.
        let (id, _) = new_channel(&store, 3).await;
        let slot = attach(&store, &id).await;
        let progress = |from, to| BotWrite::Progress {
            slot: slot.clone(),
            from: Seq(from),
            to: Seq(to),
            state: Some(serde_json::json!({"n": to})),
            failures: 0,
            disabled: false,
            ended: false,
            timers: Vec::new(),
            fetches: Vec::new(),
        };
        let first = progress(1, 2);
        store
            .update_channel_and_bots(&id, move |channel| {
                channel.post(
                    &person("alice").id,
                    None,
                    super::draft("reply", None),
                    Timestamp(9),
                )?;
                Ok(((), vec![first]))
            })
            .await
            .expect("progress from 1");
        // The same step again (a second runner, or a replay): refused, and its post with it.
        let again = progress(1, 2);
        let refused = store
            .update_channel_and_bots(&id, move |channel| {
                channel.post(
                    &person("alice").id,
                    None,
                    super::draft("twice", None),
                    Timestamp(9),
                )?;
                Ok(((), vec![again]))
            })
            .await;
        assert!(
            matches!(refused, Err(StoreError::Conflict(_))),
            "{refused:?}"
        );
        let bots = store.bots_of(&id).await.expect("bots");
        assert_eq!(bots[0].processed_seq, Seq(2));
        assert_eq!(bots[0].state, Some(serde_json::json!({"n": 2})));
        let channel = store.load_channel(&id).await.expect("channel");
        let messages = store
            .messages(
                &id,
                crate::Audience::Everything,
                Seq(0),
                channel.last_seq,
                100,
            )
            .await
            .expect("messages");
        assert_eq!(
            messages
                .iter()
                .filter(|m| m.body.text.as_deref() == Some("twice"))
                .count(),
            0,
            "the refused change wrote nothing"
        );
        assert_eq!(
            store.channels_with_bots_behind().await.expect("behind"),
            vec![id.clone()],
            "the bot has not seen the last post yet"
        );
    }

    crate::on_both_backends!(
        timers_are_set_replaced_cancelled_fired_once_and_go_with_their_bot,
        fetches_are_kept_with_their_reaction_answered_once_and_go_with_their_bot,
        bot_progress_moves_once_and_with_its_channel_change,
    );
}

async fn a_message_page_stops_at_its_byte_budget_and_says_more_follow(db: TestDatabase) {
    let store = db.open().await;
    let (id, _) = new_channel(&store, 21).await;
    let big = "x".repeat(10_000);
    for _ in 0..5 {
        let text = big.clone();
        store
            .update_channel(&id, move |channel| {
                channel.post(&person("alice").id, None, draft(&text, None), Timestamp(3))
            })
            .await
            .expect("post");
    }
    let last = store.load_channel(&id).await.expect("load").last_seq;
    let first_big = Seq(last.0 - 5);
    let page_of = |max_messages, max_bytes| {
        store.message_page(
            &id,
            Audience::Everything,
            first_big,
            last,
            PageBudget {
                max_messages,
                max_bytes,
            },
        )
    };
    // Each body is 10,002 bytes as JSON: two fit in 25,000, the third does not.
    let page = page_of(100, 25_000).await.expect("page");
    assert_eq!(page.messages.len(), 2);
    assert!(page.has_more);
    // A budget smaller than one message still returns that message.
    let page = page_of(100, 10).await.expect("page");
    assert_eq!(page.messages.len(), 1);
    assert!(page.has_more);
    // Everything fits: no more follow.
    let page = page_of(100, 1_000_000).await.expect("page");
    assert_eq!(page.messages.len(), 5);
    assert!(!page.has_more);
    // Full by count, with one more to come.
    let page = page_of(4, 1_000_000).await.expect("page");
    assert_eq!(page.messages.len(), 4);
    assert!(page.has_more);
}

mod keys {
    use crate::keys::ServerKeyRecord;
    use crate::testing::TestDatabase;
    use crate::{Store, StoreError};
    use domain::Timestamp;

    /// A key whose bytes are `n` repeated: the store does not read them.
    fn key(n: u8, at: i64) -> ServerKeyRecord {
        ServerKeyRecord {
            id: format!("ed25519:{n:016x}"),
            secret_hex: Some(format!("{n:02x}").repeat(32)),
            public_hex: format!("{:02x}", n.wrapping_add(100)).repeat(32),
            created_at: Timestamp(at),
            retired_at: None,
        }
    }

    async fn only_one_first_key_is_stored(db: TestDatabase) {
        let store = db.open().await;
        assert!(store.server_keys().await.expect("listed").is_empty());
        // Two starts racing: both try, one wins, both re-read the winner.
        let (first, second) = tokio::join!(
            store.insert_server_key(key(1, 10)),
            store.insert_server_key(key(2, 10))
        );
        let stored = [first.expect("answered"), second.expect("answered")];
        assert_eq!(stored.iter().filter(|stored| **stored).count(), 1);
        let keys = store.server_keys().await.expect("listed");
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0], if stored[0] { key(1, 10) } else { key(2, 10) });
    }

    async fn rotation_retires_the_active_key_erases_its_secret_and_keeps_its_public_half(
        db: TestDatabase,
    ) {
        let store = db.open().await;
        assert!(store.insert_server_key(key(1, 10)).await.expect("stored"));
        let retired = store
            .rotate_server_key(key(2, 20), Timestamp(20))
            .await
            .expect("rotated");
        assert_eq!(retired.as_deref(), Some(key(1, 10).id.as_str()));
        let retired = store
            .rotate_server_key(key(3, 30), Timestamp(30))
            .await
            .expect("rotated");
        assert_eq!(retired.as_deref(), Some(key(2, 20).id.as_str()));

        let keys = store.server_keys().await.expect("listed");
        let retired_one = ServerKeyRecord {
            secret_hex: None,
            retired_at: Some(Timestamp(20)),
            ..key(1, 10)
        };
        let retired_two = ServerKeyRecord {
            secret_hex: None,
            retired_at: Some(Timestamp(30)),
            ..key(2, 20)
        };
        assert_eq!(keys, vec![retired_one, retired_two, key(3, 30)]);
        // A first-key insert after rotations finds the active key and stores nothing.
        assert!(!store.insert_server_key(key(4, 40)).await.expect("answered"));
    }

    async fn a_failed_rotation_retires_nothing(db: TestDatabase) {
        let store = db.open().await;
        assert!(store.insert_server_key(key(1, 10)).await.expect("stored"));
        // The same public key again breaks the insert after the retirement ran: both undone.
        let clash = ServerKeyRecord {
            id: "ed25519:ffffffffffffffff".into(),
            ..key(1, 20)
        };
        assert!(matches!(
            store.rotate_server_key(clash, Timestamp(20)).await,
            Err(StoreError::Backend(_))
        ));
        assert_eq!(store.server_keys().await.expect("listed"), vec![key(1, 10)]);
    }

    async fn key_admin_rotates_beside_a_running_server(db: TestDatabase) {
        let server = db.open().await;
        assert!(server.insert_server_key(key(1, 10)).await.expect("stored"));
        let url = db.url();
        let admin = Store::open_for_key_admin(&url).await.expect("admin opens");
        admin
            .rotate_server_key(key(2, 20), Timestamp(20))
            .await
            .expect("rotated");
        let seen = server.server_keys().await.expect("listed");
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1], key(2, 20));
    }

    crate::on_both_backends!(
        only_one_first_key_is_stored,
        rotation_retires_the_active_key_erases_its_secret_and_keeps_its_public_half,
        a_failed_rotation_retires_nothing,
        key_admin_rotates_beside_a_running_server,
    );
}

/// A database written before the transcript existed: on open it is migrated, every message
/// gets its link (from genesis, in order), the channel is faithful from its last seq, and new
/// messages continue the chain. Old notices still decode and fold into a roster.
#[tokio::test]
async fn a_database_from_before_the_transcript_is_linked_on_open() {
    use sqlx::{ConnectOptions, Connection};
    use std::str::FromStr;

    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    {
        let mut conn = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
            .expect("url")
            .create_if_missing(true)
            .connect()
            .await
            .expect("connect");
        let mut old = sqlx::migrate!("./migrations/sqlite");
        old.migrations = std::borrow::Cow::Owned(
            old.migrations
                .iter()
                .filter(|migration| migration.version <= 5)
                .cloned()
                .collect(),
        );
        old.run(&mut conn).await.expect("the old schema");
        for statement in [
            "INSERT INTO channels (id, name, owner, created_at, closed) VALUES ('ch_00000000000000000000000a', 'Old', 'id-alice', 1, 0)",
            "INSERT INTO slots (channel_id, position, label, kind, admin, holder, holder_name, rejoin_hash, joined_at) VALUES ('ch_00000000000000000000000a', 0, 'alice', 'invite', 1, 'id-alice', 'alice', 'r1', 1)",
            "INSERT INTO slots (channel_id, position, label, kind) VALUES ('ch_00000000000000000000000a', 1, 'bob', 'invite')",
            r#"INSERT INTO messages (channel_id, seq, kind, sender, sender_name, body_text, body_data, recipient, at) VALUES ('ch_00000000000000000000000a', 1, 'system', NULL, 'system', 'alice created', '{"event":"created","name":"Old","by":"alice","slots":["invite:alice","invite:bob"]}', NULL, 1)"#,
            r#"INSERT INTO messages (channel_id, seq, kind, sender, sender_name, body_text, body_data, recipient, at) VALUES ('ch_00000000000000000000000a', 2, 'system', NULL, 'system', 'alice joined', '{"event":"joined","slot":"alice","name":"alice"}', NULL, 1)"#,
            "INSERT INTO messages (channel_id, seq, kind, sender, sender_name, body_text, body_data, recipient, at) VALUES ('ch_00000000000000000000000a', 3, 'user', 'alice', 'alice', 'hello', NULL, NULL, 2)",
            "INSERT INTO messages (channel_id, seq, kind, sender, sender_name, body_text, body_data, recipient, at) VALUES ('ch_00000000000000000000000a', 4, 'user', 'alice', 'alice', 'psst', NULL, 'bob', 3)",
        ] {
            sqlx::query(statement)
                .execute(&mut conn)
                .await
                .expect(statement);
        }
        conn.close().await.expect("close");
    }

    let store = Store::open(&url, StoreSettings::default())
        .await
        .expect("migrates");
    let id = ChannelId::parse("ch_00000000000000000000000a").expect("id");
    let channel = store.load_channel(&id).await.expect("load");
    assert_eq!(channel.faithful_from, Seq(4));
    assert!(
        !channel.reveal_private,
        "old channels keep their private messages private"
    );
    let messages = store
        .messages(&id, Audience::Everything, Seq(0), Seq(4), 10)
        .await
        .expect("messages");
    let mut link = domain::ChainHash::genesis();
    let mut roster = channel.empty_roster();
    for message in &messages {
        link = link.link(&id, message);
        assert_eq!(message.hash, link, "seq {}", message.seq.0);
        if let Some(notice) = message.notice() {
            roster.apply(&notice.expect("old notices decode"));
        }
    }
    assert_eq!(channel.head, link);
    assert_eq!(
        roster.players(),
        [(
            SlotLabel::parse("alice").expect("label"),
            "alice".to_owned()
        )]
    );

    // New messages continue the chain from the linked head.
    let (posted, _) = store
        .update_channel(&id, |channel| {
            channel
                .post(
                    &person("alice").id,
                    None,
                    draft("after", None),
                    Timestamp(5),
                )
                .map(|message| (message, ()))
        })
        .await
        .expect("post");
    assert_eq!(posted.0.hash, link.link(&id, &posted.0));
    drop(store);
    // Opening again links nothing more and changes nothing.
    let store = Store::open(&url, StoreSettings::default())
        .await
        .expect("reopen");
    let again = store
        .messages(&id, Audience::Everything, Seq(0), Seq(5), 10)
        .await
        .expect("messages");
    assert_eq!(again[..4], messages[..]);
    assert_eq!(again[4].hash, posted.0.hash);
}

/// A listed channel is in the lobby while it has a free player seat and is open, survives a
/// reopening of the store, and filters by listing.
async fn the_lobby_lists_open_seats_of_listed_channels(db: TestDatabase) {
    let store = db.open().await;
    let listed = |seed: u8, listing: Listing| {
        let spec =
            ChannelSpec::new("Lobby", &["invite:p1".into(), "invite:p2".into()]).expect("spec");
        let created = Channel::create(
            ChannelId::from_random([seed; 12]),
            ChannelSpec {
                listing: Some(listing),
                ..spec
            },
            &person("alice"),
            true,
            Timestamp(i64::from(seed)),
            &mut OsLikeSource::seeded(seed),
        );
        created.channel
    };
    let (first, second) = (listed(31, Listing::QuickMatch), listed(32, Listing::Listed));
    let (first_id, second_id) = (first.id.clone(), second.id.clone());
    for channel in [first, second] {
        store
            .insert_channel(channel, 100, Vec::new())
            .await
            .expect("insert");
    }
    let (unlisted, _) = new_channel(&store, 33).await;
    let all = store.lobby(None, None, 10).await.expect("lobby");
    assert_eq!(
        all,
        [first_id.clone(), second_id.clone()],
        "oldest first, unlisted {unlisted} out"
    );
    let quick = store
        .lobby(Some(Listing::QuickMatch), None, 10)
        .await
        .expect("lobby");
    assert_eq!(quick, std::slice::from_ref(&first_id));
    assert!(
        store
            .lobby(None, Some("chess"), 10)
            .await
            .expect("lobby")
            .is_empty(),
        "no bot here"
    );
    assert_eq!(store.lobby(None, None, 1).await.expect("lobby").len(), 1);
    store
        .update_channel(&first_id, |channel| {
            channel.take_open_seat(
                &person("bob"),
                None,
                Timestamp(40),
                &mut OsLikeSource::seeded(4),
            )
        })
        .await
        .expect("seated");
    assert_eq!(
        store.lobby(None, None, 10).await.expect("lobby"),
        std::slice::from_ref(&second_id),
        "a full channel leaves"
    );
    drop(store);
    let reopened = db.open().await;
    for (id, listing) in [
        (&first_id, Listing::QuickMatch),
        (&second_id, Listing::Listed),
    ] {
        let loaded = reopened.load_channel(id).await.expect("loaded");
        assert_eq!(loaded.listing, Some(listing), "the listing is stored");
    }
    reopened
        .update_channel(&second_id, |channel| {
            channel.close(&person("alice"), &[], Timestamp(50))
        })
        .await
        .expect("closed");
    assert!(
        reopened
            .lobby(None, None, 10)
            .await
            .expect("lobby")
            .is_empty(),
        "a closed channel leaves"
    );
}

crate::on_both_backends!(
    the_lobby_lists_open_seats_of_listed_channels,
    changes_survive_reopening,
    refused_changes_write_nothing,
    a_closed_channel_takes_no_new_message_even_from_a_rule_that_reopens_it,
    a_panicking_rule_does_not_stop_the_writer,
    concurrent_posts_get_consecutive_seqs,
    refused_changes_among_concurrent_ones_write_nothing,
    private_messages_reach_sender_and_recipient_only,
    open_channels_per_owner_are_capped,
    commits_wake_subscribers_and_unread_counts_follow_reads,
    a_message_page_stops_at_its_byte_budget_and_says_more_follow,
);

/// Leases on PostgreSQL: one holder at a time, renewable by its holder, free for another once
/// expired or given back. (SQLite has one process and grants every lease.)
#[tokio::test]
async fn a_lease_has_one_holder_until_it_expires_or_is_given_back() {
    let Some(db) = crate::testing::TestDatabase::postgres("leases").await else {
        return;
    };
    let store = db.open().await;
    let long = std::time::Duration::from_secs(60);
    let short = std::time::Duration::from_millis(200);
    assert!(store.take_lease("bots:a", "one", long).await.expect("take"));
    assert!(
        !store
            .take_lease("bots:a", "two", long)
            .await
            .expect("refused")
    );
    assert!(
        store
            .take_lease("bots:a", "one", short)
            .await
            .expect("renewed")
    );
    // Other leases are separate.
    assert!(
        store
            .take_lease("bots:b", "two", long)
            .await
            .expect("another")
    );
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(
        store
            .take_lease("bots:a", "two", long)
            .await
            .expect("expired, taken")
    );
    assert!(
        !store
            .take_lease("bots:a", "one", long)
            .await
            .expect("now two's")
    );
    store
        .release_lease("bots:a", "one")
        .await
        .expect("not one's: no-op");
    assert!(
        !store
            .take_lease("bots:a", "one", long)
            .await
            .expect("still two's")
    );
    store.release_leases_of("two").await.expect("given back");
    assert!(store.take_lease("bots:a", "one", long).await.expect("free"));
    assert!(store.take_lease("bots:b", "one", long).await.expect("free"));
}

/// Changes that queue on a channel's row lock each see what the one before committed: posts
/// from many threads at once on PostgreSQL get consecutive seqs. (A load in the same
/// statement as the lock would read the snapshot from before the wait, and repeat a seq.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_queued_on_the_row_lock_see_the_commit_before_them() {
    let Some(db) = crate::testing::TestDatabase::postgres("row lock").await else {
        return;
    };
    let store = db.open().await;
    let (id, _) = new_channel(&store, 6).await;
    let start = store.load_channel(&id).await.expect("load").last_seq;
    let posts: Vec<_> = (0..100)
        .map(|i| {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move {
                let posted = store
                    .update_channel(&id, move |channel| {
                        channel.post(
                            &person("alice").id,
                            None,
                            draft(&format!("m{i}"), None),
                            Timestamp(10),
                        )
                    })
                    .await;
                posted.map(|(message, _)| message.seq)
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for post in posts {
        seqs.push(post.await.expect("task").expect("post").0);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, ((start.0 + 1)..=(start.0 + 100)).collect::<Vec<_>>());
}

/// A PostgreSQL database from before channels kept their last seq and chain head on their row
/// (migration 3): on open, each channel's are filled in from its transcript, and new posts
/// continue from them.
#[tokio::test]
async fn a_postgres_channel_from_before_its_head_column_gets_it_on_open() {
    use sqlx::Connection;

    let Some(db) = crate::testing::TestDatabase::postgres("head column").await else {
        return;
    };
    let store = db.open().await;
    let (id, _) = new_channel(&store, 7).await;
    let (quiet, _) = new_channel(&store, 8).await;
    for text in ["one", "two"] {
        store
            .update_channel(&id, |channel| {
                channel.post(&person("alice").id, None, draft(text, None), Timestamp(5))
            })
            .await
            .expect("post");
    }
    let before = store.load_channel(&id).await.expect("load");
    let quiet_before = store.load_channel(&quiet).await.expect("load");
    drop(store);

    // Back to the schema of migration 2, then open again.
    let mut conn = sqlx::PgConnection::connect(&db.url())
        .await
        .expect("connect");
    for statement in [
        "ALTER TABLE channels DROP COLUMN last_seq, DROP COLUMN head, DROP COLUMN version",
        "DELETE FROM _sqlx_migrations WHERE version = 3",
    ] {
        sqlx::query(statement)
            .execute(&mut conn)
            .await
            .expect(statement);
    }
    conn.close().await.expect("close");

    let store = db.open().await;
    let after = store.load_channel(&id).await.expect("load");
    assert_eq!(
        (after.last_seq, &after.head),
        (before.last_seq, &before.head)
    );
    let quiet_after = store.load_channel(&quiet).await.expect("load");
    assert_eq!(
        (quiet_after.last_seq, &quiet_after.head),
        (quiet_before.last_seq, &quiet_before.head)
    );
    let (posted, _) = store
        .update_channel(&id, |channel| {
            channel.post(
                &person("alice").id,
                None,
                draft("three", None),
                Timestamp(6),
            )
        })
        .await
        .expect("post");
    assert_eq!(posted.seq, Seq(before.last_seq.0 + 1));
    assert_eq!(posted.hash, before.head.link(&id, &posted));
}

/// Two instances on one PostgreSQL database, each remembering the channels its groups of posts
/// left: a change made on the other instance, with a message or without one, is seen by the
/// next change here (a stale memory would repeat a seq, or lose the change).
#[tokio::test]
async fn a_change_on_another_instance_is_seen_by_the_next_change_here() {
    let Some(db) = crate::testing::TestDatabase::postgres("two instances").await else {
        return;
    };
    let (here, there) = (db.open().await, db.open().await);
    let (id, _) = new_channel(&here, 9).await;
    let post = |store: &Store, text: &'static str| {
        let (store, id) = (store.clone(), id.clone());
        async move {
            store
                .update_channel(&id, move |channel| {
                    let name = channel.name.clone();
                    let message =
                        channel.post(&person("alice").id, None, draft(text, None), Timestamp(7))?;
                    Ok((message.seq, name))
                })
                .await
                .expect("post")
                .0
        }
    };
    let (first, _) = post(&here, "one").await;
    let (second, _) = post(&here, "two").await;
    assert_eq!(second.0, first.0 + 1);

    // A post there: the next post here follows it.
    let (there_seq, _) = post(&there, "three").await;
    assert_eq!(there_seq.0, second.0 + 1);
    let (next, _) = post(&here, "four").await;
    assert_eq!(next.0, there_seq.0 + 1);

    // A change there that writes no message: the next change here starts from it.
    there
        .update_channel(&id, |channel| {
            channel.name = "Renamed".into();
            Ok(())
        })
        .await
        .expect("rename");
    let (after, name) = post(&here, "five").await;
    assert_eq!((after.0, name.as_str()), (next.0 + 1, "Renamed"));
    let loaded = here.load_channel(&id).await.expect("load");
    assert_eq!((loaded.last_seq, loaded.name.as_str()), (after, "Renamed"));
}

/// A channel row behind its messages (an instance from before migration 3 inserted one without
/// moving the row): the change that finds its seq taken fails, the row is brought up to the
/// messages, and the next change goes on from the true head.
#[tokio::test]
async fn a_channel_row_behind_its_messages_is_repaired_by_the_change_that_fails_on_it() {
    use sqlx::Connection;

    let Some(db) = crate::testing::TestDatabase::postgres("head repair").await else {
        return;
    };
    let store = db.open().await;
    let (id, _) = new_channel(&store, 10).await;
    alice_posts(&store, &id, "one").await.expect("post");
    alice_posts(&store, &id, "two").await.expect("post");
    let truth = store.load_channel(&id).await.expect("load");

    let mut conn = sqlx::PgConnection::connect(&db.url())
        .await
        .expect("connect");
    sqlx::query(
        "UPDATE channels c SET last_seq = before.seq, head = before.hash FROM \
         (SELECT seq, hash FROM messages WHERE channel_id = $1 ORDER BY seq DESC OFFSET 1 LIMIT 1) before \
         WHERE c.id = $1",
    )
    .bind(id.as_str())
    .execute(&mut conn)
    .await
    .expect("the row falls behind");
    conn.close().await.expect("close");

    // Another instance, which remembers nothing of the channel.
    let other = db.open().await;
    assert!(
        alice_posts(&other, &id, "three").await.is_err(),
        "the seq after the row's is taken"
    );
    let (posted, _) = alice_posts(&other, &id, "four").await.expect("repaired");
    assert_eq!(posted.seq, Seq(truth.last_seq.0 + 1));
    assert_eq!(posted.hash, truth.head.link(&id, &posted));
}
