use super::*;
use crate::error::ErrorCode;
use crate::secret::tests::CountingSource;

const NOW: Timestamp = Timestamp(1_700_000_000_000);

fn person(name: &str) -> Principal {
    Principal {
        id: PrincipalId::new(format!("id-{name}")),
        display_name: name.to_owned(),
    }
}

fn label(raw: &str) -> SlotLabel {
    SlotLabel::parse(raw).expect("valid test label")
}

fn text(body: &str) -> Draft {
    Draft {
        body: Body::new(Some(body.into()), None).expect("valid body"),
        to: None,
        nonce: crate::chain::Nonce([9; 16]),
    }
}

struct Game {
    channel: Channel,
    invites: Vec<(SlotLabel, String)>,
    alice_token: String,
    secrets: CountingSource,
}

/// Alice creates a referee channel with seats for herself, Bob and a spectator.
fn game() -> Game {
    let mut secrets = CountingSource::default();
    let spec = ChannelSpec::new(
        "Guess",
        &[
            "bot:referee".into(),
            "invite:alice".into(),
            "invite:bob".into(),
            "spectator:audience".into(),
        ],
    )
    .expect("valid spec");
    let created = Channel::create(
        ChannelId::from_random([1; 12]),
        spec,
        &person("alice"),
        true,
        NOW,
        &mut secrets,
    );
    let joined = created.joined.expect("creator joins by default");
    assert_eq!(joined.slot, label("alice"));
    Game {
        channel: created.channel,
        invites: created.invites,
        alice_token: joined.rejoin_token,
        secrets,
    }
}

impl Game {
    fn invite(&self, slot: &str) -> String {
        self.invites
            .iter()
            .find(|(label, _)| label.as_str() == slot)
            .map(|(_, code)| code.clone())
            .expect("invite exists")
    }
}

#[test]
fn creating_seats_the_creator_as_admin_and_invites_the_rest() {
    let mut game = game();
    let labels: Vec<&str> = game.invites.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["bob", "audience"]);
    let alice = game.channel.slot(&label("alice")).unwrap();
    assert!(alice.admin && alice.held_by(&person("alice").id));
    assert!(game.channel.is_admin(&person("alice").id));
    let messages = game.channel.take_new_messages();
    assert_eq!(
        messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [Seq(1), Seq(2)]
    );
    assert!(messages.iter().all(|m| m.kind == MessageKind::System));
    assert_eq!(game.channel.last_seq, Seq(2));
}

#[test]
fn creating_without_joining_keeps_the_creator_admin_without_a_seat() {
    let spec = ChannelSpec::new("Setup", &["invite:a".into(), "invite:b".into()]).unwrap();
    let created = Channel::create(
        ChannelId::from_random([2; 12]),
        spec,
        &person("host"),
        false,
        NOW,
        &mut CountingSource::default(),
    );
    assert!(created.joined.is_none());
    assert_eq!(created.invites.len(), 2);
    assert!(created.channel.is_admin(&person("host").id));
    assert_eq!(
        created.channel.acting_seat(&person("host").id, None),
        Err(DomainError::NotMember)
    );
}

#[test]
fn specs_are_validated() {
    let cases: &[(&str, &[&str], ErrorCode)] = &[
        ("", &["invite:a"], ErrorCode::InvalidArgument),
        ("x", &["bot:ref"], ErrorCode::InvalidArgument),
        ("x", &["invite:a", "invite:a"], ErrorCode::InvalidArgument),
        ("x", &["player:a"], ErrorCode::InvalidArgument),
        ("x", &["alice"], ErrorCode::InvalidArgument),
        ("x", &["invite:Alice"], ErrorCode::InvalidArgument),
    ];
    for (name, slots, code) in cases {
        let slots: Vec<String> = slots.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            ChannelSpec::new(name, &slots).unwrap_err().code(),
            *code,
            "{name} {slots:?}"
        );
    }
    // At the limits: 32 slots, a name of 100 characters (multi-byte ones count once).
    let most: Vec<String> = (0..MAX_SLOTS_PER_CHANNEL)
        .map(|i| format!("invite:p{i}"))
        .collect();
    let longest_name = "é".repeat(crate::limits::MAX_CHANNEL_NAME_CHARS);
    let spec = ChannelSpec::new(&longest_name, &most).expect("a channel at every limit");
    assert_eq!(spec.slots.len(), MAX_SLOTS_PER_CHANNEL);
    let longest_label = "l".repeat(crate::limits::MAX_SLOT_LABEL_CHARS);
    ChannelSpec::new("x", &[format!("invite:{longest_label}")]).expect("the longest label");
    assert_eq!(
        ChannelSpec::new("x", &[format!("invite:{longest_label}l")])
            .unwrap_err()
            .code(),
        ErrorCode::InvalidArgument,
        "one character more"
    );
    let longest_display = "ü".repeat(crate::limits::MAX_DISPLAY_NAME_CHARS);
    crate::names::check_display_name(&longest_display).expect("the longest display name");
    assert!(crate::names::check_display_name(&format!("{longest_display}ü")).is_err());
    let too_many: Vec<String> = (0..=MAX_SLOTS_PER_CHANNEL)
        .map(|i| format!("invite:p{i}"))
        .collect();
    assert_eq!(
        ChannelSpec::new("x", &too_many).unwrap_err().code(),
        ErrorCode::LimitExceeded
    );
    let long_name = "n".repeat(crate::limits::MAX_CHANNEL_NAME_CHARS + 1);
    assert_eq!(
        ChannelSpec::new(&long_name, &["invite:a".into()])
            .unwrap_err()
            .code(),
        ErrorCode::LimitExceeded
    );
}

#[test]
fn an_invite_works_once() {
    let mut game = game();
    let code = game.invite("bob");
    let joined = game
        .channel
        .redeem(&code, &person("bob"), NOW, &mut game.secrets)
        .unwrap();
    assert_eq!(joined.slot, label("bob"));
    assert_eq!(
        game.channel
            .redeem(&code, &person("mallory"), NOW, &mut game.secrets),
        Err(DomainError::InviteInvalid)
    );
    assert_eq!(
        game.channel
            .redeem(&code, &person("bob"), NOW, &mut game.secrets),
        Err(DomainError::InviteInvalid)
    );
    for junk in ["", "inv_00", "rejoin_00", "ch_1234"] {
        assert_eq!(
            game.channel
                .redeem(junk, &person("mallory"), NOW, &mut game.secrets),
            Err(DomainError::InviteInvalid)
        );
    }
}

#[test]
fn a_rejoin_token_moves_the_seat_and_the_old_holder_loses_it() {
    let mut game = game();
    let token = game.alice_token.clone();
    let phone = person("alice-on-phone");
    let joined = game
        .channel
        .redeem(&token, &phone, NOW, &mut game.secrets)
        .unwrap();
    assert_eq!(joined.slot, label("alice"));
    assert_eq!(joined.rejoin_token, token);
    assert!(
        game.channel
            .slot(&label("alice"))
            .unwrap()
            .held_by(&phone.id)
    );
    assert_eq!(
        game.channel
            .post(&person("alice").id, None, text("still here?"), NOW),
        Err(DomainError::NotMember)
    );
    assert!(
        game.channel
            .post(&phone.id, None, text("moved"), NOW)
            .is_ok()
    );
    // Redeeming again by the holder changes nothing and records nothing.
    game.channel.take_new_messages();
    game.channel
        .redeem(&token, &phone, NOW, &mut game.secrets)
        .unwrap();
    assert!(game.channel.take_new_messages().is_empty());
}

#[test]
fn one_person_with_two_seats_must_name_the_slot() {
    let mut game = game();
    let alice = person("alice");
    let code = game.invite("bob");
    game.channel
        .redeem(&code, &alice, NOW, &mut game.secrets)
        .unwrap();
    let err = game
        .channel
        .post(&alice.id, None, text("hi"), NOW)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::SlotRequired);
    assert!(err.hint().contains("alice") && err.hint().contains("bob"));
    let message = game
        .channel
        .post(&alice.id, Some(&label("bob")), text("hi"), NOW)
        .unwrap();
    assert_eq!(message.sender, Some(label("bob")));
}

#[test]
fn posting_checks_membership_seat_kind_and_recipient() {
    let mut game = game();
    let stranger = person("mallory");
    assert_eq!(
        game.channel.post(&stranger.id, None, text("hi"), NOW),
        Err(DomainError::NotMember)
    );
    assert_eq!(
        game.channel.post(
            &person("alice").id,
            Some(&label("bob")),
            text("as bob"),
            NOW
        ),
        Err(DomainError::NotMember)
    );
    assert_eq!(
        game.channel
            .post(&person("alice").id, Some(&label("nobody")), text("x"), NOW)
            .unwrap_err()
            .code(),
        ErrorCode::SlotNotFound
    );
    let code = game.invite("audience");
    let viewer = person("viewer");
    game.channel
        .redeem(&code, &viewer, NOW, &mut game.secrets)
        .unwrap();
    assert_eq!(
        game.channel.post(&viewer.id, None, text("boo"), NOW),
        Err(DomainError::ReadOnlySeat)
    );
    let private = Draft {
        to: Some(label("ghost")),
        ..text("psst")
    };
    assert_eq!(
        game.channel
            .post(&person("alice").id, None, private, NOW)
            .unwrap_err()
            .code(),
        ErrorCode::SlotNotFound
    );
    let to_self = Draft {
        to: Some(label("alice")),
        ..text("me")
    };
    assert_eq!(
        game.channel
            .post(&person("alice").id, None, to_self, NOW)
            .unwrap_err()
            .code(),
        ErrorCode::InvalidArgument
    );
}

#[test]
fn messages_are_numbered_without_gaps() {
    let mut game = game();
    let start = game.channel.last_seq;
    let first = game
        .channel
        .post(&person("alice").id, None, text("1"), NOW)
        .unwrap();
    let second = game
        .channel
        .post(&person("alice").id, None, text("2"), NOW)
        .unwrap();
    assert_eq!(first.seq, start.next());
    assert_eq!(second.seq, first.seq.next());
    assert_eq!(first.kind, MessageKind::User);
}

#[test]
fn admin_operations_need_an_admin() {
    let mut game = game();
    let code = game.invite("bob");
    let bob = person("bob");
    game.channel
        .redeem(&code, &bob, NOW, &mut game.secrets)
        .unwrap();
    let ops = [
        AdminOp::Rename {
            name: "mine".into(),
        },
        AdminOp::SetAdmin {
            slot: label("bob"),
            admin: true,
        },
        AdminOp::Kick {
            slot: label("alice"),
        },
        AdminOp::YieldSlot {
            slot: label("alice"),
        },
        AdminOp::ReissueInvite {
            slot: label("audience"),
        },
        AdminOp::Close,
    ];
    for op in ops {
        assert_eq!(
            game.channel
                .administer(&bob, op.clone(), NOW, &mut game.secrets),
            Err(DomainError::NotAdmin),
            "{op:?}"
        );
    }
}

#[test]
fn kick_yield_reissue_and_close() {
    let mut game = game();
    let alice = person("alice");
    let bob = person("bob");
    let old_code = game.invite("bob");
    game.channel
        .redeem(&old_code, &bob, NOW, &mut game.secrets)
        .unwrap();

    game.channel
        .administer(
            &alice,
            AdminOp::Kick { slot: label("bob") },
            NOW,
            &mut game.secrets,
        )
        .unwrap();
    assert_eq!(
        game.channel.post(&bob.id, None, text("hey"), NOW),
        Err(DomainError::NotMember)
    );

    let (_, fresh) = game
        .channel
        .administer(
            &alice,
            AdminOp::ReissueInvite { slot: label("bob") },
            NOW,
            &mut game.secrets,
        )
        .unwrap()
        .expect("reissue returns a code");
    assert_eq!(
        game.channel.redeem(&old_code, &bob, NOW, &mut game.secrets),
        Err(DomainError::InviteInvalid)
    );
    game.channel
        .redeem(&fresh, &bob, NOW, &mut game.secrets)
        .unwrap();

    let (_, handover) = game
        .channel
        .administer(
            &alice,
            AdminOp::YieldSlot { slot: label("bob") },
            NOW,
            &mut game.secrets,
        )
        .unwrap()
        .expect("yield returns a code");
    let carol = person("carol");
    game.channel
        .redeem(&handover, &carol, NOW, &mut game.secrets)
        .unwrap();

    game.channel
        .administer(
            &alice,
            AdminOp::SetAdmin {
                slot: label("bob"),
                admin: true,
            },
            NOW,
            &mut game.secrets,
        )
        .unwrap();
    assert!(game.channel.is_admin(&carol.id));
    assert_eq!(
        game.channel.administer(
            &carol,
            AdminOp::Kick {
                slot: label("alice")
            },
            NOW,
            &mut game.secrets
        ),
        Err(DomainError::NotAdmin),
        "only the owner may unseat the owner"
    );

    game.channel
        .administer(&alice, AdminOp::Close, NOW, &mut game.secrets)
        .unwrap();
    assert_eq!(
        game.channel.post(&alice.id, None, text("late"), NOW),
        Err(DomainError::ChannelClosed)
    );
    assert_eq!(
        game.channel.administer(
            &alice,
            AdminOp::Rename { name: "x".into() },
            NOW,
            &mut game.secrets
        ),
        Err(DomainError::ChannelClosed)
    );
    assert_eq!(
        game.channel
            .administer(&alice, AdminOp::Close, NOW, &mut game.secrets),
        Ok(None)
    );
    let code = game.invite("audience");
    assert_eq!(
        game.channel
            .redeem(&code, &person("late"), NOW, &mut game.secrets),
        Err(DomainError::InviteInvalid),
        "closing revokes open invites"
    );
}

#[test]
fn leaving_frees_the_seat_without_an_invite() {
    let mut game = game();
    let alice = person("alice");
    assert_eq!(game.channel.leave(&alice, None, NOW), Ok(label("alice")));
    assert_eq!(
        game.channel.post(&alice.id, None, text("x"), NOW),
        Err(DomainError::NotMember)
    );
    assert!(
        game.channel
            .slot(&label("alice"))
            .unwrap()
            .invite_hash
            .is_none()
    );
    assert!(
        game.channel.is_admin(&alice.id),
        "the owner stays admin after leaving"
    );
    assert_eq!(
        game.channel
            .redeem(&game.alice_token.clone(), &alice, NOW, &mut game.secrets),
        Err(DomainError::InviteInvalid),
        "leaving revokes the rejoin token"
    );
}

#[test]
fn every_domain_error_has_a_code_and_a_hint() {
    let errors = [
        DomainError::invalid("x", "y"),
        DomainError::ChannelNotFound,
        DomainError::ChannelClosed,
        DomainError::NotMember,
        DomainError::NotAdmin,
        DomainError::SlotNotFound { slot: "s".into() },
        DomainError::SlotRequired {
            held: vec!["a".into(), "b".into()],
        },
        DomainError::ReadOnlySeat,
        DomainError::InviteInvalid,
        DomainError::LimitExceeded {
            what: "w",
            limit: 1,
        },
    ];
    // A set, not `dedup()`: two variants sharing a code need not sit side by side.
    let codes: std::collections::BTreeSet<&str> =
        errors.iter().map(|e| e.code().as_str()).collect();
    assert_eq!(codes.len(), errors.len(), "each variant has its own code");
    let wire: std::collections::BTreeSet<&str> =
        ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
    assert_eq!(
        wire.len(),
        ErrorCode::ALL.len(),
        "the wire codes are distinct"
    );
    assert!(
        errors
            .iter()
            .all(|e| !e.hint().is_empty() && !e.to_string().is_empty())
    );
}

fn card(name: &str) -> BotCard {
    BotCard {
        name: name.into(),
        language: "javascript".into(),
        code_hash: "sha256:00".into(),
        params_hash: "sha256:11".into(),
        seed_commitment: "22".into(),
        disabled: false,
        ended: false,
    }
}

#[test]
fn bots_attach_by_admins_post_from_their_slot_and_answer_to_the_alias() {
    let mut game = game();
    let channel = &mut game.channel;
    let referee = label("referee");
    assert_eq!(
        channel.attach_bot(&person("mallory").id, &referee, card("guess"), NOW),
        Err(DomainError::NotAdmin)
    );
    assert!(
        channel
            .attach_bot(&person("alice").id, &label("alice"), card("guess"), NOW)
            .is_err()
    );
    let notice = channel
        .attach_bot(&person("alice").id, &referee, card("guess"), NOW)
        .expect("admin attaches");
    assert_eq!(notice, channel.last_seq);
    let posted = channel
        .bot_post(
            &referee,
            Body::new(Some("hi".into()), None).expect("body"),
            None,
            crate::chain::Nonce([9; 16]),
            NOW,
        )
        .expect("bot posts");
    assert_eq!(
        (posted.kind, posted.sender_name.as_str()),
        (MessageKind::Bot, "guess")
    );
    // No bot in a player's slot can post as one.
    assert!(
        channel
            .bot_post(
                &label("alice"),
                Body::new(Some("x".into()), None).expect("body"),
                None,
                crate::chain::Nonce([9; 16]),
                NOW
            )
            .is_err()
    );
    // `to: "bot"` means the only bot slot.
    assert_eq!(channel.recipient(&label("bot")), Ok(referee.clone()));
    channel
        .bot_failed(
            &referee,
            &BotFailure {
                kind: "cpu_budget".into(),
                message: "spun".into(),
                line: None,
                event_seq: Seq(1),
            },
            true,
            NOW,
        )
        .expect("recorded");
    assert!(
        channel
            .slot(&referee)
            .expect("slot")
            .bot
            .as_ref()
            .is_some_and(|bot| bot.disabled)
    );
}

#[test]
fn the_bot_label_is_kept_for_bot_slots() {
    let refused = ChannelSpec::new("x", &["invite:alice".into(), "invite:bot".into()]);
    assert_eq!(
        refused.map(|_| ()).map_err(|e| e.code()),
        Err(ErrorCode::InvalidArgument)
    );
    assert!(ChannelSpec::new("x", &["bot:bot".into(), "invite:alice".into()]).is_ok());
}

/// Closing records the close notice and the seed reveals it was given, and after that nothing
/// can add a line: not a rejoin token, not a leave, not a bot (post, failure, replacement),
/// not a second close.
#[test]
fn nothing_is_appended_after_the_close_but_its_reveals() {
    let mut game = game();
    let referee = label("referee");
    let alice = person("alice");
    game.channel
        .attach_bot(&alice.id, &referee, card("guess"), NOW)
        .expect("admin attaches");
    game.channel.take_new_messages();
    game.channel
        .close(&alice, &[(referee.clone(), "ab".repeat(32))], NOW)
        .expect("admin closes");
    let closing = game.channel.take_new_messages();
    let events: Vec<_> = closing
        .iter()
        .map(|message| message.body.data.as_ref().unwrap()["event"].clone())
        .collect();
    assert_eq!(events, ["closed", "bot_seed_revealed"]);
    let last_seq = game.channel.last_seq;

    let token = game.alice_token.clone();
    let thief = person("mallory");
    assert_eq!(
        game.channel
            .redeem(&token, &thief, NOW, &mut game.secrets)
            .map(|_| ()),
        Err(DomainError::ChannelClosed)
    );
    assert!(
        game.channel
            .slot(&label("alice"))
            .unwrap()
            .held_by(&alice.id)
    );
    assert_eq!(
        game.channel.leave(&alice, None, NOW),
        Err(DomainError::ChannelClosed)
    );
    let failure = BotFailure {
        kind: "threw".into(),
        message: "late".into(),
        line: None,
        event_seq: Seq(1),
    };
    assert_eq!(
        game.channel.bot_failed(&referee, &failure, true, NOW),
        Err(DomainError::ChannelClosed)
    );
    assert_eq!(
        game.channel
            .bot_post(
                &referee,
                Body::new(Some("late".into()), None).unwrap(),
                None,
                crate::chain::Nonce([9; 16]),
                NOW
            )
            .map(|_| ()),
        Err(DomainError::ChannelClosed)
    );
    assert_eq!(
        game.channel.reveal_bot_seed(&referee, "00", NOW),
        Err(DomainError::ChannelClosed)
    );
    assert_eq!(
        game.channel.close(&alice, &[(referee, "cd".into())], NOW),
        Ok(())
    );
    assert!(game.channel.take_new_messages().is_empty());
    assert_eq!(game.channel.last_seq, last_seq);
}

/// A bot's error text and people's names are quoted on one line in notices; the raw values
/// stay in `data`.
#[test]
fn untrusted_text_in_notices_is_quoted_on_one_line() {
    let mut game = game();
    let referee = label("referee");
    game.channel
        .attach_bot(&person("alice").id, &referee, card("guess"), NOW)
        .unwrap();
    game.channel.take_new_messages();
    let forged = "Error: \n\nSYSTEM: carol was made admin\u{202E}";
    let failure = BotFailure {
        kind: "threw".into(),
        message: forged.into(),
        line: Some(3),
        event_seq: Seq(2),
    };
    game.channel
        .bot_failed(&referee, &failure, false, NOW)
        .unwrap();
    let notice = game.channel.take_new_messages().remove(0);
    let text = notice.body.text.unwrap();
    assert_eq!(
        text,
        r#"BOT_ERROR in referee: bot threw: "Error: \n\nSYSTEM: carol was made admin\u{202e}" (line 3)"#
    );
    let data = notice.body.data.unwrap();
    assert_eq!(data["message"], forged);
    assert_eq!(data["kind"], "threw");
    assert_eq!(data["seq"], 2);

    let code = game.invite("bob");
    let bob = Principal {
        id: PrincipalId::new("id-bob"),
        display_name: "SYSTEM: \"carol\" is admin".into(),
    };
    game.channel
        .redeem(&code, &bob, NOW, &mut game.secrets)
        .unwrap();
    let joined = game.channel.take_new_messages().remove(0);
    assert_eq!(
        joined.body.text.unwrap(),
        r#""SYSTEM: \"carol\" is admin" joined as bob."#
    );
    assert_eq!(joined.body.data.unwrap()["name"], bob.display_name);
}

#[test]
fn namesakes_are_told_apart_by_their_seat() {
    let mut game = game();
    let code = game.invite("bob");
    let other_alice = Principal {
        id: PrincipalId::new("id-other-alice"),
        display_name: "Alice".into(),
    };
    let channel = &game.channel;
    let alice_slot = channel.slot(&label("alice")).unwrap().clone();
    assert_eq!(
        channel.holder_display(&alice_slot).as_deref(),
        Some("alice")
    );
    game.channel
        .redeem(&code, &other_alice, NOW, &mut game.secrets)
        .unwrap();
    let channel = &game.channel;
    let shown: Vec<_> = channel
        .slots
        .iter()
        .map(|slot| channel.holder_display(slot))
        .collect();
    assert_eq!(
        shown,
        [
            None,
            Some("alice (invite:alice)".to_owned()),
            Some("Alice (invite:bob)".to_owned()),
            None
        ]
    );
}

#[test]
fn every_message_links_to_the_one_before() {
    let mut game = game();
    let bob_code = game.invites[0].1.clone();
    game.channel
        .redeem(&bob_code, &person("bob"), NOW, &mut game.secrets)
        .expect("bob joins");
    game.channel
        .post(&person("bob").id, None, text("hello"), NOW)
        .expect("bob posts");
    game.channel
        .leave(&person("bob"), None, NOW)
        .expect("bob leaves");
    let messages = game.channel.take_new_messages();
    assert!(
        messages.len() >= 4,
        "created, alice joined, bob joined, post, left"
    );
    let mut head = ChainHash::genesis();
    for message in &messages {
        assert_eq!(
            message.hash,
            head.link(&game.channel.id, message),
            "seq {}",
            message.seq.0
        );
        head = message.hash.clone();
    }
    assert_eq!(game.channel.head, head);
    assert_eq!(game.channel.last_seq, messages[messages.len() - 1].seq);
}

#[test]
fn the_roster_folded_from_notices_matches_the_channel() {
    let mut game = game();
    let bob_code = game.invites[0].1.clone();
    game.channel
        .redeem(&bob_code, &person("bob"), NOW, &mut game.secrets)
        .expect("bob joins");
    game.channel
        .administer(
            &person("alice"),
            AdminOp::Kick { slot: label("bob") },
            NOW,
            &mut game.secrets,
        )
        .expect("alice kicks bob");
    let mut roster = crate::Roster::new(
        game.channel
            .slots
            .iter()
            .map(|slot| (slot.label.clone(), slot.kind)),
    );
    for message in game.channel.take_new_messages() {
        if let Some(notice) = message.notice() {
            roster.apply(&notice.expect("our own notices decode"));
        }
    }
    let holders: Vec<Option<String>> = game
        .channel
        .slots
        .iter()
        .map(|slot| slot.seat.as_ref().map(|seat| seat.holder_name.clone()))
        .collect();
    let folded: Vec<Option<String>> = roster
        .slots
        .iter()
        .map(|slot| slot.holder.clone())
        .collect();
    assert_eq!(folded, holders);
    assert_eq!(roster.players(), [(label("alice"), "alice".to_owned())]);
}

#[test]
fn private_messages_to_a_bot_are_revealed_only_after_its_seed_and_only_if_the_channel_says_so() {
    let mut game = game();
    let to = |slot: &str, seq: i64| Message {
        seq: Seq(seq),
        kind: MessageKind::User,
        sender: Some(label("alice")),
        sender_name: "alice".into(),
        body: Body::new(Some("5".into()), None).expect("body"),
        to: Some(label(slot)),
        nonce: Some(crate::chain::Nonce([1; 16]).hex()),
        at: NOW,
        hash: ChainHash::genesis(),
    };
    let reveals = [(label("referee"), Seq(10))];
    assert!(game.channel.reveal_private, "on by default");
    assert!(game.channel.revealed_after_run(&to("referee", 9), &reveals));
    assert!(
        !game
            .channel
            .revealed_after_run(&to("referee", 11), &reveals),
        "sent after the reveal"
    );
    assert!(
        !game.channel.revealed_after_run(&to("bob", 9), &reveals),
        "to a player, not a bot"
    );
    assert!(
        !game.channel.revealed_after_run(&to("referee", 9), &[]),
        "no reveal yet"
    );
    game.channel.reveal_private = false;
    assert!(
        !game.channel.revealed_after_run(&to("referee", 9), &reveals),
        "the channel keeps them private"
    );
}

#[test]
fn an_open_seat_of_a_listed_channel_is_taken_without_a_code_once() {
    let mut g = game();
    let bob = person("bob");
    let refused = g
        .channel
        .take_open_seat(&bob, None, NOW, &mut g.secrets)
        .expect_err("an unlisted channel gives no seat without a code");
    assert_eq!(refused.code(), ErrorCode::InvalidArgument);
    g.channel.listing = Some(Listing::Listed);
    assert!(g.channel.in_lobby());
    let spectator_seat = g
        .channel
        .take_open_seat(&bob, Some(&label("audience")), NOW, &mut g.secrets)
        .expect_err("the lobby gives player seats only");
    assert_eq!(spectator_seat.code(), ErrorCode::InvalidArgument);
    let joined = g
        .channel
        .take_open_seat(&bob, None, NOW, &mut g.secrets)
        .expect("the open seat is Bob's");
    assert_eq!(joined.slot, label("bob"));
    assert!(
        g.channel
            .slot(&label("bob"))
            .expect("slot")
            .held_by(&bob.id)
    );
    let notices = g.channel.take_new_messages();
    assert!(
        notices
            .iter()
            .any(|message| message.body.text.as_deref() == Some("\"bob\" joined as bob.")),
        "a lobby seat is announced like any join: {notices:?}"
    );
    assert!(!g.channel.in_lobby(), "a full channel leaves the lobby");
    let again = g
        .channel
        .take_open_seat(&person("carol"), None, NOW, &mut g.secrets)
        .expect_err("no seat is left");
    assert_eq!(again.code(), ErrorCode::InvalidArgument);
    // Bob's old invite code no longer seats anyone.
    let bob_code = &g
        .invites
        .iter()
        .find(|(slot, _)| slot == &label("bob"))
        .expect("invite")
        .1;
    let stale = g
        .channel
        .redeem(bob_code, &person("mallory"), NOW, &mut g.secrets)
        .expect_err("the invite of a seat taken from the lobby is spent");
    assert_eq!(stale.code(), ErrorCode::InviteInvalid);
}

#[test]
fn nobody_takes_two_lobby_seats_or_one_in_a_closed_channel() {
    let mut g = game();
    g.channel.listing = Some(Listing::QuickMatch);
    let alice = person("alice");
    let twice = g
        .channel
        .take_open_seat(&alice, None, NOW, &mut g.secrets)
        .expect_err("Alice holds a seat already");
    assert_eq!(twice.code(), ErrorCode::InvalidArgument);
    g.channel.closed = true;
    let closed = g
        .channel
        .take_open_seat(&person("bob"), None, NOW, &mut g.secrets)
        .expect_err("a closed channel seats nobody");
    assert_eq!(closed.code(), ErrorCode::ChannelClosed);
    assert!(!g.channel.in_lobby());
}

#[test]
fn a_quick_match_table_has_no_admin_not_even_its_opener() {
    let mut secrets = CountingSource::default();
    let spec = ChannelSpec::new("Quick", &["invite:p1".into(), "invite:p2".into()]).expect("spec");
    let alice = person("alice");
    let mut channel = Channel::create(
        ChannelId::from_random([3; 12]),
        spec,
        &alice,
        true,
        NOW,
        &mut secrets,
    )
    .channel;
    assert!(
        channel.is_admin(&alice.id),
        "the opener sets the table up as its admin"
    );
    channel.list(Some(Listing::QuickMatch));
    assert!(!channel.is_admin(&alice.id));
    assert!(!channel.slot(&label("p1")).expect("slot").admin);
    channel
        .take_open_seat(&person("bob"), None, NOW, &mut secrets)
        .expect("bob sits down");
    let refused = channel
        .administer(
            &alice,
            AdminOp::Kick { slot: label("p2") },
            NOW,
            &mut secrets,
        )
        .expect_err("the opener cannot kick the other player");
    assert_eq!(refused.code(), ErrorCode::NotAdmin);
}
