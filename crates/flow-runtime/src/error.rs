//! Node errors: typed, carrying whether a retry can help.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// What went wrong, which decides retrying and the circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ErrorKind {
    /// Params that cannot work (after templates were applied).
    Params,
    /// A record the node cannot process.
    Record,
    /// The operation took longer than the node's timeout.
    Timeout,
    /// A failure that may go away (connection lost, target busy): retried, counts for the breaker.
    Transient,
    /// A failure a retry will not fix.
    Permanent,
    /// The target's circuit breaker is open.
    CircuitOpen,
    /// The execution was cancelled or halted by another node's failure.
    Cancelled,
}

/// An error raised by a node, as reported in events and history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct NodeError {
    pub kind: ErrorKind,
    pub message: String,
    /// On a `Params` error in user code (an expression or script that does not compile), the
    /// param's JSON pointer (`/operations/2/expression`): validation reports it as such.
    #[serde(skip)]
    pub code_param: Option<String>,
}

impl NodeError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), code_param: None }
    }
    /// User code in param `pointer` does not compile.
    pub fn code(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code_param: Some(pointer.into()), ..Self::params(message) }
    }
    pub fn params(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Params, message)
    }
    pub fn record(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Record, message)
    }
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Transient, message)
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Permanent, message)
    }
    pub(crate) fn cancelled() -> Self {
        Self::new(ErrorKind::Cancelled, "cancelled")
    }

    /// Whether another attempt may succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(self.kind, ErrorKind::Timeout | ErrorKind::Transient)
    }

    /// Whether the failure says something about the health of the external target.
    pub fn counts_for_breaker(&self) -> bool {
        self.is_retriable()
    }
}
