//! The transaction coordinator (standalone mode): a thin actor over [`TxnMetadata`], one
//! entry per transactional id. Every state change is persisted (`meta/transactions/{id}.json`,
//! overwritten) **before** it is answered or acted on, as Kafka appends to
//! `__transaction_state` first. Committing or aborting writes a COMMIT/ABORT marker to every
//! partition of the transaction through its leader ([`WriteMarker`], answered once durable)
//! and, for a commit, the transaction's pending consumer-group offsets through the group's
//! coordinator; only then is the final state persisted. A broker that restarts in the middle
//! finds the prepared state and finishes the job.
//!
//! One operation per transactional id runs at a time: another one meanwhile gets
//! CONCURRENT_TRANSACTIONS (clients retry it). Ongoing transactions older than their timeout
//! are aborted under a bumped epoch, which fences the producer that let them expire.
//!
//! Produce checks transactional records against [`TxnIndex`] (which partitions each producer
//! id has added to its ongoing transaction), shared with the broker and updated whenever a
//! state is installed.

use super::state::{codes, EndOutcome, InitOutcome, TxnMetadata, TxnState};
use crate::broker::Broker;
use crate::error::{Error, Result};
use crate::log::leader::WriteMarker;
use crate::storage::writer::now_ms;
use crate::storage::Storage;
use actix::prelude::*;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// Where transactional ids are persisted.
pub const PREFIX: &str = "meta/transactions/";

/// Written once the first transactional id exists and never removed: from then on partition
/// leaders rebuild their transaction state at start-up (stored data may hold transactional
/// records even after every id expired).
pub const IN_USE_PATH: &str = "meta/transactions-in-use";

/// How often ongoing transactions are checked against their timeout (Kafka:
/// `transaction.abort.timed.out.transaction.cleanup.interval.ms`, 10 s).
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// A consumer-group offset a transaction commits (TxnOffsetCommit), applied with the COMMIT.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingOffset {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    /// When TxnOffsetCommit staged it (ms): a plain commit made after that wins, as in Kafka.
    #[serde(default)]
    pub staged_ms: i64,
}

/// The persisted document of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TxnDoc {
    pub meta: TxnMetadata,
    #[serde(default)]
    pub offsets: Vec<PendingOffset>,
}

fn doc_path(id: &str) -> String {
    // Hex keeps any transactional id a valid, flat object name; a long id is named by its
    // SHA-256 instead (file names are limited to 255 bytes; the document holds the id).
    let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
    if id.len() <= 100 {
        format!("{PREFIX}{}.json", hex(id.as_bytes()))
    } else {
        let d = ring::digest::digest(&ring::digest::SHA256, id.as_bytes());
        format!("{PREFIX}sha256-{}.json", hex(d.as_ref()))
    }
}

/// A producer id's transactional id, current epoch and ongoing transaction's partitions.
type IdEpoch = (String, i16, BTreeSet<(String, i32)>);

/// What produce checks transactional records against: per producer id, its transactional
/// id's current epoch and the partitions of its ongoing transaction.
#[derive(Debug, Default)]
pub struct TxnIndex {
    /// Producer id → (transactional id, current epoch, partitions of its ongoing transaction;
    /// empty outside one).
    producers: HashMap<i64, IdEpoch>,
    /// Partitions with offsets a transaction will commit, per group (OffsetFetch
    /// require_stable answers UNSTABLE_OFFSET_COMMIT for them).
    /// (Several transactional ids may stage the same partition: counted.)
    pending_offsets: HashMap<String, BTreeMap<(String, i32), usize>>,
    /// Ids with a transaction open: ongoing, or decided with markers still being written.
    open: usize,
}

/// Does this state hold a transaction open (the `transactions_open` gauge)?
fn is_open(m: &TxnMetadata) -> bool {
    m.state == TxnState::Ongoing || m.state.is_preparing()
}

impl TxnIndex {
    /// May `producer_id` at `epoch`, of `transactional_id`, write transactional records to
    /// `topic`-`partition`? Kafka's answers: an older epoch is INVALID_PRODUCER_EPOCH, a
    /// partition not added to the ongoing transaction INVALID_TXN_STATE.
    pub fn check(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        topic: &str,
        partition: i32,
    ) -> Result<()> {
        let Some((id, current, parts)) = self.producers.get(&producer_id) else {
            return Err(Error::InvalidTxnState(format!(
                "producer id {producer_id} belongs to no transactional id"
            )));
        };
        if id != transactional_id {
            return Err(Error::InvalidTxnState(format!(
                "producer id {producer_id} belongs to another transactional id"
            )));
        }
        if epoch < *current {
            return Err(Error::InvalidProducerEpoch(format!(
                "epoch {epoch} is older than the current epoch {current}"
            )));
        }
        if epoch > *current || !parts.contains(&(topic.to_string(), partition)) {
            return Err(Error::InvalidTxnState(format!(
                "{topic}-{partition} is not part of an ongoing transaction of '{transactional_id}'"
            )));
        }
        Ok(())
    }

    /// Partitions of `group` whose offsets an ongoing transaction will commit.
    pub fn pending_offsets(&self, group: &str) -> BTreeSet<(String, i32)> {
        self.pending_offsets
            .get(group)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Transactional ids with a transaction open.
    pub fn open_transactions(&self) -> usize {
        self.open
    }

    /// Forget what `old` contributed (it is replaced or removed).
    fn remove(&mut self, old: &TxnDoc) {
        self.producers.remove(&old.meta.producer_id);
        if is_open(&old.meta) {
            self.open = self.open.saturating_sub(1);
        }
        if !stages_offsets(&old.meta) {
            return;
        }
        for p in &old.offsets {
            if let Some(m) = self.pending_offsets.get_mut(&p.group) {
                let key = (p.topic.clone(), p.partition);
                if let Some(n) = m.get_mut(&key) {
                    *n -= 1;
                    if *n == 0 {
                        m.remove(&key);
                    }
                }
                if m.is_empty() {
                    self.pending_offsets.remove(&p.group);
                }
            }
        }
    }

    fn install(&mut self, old: Option<&TxnDoc>, doc: &TxnDoc) {
        if let Some(o) = old {
            self.remove(o);
        }
        let m = &doc.meta;
        if is_open(m) {
            self.open += 1;
        }
        // Every id is known with its epoch (a fenced producer gets INVALID_PRODUCER_EPOCH,
        // which clients treat as fatal); only an ongoing transaction has partitions.
        let parts = match m.state {
            TxnState::Ongoing => m.partitions.clone(),
            _ => BTreeSet::new(),
        };
        self.producers.insert(
            m.producer_id,
            (m.transactional_id.clone(), m.producer_epoch, parts),
        );
        if stages_offsets(m) {
            for p in &doc.offsets {
                *self
                    .pending_offsets
                    .entry(p.group.clone())
                    .or_default()
                    .entry((p.topic.clone(), p.partition))
                    .or_default() += 1;
            }
        }
    }
}

/// Do this state's staged offsets count as pending (UNSTABLE_OFFSET_COMMIT)?
fn stages_offsets(m: &TxnMetadata) -> bool {
    m.state == TxnState::Ongoing || m.state == TxnState::PrepareCommit
}

/// PRODUCER_FENCED exists for clients from a version on (InitProducerId v4, the others v2);
/// older versions answer INVALID_PRODUCER_EPOCH instead, as Kafka's KafkaApis does.
pub fn fenced_code(code: i16, version: i16, fenced_from: i16) -> i16 {
    if code == codes::PRODUCER_FENCED && version < fenced_from {
        crate::error::code::INVALID_PRODUCER_EPOCH
    } else {
        code
    }
}

/// Load every persisted transactional id (start-up), and whether transactions were ever used.
pub async fn load(storage: &Storage) -> Result<(Vec<TxnDoc>, bool)> {
    let mut docs = Vec::new();
    for o in storage.list(PREFIX).await? {
        let Some(b) = storage.get_opt(&o.path).await? else {
            continue;
        };
        match serde_json::from_slice::<TxnDoc>(&b) {
            Ok(d) => docs.push(d),
            Err(e) => {
                return Err(Error::Internal(format!(
                    "unreadable transaction state {}: {e}",
                    o.path
                )))
            }
        }
    }
    let in_use = !docs.is_empty() || storage.get_opt(IN_USE_PATH).await?.is_some();
    Ok((docs, in_use))
}

struct Entry {
    doc: TxnDoc,
    /// An operation (or the markers of a prepared transaction) is in flight.
    busy: bool,
}

pub struct TxnCoordinator {
    broker: Weak<Broker>,
    storage: Storage,
    ids: HashMap<String, Entry>,
    index: Arc<Mutex<TxnIndex>>,
    max_timeout_ms: i32,
    in_use_written: bool,
}

impl TxnCoordinator {
    pub fn new(
        broker: Weak<Broker>,
        storage: Storage,
        docs: Vec<TxnDoc>,
        index: Arc<Mutex<TxnIndex>>,
        in_use: bool,
    ) -> TxnCoordinator {
        let mut ids = HashMap::new();
        {
            let mut ix = index.lock().unwrap_or_else(|e| e.into_inner());
            for doc in docs {
                ix.install(None, &doc);
                ids.insert(
                    doc.meta.transactional_id.clone(),
                    Entry { doc, busy: false },
                );
            }
        }
        TxnCoordinator {
            broker,
            storage,
            ids,
            index,
            max_timeout_ms: super::state::MAX_TIMEOUT_MS,
            in_use_written: in_use,
        }
    }

    /// Install a persisted document (and free the id for the next operation).
    fn install(&mut self, doc: TxnDoc) {
        let id = doc.meta.transactional_id.clone();
        let old = self.ids.get(&id).map(|e| &e.doc);
        self.index
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .install(old, &doc);
        self.ids.insert(id, Entry { doc, busy: false });
    }

    /// Persist `doc`, then install it in the actor and answer `ok`; a failed write frees the
    /// id and answers COORDINATOR_NOT_AVAILABLE (retriable; nothing changed).
    fn persist_then<T: 'static>(
        &mut self,
        doc: TxnDoc,
        ok: impl FnOnce(&mut Self, &mut Context<Self>, &TxnDoc) -> std::result::Result<T, i16> + 'static,
    ) -> ResponseActFuture<Self, std::result::Result<T, i16>> {
        let id = doc.meta.transactional_id.clone();
        if let Some(e) = self.ids.get_mut(&id) {
            e.busy = true;
        }
        let storage = self.storage.clone();
        let first = !self.in_use_written;
        let key = id.clone();
        let fut = async move {
            if first {
                storage
                    .put_overwrite(IN_USE_PATH, Bytes::from_static(b"{}"))
                    .await?;
            }
            let body = serde_json::to_vec(&doc).map_err(|e| Error::Internal(e.to_string()))?;
            storage
                .put_overwrite(&doc_path(&id), Bytes::from(body))
                .await?;
            Ok::<_, Error>(doc)
        };
        Box::pin(fut.into_actor(self).map(move |res, act, ctx| match res {
            Ok(doc) => {
                act.in_use_written = true;
                if let Some(b) = act.broker.upgrade() {
                    b.mark_transactions_in_use();
                }
                act.install(doc.clone());
                ok(act, ctx, &doc)
            }
            Err(e) => {
                tracing::warn!("transaction state of '{key}' not persisted: {e}");
                if let Some(en) = act.ids.get_mut(&key) {
                    en.busy = false;
                }
                Err(crate::group::state::COORDINATOR_NOT_AVAILABLE)
            }
        }))
    }

    /// Write the markers (and, for a commit, the pending offsets) of a prepared transaction,
    /// then persist its completion. Retries until it succeeds: a prepared transaction's
    /// outcome is decided.
    fn finish_prepared(&mut self, ctx: &mut Context<Self>, doc: TxnDoc) {
        let id = doc.meta.transactional_id.clone();
        if let Some(e) = self.ids.get_mut(&id) {
            e.busy = true;
        }
        let broker = self.broker.clone();
        let storage = self.storage.clone();
        let fut = async move {
            crate::storage::crash_point("txn.before_markers");
            let commit = doc.meta.state == TxnState::PrepareCommit;
            let m = &doc.meta;
            // What is written already: a retry writes only the rest (one marker per partition).
            let mut done = Progress::default();
            let mut backoff = Duration::from_millis(100);
            loop {
                let b = broker.upgrade()?;
                match write_outcome(&b, &doc, commit, &mut done).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(
                            "transaction '{}': markers not all written yet ({e}); retrying in {backoff:?}",
                            m.transactional_id
                        );
                        drop(b);
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
            crate::storage::crash_point("txn.after_markers");
            let done = TxnDoc {
                meta: m.complete(now_ms()),
                offsets: Vec::new(),
            };
            loop {
                let body = serde_json::to_vec(&done).ok()?;
                match storage
                    .put_overwrite(&doc_path(&done.meta.transactional_id), Bytes::from(body))
                    .await
                {
                    Ok(()) => return Some(done),
                    Err(e) => {
                        tracing::warn!("transaction completion not persisted ({e}); retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, _| {
            if let Some(done) = res {
                let broker = act.broker.upgrade();
                if let Some(b) = broker {
                    let name = if done.meta.state == TxnState::CompleteCommit {
                        "commit"
                    } else {
                        "abort"
                    };
                    b.metrics.transactions.with_label_values(&[name]).inc();
                }
                act.install(done);
            }
        }));
    }

    /// Abort ongoing transactions that outlived their timeout, under a bumped epoch.
    fn sweep(&mut self, ctx: &mut Context<Self>) {
        let now = now_ms();
        let expired: Vec<TxnDoc> = self
            .ids
            .values()
            .filter(|e| !e.busy && e.doc.meta.expired(now))
            .map(|e| e.doc.clone())
            .collect();
        for doc in expired {
            let next = TxnDoc {
                meta: doc.meta.abort_expired(now),
                offsets: doc.offsets.clone(),
            };
            tracing::info!(
                "transaction '{}' timed out after {} ms: aborting",
                next.meta.transactional_id,
                next.meta.timeout_ms
            );
            if let Some(b) = self.broker.upgrade() {
                b.metrics.transactions.with_label_values(&["timeout"]).inc();
            }
            let fut = self.persist_then(next, |act, ctx, doc| {
                act.finish_prepared(ctx, doc.clone());
                Ok(())
            });
            ctx.spawn(fut.map(|_: std::result::Result<(), i16>, _, _| ()));
        }
        // Ids idle in a final state for Kafka's `transactional.id.expiration.ms` (7 days) are
        // forgotten: document deleted, then dropped here.
        let idle: Vec<String> = self
            .ids
            .iter()
            .filter(|(_, e)| !e.busy && e.doc.meta.forgettable(now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in idle {
            if let Some(e) = self.ids.get_mut(&id) {
                e.busy = true;
            }
            let storage = self.storage.clone();
            let path = doc_path(&id);
            let fut = async move { storage.delete(&path).await };
            ctx.spawn(fut.into_actor(self).map(move |res, act, _| match res {
                Ok(()) => {
                    if let Some(e) = act.ids.remove(&id) {
                        act.index
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&e.doc);
                    }
                }
                Err(e) => {
                    tracing::warn!("expired transactional id '{id}' not deleted yet: {e}");
                    if let Some(e) = act.ids.get_mut(&id) {
                        e.busy = false;
                    }
                }
            }));
        }
    }
}

/// What a prepared transaction's outcome has reached so far.
#[derive(Default)]
struct Progress {
    partitions: BTreeSet<(String, i32)>,
    groups: BTreeSet<String>,
}

/// Write a prepared transaction's markers to its partitions (and commit its offsets), skipping
/// what `done` says is written; records progress in `done`.
async fn write_outcome(
    b: &Arc<Broker>,
    doc: &TxnDoc,
    commit: bool,
    done: &mut Progress,
) -> Result<()> {
    let m = &doc.meta;
    let mut tickets = Vec::new();
    let mut first_error = None;
    for (topic, partition) in &m.partitions {
        if done.partitions.contains(&(topic.clone(), *partition)) {
            continue;
        }
        let Some(t) = b.topic(topic) else {
            // Deleted meanwhile: nothing to mark.
            done.partitions.insert((topic.clone(), *partition));
            continue;
        };
        let Ok(part) = t.local(*partition) else {
            done.partitions.insert((topic.clone(), *partition));
            continue;
        };
        let sent = part
            .addr
            .send(WriteMarker {
                producer_id: m.producer_id,
                producer_epoch: m.producer_epoch,
                commit,
                coordinator_epoch: 0,
            })
            .await
            .map_err(|_| Error::NotLeader);
        match sent {
            Ok(Ok(t)) => tickets.push(((topic.clone(), *partition), t)),
            // A newer epoch already wrote there (this transaction was fenced): Kafka stops.
            Ok(Err(Error::InvalidProducerEpoch(_))) => {
                done.partitions.insert((topic.clone(), *partition));
            }
            Ok(Err(e)) | Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    for (tp, t) in tickets {
        match t.durable().await {
            Ok(_) => {
                done.partitions.insert(tp);
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    if commit {
        let mut by_group: BTreeMap<&str, Vec<&PendingOffset>> = BTreeMap::new();
        for p in &doc.offsets {
            if !done.groups.contains(&p.group) {
                by_group.entry(p.group.as_str()).or_default().push(p);
            }
        }
        for (group, offsets) in by_group {
            let Some(c) = b.groups.get_or_create(group) else {
                return Err(Error::NotCoordinator);
            };
            let offsets = offsets
                .into_iter()
                .map(|p| crate::group::coordinator::StagedOffset {
                    topic: p.topic.clone(),
                    partition: p.partition,
                    offset: p.offset,
                    leader_epoch: p.leader_epoch,
                    metadata: p.metadata.clone(),
                    staged_ms: p.staged_ms,
                })
                .collect();
            c.send(crate::group::coordinator::CommitTransactional { offsets })
                .await
                .map_err(|_| Error::NotCoordinator)?
                .map_err(|code| Error::Storage(format!("group offsets not written ({code})")))?;
            done.groups.insert(group.to_string());
        }
    }
    Ok(())
}

impl Actor for TxnCoordinator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Transactions prepared before a restart: their outcome is decided, finish them.
        let prepared: Vec<TxnDoc> = self
            .ids
            .values()
            .filter(|e| e.doc.meta.state.is_preparing())
            .map(|e| e.doc.clone())
            .collect();
        for doc in prepared {
            self.finish_prepared(ctx, doc);
        }
        ctx.run_interval(SWEEP_INTERVAL, |act, ctx| act.sweep(ctx));
    }
}

/// InitProducerId with a transactional id: `Ok((producer id, epoch))` or an error code
/// (PRODUCER_FENCED is mapped to older versions' codes by the handler).
#[derive(Message)]
#[rtype(result = "std::result::Result<(i64, i16), i16>")]
pub struct Init {
    pub transactional_id: String,
    pub timeout_ms: i32,
    /// (producer id, epoch) a KIP-360 client presents; (-1, -1) otherwise.
    pub presented: (i64, i16),
    /// A fresh producer id (for a new transactional id or an exhausted epoch).
    pub fresh_id: i64,
}

impl Handler<Init> for TxnCoordinator {
    type Result = ResponseActFuture<Self, std::result::Result<(i64, i16), i16>>;

    fn handle(&mut self, m: Init, _ctx: &mut Context<Self>) -> Self::Result {
        let ready = |r| Box::pin(actix::fut::ready(r)) as Self::Result;
        if !super::state::valid_timeout(m.timeout_ms, self.max_timeout_ms) {
            return ready(Err(codes::INVALID_TRANSACTION_TIMEOUT));
        }
        let now = now_ms();
        let current = match self.ids.get(&m.transactional_id) {
            Some(e) if e.busy => return ready(Err(codes::CONCURRENT_TRANSACTIONS)),
            Some(e) => e.doc.clone(),
            None => {
                let meta = TxnMetadata::new(&m.transactional_id, m.fresh_id, m.timeout_ms, now);
                // A new id starts at epoch -1 so that this first InitProducerId answers 0.
                let mut meta = meta;
                meta.producer_epoch = -1;
                TxnDoc {
                    meta,
                    offsets: Vec::new(),
                }
            }
        };
        if !self.ids.contains_key(&m.transactional_id) {
            self.ids.insert(
                m.transactional_id.clone(),
                Entry {
                    doc: current.clone(),
                    busy: false,
                },
            );
        }
        match current
            .meta
            .init(m.presented, m.timeout_ms, now, || m.fresh_id)
        {
            InitOutcome::Error(c) => ready(Err(c)),
            InitOutcome::Ready(next) => {
                let (pid, epoch) = (next.producer_id, next.producer_epoch);
                self.persist_then(
                    TxnDoc {
                        meta: next,
                        offsets: Vec::new(),
                    },
                    move |_, _, _| Ok((pid, epoch)),
                )
            }
            InitOutcome::AbortFirst(next) => self.persist_then(
                TxnDoc {
                    meta: next,
                    offsets: current.offsets.clone(),
                },
                |act, ctx, doc| {
                    act.finish_prepared(ctx, doc.clone());
                    Err(codes::CONCURRENT_TRANSACTIONS)
                },
            ),
        }
    }
}

/// AddPartitionsToTxn / AddOffsetsToTxn.
#[derive(Message)]
#[rtype(result = "std::result::Result<(), i16>")]
pub struct Add {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub partitions: Vec<(String, i32)>,
    pub groups: Vec<String>,
}

impl Handler<Add> for TxnCoordinator {
    type Result = ResponseActFuture<Self, std::result::Result<(), i16>>;

    fn handle(&mut self, m: Add, _ctx: &mut Context<Self>) -> Self::Result {
        let ready = |r| Box::pin(actix::fut::ready(r)) as Self::Result;
        let current = match self.ids.get(&m.transactional_id) {
            None => return ready(Err(codes::INVALID_PRODUCER_ID_MAPPING)),
            Some(e) if e.busy => return ready(Err(codes::CONCURRENT_TRANSACTIONS)),
            Some(e) => e.doc.clone(),
        };
        if current.meta.producer_id == m.producer_id
            && current.meta.producer_epoch == m.producer_epoch
            && current.meta.contains(&m.partitions, &m.groups)
        {
            return ready(Ok(()));
        }
        match current.meta.add(
            m.producer_id,
            m.producer_epoch,
            &m.partitions,
            &m.groups,
            now_ms(),
        ) {
            Err(c) => ready(Err(c)),
            Ok(next) => {
                // A new transaction starts without pending offsets.
                let offsets = if current.meta.state == TxnState::Ongoing {
                    current.offsets
                } else {
                    Vec::new()
                };
                self.persist_then(
                    TxnDoc {
                        meta: next,
                        offsets,
                    },
                    |_, _, _| Ok(()),
                )
            }
        }
    }
}

/// TxnOffsetCommit: offsets the ongoing transaction commits for a group it added.
#[derive(Message)]
#[rtype(result = "std::result::Result<(), i16>")]
pub struct AddOffsets {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub offsets: Vec<PendingOffset>,
}

impl Handler<AddOffsets> for TxnCoordinator {
    type Result = ResponseActFuture<Self, std::result::Result<(), i16>>;

    fn handle(&mut self, m: AddOffsets, _ctx: &mut Context<Self>) -> Self::Result {
        let ready = |r| Box::pin(actix::fut::ready(r)) as Self::Result;
        let current = match self.ids.get(&m.transactional_id) {
            None => return ready(Err(codes::INVALID_PRODUCER_ID_MAPPING)),
            Some(e) if e.busy => return ready(Err(codes::CONCURRENT_TRANSACTIONS)),
            Some(e) => e.doc.clone(),
        };
        let meta = &current.meta;
        if meta.producer_id != m.producer_id {
            return ready(Err(codes::INVALID_PRODUCER_ID_MAPPING));
        }
        if meta.producer_epoch != m.producer_epoch {
            return ready(Err(codes::PRODUCER_FENCED));
        }
        let groups_added = m.offsets.iter().all(|o| meta.groups.contains(&o.group));
        if meta.state != TxnState::Ongoing || !groups_added {
            // AddOffsetsToTxn was not done for this group (KIP-890's verification).
            return ready(Err(codes::INVALID_TXN_STATE));
        }
        let mut next = current.clone();
        let mut merged: BTreeMap<(String, String, i32), PendingOffset> = BTreeMap::new();
        for o in std::mem::take(&mut next.offsets)
            .into_iter()
            .chain(m.offsets)
        {
            merged.insert((o.group.clone(), o.topic.clone(), o.partition), o);
        }
        next.offsets = merged.into_values().collect();
        self.persist_then(next, |_, _, _| Ok(()))
    }
}

/// The coordinator's metadata of some transactional ids (`None`: every id it knows), for
/// DescribeTransactions and ListTransactions.
#[derive(Message)]
#[rtype(result = "Vec<TxnMetadata>")]
pub struct Snapshot {
    pub ids: Option<Vec<String>>,
}

impl Handler<Snapshot> for TxnCoordinator {
    type Result = MessageResult<Snapshot>;

    fn handle(&mut self, m: Snapshot, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(match m.ids {
            None => self.ids.values().map(|e| e.doc.meta.clone()).collect(),
            Some(ids) => ids
                .iter()
                .filter_map(|id| self.ids.get(id))
                .map(|e| e.doc.meta.clone())
                .collect(),
        })
    }
}

/// EndTxn from the producer: answered once the outcome is persisted; the markers follow.
#[derive(Message)]
#[rtype(result = "std::result::Result<(), i16>")]
pub struct End {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
}

impl Handler<End> for TxnCoordinator {
    type Result = ResponseActFuture<Self, std::result::Result<(), i16>>;

    fn handle(&mut self, m: End, _ctx: &mut Context<Self>) -> Self::Result {
        let ready = |r| Box::pin(actix::fut::ready(r)) as Self::Result;
        let current = match self.ids.get(&m.transactional_id) {
            None => return ready(Err(codes::INVALID_PRODUCER_ID_MAPPING)),
            // Markers of this id are being written: the client retries.
            Some(e) if e.busy => return ready(Err(codes::CONCURRENT_TRANSACTIONS)),
            Some(e) => e.doc.clone(),
        };
        match current
            .meta
            .end(m.producer_id, m.producer_epoch, m.commit, now_ms())
        {
            EndOutcome::Error(c) => ready(Err(c)),
            EndOutcome::AlreadyDone => ready(Ok(())),
            EndOutcome::Prepare(next) => self.persist_then(
                TxnDoc {
                    meta: next,
                    offsets: current.offsets,
                },
                |act, ctx, doc| {
                    act.finish_prepared(ctx, doc.clone());
                    Ok(())
                },
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(state: TxnState, parts: &[(&str, i32)]) -> TxnDoc {
        let mut meta = TxnMetadata::new("app", 7, 60_000, 0);
        meta.producer_epoch = 2;
        meta.state = state;
        meta.partitions = parts.iter().map(|(t, p)| (t.to_string(), *p)).collect();
        TxnDoc {
            meta,
            offsets: vec![PendingOffset {
                group: "g".into(),
                topic: "in".into(),
                partition: 0,
                offset: 5,
                leader_epoch: -1,
                metadata: None,
                staged_ms: 0,
            }],
        }
    }

    #[test]
    fn index_checks_epoch_and_added_partitions() {
        let mut ix = TxnIndex::default();
        let d = doc(TxnState::Ongoing, &[("t", 0)]);
        ix.install(None, &d);
        assert!(ix.check("app", 7, 2, "t", 0).is_ok());
        assert_eq!(
            ix.check("app", 7, 2, "t", 1).unwrap_err().code(),
            crate::error::code::INVALID_TXN_STATE
        );
        assert_eq!(
            ix.check("app", 7, 1, "t", 0).unwrap_err().code(),
            crate::error::code::INVALID_PRODUCER_EPOCH
        );
        assert!(ix.check("other", 7, 2, "t", 0).is_err());
        assert_eq!(
            ix.pending_offsets("g"),
            [("in".to_string(), 0)].into_iter().collect()
        );
        // Prepared: no more records; the offsets stay pending until the commit is applied.
        let p = doc(TxnState::PrepareCommit, &[("t", 0)]);
        assert_eq!(ix.open_transactions(), 1);
        ix.install(Some(&d), &p);
        assert!(ix.check("app", 7, 2, "t", 0).is_err());
        assert_eq!(ix.pending_offsets("g").len(), 1);
        assert_eq!(
            ix.open_transactions(),
            1,
            "prepared: markers still to write"
        );
        let done = TxnDoc {
            meta: p.meta.complete(1),
            offsets: Vec::new(),
        };
        ix.install(Some(&p), &done);
        assert!(ix.pending_offsets("g").is_empty());
        assert_eq!(ix.open_transactions(), 0);
    }

    #[test]
    fn documents_round_trip_and_paths_are_flat() {
        let d = doc(TxnState::Ongoing, &[("t", 0), ("u", 3)]);
        let back: TxnDoc = serde_json::from_slice(&serde_json::to_vec(&d).unwrap()).unwrap();
        assert_eq!(back, d);
        assert_eq!(doc_path("a/b"), "meta/transactions/612f62.json");
    }
}
