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
//! is written as several. One flush is in flight at a time; what arrives meanwhile accumulates
//! for the next one (group commit), which keeps every partition's flushes in offset order.
//!
//! A flush takes its share of the decode budget, encodes Parquet on the blocking pool, writes
//! the object with `PutMode::Create` (see `write_segment` for what a failure or an existing
//! object means), records it in the [`WalIndex`], and only then reports
//! [`WriterEvent::Durable`] to each leader. A failed write reports [`WriterEvent::Failed`] to
//! every partition in it, drops their buffers, and ignores their appends until each leader
//! acknowledges with [`WriterCmd::Reset`] (so offsets stay dense).

use super::segment::{WalEncoder, COMPRESS_FROM_BYTES};
use super::wal::WalIndex;
use super::Storage;
use crate::error::Error;
use crate::log::TopicPartition;
use crate::metrics::Metrics;
use actix::prelude::*;
use bytes::Bytes;
use std::collections::HashMap;
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
    Failed { from: i64, error: String },
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
    /// The broker-wide decode budget: encoding a flush decompresses its batches and builds
    /// columns (about three times their decoded size), so flushes take their share of it
    /// before they start and cannot multiply memory.
    pub decode_budget: crate::protocol::records::DecodeBudget,
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
    batches: std::collections::VecDeque<Buffered>,
    last: i64,
    failed: bool,
    /// Deleted while a write of it was in flight: answered and removed when it ends.
    forgotten: Option<Vec<oneshot::Sender<()>>>,
}

/// One partition's share of a flush.
struct FlushPart {
    tp: TopicPartition,
    leader: Recipient<WriterEvent>,
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
    /// Partitions in the flush being written (one flush is in flight at a time).
    in_flight: Option<Vec<TopicPartition>>,
    timer_armed: bool,
    wal: Arc<Mutex<WalIndex>>,
    rx: Option<mpsc::Receiver<WriterCmd>>,
    drain_waiters: Vec<oneshot::Sender<()>>,
    metrics: Arc<Metrics>,
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
            in_flight: None,
            timer_armed: false,
            wal,
            rx: Some(rx),
            drain_waiters: Vec::new(),
            metrics,
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
        self.in_flight.as_ref().is_some_and(|f| f.contains(tp))
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
        if self.in_flight.is_some() || self.bytes == 0 && self.messages == 0 {
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
        if self.in_flight.is_some() {
            return;
        }
        let (parts, decoded) = self.take_flush();
        if parts.is_empty() {
            return;
        }
        self.last_flush = Some(Instant::now());
        self.in_flight = Some(parts.iter().map(|p| p.tp.clone()).collect());
        let (seq, path) = match self.wal.lock() {
            Ok(mut w) => w.allocate(),
            Err(_) => {
                tracing::error!("write-ahead index lock poisoned");
                return;
            }
        };
        let storage = self.storage.clone();
        let level = (decoded >= COMPRESS_FROM_BYTES).then_some(self.cfg.zstd_level);
        let started = Instant::now();
        let budget = self.cfg.decode_budget.clone();
        let wal = self.wal.clone();
        let inputs: Vec<(TopicPartition, Vec<Bytes>)> = parts
            .iter()
            .map(|p| (p.tp.clone(), p.batches.clone()))
            .collect();
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
            if let Ok(mut w) = wal.lock() {
                w.add(seq, size, written, wal_parts.clone(), None);
            }
            Ok::<_, Error>((path, size, written, wal_parts))
        };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            act.metrics
                .flush_seconds
                .observe(started.elapsed().as_secs_f64());
            match res {
                Ok((path, size, written, wal_parts)) => {
                    act.metrics.flushes.inc();
                    act.metrics.flush_bytes.inc_by(size);
                    let records: i64 = wal_parts.iter().map(|w| w.last - w.base + 1).sum();
                    act.metrics.flush_records.inc_by(records.max(0) as u64);
                    for (p, w) in parts.iter().zip(&wal_parts) {
                        if w.base != p.first || w.last != p.last {
                            tracing::error!(
                                "{}: encoded {}-{} but expected {}-{}",
                                p.tp,
                                w.base,
                                w.last,
                                p.first,
                                p.last
                            );
                        }
                        // The leader's mailbox is unbounded for these events; if the leader
                        // is gone (partition deleted) its waiters were already failed.
                        p.leader.do_send(WriterEvent::Durable(SegmentMeta {
                            base: w.base,
                            last: w.last,
                            path: path.clone(),
                            size: w.bytes,
                            max_timestamp: Some(w.max_timestamp),
                            written_ms: written,
                            wal: Some(WalSlice {
                                first_group: w.first_group,
                                groups: w.groups,
                                object_size: size,
                            }),
                        }));
                    }
                }
                Err(e) => {
                    act.metrics.flush_failures.inc();
                    tracing::warn!(
                        "write-ahead object of {} partition(s) failed: {e}",
                        parts.len()
                    );
                    for p in &parts {
                        act.drop_buffer(&p.tp);
                        if let Some(b) = act.parts.get_mut(&p.tp) {
                            b.failed = true;
                        }
                        p.leader.do_send(WriterEvent::Failed {
                            from: p.first,
                            error: e.to_string(),
                        });
                    }
                }
            }
            act.in_flight = None;
            for p in &parts {
                let forgotten = act.parts.get_mut(&p.tp).and_then(|b| b.forgotten.take());
                if let Some(waiters) = forgotten {
                    act.parts.remove(&p.tp);
                    for w in waiters {
                        let _ = w.send(());
                    }
                } else if act
                    .parts
                    .get(&p.tp)
                    .is_some_and(|b| b.batches.is_empty() && !b.failed)
                {
                    // Idle partitions are not kept: the map holds what is buffered.
                    act.parts.remove(&p.tp);
                }
            }
            act.maybe_flush(ctx);
            act.check_drained();
        }));
    }

    fn check_drained(&mut self) {
        if self.drain_waiters.is_empty() {
            return;
        }
        let idle = self.in_flight.is_none()
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
