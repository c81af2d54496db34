//! The per-key ingest rate limit (GCRA): each API key may send
//! `rate_limit_per_s` events per second with bursts up to
//! `rate_limit_burst`; past it, `429 rate_limited` with `Retry-After`.

use std::num::NonZeroU32;

use ferry_core::ApiKeyId;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::Error;
use crate::config::IngestConfig;

pub struct IngestLimiter {
    limiter: Option<DefaultKeyedRateLimiter<ApiKeyId>>,
    per_s: u32,
}

impl IngestLimiter {
    pub fn new(config: &IngestConfig) -> Self {
        let limiter = NonZeroU32::new(config.rate_limit_per_s).map(|rate| {
            let burst = NonZeroU32::new(config.rate_limit_burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Self {
            limiter,
            per_s: config.rate_limit_per_s,
        }
    }

    /// Takes `events` from the key's allowance, or says when to come back.
    pub fn check(&self, key: &ApiKeyId, events: usize) -> Result<(), Error> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        let n =
            NonZeroU32::new(u32::try_from(events).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
        match limiter.check_key_n(key, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(Error::RateLimited {
                    message: format!(
                        "this API key may send {} events per second; retry later",
                        self.per_s
                    ),
                    retry_after_s: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                })
            }
            Err(_) => Err(Error::RateLimited {
                message: format!(
                    "{events} events at once exceed this API key's burst limit; send smaller batches"
                ),
                retry_after_s: 1,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_past_its_rate_is_told_when_to_retry_and_others_are_not_affected() {
        let config = IngestConfig {
            rate_limit_per_s: 2,
            rate_limit_burst: 3,
            ..IngestConfig::default()
        };
        let limiter = IngestLimiter::new(&config);
        let (a, b) = (ApiKeyId::generate(), ApiKeyId::generate());
        assert!(limiter.check(&a, 3).is_ok());
        match limiter.check(&a, 1) {
            Err(Error::RateLimited { retry_after_s, .. }) => {
                assert!((1..=2).contains(&retry_after_s))
            }
            other => panic!("expected 429, got {other:?}"),
        }
        assert!(limiter.check(&b, 1).is_ok());
        assert!(matches!(
            limiter.check(&b, 10),
            Err(Error::RateLimited { .. })
        ));
    }

    #[test]
    fn zero_means_unlimited() {
        let limiter = IngestLimiter::new(&IngestConfig::default());
        assert!(limiter.check(&ApiKeyId::generate(), 1_000_000).is_ok());
    }
}
