//! Export schedules, the pure part: a cron expression in a time zone
//! (`Trigger`), the schedule's state, and the decisions made on it — which
//! run is due (`ExportSchedule::claim`), what a failed run leads to (a
//! retry with backoff, or an alert once the retries are spent), and which
//! older outputs retention removes. The store keeps the state and a
//! revision; a process that claims a run writes the next state only if the
//! revision is still the one it read, so each run is claimed by one process
//! however many share the store.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Deserialize, Serialize};

use super::ExportSpec;
use crate::error::FieldError;
use crate::ids::{OrgId, ScheduleId};

/// When a schedule fires: a cron expression (five fields, or six with
/// seconds first) read in an IANA time zone, so `0 2 * * *` in
/// `Europe/Berlin` is 02:00 there, summer and winter.
#[derive(Debug, Clone)]
pub struct Trigger {
    cron: Cron,
    zone: Tz,
}

impl Trigger {
    /// Field errors name `cron` or `timezone`.
    pub fn parse(cron: &str, timezone: &str) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let parsed = if cron.len() > 256 {
            errors.push(FieldError::new("cron", "must be at most 256 characters"));
            None
        } else {
            match CronParser::builder()
                .seconds(Seconds::Optional)
                .year(Year::Disallowed)
                .build()
                .parse(cron)
            {
                Ok(c) => Some(c),
                Err(e) => {
                    errors.push(FieldError::new(
                        "cron",
                        format!(
                            "not a cron expression ({e}); use five fields (minute hour day month weekday) or six with seconds first"
                        ),
                    ));
                    None
                }
            }
        };
        let zone = match Tz::from_str(timezone) {
            Ok(zone) => Some(zone),
            Err(_) => {
                errors.push(FieldError::new(
                    "timezone",
                    format!("unknown time zone `{timezone}`; use an IANA name such as `UTC` or `Europe/Berlin`"),
                ));
                None
            }
        };
        match (parsed, zone) {
            (Some(cron), Some(zone)) if errors.is_empty() => {
                let trigger = Trigger { cron, zone };
                if trigger.next_after(Utc::now()).is_none() {
                    return Err(vec![FieldError::new("cron", "never fires")]);
                }
                Ok(trigger)
            }
            _ => Err(errors),
        }
    }

    /// The first time the schedule fires strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(&self.zone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|next| next.with_timezone(&Utc))
    }

    /// `t` as a wall-clock time in the schedule's zone, for output names.
    pub fn local(&self, t: DateTime<Utc>) -> DateTime<Tz> {
        t.with_timezone(&self.zone)
    }
}

/// Which outputs of a schedule are kept; the rest are deleted at their
/// target after each successful run. Nothing set keeps everything.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// Keep the newest N outputs.
    pub keep_last: Option<u32>,
    /// Keep outputs younger than D days.
    pub max_age_days: Option<u32>,
}

impl Retention {
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.keep_last == Some(0) {
            return Err(FieldError::new(
                "retention.keep_last",
                "must be at least 1 (leave it out to keep every output)",
            ));
        }
        if self.max_age_days == Some(0) {
            return Err(FieldError::new(
                "retention.max_age_days",
                "must be at least 1 (leave it out to keep outputs of any age)",
            ));
        }
        Ok(())
    }

    /// Of `outputs` (newest first: when each was written and where), the
    /// indexes to delete. The newest output is always kept, and so is an
    /// older one at the same location as a kept one (a fixed output name
    /// is rewritten by every run: deleting it would delete the newest).
    pub fn expired(&self, outputs: &[(DateTime<Utc>, &str)], now: DateTime<Utc>) -> Vec<usize> {
        let too_old = |at: DateTime<Utc>| {
            self.max_age_days
                .is_some_and(|days| now - at > chrono::Duration::days(i64::from(days)))
        };
        let beyond = |i: usize| {
            self.keep_last
                .is_some_and(|n| i >= usize::try_from(n).unwrap_or(usize::MAX))
        };
        let gone: Vec<bool> = outputs
            .iter()
            .enumerate()
            .map(|(i, (at, _))| i > 0 && (beyond(i) || too_old(*at)))
            .collect();
        (0..outputs.len())
            .filter(|&i| {
                gone[i]
                    && !outputs
                        .iter()
                        .zip(&gone)
                        .any(|((_, loc), g)| !g && *loc == outputs[i].1)
            })
            .collect()
    }
}

/// Retries of a failed scheduled run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first failed run of a tick, before an alert.
    pub retries: u32,
    /// The wait before the first retry; each next one waits four times
    /// longer, at most an hour.
    pub base: Duration,
}

impl RetryPolicy {
    /// The wait before retrying after failed attempt `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 4u32.saturating_pow(attempt.saturating_sub(1));
        self.base
            .saturating_mul(factor)
            .min(Duration::from_secs(3600))
    }
}

/// One run a schedule owes: the tick it is for and which attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub scheduled_for: DateTime<Utc>,
    /// 1 for the tick's first run, then 2, 3… for its retries.
    pub attempt: u32,
}

/// What a failed run leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    RetryAt(DateTime<Utc>),
    /// The retries are spent: alert, and wait for the next tick.
    Exhausted,
}

/// A stored schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSchedule {
    pub id: ScheduleId,
    pub org_id: OrgId,
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub enabled: bool,
    /// What each run exports; its target's path may hold `{date}`,
    /// `{time}` and `{id}`, filled in per run.
    pub export: ExportSpec,
    pub retention: Retention,
    /// The next tick (kept while disabled; recomputed on enabling).
    pub next_run_at: DateTime<Utc>,
    /// The retry owed after a failed run, if any.
    pub retry: Option<(DateTime<Utc>, Run)>,
    /// Changed by every write; a write names the revision it read.
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ExportSchedule {
    /// When it next has a run to start (none while disabled).
    pub fn due_at(&self) -> Option<DateTime<Utc>> {
        if !self.enabled {
            return None;
        }
        Some(match self.retry {
            Some((at, _)) => at.min(self.next_run_at),
            None => self.next_run_at,
        })
    }

    /// The run due at `now`, if one is, and the schedule's state once it is
    /// claimed. A tick passes over the ticks missed while nothing ran (one
    /// run, not one per missed tick) and supersedes a pending retry.
    pub fn claim(&self, trigger: &Trigger, now: DateTime<Utc>) -> Option<(ExportSchedule, Run)> {
        if !self.enabled {
            return None;
        }
        let mut next = self.clone();
        next.revision += 1;
        next.updated_at = now;
        if self.next_run_at <= now {
            let run = Run {
                scheduled_for: self.next_run_at,
                attempt: 1,
            };
            // A pattern that stops firing leaves the schedule idle, far ahead.
            next.next_run_at = trigger.next_after(now).unwrap_or(DateTime::<Utc>::MAX_UTC);
            next.retry = None;
            return Some((next, run));
        }
        match self.retry {
            Some((at, run)) if at <= now => {
                next.retry = None;
                Some((next, run))
            }
            _ => None,
        }
    }

    /// The state after `run` failed at `now`.
    pub fn failed(
        &self,
        run: Run,
        policy: RetryPolicy,
        now: DateTime<Utc>,
    ) -> (ExportSchedule, AfterFailure) {
        let mut next = self.clone();
        next.revision += 1;
        next.updated_at = now;
        if run.attempt > policy.retries {
            next.retry = None;
            return (next, AfterFailure::Exhausted);
        }
        let wait = chrono::Duration::from_std(policy.backoff(run.attempt))
            .unwrap_or(chrono::Duration::hours(1));
        let at = now + wait;
        next.retry = Some((
            at,
            Run {
                scheduled_for: run.scheduled_for,
                attempt: run.attempt + 1,
            },
        ));
        (next, AfterFailure::RetryAt(at))
    }
}

/// The placeholders a scheduled target path may hold.
pub const PATH_PLACEHOLDERS: [&str; 3] = ["{date}", "{time}", "{id}"];

/// Checks that `path` uses no placeholder but `{date}`, `{time}` and `{id}`.
pub fn check_path_template(path: &str) -> Result<(), String> {
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let tail = &rest[start..];
        match PATH_PLACEHOLDERS.iter().find(|p| tail.starts_with(*p)) {
            Some(p) => rest = &tail[p.len()..],
            None => {
                return Err(
                    "may hold only the placeholders {date}, {time} and {id} (no other `{`)".into(),
                );
            }
        }
    }
    if rest.contains('}') || path.matches('}').count() != path.matches('{').count() {
        return Err("has a `}` outside a placeholder".into());
    }
    Ok(())
}

/// `path` with `{date}` (`YYYY-MM-DD`) and `{time}` (`HHMMSS`) of the
/// run's tick in the schedule's zone, and `{id}` the export's id.
pub fn fill_path(path: &str, trigger: &Trigger, run: Run, export_id: &str) -> String {
    let local = trigger.local(run.scheduled_for);
    fill_placeholders(
        path,
        &local.format("%Y-%m-%d").to_string(),
        &local.format("%H%M%S").to_string(),
        export_id,
    )
}

/// `path` with `{date}`, `{time}` and `{id}` replaced by these values (a
/// run's, or a sample to check a path before any run).
pub fn fill_placeholders(path: &str, date: &str, time: &str, id: &str) -> String {
    path.replace("{date}", date)
        .replace("{time}", time)
        .replace("{id}", id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_daily_time_follows_its_zone_across_daylight_saving() {
        let t = Trigger::parse("0 2 * * *", "Europe/Berlin").unwrap();
        // Winter: UTC+1.
        assert_eq!(
            t.next_after(at("2026-01-10T12:00:00Z")),
            Some(at("2026-01-11T01:00:00Z"))
        );
        // Summer: UTC+2.
        assert_eq!(
            t.next_after(at("2026-07-10T12:00:00Z")),
            Some(at("2026-07-11T00:00:00Z"))
        );
    }

    #[test]
    fn seconds_are_optional_and_strictly_after() {
        let t = Trigger::parse("*/5 * * * * *", "UTC").unwrap();
        assert_eq!(
            t.next_after(at("2026-01-01T00:00:05Z")),
            Some(at("2026-01-01T00:00:10Z"))
        );
    }

    #[test]
    fn bad_expressions_and_zones_name_their_field() {
        let e = Trigger::parse("61 * * * *", "Mars/Olympus").unwrap_err();
        let fields: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["cron", "timezone"]);
        assert!(Trigger::parse("* * * * * * 2030", "UTC").is_err());
        assert!(
            Trigger::parse("0 0 30 2 *", "UTC").is_err(),
            "Feb 30 never fires"
        );
    }

    fn schedule(next: &str) -> ExportSchedule {
        let spec = crate::export::request::parse(
            serde_json::from_value(serde_json::json!({"source": "deliveries"})).unwrap(),
        )
        .unwrap();
        ExportSchedule {
            id: ScheduleId::generate(),
            org_id: OrgId::generate(),
            name: "nightly".into(),
            cron: "0 * * * *".into(),
            timezone: "UTC".into(),
            enabled: true,
            export: spec,
            retention: Retention::default(),
            next_run_at: at(next),
            retry: None,
            revision: 1,
            created_at: at("2026-01-01T00:00:00Z"),
            updated_at: at("2026-01-01T00:00:00Z"),
        }
    }

    #[test]
    fn a_late_claim_runs_once_and_skips_to_the_next_tick() {
        let t = Trigger::parse("0 * * * *", "UTC").unwrap();
        let s = schedule("2026-01-01T01:00:00Z");
        assert!(s.claim(&t, at("2026-01-01T00:59:59Z")).is_none());
        let (next, run) = s.claim(&t, at("2026-01-01T04:30:00Z")).unwrap();
        assert_eq!(run.scheduled_for, at("2026-01-01T01:00:00Z"));
        assert_eq!(run.attempt, 1);
        assert_eq!(next.next_run_at, at("2026-01-01T05:00:00Z"));
        assert_eq!(next.revision, 2);
        assert!(next.claim(&t, at("2026-01-01T04:30:01Z")).is_none());
        let mut off = s.clone();
        off.enabled = false;
        assert!(off.claim(&t, at("2026-01-02T00:00:00Z")).is_none());
        assert_eq!(off.due_at(), None);
    }

    #[test]
    fn failures_retry_with_growing_waits_then_give_up() {
        let t = Trigger::parse("0 * * * *", "UTC").unwrap();
        let policy = RetryPolicy {
            retries: 2,
            base: Duration::from_secs(60),
        };
        let s = schedule("2026-01-01T01:00:00Z");
        let now = at("2026-01-01T01:00:10Z");
        let (s, run) = s.claim(&t, now).unwrap();
        let (s, after) = s.failed(run, policy, now);
        assert_eq!(after, AfterFailure::RetryAt(at("2026-01-01T01:01:10Z")));
        assert_eq!(s.due_at(), Some(at("2026-01-01T01:01:10Z")));
        let (s, retry) = s.claim(&t, at("2026-01-01T01:01:10Z")).unwrap();
        assert_eq!((retry.scheduled_for, retry.attempt), (run.scheduled_for, 2));
        let (s, after) = s.failed(retry, policy, at("2026-01-01T01:01:20Z"));
        assert_eq!(after, AfterFailure::RetryAt(at("2026-01-01T01:05:20Z")));
        let (s, third) = s.claim(&t, at("2026-01-01T01:05:20Z")).unwrap();
        assert_eq!(third.attempt, 3);
        let (s, after) = s.failed(third, policy, at("2026-01-01T01:05:30Z"));
        assert_eq!(after, AfterFailure::Exhausted);
        assert_eq!(s.retry, None);
        assert_eq!(policy.backoff(9), Duration::from_secs(3600));
    }

    #[test]
    fn a_new_tick_supersedes_a_pending_retry() {
        let t = Trigger::parse("0 * * * *", "UTC").unwrap();
        let policy = RetryPolicy {
            retries: 3,
            base: Duration::from_secs(3000),
        };
        let s = schedule("2026-01-01T01:00:00Z");
        let (s, run) = s.claim(&t, at("2026-01-01T01:00:00Z")).unwrap();
        let (s, _) = s.failed(run, policy, at("2026-01-01T01:00:01Z"));
        let (s, tick) = s.claim(&t, at("2026-01-01T02:00:00Z")).unwrap();
        assert_eq!(
            (tick.scheduled_for, tick.attempt),
            (at("2026-01-01T02:00:00Z"), 1)
        );
        assert_eq!(s.retry, None);
    }

    #[test]
    fn retention_keeps_the_newest_and_shared_locations() {
        let now = at("2026-01-10T00:00:00Z");
        let outputs = [
            (at("2026-01-09T00:00:00Z"), "a"),
            (at("2026-01-08T00:00:00Z"), "b"),
            (at("2026-01-07T00:00:00Z"), "c"),
            (at("2026-01-01T00:00:00Z"), "a"),
        ];
        let keep2 = Retention {
            keep_last: Some(2),
            max_age_days: None,
        };
        assert_eq!(keep2.expired(&outputs, now), vec![2]);
        let young = Retention {
            keep_last: None,
            max_age_days: Some(2),
        };
        assert_eq!(young.expired(&outputs, now), vec![2]);
        let one_day = Retention {
            keep_last: None,
            max_age_days: Some(1),
        };
        // Even the newest is older than a day: it stays.
        assert_eq!(
            one_day.expired(&outputs[..1], now + chrono::Duration::days(5)),
            Vec::<usize>::new()
        );
        assert!(Retention::default().expired(&outputs, now).is_empty());
        assert!(
            Retention {
                keep_last: Some(0),
                max_age_days: None
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn output_names_take_the_tick_in_the_schedules_zone() {
        let t = Trigger::parse("0 2 * * *", "Asia/Tokyo").unwrap();
        let run = Run {
            scheduled_for: Utc.with_ymd_and_hms(2026, 3, 1, 17, 0, 0).unwrap(),
            attempt: 1,
        };
        assert_eq!(
            fill_path("daily/{date}/deliveries-{time}-{id}.csv", &t, run, "exp_1"),
            "daily/2026-03-02/deliveries-020000-exp_1.csv"
        );
        assert!(check_path_template("a/{date}-{time}-{id}.csv").is_ok());
        assert!(check_path_template("a/{day}.csv").is_err());
        assert!(check_path_template("a/}.csv").is_err());
    }
}
