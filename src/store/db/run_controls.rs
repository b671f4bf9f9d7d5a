//! A run's controls, `options.execution { maxConcurrency, flowTimeoutMs,
//! nodeTimeoutMs }` as the seed's executions carry them: checked at create
//! (a wrong type or a value out of range is `BAD_USER_INPUT`), read where
//! they act. Other fields of `options.execution` are kept as given and
//! ignored, as the seed kept the whole document opaque.

use serde_json::Value;

use super::error::StoreResult;
use super::values::validate;

/// The longest flow or node timeout: 365 days.
pub const MAX_CONTROL_TIMEOUT_MS: i64 = 365 * 86_400_000;

/// The most executions of a run `maxConcurrency` may allow at once.
pub const MAX_CONCURRENCY: i64 = 1_000_000;

/// What `options.execution` asks of a run, each field optional.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunControls {
    pub max_concurrency: Option<i64>,
    /// Read on a run's root: the run is cancelled this long after the
    /// root's start (or creation) unless it has finished.
    pub flow_timeout_ms: Option<i64>,
    pub node_timeout_ms: Option<i64>,
}

impl RunControls {
    /// The controls of `options` (none when it has no `execution`).
    pub fn of(options: Option<&Value>) -> StoreResult<Self> {
        let shape = "{ maxConcurrency, flowTimeoutMs, nodeTimeoutMs }";
        let field = "options.execution";
        let Some(execution) = validate::options_object(options, "execution", field, shape)? else {
            return Ok(Self::default());
        };
        let int = |name: &str, max: i64| validate::integer_field(execution, field, name, 1, max);
        Ok(Self {
            max_concurrency: int("maxConcurrency", MAX_CONCURRENCY)?,
            flow_timeout_ms: int("flowTimeoutMs", MAX_CONTROL_TIMEOUT_MS)?,
            node_timeout_ms: int("nodeTimeoutMs", MAX_CONTROL_TIMEOUT_MS)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::StoreError;
    use serde_json::json;

    #[test]
    fn reads_and_checks_the_controls() {
        let of = |v: Value| RunControls::of(Some(&v));
        assert_eq!(of(json!({})).unwrap(), RunControls::default());
        assert_eq!(
            of(json!({ "execution": null })).unwrap(),
            RunControls::default()
        );
        let all = of(json!({ "execution": {
            "maxConcurrency": 2, "flowTimeoutMs": 1000, "nodeTimeoutMs": 50, "other": "kept" } }))
        .unwrap();
        assert_eq!(
            all,
            RunControls {
                max_concurrency: Some(2),
                flow_timeout_ms: Some(1000),
                node_timeout_ms: Some(50),
            }
        );
        for bad in [
            json!({ "execution": 3 }),
            json!({ "execution": { "maxConcurrency": 0 } }),
            json!({ "execution": { "maxConcurrency": 1.5 } }),
            json!({ "execution": { "flowTimeoutMs": "60000" } }),
            json!({ "execution": { "nodeTimeoutMs": -1 } }),
            json!({ "execution": { "flowTimeoutMs": MAX_CONTROL_TIMEOUT_MS + 1 } }),
        ] {
            let err = of(bad.clone()).unwrap_err();
            assert!(
                matches!(err, StoreError::InvalidInput { .. }),
                "{bad}: {err:?}"
            );
        }
    }
}
