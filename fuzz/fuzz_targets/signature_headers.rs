//! Signature-header parsing of every inbound verification scheme: any
//! header value and body must be answered with `Ok` or a `Rejection`, never
//! a panic, and a random header must not verify.
#![no_main]

use chrono::{TimeZone, Utc};
use ferry_core::secret::Secret;
use ferry_core::source::{BodyHmac, Encoding, Verification};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (header, body) = text.split_once('\n').unwrap_or((&text, ""));
    let now = Utc.timestamp_opt(1_700_000_000, 0).single().unwrap_or_else(Utc::now);
    let secrets = vec![Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned())];
    let schemes = [
        Verification::StandardWebhooks { secrets: secrets.clone(), tolerance_s: 300 },
        Verification::HmacSha256(BodyHmac {
            header: "x-signature".into(),
            encoding: Encoding::Hex,
            prefix: Some("sha256=".into()),
            secrets: secrets.clone(),
        }),
        Verification::HmacSha512(BodyHmac {
            header: "x-signature".into(),
            encoding: Encoding::Base64,
            prefix: None,
            secrets: secrets.clone(),
        }),
        Verification::TimestampedHmac { header: "x-signature".into(), secrets, tolerance_s: 300 },
    ];
    let headers: Vec<(String, String)> = vec![
        ("webhook-id".into(), "msg_1".into()),
        ("webhook-timestamp".into(), "1700000000".into()),
        ("webhook-signature".into(), header.to_owned()),
        ("x-signature".into(), header.to_owned()),
    ];
    for scheme in &schemes {
        // A fuzzer-made header is not a valid signature of the body.
        assert!(scheme.verify(&headers, body.as_bytes(), now).is_err());
    }
});
