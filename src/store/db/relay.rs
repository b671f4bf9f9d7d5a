//! Wake-ups across processes (PostgreSQL): every commit here sends one
//! NOTIFY (per burst) to the other execstore processes on the same database,
//! and their NOTIFYs wake this one's log reader and waiting workers. Nothing
//! depends on a NOTIFY arriving: the log reader polls, and a lost LISTEN
//! connection counts as a requeue everywhere.

use std::time::Duration;

use tokio::sync::mpsc;

use super::bus::EventBus;
use super::error::StoreResult;
use super::handle::Db;

const CHANNEL: &str = "execstore_events";
/// Ends a NOTIFY's payload (after the sender's origin) when the writes it
/// announces put executions back in the queue.
const REQUEUED: &str = ";requeued";

impl Db {
    /// Wakes other execstore processes on the same database when this one
    /// writes, and this one when they do; returns once this process is
    /// listening. A no-op where the statement table has no NOTIFY (SQLite:
    /// one process per database file).
    pub async fn relay_across_processes(&self, database_url: &str) -> StoreResult<()> {
        use sea_orm::sqlx::postgres::PgListener;
        let Some(notify) = self.sql().notify else {
            return Ok(());
        };
        let connect_error = |e| sea_orm::DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e));
        let mut listener = PgListener::connect(database_url)
            .await
            .map_err(connect_error)?;
        listener.listen(CHANNEL).await.map_err(connect_error)?;
        let (tx, rx) = mpsc::unbounded_channel();
        if !self.bus().relay_to(tx) {
            return Ok(()); // already relaying
        }
        tokio::spawn(notify_loop(
            database_url.to_owned(),
            notify,
            self.bus().clone(),
            rx,
        ));
        tokio::spawn(listen_loop(self.bus().clone(), listener));
        Ok(())
    }
}

/// Sends one NOTIFY for every burst of local writes, on a connection of
/// its own (a pooled one would be tested by sqlx each time it went back).
/// The payload names this process, which ignores its own echo, and says
/// when the burst requeued executions.
async fn notify_loop(
    database_url: String,
    notify: &'static str,
    events: EventBus,
    mut rx: mpsc::UnboundedReceiver<()>,
) {
    use sea_orm::sqlx::{Connection, PgConnection};
    let mut connection: Option<PgConnection> = None;
    while rx.recv().await.is_some() {
        while rx.try_recv().is_ok() {}
        if connection.is_none() {
            match PgConnection::connect(&database_url).await {
                Ok(c) => connection = Some(c),
                Err(err) => {
                    tracing::warn!(error = %err, "could not wake other processes (they poll the log)");
                    continue;
                }
            }
        }
        let Some(c) = connection.as_mut() else {
            continue;
        };
        let mut payload = events.origin().to_owned();
        let requeued = events.take_unsent_requeue();
        if requeued {
            payload.push_str(REQUEUED);
        }
        let sent = sea_orm::sqlx::query(notify)
            .bind(CHANNEL)
            .bind(&payload)
            .execute(&mut *c)
            .await;
        if let Err(err) = sent {
            tracing::warn!(error = %err, "could not wake other processes (they poll the log)");
            connection = None;
            if requeued {
                events.keep_unsent_requeue();
            }
        }
    }
}

/// Other processes' wake-ups: read the log now, and let waiting workers try.
async fn listen_loop(events: EventBus, mut listener: sea_orm::sqlx::postgres::PgListener) {
    loop {
        match listener.recv().await {
            Ok(notification) => {
                let payload = notification.payload();
                let (origin, requeued) = match payload.strip_suffix(REQUEUED) {
                    Some(origin) => (origin, true),
                    None => (payload, false),
                };
                if origin == events.origin() {
                    continue;
                }
                if requeued {
                    events.requeued_elsewhere();
                } else {
                    events.signal_work();
                }
                events.wake_reader();
            }
            Err(err) => {
                // PgListener reconnects on the next recv; whatever was
                // written meanwhile is in the log: read it now.
                tracing::warn!(error = %err, "event listener lost its connection; reconnecting");
                events.wake_reader();
                events.requeued_elsewhere();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
