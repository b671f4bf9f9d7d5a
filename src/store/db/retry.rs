//! The one rule for retries: after its n-th failure an execution is due
//! again after `min(cap, base × factor^(n−1))`, with jitter of at most ±25 %,
//! or — when n reaches its maximum attempts — it ends FAILED. The base, the
//! factor, the cap and the maximum come from the settings
//! (`EXECSTORE_RETRY_*`), each but the factor overridable per execution in
//! `options.retry { maxAttempts, backoffMs, maxBackoffMs }` (checked at
//! create). Finishes with status CREATED, recovery putting an execution back
//! (`updateExecutionStatus` or `updateFailureInfo` counting a failure) and
//! the statements that carry out the decision all take it from here.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::error::{StoreError, StoreResult};
use super::values::validate;

/// The longest wait a retry may be given (`retryInMs`, `backoffMs`,
/// `maxBackoffMs`): 30 days.
pub const MAX_RETRY_DELAY_MS: i64 = 30 * 86_400_000;

/// The settings' retry policy.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// The attempts an execution gets in all: the failure that reaches this
    /// count ends it.
    pub max_attempts: i32,
    /// The wait after the first failure.
    pub backoff: Duration,
    /// Each further failure waits this many times longer.
    pub factor: f64,
    /// No wait is longer.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// The seed's rule: five attempts, the first retry a minute later.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            backoff: Duration::from_secs(60),
            factor: 2.0,
            max_backoff: Duration::from_secs(3600),
        }
    }
}

/// What comes after a failure.
#[derive(Clone, Debug, PartialEq)]
pub enum AfterFailure {
    /// Due again at this time.
    Retry { at: DateTime<Utc> },
    /// No attempt left: FAILED, with this error message.
    Exhausted { message: String },
}

/// An execution's own `options.retry`, each field optional.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Overrides {
    max_attempts: Option<i32>,
    backoff_ms: Option<i64>,
    max_backoff_ms: Option<i64>,
}

/// Checks the options of a create: `options.retry` an object of integers
/// in range, and the run's controls (`options.execution`, see
/// `run_controls`).
pub fn check_options(options: Option<&Value>) -> StoreResult<()> {
    overrides(options)?;
    super::run_controls::RunControls::of(options)?;
    Ok(())
}

fn overrides(options: Option<&Value>) -> StoreResult<Overrides> {
    let shape = "{ maxAttempts, backoffMs, maxBackoffMs }";
    let Some(retry) = validate::options_object(options, "retry", "options.retry", shape)? else {
        return Ok(Overrides::default());
    };
    let int = |name: &str, min: i64, max: i64| {
        validate::integer_field(retry, "options.retry", name, min, max)
    };
    for name in retry.keys() {
        if !["maxAttempts", "backoffMs", "maxBackoffMs"].contains(&name.as_str()) {
            return Err(StoreError::invalid(
                "options.retry",
                format!("unknown field {name} (maxAttempts, backoffMs, maxBackoffMs)"),
            ));
        }
    }
    Ok(Overrides {
        max_attempts: int("maxAttempts", 1, 1000)?.map(|v| v as i32),
        backoff_ms: int("backoffMs", 0, MAX_RETRY_DELAY_MS)?,
        max_backoff_ms: int("maxBackoffMs", 0, MAX_RETRY_DELAY_MS)?,
    })
}

impl RetryPolicy {
    /// The attempts an execution with `options` gets in all.
    pub fn max_attempts(&self, options: Option<&Value>) -> i32 {
        overrides(options)
            .ok()
            .and_then(|o| o.max_attempts)
            .unwrap_or(self.max_attempts)
    }

    /// The wait after the `failures`-th failure, before jitter, in ms.
    fn backoff_ms(&self, options: Option<&Value>, failures: i32) -> f64 {
        let own = overrides(options).unwrap_or_default();
        let ms = |d: Duration| d.as_millis().min(i64::MAX as u128) as i64;
        let base = own.backoff_ms.unwrap_or(ms(self.backoff)) as f64;
        let cap = own.max_backoff_ms.unwrap_or(ms(self.max_backoff)) as f64;
        let exponent = (failures - 1).clamp(0, 1000);
        (base * self.factor.powi(exponent)).min(cap)
    }

    /// After the `failures`-th failure of an execution with `options`, at
    /// `now`: when it is due again (after `retry_in_ms` when given, instead
    /// of its backoff), or that it ran out of attempts. `jitter` is a
    /// number in [0, 1) (uniform) that spreads the wait within ±25 %.
    pub fn after_failure(
        &self,
        options: Option<&Value>,
        failures: i32,
        retry_in_ms: Option<i64>,
        now: DateTime<Utc>,
        jitter: f64,
    ) -> AfterFailure {
        let max = self.max_attempts(options);
        if failures >= max {
            return AfterFailure::Exhausted {
                message: format!("ran out of attempts: {failures} of {max} failed"),
            };
        }
        let wait_ms = match retry_in_ms {
            Some(ms) => ms as f64,
            None => self.backoff_ms(options, failures) * (0.75 + 0.5 * jitter.clamp(0.0, 1.0)),
        };
        let wait = chrono::Duration::microseconds((wait_ms * 1000.0).round() as i64);
        AfterFailure::Retry {
            at: super::values::truncate_micros(now + wait),
        }
    }
}

/// A uniform number in [0, 1) for `after_failure`'s jitter.
pub fn jitter() -> f64 {
    fastrand::f64()
}

/// Checks a `retryInMs`.
pub fn check_retry_in(ms: i64) -> StoreResult<()> {
    super::values::validate::range("retryInMs", ms, 0, MAX_RETRY_DELAY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(policy: &RetryPolicy, options: Option<&Value>, failures: i32, jitter: f64) -> i64 {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        match policy.after_failure(options, failures, None, now, jitter) {
            AfterFailure::Retry { at } => (at - now).num_milliseconds(),
            AfterFailure::Exhausted { .. } => -1,
        }
    }

    #[test]
    fn waits_grow_by_the_factor_up_to_the_cap_and_end_at_the_last_attempt() {
        let policy = RetryPolicy::default();
        // No jitter: jitter 0.5 is the middle of ±25 %.
        assert_eq!(at(&policy, None, 1, 0.5), 60_000);
        assert_eq!(at(&policy, None, 2, 0.5), 120_000);
        assert_eq!(at(&policy, None, 4, 0.5), 480_000);
        assert_eq!(at(&policy, None, 5, 0.5), -1, "the fifth failure ends it");
        let own = serde_json::json!({ "retry": { "maxAttempts": 20, "backoffMs": 1000, "maxBackoffMs": 5000 } });
        assert_eq!(at(&policy, Some(&own), 3, 0.5), 4000);
        assert_eq!(at(&policy, Some(&own), 10, 0.5), 5000, "capped");
        assert_eq!(at(&policy, Some(&own), 20, 0.5), -1);
    }

    #[test]
    fn jitter_stays_within_a_quarter() {
        let policy = RetryPolicy::default();
        assert_eq!(at(&policy, None, 1, 0.0), 45_000);
        assert_eq!(at(&policy, None, 1, 0.999_999), 74_999);
        let now = DateTime::<Utc>::UNIX_EPOCH;
        assert_eq!(
            policy.after_failure(None, 1, Some(10), now, 0.0),
            AfterFailure::Retry {
                at: now + chrono::Duration::milliseconds(10)
            },
            "retryInMs instead of the backoff, without jitter"
        );
    }

    #[test]
    fn options_are_checked() {
        for bad in [
            serde_json::json!({ "retry": 3 }),
            serde_json::json!({ "retry": { "maxAttempts": "5" } }),
            serde_json::json!({ "retry": { "maxAttempts": 0 } }),
            serde_json::json!({ "retry": { "backoffMs": -1 } }),
            serde_json::json!({ "retry": { "backofMs": 10 } }),
        ] {
            assert!(check_options(Some(&bad)).is_err(), "{bad}");
        }
        for good in [
            serde_json::json!({}),
            serde_json::json!({ "retry": null }),
            serde_json::json!({ "retry": { "maxAttempts": 3 } }),
            serde_json::json!({ "other": 1 }),
        ] {
            assert!(check_options(Some(&good)).is_ok(), "{good}");
        }
    }
}
