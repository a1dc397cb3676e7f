//! Service behaviour over a real SQLite file with a fixed clock.

use std::sync::Arc;

use domain::ErrorCode;
use store::testing::TestDatabase;

use super::*;
use crate::testing::{FixedClock, parked, person};
use crate::{PendingSync, SyncPage, SyncRequest, SyncStep};

/// The same person holding a read-only token.
fn reader(name: &str) -> Caller {
    Caller {
        access: Access::Read,
        ..person(name)
    }
}

struct Fixture {
    service: Service,
    shutdown: CancellationToken,
    _database: TestDatabase,
}

async fn fixture(settings: ServiceSettings) -> Fixture {
    let database = TestDatabase::for_suite().await;
    let store = database.open().await;
    let shutdown = CancellationToken::new();
    Fixture {
        service: Service::new(
            store,
            settings,
            Arc::new(FixedClock),
            shutdown.clone(),
            crate::testing::workers().await,
        ),
        shutdown,
        _database: database,
    }
}

fn unlimited() -> ServiceSettings {
    ServiceSettings {
        rate_limit_per_second: 0,
        ..ServiceSettings::default()
    }
}

/// Alice creates a two-player channel and Bob joins it.
async fn two_players(service: &Service) -> String {
    let created = service
        .create_channel(
            &person("alice"),
            CreateRequest::new("Game", &["invite:alice".into(), "invite:bob".into()]),
        )
        .await
        .expect("create");
    let code = created.invites[0].1.clone();
    service
        .join_channel(&person("bob"), &code)
        .await
        .expect("join");
    created.channel.id.to_string()
}

/// Alice creates a three-player channel; Bob and Carol join it.
async fn three_players(service: &Service) -> String {
    let created = service
        .create_channel(
            &person("alice"),
            CreateRequest::new(
                "Three",
                &[
                    "invite:alice".into(),
                    "invite:bob".into(),
                    "invite:carol".into(),
                ],
            ),
        )
        .await
        .expect("create");
    for (label, code) in &created.invites {
        service
            .join_channel(&person(label.as_str()), code)
            .await
            .expect("join");
    }
    created.channel.id.to_string()
}

fn text(channel_id: &str, body: &str) -> PostRequest {
    PostRequest {
        channel_id: channel_id.into(),
        text: Some(body.into()),
        ..PostRequest::default()
    }
}

/// Reads the whole history as `who` and returns the cursor to wait from.
async fn head_of(service: &Service, who: &str, channel_id: &str) -> domain::Seq {
    service
        .sync_messages(&person(who), sync(channel_id, 0, 0))
        .await
        .expect("sync")
        .next_cursor
}

fn private(channel_id: &str, to: &str, body: &str) -> PostRequest {
    PostRequest {
        to: Some(to.into()),
        ..text(channel_id, body)
    }
}

fn sync(channel_id: &str, cursor: i64, wait_ms: u64) -> SyncRequest {
    SyncRequest {
        channel_id: channel_id.into(),
        cursor: Some(cursor),
        wait_ms: Some(wait_ms),
        ..SyncRequest::default()
    }
}

#[tokio::test]
async fn a_waiting_sync_is_woken_by_a_post() {
    let Fixture {
        service, _database, ..
    } = fixture(unlimited()).await;
    let channel = two_players(&service).await;
    let first = service
        .sync_messages(&person("bob"), sync(&channel, 0, 0))
        .await
        .expect("sync");
    assert!(
        first.channel.is_some(),
        "a first sync carries the channel view"
    );
    let cursor = first.next_cursor.0;

    let waiter = {
        let service = service.clone();
        let channel = channel.clone();
        tokio::spawn(async move {
            service
                .sync_messages(&person("bob"), sync(&channel, cursor, 30_000))
                .await
        })
    };
    parked(&service, &person("bob"), 1).await;
    service
        .post_message(&person("alice"), text(&channel, "your turn"))
        .await
        .expect("post");
    let page = waiter.await.expect("task").expect("sync");
    assert_eq!(page.messages.len(), 1);
    assert_eq!(page.messages[0].body.text.as_deref(), Some("your turn"));
    assert!(
        page.waited_ms < 20_000,
        "woken by the post, not by the 30 s deadline"
    );
    assert!(page.channel.is_none(), "no membership change, no view");
    assert_eq!(page.next_cursor, page.messages[0].seq);
}

#[tokio::test]
async fn an_idle_sync_times_out_with_an_empty_page() {
    let Fixture {
        service, _database, ..
    } = fixture(unlimited()).await;
    let channel = two_players(&service).await;
    let head = head_of(&service, "bob", &channel).await;
    let page = service
        .sync_messages(&person("bob"), sync(&channel, head.0, 50))
        .await
        .expect("sync");
    assert!(page.messages.is_empty());
    assert_eq!(page.next_cursor, head);
    assert!(page.waited_ms >= 50);
}

#[tokio::test]
async fn shutdown_releases_waiting_syncs() {
    let Fixture {
        service,
        shutdown,
        _database,
    } = fixture(unlimited()).await;
    let channel = two_players(&service).await;
    let head = head_of(&service, "bob", &channel).await;
    let waiter = {
        let service = service.clone();
        tokio::spawn(async move {
            service
                .sync_messages(&person("bob"), sync(&channel, head.0, 40_000))
                .await
        })
    };
    parked(&service, &person("bob"), 1).await;
    shutdown.cancel();
    let page = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("released well before its 40 s deadline")
        .expect("task")
        .expect("sync");
    assert!(page.messages.is_empty());
}

#[tokio::test]
async fn pages_are_bounded_and_resume_from_the_cursor() {
    let Fixture {
        service, _database, ..
    } = fixture(unlimited()).await;
    let channel = two_players(&service).await;
    for i in 0..7 {
        service
            .post_message(&person("alice"), text(&channel, &format!("m{i}")))
            .await
            .expect("post");
    }
    let mut cursor = 0;
    let mut seen = Vec::new();
    loop {
        let page = service
            .sync_messages(
                &person("bob"),
                SyncRequest {
                    limit: Some(3),
                    ..sync(&channel, cursor, 0)
                },
            )
            .await
            .expect("sync");
        seen.extend(page.messages.iter().map(|m| m.seq.0));
        cursor = page.next_cursor.0;
        if !page.has_more {
            break;
        }
    }
    let expected: Vec<i64> = (1..=seen.len() as i64).collect();
    assert_eq!(seen, expected, "every message once, in order");
    assert!(seen.len() >= 9, "system messages plus seven posts");
}

#[tokio::test]
async fn a_page_holds_at_most_200_messages_and_a_wait_above_45_s_is_cut_down() {
    let Fixture {
        service, _database, ..
    } = fixture(unlimited()).await;
    let channel = two_players(&service).await;
    for i in 0..domain::limits::MAX_SYNC_PAGE + 20 {
        service
            .post_message(&person("alice"), text(&channel, &format!("m{i}")))
            .await
            .expect("post");
    }
    let asked_too_much = SyncRequest {
        limit: Some(10_000),
        ..sync(&channel, 0, 120_000)
    };
    let page = service
        .sync_messages(&person("bob"), asked_too_much)
        .await
        .expect("sync");
    assert_eq!(page.messages.len(), domain::limits::MAX_SYNC_PAGE);
    assert!(page.has_more);
    assert_eq!(
        page.wait_above_cap,
        Some(120_000),
        "the answer says the wait was cut down"
    );
    let default = service
        .sync_messages(&person("bob"), sync(&channel, 0, 0))
        .await
        .expect("sync");
    assert_eq!(default.messages.len(), domain::limits::DEFAULT_SYNC_PAGE);
    assert_eq!(default.wait_above_cap, None);
    assert_eq!(
        domain::limits::sync_wait(Some(120_000)),
        Duration::from_millis(domain::limits::MAX_SYNC_WAIT_MS)
    );
    assert_eq!(
        domain::limits::sync_wait(None),
        Duration::from_millis(domain::limits::DEFAULT_SYNC_WAIT_MS)
    );
    assert_eq!(
        domain::limits::sync_wait(Some(10)),
        Duration::from_millis(10)
    );
}

#[tokio::test]
async fn closed_channels_do_not_count_toward_the_open_channel_cap() {
    let Fixture {
        service, _database, ..
    } = fixture(ServiceSettings {
        max_open_channels: 2,
        ..unlimited()
    })
    .await;
    let alice = person("alice");
    let create = || service.create_channel(&alice, CreateRequest::new("Cap", &["invite:a".into()]));
    let first = create().await.expect("first");
    create().await.expect("second");
    assert_eq!(
        create().await.unwrap_err().code(),
        ErrorCode::LimitExceeded,
        "a third open channel is over the cap"
    );
    crate::testing::close(&service, &alice, &first.channel.id).await;
    create()
        .await
        .expect("a closed channel frees its place under the cap");
    // Others' channels are theirs: Bob is not held back by Alice's.
    service
        .create_channel(
            &person("bob"),
            CreateRequest::new("Bob's", &["invite:b".into()]),
        )
        .await
        .expect("bob has his own cap");
}

#[tokio::test]
async fn pages_are_bounded_by_bytes_and_skip_nothing() {
    let Fixture {
        service, _database, ..
    } = fixture(unlimited()).await;
    let channel = two_players(&service).await;
    let head = head_of(&service, "bob", &channel).await;
    let big = "x".repeat(domain::limits::MAX_TEXT_BYTES);
    let posts = 20;
    for _ in 0..posts {
        service
            .post_message(&person("alice"), text(&channel, &big))
            .await
            .expect("post");
    }
    let mut cursor = head.0;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = service
            .sync_messages(
                &person("bob"),
                SyncRequest {
                    limit: Some(domain::limits::MAX_SYNC_PAGE),
                    ..sync(&channel, cursor, 0)
                },
            )
            .await
            .expect("sync");
        pages += 1;
        let bytes: usize = page.messages.iter().map(|m| m.body.encoded_len()).sum();
        assert!(
            bytes <= domain::limits::MAX_SYNC_PAGE_BYTES,
            "a page of {} messages carries {bytes} bytes of bodies",
            page.messages.len()
        );
        assert!(!page.messages.is_empty(), "every page moves forward");
        if page.has_more {
            assert_eq!(
                Some(page.next_cursor),
                page.messages.last().map(|m| m.seq),
                "a partial page's cursor stops at its last message"
            );
        }
        seen.extend(page.messages.iter().map(|m| m.seq.0));
        cursor = page.next_cursor.0;
        if !page.has_more {
            break;
        }
    }
    let expected: Vec<i64> = (head.0 + 1..=head.0 + posts).collect();
    assert_eq!(seen, expected, "every message once, in order");
    assert!(pages >= 2, "20 messages of 16 KiB do not fit one page");
}

fn code<T: std::fmt::Debug>(result: Result<T, ServiceError>) -> ErrorCode {
    result.unwrap_err().code()
}

#[tokio::test]
async fn strangers_are_refused_everywhere() {
    let Fixture {
        service, _database, ..
    } = fixture(unlimited()).await;
    let channel = two_players(&service).await;
    let mallory = person("mallory");
    assert_eq!(
        code(service.get_channel(&mallory, &channel).await),
        ErrorCode::NotMember
    );
    assert_eq!(
        code(service.post_message(&mallory, text(&channel, "hi")).await),
        ErrorCode::NotMember
    );
    assert_eq!(
        code(service.sync_messages(&mallory, sync(&channel, 0, 0)).await),
        ErrorCode::NotMember
    );
    assert_eq!(
        code(service.leave_channel(&mallory, &channel, None).await),
        ErrorCode::NotMember
    );
    let kick = AdminRequest {
        channel_id: channel.clone(),
        op: "kick".into(),
        slot: Some("bob".into()),
        ..AdminRequest::default()
    };
    assert_eq!(
        code(service.update_channel(&mallory, kick).await),
        ErrorCode::NotMember
    );
    assert_eq!(
        code(service.get_channel(&mallory, "ch_nope").await),
        ErrorCode::ChannelNotFound
    );
    assert_eq!(
        code(service.join_channel(&mallory, "inv_0123").await),
        ErrorCode::InviteInvalid
    );
    assert!(
        service
            .list_channels(&mallory)
            .await
            .expect("list")
            .is_empty()
    );
}

/// NUL is refused in text (PostgreSQL cannot store it) but is an ordinary escape inside data,
/// which is stored as JSON text: it comes back unchanged on either backend.
#[tokio::test]
async fn a_nul_inside_data_round_trips() {
    let Fixture {
        service, _database, ..
    } = fixture(unlimited()).await;
    let channel = two_players(&service).await;
    let head = head_of(&service, "bob", &channel).await;
    let data = serde_json::json!({ "bytes": "a\u{0}b" });
    let serde_json::Value::Object(data) = data else {
        unreachable!("an object")
    };
    service
        .post_message(
            &person("alice"),
            PostRequest {
                channel_id: channel.clone(),
                data: Some(data.clone()),
                ..PostRequest::default()
            },
        )
        .await
        .expect("NUL inside a JSON string is data like any other");
    let page = service
        .sync_messages(&person("bob"), sync(&channel, head.0, 0))
        .await
        .expect("sync");
    assert_eq!(page.messages.len(), 1);
    assert_eq!(page.messages[0].body.data.as_ref(), Some(&data));
}

#[tokio::test]
async fn arguments_are_validated_before_anything_is_written() {
    let Fixture {
        service, _database, ..
    } = fixture(unlimited()).await;
    let channel = two_players(&service).await;
    let alice = person("alice");
    let before = service
        .get_channel(&alice, &channel)
        .await
        .expect("get")
        .last_seq;
    let bad_posts = [
        PostRequest {
            kind: Some("system".into()),
            ..text(&channel, "I am the referee")
        },
        PostRequest {
            kind: Some("bot".into()),
            ..text(&channel, "I am the referee")
        },
        PostRequest {
            text: None,
            ..text(&channel, "")
        },
        PostRequest {
            text: Some("x".repeat(domain::limits::MAX_TEXT_BYTES + 1)),
            ..text(&channel, "")
        },
        PostRequest {
            text: Some("before\0after".into()),
            ..text(&channel, "")
        },
        PostRequest {
            to: Some("Not A Slot".into()),
            ..text(&channel, "hi")
        },
        PostRequest {
            slot: Some("bob".into()),
            ..text(&channel, "as bob")
        },
    ];
    let codes: Vec<&str> = {
        let mut codes = Vec::new();
        for post in bad_posts {
            codes.push(
                service
                    .post_message(&alice, post)
                    .await
                    .unwrap_err()
                    .code()
                    .as_str(),
            );
        }
        codes
    };
    assert_eq!(
        codes,
        [
            "INVALID_ARGUMENT",
            "INVALID_ARGUMENT",
            "INVALID_ARGUMENT",
            "LIMIT_EXCEEDED",
            "INVALID_ARGUMENT",
            "INVALID_ARGUMENT",
            "NOT_MEMBER"
        ]
    );
    assert_eq!(
        service
            .get_channel(&alice, &channel)
            .await
            .expect("get")
            .last_seq,
        before,
        "nothing written"
    );
    let ahead = service
        .sync_messages(&alice, sync(&channel, before.0 + 10, 0))
        .await
        .unwrap_err();
    assert_eq!(ahead.code(), ErrorCode::InvalidArgument);
    let unknown_op = AdminRequest {
        channel_id: channel.clone(),
        op: "explode".into(),
        ..AdminRequest::default()
    };
    assert_eq!(
        service
            .update_channel(&alice, unknown_op)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::InvalidArgument
    );
}

#[tokio::test]
async fn a_read_only_caller_reads_but_never_writes() {
    let Fixture {
        service, _database, ..
    } = fixture(unlimited()).await;
    let id = two_players(&service).await;
    let refused = |result: Result<_, ServiceError>| {
        matches!(result, Err(ServiceError::InsufficientScope)).then_some(())
    };
    let alice = reader("alice");
    refused(
        service
            .create_channel(&alice, CreateRequest::new("Mine", &["invite:a".into()]))
            .await
            .map(drop),
    )
    .expect("create_channel writes");
    refused(
        service
            .post_message(
                &alice,
                PostRequest {
                    channel_id: id.clone(),
                    text: Some("hi".into()),
                    ..PostRequest::default()
                },
            )
            .await
            .map(drop),
    )
    .expect("post_message writes");
    refused(
        service
            .update_channel(
                &alice,
                AdminRequest {
                    channel_id: id.clone(),
                    op: "close".into(),
                    ..AdminRequest::default()
                },
            )
            .await
            .map(drop),
    )
    .expect("update_channel writes");
    refused(service.leave_channel(&alice, &id, None).await.map(drop)).expect("leave writes");
    refused(service.join_channel(&alice, "inv_whatever").await.map(drop))
        .expect("join_channel is refused for scope before the code is even looked at");
    refused(
        service
            .attach_bot(&alice, &id, None, crate::BotRequest::default())
            .await
            .map(drop),
    )
    .expect("attach_bot writes");
    // Nothing was written: the channel still has its two seats and no message from alice.
    let channel = service
        .get_channel(&alice, &id)
        .await
        .expect("reading is allowed");
    assert!(!channel.closed);
    service
        .list_channels(&alice)
        .await
        .expect("listing is allowed");
    service.list_bots(&alice).expect("the catalog is allowed");
}

#[tokio::test]
async fn rate_limits_apply_per_principal() {
    let Fixture {
        service, _database, ..
    } = fixture(ServiceSettings {
        rate_limit_per_second: 1,
        ..ServiceSettings::default()
    })
    .await;
    let alice = person("alice").principal.id;
    // A burst of two, then refusal with a retry delay.
    service.admit_request(&alice).expect("first");
    service.admit_request(&alice).expect("second");
    let refused = service.admit_request(&alice).unwrap_err();
    assert_eq!(refused.code(), ErrorCode::RateLimited);
    assert!(matches!(refused, ServiceError::RateLimited { retry_after_ms } if retry_after_ms > 0));
    service
        .admit_request(&person("bob").principal.id)
        .expect("others are unaffected");
}

#[tokio::test]
async fn waiting_syncs_per_principal_are_capped() {
    let Fixture {
        service, _database, ..
    } = fixture(ServiceSettings {
        max_waiting_syncs: 2,
        ..unlimited()
    })
    .await;
    let channel = two_players(&service).await;
    let head = head_of(&service, "bob", &channel).await;
    let mut waiters = Vec::new();
    for _ in 0..2 {
        let (service, channel) = (service.clone(), channel.clone());
        waiters.push(tokio::spawn(async move {
            service
                .sync_messages(&person("bob"), sync(&channel, head.0, 30_000))
                .await
        }));
    }
    parked(&service, &person("bob"), 2).await;
    let third = service
        .sync_messages(&person("bob"), sync(&channel, head.0, 30_000))
        .await
        .unwrap_err();
    assert_eq!(third.code(), ErrorCode::LimitExceeded);
    service
        .post_message(&person("alice"), text(&channel, "release"))
        .await
        .expect("post");
    for waiter in waiters {
        assert_eq!(waiter.await.expect("task").expect("sync").messages.len(), 1);
    }
}

#[tokio::test]
async fn admin_operations_reissue_and_revoke_invites() {
    let Fixture {
        service, _database, ..
    } = fixture(unlimited()).await;
    let channel = two_players(&service).await;
    let alice = person("alice");
    let request = |op: &str, slot: Option<&str>| AdminRequest {
        channel_id: channel.clone(),
        op: op.into(),
        slot: slot.map(str::to_owned),
        name: Some("Renamed".into()),
        admin: None,
    };
    let (renamed, _) = service
        .update_channel(&alice, request("rename", None))
        .await
        .expect("rename");
    assert_eq!(renamed.name, "Renamed");
    let (_, invite) = service
        .update_channel(&alice, request("yield_slot", Some("bob")))
        .await
        .expect("yield");
    let (_, code) = invite.expect("a fresh invite");
    let bob_again = service
        .post_message(&person("bob"), text(&channel, "still in?"))
        .await
        .unwrap_err();
    assert_eq!(bob_again.code(), ErrorCode::NotMember);
    let carol = service
        .join_channel(&person("carol"), &code)
        .await
        .expect("carol joins");
    assert_eq!(carol.slot.as_str(), "bob");
    let replay = service
        .join_channel(&person("dave"), &code)
        .await
        .unwrap_err();
    assert_eq!(replay.code(), ErrorCode::InviteInvalid);
    service
        .update_channel(&alice, request("close", None))
        .await
        .expect("close");
    let late = service
        .post_message(&alice, text(&channel, "after close"))
        .await
        .unwrap_err();
    assert_eq!(late.code(), ErrorCode::ChannelClosed);
}

#[tokio::test]
async fn woken_waiters_never_see_private_messages_of_other_seats() {
    let Fixture {
        service, _database, ..
    } = fixture(unlimited()).await;
    let channel = three_players(&service).await;
    let head = head_of(&service, "bob", &channel).await;
    // Parked for certain: the sync found nothing and holds its subscription.
    let parked = bob_waits(&service, &channel, head, 30_000).await;
    let secret = private(&channel, "carol", "for carol only");
    service
        .post_message(&person("alice"), secret)
        .await
        .expect("private post");
    let still_waiting = pending(
        service
            .resume_sync(parked.wait().await)
            .await
            .expect("resume after the private post"),
    );
    service
        .post_message(&person("alice"), text(&channel, "for everyone"))
        .await
        .expect("public post");
    let page = ready(
        service
            .resume_sync(still_waiting.wait().await)
            .await
            .expect("resume after the public post"),
    );
    let texts: Vec<_> = page
        .messages
        .iter()
        .filter_map(|m| m.body.text.clone())
        .collect();
    assert_eq!(texts, ["for everyone"]);
    let carol = service
        .sync_messages(&person("carol"), sync(&channel, head.0, 0))
        .await
        .expect("sync");
    assert_eq!(carol.messages.len(), 2, "the recipient sees both");

    // Read progress reaches unread counts with the background flush (every 0.5 s).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let listing = service.list_channels(&person("carol")).await.expect("list");
        if listing[0].seats[0].unread == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "carol's read progress never reached her unread count: {listing:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How Bob's seat comes to be free for Carol.
#[derive(Debug, Clone, Copy)]
enum Vacate {
    /// Alice yields it, which issues a fresh invite.
    Yield,
    /// Alice kicks Bob, then reissues the invite.
    KickThenReissue,
    /// Bob leaves, then Alice reissues the invite.
    LeaveThenReissue,
}

/// Frees Bob's seat as `how` says and returns the invite that fills it again.
async fn vacate_bobs_seat(service: &Service, channel: &str, how: Vacate) -> String {
    let admin = |op: &str| AdminRequest {
        channel_id: channel.into(),
        op: op.into(),
        slot: Some("bob".into()),
        ..AdminRequest::default()
    };
    let alice = person("alice");
    let invite = match how {
        Vacate::Yield => service.update_channel(&alice, admin("yield_slot")).await,
        Vacate::KickThenReissue => {
            service
                .update_channel(&alice, admin("kick"))
                .await
                .expect("kick");
            service
                .update_channel(&alice, admin("reissue_invite"))
                .await
        }
        Vacate::LeaveThenReissue => {
            service
                .leave_channel(&person("bob"), channel, None)
                .await
                .expect("leave");
            service
                .update_channel(&alice, admin("reissue_invite"))
                .await
        }
    };
    let (_, invite) = invite.expect("the seat is opened");
    invite.expect("a fresh invite").1
}

#[tokio::test]
async fn a_new_holder_of_a_slot_does_not_inherit_its_private_messages() {
    for how in [
        Vacate::Yield,
        Vacate::KickThenReissue,
        Vacate::LeaveThenReissue,
    ] {
        let Fixture {
            service, _database, ..
        } = fixture(unlimited()).await;
        let channel = two_players(&service).await;
        // Both sides of the seat's private history: received, and sent by its holder.
        service
            .post_message(&person("alice"), private(&channel, "bob", "for bob's eyes"))
            .await
            .expect("private post to bob");
        service
            .post_message(
                &person("bob"),
                private(&channel, "alice", "from bob, privately"),
            )
            .await
            .expect("private post from bob");
        let code = vacate_bobs_seat(&service, &channel, how).await;
        service
            .join_channel(&person("carol"), &code)
            .await
            .expect("carol takes bob's slot");
        service
            .post_message(&person("alice"), private(&channel, "bob", "for carol now"))
            .await
            .expect("private post to the new holder");
        // Counted before carol reads anything, so no read progress is pending.
        let listing = service.list_channels(&person("carol")).await.expect("list");
        let unread = listing[0].seats[0].unread;
        let history = service
            .sync_messages(&person("carol"), sync(&channel, 0, 0))
            .await
            .expect("sync");
        let private_texts: Vec<_> = history
            .messages
            .iter()
            .filter(|m| m.to.is_some())
            .filter_map(|m| m.body.text.as_deref())
            .collect();
        assert_eq!(
            private_texts,
            ["for carol now"],
            "{how:?}: the previous holder's private messages, sent or received, stay theirs"
        );
        assert!(history.messages.len() > 3, "the public history is readable");
        assert_eq!(
            unread as usize,
            history.messages.len(),
            "{how:?}: unread counts agree with what is visible"
        );
        // The domain's rule agrees with the store's query.
        let everything = service
            .inner
            .store
            .messages(
                &domain::ChannelId::parse(&channel).expect("id"),
                store::Audience::Everything,
                domain::Seq(0),
                domain::Seq(i64::MAX),
                1_000,
            )
            .await
            .expect("everything");
        let loaded = service
            .get_channel(&person("carol"), &channel)
            .await
            .expect("channel");
        let since = loaded
            .slots
            .iter()
            .find_map(|slot| slot.seat.as_ref().filter(|_| slot.label.as_str() == "bob"))
            .expect("carol's seat")
            .since;
        let bob = domain::SlotLabel::parse("bob").expect("label");
        let by_rule: Vec<_> = everything
            .iter()
            .filter(|m| m.visible_to(&bob, since))
            .map(|m| m.seq)
            .collect();
        let by_query: Vec<_> = history.messages.iter().map(|m| m.seq).collect();
        assert_eq!(
            by_rule, by_query,
            "{how:?}: Message::visible_to and the sync query agree"
        );
    }
}

fn pending(step: SyncStep) -> PendingSync {
    match step {
        SyncStep::Pending(pending) => pending,
        SyncStep::Ready(page) => panic!("expected a pending sync, got {page:?}"),
    }
}

fn ready(step: SyncStep) -> SyncPage {
    match step {
        SyncStep::Ready(page) => page,
        SyncStep::Pending(pending) => panic!("expected a page, got {pending:?}"),
    }
}

/// Bob's sync from `head`, which has to wait.
async fn bob_waits(
    service: &Service,
    channel: &str,
    head: domain::Seq,
    wait_ms: u64,
) -> PendingSync {
    pending(
        service
            .start_sync(&person("bob"), sync(channel, head.0, wait_ms))
            .await
            .expect("start"),
    )
}

#[tokio::test]
async fn a_sync_run_in_steps_parks_and_resumes_with_the_post() {
    let Fixture {
        service, _database, ..
    } = fixture(unlimited()).await;
    let channel = two_players(&service).await;
    let head = head_of(&service, "bob", &channel).await;
    let parked = bob_waits(&service, &channel, head, 30_000).await;
    // The time under test: waited_ms must count it although the resume comes after.
    tokio::time::sleep(Duration::from_millis(100)).await;
    service
        .post_message(&person("alice"), text(&channel, "your move"))
        .await
        .expect("post");
    let page = ready(
        service
            .resume_sync(parked.wait().await)
            .await
            .expect("resume"),
    );
    assert_eq!(page.messages.len(), 1);
    assert_eq!(page.next_cursor.0, head.0 + 1);
    assert!(
        page.waited_ms >= 100,
        "waited_ms counts from the start of the sync, not from the resume: {}",
        page.waited_ms
    );
}

#[tokio::test]
async fn a_resumed_sync_that_still_sees_nothing_stays_pending() {
    let Fixture {
        service, _database, ..
    } = fixture(unlimited()).await;
    let channel = three_players(&service).await;
    let head = head_of(&service, "bob", &channel).await;
    // The subscription is taken when the sync parks: a post before `wait()` still wakes it.
    let parked = bob_waits(&service, &channel, head, 30_000).await;
    // The channel advances, but Bob's seat sees nothing new.
    service
        .post_message(
            &person("alice"),
            private(&channel, "carol", "for carol only"),
        )
        .await
        .expect("post");
    pending(
        service
            .resume_sync(parked.wait().await)
            .await
            .expect("resume"),
    );
}

#[tokio::test]
async fn a_resumed_sync_checks_the_seat_again() {
    let Fixture {
        service, _database, ..
    } = fixture(unlimited()).await;
    let channel = two_players(&service).await;
    let head = head_of(&service, "bob", &channel).await;
    // The subscription is taken when the sync parks: a post before `wait()` still wakes it.
    let parked = bob_waits(&service, &channel, head, 30_000).await;
    let kick = AdminRequest {
        channel_id: channel.clone(),
        op: "kick".into(),
        slot: Some("bob".into()),
        name: None,
        admin: None,
    };
    service
        .update_channel(&person("alice"), kick)
        .await
        .expect("kick");
    let refused = service.resume_sync(parked.wait().await).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::NotMember);
}

#[tokio::test]
async fn a_pending_sync_holds_its_waiting_slot_until_dropped() {
    let Fixture {
        service, _database, ..
    } = fixture(ServiceSettings {
        max_waiting_syncs: 1,
        ..unlimited()
    })
    .await;
    let channel = two_players(&service).await;
    let head = head_of(&service, "bob", &channel).await;
    let bob = person("bob");
    let start = || service.start_sync(&bob, sync(&channel, head.0, 30_000));
    let first = pending(start().await.expect("first"));
    assert_eq!(
        start().await.unwrap_err().code(),
        ErrorCode::LimitExceeded,
        "a parked sync counts as waiting"
    );
    drop(first);
    pending(
        start()
            .await
            .expect("the slot is free again once the first is abandoned"),
    );
}

#[tokio::test]
async fn a_pending_sync_answers_empty_at_its_deadline_or_at_shutdown() {
    let Fixture {
        service,
        shutdown,
        _database,
    } = fixture(unlimited()).await;
    let channel = two_players(&service).await;
    let head = head_of(&service, "bob", &channel).await;
    let short = bob_waits(&service, &channel, head, 50).await;
    let page = ready(
        service
            .resume_sync(short.wait().await)
            .await
            .expect("resume"),
    );
    assert!(page.messages.is_empty());
    assert_eq!(page.next_cursor, head);

    let long = bob_waits(&service, &channel, head, 30_000).await;
    shutdown.cancel();
    let page = ready(
        service
            .resume_sync(long.wait().await)
            .await
            .expect("resume"),
    );
    assert!(page.messages.is_empty());
}

#[tokio::test]
async fn an_instance_is_ready_until_it_shuts_down() {
    let Fixture {
        service,
        shutdown,
        _database,
    } = fixture(unlimited()).await;
    assert_eq!(service.check_ready().await, Ok(()));
    shutdown.cancel();
    assert_eq!(service.check_ready().await, Err(NotReady::ShuttingDown));
}
