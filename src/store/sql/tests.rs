//! Checks of the statement table's texts.

use super::*;
use entity::{ClaimStatus, ExecutionStatus};
use sea_orm::ActiveEnum;

/// Every quoted word in a statement is a status, a claim status or an
/// event kind as the enums spell them (or one of three known words): PostgreSQL uses a partial index
/// (`WHERE status = 'created'`) only for a statement that names the same
/// literal, and renaming a status must not leave a statement behind.
#[test]
fn statements_spell_statuses_as_the_enums_do() {
    let mut spellings: Vec<String> = ExecutionStatus::ALL
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    spellings.extend(
        [
            ClaimStatus::Active,
            ClaimStatus::Released,
            ClaimStatus::Expired,
        ]
        .iter()
        .map(|s| s.to_value()),
    );
    // The event kind a delete logs, the failure reason of a retry given
    // none, and a JSON type (SQLite's upsert).
    spellings.extend(["deleted".into(), "retry".into(), "null".into()]);
    let mut checked = 0;
    for table in [&POSTGRES, &SQLITE] {
        for text in table.all() {
            let code = without_comments(text);
            for literal in code.split('\'').skip(1).step_by(2) {
                let word = !literal.is_empty()
                    && literal.chars().all(|c| c.is_ascii_lowercase() || c == '_');
                if word {
                    assert!(
                        spellings.iter().any(|s| s == literal),
                        "'{literal}' is not a status: {text}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} literals found");
}

/// A flow's newest run is looked for in every status, each once: a
/// status missing here would hide the flows whose newest run is in it.
#[test]
fn flows_look_for_the_newest_run_in_every_status() {
    let flows = without_comments(POSTGRES.flows);
    for status in ExecutionStatus::ALL {
        let probe = format!("e.status = '{}'", status.as_str());
        assert_eq!(flows.matches(&probe).count(), 1, "{probe}");
    }
    assert_eq!(
        flows.matches("e.status = '").count(),
        ExecutionStatus::ALL.len()
    );
}

/// The status slots of the feeds follow `ExecutionStatus::ALL`: slot i
/// is parameter `first + i` (see `reads::feeds`).
#[test]
fn status_slots_are_one_per_status() {
    for (text, first) in [
        (POSTGRES.roots_by_status, 8),
        (POSTGRES.child_feed, 6),
        (POSTGRES.direct_child_feed_by_status, 6),
    ] {
        for i in 0..ExecutionStatus::ALL.len() {
            let slot = format!("status = ${}", first + i);
            assert_eq!(text.matches(&slot).count(), 1, "{slot} in {text}");
        }
    }
}
