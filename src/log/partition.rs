//! The log of one partition as a plain struct: offset assignment, the hot tail of recent
//! batches, the index of durable segments, the high watermark (durable end) and the produce
//! requests waiting for durability. No I/O and no actors here, so it is unit-tested directly.

use super::producers::ProducerStates;
use super::transactions::{Aborted, PartitionTransactions};
use super::TopicPartition;

use crate::error::{Error, Result};
use crate::protocol::records::{set_base_offset, set_partition_leader_epoch, ValidatedBatch};
use crate::storage::writer::SegmentMeta;
use bytes::{Bytes, BytesMut};
use std::collections::{BTreeMap, VecDeque};
use tokio::sync::oneshot;

/// A compacted topic's cleaning settings (its topic configs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactPolicy {
    pub delete_retention_ms: i64,
    pub min_lag_ms: i64,
    pub max_lag_ms: i64,
    pub min_dirty_ratio: f64,
}

/// What a successful produce of one batch returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    pub base_offset: i64,
    pub log_start_offset: i64,
}

/// A recent batch kept exactly as produced (base offset rewritten).
#[derive(Debug, Clone)]
pub struct HotBatch {
    pub base: i64,
    pub last: i64,
    pub max_timestamp: i64,
    pub bytes: Bytes,
}

/// Where the data for a fetch at some offset lives.
#[derive(Debug, Clone)]
pub enum ReadPlan {
    /// Batches from the hot tail (empty when the offset is the high watermark).
    Hot(Vec<Bytes>),
    /// Durable segments to load, in order, starting with the one holding the offset.
    Cold(Vec<SegmentMeta>),
}

type Waiter = oneshot::Sender<Result<AppendResult>>;

#[derive(Debug)]
struct Pending {
    base: i64,
    last: i64,
    tx: Waiter,
}

/// A read-only view for offset lookups.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub log_start: i64,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub segments: Vec<SegmentMeta>,
    pub hot: Vec<HotBatch>,
}

#[derive(Debug)]
pub struct PartitionLog {
    pub tp: TopicPartition,
    next_offset: i64,
    high_watermark: i64,
    log_start: i64,
    hot: VecDeque<HotBatch>,
    hot_bytes: usize,
    segments: BTreeMap<i64, SegmentMeta>,
    pending: VecDeque<Pending>,
    /// Idempotent-producer state (sequence numbers of recent batches per producer).
    pub producers: ProducerStates,
    /// Open and aborted transactions (LSO, aborted list of read_committed fetches).
    pub txns: PartitionTransactions,
    /// Transaction markers appended but not durable yet: (offset, producer id, commit). They
    /// close their transaction once below the high watermark.
    markers: VecDeque<(i64, i64, bool)>,
    /// The epoch this log is led under (stamped on appended batches; 0 in standalone mode).
    pub leader_epoch: i32,
}

impl PartitionLog {
    /// A log whose durable content is `segments` (recovered at start-up; may be empty).
    pub fn new(tp: TopicPartition, segments: Vec<SegmentMeta>) -> PartitionLog {
        Self::with_log_start(tp, segments, None)
    }

    /// A recovered log whose start offset was moved by DeleteRecords to `log_start`.
    pub fn with_log_start(
        tp: TopicPartition,
        segments: Vec<SegmentMeta>,
        log_start: Option<i64>,
    ) -> PartitionLog {
        let mut map = BTreeMap::new();
        for s in segments {
            map.insert(s.base, s);
        }
        let next = map.values().next_back().map_or(0, |s| s.last + 1);
        let start = map.values().next().map_or(next, |s| s.base);
        let start = log_start.map_or(start, |ls| ls.clamp(start, next));
        PartitionLog {
            tp,
            next_offset: next,
            high_watermark: next,
            log_start: start,
            hot: VecDeque::new(),
            hot_bytes: 0,
            segments: map,
            pending: VecDeque::new(),
            producers: ProducerStates::default(),
            txns: PartitionTransactions::default(),
            markers: VecDeque::new(),
            leader_epoch: 0,
        }
    }

    /// The last stable offset: below it every transaction is decided (committed or aborted,
    /// its marker durable); read_committed consumers read up to it.
    pub fn last_stable_offset(&self) -> i64 {
        self.txns.last_stable_offset(self.high_watermark)
    }

    /// Replay transaction events read from storage at start-up, in offset order (markers
    /// read there are durable).
    pub fn apply_txn_events(&mut self, events: &[crate::storage::segment::TxnEvent]) {
        use crate::storage::segment::TxnEvent;
        for e in events {
            match *e {
                TxnEvent::Data { producer_id, base } => {
                    self.txns.on_transactional_batch(producer_id, base)
                }
                TxnEvent::Marker {
                    producer_id,
                    producer_epoch,
                    offset,
                    commit,
                } => {
                    self.txns.on_marker(producer_id, offset, commit);
                    self.producers.fence_older_than(producer_id, producer_epoch);
                }
            }
        }
        self.txns.truncate_before(self.log_start);
    }

    /// Aborted transactions a read_committed fetch of `[from, to)` must list.
    pub fn aborted_in(&self, from: i64, to: i64) -> Vec<Aborted> {
        self.txns.aborted_in(from, to)
    }

    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }
    pub fn log_start(&self) -> i64 {
        self.log_start
    }
    pub fn hot_bytes(&self) -> usize {
        self.hot_bytes
    }
    pub fn segments(&self) -> impl DoubleEndedIterator<Item = &SegmentMeta> {
        self.segments.values()
    }

    /// Assign offsets to a validated batch: copy it once, rewrite its base offset, keep it in
    /// the hot tail (invisible to readers until durable). Returns (base, last, bytes).
    pub fn assign(&mut self, batch: &ValidatedBatch) -> (i64, i64, Bytes) {
        let base = self.next_offset;
        let last = base + batch.header.last_offset_delta as i64;
        let mut buf = BytesMut::from(&batch.bytes[..]);
        set_base_offset(&mut buf, base);
        // Served batches carry the epoch of the leader that appended them (0 in standalone
        // mode), not whatever the producer wrote there. Outside the CRC, like the offset.
        set_partition_leader_epoch(&mut buf, self.leader_epoch);
        let bytes = buf.freeze();
        self.next_offset = last + 1;
        let h = &batch.header;
        if h.is_control() {
            // A transaction marker (written by this broker, one record): it decides the
            // transaction once durable.
            if let Some(commit) = crate::protocol::records::control_batch_kind(&batch.bytes) {
                self.markers.push_back((base, h.producer_id, commit));
            }
        } else if h.is_transactional() {
            self.txns.on_transactional_batch(h.producer_id, base);
        }
        self.hot_bytes += bytes.len();
        self.hot.push_back(HotBatch {
            base,
            last,
            max_timestamp: batch.header.max_timestamp,
            bytes: bytes.clone(),
        });
        (base, last, bytes)
    }

    /// Wait for durability of a batch whose last offset is `last`.
    pub fn add_waiter(&mut self, base: i64, last: i64, tx: Waiter) {
        self.pending.push_back(Pending { base, last, tx });
    }

    /// A segment became durable: advance the high watermark, index the segment and answer the
    /// produces it covers. Returns true when the high watermark moved.
    pub fn on_durable(&mut self, seg: SegmentMeta) -> bool {
        if seg.base != self.high_watermark || seg.last < seg.base {
            tracing::error!(
                "{}: durable segment {}-{} does not continue the high watermark {}",
                self.tp,
                seg.base,
                seg.last,
                self.high_watermark
            );
            return false;
        }
        let last = seg.last;
        self.high_watermark = last + 1;
        while let Some(&(offset, pid, commit)) = self.markers.front() {
            if offset > last {
                break;
            }
            self.markers.pop_front();
            self.txns.on_marker(pid, offset, commit);
        }
        if self.segments.is_empty() && self.log_start > seg.base {
            self.log_start = seg.base;
        }
        self.segments.insert(seg.base, seg);
        true
    }

    /// Answer the produces now below the high watermark. Called after the new high watermark
    /// is published, so a client that got its acknowledgement reads its records at once.
    pub fn release_acknowledged(&mut self) {
        while self
            .pending
            .front()
            .is_some_and(|p| p.last < self.high_watermark)
        {
            if let Some(p) = self.pending.pop_front() {
                let _ = p.tx.send(Ok(AppendResult {
                    base_offset: p.base,
                    log_start_offset: self.log_start,
                }));
            }
        }
    }

    /// Writing from offset `from` failed: fail every produce at or after it, drop those
    /// batches and hand their offsets out again (offsets stay dense).
    pub fn on_failed(&mut self, from: i64, error: &str) {
        let from = from.max(self.high_watermark);
        self.producers.truncate_from(from);
        self.txns.truncate_from(from);
        self.markers.retain(|&(offset, _, _)| offset < from);
        for p in self.pending.drain(..) {
            let _ = p.tx.send(Err(Error::Storage(error.to_string())));
        }
        while self.hot.back().is_some_and(|b| b.base >= from) {
            if let Some(b) = self.hot.pop_back() {
                self.hot_bytes -= b.bytes.len();
            }
        }
        self.next_offset = from;
    }

    /// Fail all waiters (the partition is going away).
    pub fn fail_all(&mut self, e: fn() -> Error) {
        for p in self.pending.drain(..) {
            let _ = p.tx.send(Err(e()));
        }
    }

    /// Plan a read of up to `max_bytes` from `offset` (at least one batch when data exists),
    /// of batches starting before `upto` (the high watermark, or the last stable offset for
    /// read_committed; cold segments may reach past it, the reader stops there).
    pub fn read(&self, offset: i64, max_bytes: usize, upto: i64) -> Result<ReadPlan> {
        if offset < self.log_start || offset > self.high_watermark {
            return Err(Error::OffsetOutOfRange {
                offset,
                start: self.log_start,
                end: self.high_watermark,
            });
        }
        let upto = upto.min(self.high_watermark);
        if offset >= upto {
            return Ok(ReadPlan::Hot(Vec::new()));
        }
        if let Some(front) = self.hot.front() {
            if offset >= front.base {
                let i = self.hot.partition_point(|b| b.last < offset);
                let mut out = Vec::new();
                let mut size = 0;
                for b in self.hot.range(i..) {
                    if b.base >= upto {
                        break;
                    }
                    if !out.is_empty() && size + b.bytes.len() > max_bytes {
                        break;
                    }
                    size += b.bytes.len();
                    out.push(b.bytes.clone());
                }
                return Ok(ReadPlan::Hot(out));
            }
        }
        let first = self
            .segments
            .range(..=offset)
            .next_back()
            .filter(|(_, s)| s.last >= offset)
            .map(|(k, _)| *k)
            .or_else(|| self.segments.range(offset..).next().map(|(k, _)| *k));
        let Some(first) = first else {
            return Ok(ReadPlan::Hot(Vec::new()));
        };
        let mut segs = Vec::new();
        let mut size = 0u64;
        for s in self.segments.range(first..).map(|(_, s)| s) {
            if s.base >= upto || (!segs.is_empty() && size + s.size > max_bytes as u64) {
                break;
            }
            size += s.size;
            segs.push(s.clone());
        }
        Ok(ReadPlan::Cold(segs))
    }

    /// Drop the oldest durable hot batches until this partition holds at most `keep` bytes or
    /// `over` bytes were freed. Returns bytes freed.
    pub fn evict_hot(&mut self, over: usize) -> usize {
        let mut freed = 0;
        while freed < over {
            match self.hot.front() {
                Some(b) if b.last < self.high_watermark && self.hot.len() > 1 => {
                    freed += b.bytes.len();
                    self.hot_bytes -= b.bytes.len();
                    self.hot.pop_front();
                }
                _ => break,
            }
        }
        freed
    }

    /// Delete whole segments older than `retention_ms` (by their newest timestamp) or beyond
    /// `retention_bytes` of total size (oldest first). The newest segment always stays.
    /// Returns the removed segments; the log start offset moves past them.
    pub fn apply_retention(
        &mut self,
        now_ms: i64,
        retention_ms: i64,
        retention_bytes: i64,
    ) -> Vec<SegmentMeta> {
        let mut removed = Vec::new();
        let mut total: i64 = self.segments.values().map(|s| s.size as i64).sum();
        while self.segments.len() > 1 {
            let Some((&k, s)) = self.segments.iter().next() else {
                break;
            };
            let too_old = retention_ms >= 0 && s.max_timestamp_hint() < now_ms - retention_ms;
            let too_big = retention_bytes >= 0 && total - s.size as i64 >= retention_bytes;
            if !(too_old || too_big) {
                break;
            }
            total -= s.size as i64;
            if let Some(s) = self.segments.remove(&k) {
                removed.push(s);
            }
        }
        if let Some(s) = removed.last() {
            self.log_start = self.log_start.max(s.last + 1);
            self.txns.truncate_before(self.log_start);
            while self.hot.front().is_some_and(|b| b.last < self.log_start) {
                if let Some(b) = self.hot.pop_front() {
                    self.hot_bytes -= b.bytes.len();
                }
            }
        }
        removed
    }

    /// The oldest run of at least `min_count` consecutive segments smaller than `target` bytes,
    /// cut so that together they stay within `target` bytes. The newest segment is never
    /// included (it may still be tiny because the partition is being written).
    pub fn plan_merge(&self, target: u64, min_count: usize) -> Option<Vec<SegmentMeta>> {
        let segs: Vec<&SegmentMeta> = self
            .segments
            .values()
            .take_while(|s| s.wal.is_none())
            .collect();
        let n = segs.len().saturating_sub(1);
        let mut i = 0;
        while i < n {
            let mut run: Vec<SegmentMeta> = Vec::new();
            let mut total = 0u64;
            let mut j = i;
            while j < n && segs[j].size < target && total + segs[j].size <= target {
                if let Some(prev) = run.last() {
                    if segs[j].base != prev.last + 1 {
                        break;
                    }
                }
                total += segs[j].size;
                run.push(segs[j].clone());
                j += 1;
            }
            if run.len() >= min_count.max(2) {
                return Some(run);
            }
            i = j.max(i + 1);
        }
        None
    }

    /// Cluster mode: the oldest run of write-ahead parts (right after the table segments)
    /// written at least `delay_ms` ago, up to `target` bytes (at least one part), to be
    /// rewritten by the leader into one table segment.
    pub fn plan_wal_compaction(
        &self,
        now_ms: i64,
        delay_ms: i64,
        target: u64,
    ) -> Option<Vec<SegmentMeta>> {
        let mut run: Vec<SegmentMeta> = Vec::new();
        let mut total = 0u64;
        for s in self.segments.values().skip_while(|s| s.wal.is_none()) {
            if s.wal.is_none() || s.written_ms > now_ms.saturating_sub(delay_ms) {
                break;
            }
            if !run.is_empty() && total + s.size > target {
                break;
            }
            if run.last().is_some_and(|p| s.base != p.last + 1) {
                break;
            }
            total += s.size;
            run.push(s.clone());
        }
        (!run.is_empty()).then_some(run)
    }

    /// The compactor rewrote write-ahead parts `inputs` (matched by range and object) into
    /// `output`: swap them if they are all still indexed.
    pub fn apply_compaction(&mut self, inputs: &[SegmentMeta], output: SegmentMeta) -> bool {
        let indexed = |s: &SegmentMeta| {
            self.segments
                .get(&s.base)
                .is_some_and(|e| e.last == s.last && e.path == s.path)
        };
        if inputs.is_empty() || !inputs.iter().all(indexed) {
            return false;
        }
        for s in inputs {
            self.segments.remove(&s.base);
        }
        self.segments.insert(output.base, output);
        true
    }

    /// A compacted topic's cleaning run: the table-layout segments from the oldest whose
    /// records are all older than `min.compaction.lag.ms`, once the share of them not cleaned
    /// yet reaches `min.cleanable.dirty.ratio`, or a dirty one is older than
    /// `max.compaction.lag.ms`, or `recheck_at` (when kept tombstones expire) has passed.
    pub fn plan_clean(
        &self,
        now_ms: i64,
        p: &CompactPolicy,
        recheck_at: Option<i64>,
    ) -> Option<Vec<SegmentMeta>> {
        let run: Vec<SegmentMeta> = self
            .segments
            .values()
            .take_while(|s| s.wal.is_none())
            // Kafka's first uncleanable offset: nothing at or after the last stable offset (an
            // open transaction's records may yet be aborted).
            .take_while(|s| s.last < self.last_stable_offset())
            .take_while(|s| s.max_timestamp_hint() <= now_ms.saturating_sub(p.min_lag_ms))
            .cloned()
            .collect();
        if run.is_empty() {
            return None;
        }
        let total: u64 = run.iter().map(|s| s.size).sum();
        let dirty: Vec<&SegmentMeta> = run
            .iter()
            .filter(|s| !crate::storage::is_cleaned_segment(&s.path))
            .collect();
        let dirty_bytes: u64 = dirty.iter().map(|s| s.size).sum();
        let overdue = dirty
            .iter()
            .any(|s| s.max_timestamp_hint() <= now_ms.saturating_sub(p.max_lag_ms));
        let ratio_reached = dirty_bytes as f64 >= p.min_dirty_ratio * total.max(1) as f64;
        let recheck = recheck_at.is_some_and(|t| now_ms >= t);
        let due = (!dirty.is_empty() && (ratio_reached || overdue)) || recheck;
        due.then_some(run)
    }

    /// A compacted topic's cleaning replaced offsets up to `last`: the hot tail must not serve
    /// the records it dropped. Returns bytes freed.
    pub fn drop_hot_through(&mut self, last: i64) -> usize {
        let mut freed = 0;
        while self.hot.front().is_some_and(|b| b.last <= last) {
            if let Some(b) = self.hot.pop_front() {
                freed += b.bytes.len();
                self.hot_bytes -= b.bytes.len();
            }
        }
        freed
    }

    /// Replace `inputs` with the `merged` segment covering them, if they are all still indexed.
    pub fn apply_merge(&mut self, inputs: &[SegmentMeta], merged: SegmentMeta) -> bool {
        if !inputs.iter().all(|s| self.segments.get(&s.base) == Some(s)) {
            return false;
        }
        for s in inputs {
            self.segments.remove(&s.base);
        }
        self.segments.insert(merged.base, merged);
        true
    }

    /// DeleteRecords: move the log start offset to `offset` (-1 = the high watermark); whole
    /// segments below it are removed from the index and returned for deletion.
    pub fn delete_records(&mut self, offset: i64) -> Result<Vec<SegmentMeta>> {
        let offset = if offset == -1 {
            self.high_watermark
        } else {
            offset
        };
        if offset < 0 || offset > self.high_watermark {
            return Err(Error::OffsetOutOfRange {
                offset,
                start: self.log_start,
                end: self.high_watermark,
            });
        }
        if offset <= self.log_start {
            return Ok(Vec::new());
        }
        self.log_start = offset;
        self.txns.truncate_before(offset);
        let doomed: Vec<i64> = self
            .segments
            .values()
            .filter(|s| s.last < offset)
            .map(|s| s.base)
            .collect();
        let removed = doomed
            .iter()
            .filter_map(|b| self.segments.remove(b))
            .collect();
        while self.hot.front().is_some_and(|b| b.last < offset) {
            if let Some(b) = self.hot.pop_front() {
                self.hot_bytes -= b.bytes.len();
            }
        }
        Ok(removed)
    }

    /// Bytes of durable segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size).sum()
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            log_start: self.log_start,
            high_watermark: self.high_watermark,
            last_stable_offset: self.last_stable_offset(),
            segments: self.segments.values().cloned().collect(),
            hot: self
                .hot
                .iter()
                .filter(|b| b.base < self.high_watermark)
                .cloned()
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::compression::Codec;
    use crate::protocol::records::{self, encode_batch, validate_produce};

    fn batch(n: usize) -> ValidatedBatch {
        let recs = records::tests::sample_records(n, 1000);
        let b = encode_batch(&records::tests::meta(), &recs, Codec::None, 0).unwrap();
        validate_produce(&Bytes::from(b), 1 << 20).unwrap()
    }

    /// Hot-tail batches used to carry the producer's partitionLeaderEpoch while batches from
    /// segments said 0.
    #[test]
    fn assigned_batches_say_leader_epoch_zero() {
        let recs = records::tests::sample_records(2, 1000);
        let mut meta = records::tests::meta();
        meta.partition_leader_epoch = 7;
        let b = encode_batch(&meta, &recs, Codec::None, 0).unwrap();
        let v = validate_produce(&Bytes::from(b), 1 << 20).unwrap();
        let mut log = PartitionLog::new(TopicPartition::new("t", 0), vec![]);
        let (_, _, bytes) = log.assign(&v);
        assert_eq!(&bytes[12..16], &0i32.to_be_bytes());
        assert!(validate_produce(&bytes, 1 << 20).is_ok(), "CRC still valid");
    }

    fn txn_batch(pid: i64, n: usize) -> ValidatedBatch {
        let recs = records::tests::sample_records(n, 1000);
        let meta = records::BatchMeta {
            producer_id: pid,
            producer_epoch: 0,
            base_sequence: 0,
            transactional: true,
            ..records::tests::meta()
        };
        let b = encode_batch(&meta, &recs, Codec::None, 0).unwrap();
        validate_produce(&Bytes::from(b), 1 << 20).unwrap()
    }

    fn durable(log: &mut PartitionLog, base: i64, last: i64) {
        assert!(log.on_durable(seg(base, last)));
    }

    /// The LSO stays at an open transaction's first offset until its marker is durable; an
    /// aborted transaction is listed for read_committed reads that overlap it; reads stop at
    /// the bound they are given.
    #[test]
    fn transactions_bound_the_last_stable_offset() {
        let mut log = PartitionLog::new(TopicPartition::new("t", 0), vec![]);
        log.assign(&batch(2)); // 0-1, not transactional
        log.assign(&txn_batch(7, 3)); // 2-4
        log.assign(&txn_batch(8, 1)); // 5
        durable(&mut log, 0, 5);
        assert_eq!(log.last_stable_offset(), 2);
        match log.read(0, 1 << 20, 2).unwrap() {
            ReadPlan::Hot(b) => assert_eq!(b.len(), 1, "only the batch below the LSO"),
            p => panic!("{p:?}"),
        }
        assert!(matches!(log.read(2, 1 << 20, 2).unwrap(), ReadPlan::Hot(v) if v.is_empty()));
        // The ABORT marker of 7 is appended but not durable: nothing changes yet.
        let m = records::marker_batch(7, 0, false, 0, 1000).unwrap();
        let (at, _, _) = log.assign(&m);
        assert_eq!(at, 6);
        assert_eq!(log.last_stable_offset(), 2);
        durable(&mut log, 6, 6);
        assert_eq!(log.last_stable_offset(), 5, "8's transaction is still open");
        assert_eq!(
            log.aborted_in(0, 7),
            vec![Aborted {
                producer_id: 7,
                first_offset: 2,
                last_offset: 6
            }]
        );
        let m = records::marker_batch(8, 0, true, 0, 1000).unwrap();
        log.assign(&m);
        durable(&mut log, 7, 7);
        assert_eq!(log.last_stable_offset(), 8);
        assert!(log.aborted_in(7, 8).is_empty());
        // A failed write forgets the transactions and markers it would have written.
        log.assign(&txn_batch(9, 1)); // 8
        assert_eq!(log.last_stable_offset(), 8);
        log.on_failed(8, "boom");
        log.assign(&batch(1)); // 8 again, plain
        durable(&mut log, 8, 8);
        assert_eq!(log.last_stable_offset(), 9);
        // DeleteRecords past an aborted transaction forgets it.
        log.delete_records(7).unwrap();
        assert!(log.aborted_in(0, 9).is_empty());
    }

    fn seg(base: i64, last: i64) -> SegmentMeta {
        SegmentMeta {
            base,
            last,
            path: format!("s{base}"),
            size: 100,
            max_timestamp: Some(1000 + last),
            written_ms: 0,
            wal: None,
        }
    }

    #[test]
    fn offsets_are_dense_and_invisible_until_durable() {
        let mut log = PartitionLog::new(TopicPartition::new("t", 0), vec![]);
        let (b0, l0, bytes) = log.assign(&batch(3));
        assert_eq!((b0, l0), (0, 2));
        assert_eq!(&bytes[0..8], &0i64.to_be_bytes());
        let (b1, l1, bytes1) = log.assign(&batch(2));
        assert_eq!((b1, l1), (3, 4));
        assert_eq!(&bytes1[0..8], &3i64.to_be_bytes());
        assert!(
            matches!(log.read(0, 1 << 20, i64::MAX).unwrap(), ReadPlan::Hot(v) if v.is_empty())
        );
        let (tx, mut rx) = oneshot::channel();
        log.add_waiter(0, 2, tx);
        assert!(log.on_durable(seg(0, 2)));
        log.release_acknowledged();
        assert_eq!(rx.try_recv().unwrap().unwrap().base_offset, 0);
        assert_eq!(log.high_watermark(), 3);
        match log.read(0, 1 << 20, i64::MAX).unwrap() {
            ReadPlan::Hot(v) => assert_eq!(v.len(), 1, "only the durable batch is visible"),
            p => panic!("{p:?}"),
        }
        assert!(
            log.read(4, 1, i64::MAX).is_err(),
            "beyond the high watermark is out of range"
        );
    }

    #[test]
    fn failed_write_fails_waiters_and_reuses_offsets() {
        let mut log = PartitionLog::new(TopicPartition::new("t", 0), vec![]);
        log.assign(&batch(3));
        let (tx, mut rx) = oneshot::channel();
        log.add_waiter(0, 2, tx);
        log.on_failed(0, "disk on fire");
        assert!(rx.try_recv().unwrap().is_err());
        assert_eq!(log.next_offset(), 0);
        assert_eq!(log.hot_bytes(), 0);
        let (b, _, _) = log.assign(&batch(1));
        assert_eq!(b, 0);
    }

    #[test]
    fn recovered_segments_set_offsets_and_cold_reads() {
        let log = PartitionLog::new(TopicPartition::new("t", 0), vec![seg(10, 19), seg(20, 29)]);
        assert_eq!(
            (log.log_start(), log.high_watermark(), log.next_offset()),
            (10, 30, 30)
        );
        match log.read(25, 1 << 20, i64::MAX).unwrap() {
            ReadPlan::Cold(s) => assert_eq!(s[0].base, 20),
            p => panic!("{p:?}"),
        }
        assert!(log.read(9, 100, i64::MAX).is_err());
    }

    #[test]
    fn merge_plans_oldest_small_run_and_swaps_index() {
        let segs: Vec<_> = (0..6).map(|i| seg(i * 10, i * 10 + 9)).collect();
        let mut log = PartitionLog::new(TopicPartition::new("t", 0), segs);
        assert!(
            log.plan_merge(1000, 6).is_none(),
            "the newest segment is never merged"
        );
        let run = log.plan_merge(300, 2).unwrap();
        assert_eq!(
            run.iter().map(|s| s.base).collect::<Vec<_>>(),
            vec![0, 10, 20]
        );
        let merged = SegmentMeta {
            base: 0,
            last: 29,
            path: "m".into(),
            size: 250,
            max_timestamp: Some(1029),
            written_ms: 0,
            wal: None,
        };
        assert!(log.apply_merge(&run, merged.clone()));
        assert_eq!(log.segments().count(), 4);
        assert!(!log.apply_merge(&run, merged), "inputs gone: refused");
        match log.read(15, 1 << 20, i64::MAX).unwrap() {
            ReadPlan::Cold(s) => assert_eq!(s[0].path, "m"),
            p => panic!("{p:?}"),
        }
    }

    #[test]
    fn retention_keeps_newest_and_moves_log_start() {
        let mut log = PartitionLog::new(
            TopicPartition::new("t", 0),
            vec![seg(0, 9), seg(10, 19), seg(20, 29)],
        );
        let removed = log.apply_retention(1_000_000, 10, -1);
        assert_eq!(removed.len(), 2);
        assert_eq!(log.log_start(), 20);
        let mut log = PartitionLog::new(TopicPartition::new("t", 0), vec![seg(0, 9), seg(10, 19)]);
        assert_eq!(log.apply_retention(0, -1, 100).len(), 1);
        assert_eq!(log.log_start(), 10);
    }

    fn wal_part(base: i64, last: i64) -> SegmentMeta {
        SegmentMeta {
            base,
            last,
            path: format!("wal/{base}.parquet"),
            size: 10,
            max_timestamp: None,
            written_ms: 0,
            wal: Some(crate::storage::writer::WalSlice {
                first_group: 0,
                groups: 1,
                object_size: 10,
            }),
        }
    }

    /// The compactor's output replaces exactly the parts it read, and nothing if one of them
    /// left the index meanwhile (retention).
    #[test]
    fn compaction_swaps_only_parts_still_indexed() {
        let segs = vec![seg(0, 9), wal_part(10, 19), wal_part(20, 29)];
        let mut log = PartitionLog::new(TopicPartition::new("t", 0), segs);
        let out = seg(10, 29);
        assert!(!log.apply_compaction(&[wal_part(10, 19), wal_part(20, 30)], out.clone()));
        assert!(log.apply_compaction(&[wal_part(10, 19), wal_part(20, 29)], out.clone()));
        let left: Vec<(i64, i64, bool)> = log
            .segments()
            .map(|s| (s.base, s.last, s.wal.is_some()))
            .collect();
        assert_eq!(left, vec![(0, 9, false), (10, 29, false)]);
        assert!(
            !log.apply_compaction(&[wal_part(10, 19)], out),
            "already swapped"
        );
    }

    /// Cleaning waits for the dirty ratio (or max lag), never takes records younger than the
    /// minimum lag, and runs again when kept tombstones expire.
    #[test]
    fn cleaning_follows_dirty_ratio_and_lags() {
        let mut segs = vec![seg(0, 9), seg(10, 19)];
        segs[0].path = "p/00000000000000000000-00000000000000000009.c5.parquet".into();
        for s in segs.iter_mut() {
            s.size = 100;
            s.max_timestamp = Some(1_000);
        }
        let log = PartitionLog::new(TopicPartition::new("t", 0), segs);
        let policy = CompactPolicy {
            delete_retention_ms: 100,
            min_lag_ms: 0,
            max_lag_ms: i64::MAX,
            min_dirty_ratio: 0.5,
        };
        assert_eq!(
            log.plan_clean(2_000, &policy, None).unwrap().len(),
            2,
            "half dirty"
        );
        let picky = CompactPolicy {
            min_dirty_ratio: 0.9,
            ..policy
        };
        assert!(log.plan_clean(2_000, &picky, None).is_none());
        let overdue = CompactPolicy {
            max_lag_ms: 500,
            ..picky
        };
        assert!(log.plan_clean(2_000, &overdue, None).is_some(), "max lag");
        let lagging = CompactPolicy {
            min_lag_ms: 5_000,
            ..policy
        };
        assert!(log.plan_clean(2_000, &lagging, None).is_none(), "too young");
        assert!(
            log.plan_clean(2_000, &picky, Some(1_500)).is_some(),
            "tombstones expire"
        );
        assert!(log.plan_clean(2_000, &picky, Some(2_500)).is_none());
    }
}
