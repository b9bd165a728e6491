//! Test hooks, active only when the app runs with FLOW_TEST=1 (desktop end-to-end tests and
//! benchmarks; never set by the launch script or the package):
//!
//! - an initialization script sets `window.__FLOW_TEST__ = true` before the page loads (the UI
//!   then exposes its store as `window.__flowStore`) and records in `window.__flowMarks.palette`
//!   the time (ms since the epoch) the first palette item appeared, for the start-up benchmark;
//! - the native file dialogs (which WebDriver cannot drive) are replaced by a stand-in plugin of
//!   the same name: `save` answers FLOW_TEST_SAVE_PATH, `open` answers FLOW_TEST_OPEN_PATH (no
//!   path, like a cancelled dialog, when unset), and message dialogs answer with their
//!   affirmative button;
//! - the window size and position are not restored, so every run starts at 1280x800.

use serde::Deserialize;
use tauri::plugin::{Builder, TauriPlugin};

/// True when FLOW_TEST=1.
pub(crate) fn enabled() -> bool {
    std::env::var("FLOW_TEST").is_ok_and(|v| v == "1")
}

/// Runs before the page's own scripts.
pub(crate) const INIT_SCRIPT: &str = r#"
window.__FLOW_TEST__ = true;
window.__flowMarks = window.__flowMarks || {};
(function () {
  var seen = function () {
    if (!window.__flowMarks.palette && document.querySelector('[data-testid^="palette-item-"]')) {
      window.__flowMarks.palette = Date.now();
      observer.disconnect();
    }
  };
  var observer = new MutationObserver(seen);
  observer.observe(document, { childList: true, subtree: true });
})();
"#;

/// The answers of the stand-in dialogs.
#[derive(Debug, Clone, Default)]
struct Answers {
    save: Option<String>,
    open: Option<String>,
}

fn path_from_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|p| !p.is_empty())
}

/// The stand-in for tauri-plugin-dialog (same plugin name, so the same capability grants apply).
pub(crate) fn dialog_stand_in<R: tauri::Runtime>() -> TauriPlugin<R> {
    let answers =
        Answers { save: path_from_env("FLOW_TEST_SAVE_PATH"), open: path_from_env("FLOW_TEST_OPEN_PATH") };
    Builder::new("dialog")
        .invoke_handler(move |invoke| {
            let command = invoke.message.command().to_owned();
            let answer = match command.as_str() {
                "save" => serde_json::json!(answers.save),
                "open" => serde_json::json!(answers.open),
                "message" => serde_json::json!(affirmative(invoke.message.payload())),
                _ => {
                    invoke.resolver.reject(format!("dialog stand-in: no command `{command}`"));
                    return true;
                }
            };
            invoke.resolver.resolve(answer);
            true
        })
        .build()
}

/// The label of the button that says yes: what `ask` and `confirm` compare the answer with.
fn affirmative(payload: &tauri::ipc::InvokeBody) -> String {
    #[derive(Deserialize)]
    struct Message {
        buttons: Option<serde_json::Value>,
    }
    let buttons = match payload {
        tauri::ipc::InvokeBody::Json(v) => {
            serde_json::from_value::<Message>(v.clone()).ok().and_then(|m| m.buttons)
        }
        tauri::ipc::InvokeBody::Raw(_) => None,
    };
    let custom = |key: &str| {
        buttons.as_ref().and_then(|b| b.get(key)).and_then(|v| match v {
            serde_json::Value::Array(labels) => labels.first().and_then(|l| l.as_str()).map(str::to_owned),
            serde_json::Value::String(label) => Some(label.clone()),
            _ => None,
        })
    };
    match buttons.as_ref().and_then(|b| b.as_str()) {
        Some("YesNo" | "YesNoCancel") => "Yes".to_owned(),
        Some(_) => "Ok".to_owned(),
        None => custom("OkCancelCustom")
            .or_else(|| custom("YesNoCancelCustom"))
            .or_else(|| custom("OkCustom"))
            .unwrap_or_else(|| "Ok".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use tauri::ipc::InvokeBody;

    use super::affirmative;

    #[test]
    fn message_dialogs_answer_yes() {
        let ask = |buttons: serde_json::Value| {
            affirmative(&InvokeBody::Json(serde_json::json!({ "message": "m", "buttons": buttons })))
        };
        assert_eq!(ask(serde_json::json!("YesNo")), "Yes");
        assert_eq!(ask(serde_json::json!("OkCancel")), "Ok");
        assert_eq!(ask(serde_json::json!({ "OkCancelCustom": ["Discard", "Keep"] })), "Discard");
        assert_eq!(ask(serde_json::json!({ "OkCustom": "Fine" })), "Fine");
        assert_eq!(ask(serde_json::Value::Null), "Ok");
    }
}
