//! Errors of the simulator library.

use std::path::PathBuf;

use crate::sweep::SweepError;

/// Why a scenario could not be built, run or written out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The scenario asks for something the world cannot build.
    #[error("scenario: {0}")]
    Scenario(String),
    /// The scenario text or an override is not valid TOML for a scenario.
    #[error("scenario: {0}")]
    Toml(#[from] toml::de::Error),
    /// A sweep definition is unusable.
    #[error(transparent)]
    Sweep(#[from] SweepError),
    /// A genesis policy could not be encoded.
    #[error("encoding a policy: {0}")]
    Codec(#[from] acp_protocol::codec::CodecError),
    /// Writing results failed.
    #[error("writing results: {0}")]
    Io(#[from] std::io::Error),
    /// Encoding results as JSON failed.
    #[error("encoding results: {0}")]
    Json(#[from] serde_json::Error),
    /// Drawing a chart failed.
    #[error("plot {path}: {message}")]
    Plot {
        /// The chart file.
        path: PathBuf,
        /// What the plotting library said.
        message: String,
    },
    /// A sweep worker thread panicked.
    #[error("a sweep worker panicked")]
    Worker,
}

/// `Err(SimError::Scenario(..))` unless `ok`.
pub(crate) fn ensure(ok: bool, message: impl FnOnce() -> String) -> Result<(), SimError> {
    if ok {
        Ok(())
    } else {
        Err(SimError::Scenario(message()))
    }
}
