//! The MongoDB sources: `mongodb_find` (a query) and `mongodb_aggregate` (a pipeline). Both
//! stream the server cursor: one server batch per `produce` call, never the whole result. After a
//! lost connection the retried call re-opens the query past the documents already taken.

use async_trait::async_trait;
use flow_model::{Category, ConnectionKind, NodeDescriptor, NodeSpec, PortSpec, Record};
use flow_runtime::{BuildContext, Emitter, NodeError, NodeType, Operator};
use futures::TryStreamExt;
use mongodb::Cursor;
use mongodb::bson::{Document, doc};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::bson_value::to_record;
use crate::connect::Place;
use crate::params::{JsonObject, decode, document, schema_of};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FindParams {
    /// Name of a connection of kind `mongodb`.
    connection: String,
    /// Database; by default the one named in the connection URL.
    #[serde(default)]
    database: Option<String>,
    /// Collection to read.
    collection: String,
    /// Query filter; extended JSON allowed, e.g. `{"_id": {"$oid": "65f0a1b2c3d4e5f601234567"}}`.
    #[serde(default)]
    filter: JsonObject,
    /// Fields to return, e.g. `{"name": 1, "_id": 0}`; all fields by default.
    #[serde(default)]
    projection: Option<JsonObject>,
    /// Sort order, e.g. `{"age": -1, "_id": 1}`; `{"_id": 1}` by default.
    #[serde(default)]
    sort: Option<JsonObject>,
    /// At most this many documents.
    #[serde(default)]
    #[schemars(range(min = 1))]
    limit: Option<u64>,
    /// Documents per server round trip and per emitted batch; the engine's batch size by default.
    #[serde(default)]
    #[schemars(range(min = 1, max = 100000))]
    batch_size: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AggregateParams {
    /// Name of a connection of kind `mongodb`.
    connection: String,
    /// Database; by default the one named in the connection URL.
    #[serde(default)]
    database: Option<String>,
    /// Collection the pipeline starts from.
    collection: String,
    /// Pipeline stages, e.g. `[{"$match": {"status": "active"}}, {"$group": {"_id": "$country", "n": {"$sum": 1}}}]`; extended JSON allowed.
    pipeline: Vec<JsonObject>,
    /// Documents per server round trip and per emitted batch; the engine's batch size by default.
    #[serde(default)]
    #[schemars(range(min = 1, max = 100000))]
    batch_size: Option<u32>,
}

pub(crate) struct Find;
pub(crate) struct Aggregate;

impl NodeSpec for Find {
    fn connection_kind(&self) -> Option<ConnectionKind> {
        Some(ConnectionKind::Mongodb)
    }

    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor {
            node_type: "mongodb_find".into(),
            title: "MongoDB Find".into(),
            category: Category::Source,
            description: "Streams the documents of a MongoDB collection that match a filter, one server batch \
                (batch_size documents) at a time. Without `sort`, documents come in `_id` order, so a retry after \
                a lost connection resumes exactly where it stopped. BSON types map to record values as in \
                docs/types.md."
                .into(),
            inputs: vec![],
            outputs: vec![PortSpec::output("out", "The documents, as records")],
            params_schema: schema_of::<FindParams>(),
            output_schema: None,
        }
    }
}

impl NodeType for Find {
    fn build(&self, params: serde_json::Value, ctx: &BuildContext) -> Result<Box<dyn Operator>, NodeError> {
        let p: FindParams = decode(&params)?;
        let place = Place::resolve(ctx, &p.connection, p.database.as_deref(), &p.collection)?;
        let query = Query::Find(Box::new(FindQuery {
            filter: document("filter", &p.filter)?,
            projection: p.projection.as_ref().map(|j| document("projection", j)).transpose()?,
            sort: match &p.sort {
                Some(s) => document("sort", s)?,
                None => doc! {"_id": 1},
            },
            limit: p.limit,
        }));
        Ok(Box::new(SourceOp::new(place, query, p.batch_size, ctx)))
    }
}

impl NodeSpec for Aggregate {
    fn connection_kind(&self) -> Option<ConnectionKind> {
        Some(ConnectionKind::Mongodb)
    }

    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor {
            node_type: "mongodb_aggregate".into(),
            title: "MongoDB Aggregate".into(),
            category: Category::Source,
            description: "Runs an aggregation pipeline on a MongoDB collection and streams its results, one server \
                batch (batch_size documents) at a time. After a lost connection the pipeline runs again past the \
                documents already read: exact when its output order is deterministic (end it with a $sort on \
                unique fields)."
                .into(),
            inputs: vec![],
            outputs: vec![PortSpec::output("out", "The pipeline's output documents, as records")],
            params_schema: schema_of::<AggregateParams>(),
            output_schema: None,
        }
    }
}

impl NodeType for Aggregate {
    fn build(&self, params: serde_json::Value, ctx: &BuildContext) -> Result<Box<dyn Operator>, NodeError> {
        let p: AggregateParams = decode(&params)?;
        let place = Place::resolve(ctx, &p.connection, p.database.as_deref(), &p.collection)?;
        let pipeline = p
            .pipeline
            .iter()
            .enumerate()
            .map(|(i, stage)| document(&format!("pipeline[{i}]"), stage))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Box::new(SourceOp::new(place, Query::Aggregate { pipeline }, p.batch_size, ctx)))
    }
}

enum Query {
    Find(Box<FindQuery>),
    Aggregate { pipeline: Vec<Document> },
}

struct FindQuery {
    filter: Document,
    projection: Option<Document>,
    sort: Document,
    limit: Option<u64>,
}

struct SourceOp {
    place: Place,
    query: Query,
    batch_size: u32,
    cursor: Option<Cursor<Document>>,
    /// Documents taken from the query so far (emitted or buffered): where a re-opened query
    /// resumes.
    taken: u64,
    /// Records of the batch being filled. Kept across calls so that a call dropped by a timeout
    /// loses nothing the cursor already handed over.
    buf: Vec<Record>,
    exhausted: bool,
}

impl SourceOp {
    fn new(place: Place, query: Query, batch_size: Option<u32>, ctx: &BuildContext) -> Self {
        let batch_size =
            batch_size.unwrap_or_else(|| u32::try_from(ctx.batch_size).unwrap_or(u32::MAX)).max(1);
        Self { place, query, batch_size, cursor: None, taken: 0, buf: Vec::new(), exhausted: false }
    }
}

/// Opens the query past the first `taken` documents; `None` when a limit is already reached. A
/// free function: the operator holds a cursor, which is not `Sync`, so `&SourceOp` cannot cross
/// an await.
async fn open_cursor(
    place: &Place,
    query: &Query,
    batch_size: u32,
    taken: u64,
) -> Result<Option<Cursor<Document>>, NodeError> {
    let coll = place.collection().await?;
    match query {
        Query::Find(find) => {
            let FindQuery { filter, projection, sort, limit } = find.as_ref();
            let remaining = match limit {
                Some(l) if *l <= taken => return Ok(None),
                Some(l) => Some(i64::try_from(l - taken).unwrap_or(i64::MAX)),
                None => None,
            };
            let mut find = coll.find(filter.clone()).sort(sort.clone()).batch_size(batch_size).skip(taken);
            if let Some(p) = projection {
                find = find.projection(p.clone());
            }
            if let Some(n) = remaining {
                find = find.limit(n);
            }
            find.await.map(Some).map_err(|e| place.error("find", &e))
        }
        Query::Aggregate { pipeline } => {
            let mut stages = pipeline.clone();
            if taken > 0 {
                stages.push(doc! {"$skip": i64::try_from(taken).unwrap_or(i64::MAX)});
            }
            coll.aggregate(stages)
                .batch_size(batch_size)
                .await
                .map(Some)
                .map_err(|e| place.error("aggregate", &e))
        }
    }
}

#[async_trait]
impl Operator for SourceOp {
    async fn produce(&mut self, out: &mut Emitter) -> Result<bool, NodeError> {
        while !self.exhausted && self.buf.len() < self.batch_size as usize {
            if self.cursor.is_none() {
                match open_cursor(&self.place, &self.query, self.batch_size, self.taken).await? {
                    Some(c) => self.cursor = Some(c),
                    None => {
                        self.exhausted = true;
                        break;
                    }
                }
            }
            let Some(cursor) = self.cursor.as_mut() else { break };
            match cursor.try_next().await {
                Ok(Some(doc)) => {
                    self.buf.push(to_record(doc));
                    self.taken += 1;
                }
                Ok(None) => self.exhausted = true,
                Err(e) => {
                    // The server cursor is gone with the connection: the retry re-opens the query.
                    self.cursor = None;
                    return Err(self.place.error("reading the cursor", &e));
                }
            }
        }
        out.emit_batch(std::mem::take(&mut self.buf));
        if self.exhausted {
            self.cursor = None;
        }
        Ok(!self.exhausted)
    }

    fn target(&self) -> Option<String> {
        Some(self.place.target.clone())
    }
}
