//! The one error type of the app's commands. It reaches the UI as a plain string carrying the
//! engine's (or the file layer's) own message, which is what the UI shows to the user.

use serde::{Serialize, Serializer};

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CommandError {
    #[error(transparent)]
    Engine(#[from] flow_engine::EngineError),
    #[error(transparent)]
    FlowFile(#[from] flow_model::FlowFileError),
    #[error("`{0}` is not an execution id")]
    ExecutionId(String),
    #[error("`{0}` is not an alert rule id")]
    AlertRuleId(String),
    #[error("no examples folder found (set FLOW_EXAMPLES_DIR)")]
    NoExamples,
    #[error("examples folder {dir}: {source}")]
    Examples {
        dir: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("event channel: {0}")]
    Channel(#[from] tauri::Error),
    #[error(transparent)]
    Secrets(#[from] flow_engine::SecretsError),
    #[error("no secret named `{0}`")]
    NoSecret(String),
}

impl Serialize for CommandError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

/// What every command returns.
pub(crate) type CommandResult<T> = Result<T, CommandError>;

#[cfg(test)]
mod tests {
    use super::CommandError;

    #[test]
    fn errors_serialize_as_their_message() {
        let e = CommandError::ExecutionId("nope".into());
        assert_eq!(serde_json::to_value(&e).ok(), Some(serde_json::json!("`nope` is not an execution id")));
    }
}
