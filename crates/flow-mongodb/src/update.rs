//! `mongodb_update`: for each record, `$set`s its non-key fields on every document whose key
//! fields equal the record's (`update_many`, optionally upserting). All-or-nothing per
//! execution: by default by compensation (the sink fetches each matched document before changing
//! it, keeps that pre-image, and a rollback restores the pre-images and deletes the documents its
//! upserts created), or inside the execution's transaction with `transaction: true`. See
//! docs/types.md, "MongoDB writes: what is undone".

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use flow_model::{Batch, Category, ConnectionKind, NodeDescriptor, NodeSpec, PortSpec};
use flow_runtime::{BuildContext, Emitter, NodeError, NodeType, Operator};
use futures::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{Bson, Document, doc};
use mongodb::{Client, Collection};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::bson_value::to_bson;
use crate::connect::Place;
use crate::params::{decode, schema_of};
use crate::write::{Inflight, SharedTxn, delete_ids, lock_txn, shared_txn, undo_step};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Name of a connection of kind `mongodb`.
    connection: String,
    /// Database; by default the one named in the connection URL.
    #[serde(default)]
    database: Option<String>,
    /// Collection to update.
    collection: String,
    /// Record fields whose values identify the documents to update: every document whose fields
    /// equal all of them is updated, e.g. `["email"]` or `["_id"]`. Index them.
    #[schemars(length(min = 1))]
    key_fields: Vec<String>,
    /// Insert a document (the key fields and the other fields) when none matches.
    #[serde(default)]
    upsert: bool,
    /// Write inside one multi-document transaction per execution and connection, committed when
    /// the execution succeeds (needs a replica set or a sharded cluster, and an execution shorter
    /// than the server's transaction lifetime, 60 s by default). Off: a failed or cancelled
    /// execution restores the documents it changed from pre-images and deletes those it upserted.
    #[serde(default)]
    transaction: bool,
    /// Without a transaction: most pre-images (and upserted `_id`s) kept in memory for undoing;
    /// an execution that needs more fails before writing beyond it.
    #[serde(default = "default_max_undo")]
    #[schemars(range(min = 1))]
    max_undo_documents: usize,
}

fn default_max_undo() -> usize {
    100_000
}

pub(crate) struct Update;

impl NodeSpec for Update {
    fn connection_kind(&self) -> Option<ConnectionKind> {
        Some(ConnectionKind::Mongodb)
    }

    fn descriptor(&self) -> NodeDescriptor {
        NodeDescriptor {
            node_type: "mongodb_update".into(),
            title: "MongoDB Update".into(),
            category: Category::Sink,
            description: "Updates MongoDB documents: for each record, sets its other fields ($set) on every document \
                whose key_fields equal the record's; with `upsert`, inserts one when none matches. `_id` is never \
                set. All-or-nothing: before changing documents the sink reads them and keeps these pre-images \
                (at most max_undo_documents); when the execution fails or is cancelled it restores them and deletes \
                the documents its upserts created. With `transaction: true` the updates run in the execution's \
                transaction instead."
                .into(),
            inputs: vec![PortSpec::input("in", "Records: key fields and the fields to set").multiple()],
            outputs: vec![],
            params_schema: schema_of::<Params>(),
            output_schema: None,
        }
    }
}

impl NodeType for Update {
    fn build(&self, params: serde_json::Value, ctx: &BuildContext) -> Result<Box<dyn Operator>, NodeError> {
        let p: Params = decode(&params)?;
        if p.key_fields.is_empty() {
            return Err(NodeError::params("params.key_fields: name at least one field"));
        }
        let place = Place::resolve(ctx, &p.connection, p.database.as_deref(), &p.collection)?;
        let mode = if p.transaction {
            Mode::Transaction(shared_txn(ctx, &place))
        } else {
            Mode::Compensate(Undo::default())
        };
        Ok(Box::new(UpdateOp {
            place,
            key_fields: p.key_fields,
            upsert: p.upsert,
            max_undo: p.max_undo_documents,
            mode,
            inflight: Inflight::default(),
        }))
    }
}

enum Mode {
    Compensate(Undo),
    Transaction(Arc<SharedTxn>),
}

#[derive(Default)]
struct Undo {
    /// Each changed document as it was before the execution first touched it.
    preimages: Vec<Document>,
    /// `_id`s of the pre-images, so that only the first (the original) is kept.
    seen: HashSet<String>,
    /// `_id`s upserts may have created: fresh ObjectIds, or key `_id`s no document had.
    created: Vec<Bson>,
}

/// One record's update.
struct Change {
    filter: Document,
    update: Document,
}

/// A hashable form of an `_id` (BSON values are not `Hash`); the type is part of it, as in BSON.
fn id_key(id: &Bson) -> String {
    format!("{id:?}")
}

struct UpdateOp {
    place: Place,
    key_fields: Vec<String>,
    upsert: bool,
    max_undo: usize,
    mode: Mode,
    inflight: Inflight,
}

impl UpdateOp {
    fn changes(&self, batch: &Batch) -> Result<Vec<Change>, NodeError> {
        let record_error =
            |e: crate::bson_value::ToBsonError| NodeError::record(format!("{}: {e}", self.place));
        let mut out = Vec::with_capacity(batch.len());
        for r in batch {
            let mut filter = Document::new();
            for k in &self.key_fields {
                let v = r.get(k).ok_or_else(|| {
                    NodeError::record(format!(
                        "{}: a record has no key field `{k}` (key_fields: {}); fields: {}",
                        self.place,
                        self.key_fields.join(", "),
                        r.keys().collect::<Vec<_>>().join(", ")
                    ))
                })?;
                filter.insert(k.as_str(), to_bson(k, v).map_err(record_error)?);
            }
            let mut set = Document::new();
            for (k, v) in r.iter() {
                if k != "_id" && !self.key_fields.iter().any(|f| f == k) {
                    set.insert(k.as_str(), to_bson(k, v).map_err(record_error)?);
                }
            }
            let mut update = Document::new();
            if !set.is_empty() {
                update.insert("$set", set);
            } else if self.upsert {
                // Nothing to set: an upsert still inserts the key fields.
                let keys: Document =
                    filter.iter().filter(|(k, _)| *k != "_id").map(|(k, v)| (k.clone(), v.clone())).collect();
                if !keys.is_empty() {
                    update.insert("$setOnInsert", keys);
                }
            }
            if !update.is_empty() {
                out.push(Change { filter, update });
            }
        }
        Ok(out)
    }

    /// Keeps the pre-images of the documents this batch will change, and gives each upsert an
    /// `_id` known in advance, before anything is written.
    async fn prepare_undo(
        &mut self,
        coll: &Collection<Document>,
        changes: &mut [Change],
    ) -> Result<(), NodeError> {
        let Mode::Compensate(undo) = &mut self.mode else { return Ok(()) };
        let filters: Vec<Document> = changes.iter().map(|c| c.filter.clone()).collect();
        let found: Vec<Document> = async { coll.find(doc! {"$or": filters}).await?.try_collect().await }
            .await
            .map_err(|e| self.place.error("reading the documents to update (for undo)", &e))?;
        let fresh: Vec<Document> = found
            .into_iter()
            .filter(|d| d.get("_id").is_some_and(|id| !undo.seen.contains(&id_key(id))))
            .collect();
        let upserts = if self.upsert { changes.len() } else { 0 };
        if undo.preimages.len() + undo.created.len() + fresh.len() + upserts > self.max_undo {
            return Err(NodeError::permanent(format!(
                "{}: this execution would change more than {} documents, more than the undo log keeps (max_undo_documents); raise it or use transaction: true",
                self.place, self.max_undo
            )));
        }
        for d in fresh {
            if let Some(id) = d.get("_id") {
                undo.seen.insert(id_key(id));
            }
            undo.preimages.push(d);
        }
        if self.upsert {
            for c in changes.iter_mut() {
                match c.filter.get("_id") {
                    Some(id) if !undo.seen.contains(&id_key(id)) => undo.created.push(id.clone()),
                    Some(_) => {}
                    None => {
                        let oid = ObjectId::new();
                        undo.created.push(Bson::ObjectId(oid));
                        match c.update.get_document_mut("$setOnInsert") {
                            Ok(on_insert) => {
                                on_insert.insert("_id", oid);
                            }
                            Err(_) => {
                                c.update.insert("$setOnInsert", doc! {"_id": oid});
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    async fn apply(&mut self, client: Client, changes: Vec<Change>) -> Result<(), NodeError> {
        let coll = client.database(&self.place.database).collection::<Document>(&self.place.collection);
        let (place, upsert) = (self.place.clone(), self.upsert);
        match &self.mode {
            Mode::Compensate(_) => {
                self.inflight
                    .run(async move {
                        for c in changes {
                            coll.update_many(c.filter, c.update)
                                .upsert(upsert)
                                .await
                                .map_err(|e| place.error("update", &e))?;
                        }
                        Ok(())
                    })
                    .await
            }
            Mode::Transaction(txn) => {
                let mut state = lock_txn(txn).await;
                self.inflight
                    .run(async move {
                        for c in changes {
                            let session = state.session(&client, &place).await?;
                            let result = coll
                                .update_many(c.filter, c.update)
                                .upsert(upsert)
                                .session(session)
                                .await
                                .map(drop);
                            state.outcome(result, &place, "update")?;
                        }
                        Ok(())
                    })
                    .await
            }
        }
    }
}

#[async_trait]
impl Operator for UpdateOp {
    async fn process(
        &mut self,
        _port: usize,
        batch: &mut Batch,
        _out: &mut Emitter,
    ) -> Result<(), NodeError> {
        // A call dropped by a timeout may have left this batch's updates running; if they
        // finished, the batch is written.
        if let Some(Ok(())) = self.inflight.wait().await {
            return Ok(());
        }
        let mut changes = self.changes(batch)?;
        if changes.is_empty() {
            return Ok(());
        }
        let client = self.place.client().await?;
        let coll = client.database(&self.place.database).collection::<Document>(&self.place.collection);
        self.prepare_undo(&coll, &mut changes).await?;
        // Re-applying `$set` is harmless, so a retry simply runs the whole batch again.
        self.apply(client, changes).await
    }

    async fn commit(&mut self) -> Result<(), NodeError> {
        if let Some(Err(e)) = self.inflight.wait().await {
            return Err(e);
        }
        match &mut self.mode {
            Mode::Compensate(undo) => {
                *undo = Undo::default();
                Ok(())
            }
            Mode::Transaction(txn) => txn.lock().await.commit(&self.place).await,
        }
    }

    async fn rollback(&mut self) -> Result<(), NodeError> {
        // Updates still running must land before they can be undone.
        let _ = self.inflight.wait().await;
        let undo = match &mut self.mode {
            Mode::Transaction(txn) => return txn.lock().await.abort(&self.place).await,
            Mode::Compensate(undo) => std::mem::take(undo),
        };
        if undo.preimages.is_empty() && undo.created.is_empty() {
            return Ok(());
        }
        let coll = self.place.collection().await?;
        let (preimages, created) = (undo.preimages.len(), undo.created.len());
        let mut restored = 0;
        for pre in undo.preimages {
            let Some(id) = pre.get("_id").cloned() else { continue };
            let step = undo_step(|| coll.replace_one(doc! {"_id": id.clone()}, &pre).upsert(true)).await;
            if let Err(e) = step {
                return Err(NodeError::new(
                    self.place.error("undoing the updates", &e).kind,
                    format!(
                        "{}; {} of {preimages} changed documents restored, the rest keep this execution's changes",
                        self.place.message("undoing the updates (restoring pre-images)", &e),
                        restored
                    ),
                ));
            }
            restored += 1;
        }
        // After the restores: a document upserted and then updated again was restored first.
        let deleted = delete_ids(&coll, undo.created.into_iter()).await.map_err(|e| {
            NodeError::new(
                self.place.error("undoing the upserts", &e).kind,
                format!(
                    "{}; documents this execution upserted may remain",
                    self.place.message("undoing the upserts (delete by _id)", &e)
                ),
            )
        })?;
        tracing::info!(place = %self.place, restored, deleted, candidates = created, "updates undone on rollback");
        Ok(())
    }

    fn target(&self) -> Option<String> {
        Some(self.place.target.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::test_place;
    use flow_model::{Record, Value};

    fn op(key_fields: &[&str], upsert: bool) -> UpdateOp {
        UpdateOp {
            place: test_place(),
            key_fields: key_fields.iter().map(|k| (*k).to_owned()).collect(),
            upsert,
            max_undo: 10,
            mode: Mode::Compensate(Undo::default()),
            inflight: Inflight::default(),
        }
    }

    #[test]
    fn key_fields_filter_and_the_other_fields_are_set_except_id() {
        let batch = vec![Record::from([
            ("_id", Value::Int(1)),
            ("email", Value::from("a@x")),
            ("name", Value::from("A")),
            ("score", Value::Int(3)),
        ])];
        let changes = op(&["email"], false).changes(&batch).expect("valid");
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].filter, doc! {"email": "a@x"});
        assert_eq!(changes[0].update, doc! {"$set": {"name": "A", "score": 3}});
    }

    #[test]
    fn a_record_with_nothing_to_set_is_skipped_unless_it_upserts() {
        let batch = vec![Record::from([("email", Value::from("a@x")), ("kind", Value::from("k"))])];
        assert!(op(&["email", "kind"], false).changes(&batch).expect("valid").is_empty());
        let upserts = op(&["email", "kind"], true).changes(&batch).expect("valid");
        assert_eq!(upserts[0].update, doc! {"$setOnInsert": {"email": "a@x", "kind": "k"}});
    }

    #[test]
    fn a_record_without_a_key_field_is_a_record_error_naming_the_place() {
        let batch = vec![Record::from([("name", Value::from("A"))])];
        let Err(e) = op(&["email"], false).changes(&batch) else {
            panic!("accepted a record without its key")
        };
        assert_eq!(e.kind, flow_runtime::ErrorKind::Record);
        assert!(e.message.contains("app.people") && e.message.contains("key field `email`"), "{}", e.message);
        assert!(!e.message.contains("pw@"), "{}", e.message);
    }
}
