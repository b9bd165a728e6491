//! The bridge from the engine's event bus to the webview. Tauri's plain events are not built for
//! high throughput, so events travel over an IPC channel in the engine's coalesced batches
//! (`flow_engine::coalesce`), one forwarding task per page subscription.

use std::collections::HashMap;
use std::sync::Mutex;

use tauri::async_runtime::JoinHandle;

/// The forwarding tasks of each webview, so a reload (which drops the page's channels) stops
/// them instead of leaving them to send into the void.
#[derive(Debug, Default)]
pub(crate) struct Bridges {
    tasks: Mutex<HashMap<String, Vec<JoinHandle<()>>>>,
}

impl Bridges {
    pub(crate) fn add(&self, webview: &str, task: JoinHandle<()>) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.entry(webview.to_owned()).or_default().push(task);
    }

    /// Stops every forwarding task of a webview (called when its page starts loading).
    pub(crate) fn stop(&self, webview: &str) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        for task in tasks.remove(webview).unwrap_or_default() {
            task.abort();
        }
    }
}
