//! Reading and writing flow files. Errors name the file, line and column (and the JSON path of the
//! offending field), and reading never panics, whatever the input.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{FLOW_FILE_VERSION, Flow};

/// Why a flow file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FlowFileError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: broken JSON: {message}")]
    Syntax { file: PathBuf, line: usize, column: usize, message: String },
    #[error("{file}:{line}:{column}: {path}: {message}")]
    Invalid { file: PathBuf, line: usize, column: usize, path: String, message: String },
    #[error("{file}: unsupported flow file version {found} (this build reads version {FLOW_FILE_VERSION})")]
    Version { file: PathBuf, found: String },
    #[error("{file}: cannot write: {source}")]
    Write {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Reads and parses a flow file.
pub fn load_flow(path: &Path) -> Result<Flow, FlowFileError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| FlowFileError::Io { file: path.to_owned(), source })?;
    parse_flow(&text, path)
}

/// Parses flow file text; `origin` names the file in errors.
pub fn parse_flow(text: &str, origin: &Path) -> Result<Flow, FlowFileError> {
    #[derive(Deserialize)]
    struct VersionProbe {
        version: Option<serde_json::Value>,
    }
    let file = origin.to_owned();
    // Check the version first, so a future file is refused for its version, not for fields this
    // build does not know.
    let probe: VersionProbe = serde_json::from_str(text).map_err(|e| syntax_or_invalid(&file, e, ""))?;
    match probe.version {
        Some(v) if v == serde_json::json!(FLOW_FILE_VERSION) => {}
        Some(v) => return Err(FlowFileError::Version { file, found: v.to_string() }),
        None => {
            return Err(FlowFileError::Invalid {
                file,
                line: 1,
                column: 1,
                path: "version".into(),
                message: format!("missing field `version` (expected {FLOW_FILE_VERSION})"),
            });
        }
    }
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        syntax_or_invalid(&file, e.into_inner(), &path)
    })
}

fn syntax_or_invalid(file: &Path, e: serde_json::Error, path: &str) -> FlowFileError {
    use serde_json::error::Category;
    let (line, column) = (e.line(), e.column());
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => FlowFileError::Syntax {
            file: file.to_owned(),
            line,
            column,
            message: strip_position(&e.to_string()),
        },
        Category::Data => FlowFileError::Invalid {
            file: file.to_owned(),
            line,
            column,
            path: if path.is_empty() || path == "." { "(root)".into() } else { path.into() },
            message: strip_position(&e.to_string()),
        },
    }
}

/// serde_json appends " at line L column C"; the error already carries them up front.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// The canonical text of a flow: pretty JSON, two-space indent, trailing newline.
pub fn to_canonical_json(flow: &Flow) -> String {
    let mut text = serde_json::to_string_pretty(flow).unwrap_or_default();
    text.push('\n');
    text
}

/// Writes a flow in canonical form.
pub fn save_flow(flow: &Flow, path: &Path) -> Result<(), FlowFileError> {
    std::fs::write(path, to_canonical_json(flow))
        .map_err(|source| FlowFileError::Write { file: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Flow, FlowFileError> {
        parse_flow(text, Path::new("f.json"))
    }

    #[test]
    fn broken_json_names_file_line_and_column() {
        let err = parse("{\n  \"version\": 1,\n  \"nodes\": [\n}").expect_err("broken");
        let msg = err.to_string();
        assert!(msg.starts_with("f.json:4:1: broken JSON"), "{msg}");
    }

    #[test]
    fn wrong_type_names_the_field_path() {
        let text = "{\"version\": 1, \"name\": \"x\", \"nodes\": [{\"id\": 5, \"type\": \"limit\"}]}";
        let msg = parse(text).expect_err("wrong type").to_string();
        assert!(msg.contains("f.json:1:") && msg.contains("nodes[0].id"), "{msg}");
    }

    #[test]
    fn unknown_version_is_refused() {
        let msg = parse("{\"version\": 2, \"whatever\": true}").expect_err("v2").to_string();
        assert!(msg.contains("unsupported flow file version 2"), "{msg}");
    }

    #[test]
    fn save_then_load_is_identity() {
        let flow = Flow::new("demo")
            .with_node("a", "static_data", serde_json::json!({"records": [{"b": 1, "a": 2}]}))
            .with_node("b", "collect", serde_json::json!({}))
            .with_edge("a", "b");
        let text = to_canonical_json(&flow);
        let again = parse(&text).expect("canonical text parses");
        assert_eq!(again, flow);
        assert_eq!(to_canonical_json(&again), text);
    }
}
