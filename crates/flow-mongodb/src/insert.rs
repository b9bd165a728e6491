//! `mongodb_insert`: inserts every incoming batch with one ordered `insert_many`. All-or-nothing
//! per execution: by default by compensation (each document gets its `_id` before it is sent,
//! the sink remembers the `_id`s only, and a rollback deletes them), or inside the execution's
//! transaction with `transaction: true`. See docs/types.md, "MongoDB writes: what is undone".

use std::sync::Arc;

use async_trait::async_trait;
use flow_model::{Batch, Category, ConnectionKind, NodeDescriptor, NodeSpec, PortSpec};
use flow_runtime::{BuildContext, Emitter, NodeError, NodeType, Operator};
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{Bson, Document};
use mongodb::{Client, Collection};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::bson_value::{to_document, to_value};
use crate::connect::Place;
use crate::params::{decode, schema_of};
use crate::write::{Inflight, SharedTxn, delete_ids, existing_ids, lock_txn, shared_txn};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Name of a connection of kind `mongodb`.
    connection: String,
    /// Database; by default the one named in the connection URL.
    #[serde(default)]
    database: Option<String>,
    /// Collection to insert into (the server creates it on the first insert).
    collection: String,
    /// Write inside one multi-document transaction per execution and connection, committed when
    /// the execution succeeds (needs a replica set or a sharded cluster, and an execution shorter
    /// than the server's transaction lifetime, 60 s by default). Off: a failed or cancelled
    /// execution deletes the documents it inserted, by `_id`.
    #[serde(default)]
    transaction: bool,
}

pub(crate) struct Insert;

impl NodeSpec for Insert {
    fn connection_kind(&self) -> Option<ConnectionKind> {
        Some(ConnectionKind::Mongodb)
    }

    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor {
            node_type: "mongodb_insert".into(),
            title: "MongoDB Insert".into(),
            category: Category::Sink,
            description: "Inserts records into a MongoDB collection, one ordered insert_many per batch. \
                All-or-nothing: a record without `_id` gets a new ObjectId before it is sent; the sink \
                remembers only the `_id`s and, when the execution fails or is cancelled, deletes exactly those \
                documents again, leaving the collection as it was. A record whose `_id` already exists fails \
                the execution. With `transaction: true` the inserts run in the execution's transaction instead, \
                invisible to others until it commits."
                .into(),
            inputs: vec![PortSpec::input("in", "Records to insert").multiple()],
            outputs: vec![],
            params_schema: schema_of::<Params>(),
            output_schema: None,
        }
    }
}

impl NodeType for Insert {
    fn build(&self, params: serde_json::Value, ctx: &BuildContext) -> Result<Box<dyn Operator>, NodeError> {
        let p: Params = decode(&params)?;
        let place = Place::resolve(ctx, &p.connection, p.database.as_deref(), &p.collection)?;
        let mode = if p.transaction {
            Mode::Transaction(shared_txn(ctx, &place))
        } else {
            Mode::Compensate(Undo::default())
        };
        Ok(Box::new(InsertOp { place, mode, inflight: Inflight::default(), pending: None }))
    }
}

enum Mode {
    Compensate(Undo),
    Transaction(Arc<SharedTxn>),
}

/// The `_id`s this execution may have inserted: ids only, so memory stays small (12 bytes per
/// generated ObjectId).
#[derive(Default)]
struct Undo {
    /// Generated here: no one else can have a document with them, so deleting them is safe.
    generated: Vec<ObjectId>,
    /// Carried by the records and checked absent before the insert.
    supplied: Vec<Bson>,
}

struct InsertOp {
    place: Place,
    mode: Mode,
    inflight: Inflight,
    /// The `_id` of each record of a batch whose write is not confirmed, so that the retried call
    /// reuses them and skips the documents an earlier attempt wrote.
    pending: Option<Vec<Bson>>,
}

impl InsertOp {
    fn documents(&self, batch: &Batch) -> Result<Vec<Document>, NodeError> {
        batch
            .iter()
            .map(|r| to_document(r).map_err(|e| NodeError::record(format!("{}: {e}", self.place))))
            .collect()
    }

    /// Gives every document its `_id` for a first attempt, remembering generated ones at once and
    /// refusing `_id`s that exist already (deleting those on rollback would destroy data).
    async fn assign_ids(
        &mut self,
        coll: &Collection<Document>,
        docs: &[Document],
    ) -> Result<Vec<Bson>, NodeError> {
        let Mode::Compensate(undo) = &mut self.mode else { return Ok(Vec::new()) };
        let mut ids = Vec::with_capacity(docs.len());
        let mut supplied = Vec::new();
        for d in docs {
            match d.get("_id") {
                Some(id) => {
                    ids.push(id.clone());
                    supplied.push(id.clone());
                }
                None => {
                    let oid = ObjectId::new();
                    undo.generated.push(oid);
                    ids.push(Bson::ObjectId(oid));
                }
            }
        }
        let clash = existing_ids(coll, &supplied)
            .await
            .map_err(|e| self.place.error("checking the records' _ids", &e))?;
        if let Some(id) = clash.first() {
            return Err(NodeError::permanent(format!(
                "{}: a document with _id {} already exists; mongodb_insert only adds new documents (to overwrite, use mongodb_update with key_fields [\"_id\"] and upsert: true)",
                self.place,
                to_value(id.clone())
            )));
        }
        if let Mode::Compensate(undo) = &mut self.mode {
            undo.supplied.extend(supplied);
        }
        Ok(ids)
    }

    async fn insert(&mut self, coll: Collection<Document>, docs: Vec<Document>) -> Result<(), NodeError> {
        if docs.is_empty() {
            return Ok(());
        }
        let place = self.place.clone();
        self.inflight
            .run(async move {
                coll.insert_many(docs).ordered(true).await.map(drop).map_err(|e| place.error("insert", &e))
            })
            .await
    }

    async fn insert_in_txn(
        &mut self,
        client: Client,
        txn: Arc<SharedTxn>,
        docs: Vec<Document>,
    ) -> Result<(), NodeError> {
        let coll = client.database(&self.place.database).collection::<Document>(&self.place.collection);
        let mut state = lock_txn(&txn).await;
        let place = self.place.clone();
        self.inflight
            .run(async move {
                let session = state.session(&client, &place).await?;
                let result = coll.insert_many(docs).ordered(true).session(session).await.map(drop);
                state.outcome(result, &place, "insert")
            })
            .await
    }
}

/// The documents with their `_id` first, as the server stores them.
fn with_ids(docs: Vec<Document>, ids: &[Bson]) -> Vec<Document> {
    docs.into_iter()
        .zip(ids)
        .map(|(d, id)| {
            let mut out = Document::new();
            out.insert("_id", id.clone());
            out.extend(d.into_iter().filter(|(k, _)| k != "_id"));
            out
        })
        .collect()
}

#[async_trait]
impl Operator for InsertOp {
    async fn process(
        &mut self,
        _port: usize,
        batch: &mut Batch,
        _out: &mut Emitter,
    ) -> Result<(), NodeError> {
        // A call dropped by a timeout may have left this batch's write running; if it succeeded,
        // the batch is written.
        if let Some(Ok(())) = self.inflight.wait().await {
            self.pending = None;
            return Ok(());
        }
        if batch.is_empty() {
            return Ok(());
        }
        let docs = self.documents(batch)?;
        let client = self.place.client().await?;
        if let Mode::Transaction(txn) = &self.mode {
            let txn = Arc::clone(txn);
            return self.insert_in_txn(client, txn, docs).await;
        }
        let coll = client.database(&self.place.database).collection::<Document>(&self.place.collection);
        // Cloned, not taken: `pending` must survive this call being dropped before the write.
        let (docs, ids) = match self.pending.clone() {
            Some(ids) if ids.len() == docs.len() => {
                // A retry: the failed attempt may have written a prefix of the batch.
                let written = existing_ids(&coll, &ids)
                    .await
                    .map_err(|e| self.place.error("checking what the failed attempt wrote", &e))?;
                let todo = with_ids(docs, &ids)
                    .into_iter()
                    .filter(|d| d.get("_id").is_none_or(|id| !written.contains(id)));
                (todo.collect(), ids)
            }
            _ => {
                let ids = self.assign_ids(&coll, &docs).await?;
                (with_ids(docs, &ids), ids)
            }
        };
        self.pending = Some(ids);
        self.insert(coll, docs).await?;
        self.pending = None;
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), NodeError> {
        if let Some(Err(e)) = self.inflight.wait().await {
            return Err(e);
        }
        match &mut self.mode {
            // The documents stay: forget their ids.
            Mode::Compensate(undo) => {
                *undo = Undo::default();
                Ok(())
            }
            Mode::Transaction(txn) => txn.lock().await.commit(&self.place).await,
        }
    }

    async fn rollback(&mut self) -> Result<(), NodeError> {
        // A write still running must land before it can be undone.
        let _ = self.inflight.wait().await;
        let undo = match &mut self.mode {
            Mode::Transaction(txn) => return txn.lock().await.abort(&self.place).await,
            Mode::Compensate(undo) => std::mem::take(undo),
        };
        let remembered = undo.generated.len() + undo.supplied.len();
        if remembered == 0 {
            return Ok(());
        }
        let coll = self.place.collection().await?;
        let ids = undo.generated.into_iter().map(Bson::ObjectId).chain(undo.supplied);
        match delete_ids(&coll, ids).await {
            Ok(deleted) => {
                tracing::info!(place = %self.place, deleted, remembered, "inserted documents deleted on rollback");
                Ok(())
            }
            Err(e) => Err(NodeError::new(
                self.place.error("undoing the inserts", &e).kind,
                format!(
                    "{}; some of the documents this execution inserted may remain (up to {remembered})",
                    self.place.message("undoing the inserts (delete by _id)", &e)
                ),
            )),
        }
    }

    fn target(&self) -> Option<String> {
        Some(self.place.target.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn documents_get_their_id_first_and_keep_the_field_order() {
        let oid = ObjectId::new();
        let docs = vec![doc! {"b": 1, "a": 2}, doc! {"x": 1, "_id": 7, "y": 2}];
        let ids = [Bson::ObjectId(oid), Bson::Int32(7)];
        assert_eq!(
            with_ids(docs, &ids),
            [doc! {"_id": oid, "b": 1, "a": 2}, doc! {"_id": 7, "x": 1, "y": 2}]
        );
    }
}
