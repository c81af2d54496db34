use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha512};

use super::*;

fn headers(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn secrets(list: &[&str]) -> Vec<Secret<String>> {
    list.iter().map(|s| Secret::new(s.to_string())).collect()
}

const A: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const B: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// Signs with the reference library, an independent signer.
fn standard(secret: &str, id: &str, ts: i64, body: &[u8]) -> Vec<(String, String)> {
    let sig = standardwebhooks::Webhook::new(secret)
        .unwrap()
        .sign(id, ts, body)
        .unwrap();
    headers(&[
        ("webhook-id", id.into()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", sig),
    ])
}

#[test]
fn standard_webhooks_accepts_the_reference_signer_and_rejects_the_rest() {
    let now = Utc::now();
    let v = Verification::StandardWebhooks {
        secrets: secrets(&[A, B]),
        tolerance_s: 300,
    };
    let body = br#"{"type":"shipment.sent"}"#;
    assert_eq!(
        v.verify(&headers(&[]), body, now),
        Err(Rejection::MissingHeader("webhook-id".into()))
    );
    // Either secret of a rotation overlap verifies.
    for secret in [A, B] {
        v.verify(&standard(secret, "msg_1", now.timestamp(), body), body, now)
            .unwrap();
    }
    let good = standard(A, "msg_1", now.timestamp(), body);
    assert_eq!(
        v.verify(&good, br#"{"type":"shipment.lost"}"#, now),
        Err(Rejection::Mismatch)
    );
    let other = Verification::StandardWebhooks {
        secrets: secrets(&[B]),
        tolerance_s: 300,
    };
    assert_eq!(
        other.verify(&standard(A, "m", now.timestamp(), body), body, now),
        Err(Rejection::Mismatch)
    );
    let stale = standard(A, "m", (now - Duration::seconds(301)).timestamp(), body);
    assert!(matches!(
        v.verify(&stale, body, now),
        Err(Rejection::Stale(301, 300))
    ));
    let future = standard(A, "m", (now + Duration::seconds(301)).timestamp(), body);
    assert!(matches!(
        v.verify(&future, body, now),
        Err(Rejection::Stale(-301, 300))
    ));
}

#[test]
fn standard_webhooks_v1a_verifies_ed25519() {
    let now = Utc::now();
    let signing = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let public = format!(
        "whpk_{}",
        STANDARD.encode(signing.verifying_key().to_bytes())
    );
    let v = Verification::StandardWebhooks {
        secrets: secrets(&[&public]),
        tolerance_s: 300,
    };
    v.validate().unwrap();
    let body = b"{}";
    let ts = now.timestamp();
    let signed = format!("msg_9.{ts}.{}", std::str::from_utf8(body).unwrap());
    use ed25519_dalek::Signer;
    let sig = STANDARD.encode(signing.sign(signed.as_bytes()).to_bytes());
    let h = headers(&[
        ("webhook-id", "msg_9".into()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", format!("v1a,{sig}")),
    ]);
    v.verify(&h, body, now).unwrap();
    assert_eq!(v.verify(&h, b"{ }", now), Err(Rejection::Mismatch));
}

#[test]
fn body_hmacs_in_hex_and_base64_with_prefixes() {
    let body = br#"{"a":1}"#;
    let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
    mac.update(body);
    let hex_sig = hex::encode(mac.finalize().into_bytes());
    let v = Verification::HmacSha256(BodyHmac {
        header: "x-hub-signature-256".into(),
        encoding: Encoding::Hex,
        prefix: Some("sha256=".into()),
        secrets: secrets(&["old", "s3cret"]),
    });
    let h = headers(&[("X-Hub-Signature-256", format!("sha256={hex_sig}"))]);
    v.verify(&h, body, Utc::now()).unwrap();
    assert_eq!(v.verify(&h, b"{}", Utc::now()), Err(Rejection::Mismatch));
    let no_prefix = headers(&[("x-hub-signature-256", hex_sig)]);
    assert!(matches!(
        v.verify(&no_prefix, body, Utc::now()),
        Err(Rejection::MalformedHeader(_))
    ));

    let mut mac = Hmac::<Sha512>::new_from_slice(b"k").unwrap();
    mac.update(body);
    let b64 = STANDARD.encode(mac.finalize().into_bytes());
    let v = Verification::HmacSha512(BodyHmac {
        header: "x-signature".into(),
        encoding: Encoding::Base64,
        prefix: None,
        secrets: secrets(&["k"]),
    });
    v.verify(&headers(&[("x-signature", b64)]), body, Utc::now())
        .unwrap();
}

#[test]
fn timestamped_hmac_checks_freshness_and_signature() {
    let now = Utc::now();
    let body = b"{\"x\":true}";
    let sign = |ts: i64, key: &[u8]| {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(format!("{ts}.").as_bytes());
        mac.update(body);
        format!("t={ts},v1={}", hex::encode(mac.finalize().into_bytes()))
    };
    let v = Verification::TimestampedHmac {
        header: "x-signature".into(),
        secrets: secrets(&["k1"]),
        tolerance_s: 60,
    };
    v.verify(
        &headers(&[("x-signature", sign(now.timestamp(), b"k1"))]),
        body,
        now,
    )
    .unwrap();
    let stale = headers(&[("x-signature", sign(now.timestamp() - 61, b"k1"))]);
    assert!(matches!(
        v.verify(&stale, body, now),
        Err(Rejection::Stale(61, 60))
    ));
    let wrong = headers(&[("x-signature", sign(now.timestamp(), b"k2"))]);
    assert_eq!(v.verify(&wrong, body, now), Err(Rejection::Mismatch));
    let garbage = headers(&[("x-signature", "v1=zz".into())]);
    assert!(matches!(
        v.verify(&garbage, body, now),
        Err(Rejection::MalformedHeader(_))
    ));
}

#[test]
fn settings_are_validated_and_secrets_redacted() {
    let v = Verification::StandardWebhooks {
        secrets: secrets(&["nope"]),
        tolerance_s: 0,
    };
    let fields: Vec<_> = v
        .validate()
        .unwrap_err()
        .into_iter()
        .map(|e| e.field)
        .collect();
    assert_eq!(
        fields,
        ["verification.secrets[0]", "verification.tolerance_s"]
    );
    let v = Verification::HmacSha256(BodyHmac {
        header: "bad header".into(),
        encoding: Encoding::Hex,
        prefix: None,
        secrets: vec![],
    });
    assert_eq!(v.validate().unwrap_err().len(), 2);
    let shown = Verification::StandardWebhooks {
        secrets: secrets(&[A]),
        tolerance_s: 300,
    }
    .redacted()
    .to_string();
    assert!(
        !shown.contains("whsec_") && shown.contains("***"),
        "{shown}"
    );
}

#[test]
fn extractors_read_headers_and_pointers() {
    assert_eq!(
        Extractor::parse("header:Webhook-Id"),
        Ok(Extractor::Header("webhook-id".into()))
    );
    assert!(Extractor::parse("type").is_err());
    let body = serde_json::json!({"shipment": {"id": 42, "kind": "x"}, "empty": ""});
    let h = headers(&[("webhook-id", "abc".into())]);
    assert_eq!(
        Extractor::parse("/shipment/id")
            .unwrap()
            .extract(&h, &body)
            .as_deref(),
        Some("42")
    );
    assert_eq!(
        Extractor::parse("header:webhook-id")
            .unwrap()
            .extract(&h, &body)
            .as_deref(),
        Some("abc")
    );
    assert_eq!(Extractor::parse("/empty").unwrap().extract(&h, &body), None);
    assert_eq!(
        Extractor::parse("/shipment").unwrap().extract(&h, &body),
        None
    );
}
