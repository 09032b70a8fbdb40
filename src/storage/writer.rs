//! The SegmentWriter actor: the single writer of log segments.
//!
//! PartitionLeaders send it their appended batches over one ordered, bounded channel. It buffers
//! per partition and flushes a partition when its buffer reaches `max_batch_size` bytes or
//! `max_batch_messages` records, or otherwise as soon as `flush_interval_ms` has passed since
//! its previous flush started: a quiet partition flushes an append at once (low latency), a busy
//! one at most once per interval (bounded segment rate).
//! At most one flush per partition is in flight; what arrives meanwhile accumulates for the
//! next one (group commit). A flush encodes Parquet on the blocking pool, writes the segment
//! with `PutMode::Create`, and only then reports [`WriterEvent::Durable`] to the leader. A failed
//! write reports [`WriterEvent::Failed`], drops that partition's buffer, and ignores its
//! appends until the leader acknowledges with [`WriterCmd::Reset`] (so offsets stay dense).

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
    },
    /// The leader processed a failure; accept appends again.
    Reset { tp: TopicPartition },
    /// The partition was deleted: drop its buffer.
    Forget { tp: TopicPartition },
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
}

#[derive(Default)]
struct PartitionBuffer {
    leader: Option<Recipient<WriterEvent>>,
    batches: Vec<Bytes>,
    first: i64,
    last: i64,
    bytes: usize,
    messages: usize,
    /// When the previous flush started.
    last_flush: Option<Instant>,
    in_flight: bool,
    timer_armed: bool,
    failed: bool,
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
            } => {
                let p = self.parts.entry(tp.clone()).or_default();
                if p.failed {
                    // Stale append issued before the leader saw the failure; it is failed there.
                    return;
                }
                if p.batches.is_empty() {
                    p.first = base;
                } else if base != p.last + 1 {
                    tracing::error!("{tp}: append {base} does not follow {}", p.last);
                }
                p.leader = Some(leader);
                p.last = last;
                p.bytes += bytes.len();
                p.messages += (last - base + 1) as usize;
                p.batches.push(bytes);
                self.maybe_flush(tp, ctx);
            }
            WriterCmd::Reset { tp } => {
                if let Some(p) = self.parts.get_mut(&tp) {
                    p.failed = false;
                }
            }
            WriterCmd::Forget { tp } => {
                self.parts.remove(&tp);
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
        let batches = std::mem::take(&mut p.batches);
        let (first, last) = (p.first, p.last);
        p.bytes = 0;
        p.messages = 0;
        p.last_flush = Some(Instant::now());
        p.in_flight = true;
        let storage = self.storage.clone();
        let level = self.cfg.zstd_level;
        let path = segment_path(&tp.topic, tp.partition, first, last);
        let started = Instant::now();
        let fut = async move {
            let enc = tokio::task::spawn_blocking(move || encode_segment(&batches, level))
                .await
                .map_err(|e| Error::Internal(e.to_string()))??;
            if enc.base_offset != first || enc.last_offset != last {
                return Err(Error::Internal(format!(
                    "encoded {}-{} but expected {first}-{last}",
                    enc.base_offset, enc.last_offset
                )));
            }
            let size = enc.data.len() as u64;
            let records = enc.records as u64;
            if let Err(e) = storage.put_create(&path, enc.data).await {
                // The put may have landed despite the error (e.g. a timeout): remove it so the
                // retried offsets do not collide with an unacknowledged copy. Never delete an
                // object that existed before this put.
                if !matches!(e, Error::AlreadyExists(_)) {
                    let _ = storage.delete(&path).await;
                }
                return Err(e);
            }
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
