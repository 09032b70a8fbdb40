//! The SegmentWriter actor: the single writer of the log.
//!
//! PartitionLeaders send it their appended batches over one ordered, bounded channel. It buffers
//! per partition (keyed by topic *id*: a deleted topic's buffers never meet its successor's) and
//! writes **one write-ahead object per flush holding every partition it has buffered**
//! (`wal/{seq}.parquet`, each partition in its own row groups, see
//! [`super::segment::WalEncoder`]), so object-store PUTs follow the flush rate, not the
//! partition count. It flushes when `max_batch_size` decoded bytes or `max_batch_messages`
//! records are buffered, or otherwise as soon as `flush_interval` has passed since the previous
//! flush started: a quiet broker flushes an append at once (low latency), a busy one at most
//! once per interval. One object holds at most `max_object_bytes` (decoded); a larger backlog
//! is written as several. One flush is in flight at a time on a local folder, up to four on S3
//! (the next object is encoded and sent while the previous PUT is in flight); what arrives
//! meanwhile accumulates for the next one (group commit). Flushes complete in any order but are *delivered* in flush order, so every leader
//! sees its durable ranges in offset order.
//!
//! A flush takes its share of the decode budget, encodes Parquet on the blocking pool, writes
//! the object with `PutMode::Create` (see `write_segment` for what a failure or an existing
//! object means), records it in the [`WalIndex`], and only then reports
//! [`WriterEvent::Durable`] to each leader. A failed write reports [`WriterEvent::Failed`] to
//! every partition in it, drops their buffers, and ignores their appends until each leader
//! acknowledges with [`WriterCmd::Reset`] (so offsets stay dense). Those partitions' parts in
//! the later flush in flight are *poisoned*: never acknowledged, released from the index at
//! once (their offsets are reused; recovery never accepts such a part either, since it follows
//! a gap).

use super::segment::{WalEncoder, COMPRESS_FROM_BYTES};
use super::wal::WalIndex;
use super::Storage;
use crate::cluster::store::PartCommit;
use crate::error::Error;
use crate::log::TopicPartition;
use crate::metrics::Metrics;
use actix::prelude::*;
use bytes::Bytes;
use futures::FutureExt;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Capacity of the leaders → writer channel (commands, not bytes).
pub const WRITER_CHANNEL_CAPACITY: usize = 4096;

/// A durable segment in a partition's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentMeta {
    pub base: i64,
    pub last: i64,
    pub path: String,
    pub size: u64,
    /// Newest record timestamp, when known (segments written by this process).
    pub max_timestamp: Option<i64>,
    /// When the object was written (from LIST at recovery), ms since the epoch.
    pub written_ms: i64,
    /// Set when these offsets are one partition's row groups inside a write-ahead object
    /// (`path`); `None` for a segment of the table layout (the whole object).
    pub wal: Option<WalSlice>,
}

/// A partition's run of row groups inside a write-ahead object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalSlice {
    pub first_group: u32,
    pub groups: u32,
    /// The whole object's size (its footer is read from the end with a bounded range GET).
    pub object_size: u64,
}

impl SegmentMeta {
    /// Newest timestamp, or the write time when the content has not been read.
    pub fn max_timestamp_hint(&self) -> i64 {
        self.max_timestamp.unwrap_or(self.written_ms)
    }
}

/// What the writer tells a partition leader.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub enum WriterEvent {
    Durable(SegmentMeta),
    /// Nothing from `from` on is durable. `fenced`: the metadata store did not commit it
    /// (cluster mode: leadership moved, or the commit's outcome is unknown) — the leader must
    /// step down and be restarted from the committed index.
    Failed {
        from: i64,
        error: String,
        fenced: bool,
    },
}

/// Commands from leaders (and shutdown) to the writer.
pub enum WriterCmd {
    Append {
        tp: TopicPartition,
        leader: Recipient<WriterEvent>,
        base: i64,
        last: i64,
        bytes: Bytes,
        /// Decompressed size of the batch's records (flush thresholds count these).
        decoded: usize,
        /// The leader epoch the leader appends under (cluster mode: the commit checks it).
        epoch: i32,
    },
    /// The leader processed a failure; accept appends again.
    Reset { tp: TopicPartition },
    /// The partition was deleted: drop its buffer; `done` is answered once no write of it is
    /// in flight any more (so the deletion can list and delete its objects after that).
    Forget {
        tp: TopicPartition,
        done: Option<oneshot::Sender<()>>,
    },
    /// Flush everything and answer once nothing is buffered or in flight.
    FlushAll { done: oneshot::Sender<()> },
}

/// Flush thresholds and encoding settings.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Flush once this many decoded bytes are buffered (all partitions together).
    pub max_batch_bytes: usize,
    /// Flush once this many records are buffered (all partitions together).
    pub max_batch_messages: usize,
    /// Flush once this long passed since the previous flush started.
    pub flush_interval: Duration,
    pub zstd_level: i32,
    /// Largest object one flush writes (by decoded size); a larger backlog takes several.
    pub max_object_bytes: usize,
    /// Flushes in flight at once, their results delivered in flush order: 1 on a local folder
    /// (fsyncs are the cost: one at a time, group commit), more on S3 (a PUT's latency is: the
    /// next object is encoded and sent while the previous one is in flight).
    pub max_in_flight: usize,
    /// The broker-wide decode budget: encoding a flush decompresses its batches and builds
    /// columns (about three times their decoded size), so flushes take their share of it
    /// before they start and cannot multiply memory.
    pub decode_budget: crate::protocol::records::DecodeBudget,
    /// Cluster mode: a flush is acknowledged only after its index rows are committed in the
    /// metadata store under each partition's leader epoch.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

/// One buffered batch.
struct Buffered {
    base: i64,
    last: i64,
    bytes: Bytes,
    decoded: usize,
}

#[derive(Default)]
struct PartitionBuffer {
    leader: Option<Recipient<WriterEvent>>,
    epoch: i32,
    batches: std::collections::VecDeque<Buffered>,
    last: i64,
    failed: bool,
    /// Deleted while a write of it was in flight: answered and removed when it ends.
    forgotten: Option<Vec<oneshot::Sender<()>>>,
}

/// A flush being encoded or written.
struct InFlight {
    id: u64,
    parts: Vec<FlushPart>,
    /// Set when its write ended.
    result: Option<Result<Written, Error>>,
    /// Partitions an earlier flush failed: their parts here are not acknowledged.
    poisoned: HashSet<TopicPartition>,
    started: Instant,
}

/// A written write-ahead object.
struct Written {
    path: String,
    size: u64,
    written: i64,
    parts: Vec<super::segment::WalPart>,
    /// Cluster mode: the partitions whose parts the metadata store committed.
    committed: Option<HashSet<TopicPartition>>,
}

/// One partition's share of a flush.
struct FlushPart {
    tp: TopicPartition,
    leader: Recipient<WriterEvent>,
    epoch: i32,
    first: i64,
    last: i64,
    batches: Vec<Bytes>,
}

pub struct SegmentWriter {
    storage: Storage,
    cfg: WriterConfig,
    parts: HashMap<TopicPartition, PartitionBuffer>,
    /// Decoded bytes and records buffered in all partitions.
    bytes: usize,
    messages: usize,
    /// When the previous flush started.
    last_flush: Option<Instant>,
    /// Flushes being encoded or written, oldest first (at most `max_in_flight`).
    in_flight: VecDeque<InFlight>,
    next_flush_id: u64,
    timer_armed: bool,
    wal: Arc<Mutex<WalIndex>>,
    rx: Option<mpsc::Receiver<WriterCmd>>,
    drain_waiters: Vec<oneshot::Sender<()>>,
    metrics: Arc<Metrics>,
    /// Cluster mode: resolves when the previous flush's commit ended (commits run in flush
    /// order, so each partition's committed end advances in offset order).
    commit_chain: Option<futures::future::Shared<futures::future::BoxFuture<'static, ()>>>,
}

impl SegmentWriter {
    /// Start the writer; returns the channel leaders send to.
    pub fn start_writer(
        storage: Storage,
        cfg: WriterConfig,
        wal: Arc<Mutex<WalIndex>>,
        metrics: Arc<Metrics>,
    ) -> (Addr<SegmentWriter>, mpsc::Sender<WriterCmd>) {
        let (tx, rx) = mpsc::channel(WRITER_CHANNEL_CAPACITY);
        let addr = SegmentWriter {
            storage,
            cfg,
            parts: HashMap::new(),
            bytes: 0,
            messages: 0,
            last_flush: None,
            in_flight: VecDeque::new(),
            next_flush_id: 0,
            timer_armed: false,
            wal,
            rx: Some(rx),
            drain_waiters: Vec::new(),
            metrics,
            commit_chain: None,
        }
        .start();
        (addr, tx)
    }

    fn drop_buffer(&mut self, tp: &TopicPartition) {
        if let Some(p) = self.parts.get_mut(tp) {
            for b in p.batches.drain(..) {
                self.bytes = self.bytes.saturating_sub(b.decoded);
                self.messages = self.messages.saturating_sub((b.last - b.base + 1) as usize);
            }
        }
    }

    fn in_flight_has(&self, tp: &TopicPartition) -> bool {
        self.in_flight
            .iter()
            .any(|f| f.parts.iter().any(|p| &p.tp == tp))
    }

    fn on_cmd(&mut self, cmd: WriterCmd, ctx: &mut Context<Self>) {
        match cmd {
            WriterCmd::Append {
                tp,
                leader,
                base,
                last,
                bytes,
                decoded,
                epoch,
            } => {
                let p = self.parts.entry(tp.clone()).or_default();
                if p.failed || p.forgotten.is_some() {
                    // Stale append issued before the leader saw the failure (it is failed
                    // there), or for a partition being deleted.
                    return;
                }
                if !p.batches.is_empty() && base != p.last + 1 {
                    tracing::error!("{tp}: append {base} does not follow {}", p.last);
                }
                p.leader = Some(leader);
                p.epoch = epoch;
                p.last = last;
                let decoded = decoded.max(bytes.len());
                p.batches.push_back(Buffered {
                    base,
                    last,
                    bytes,
                    decoded,
                });
                self.bytes += decoded;
                self.messages += (last - base + 1) as usize;
                self.maybe_flush(ctx);
            }
            WriterCmd::Reset { tp } => {
                if let Some(p) = self.parts.get_mut(&tp) {
                    p.failed = false;
                }
            }
            WriterCmd::Forget { tp, done } => {
                self.drop_buffer(&tp);
                if self.in_flight_has(&tp) {
                    if let Some(p) = self.parts.get_mut(&tp) {
                        p.forgotten.get_or_insert_with(Vec::new).extend(done);
                    }
                } else {
                    self.parts.remove(&tp);
                    if let Some(d) = done {
                        let _ = d.send(());
                    }
                }
                self.check_drained();
            }
            WriterCmd::FlushAll { done } => {
                self.drain_waiters.push(done);
                self.flush(ctx);
                self.check_drained();
            }
        }
    }

    fn maybe_flush(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight.len() >= self.cfg.max_in_flight.max(1)
            || self.bytes == 0 && self.messages == 0
        {
            return;
        }
        let due = self
            .last_flush
            .is_none_or(|t| t.elapsed() >= self.cfg.flush_interval);
        if due
            || self.bytes >= self.cfg.max_batch_bytes
            || self.messages >= self.cfg.max_batch_messages
            || !self.drain_waiters.is_empty()
        {
            self.flush(ctx);
        } else if !self.timer_armed {
            self.timer_armed = true;
            let wait = self
                .cfg
                .flush_interval
                .saturating_sub(self.last_flush.map(|t| t.elapsed()).unwrap_or_default());
            ctx.run_later(wait, move |act, ctx| {
                act.timer_armed = false;
                act.maybe_flush(ctx);
            });
        }
    }

    /// Take up to `max_object_bytes` (decoded) of buffered batches, whole partitions first,
    /// in a stable partition order.
    fn take_flush(&mut self) -> (Vec<FlushPart>, usize) {
        let mut keys: Vec<TopicPartition> = self
            .parts
            .iter()
            .filter(|(_, p)| !p.batches.is_empty() && !p.failed && p.leader.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        let mut out = Vec::new();
        let mut decoded = 0usize;
        for tp in keys {
            let Some(p) = self.parts.get_mut(&tp) else {
                continue;
            };
            let Some(leader) = p.leader.clone() else {
                continue;
            };
            let mut batches = Vec::new();
            let first = p.batches.front().map_or(0, |b| b.base);
            let mut last = first;
            while let Some(b) = p.batches.front() {
                if decoded > 0 && decoded + b.decoded > self.cfg.max_object_bytes {
                    break;
                }
                let Some(b) = p.batches.pop_front() else {
                    break;
                };
                decoded += b.decoded;
                self.bytes = self.bytes.saturating_sub(b.decoded);
                self.messages = self.messages.saturating_sub((b.last - b.base + 1) as usize);
                last = b.last;
                batches.push(b.bytes);
            }
            if !batches.is_empty() {
                out.push(FlushPart {
                    tp,
                    leader,
                    epoch: p.epoch,
                    first,
                    last,
                    batches,
                });
            }
            if decoded >= self.cfg.max_object_bytes {
                break;
            }
        }
        (out, decoded)
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight.len() >= self.cfg.max_in_flight.max(1) {
            return;
        }
        let (parts, decoded) = self.take_flush();
        if parts.is_empty() {
            return;
        }
        let (seq, path) = match self.wal.lock() {
            Ok(mut w) => w.allocate(),
            Err(_) => {
                tracing::error!("write-ahead index lock poisoned");
                return;
            }
        };
        self.last_flush = Some(Instant::now());
        let id = self.next_flush_id;
        self.next_flush_id += 1;
        let storage = self.storage.clone();
        let level = (decoded >= COMPRESS_FROM_BYTES).then_some(self.cfg.zstd_level);
        let budget = self.cfg.decode_budget.clone();
        let wal = self.wal.clone();
        let inputs: Vec<(TopicPartition, Vec<Bytes>)> = parts
            .iter()
            .map(|p| (p.tp.clone(), p.batches.clone()))
            .collect();
        let epochs: Vec<(TopicPartition, i32)> =
            parts.iter().map(|p| (p.tp.clone(), p.epoch)).collect();
        let cluster = self.cfg.cluster.clone();
        // Commits run one at a time, in flush order.
        let (prev_commit, commit_done) = if cluster.is_some() {
            let (tx, rx) = oneshot::channel::<()>();
            let next = async move {
                let _ = rx.await;
            }
            .boxed()
            .shared();
            (self.commit_chain.replace(next), Some(tx))
        } else {
            (None, None)
        };
        self.in_flight.push_back(InFlight {
            id,
            parts,
            result: None,
            poisoned: HashSet::new(),
            started: Instant::now(),
        });
        let fut = async move {
            let permit = budget.hold_async(decoded.saturating_mul(3)).await;
            let (data, wal_parts) = tokio::task::spawn_blocking(move || {
                let mut enc = WalEncoder::new(level)?;
                for (tp, batches) in &inputs {
                    enc.push_partition(tp, batches)?;
                }
                enc.finish()
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
            drop(permit);
            let size = data.len() as u64;
            write_segment(&storage, &path, data).await?;
            super::crash_point("flush.after_put");
            let written = now_ms();
            let committed = match &cluster {
                None => {
                    if let Ok(mut w) = wal.lock() {
                        w.add(seq, size, written, wal_parts.clone(), None);
                    }
                    None
                }
                Some(c) => {
                    if let Some(prev) = prev_commit {
                        prev.await;
                    }
                    let commits: Vec<PartCommit> = epochs
                        .iter()
                        .zip(&wal_parts)
                        .map(|((tp, epoch), part)| PartCommit {
                            tp: tp.clone(),
                            epoch: *epoch,
                            base: part.base,
                            last: part.last,
                            bytes: part.bytes,
                            max_timestamp: part.max_timestamp,
                            first_group: part.first_group,
                            groups: part.groups,
                        })
                        .collect();
                    let res = c
                        .store
                        .commit_flush(c.node_id, &path, size, written, &commits)
                        .await;
                    drop(commit_done);
                    super::crash_point("flush.after_commit");
                    // An error leaves the outcome unknown (the commit may have landed): the
                    // leaders of every part restart from the committed index.
                    Some(res.unwrap_or_else(|e| {
                        tracing::warn!("commit of {path} failed: {e}");
                        HashSet::new()
                    }))
                }
            };
            Ok::<_, Error>(Written {
                path,
                size,
                written,
                parts: wal_parts,
                committed,
            })
        };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            if let Some(f) = act.in_flight.iter_mut().find(|f| f.id == id) {
                f.result = Some(res);
            }
            // Results are delivered in flush order, so every leader sees its durable ranges in
            // offset order even when a later object landed first.
            while act.in_flight.front().is_some_and(|f| f.result.is_some()) {
                if let Some(f) = act.in_flight.pop_front() {
                    act.deliver(f);
                }
            }
            act.maybe_flush(ctx);
            act.check_drained();
        }));
    }

    /// Tell the leaders how a flush ended. A failure also poisons the partition's parts in the
    /// later flush in flight: those offsets are reused after the failure, so that part is never
    /// acknowledged (and released at once if it was written).
    fn deliver(&mut self, f: InFlight) {
        self.metrics
            .flush_seconds
            .observe(f.started.elapsed().as_secs_f64());
        match f.result {
            Some(Ok(w)) => {
                self.metrics.flushes.inc();
                self.metrics.flush_bytes.inc_by(w.size);
                let records: i64 = w.parts.iter().map(|p| p.last - p.base + 1).sum();
                self.metrics.flush_records.inc_by(records.max(0) as u64);
                for (p, part) in f.parts.iter().zip(&w.parts) {
                    if part.base != p.first || part.last != p.last {
                        tracing::error!(
                            "{}: encoded {}-{} but expected {}-{}",
                            p.tp,
                            part.base,
                            part.last,
                            p.first,
                            p.last
                        );
                    }
                    if f.poisoned.contains(&p.tp) {
                        let dead = self
                            .wal
                            .lock()
                            .ok()
                            .and_then(|mut i| i.release(&w.path, &p.tp, part.base));
                        if let Some(dead) = dead {
                            let storage = self.storage.clone();
                            actix::spawn(async move {
                                let _ = storage.delete(&dead).await;
                            });
                        }
                        continue;
                    }
                    if w.committed.as_ref().is_some_and(|c| !c.contains(&p.tp)) {
                        // Not committed under this leader's epoch: never acknowledged.
                        self.drop_buffer(&p.tp);
                        if let Some(b) = self.parts.get_mut(&p.tp) {
                            b.failed = true;
                        }
                        p.leader.do_send(WriterEvent::Failed {
                            from: p.first,
                            error: "not committed: leadership moved or the metadata store failed"
                                .into(),
                            fenced: true,
                        });
                        continue;
                    }
                    // The leader's mailbox is unbounded for these events; if the leader is
                    // gone (partition deleted) its waiters were already failed.
                    p.leader.do_send(WriterEvent::Durable(SegmentMeta {
                        base: part.base,
                        last: part.last,
                        path: w.path.clone(),
                        size: part.bytes,
                        max_timestamp: Some(part.max_timestamp),
                        written_ms: w.written,
                        wal: Some(WalSlice {
                            first_group: part.first_group,
                            groups: part.groups,
                            object_size: w.size,
                        }),
                    }));
                }
            }
            Some(Err(e)) => {
                self.metrics.flush_failures.inc();
                tracing::warn!(
                    "write-ahead object of {} partition(s) failed: {e}",
                    f.parts.len()
                );
                for p in &f.parts {
                    if f.poisoned.contains(&p.tp) {
                        continue;
                    }
                    self.drop_buffer(&p.tp);
                    if let Some(b) = self.parts.get_mut(&p.tp) {
                        b.failed = true;
                    }
                    for later in self.in_flight.iter_mut() {
                        if later.parts.iter().any(|q| q.tp == p.tp) {
                            later.poisoned.insert(p.tp.clone());
                        }
                    }
                    p.leader.do_send(WriterEvent::Failed {
                        from: p.first,
                        error: e.to_string(),
                        fenced: false,
                    });
                }
            }
            None => {}
        }
        for p in &f.parts {
            if self.in_flight_has(&p.tp) {
                continue;
            }
            let forgotten = self.parts.get_mut(&p.tp).and_then(|b| b.forgotten.take());
            if let Some(waiters) = forgotten {
                self.parts.remove(&p.tp);
                for w in waiters {
                    let _ = w.send(());
                }
            } else if self
                .parts
                .get(&p.tp)
                .is_some_and(|b| b.batches.is_empty() && !b.failed)
            {
                // Idle partitions are not kept: the map holds what is buffered.
                self.parts.remove(&p.tp);
            }
        }
    }

    fn check_drained(&mut self) {
        if self.drain_waiters.is_empty() {
            return;
        }
        let idle = self.in_flight.is_empty()
            && self
                .parts
                .values()
                .all(|p| p.batches.is_empty() || p.failed);
        if idle {
            for w in self.drain_waiters.drain(..) {
                let _ = w.send(());
            }
        }
    }
}

/// Write a segment with `PutMode::Create` and settle what the store says about it:
///
/// - `AlreadyExists` (an S3 PUT retried by object_store after its first attempt landed gets
///   412; a write interrupted by a crash left its object): the stored object is read back;
///   identical bytes mean the write is durable. Different bytes are a real conflict: the
///   stored object (never acknowledged: offsets are only reused after a failed write was
///   removed) is copied to `conflicts/…` and replaced, so neither side is lost.
/// - Any other error: the put may still have landed (a timeout, a lost response). The object
///   is deleted — retried until the store confirms — before the failure is reported, because
///   the leader reuses these offsets for the next write.
async fn write_segment(storage: &Storage, path: &str, data: Bytes) -> Result<(), Error> {
    match storage.put_create(path, data.clone()).await {
        Ok(()) => Ok(()),
        Err(Error::AlreadyExists(_)) => {
            let stored = storage.get(path).await?;
            if stored == data {
                tracing::info!("{path} was already stored with the same bytes: durable");
                return Ok(());
            }
            let aside = format!("conflicts/{path}.{}", now_ms());
            tracing::warn!(
                "{path} exists with different bytes (an unacknowledged earlier write); \
                 moving it to {aside}"
            );
            storage.put_overwrite(&aside, stored).await?;
            storage.delete(path).await?;
            storage.put_create(path, data).await
        }
        Err(e) => {
            let mut wait = Duration::from_millis(50);
            let mut attempts = 0u32;
            loop {
                match storage.delete(path).await {
                    Ok(()) => break,
                    Err(d) => {
                        attempts += 1;
                        if attempts % 10 == 1 {
                            tracing::warn!(
                                "could not remove {path} after a failed write ({d}); retrying"
                            );
                        }
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(5));
                    }
                }
            }
            Err(e)
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Actor for SegmentWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(rx) = self.rx.take() {
            let stream =
                futures::stream::unfold(
                    rx,
                    |mut rx| async move { rx.recv().await.map(|c| (c, rx)) },
                );
            ctx.add_stream(stream);
        }
    }
}

impl StreamHandler<WriterCmd> for SegmentWriter {
    fn handle(&mut self, cmd: WriterCmd, ctx: &mut Context<Self>) {
        self.on_cmd(cmd, ctx);
    }

    fn finished(&mut self, _ctx: &mut Context<Self>) {
        // All senders dropped: the broker is shutting down. Keep running until flushes end.
    }
}
