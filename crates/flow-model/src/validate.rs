//! Validation of a flow against a catalog. Reports every problem at once; each names the node,
//! port or field, and schema mismatches carry suggestions the editor can apply.

use std::collections::{BTreeMap, HashMap, HashSet};

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::{Catalog, ConnectionKind, Endpoint, Flow, RecordSchema};

/// What kind of problem was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ProblemKind {
    DuplicateId,
    UnknownNodeType,
    InvalidParams,
    MissingNode,
    MissingPort,
    TooManyEdges,
    RequiredInputUnconnected,
    Cycle,
    MissingField,
    IncompatibleType,
    UnknownConnection,
    /// A Rhai expression or script that does not compile.
    InvalidExpression,
    /// A template (`{{ ... }}`) that does not parse or names something undefined.
    InvalidTemplate,
    /// A named connection whose system does not answer (found by the pre-run check).
    ConnectionUnreachable,
    /// A sub-flow that cannot run: missing, ports that do not fit, nested too deep, or invalid.
    Subflow,
}

/// A fix the editor can apply with one click.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[ts(export)]
pub enum Suggestion {
    /// Point the param at an existing field with a close name.
    ReplaceField { node: String, param: String, from: String, to: String },
    /// Insert a Field Mapper on the edge that renames `rename_from` to `rename_to`.
    InsertFieldMapper { from: Endpoint, to: Endpoint, rename_from: String, rename_to: String },
    /// Create the named connection a node uses (the editor opens the connections dialog).
    CreateConnection { name: String, connection_kind: ConnectionKind },
    /// Fix the named connection a node uses (the editor opens the connections dialog on it).
    EditConnection { name: String },
}

/// One problem in a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Problem {
    pub kind: ProblemKind,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// The param (JSON pointer) or record field concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<Suggestion>,
}

impl Problem {
    pub fn new(kind: ProblemKind, message: String) -> Self {
        Self { kind, message, node: None, port: None, field: None, suggestions: Vec::new() }
    }
    pub fn node(mut self, id: &str) -> Self {
        self.node = Some(id.to_owned());
        self
    }
    fn port(mut self, port: &str) -> Self {
        self.port = Some(port.to_owned());
        self
    }
    pub fn field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }
    pub fn suggest(mut self, suggestion: Suggestion) -> Self {
        self.suggestions.push(suggestion);
        self
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The outcome of validating a flow: empty when it is valid.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ValidationReport {
    pub problems: Vec<Problem>,
}

impl ValidationReport {
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Catalog {
    /// Checks a flow; see [`ProblemKind`] for what is checked.
    pub fn validate(&self, flow: &Flow) -> ValidationReport {
        self.validate_with(flow, &HashMap::new())
    }

    /// Like [`Catalog::validate`], with output schemas discovered outside the catalog (for
    /// example by describing a SQL query against its database), by node id. They replace what
    /// the node type can infer from its params alone.
    pub fn validate_with(&self, flow: &Flow, discovered: &HashMap<String, RecordSchema>) -> ValidationReport {
        let mut problems = Vec::new();
        let mut seen = HashSet::new();
        // Params as JSON values, made once for schema checks and schema inference alike.
        let params: Vec<serde_json::Value> =
            flow.nodes.iter().map(|n| serde_json::Value::Object(n.params.clone())).collect();
        for (node, node_params) in flow.nodes.iter().zip(&params) {
            if !seen.insert(node.id.as_str()) {
                problems.push(
                    Problem::new(ProblemKind::DuplicateId, format!("duplicate node id `{}`", node.id))
                        .node(&node.id),
                );
            }
            if node.id.is_empty() {
                problems.push(Problem::new(
                    ProblemKind::DuplicateId,
                    format!("a node of type `{}` has an empty id", node.node_type),
                ));
            }
            if self.descriptor(&node.node_type).is_none() {
                problems.push(
                    Problem::new(
                        ProblemKind::UnknownNodeType,
                        format!("node `{}`: unknown node type `{}`", node.id, node.node_type),
                    )
                    .node(&node.id),
                );
                continue;
            }
            for (pointer, message) in self.check_params(&node.node_type, node_params) {
                let at = if pointer.is_empty() { "params".to_owned() } else { format!("params{pointer}") };
                problems.push(
                    Problem::new(ProblemKind::InvalidParams, format!("node `{}`: {at}: {message}", node.id))
                        .node(&node.id)
                        .field(&pointer),
                );
            }
        }

        let index: HashMap<&str, usize> =
            flow.nodes.iter().enumerate().map(|(i, n)| (n.id.as_str(), i)).collect();
        let mut graph: DiGraph<usize, usize> = DiGraph::new();
        let ids: Vec<NodeIndex> = (0..flow.nodes.len()).map(|i| graph.add_node(i)).collect();
        let mut incoming: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        let mut edges_ok = Vec::new();
        for (ei, edge) in flow.edges.iter().enumerate() {
            let mut ok = true;
            for (end, is_source) in [(&edge.from, true), (&edge.to, false)] {
                let Some(&ni) = index.get(end.node.as_str()) else {
                    problems.push(
                        Problem::new(
                            ProblemKind::MissingNode,
                            format!("edge {} -> {}: node `{}` does not exist", edge.from, edge.to, end.node),
                        )
                        .node(&end.node)
                        .port(&end.port),
                    );
                    ok = false;
                    continue;
                };
                let node = &flow.nodes[ni];
                let Some(desc) = self.descriptor(&node.node_type) else {
                    ok = false;
                    continue;
                };
                let (ports, dir) =
                    if is_source { (&desc.outputs, "output") } else { (&desc.inputs, "input") };
                if !ports.iter().any(|p| p.name == end.port) {
                    let names: Vec<&str> = ports.iter().map(|p| p.name.as_str()).collect();
                    problems.push(
                        Problem::new(
                            ProblemKind::MissingPort,
                            format!(
                                "edge {} -> {}: node `{}` ({}) has no {dir} port `{}` (it has: {})",
                                edge.from,
                                edge.to,
                                node.id,
                                node.node_type,
                                end.port,
                                if names.is_empty() { "none".to_owned() } else { names.join(", ") }
                            ),
                        )
                        .node(&node.id)
                        .port(&end.port),
                    );
                    ok = false;
                }
            }
            if ok {
                *incoming.entry((edge.to.node.as_str(), edge.to.port.as_str())).or_default() += 1;
                graph.add_edge(ids[index[edge.from.node.as_str()]], ids[index[edge.to.node.as_str()]], ei);
                edges_ok.push(ei);
            }
        }

        for node in &flow.nodes {
            let Some(desc) = self.descriptor(&node.node_type) else { continue };
            for port in &desc.inputs {
                let n = incoming.get(&(node.id.as_str(), port.name.as_str())).copied().unwrap_or(0);
                if n == 0 && port.required {
                    problems.push(
                        Problem::new(
                            ProblemKind::RequiredInputUnconnected,
                            format!("node `{}`: required input `{}` is not connected", node.id, port.name),
                        )
                        .node(&node.id)
                        .port(&port.name),
                    );
                }
                if n > 1 && !port.multiple {
                    problems.push(
                        Problem::new(
                            ProblemKind::TooManyEdges,
                            format!(
                                "node `{}`: input `{}` takes one edge but {n} are connected (use a Merge node)",
                                node.id, port.name
                            ),
                        )
                        .node(&node.id)
                        .port(&port.name),
                    );
                }
            }
        }

        let mut has_cycle = false;
        for scc in tarjan_scc(&graph) {
            let self_loop = scc.len() == 1 && graph.contains_edge(scc[0], scc[0]);
            if scc.len() > 1 || self_loop {
                has_cycle = true;
                let mut names: Vec<&str> = scc.iter().map(|&i| flow.nodes[graph[i]].id.as_str()).collect();
                names.sort_unstable();
                let mut p = Problem::new(
                    ProblemKind::Cycle,
                    format!(
                        "cycle between nodes {}",
                        names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                    ),
                );
                p.node = names.first().map(|s| (*s).to_owned());
                problems.push(p);
            }
        }

        if !has_cycle && let Ok(order) = toposort(&graph, None) {
            self.check_schemas(flow, &params, &graph, &order, discovered, &mut problems);
        }
        ValidationReport { problems }
    }

    /// Propagates known schemas in topological order and checks every referenced field.
    fn check_schemas(
        &self,
        flow: &Flow,
        params: &[serde_json::Value],
        graph: &DiGraph<usize, usize>,
        order: &[NodeIndex],
        discovered: &HashMap<String, RecordSchema>,
        problems: &mut Vec<Problem>,
    ) {
        use petgraph::Direction::Incoming;
        // Schema per (node id, output port).
        let mut outputs: HashMap<(String, String), Option<RecordSchema>> = HashMap::new();
        for &ni in order {
            let node = &flow.nodes[graph[ni]];
            let Some(entry) = self.entry(&node.node_type) else { continue };
            let params = &params[graph[ni]];
            let edges_in: Vec<_> =
                graph.edges_directed(ni, Incoming).map(|e| &flow.edges[*e.weight()]).collect();

            let mut inputs = Vec::new();
            for port in &entry.descriptor.inputs {
                let arriving: Vec<Option<RecordSchema>> = edges_in
                    .iter()
                    .filter(|e| e.to.port == port.name)
                    .map(|e| outputs.get(&(e.from.node.clone(), e.from.port.clone())).cloned().flatten())
                    .collect();
                inputs.push(common_fields(&arriving));
            }

            for r in entry.spec.referenced_fields(params) {
                for edge in edges_in.iter().filter(|e| e.to.port == r.port) {
                    let Some(Some(schema)) = outputs.get(&(edge.from.node.clone(), edge.from.port.clone()))
                    else {
                        continue;
                    };
                    match schema.get(&r.field) {
                        Some(f) if r.numeric && !f.field_type.is_numeric() => problems.push(
                            Problem::new(
                                ProblemKind::IncompatibleType,
                                format!(
                                    "node `{}`: params{}: field `{}` from `{}` is {:?}, a number is needed",
                                    node.id, r.param, r.field, edge.from.node, f.field_type
                                ),
                            )
                            .node(&node.id)
                            .port(&r.port)
                            .field(&r.param),
                        ),
                        Some(_) => {}
                        None => problems.push(missing_field(
                            node.id.as_str(),
                            edge.from.clone(),
                            edge.to.clone(),
                            &r,
                            schema,
                        )),
                    }
                }
            }

            for port in &entry.descriptor.outputs {
                let schema = if port.name == "error" {
                    None
                } else if let Some(found) = discovered.get(&node.id) {
                    Some(found.clone())
                } else {
                    entry.spec.output_schema(&port.name, params, &inputs)
                };
                outputs.insert((node.id.clone(), port.name.clone()), schema);
            }
        }
    }
}

fn missing_field(
    node: &str,
    from: Endpoint,
    to: Endpoint,
    r: &crate::FieldRef,
    schema: &RecordSchema,
) -> Problem {
    let available: Vec<&str> = schema.names().collect();
    let mut p = Problem::new(
        ProblemKind::MissingField,
        format!(
            "node `{node}`: params{}: field `{}` is not in the records from `{}` (they have: {})",
            r.param,
            r.field,
            from.node,
            if available.is_empty() { "no fields".to_owned() } else { available.join(", ") }
        ),
    )
    .node(node)
    .port(&r.port)
    .field(&r.param);
    if let Some(closest) = closest_name(&r.field, &available) {
        p.suggestions.push(Suggestion::ReplaceField {
            node: node.to_owned(),
            param: r.param.clone(),
            from: r.field.clone(),
            to: closest.to_owned(),
        });
        p.suggestions.push(Suggestion::InsertFieldMapper {
            from,
            to,
            rename_from: closest.to_owned(),
            rename_to: r.field.clone(),
        });
    }
    p
}

/// The available name most like `wanted`, if any is close enough to be a plausible intent.
fn closest_name<'a>(wanted: &str, available: &[&'a str]) -> Option<&'a str> {
    let w = wanted.to_lowercase();
    available
        .iter()
        .map(|&a| {
            let l = a.to_lowercase();
            // A name contained in the other (name / full_name) is a strong hint.
            let contained = if w.contains(&l) || l.contains(&w) { 0.9 } else { 0.0 };
            (a, f64::max(contained, strsim::jaro_winkler(&w, &l)))
        })
        .filter(|(_, score)| *score >= 0.75)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(a, _)| a)
}

/// Records from several edges into one port: fields present in every known schema. Unknown if any
/// arriving schema is unknown.
fn common_fields(schemas: &[Option<RecordSchema>]) -> Option<RecordSchema> {
    let mut known = schemas.iter();
    let first = known.next()?.clone()?;
    let mut out = first;
    for s in known {
        let s = s.as_ref()?;
        out.fields.retain(|f| s.contains(&f.name));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::closest_name;

    #[test]
    fn closest_name_prefers_contained_and_similar_names() {
        assert_eq!(closest_name("full_name", &["id", "name", "email"]), Some("name"));
        assert_eq!(closest_name("emial", &["id", "name", "email"]), Some("email"));
        assert_eq!(closest_name("zzz", &["id", "name"]), None);
    }
}
