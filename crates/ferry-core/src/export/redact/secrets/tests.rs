use proptest::prelude::*;

use super::*;

/// `digits` with the Luhn check digit appended.
fn with_check_digit(digits: &str) -> String {
    (0..10)
        .map(|d| format!("{digits}{d}"))
        .find(|candidate| luhn(candidate))
        .unwrap()
}

/// Asserts that `secret` inside `text` is masked with nothing of it left:
/// neither it nor any 6 characters of it in a row.
fn assert_masked(text: &str, secret: &str) {
    let masked = mask_secrets(text);
    assert!(
        masked.contains(REDACTED),
        "nothing masked in {text:?}: {masked:?}"
    );
    let chars: Vec<char> = secret.chars().collect();
    for window in chars.windows(6.min(chars.len())) {
        let piece: String = window.iter().collect();
        assert!(
            !masked.contains(&piece),
            "{piece:?} of {secret:?} left in {masked:?}"
        );
    }
    assert_eq!(mask_secrets(&masked), masked, "masking {text:?} twice");
}

#[test]
fn credentials_are_masked_whole() {
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    let aws_secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let aws_secret_longer = format!("{aws_secret}Xtra9");
    let pem_body = "MIIEowIBAAKCAQEA7bq98ZZvJ3xkQ\nUv1nQ2lAjF0p8sKDyh2pZ9Ecq+/Lmn=";
    let cases: Vec<(String, &str)> = vec![
        (format!("Authorization: Bearer {jwt}"), jwt),
        (
            "sent with bearer abc123DEF456ghi789 to the hook".into(),
            "abc123DEF456ghi789",
        ),
        ("BEARER sk-proj-Zx81_aa".into(), "sk-proj-Zx81_aa"),
        (
            "Bearer Bearer abc123DEF456ghi789".into(),
            "abc123DEF456ghi789",
        ),
        (
            "basic Basic dXNlcjpwYXNzd29yZA==".into(),
            "dXNlcjpwYXNzd29yZA==",
        ),
        (
            "Authorization: Basic dXNlcjpwYXNzd29yZA==".into(),
            "dXNlcjpwYXNzd29yZA==",
        ),
        (
            "basic YWxhZGRpbjpvcGVuc2VzYW1l.".into(),
            "YWxhZGRpbjpvcGVuc2VzYW1l",
        ),
        (
            "signing secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ),
        (
            "key fk_3kq9v8k2m4n6p8r0t2v4x6z8a0c2e4g6 created".into(),
            "fk_3kq9v8k2m4n6p8r0t2v4x6z8a0c2e4g6",
        ),
        (
            "x-api-key=fk_very_secret_admin_key_0123456789abcdef".into(),
            "fk_very_secret_admin_key_0123456789abcdef",
        ),
        (
            "postgres://ferry:s3cr3t-p@ss@db.internal:5432/ferry".into(),
            "s3cr3t-p@ss",
        ),
        (
            "redis://:hunter2hunter2@cache:6379/0".into(),
            "hunter2hunter2",
        ),
        (
            "amqps://guest:Gu3st!Pass@mq/vhost and more".into(),
            "Gu3st!Pass",
        ),
        (
            "aws_access_key_id = AKIAIOSFODNN7EXAMPLE".into(),
            "AKIAIOSFODNN7EXAMPLE",
        ),
        (
            "temporary ASIAY34FZKBOKMUTVV7A here".into(),
            "ASIAY34FZKBOKMUTVV7A",
        ),
        (format!("aws_secret_access_key = {aws_secret}"), aws_secret),
        (
            format!("AWS_SECRET_ACCESS_KEY     {aws_secret}     shared-credentials-file"),
            aws_secret,
        ),
        (
            format!(r#"{{"SecretAccessKey": "{aws_secret}"}}"#),
            aws_secret,
        ),
        (
            format!("aws_secret_access_key  {aws_secret_longer}"),
            &aws_secret_longer,
        ),
        (
            r#"{"user":"ann","password":"hunter2 with spaces"}"#.into(),
            "hunter2 with spaces",
        ),
        (r#"{\"api_key\":\"k3y-v4lue-xyz\"}"#.into(), "k3y-v4lue-xyz"),
        (
            "login?user=ann&password=correcthorsebattery&x=1".into(),
            "correcthorsebattery",
        ),
        ("client_secret: 'abcDEF123xyz'".into(), "abcDEF123xyz"),
        ("DB_PASSWORD=Tr0ub4dor&3".into(), "Tr0ub4dor"),
        ("token: 9f8e7d6c5b4a".into(), "9f8e7d6c5b4a"),
        (
            r#"cut short: "access_token": "abcdef123456"#.into(),
            "abcdef123456",
        ),
        (
            "sk_live_51HabcdEFGhijk12345".into(),
            "sk_live_51HabcdEFGhijk12345",
        ),
        (
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789".into(),
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        ),
        (
            "xoxb-1234-5678-abcdefghij".into(),
            "xoxb-1234-5678-abcdefghij",
        ),
        (format!("jwt {jwt} inline"), jwt),
        (
            format!("-----BEGIN RSA PRIVATE KEY-----\n{pem_body}\n-----END RSA PRIVATE KEY-----\n"),
            pem_body,
        ),
        (
            format!("key: -----BEGIN PRIVATE KEY-----\\n{pem_body} (cut)"),
            pem_body,
        ),
    ];
    for (text, secret) in &cases {
        assert_masked(text, secret);
    }
}

#[test]
fn what_is_not_secret_around_a_credential_stays() {
    assert_eq!(
        mask_secrets("Authorization: Bearer abc123def456"),
        "Authorization: Bearer [REDACTED]"
    );
    assert_eq!(
        mask_secrets("https://ann:pw1@example.com/x"),
        "https://ann:[REDACTED]@example.com/x"
    );
    assert_eq!(
        mask_secrets(r#"{"password":"x","user":"ann"}"#),
        r#"{"password":"[REDACTED]","user":"ann"}"#
    );
    assert_eq!(
        mask_secrets("password=x; path=/"),
        "password=[REDACTED]; path=/"
    );
    assert_eq!(mask_secrets("Basic dXNlcjpwYXNz."), "Basic [REDACTED].");
    assert_eq!(
        mask_secrets("-----BEGIN EC PRIVATE KEY-----\nabc\n-----END EC PRIVATE KEY-----"),
        "-----BEGIN EC PRIVATE KEY-----[REDACTED]-----END EC PRIVATE KEY-----"
    );
    assert_eq!(
        mask_secrets("paid with 4111 1111 1111 1111 on Monday"),
        "paid with [REDACTED] on Monday"
    );
}

#[test]
fn card_numbers_are_masked_however_written() {
    let nineteen = with_check_digit("400000000000000000");
    let cards = [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "5555555555554444",
        "378282246310005",
        "3782 822463 10005",
        "6011000990139424",
        "4222222222222",
        nineteen.as_str(),
    ];
    for card in cards {
        assert!(luhn(card), "{card}");
        for text in [
            card.to_owned(),
            format!("cc={card};"),
            format!("order 12 {card} ok"),
            format!("x{card}y"),
        ] {
            assert_masked(&text, card);
        }
    }
    // Two cards in one run of groups.
    assert_eq!(
        mask_secrets("4111 1111 1111 1111 5555 5555 5555 4444"),
        "[REDACTED] [REDACTED]"
    );
}

#[test]
fn ordinary_text_and_ids_are_left_alone() {
    let phone = "+49 1512 3456 7890";
    assert!(
        !luhn("4915123456789 0"),
        "the phone number must fail Luhn for this test"
    );
    let texts = [
        "",
        "Delivered to https://example.com/hooks/orders in 120 ms",
        "evt_01jq3ta2b4d6f8h0k2m4p6r8t0",
        "dlv_01jq3ta2b4d6f8h0k2m4p6r8t0 dst_orders key_01jq3ta2b4d6f8h0k2m4p6r8t0",
        "2026-05-01T12:00:00.123456Z",
        "created 1700000000000 (epoch ms), 1700000000000000 (µs)",
        "attempt 3 of 10, status 503, 4242 bytes",
        "+1 555 123 4567",
        phone,
        "4111 1111 1111 1112",
        "12345678901234567890123",
        "2024-01-15 2024-01-16",
        "uuid 123e4567-e89b-12d3-a456-426614174000",
        "sha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "Basic setup guide; the bearer of this note; Bearer Authentication.",
        "constraint fk_orders_customer_id failed",
        "Asia/Tokyo",
        "ferry://local",
        "a tokenizer splits words",
        "http://[::1]:8080/path@x",
    ];
    for text in texts {
        let masked = mask_secrets(text);
        assert!(
            matches!(masked, Cow::Borrowed(_)),
            "{text:?} became {masked:?}"
        );
    }
}

#[test]
fn card_numbers_as_numbers() {
    assert!(is_card_number(4_111_111_111_111_111));
    assert!(!is_card_number(4_111_111_111_111_112));
    assert!(
        !is_card_number(1_700_000_000_000_003),
        "epoch-like numbers start with 1"
    );
    assert!(!is_card_number(42));
}

/// Pieces that secrets and near-secrets are made of, glued at random.
fn fragments() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("Bearer ".to_owned()),
        Just("basic ".to_owned()),
        Just("password".to_owned()),
        Just("token".to_owned()),
        Just("=".to_owned()),
        Just(": ".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just("\\\"".to_owned()),
        Just("://".to_owned()),
        Just("@".to_owned()),
        Just(" ".to_owned()),
        Just("-".to_owned()),
        Just(".".to_owned()),
        Just("4111".to_owned()),
        Just("1111".to_owned()),
        Just("[REDACTED]".to_owned()),
        Just("whsec_".to_owned()),
        Just("fk_".to_owned()),
        Just("AKIA".to_owned()),
        Just("-----BEGIN PRIVATE KEY-----".to_owned()),
        Just("-----END PRIVATE KEY-----".to_owned()),
        Just("aws_secret_access_key ".to_owned()),
        Just("SecretAccessKey".to_owned()),
        Just("PASSWORD".to_owned()),
        Just("Private_Key".to_owned()),
        Just("X-Api-Key".to_owned()),
        Just("Authorization".to_owned()),
        Just("Cookie".to_owned()),
        Just("ghp_".to_owned()),
        Just("sk_live_".to_owned()),
        Just("eyJ".to_owned()),
        Just("eyJhbGciOi.".to_owned()),
        Just("xoxb-".to_owned()),
        Just("AIza".to_owned()),
        Just("ASIA".to_owned()),
        "[a-zA-Z0-9+/=_]{1,12}",
        "[0-9]{1,5}",
        any::<String>(),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn masking_twice_changes_nothing_more(text in fragments()) {
        let once = mask_secrets(&text).into_owned();
        prop_assert_eq!(mask_secrets(&once), once.as_str());
    }

    #[test]
    fn the_quick_scan_skips_only_rules_that_would_change_nothing(text in fragments()) {
        let rules = rules_for(&text);
        for (rule, step) in STEPS {
            if rules & rule as u8 == 0 {
                prop_assert!(matches!(step(&text), Cow::Borrowed(_)), "{:?} {:?}", rule, text);
            }
        }
        if !has_card_digits(&text) {
            prop_assert!(matches!(mask_cards(&text), Cow::Borrowed(_)), "{:?}", text);
        }
    }

    #[test]
    fn any_text_masks_without_panic(text in any::<String>()) {
        let once = mask_secrets(&text).into_owned();
        prop_assert_eq!(mask_secrets(&once), once.as_str());
    }
}
