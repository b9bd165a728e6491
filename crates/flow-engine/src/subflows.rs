//! Following `subflow` nodes to the flows they run, before a run: by file path relative to the
//! parent's file (CLI, desktop) or by stored flow id (server). What cannot be followed is a
//! problem on the root flow's `subflow` node that leads to it, naming the chain of flows: a
//! missing file or flow, a child whose ports do not fit the node's edges, a cycle (A runs B runs
//! A), nesting deeper than [`MAX_SUBFLOW_DEPTH`], or a problem inside the child.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flow_model::{Flow, FlowNode, Problem, ProblemKind};
use flow_runtime::{ChildFlow, MAX_SUBFLOW_DEPTH, Subflows};
use futures::future::BoxFuture;
use uuid::Uuid;

use crate::Engine;

/// Where a flow comes from: what its sub-flow references are relative to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum FlowOrigin {
    /// Not saved: only absolute sub-flow paths can be followed.
    #[default]
    Unsaved,
    /// The flow's file: sub-flow paths are relative to its folder.
    File(PathBuf),
    /// A stored flow (server): sub-flow references are ids of stored flows that `owner` may
    /// run (any stored flow for `None`, an admin).
    Stored { id: Option<Uuid>, owner: Option<Uuid> },
}

/// A flow on the way from the root to a sub-flow.
struct Link {
    /// What identifies the flow (its canonical path or its id): how a cycle is found.
    key: String,
    /// How the chain names it.
    label: String,
}

/// The state of one walk down the tree.
struct Walk {
    chain: Vec<Link>,
    problems: Vec<Problem>,
    /// The root's `subflow` node the walk went down through: where problems are shown.
    top: String,
}

impl Walk {
    fn problem(&mut self, kind: ProblemKind, message: String) {
        let chain = self.chain.iter().map(|l| l.label.as_str()).collect::<Vec<_>>().join(" → ");
        self.problems
            .push(Problem::new(kind, format!("node `{}`: {chain}: {message}", self.top)).node(&self.top));
    }
}

impl Engine {
    /// The flows `flow`'s `subflow` nodes run, followed down the tree (with `vars`, the run's
    /// variables), and every problem found on the way.
    pub(crate) async fn resolve_subflows(
        &self,
        flow: &Flow,
        origin: &FlowOrigin,
        vars: &BTreeMap<String, serde_json::Value>,
    ) -> (Subflows, Vec<Problem>) {
        if subflow_nodes(flow).next().is_none() {
            return Default::default();
        }
        // Files are keyed by their canonical path: the root's is found here, the others' as
        // they are loaded.
        let origin = &match origin {
            FlowOrigin::File(path) => {
                FlowOrigin::File(std::fs::canonicalize(path).unwrap_or_else(|_| path.clone()))
            }
            other => other.clone(),
        };
        let mut subflows = Subflows::default();
        let mut problems = Vec::new();
        let root = Link { key: key_of(origin), label: label_of(flow, origin) };
        let mut vars_all = flow.variables.clone();
        vars_all.extend(vars.clone());
        for node in subflow_nodes(flow) {
            let chain = vec![Link { key: root.key.clone(), label: root.label.clone() }];
            let mut walk = Walk { chain, problems: Vec::new(), top: node.id.clone() };
            if let Some((reference, child)) = self.follow(flow, node, origin, &vars_all, &mut walk).await {
                subflows.0.insert(reference, child);
            }
            problems.extend(walk.problems);
        }
        (subflows, problems)
    }

    /// Follows one `subflow` node of `parent` (which comes from `origin`) to its flow, and that
    /// flow's own sub-flows.
    fn follow<'a>(
        &'a self,
        parent: &'a Flow,
        node: &'a FlowNode,
        origin: &'a FlowOrigin,
        vars: &'a BTreeMap<String, serde_json::Value>,
        walk: &'a mut Walk,
    ) -> BoxFuture<'a, Option<(String, Arc<ChildFlow>)>> {
        Box::pin(async move {
            // A missing or empty reference breaks the node's params schema: reported already.
            let reference =
                node.params.get("flow").and_then(serde_json::Value::as_str).filter(|r| !r.is_empty())?;
            let loaded = self.load(reference, origin).await;
            let (child, child_origin) = match loaded {
                Ok(found) => found,
                Err(why) => {
                    walk.problem(ProblemKind::Subflow, format!("sub-flow `{reference}`: {why}"));
                    return None;
                }
            };
            let link = Link { key: key_of(&child_origin), label: label_of(&child, &child_origin) };
            if walk.chain.iter().any(|l| l.key == link.key) {
                walk.chain.push(link);
                walk.problem(
                    ProblemKind::Cycle,
                    "sub-flows form a cycle: a flow would run itself".to_owned(),
                );
                walk.chain.pop();
                return None;
            }
            if walk.chain.len() > MAX_SUBFLOW_DEPTH {
                walk.problem(
                    ProblemKind::Subflow,
                    format!("sub-flow `{reference}`: sub-flows nest deeper than {MAX_SUBFLOW_DEPTH} levels"),
                );
                return None;
            }
            walk.chain.push(link);
            check_ports(parent, node, &child, walk);
            // The child inherits the parent's variables, under the node's own.
            let mut child_vars = vars.clone();
            if let Some(overrides) = node.params.get("vars").and_then(serde_json::Value::as_object) {
                child_vars.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            for problem in self.validate_with(&child, &child_vars, &HashMap::new()).problems {
                walk.problem(problem.kind, problem.message);
            }
            let mut grandchildren = Subflows::default();
            let mut inner_vars = child.variables.clone();
            inner_vars.extend(child_vars);
            for grandchild in subflow_nodes(&child) {
                if let Some((r, c)) = self.follow(&child, grandchild, &child_origin, &inner_vars, walk).await
                {
                    grandchildren.0.insert(r, c);
                }
            }
            walk.chain.pop();
            Some((reference.to_owned(), Arc::new(ChildFlow { flow: child, subflows: grandchildren })))
        })
    }

    /// The flow `reference` names, seen from a flow that comes from `origin`, and its origin.
    async fn load(&self, reference: &str, origin: &FlowOrigin) -> Result<(Flow, FlowOrigin), String> {
        if reference.contains("{{") {
            return Err("a sub-flow reference cannot be a template: it is followed before the run".into());
        }
        match origin {
            FlowOrigin::Stored { owner, .. } => {
                let id = Uuid::parse_str(reference)
                    .map_err(|_| "on the server a sub-flow is named by its stored flow's id".to_owned())?;
                let stored = self.store().flow(id).await.map_err(|e| e.to_string())?;
                // Another user's flow is as unknown as a missing one.
                match stored.filter(|s| owner.is_none_or(|o| o == s.owner)) {
                    Some(s) => Ok((s.flow, FlowOrigin::Stored { id: Some(id), owner: *owner })),
                    None => Err("no such flow".into()),
                }
            }
            FlowOrigin::File(parent) => {
                let path = parent.parent().unwrap_or(Path::new("")).join(reference);
                load_file(&path)
            }
            FlowOrigin::Unsaved => {
                let path = Path::new(reference);
                if !path.is_absolute() {
                    return Err("the flow is not saved, so a relative path has no folder to start from: save the flow or use an absolute path".into());
                }
                load_file(path)
            }
        }
    }
}

fn load_file(path: &Path) -> Result<(Flow, FlowOrigin), String> {
    let flow = flow_model::load_flow(path).map_err(|e| e.to_string())?;
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    Ok((flow, FlowOrigin::File(canonical)))
}

/// The `subflow` nodes of a flow.
fn subflow_nodes(flow: &Flow) -> impl Iterator<Item = &FlowNode> {
    flow.nodes.iter().filter(|n| n.node_type == "subflow")
}

/// The child must have a Flow Input when records flow into the node, a Flow Output when its
/// output is used, and at most one of each.
fn check_ports(parent: &Flow, node: &FlowNode, child: &Flow, walk: &mut Walk) {
    let count = |ty: &str| child.nodes.iter().filter(|n| n.node_type == ty).count();
    let (inputs, outputs) = (count("input"), count("output"));
    let fed = parent.edges.iter().any(|e| e.to.node == node.id);
    let read = parent.edges.iter().any(|e| e.from.node == node.id);
    if fed && inputs == 0 {
        walk.problem(
            ProblemKind::Subflow,
            "records flow into the Sub-flow node, but the sub-flow has no Flow Input node to receive them"
                .into(),
        );
    }
    if read && outputs == 0 {
        walk.problem(
            ProblemKind::Subflow,
            "the Sub-flow node's output is connected, but the sub-flow has no Flow Output node to send records".into(),
        );
    }
    if inputs > 1 || outputs > 1 {
        walk.problem(
            ProblemKind::Subflow,
            format!("a sub-flow has at most one Flow Input and one Flow Output node (found {inputs} and {outputs})"),
        );
    }
}

fn key_of(origin: &FlowOrigin) -> String {
    match origin {
        FlowOrigin::Unsaved => "unsaved".into(),
        FlowOrigin::File(path) => path.display().to_string(),
        FlowOrigin::Stored { id, .. } => id.map_or_else(|| "unsaved".into(), |id| id.to_string()),
    }
}

fn label_of(flow: &Flow, origin: &FlowOrigin) -> String {
    match origin {
        FlowOrigin::File(path) => {
            let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            format!("`{}` ({file})", flow.name)
        }
        FlowOrigin::Stored { id: Some(id), .. } => format!("`{}` ({id})", flow.name),
        FlowOrigin::Unsaved | FlowOrigin::Stored { id: None, .. } => format!("`{}`", flow.name),
    }
}
