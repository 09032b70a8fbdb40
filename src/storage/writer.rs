//! The SegmentWriter actor: the single writer of log segments.
//!
//! PartitionLeaders send it their appended batches over one ordered, bounded channel. It buffers
//! per partition (keyed by topic *id*: a deleted topic's buffers never meet its successor's) and
//! flushes a partition when its buffer reaches `max_batch_size` decoded bytes or
//! `max_batch_messages` records, or otherwise as soon as `flush_interval_ms` has passed since
//! its previous flush started: a quiet partition flushes an append at once (low latency), a busy
//! one at most once per interval (bounded segment rate). One object holds at most
//! `max_object_bytes` (decoded); a larger backlog is written as several.
//! At most one flush per partition is in flight; what arrives meanwhile accumulates for the
//! next one (group commit). A flush takes its share of the decode budget, encodes Parquet on the
//! blocking pool, writes the segment with `PutMode::Create` (see `write_segment` for what a
//! failure or an existing object means), and only then reports [`WriterEvent::Durable`] to the
//! leader. A failed write reports [`WriterEvent::Failed`], drops that partition's buffer, and
//! ignores its appends until the leader acknowledges with [`WriterCmd::Reset`] (so offsets stay
//! dense).

use super::segment::encode_segment;
use super::{segment_path, Storage};
use crate::error::Error;
use crate::log::TopicPartition;
use crate::metrics::Metrics;
use actix::prelude::*;
use bytes::Bytes;
use std::collections::HashMap;
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
    pub max_batch_bytes: usize,
    pub max_batch_messages: usize,
    pub flush_interval: Duration,
    pub zstd_level: i32,
    /// Largest object one flush writes (by decoded size); a larger backlog takes several.
    pub max_object_bytes: usize,
    /// The broker-wide decode budget: encoding a flush decompresses its batches and builds
    /// columns (about three times their decoded size), so flushes take their share of it
    /// before they start and concurrent flushes cannot multiply memory.
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
    /// Decoded bytes buffered (what flush thresholds count).
    bytes: usize,
    messages: usize,
    /// When the previous flush started.
    last_flush: Option<Instant>,
    in_flight: bool,
    timer_armed: bool,
    failed: bool,
    /// Deleted while a write was in flight: answered and removed when it ends.
    forgotten: Option<Vec<oneshot::Sender<()>>>,
}

pub struct SegmentWriter {
    storage: Storage,
    cfg: WriterConfig,
    parts: HashMap<TopicPartition, PartitionBuffer>,
    rx: Option<mpsc::Receiver<WriterCmd>>,
    drain_waiters: Vec<oneshot::Sender<()>>,
    metrics: std::sync::Arc<Metrics>,
}

impl SegmentWriter {
    /// Start the writer; returns the channel leaders send to.
    pub fn start_writer(
        storage: Storage,
        cfg: WriterConfig,
        metrics: std::sync::Arc<Metrics>,
    ) -> (Addr<SegmentWriter>, mpsc::Sender<WriterCmd>) {
        let (tx, rx) = mpsc::channel(WRITER_CHANNEL_CAPACITY);
        let addr = SegmentWriter {
            storage,
            cfg,
            parts: HashMap::new(),
            rx: Some(rx),
            drain_waiters: Vec::new(),
            metrics,
        }
        .start();
        (addr, tx)
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
                p.bytes += decoded;
                p.messages += (last - base + 1) as usize;
                p.batches.push_back(Buffered {
                    base,
                    last,
                    bytes,
                    decoded,
                });
                self.maybe_flush(tp, ctx);
            }
            WriterCmd::Reset { tp } => {
                if let Some(p) = self.parts.get_mut(&tp) {
                    p.failed = false;
                }
            }
            WriterCmd::Forget { tp, done } => {
                match self.parts.get_mut(&tp) {
                    Some(p) if p.in_flight => {
                        p.batches.clear();
                        p.bytes = 0;
                        p.messages = 0;
                        p.forgotten.get_or_insert_with(Vec::new).extend(done);
                    }
                    _ => {
                        self.parts.remove(&tp);
                        if let Some(d) = done {
                            let _ = d.send(());
                        }
                    }
                }
                self.check_drained();
            }
            WriterCmd::FlushAll { done } => {
                self.drain_waiters.push(done);
                let keys: Vec<_> = self.parts.keys().cloned().collect();
                for k in keys {
                    self.flush(k, ctx);
                }
                self.check_drained();
            }
        }
    }

    fn maybe_flush(&mut self, tp: TopicPartition, ctx: &mut Context<Self>) {
        let Some(p) = self.parts.get_mut(&tp) else {
            return;
        };
        if p.in_flight || p.batches.is_empty() {
            return;
        }
        let due = p
            .last_flush
            .is_none_or(|t| t.elapsed() >= self.cfg.flush_interval);
        if due
            || p.bytes >= self.cfg.max_batch_bytes
            || p.messages >= self.cfg.max_batch_messages
            || !self.drain_waiters.is_empty()
        {
            self.flush(tp, ctx);
        } else if !p.timer_armed {
            p.timer_armed = true;
            let wait = self
                .cfg
                .flush_interval
                .saturating_sub(p.last_flush.map(|t| t.elapsed()).unwrap_or_default());
            ctx.run_later(wait, move |act, ctx| {
                if let Some(p) = act.parts.get_mut(&tp) {
                    p.timer_armed = false;
                }
                act.maybe_flush(tp, ctx);
            });
        }
    }

    fn flush(&mut self, tp: TopicPartition, ctx: &mut Context<Self>) {
        let Some(p) = self.parts.get_mut(&tp) else {
            return;
        };
        if p.in_flight || p.batches.is_empty() {
            return;
        }
        let Some(leader) = p.leader.clone() else {
            return;
        };
        // One object holds at most `max_object_bytes` (decoded): the rest waits for the next.
        let mut batches = Vec::new();
        let mut decoded = 0usize;
        let first = p.batches.front().map_or(0, |b| b.base);
        let mut last = first;
        while let Some(b) = p.batches.front() {
            if !batches.is_empty() && decoded + b.decoded > self.cfg.max_object_bytes {
                break;
            }
            let Some(b) = p.batches.pop_front() else {
                break;
            };
            decoded += b.decoded;
            p.bytes -= b.decoded;
            p.messages = p.messages.saturating_sub((b.last - b.base + 1) as usize);
            last = b.last;
            batches.push(b.bytes);
        }
        p.last_flush = Some(Instant::now());
        p.in_flight = true;
        let storage = self.storage.clone();
        let level = self.cfg.zstd_level;
        let path = segment_path(&tp, first, last);
        let started = Instant::now();
        let budget = self.cfg.decode_budget.clone();
        let fut = async move {
            let permit = budget.hold_async(decoded.saturating_mul(3)).await;
            let enc = tokio::task::spawn_blocking(move || encode_segment(&batches, decoded, level))
                .await
                .map_err(|e| Error::Internal(e.to_string()))??;
            drop(permit);
            if enc.base_offset != first || enc.last_offset != last {
                return Err(Error::Internal(format!(
                    "encoded {}-{} but expected {first}-{last}",
                    enc.base_offset, enc.last_offset
                )));
            }
            let size = enc.data.len() as u64;
            let records = enc.records as u64;
            write_segment(&storage, &path, enc.data).await?;
            Ok((
                SegmentMeta {
                    base: first,
                    last,
                    path,
                    size,
                    max_timestamp: Some(enc.max_timestamp),
                    written_ms: now_ms(),
                },
                records,
            ))
        };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            act.metrics
                .flush_seconds
                .observe(started.elapsed().as_secs_f64());
            match res {
                Ok((meta, records)) => {
                    act.metrics.flushes.inc();
                    act.metrics.flush_bytes.inc_by(meta.size);
                    act.metrics.flush_records.inc_by(records);
                    // The leader's mailbox is unbounded for these events; if the leader is gone
                    // (partition deleted) its waiters were already failed.
                    leader.do_send(WriterEvent::Durable(meta));
                }
                Err(e) => {
                    act.metrics.flush_failures.inc();
                    tracing::warn!("{tp}: segment write {first}-{last} failed: {e}");
                    if let Some(p) = act.parts.get_mut(&tp) {
                        p.failed = true;
                        p.batches.clear();
                        p.bytes = 0;
                        p.messages = 0;
                    }
                    leader.do_send(WriterEvent::Failed {
                        from: first,
                        error: e.to_string(),
                    });
                }
            }
            if let Some(p) = act.parts.get_mut(&tp) {
                p.in_flight = false;
                if let Some(waiters) = p.forgotten.take() {
                    act.parts.remove(&tp);
                    for w in waiters {
                        let _ = w.send(());
                    }
                }
            }
            act.maybe_flush(tp, ctx);
            act.check_drained();
        }));
    }

    fn check_drained(&mut self) {
        if self.drain_waiters.is_empty() {
            return;
        }
        let idle = self
            .parts
            .values()
            .all(|p| !p.in_flight && (p.batches.is_empty() || p.failed));
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
