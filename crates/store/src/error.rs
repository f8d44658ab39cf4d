//! Store errors. Backend detail is kept for the server log; the API turns
//! anything but a conflict into a generic 500/503 with a correlation id.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    /// A uniqueness rule was hit (name taken, already claimed, ...).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The database could not be reached or timed out.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The database answered with an error we did not expect.
    #[error("store error: {0}")]
    Backend(String),
    #[error("bad store URL: {0}")]
    Url(String),
    #[error("migration failed: {0}")]
    Migration(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict("unique constraint")
            }
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Backend(e.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migration(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;
