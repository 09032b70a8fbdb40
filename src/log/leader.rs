//! The PartitionLeader actor: a thin shell that owns one [`PartitionLog`], forwards appended
//! batches to the SegmentWriter in offset order, answers produces when the writer reports them
//! durable, publishes the high watermark and last stable offset (for long-polling fetches),
//! appends transaction markers, and applies retention.

use super::partition::{AppendResult, CompactPolicy, PartitionLog, ReadPlan, Snapshot};
use super::producers::{last_seq, BatchSeq, SeqCheck};
use super::transactions::Aborted;
use super::TopicPartition;
use crate::error::{Error, Result};
use crate::protocol::records::ValidatedBatch;
use crate::storage::cache::SegmentCache;
use crate::storage::clean::clean_segments;
use crate::storage::merge::merge_segments;
use crate::storage::wal::WalIndex;
use crate::storage::writer::{now_ms, SegmentMeta, WriterCmd, WriterEvent};
use crate::storage::Storage;
use actix::prelude::*;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// Newest index entries read at start-up to rebuild idempotent-producer state (a write-ahead
/// part may hold a single batch; only the producer-id columns are read).
const PRODUCER_STATE_SEGMENTS: usize = 32;

/// How long merged inputs stay readable after the index stopped pointing at them.
const MERGE_DELETE_GRACE: Duration = Duration::from_secs(5);

/// Per-partition numbers readable without a message (metadata, metrics).
#[derive(Debug, Default)]
pub struct PartitionStats {
    pub log_start: AtomicI64,
    pub high_watermark: AtomicI64,
    /// The last stable offset (read_committed consumers read up to it).
    pub last_stable_offset: AtomicI64,
    /// Transactions open on the partition.
    pub open_transactions: AtomicI64,
    /// Bytes of durable segments (DescribeLogDirs).
    pub size_bytes: AtomicI64,
}

/// Retention settings of the partition's topic (updated when topic configs change).
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub ms: i64,
    pub bytes: i64,
    /// `cleanup.policy` includes `delete` (retention applies).
    pub delete: bool,
    /// `cleanup.policy` includes `compact`: its cleaning settings.
    pub compact: Option<CompactPolicy>,
}

/// Shared resources every leader uses.
#[derive(Clone)]
pub struct LeaderEnv {
    pub writer: mpsc::Sender<WriterCmd>,
    pub storage: Storage,
    pub cache: Arc<SegmentCache>,
    /// Bytes held by all hot tails together, and their budget.
    pub hot_total: Arc<AtomicUsize>,
    pub hot_budget: usize,
    pub retention_check: Duration,
    pub merge_target_bytes: u64,
    pub merge_min_segments: usize,
    pub merge_interval: Duration,
    /// Which write-ahead objects are still needed (shared with the writer and recovery).
    pub wal: Arc<Mutex<WalIndex>>,
    pub zstd_level: i32,
    /// Idle idempotent producers are forgotten after this long.
    pub producer_expiration: Duration,
    /// Cluster mode: the index is the metadata store's. The leader rewrites its own
    /// write-ahead parts into table segments (after `compaction_delay_ms`), merges, cleans
    /// and applies retention, committing each index change under its epoch before it takes
    /// effect; objects are deleted by the controller's garbage collection, never here.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// Cluster mode: write-ahead parts are rewritten once this old (ms).
    pub compaction_delay_ms: i64,
    /// Set once transactions are in use (a transactional producer exists): leaders started
    /// after that rebuild their partition's transaction state (open transactions, aborted
    /// list) from the stored transaction flags; before, no partition can hold any and the
    /// scan is skipped.
    pub transactions_in_use: Arc<std::sync::atomic::AtomicBool>,
    /// The transaction coordinator's view of which partitions each producer id may write
    /// transactionally (checked at append).
    pub txn_index: Arc<Mutex<crate::txn::coordinator::TxnIndex>>,
}

pub struct PartitionLeader {
    log: PartitionLog,
    env: LeaderEnv,
    hw_tx: watch::Sender<i64>,
    stats: Arc<PartitionStats>,
    retention: Arc<RwLock<Retention>>,
    merging: bool,
    /// A compacted topic is cleaned again at this time (ms) even without new data: tombstones
    /// kept by the last cleaning expire then. After a start, once `delete.retention.ms` passed.
    recheck_clean_at: Option<i64>,
    /// A Stop that arrived during a merge: answered (and the actor stopped) when it ends.
    stop_waiters: Vec<oneshot::Sender<()>>,
    /// The transaction state could not be rebuilt: reads and appends are refused
    /// (KAFKA_STORAGE_ERROR, retriable) rather than served without it.
    failed_rebuild: bool,
}

impl PartitionLeader {
    pub fn new(
        tp: TopicPartition,
        segments: Vec<SegmentMeta>,
        log_start: Option<i64>,
        env: LeaderEnv,
        retention: Arc<RwLock<Retention>>,
        epoch: i32,
    ) -> (PartitionLeader, watch::Receiver<i64>, Arc<PartitionStats>) {
        let mut log = PartitionLog::with_log_start(tp, segments, log_start);
        log.leader_epoch = epoch;
        let recheck_clean_at = retention
            .read()
            .ok()
            .and_then(|r| r.compact)
            .map(|p| now_ms().saturating_add(p.delete_retention_ms));
        let (hw_tx, hw_rx) = watch::channel(log.high_watermark());
        let stats = Arc::new(PartitionStats::default());
        stats.log_start.store(log.log_start(), Ordering::Relaxed);
        stats
            .high_watermark
            .store(log.high_watermark(), Ordering::Relaxed);
        stats
            .last_stable_offset
            .store(log.last_stable_offset(), Ordering::Relaxed);
        stats
            .size_bytes
            .store(log.size_bytes() as i64, Ordering::Relaxed);
        (
            PartitionLeader {
                log,
                env,
                hw_tx,
                stats: stats.clone(),
                retention,
                merging: false,
                recheck_clean_at,
                stop_waiters: Vec::new(),
                failed_rebuild: false,
            },
            hw_rx,
            stats,
        )
    }

    fn publish(&self) {
        self.stats
            .high_watermark
            .store(self.log.high_watermark(), Ordering::Relaxed);
        self.stats
            .log_start
            .store(self.log.log_start(), Ordering::Relaxed);
        self.stats
            .size_bytes
            .store(self.log.size_bytes() as i64, Ordering::Relaxed);
        self.stats
            .last_stable_offset
            .store(self.log.last_stable_offset(), Ordering::Relaxed);
        self.stats
            .open_transactions
            .store(self.log.txns.open_count() as i64, Ordering::Relaxed);
        // Wakes long-polling fetches whenever either bound moves (a marker moves the LSO).
        self.hw_tx.send_replace(self.log.high_watermark());
    }

    fn enforce_hot_budget(&mut self) {
        let total = self.env.hot_total.load(Ordering::Relaxed);
        if total > self.env.hot_budget {
            let freed = self.log.evict_hot(total - self.env.hot_budget);
            self.env.hot_total.fetch_sub(freed, Ordering::Relaxed);
        }
    }

    /// Rebuild the transaction state (open transactions → LSO, aborted list) from every
    /// segment's transaction columns (row groups whose statistics say they hold no
    /// transactional row are skipped) before serving (the mailbox waits). Only once
    /// transactions are in use: before that no partition holds any.
    fn rebuild_transactions(&mut self, ctx: &mut Context<Self>) {
        if !self.env.transactions_in_use.load(Ordering::Relaxed) {
            return;
        }
        let segments: Vec<SegmentMeta> = self.log.segments().cloned().collect();
        if segments.is_empty() {
            return;
        }
        let storage = self.env.storage.clone();
        let cache = self.env.cache.clone();
        let fut = async move {
            let mut events = Vec::new();
            for s in &segments {
                events.extend(cache.txn_events(&storage, s).await?);
            }
            Ok::<_, Error>(events)
        };
        ctx.wait(fut.into_actor(self).map(|res, act, ctx| match res {
            Ok(events) => {
                act.failed_rebuild = false;
                act.log.apply_txn_events(&events);
                act.publish();
            }
            Err(e) => {
                // Serving read_committed without the aborted list could deliver aborted
                // records: refuse reads and appends (retriable) and try again shortly.
                tracing::error!("{}: could not rebuild transaction state: {e}", act.log.tp);
                act.failed_rebuild = true;
                ctx.run_later(Duration::from_secs(1), |act, ctx| {
                    act.rebuild_transactions(ctx)
                });
            }
        }));
    }

    /// Rebuild idempotent-producer state from the newest segments before serving appends
    /// (the mailbox waits until this is done).
    fn rebuild_producer_state(&mut self, ctx: &mut Context<Self>) {
        let newest: Vec<SegmentMeta> = self
            .log
            .segments()
            .rev()
            .take(PRODUCER_STATE_SEGMENTS)
            .cloned()
            .collect();
        if newest.is_empty() {
            return;
        }
        let storage = self.env.storage.clone();
        let cache = self.env.cache.clone();
        let fut = async move {
            let mut batches = Vec::new();
            for s in newest.iter().rev() {
                batches.extend(cache.producer_batches(&storage, s).await?);
            }
            Ok::<_, Error>(batches)
        };
        ctx.wait(fut.into_actor(self).map(|res, act, _| match res {
            Ok(batches) => {
                for b in batches {
                    act.log.producers.record(
                        b.producer_id,
                        b.producer_epoch,
                        BatchSeq {
                            first_seq: b.first_seq,
                            last_seq: b.last_seq,
                            base: b.base,
                            last: b.last,
                        },
                    );
                }
            }
            Err(e) => tracing::warn!(
                "{}: could not rebuild producer state: {e}; duplicates of retried batches may not be detected",
                act.log.tp
            ),
        }));
    }

    /// One background rewrite of the table segments at a time: a compacted topic's cleaning,
    /// else merging small segments (write-ahead parts are rewritten by the broker's compactor,
    /// which hands the result over with [`Compacted`]). The output is written first; the index
    /// swap and the deletion of the inputs (after a grace period for reads planned with them)
    /// follow, so a crash anywhere leaves a state recovery resolves.
    fn run_merge(&mut self, ctx: &mut Context<Self>) {
        // Without the transaction state, cleaning would take aborted or open records for a
        // key's newest value.
        if self.merging || self.failed_rebuild {
            return;
        }
        let now = now_ms();
        let target = self.env.merge_target_bytes;
        let compact = self.retention.read().ok().and_then(|r| r.compact);
        let cluster = self.env.cluster.clone();
        let (inputs, clean) = if let Some((policy, run)) =
            compact.and_then(|p| Some((p, self.log.plan_clean(now, &p, self.recheck_clean_at)?)))
        {
            (run, Some(policy))
        } else if let Some(run) = cluster.as_ref().and_then(|_| {
            // Cluster mode: no broker-wide compactor; the leader rewrites its parts.
            self.log
                .plan_wal_compaction(now, self.env.compaction_delay_ms, target)
        }) {
            (run, None)
        } else if let Some(run) = self.log.plan_merge(target, self.env.merge_min_segments) {
            (run, None)
        } else {
            return;
        };
        let epoch = self.log.leader_epoch;
        self.merging = true;
        let storage = self.env.storage.clone();
        let cache = self.env.cache.clone();
        let tp = self.log.tp.clone();
        let level = self.env.zstd_level;
        let aborted = match clean {
            Some(_) => self.log.aborted_in(0, i64::MAX),
            None => Vec::new(),
        };
        let fut = async move {
            let res = match clean {
                None => merge_segments(&storage, &cache, &tp, &inputs, level)
                    .await
                    .map(|m| (inputs, m, None)),
                Some(p) => {
                    let ms = p.delete_retention_ms;
                    clean_segments(&storage, &cache, &tp, inputs, level, ms, aborted)
                        .await
                        .map(|c| {
                            let recheck = c.kept_tombstone.map(|t| t + p.delete_retention_ms);
                            if c.dropped > 0 {
                                tracing::debug!("{tp}: compaction dropped {} records", c.dropped);
                            }
                            (c.inputs, c.output, Some(recheck))
                        })
                }
            };
            // Cluster mode: the swap is committed under this leader's epoch before it
            // takes effect here.
            match (res, cluster) {
                (Ok((inputs, merged, recheck)), Some(c)) => c
                    .store
                    .swap_entries(&tp, c.node_id, epoch, &inputs, Some(&merged), None)
                    .await
                    .map(|()| (inputs, merged, recheck)),
                (res, _) => res,
            }
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, ctx| {
            act.merging = false;
            if act.answer_stop_waiters(ctx) {
                return;
            }
            let (inputs, merged, recheck) = match res {
                Ok(m) => m,
                Err(e) if act.env.cluster.is_some() => {
                    // Fenced, or the swap's outcome is unknown: the committed index decides.
                    tracing::info!("{}: rewrite not committed ({e}); restarting", act.log.tp);
                    ctx.stop();
                    return;
                }
                Err(e) => {
                    tracing::warn!("{}: compaction failed: {e}", act.log.tp);
                    return;
                }
            };
            let storage = act.env.storage.clone();
            if act.log.apply_merge(&inputs, merged.clone()) {
                crate::storage::crash_point("compact.after_swap");
                if let Some(r) = recheck {
                    // Cleaned: the hot tail must not serve the records cleaning dropped.
                    act.recheck_clean_at = r;
                    let freed = act.log.drop_hot_through(merged.last);
                    act.env.hot_total.fetch_sub(freed, Ordering::Relaxed);
                }
                act.publish();
                tracing::debug!(
                    "{}: rewrote {} entries into {}",
                    act.log.tp,
                    inputs.len(),
                    merged.path
                );
                // Let fetches that planned with the old entries finish before deleting them.
                ctx.run_later(MERGE_DELETE_GRACE, move |act, _| {
                    act.dispose(inputs, "merged input");
                });
            } else if act.env.cluster.is_some() {
                // The committed index already has the swap: restart from it.
                tracing::warn!(
                    "{}: local index diverged from the committed one",
                    act.log.tp
                );
                ctx.stop();
            } else {
                // Retention removed an input meanwhile: the merged copy is not needed.
                actix::spawn(async move {
                    let _ = storage.delete(&merged.path).await;
                });
            }
        }));
    }

    /// A Stop arrived while a rewrite or an index commit was running: answer it now (the
    /// partition's objects may be deleted after that) and stop. True when stopping.
    fn answer_stop_waiters(&mut self, ctx: &mut Context<Self>) -> bool {
        if self.stop_waiters.is_empty() {
            return false;
        }
        for w in self.stop_waiters.drain(..) {
            let _ = w.send(());
        }
        ctx.stop();
        true
    }

    fn run_retention(&mut self, ctx: &mut Context<Self>) {
        let ttl = self.env.producer_expiration.as_millis() as i64;
        let txns = &self.log.txns;
        let forgotten = self
            .log
            .producers
            .expire(now_ms(), ttl, |pid| txns.is_open(pid));
        if forgotten > 0 {
            tracing::debug!("{}: {forgotten} idle producer(s) expired", self.log.tp);
        }
        if self.merging {
            return;
        }
        let r = self.retention.read().map(|r| *r).unwrap_or(Retention {
            ms: -1,
            bytes: -1,
            delete: true,
            compact: None,
        });
        if !r.delete || (r.ms < 0 && r.bytes < 0) {
            return;
        }
        let before = self.log.hot_bytes();
        let removed = self.log.apply_retention(now_ms(), r.ms, r.bytes);
        let freed = before - self.log.hot_bytes();
        self.env.hot_total.fetch_sub(freed, Ordering::Relaxed);
        if removed.is_empty() {
            return;
        }
        tracing::info!(
            "{}: retention removed {} segment(s); log start offset now {}",
            self.log.tp,
            removed.len(),
            self.log.log_start()
        );
        self.publish();
        if let Some(c) = self.env.cluster.clone() {
            // Committed after the fact: removed entries are only hidden here until then, and
            // if the commit fails the leader restarts from the committed index (which still
            // has them; the next retention pass removes them again).
            let gone = removed.clone();
            let (tp, epoch, start) = (
                self.log.tp.clone(),
                self.log.leader_epoch,
                self.log.log_start(),
            );
            let fut = async move {
                c.store
                    .swap_entries(&tp, c.node_id, epoch, &gone, None, Some(start))
                    .await
            };
            self.merging = true;
            ctx.spawn(fut.into_actor(self).map(|res, act, ctx| {
                act.merging = false;
                if act.answer_stop_waiters(ctx) {
                    return;
                }
                if let Err(e) = res {
                    tracing::warn!("{}: retention not committed ({e}); restarting", act.log.tp);
                    ctx.stop();
                }
            }));
        }
        self.dispose(removed, "retention");
    }

    /// Index entries the log no longer holds: delete segments, release write-ahead parts
    /// (deleting an object once no partition needs it).
    fn dispose(&self, removed: Vec<SegmentMeta>, why: &'static str) {
        if removed.is_empty() {
            return;
        }
        if self.env.cluster.is_some() {
            // Cluster mode: the controller deletes objects no committed entry refers to.
            for s in &removed {
                self.env.cache.remove(&s.path);
            }
            return;
        }
        let mut doomed = Vec::new();
        for s in removed {
            if s.wal.is_some() {
                let dead = self
                    .env
                    .wal
                    .lock()
                    .ok()
                    .and_then(|mut w| w.release(&s.path, &self.log.tp, s.base));
                doomed.extend(dead);
            } else {
                doomed.push(s.path);
            }
        }
        let storage = self.env.storage.clone();
        let cache = self.env.cache.clone();
        actix::spawn(async move {
            for path in doomed {
                cache.remove(&path);
                if let Err(e) = storage.delete(&path).await {
                    tracing::warn!("{why}: could not delete {path}: {e}");
                }
                crate::storage::crash_point("compact.after_delete");
            }
        });
    }
}

impl Actor for PartitionLeader {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(1024);
        self.rebuild_producer_state(ctx);
        self.rebuild_transactions(ctx);

        ctx.run_interval(self.env.retention_check, |act, ctx| act.run_retention(ctx));
        ctx.run_interval(self.env.merge_interval, |act, ctx| act.run_merge(ctx));
    }

    fn stopping(&mut self, _ctx: &mut Context<Self>) -> Running {
        self.log.fail_all(|| Error::NotLeader);
        let freed = self.log.hot_bytes();
        self.env.hot_total.fetch_sub(freed, Ordering::Relaxed);
        Running::Stop
    }
}

/// Append one validated batch. Answered as soon as offsets are assigned (so a producer's
/// pipelined requests queue their appends in order); the ticket resolves once the batch is
/// durable.
#[derive(Message)]
#[rtype(result = "Result<AppendTicket>")]
pub struct Append {
    pub batch: ValidatedBatch,
    /// The Produce request's transactional id (transactional records need one).
    pub transactional_id: Option<Arc<str>>,
}

/// What an append is owed.
#[derive(Debug)]
pub enum AppendTicket {
    /// Already settled (a duplicate of a durable batch).
    Done(AppendResult),
    /// Resolves when the batch is durable (or failed).
    Pending(oneshot::Receiver<Result<AppendResult>>),
}

impl AppendTicket {
    /// Wait until the append is durable.
    pub async fn durable(self) -> Result<AppendResult> {
        match self {
            AppendTicket::Done(r) => Ok(r),
            AppendTicket::Pending(rx) => rx.await.map_err(|_| Error::NotLeader)?,
        }
    }
}

impl Handler<Append> for PartitionLeader {
    type Result = Result<AppendTicket>;

    fn handle(&mut self, msg: Append, ctx: &mut Context<Self>) -> Self::Result {
        if self.failed_rebuild {
            return Err(Error::Storage("transaction state not rebuilt yet".into()));
        }
        let h = msg.batch.header;
        let idempotent = h.producer_id >= 0;
        if h.is_transactional() {
            // Checked again here, in append order: once the coordinator decided the
            // transaction (its state is installed before any marker is sent), a batch that
            // validated earlier but reaches the log only now is refused instead of landing
            // after — or beside — the transaction's marker.
            let id = msg
                .transactional_id
                .as_deref()
                .ok_or(Error::TransactionalIdAuthorization)?;
            self.env
                .txn_index
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .check(
                    id,
                    h.producer_id,
                    h.producer_epoch,
                    &self.log.tp.topic,
                    self.log.tp.partition,
                )?;
        }
        if idempotent && !h.is_transactional() && self.log.txns.is_open(h.producer_id) {
            return Err(Error::InvalidTxnState(
                "non-transactional records of a producer with an open transaction".into(),
            ));
        }
        let (first_seq, last_seq) = (h.base_sequence, last_seq(h.base_sequence, h.record_count));
        if idempotent {
            if h.base_sequence < 0 {
                return Err(Error::InvalidRecord(
                    "an idempotent batch needs a base sequence".into(),
                ));
            }
            match self
                .log
                .producers
                .check(h.producer_id, h.producer_epoch, first_seq, last_seq)
            {
                SeqCheck::Append => {}
                SeqCheck::Reject(e) => return Err(e),
                SeqCheck::Duplicate { base, last } => {
                    // A retry: answer with the original offsets once they are durable.
                    let log_start = self.log.log_start();
                    let done = AppendResult {
                        base_offset: base,
                        log_start_offset: log_start,
                    };
                    if last < self.log.high_watermark() {
                        return Ok(AppendTicket::Done(done));
                    }
                    let (tx, rx) = oneshot::channel();
                    self.log.add_waiter(base, last, tx);
                    return Ok(AppendTicket::Pending(rx));
                }
            }
        }
        let (base, last, rx) = self.append(&msg.batch, ctx);
        if idempotent {
            self.log.producers.record(
                h.producer_id,
                h.producer_epoch,
                BatchSeq {
                    first_seq,
                    last_seq,
                    base,
                    last,
                },
            );
        }
        Ok(AppendTicket::Pending(rx))
    }
}

impl PartitionLeader {
    /// Assign offsets to a batch that passed the producer checks, queue it with the writer (in
    /// offset order) and return its offsets and durability receiver.
    fn append(
        &mut self,
        batch: &ValidatedBatch,
        ctx: &mut Context<Self>,
    ) -> (i64, i64, oneshot::Receiver<Result<AppendResult>>) {
        let (base, last, bytes) = self.log.assign(batch);
        self.env.hot_total.fetch_add(bytes.len(), Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.log.add_waiter(base, last, tx);
        let cmd = WriterCmd::Append {
            tp: self.log.tp.clone(),
            leader: ctx.address().recipient(),
            base,
            last,
            bytes,
            decoded: batch.decoded_len,
            epoch: self.log.leader_epoch,
        };
        match self.env.writer.try_send(cmd) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(cmd)) => {
                // Keep offset order: pause this leader's mailbox until the writer has room.
                let w = self.env.writer.clone();
                ctx.wait(
                    async move {
                        let _ = w.send(cmd).await;
                    }
                    .into_actor(self),
                );
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.log.on_failed(base, "storage writer stopped");
            }
        }
        (base, last, rx)
    }
}

/// Append a transaction marker (COMMIT or ABORT) for `producer_id`, as Kafka's
/// WriteTxnMarkers does on a partition leader: the transaction coordinator sends it once the
/// transaction's outcome is persisted. The ticket resolves when the marker is durable — only
/// then does it move the last stable offset. A marker from an older producer epoch than the
/// partition has seen is refused (INVALID_PRODUCER_EPOCH); a newer epoch fences the older
/// one's later batches.
#[derive(Message)]
#[rtype(result = "Result<AppendTicket>")]
pub struct WriteMarker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub coordinator_epoch: i32,
}

impl Handler<WriteMarker> for PartitionLeader {
    type Result = Result<AppendTicket>;

    fn handle(&mut self, m: WriteMarker, ctx: &mut Context<Self>) -> Self::Result {
        if self.failed_rebuild {
            return Err(Error::Storage("transaction state not rebuilt yet".into()));
        }
        if let Some(current) = self.log.producers.epoch_of(m.producer_id) {
            if m.producer_epoch < current {
                return Err(Error::InvalidProducerEpoch(format!(
                    "marker epoch {} is older than the producer's epoch {current}",
                    m.producer_epoch
                )));
            }
        }
        let batch = crate::protocol::records::marker_batch(
            m.producer_id,
            m.producer_epoch,
            m.commit,
            m.coordinator_epoch,
            now_ms(),
        )?;
        self.log
            .producers
            .fence_older_than(m.producer_id, m.producer_epoch);
        let (_, _, rx) = self.append(&batch, ctx);
        Ok(AppendTicket::Pending(rx))
    }
}

/// One producer a partition knows, as DescribeProducers answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveProducer {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// Last sequence of its newest remembered batch, -1 if none.
    pub last_sequence: i32,
    /// When it last wrote here (ms; start-up counts as a write for rebuilt state).
    pub last_timestamp: i64,
    /// First offset of its open transaction here, -1 if none.
    pub current_txn_start_offset: i64,
}

/// The producers this partition knows (idempotent and transactional): DescribeProducers.
#[derive(Message)]
#[rtype(result = "Vec<ActiveProducer>")]
pub struct DescribeProducers;

impl Handler<DescribeProducers> for PartitionLeader {
    type Result = MessageResult<DescribeProducers>;

    fn handle(&mut self, _: DescribeProducers, _ctx: &mut Context<Self>) -> Self::Result {
        let mut out: Vec<ActiveProducer> = self
            .log
            .producers
            .describe()
            .into_iter()
            .map(|(pid, epoch, last_sequence, last_ms)| ActiveProducer {
                producer_id: pid,
                producer_epoch: epoch,
                last_sequence,
                last_timestamp: last_ms,
                current_txn_start_offset: self.log.txns.open_since(pid).unwrap_or(-1),
            })
            .collect();
        // A transaction open here whose producer has no sequence state (rebuilt from older
        // segments than the producer state is): still listed, it holds the LSO.
        for (pid, first) in self.log.txns.open_transactions() {
            if out.iter().all(|a| a.producer_id != pid) {
                out.push(ActiveProducer {
                    producer_id: pid,
                    producer_epoch: -1,
                    last_sequence: -1,
                    last_timestamp: -1,
                    current_txn_start_offset: first,
                });
            }
        }
        MessageResult(out)
    }
}

impl Handler<WriterEvent> for PartitionLeader {
    type Result = ();

    fn handle(&mut self, ev: WriterEvent, ctx: &mut Context<Self>) {
        match ev {
            WriterEvent::Durable(seg) => {
                if self.log.on_durable(seg) {
                    // Publish the high watermark before acknowledging: read-your-writes.
                    self.publish();
                    self.log.release_acknowledged();
                }
                self.enforce_hot_budget();
            }
            WriterEvent::Failed {
                from,
                fenced: true,
                error,
            } => {
                // Leadership moved (or the commit's outcome is unknown): nothing from `from`
                // on is acknowledged here. Step down; the broker restarts the leader from the
                // committed index if this broker still leads the partition.
                tracing::info!("{}: stepping down at offset {from}: {error}", self.log.tp);
                ctx.stop();
            }
            WriterEvent::Failed { from, error, .. } => {
                let before = self.log.hot_bytes();
                self.log.on_failed(from, &error);
                self.env
                    .hot_total
                    .fetch_sub(before - self.log.hot_bytes(), Ordering::Relaxed);
                let cmd = WriterCmd::Reset {
                    tp: self.log.tp.clone(),
                };
                if let Err(mpsc::error::TrySendError::Full(cmd)) = self.env.writer.try_send(cmd) {
                    let w = self.env.writer.clone();
                    ctx.wait(
                        async move {
                            let _ = w.send(cmd).await;
                        }
                        .into_actor(self),
                    );
                }
            }
        }
    }
}

/// Plan a read from `offset`: up to the high watermark, or for `committed`
/// (read_committed) up to the last stable offset, with the aborted transactions the client
/// must filter out.
#[derive(Message)]
#[rtype(result = "Result<ReadOut>")]
pub struct Read {
    pub offset: i64,
    pub max_bytes: usize,
    pub committed: bool,
}

/// A planned read.
#[derive(Debug)]
pub struct ReadOut {
    pub plan: ReadPlan,
    /// Batches starting at or after this offset are not served (cold segments may hold them).
    pub upto: i64,
    /// read_committed: aborted transactions overlapping `[offset, upto)`.
    pub aborted: Vec<Aborted>,
}

impl Handler<Read> for PartitionLeader {
    type Result = Result<ReadOut>;

    fn handle(&mut self, msg: Read, _ctx: &mut Context<Self>) -> Self::Result {
        if self.failed_rebuild {
            return Err(Error::Storage("transaction state not rebuilt yet".into()));
        }
        let upto = match msg.committed {
            true => self.log.last_stable_offset(),
            false => self.log.high_watermark(),
        };
        let plan = self.log.read(msg.offset, msg.max_bytes, upto)?;
        let aborted = match msg.committed {
            true => self.log.aborted_in(msg.offset, upto),
            false => Vec::new(),
        };
        Ok(ReadOut {
            plan,
            upto,
            aborted,
        })
    }
}

/// A consistent view for offset lookups (ListOffsets).
#[derive(Message)]
#[rtype(result = "Snapshot")]
pub struct GetSnapshot;

impl Handler<GetSnapshot> for PartitionLeader {
    type Result = MessageResult<GetSnapshot>;

    fn handle(&mut self, _: GetSnapshot, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.log.snapshot())
    }
}

/// DeleteRecords: move the log start offset; returns the new low watermark.
#[derive(Message)]
#[rtype(result = "Result<i64>")]
pub struct DeleteRecords(pub i64);

impl Handler<DeleteRecords> for PartitionLeader {
    type Result = ResponseActFuture<Self, Result<i64>>;

    fn handle(&mut self, m: DeleteRecords, _ctx: &mut Context<Self>) -> Self::Result {
        let before = self.log.hot_bytes();
        let removed = match self.log.delete_records(m.0) {
            Ok(r) => r,
            Err(e) => return Box::pin(actix::fut::ready(Err(e))),
        };
        self.env
            .hot_total
            .fetch_sub(before - self.log.hot_bytes(), Ordering::Relaxed);
        self.publish();
        let start = self.log.log_start();
        let Some(c) = self.env.cluster.clone() else {
            self.dispose(removed, "DeleteRecords");
            return Box::pin(actix::fut::ready(Ok(start)));
        };
        // Cluster mode: answered once the new log start is committed under this epoch; if
        // that fails the leader restarts from the committed index (the client retries).
        // Index changes of one leader are committed one at a time: merges wait meanwhile.
        let gone = removed.clone();
        let (tp, epoch) = (self.log.tp.clone(), self.log.leader_epoch);
        self.dispose(removed, "DeleteRecords");
        self.merging = true;
        Box::pin(
            async move {
                c.store
                    .swap_entries(&tp, c.node_id, epoch, &gone, None, Some(start))
                    .await
            }
            .into_actor(self)
            .map(move |res, act, ctx| {
                act.merging = false;
                let stopping = act.answer_stop_waiters(ctx);
                match res {
                    Ok(()) if !stopping => Ok(start),
                    Ok(()) => Err(Error::NotLeader),
                    Err(e) => {
                        tracing::warn!("{}: DeleteRecords not committed ({e})", act.log.tp);
                        ctx.stop();
                        Err(Error::NotLeader)
                    }
                }
            }),
        )
    }
}

/// The broker's compactor rewrote some of this partition's write-ahead parts into `output`
/// (already written): swap them in the index if they are all still there. Answers whether it
/// did; if not (retention or DeleteRecords removed one meanwhile), the caller deletes `output`.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Compacted {
    pub inputs: Vec<SegmentMeta>,
    pub output: SegmentMeta,
}

impl Handler<Compacted> for PartitionLeader {
    type Result = bool;

    fn handle(&mut self, m: Compacted, ctx: &mut Context<Self>) -> bool {
        if !self.log.apply_compaction(&m.inputs, m.output) {
            return false;
        }
        crate::storage::crash_point("compact.after_swap");
        self.publish();
        let inputs = m.inputs;
        // Let fetches that planned with the parts finish before releasing them.
        ctx.run_later(MERGE_DELETE_GRACE, move |act, _| {
            act.dispose(inputs, "compacted write-ahead part");
        });
        true
    }
}

/// Stop the leader (topic deleted or broker shutting down). Answered once no merge of this
/// partition is writing any more, so the caller may delete the partition's objects.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

impl Handler<Stop> for PartitionLeader {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) -> Self::Result {
        if self.merging {
            let (tx, rx) = oneshot::channel();
            self.stop_waiters.push(tx);
            return Box::pin(async move {
                let _ = rx.await;
            });
        }
        ctx.stop();
        Box::pin(async {})
    }
}
