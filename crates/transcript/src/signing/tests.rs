use super::*;

fn channel() -> ChannelId {
    ChannelId::parse("ch_0123456789abcdef01234567").expect("a channel id")
}

fn statement() -> HeadStatement {
    HeadStatement {
        channel: channel(),
        seq: Seq(42),
        head: format!("sha256:{}", "ab".repeat(32)),
        at: Timestamp(1_750_000_000_000),
    }
}

fn keyring(seed: u8) -> Keyring {
    let key = ServerKey::from_secret([seed; KEY_BYTES], Timestamp(1));
    let info = key.info();
    Keyring::new(key, vec![info]).expect("a keyring")
}

#[test]
fn signing_bytes_are_pinned() {
    let expected = concat!(
        "mcp-multiplayer signed head v1\n",
        r#"{"at":1750000000000,"channel":"ch_0123456789abcdef01234567","#,
        r#""head":"sha256:abababababababababababababababababababababababababababababababab","#,
        r#""seq":42}"#,
    );
    assert_eq!(
        String::from_utf8(statement().signing_bytes()).expect("ASCII"),
        expected
    );
}

#[test]
fn signatures_and_key_ids_are_pinned() {
    // Ed25519 is deterministic: a fixed seed and statement give one signature, so a change of
    // the signed bytes or of their encoding shows here. These values were reproduced from the
    // module documentation alone with another implementation (Python's `cryptography`).
    let keys = keyring(7);
    let signed = keys.sign(statement());
    assert_eq!(signed.key_id.as_str(), "ed25519:fe812c12f3ab4ce6");
    assert_eq!(
        signed.signature,
        concat!(
            "jcZUqhMlMfn3JMHraEHANnBqjlcSpcRtq_uXev9aobZu87rJ7T6gbLAh7qtNGAFhgWVDjFTjyLK8nBHr",
            "bcgpBg"
        )
    );
    assert_eq!(
        keys.keys()[0].public,
        "6kpsY-KcUgq-9VB7Ey7F-ZVHdq6-vnuSQh7qaRRG0iw"
    );
}

#[test]
fn a_signed_head_verifies_with_public_keys_alone() {
    let keys = keyring(1);
    let signed = keys.sign(statement());
    assert_eq!(signed.statement(), statement());
    assert_eq!(signed.key_id, *keys.active_id());
    let published: Vec<PublicKeyInfo> = keys.keys().to_vec();
    assert_eq!(verify(&signed, &published), Ok(()));
    assert_eq!(keys.verify(&signed), Ok(()));
}

#[test]
fn every_flipped_bit_of_the_signature_fails() {
    let keys = keyring(2);
    let signed = keys.sign(statement());
    let bytes = URL_SAFE_NO_PAD
        .decode(&signed.signature)
        .expect("base64url");
    assert_eq!(bytes.len(), 64);
    for bit in 0..bytes.len() * 8 {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let forged = SignedHead {
            signature: URL_SAFE_NO_PAD.encode(&flipped),
            ..signed.clone()
        };
        assert_eq!(
            keys.verify(&forged),
            Err(SignatureError::BadSignature),
            "bit {bit}"
        );
    }
}

#[test]
fn a_changed_statement_fails() {
    let keys = keyring(3);
    let signed = keys.sign(statement());
    let changes: [(&str, SignedHead); 4] = [
        (
            "channel",
            SignedHead {
                channel: ChannelId::parse("ch_0123456789abcdef01234568").expect("an id"),
                ..signed.clone()
            },
        ),
        (
            "seq",
            SignedHead {
                seq: Seq(43),
                ..signed.clone()
            },
        ),
        (
            "head",
            SignedHead {
                head: format!("sha256:{}", "ab".repeat(31) + "ac"),
                ..signed.clone()
            },
        ),
        (
            "at",
            SignedHead {
                at: Timestamp(1_750_000_000_001),
                ..signed.clone()
            },
        ),
    ];
    for (field, changed) in changes {
        assert_eq!(
            keys.verify(&changed),
            Err(SignatureError::BadSignature),
            "{field}"
        );
    }
}

#[test]
fn another_key_or_an_unknown_one_fails() {
    let signer = keyring(4);
    let other = keyring(5);
    let signed = signer.sign(statement());
    assert_eq!(
        other.verify(&signed),
        Err(SignatureError::UnknownKey(signed.key_id.clone()))
    );
    assert_eq!(
        verify(&signed, &[]).map_err(|e| e.code()),
        Err("unknown_key")
    );

    // The other key's bytes listed under the signer's id: the id is not the key's own.
    let impostor = PublicKeyInfo {
        id: signed.key_id.clone(),
        ..other.keys()[0].clone()
    };
    assert_eq!(
        verify(&signed, &[impostor]).map_err(|e| e.code()),
        Err("malformed")
    );

    let garbled = SignedHead {
        signature: "not base64!".into(),
        ..signed.clone()
    };
    assert_eq!(
        signer.verify(&garbled).map_err(|e| e.code()),
        Err("malformed")
    );
    let short = SignedHead {
        signature: URL_SAFE_NO_PAD.encode([0u8; 63]),
        ..signed
    };
    assert_eq!(
        signer.verify(&short).map_err(|e| e.code()),
        Err("malformed")
    );
}

#[test]
fn a_retired_key_still_verifies_what_it_signed() {
    let old = ServerKey::from_secret([8; KEY_BYTES], Timestamp(1));
    let old_info = old.info();
    let old_ring = Keyring::new(old, vec![old_info.clone()]).expect("a keyring");
    let signed = old_ring.sign(statement());

    let new = ServerKey::from_secret([9; KEY_BYTES], Timestamp(2));
    let retired = PublicKeyInfo {
        retired_at: Some(Timestamp(2)),
        ..old_info
    };
    let new_info = new.info();
    let ring = Keyring::new(new, vec![retired, new_info]).expect("a keyring");
    assert_eq!(ring.verify(&signed), Ok(()));
    assert_ne!(ring.sign(statement()).key_id, signed.key_id);
}

#[test]
fn a_keyring_lists_its_signing_key_as_the_only_active_one() {
    let key = || ServerKey::from_secret([10; KEY_BYTES], Timestamp(1));
    let other = ServerKey::from_secret([11; KEY_BYTES], Timestamp(1)).info();
    let id = key().id().clone();
    assert_eq!(
        Keyring::new(key(), vec![other.clone()]).map(|_| ()),
        Err(KeyringError::NotRetired(other.id.clone()))
    );
    let retired_other = PublicKeyInfo {
        retired_at: Some(Timestamp(1)),
        ..other
    };
    assert_eq!(
        Keyring::new(key(), vec![retired_other.clone()]).map(|_| ()),
        Err(KeyringError::ActiveNotListed(id.clone()))
    );
    let retired_self = PublicKeyInfo {
        retired_at: Some(Timestamp(1)),
        ..key().info()
    };
    assert_eq!(
        Keyring::new(key(), vec![retired_self]).map(|_| ()),
        Err(KeyringError::ActiveNotListed(id.clone()))
    );
    assert_eq!(
        Keyring::new(key(), vec![key().info(), key().info()]).map(|_| ()),
        Err(KeyringError::Duplicate(id))
    );
    assert!(Keyring::new(key(), vec![retired_other, key().info()]).is_ok());
}

#[test]
fn key_ids_have_one_written_form() {
    let id = ServerKey::from_secret([12; KEY_BYTES], Timestamp(1))
        .id()
        .clone();
    assert_eq!(KeyId::parse(id.as_str()), Some(id.clone()));
    assert_eq!(id.as_str().len(), "ed25519:".len() + 16);
    for bad in [
        "",
        "ed25519:",
        "ed25519:0123",
        "ED25519:0123456789abcdef",
        "ed25519:0123456789ABCDEF",
        "ed25519:0123456789abcdef0",
    ] {
        assert_eq!(KeyId::parse(bad), None, "{bad}");
    }
}

#[test]
fn signed_heads_round_trip_through_json_in_one_form() {
    let keys = keyring(13);
    let signed = keys.sign(statement());
    let json = serde_json::to_value(&signed).expect("JSON");
    assert_eq!(json["channel"], "ch_0123456789abcdef01234567");
    assert_eq!(json["seq"], 42);
    assert_eq!(json["at"], 1_750_000_000_000_i64);
    assert_eq!(json["key_id"], signed.key_id.as_str());
    let back: SignedHead = serde_json::from_value(json.clone()).expect("read back");
    assert_eq!(back, signed);
    assert_eq!(keys.verify(&back), Ok(()));

    for (field, bad) in [
        ("channel", serde_json::json!("CH_0123456789ABCDEF01234567")),
        ("channel", serde_json::json!("ch_0123")),
        (
            "head",
            serde_json::json!(format!("sha256:{}", "AB".repeat(32))),
        ),
        ("head", serde_json::json!("sha256:ab")),
        ("seq", serde_json::json!(-1)),
        ("key_id", serde_json::json!("ed25519:XYZ")),
    ] {
        let mut changed = json.clone();
        changed[field] = bad.clone();
        assert!(
            serde_json::from_value::<SignedHead>(changed).is_err(),
            "{field} = {bad}"
        );
    }
}

#[test]
fn debug_output_shows_no_secret() {
    let key = ServerKey::from_secret([14; KEY_BYTES], Timestamp(1));
    let secret_hex = hex::encode(key.secret());
    let shown = format!("{key:?} {:?}", keyring(14));
    assert!(!shown.contains(&secret_hex), "{shown}");
    assert!(shown.contains(key.id().as_str()), "{shown}");
}

fn record() -> domain::attestation::Attestation {
    domain::attestation::Attestation {
        url: "https://example.com/".into(),
        fetched_at: Timestamp(1_750_000_000_000),
        address: Some("93.184.215.14:443".into()),
        tls: None,
        status: Some(200),
        headers: Default::default(),
        body: None,
        error: None,
    }
}

#[test]
fn attestation_bytes_are_pinned_and_bind_the_record_to_its_place() {
    let channel = ChannelId::parse("ch_0123456789abcdef01234567").expect("id");
    let slot = domain::SlotLabel::parse("witness").expect("slot");
    let record = record();
    let statement = AttestationStatement {
        channel: &channel,
        slot: &slot,
        tag: "req-7",
        requested_by: Seq(7),
        attestation: &record,
    };
    assert_eq!(
        String::from_utf8(statement.signing_bytes()).expect("ASCII"),
        concat!(
            "mcp-multiplayer fetch attestation v1\n",
            r#"{"attestation":{"address":"93.184.215.14:443","body":null,"error":null,"#,
            r#""fetched_at":1750000000000,"headers":{},"status":200,"tls":null,"#,
            r#""url":"https://example.com/"},"channel":"ch_0123456789abcdef01234567","#,
            r#""requested_by":7,"slot":"witness","tag":"req-7"}"#,
        )
    );
    let keys = keyring(7);
    let witness = keys.sign_attestation(&statement);
    assert_eq!(witness.key_id, "ed25519:fe812c12f3ab4ce6");
    assert_eq!(
        verify_attestation(&statement, &witness, keys.keys()),
        Ok(())
    );

    let other_slot = domain::SlotLabel::parse("judge").expect("slot");
    let mut changed = record.clone();
    changed.status = Some(404);
    let moved = [
        AttestationStatement {
            slot: &other_slot,
            ..statement
        },
        AttestationStatement {
            tag: "req-8",
            ..statement
        },
        AttestationStatement {
            requested_by: Seq(8),
            ..statement
        },
        AttestationStatement {
            attestation: &changed,
            ..statement
        },
    ];
    for statement in moved {
        assert_eq!(
            verify_attestation(&statement, &witness, keys.keys()),
            Err(SignatureError::BadSignature),
            "{statement:?}"
        );
    }
    let unknown = domain::attestation::WitnessSignature {
        key_id: "ed25519:0000000000000000".into(),
        signature: witness.signature.clone(),
    };
    assert!(matches!(
        verify_attestation(&statement, &unknown, keys.keys()),
        Err(SignatureError::UnknownKey(_))
    ));
}
