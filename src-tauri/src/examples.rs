//! The example flows offered by the UI: the `*.json` files of the examples folder, which is
//! FLOW_EXAMPLES_DIR when set, else the `flows/` folder bundled with the app, else (debug builds)
//! the repository's `flows/` next to the workspace.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{CommandError, CommandResult};

/// One example flow file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ExampleFlow {
    /// Absolute path, for `load_flow_file`.
    pub(crate) path: String,
    /// The flow's own name, or the file name when the file cannot be read.
    pub(crate) name: String,
}

/// The examples folder: `env` (FLOW_EXAMPLES_DIR), else the bundled resources, else the
/// repository's `flows/` in debug builds. `None` when none exists.
pub(crate) fn find_dir(env: Option<PathBuf>, resources: Option<PathBuf>) -> Option<PathBuf> {
    if let Some(dir) = env.filter(|d| !d.as_os_str().is_empty()) {
        return Some(dir);
    }
    let repo = cfg!(debug_assertions).then(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("flows"));
    [resources.map(|r| r.join("flows")), repo].into_iter().flatten().find(|d| d.is_dir())
}

/// The `*.json` files of `dir`, sorted by file name.
pub(crate) fn list(dir: &Path) -> CommandResult<Vec<ExampleFlow>> {
    let entries =
        std::fs::read_dir(dir).map_err(|source| CommandError::Examples { dir: dir.to_owned(), source })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    Ok(files
        .into_iter()
        .map(|file| {
            let path = std::path::absolute(&file).unwrap_or_else(|_| file.clone());
            let name = flow_model::load_flow(&file)
                .ok()
                .map(|f| f.name)
                .filter(|n| !n.trim().is_empty())
                .or_else(|| file.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .unwrap_or_default();
            ExampleFlow { path: path.to_string_lossy().into_owned(), name }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::{find_dir, list};

    #[test]
    fn lists_the_json_files_with_their_flow_names() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::write(
            dir.path().join("b.json"),
            "{\"version\": 1, \"name\": \"Bee\", \"nodes\": [], \"edges\": []}",
        )?;
        std::fs::write(dir.path().join("a.json"), "not json")?;
        std::fs::write(dir.path().join("notes.txt"), "x")?;
        let names: Vec<String> = list(dir.path())?.into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["a", "Bee"]);
        Ok(())
    }

    #[test]
    fn the_environment_wins_then_resources_then_the_repository() -> Result<(), Box<dyn std::error::Error>> {
        let resources = tempfile::tempdir()?;
        assert_eq!(find_dir(Some("/x".into()), Some(resources.path().into())), Some("/x".into()));
        std::fs::create_dir(resources.path().join("flows"))?;
        assert_eq!(find_dir(None, Some(resources.path().into())), Some(resources.path().join("flows")));
        // Debug builds fall back to the repository's flows/.
        let repo = find_dir(None, None);
        assert!(repo.is_some_and(|d| d.join("active-users.json").is_file()));
        Ok(())
    }

    #[test]
    fn the_repository_examples_all_load() -> Result<(), Box<dyn std::error::Error>> {
        let dir = find_dir(None, None).ok_or("no flows/")?;
        let examples = list(&dir)?;
        assert!(examples.len() >= 5);
        assert!(examples.iter().any(|e| e.name == "Active users"));
        Ok(())
    }
}
