//! The bottom of the store: the database handle every part works through
//! (connections, the SQLite writer, the wake-ups, the queue heads, the
//! statement table chosen at connect), rows, errors and the values all the
//! parts share. The only place that knows which backend it runs on.

mod bus;
mod connect;
mod cursor;
mod effects;
mod error;
mod group_commit;
mod handle;
mod heads;
mod relay;
mod replicas;
mod retry;
mod rows;
pub(crate) mod run;
mod run_controls;
mod slots;
mod values;

pub use bus::EventBus;
pub use connect::{connect, defaults, migrate, DbOptions, SqliteSync};
pub use cursor::Cursor;
pub(crate) use effects::Effects;
pub(crate) use error::is_foreign_key_violation;
pub use error::{StoreError, StoreResult};
pub(crate) use group_commit::Writer;
pub use group_commit::{GroupCommitStats, MAX_GROUP};
pub(crate) use handle::ArrayColumn;
pub use handle::{Db, PoolStats};
pub(crate) use heads::{queue_key, HeadStart, QueueKey};
pub use replicas::{decode_token, encode_token, ReadRoute, Standbys};
pub use retry::{
    check_options, check_retry_in, jitter, AfterFailure, RetryPolicy, MAX_RETRY_DELAY_MS,
};
pub use rows::Columns;
pub use run_controls::RunControls;
pub use slots::ConcurrencyLimit;
pub(crate) use slots::Slots;
pub use values::{after_all, before_all, limits, now, time_text, truncate_micros, validate, Scope};
