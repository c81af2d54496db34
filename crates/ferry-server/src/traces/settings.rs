//! Where traces go, decided once at start from `[telemetry]` in
//! `ferry.toml` and the standard `OTEL_*` variables (which win, as they do
//! for every OpenTelemetry SDK). Nothing set means no export at all.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `[telemetry]`: OpenTelemetry export. The standard variables override
/// each field: `OTEL_EXPORTER_OTLP_ENDPOINT` (and `…_TRACES_ENDPOINT`),
/// `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_EXPORTER_OTLP_HEADERS`,
/// `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER` and `…_SAMPLER_ARG`;
/// `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn it off.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// The collector's base URL (`http://collector:4318` for OTLP/HTTP,
    /// `http://collector:4317` for gRPC). Traces are exported only when
    /// this or `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
    pub otlp_endpoint: Option<String>,
    /// `http/protobuf` (default) or `grpc`.
    pub otlp_protocol: Option<String>,
    /// Headers sent to the collector (an API key, a tenant).
    pub otlp_headers: BTreeMap<String, String>,
    /// The `service.name` of Ferry's spans (default `ferry`).
    pub service_name: Option<String>,
    /// `parentbased_always_on` (default), `parentbased_traceidratio`,
    /// `parentbased_always_off`, `always_on`, `always_off` or
    /// `traceidratio`.
    pub sampler: Option<String>,
    /// The ratio of the `…traceidratio` samplers, 0 to 1 (default 1).
    pub sampler_arg: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    HttpProtobuf,
    Grpc,
}

/// Which traces are kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampling {
    AlwaysOn,
    AlwaysOff,
    Ratio(f64),
    /// The producer's decision when it sent a `traceparent`, else the inner one.
    ParentBased(Root),
}

/// The decision of a parent-based sampler for a trace that starts here.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Root {
    AlwaysOn,
    AlwaysOff,
    Ratio(f64),
}

/// Resolved export settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The full URL for OTLP/HTTP (ending in `/v1/traces`), the base for gRPC.
    pub endpoint: String,
    pub protocol: Protocol,
    pub headers: BTreeMap<String, String>,
    pub service_name: String,
    pub sampling: Sampling,
}

impl TelemetryConfig {
    /// The export settings from this config and the variables `env` reads;
    /// `None` when traces are off. A value that cannot be used is an error
    /// naming it, so a typo stops the start instead of losing traces.
    pub fn resolve(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Settings>, String> {
        let var = |name: &str| {
            env(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        match var("OTEL_TRACES_EXPORTER").as_deref() {
            None | Some("otlp") => {}
            Some("none") => return Ok(None),
            Some(other) => {
                return Err(format!(
                    "OTEL_TRACES_EXPORTER={other} is not supported: Ferry exports traces with \
                     `otlp` (or `none`)"
                ));
            }
        }
        let protocol = match var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .or_else(|| self.otlp_protocol.clone())
            .as_deref()
        {
            None | Some("http/protobuf") => Protocol::HttpProtobuf,
            Some("grpc") => Protocol::Grpc,
            Some(other) => {
                return Err(format!(
                    "OTLP protocol {other:?} is not supported: use \"http/protobuf\" or \"grpc\""
                ));
            }
        };
        // A signal's own endpoint is used as given; the general one is a base
        // that OTLP/HTTP appends the signal's path to (the specification's
        // rule, which every SDK follows).
        let endpoint = match var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            Some(url) => url,
            None => match var("OTEL_EXPORTER_OTLP_ENDPOINT").or_else(|| self.otlp_endpoint.clone())
            {
                None => return Ok(None),
                Some(base) if protocol == Protocol::HttpProtobuf => {
                    format!("{}/v1/traces", base.trim_end_matches('/'))
                }
                Some(base) => base,
            },
        };
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(format!(
                "OTLP endpoint {endpoint:?} must be an http:// or https:// URL"
            ));
        }
        let mut headers = self.otlp_headers.clone();
        if let Some(list) =
            var("OTEL_EXPORTER_OTLP_TRACES_HEADERS").or_else(|| var("OTEL_EXPORTER_OTLP_HEADERS"))
        {
            headers.extend(parse_headers(&list)?);
        }
        let service_name = var("OTEL_SERVICE_NAME")
            .or_else(|| self.service_name.clone())
            .unwrap_or_else(|| "ferry".to_owned());
        let arg = match var("OTEL_TRACES_SAMPLER_ARG") {
            Some(text) => Some(
                text.parse::<f64>()
                    .map_err(|_| format!("OTEL_TRACES_SAMPLER_ARG={text} is not a number"))?,
            ),
            None => self.sampler_arg,
        };
        let sampler = var("OTEL_TRACES_SAMPLER").or_else(|| self.sampler.clone());
        let sampling = sampling(sampler.as_deref(), arg)?;
        Ok(Some(Settings {
            endpoint,
            protocol,
            headers,
            service_name,
            sampling,
        }))
    }
}

fn sampling(name: Option<&str>, arg: Option<f64>) -> Result<Sampling, String> {
    let ratio = || match arg {
        None => Ok(1.0),
        Some(r) if (0.0..=1.0).contains(&r) => Ok(r),
        Some(r) => Err(format!(
            "the sampler ratio must be between 0 and 1, not {r}"
        )),
    };
    Ok(match name.unwrap_or("parentbased_always_on") {
        "always_on" => Sampling::AlwaysOn,
        "always_off" => Sampling::AlwaysOff,
        "traceidratio" => Sampling::Ratio(ratio()?),
        "parentbased_always_on" => Sampling::ParentBased(Root::AlwaysOn),
        "parentbased_always_off" => Sampling::ParentBased(Root::AlwaysOff),
        "parentbased_traceidratio" => Sampling::ParentBased(Root::Ratio(ratio()?)),
        other => {
            return Err(format!(
                "sampler {other:?} is not supported: use parentbased_always_on, \
                 parentbased_traceidratio, parentbased_always_off, always_on, always_off or \
                 traceidratio"
            ));
        }
    })
}

/// `key=value,key2=value2`, values percent-decoded (the W3C Baggage form
/// the specification gives `OTEL_EXPORTER_OTLP_HEADERS`).
fn parse_headers(list: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for pair in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(format!("OTLP header {pair:?} must be written key=value"));
        };
        let (key, value) = (key.trim(), percent_decode(value.trim()));
        if key.is_empty() {
            return Err(format!("OTLP header {pair:?} has no name"));
        }
        out.insert(key.to_owned(), value);
    }
    Ok(out)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            // The last one wins, so a test can override a base list.
            vars.iter()
                .rev()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn nothing_set_means_off() {
        let none = TelemetryConfig::default().resolve(env(&[])).unwrap();
        assert_eq!(none, None);
    }

    #[test]
    fn the_standard_variables_win_over_the_file() {
        let file = TelemetryConfig {
            otlp_endpoint: Some("http://file:4318".into()),
            service_name: Some("from-file".into()),
            otlp_headers: BTreeMap::from([("a".into(), "1".into())]),
            ..Default::default()
        };
        let s = file.resolve(env(&[])).unwrap().unwrap();
        assert_eq!(s.endpoint, "http://file:4318/v1/traces");
        assert_eq!(s.service_name, "from-file");
        assert_eq!(s.protocol, Protocol::HttpProtobuf);
        assert_eq!(s.sampling, Sampling::ParentBased(Root::AlwaysOn));

        let vars = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4317/"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_SERVICE_NAME", "gateway"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=2, x-token=s%3Dcret"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ];
        let s = file.resolve(env(&vars)).unwrap().unwrap();
        assert_eq!(s.endpoint, "http://env:4317/");
        assert_eq!(s.protocol, Protocol::Grpc);
        assert_eq!(s.service_name, "gateway");
        assert_eq!(s.headers["a"], "2");
        assert_eq!(s.headers["x-token"], "s=cret");
        assert_eq!(s.sampling, Sampling::ParentBased(Root::Ratio(0.25)));
    }

    #[test]
    fn a_signal_endpoint_is_used_as_given() {
        let vars = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://traces:4318/custom",
            ),
        ];
        let s = TelemetryConfig::default()
            .resolve(env(&vars))
            .unwrap()
            .unwrap();
        assert_eq!(s.endpoint, "http://traces:4318/custom");
    }

    #[test]
    fn disabling_wins_over_an_endpoint() {
        for off in [
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ] {
            let vars = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), off];
            assert_eq!(
                TelemetryConfig::default().resolve(env(&vars)).unwrap(),
                None
            );
        }
    }

    #[test]
    fn what_cannot_be_used_is_named() {
        let base = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        for (bad, named) in [
            (("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"), "http/json"),
            (("OTEL_TRACES_SAMPLER", "xray"), "xray"),
            (("OTEL_TRACES_SAMPLER_ARG", "half"), "half"),
            (("OTEL_TRACES_EXPORTER", "zipkin"), "zipkin"),
            (("OTEL_EXPORTER_OTLP_HEADERS", "novalue"), "novalue"),
            (
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
                "collector:4318",
            ),
        ] {
            let vars = [base, bad];
            let error = TelemetryConfig::default().resolve(env(&vars)).unwrap_err();
            assert!(error.contains(named), "{error}");
        }
        let vars = [
            base,
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ];
        assert!(TelemetryConfig::default().resolve(env(&vars)).is_err());
    }
}
