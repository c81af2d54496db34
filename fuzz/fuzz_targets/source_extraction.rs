//! Source extraction: any extractor text and any JSON body must give a
//! value or `None`, never a panic.
#![no_main]

use ferry_core::source::Extractor;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (spec, body) = text.split_once('\n').unwrap_or((&text, "{}"));
    let Ok(body) = serde_json::from_str::<serde_json::Value>(body) else { return };
    let headers: Vec<(String, String)> = vec![("webhook-id".into(), "abc".into())];
    if let Ok(extractor) = Extractor::parse(spec) {
        let _ = extractor.extract(&headers, &body);
        assert_eq!(Extractor::parse(&extractor.as_text()), Ok(extractor));
    }
});
