//! Node and execution states as explicit machines: a transition table, nothing else.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// State of one node within an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum NodeState {
    Pending,
    Running,
    Retrying,
    Paused,
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
}

/// What happens to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeEvent {
    Start,
    Retry,
    Resume,
    Pause,
    Succeed,
    Fail,
    Skip,
    Cancel,
}

/// A transition the table does not allow: a defect in the executor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no transition from {from} on {event}")]
pub struct InvalidTransition {
    pub from: String,
    pub event: String,
}

impl NodeState {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Skipped | Self::Cancelled)
    }

    pub fn on(self, event: NodeEvent) -> Result<NodeState, InvalidTransition> {
        use NodeEvent as E;
        use NodeState as S;
        let next = match (self, event) {
            (S::Pending, E::Start) => S::Running,
            (S::Running, E::Retry) => S::Retrying,
            (S::Retrying | S::Paused, E::Resume) => S::Running,
            (S::Running, E::Pause) => S::Paused,
            (S::Running, E::Succeed) => S::Succeeded,
            (S::Pending | S::Running | S::Retrying | S::Paused, E::Fail) => S::Failed,
            (S::Pending | S::Running | S::Retrying | S::Paused, E::Skip) => S::Skipped,
            (S::Pending | S::Running | S::Retrying | S::Paused, E::Cancel) => S::Cancelled,
            _ => {
                return Err(InvalidTransition { from: format!("{self:?}"), event: format!("{event:?}") });
            }
        };
        Ok(next)
    }
}

/// State of an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ExecutionState {
    /// Waiting for a free slot (MAX_CONCURRENT_EXECUTIONS).
    Queued,
    Running,
    Paused,
    Succeeded,
    Failed,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionEvent {
    Start,
    Pause,
    Resume,
    Succeed,
    Fail,
    Cancel,
}

impl ExecutionState {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    pub fn on(self, event: ExecutionEvent) -> Result<ExecutionState, InvalidTransition> {
        use ExecutionEvent as E;
        use ExecutionState as S;
        let next = match (self, event) {
            (S::Queued, E::Start) => S::Running,
            (S::Running, E::Pause) => S::Paused,
            (S::Paused, E::Resume) => S::Running,
            (S::Running | S::Paused, E::Succeed) => S::Succeeded,
            (S::Queued | S::Running | S::Paused, E::Fail) => S::Failed,
            (S::Queued | S::Running | S::Paused, E::Cancel) => S::Cancelled,
            _ => {
                return Err(InvalidTransition { from: format!("{self:?}"), event: format!("{event:?}") });
            }
        };
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_lifecycle_with_retry_and_pause() {
        let s = NodeState::Pending.on(NodeEvent::Start).expect("start");
        let s = s.on(NodeEvent::Retry).expect("retry");
        assert_eq!(s, NodeState::Retrying);
        let s = s.on(NodeEvent::Resume).expect("resume");
        let s = s.on(NodeEvent::Pause).expect("pause");
        assert_eq!(s, NodeState::Paused);
        let s = s.on(NodeEvent::Resume).expect("resume");
        assert_eq!(s.on(NodeEvent::Succeed), Ok(NodeState::Succeeded));
    }

    #[test]
    fn terminal_node_states_accept_nothing() {
        for s in [NodeState::Succeeded, NodeState::Failed, NodeState::Skipped, NodeState::Cancelled] {
            assert!(s.is_terminal());
            for e in [NodeEvent::Start, NodeEvent::Fail, NodeEvent::Succeed, NodeEvent::Skip] {
                assert!(s.on(e).is_err(), "{s:?} on {e:?}");
            }
        }
    }

    #[test]
    fn pending_node_cannot_succeed_without_running() {
        assert!(NodeState::Pending.on(NodeEvent::Succeed).is_err());
        assert_eq!(NodeState::Pending.on(NodeEvent::Skip), Ok(NodeState::Skipped));
    }

    #[test]
    fn execution_lifecycle() {
        let s = ExecutionState::Queued.on(ExecutionEvent::Start).expect("start");
        let s = s.on(ExecutionEvent::Pause).expect("pause");
        assert!(s.on(ExecutionEvent::Pause).is_err());
        let s = s.on(ExecutionEvent::Resume).expect("resume");
        assert_eq!(s.on(ExecutionEvent::Succeed), Ok(ExecutionState::Succeeded));
        assert_eq!(ExecutionState::Queued.on(ExecutionEvent::Cancel), Ok(ExecutionState::Cancelled));
        assert!(ExecutionState::Succeeded.on(ExecutionEvent::Cancel).is_err());
    }
}
