//! Approval events across replicas: PostgreSQL NOTIFY on one channel with
//! the approval's id, and a listener per replica that reconnects (with
//! backoff) when its connection drops. SQLite is one process: the API's
//! in-process broadcast is all there is. Events only say "look again";
//! every reader loads the approval from the store and checks who may see
//! it, so a lost or forged notification changes nothing but timing.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::error::Result;
use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;

const CHANNEL: &str = "gatehouse_approvals";

#[async_trait]
pub(crate) trait EngineEvents {
    async fn announce(&self, id: &str) -> Result<()>;
    async fn wakeups(&self) -> Option<mpsc::Receiver<String>>;
}

#[async_trait]
impl EngineEvents for SqliteStore {
    async fn announce(&self, _id: &str) -> Result<()> {
        Ok(())
    }

    async fn wakeups(&self) -> Option<mpsc::Receiver<String>> {
        None
    }
}

#[async_trait]
impl EngineEvents for PgStore {
    async fn announce(&self, id: &str) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn wakeups(&self) -> Option<mpsc::Receiver<String>> {
        let (tx, rx) = mpsc::channel(256);
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!("approval listener cannot connect: {e}");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                };
                if let Err(e) = listener.listen(CHANNEL).await {
                    tracing::warn!("approval listener cannot LISTEN: {e}");
                    tokio::time::sleep(backoff).await;
                    continue;
                }
                backoff = Duration::from_millis(100);
                loop {
                    match listener.try_recv().await {
                        Ok(Some(n)) => {
                            if tx.send(n.payload().to_string()).await.is_err() {
                                return;
                            }
                        }
                        // Reconnected: whatever was missed shows on reload.
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!("approval listener failed: {e}");
                            break;
                        }
                    }
                }
            }
        });
        Some(rx)
    }
}
