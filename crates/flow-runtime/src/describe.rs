//! Schema discovery before a run: asks node types that talk to external systems what their output
//! will look like (e.g. a SQL query's columns), so validation can check the nodes after them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use flow_model::{Flow, RecordSchema};

use crate::{FetchedSecrets, Resources, Runtime};

/// How long discovery may take per node; an unreachable system just leaves the schema unknown.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the external systems report before a run.
#[derive(Debug, Default)]
pub struct Discovery {
    /// Output schemas by node id.
    pub schemas: HashMap<String, RecordSchema>,
    /// The secrets fetched to ask them, for the run to reuse.
    pub secrets: FetchedSecrets,
}

impl Runtime {
    /// Output schemas the external systems report, and the secrets fetched to ask them.
    pub async fn describe(&self, flow: &Flow, vars: &BTreeMap<String, serde_json::Value>) -> Discovery {
        let templates = Arc::new(self.templates(flow, vars, "describe", "describe"));
        let execution_resources = Arc::new(Resources::default());
        // The systems are asked with the secrets the run would use; a secret that cannot be
        // fetched just leaves that node's schema unknown (the run reports the error).
        for node in &flow.nodes {
            let _ = tokio::time::timeout(DESCRIBE_TIMEOUT, self.try_fetch_secrets(node, &templates)).await;
        }
        let lookups = flow.nodes.iter().filter_map(|node| {
            let ty = self.types().get(&node.node_type)?;
            let params = templates.render_params(&serde_json::Value::Object(node.params.clone())).ok()?;
            let ctx = self.build_context(&node.id, uuid::Uuid::nil(), "", &execution_resources, &templates);
            Some(async move {
                let found =
                    tokio::time::timeout(DESCRIBE_TIMEOUT, ty.describe(&params, &ctx)).await.ok().flatten();
                found.map(|schema| (node.id.clone(), schema))
            })
        });
        let schemas = futures::future::join_all(lookups).await.into_iter().flatten().collect();
        Discovery { schemas, secrets: templates.fetched() }
    }
}
