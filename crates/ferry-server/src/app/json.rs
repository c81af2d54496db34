//! Reading JSON input the way every face reports it: a body that is not
//! JSON is `InvalidJson`; JSON of the wrong shape is `Malformed`, naming
//! the field (`events[2].type`).

use serde::de::DeserializeOwned;

use super::{Error, Result};

/// Parses a JSON document into `T`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    if bytes.is_empty() {
        return Err(Error::InvalidJson(
            "the request body is empty; expected JSON".into(),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de);
    match value {
        Ok(v) => {
            de.end()
                .map_err(|e| Error::InvalidJson(format!("invalid JSON: {e}")))?;
            Ok(v)
        }
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            if inner.is_data() {
                let field = if path == "." { "body".to_owned() } else { path };
                Err(Error::malformed(&field, inner.to_string()))
            } else {
                Err(Error::InvalidJson(format!("invalid JSON: {inner}")))
            }
        }
    }
}

/// A body that may be left out (empty or whitespace): the defaults apply.
pub fn parse_optional_json<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse_json(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_distinguish_syntax_from_types() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct T {
            n: u32,
        }
        assert!(matches!(parse_json::<T>(b"{"), Err(Error::InvalidJson(_))));
        assert!(matches!(
            parse_json::<T>(b"{\"n\": \"x\"}"),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            parse_json::<T>(b"{\"n\": 1} x"),
            Err(Error::InvalidJson(_))
        ));
        assert!(matches!(parse_json::<T>(b""), Err(Error::InvalidJson(_))));
    }
}
