//! Schema discovery before a run: asks node types that talk to external systems what their output
//! will look like (e.g. a SQL query's columns), so validation can check the nodes after them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use flow_model::{Flow, RecordSchema};

use crate::{BuildContext, Resources, Runtime, Templates};

/// How long discovery may take per node; an unreachable system just leaves the schema unknown.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

impl Runtime {
    /// Output schemas the external systems report, by node id.
    pub async fn describe(
        &self,
        flow: &Flow,
        vars: &BTreeMap<String, serde_json::Value>,
    ) -> HashMap<String, RecordSchema> {
        let mut all_vars = flow.variables.clone();
        all_vars.extend(vars.clone());
        let templates = Arc::new(Templates::new(all_vars, "describe", "describe", &flow.name));
        let execution_resources = Arc::new(Resources::default());
        let lookups = flow.nodes.iter().filter_map(|node| {
            let ty = self.types().get(&node.node_type)?;
            let params = templates.render_params(&serde_json::Value::Object(node.params.clone())).ok()?;
            let ctx = BuildContext {
                node_id: node.id.clone(),
                execution_id: uuid::Uuid::nil(),
                correlation_id: String::new(),
                batch_size: self.config().batch_size,
                connections: Arc::clone(self.connections()),
                execution_resources: Arc::clone(&execution_resources),
                engine_resources: Arc::clone(self.resources()),
                templates: Arc::clone(&templates),
            };
            Some(async move {
                let found =
                    tokio::time::timeout(DESCRIBE_TIMEOUT, ty.describe(&params, &ctx)).await.ok().flatten();
                found.map(|schema| (node.id.clone(), schema))
            })
        });
        futures::future::join_all(lookups).await.into_iter().flatten().collect()
    }
}
