//! Write-ahead objects: one object per flush holding the batches of every partition the
//! SegmentWriter had buffered (`wal/{seq:020}.parquet`, see [`super::segment::WalEncoder`]),
//! and the [`WalIndex`] that knows which partitions still need each object.
//!
//! A partition's index entry for offsets in such an object is a [`SegmentMeta`] with a
//! [`WalSlice`] (its row groups). The compactor rewrites those offsets into the per-partition
//! table layout; retention, DeleteRecords and topic deletion drop them. Each of these
//! *releases* the partition's part of the object, and the object is deleted once no part of
//! it is live.
//!
//! Restart must not read every object's footer: the index is checkpointed to
//! [`CHECKPOINT_PATH`] (periodically and at shutdown), and recovery reads the footers of only
//! the objects the checkpoint does not know ([`plan_recovery`] then decides what each part
//! is). A stale checkpoint is safe: LIST decides which objects exist, and a part is only ever
//! accepted where it continues its partition's log.

use super::segment::WalPart;
use super::writer::{SegmentMeta, WalSlice};
use crate::log::TopicPartition;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Where the index checkpoint lives (standalone mode).
pub const CHECKPOINT_PATH: &str = "meta/wal-index.json";

/// Prefix of write-ahead objects.
pub const WAL_PREFIX: &str = "wal/";

/// `wal/{seq:020}.parquet`
pub fn wal_path(seq: u64) -> String {
    format!("{WAL_PREFIX}{seq:020}.parquet")
}

/// The sequence number of a write-ahead object path.
pub fn parse_wal_path(path: &str) -> Option<u64> {
    path.strip_prefix(WAL_PREFIX)?
        .strip_suffix(".parquet")?
        .parse()
        .ok()
}

/// A write-ahead object as the checkpoint records it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WalObjectDoc {
    pub seq: u64,
    pub size: u64,
    pub written_ms: i64,
    pub parts: Vec<WalPart>,
    /// Indexes into `parts` of the parts no partition needs any more.
    #[serde(default)]
    pub released: Vec<u32>,
}

/// The checkpoint document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointDoc {
    pub version: u32,
    pub next_seq: u64,
    pub objects: Vec<WalObjectDoc>,
}

#[derive(Debug, Clone)]
struct WalObject {
    size: u64,
    written_ms: i64,
    parts: Vec<WalPart>,
    /// Per part: still needed. Parts of a topic with neither metadata nor a deletion record
    /// stay live (never deleted on a guess, and never recorded as released).
    live: Vec<bool>,
    /// Per part: rewritten into the table and swapped in its leader's index, released after a
    /// grace period; not offered to the compactor again.
    compacted: Vec<bool>,
}

impl WalObject {
    fn is_dead(&self) -> bool {
        self.live.iter().all(|l| !l)
    }
}

/// Which write-ahead objects exist and which of their parts are still needed.
#[derive(Debug, Default)]
pub struct WalIndex {
    objects: BTreeMap<u64, WalObject>,
    next_seq: u64,
    dirty: bool,
    /// Cluster mode: `{node}-{incarnation}-` before the sequence number in object names.
    name_prefix: String,
}

impl WalIndex {
    /// An index whose next object is number `next_seq`.
    pub fn new(next_seq: u64) -> WalIndex {
        WalIndex {
            next_seq,
            ..Default::default()
        }
    }

    /// Cluster mode: objects named `wal/{prefix}{seq:020}.parquet`, the prefix naming the
    /// broker and its incarnation (the committed index in the metadata store, not this
    /// index, says which objects are live there).
    pub fn with_prefix(prefix: String) -> WalIndex {
        WalIndex {
            name_prefix: prefix,
            ..Default::default()
        }
    }

    /// The number and path of the next object to write.
    pub fn allocate(&mut self) -> (u64, String) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.name_prefix.is_empty() {
            (seq, wal_path(seq))
        } else {
            (
                seq,
                format!("{WAL_PREFIX}{}{seq:020}.parquet", self.name_prefix),
            )
        }
    }

    /// A written object: every part is live. `live`, when given, says otherwise per part
    /// (recovery).
    pub fn add(
        &mut self,
        seq: u64,
        size: u64,
        written_ms: i64,
        parts: Vec<WalPart>,
        live: Option<Vec<bool>>,
    ) {
        let live = live.unwrap_or_else(|| vec![true; parts.len()]);
        let compacted = vec![false; parts.len()];
        self.next_seq = self.next_seq.max(seq + 1);
        self.objects.insert(
            seq,
            WalObject {
                size,
                written_ms,
                parts,
                live,
                compacted,
            },
        );
        self.dirty = true;
    }

    /// A partition no longer needs its part of `path` that starts at `base`. Returns the path
    /// when the object is no longer needed at all (the caller deletes it).
    pub fn release(&mut self, path: &str, tp: &TopicPartition, base: i64) -> Option<String> {
        let seq = parse_wal_path(path)?;
        let obj = self.objects.get_mut(&seq)?;
        let id = super::hex_id(&tp.topic_id);
        for (i, p) in obj.parts.iter().enumerate() {
            if p.partition == tp.partition && p.base == base && p.topic_id == id {
                obj.live[i] = false;
                self.dirty = true;
            }
        }
        if obj.is_dead() {
            self.objects.remove(&seq);
            return Some(path.to_string());
        }
        None
    }

    /// The compactor rewrote a part and its leader swapped it: not offered again.
    pub fn mark_compacted(&mut self, path: &str, tp: &TopicPartition, base: i64) {
        let Some(obj) = parse_wal_path(path).and_then(|seq| self.objects.get_mut(&seq)) else {
            return;
        };
        let id = super::hex_id(&tp.topic_id);
        for (i, p) in obj.parts.iter().enumerate() {
            if p.partition == tp.partition && p.base == base && p.topic_id == id {
                obj.compacted[i] = true;
            }
        }
    }

    /// A topic was deleted: release all its parts. Returns the objects no longer needed.
    pub fn release_topic(&mut self, topic_id: &[u8; 16]) -> Vec<String> {
        let id = super::hex_id(topic_id);
        let mut dead = Vec::new();
        for (seq, obj) in self.objects.iter_mut() {
            for (i, p) in obj.parts.iter().enumerate() {
                if p.topic_id == id && obj.live[i] {
                    obj.live[i] = false;
                    self.dirty = true;
                }
            }
            if obj.is_dead() {
                dead.push(*seq);
            }
        }
        for seq in &dead {
            self.objects.remove(seq);
        }
        dead.into_iter().map(wal_path).collect()
    }

    /// The oldest objects written before `cutoff_ms` (up to `budget` bytes, at least one),
    /// with their live parts: what the compactor rewrites next.
    pub fn due(&self, cutoff_ms: i64, budget: u64) -> Vec<DueObject> {
        let mut out = Vec::new();
        let mut total = 0u64;
        for (seq, o) in &self.objects {
            if o.written_ms > cutoff_ms || (!out.is_empty() && total + o.size > budget) {
                break;
            }
            total += o.size;
            out.push(DueObject {
                path: wal_path(*seq),
                size: o.size,
                written_ms: o.written_ms,
                parts: o
                    .parts
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| o.live[*i] && !o.compacted[*i])
                    .map(|(_, p)| p.clone())
                    .collect(),
            });
        }
        out
    }

    /// Objects held and their total size.
    pub fn stats(&self) -> (usize, u64) {
        (
            self.objects.len(),
            self.objects.values().map(|o| o.size).sum(),
        )
    }

    /// The checkpoint document, if anything changed since the last one taken.
    pub fn take_checkpoint(&mut self) -> Option<Bytes> {
        if !self.dirty {
            return None;
        }
        self.dirty = false;
        Some(self.checkpoint())
    }

    /// Something changed since the checkpoint was taken but it could not be written.
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    pub fn checkpoint(&self) -> Bytes {
        let doc = CheckpointDoc {
            version: 1,
            next_seq: self.next_seq,
            objects: self
                .objects
                .iter()
                .map(|(seq, o)| WalObjectDoc {
                    seq: *seq,
                    size: o.size,
                    written_ms: o.written_ms,
                    parts: o.parts.clone(),
                    released: (0..o.parts.len() as u32)
                        .filter(|&i| !o.live[i as usize])
                        .collect(),
                })
                .collect(),
        };
        Bytes::from(serde_json::to_vec(&doc).unwrap_or_default())
    }
}

/// A write-ahead object the compactor should rewrite, with its live parts.
#[derive(Debug, Clone)]
pub struct DueObject {
    pub path: String,
    pub size: u64,
    pub written_ms: i64,
    pub parts: Vec<WalPart>,
}

impl DueObject {
    /// The index entry a leader holds for one of its parts.
    pub fn entry(&self, p: &WalPart) -> SegmentMeta {
        SegmentMeta {
            base: p.base,
            last: p.last,
            path: self.path.clone(),
            size: p.bytes,
            max_timestamp: Some(p.max_timestamp),
            written_ms: self.written_ms,
            wal: Some(WalSlice {
                first_group: p.first_group,
                groups: p.groups,
                object_size: self.size,
            }),
        }
    }
}

/// Per partition, the consecutive run of its parts in `objects` (oldest first): what one
/// compacted segment holds. Parts after a break in offsets wait for a later batch.
pub fn partition_runs(objects: &[DueObject]) -> Vec<(TopicPartition, Vec<SegmentMeta>)> {
    let mut runs: BTreeMap<(String, i32), (TopicPartition, Vec<SegmentMeta>, bool)> =
        BTreeMap::new();
    for o in objects {
        for p in &o.parts {
            let Ok(id) = uuid::Uuid::parse_str(&p.topic_id).map(|u| *u.as_bytes()) else {
                continue;
            };
            let e = runs
                .entry((p.topic_id.clone(), p.partition))
                .or_insert_with(|| {
                    (
                        TopicPartition::with_id(&p.topic, id, p.partition),
                        Vec::new(),
                        false,
                    )
                });
            let continues =
                e.1.last()
                    .is_none_or(|l: &SegmentMeta| l.last + 1 == p.base);
            if e.2 || !continues {
                e.2 = true;
                continue;
            }
            e.1.push(o.entry(p));
        }
    }
    runs.into_values().map(|(tp, run, _)| (tp, run)).collect()
}

/// Who a part belongs to, as recovery sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// A live topic with this many partitions.
    Live(i32),
    /// A deleted topic (tombstone): its parts are garbage.
    Deleted,
    /// Neither metadata nor a tombstone: kept, never guessed to be garbage.
    Unknown,
}

/// What recovery decided.
#[derive(Debug, Default)]
pub struct RecoveryPlan {
    /// Index entries to append after each partition's segments, by (topic id, partition).
    pub parts: HashMap<([u8; 16], i32), Vec<SegmentMeta>>,
    /// Objects still needed, with per-part liveness, for the [`WalIndex`].
    pub keep: Vec<(WalObjectDoc, Vec<bool>)>,
    /// Objects no partition needs (compacted, released, or of deleted topics): delete.
    pub orphans: Vec<String>,
}

/// Decide, for every part of every listed write-ahead object (sorted by sequence), whether it
/// continues its partition's log. `next` holds, per partition, the offset after its last
/// table-layout segment (absent: no segments). A part is accepted only where its base is
/// exactly the partition's next offset (or it is the partition's first data): parts already
/// covered by a segment (compacted), released in the checkpoint, past a gap (a flush that
/// never completed, so never acknowledged) or of deleted topics are not.
pub fn plan_recovery(
    objects: Vec<WalObjectDoc>,
    mut next: HashMap<([u8; 16], i32), i64>,
    owner: impl Fn(&[u8; 16]) -> Owner,
) -> RecoveryPlan {
    let mut plan = RecoveryPlan::default();
    let mut objects = objects;
    objects.sort_by_key(|o| o.seq);
    for obj in objects {
        let released: HashSet<u32> = obj.released.iter().copied().collect();
        let mut live = vec![false; obj.parts.len()];
        for (i, p) in obj.parts.iter().enumerate() {
            let Ok(id) = uuid::Uuid::parse_str(&p.topic_id).map(|u| *u.as_bytes()) else {
                live[i] = true;
                continue;
            };
            match owner(&id) {
                Owner::Deleted => continue,
                Owner::Live(n) if p.partition >= 0 && p.partition < n => {}
                // Not served, but kept (and not recorded as released): the topic's document
                // may come back.
                Owner::Unknown | Owner::Live(_) => {
                    live[i] = !released.contains(&(i as u32));
                    continue;
                }
            }
            if released.contains(&(i as u32)) || p.last < p.base {
                continue;
            }
            let key = (id, p.partition);
            let accept = match next.get(&key) {
                None => true,
                Some(&n) if p.base == n => true,
                Some(&n) => {
                    if p.base > n {
                        tracing::warn!(
                            "{}: {}-{} in {} follows a gap after {}: never acknowledged, dropped",
                            p.topic,
                            p.base,
                            p.last,
                            wal_path(obj.seq),
                            n - 1
                        );
                    }
                    false
                }
            };
            if !accept {
                continue;
            }
            next.insert(key, p.last + 1);
            live[i] = true;
            plan.parts.entry(key).or_default().push(SegmentMeta {
                base: p.base,
                last: p.last,
                path: wal_path(obj.seq),
                size: p.bytes,
                max_timestamp: Some(p.max_timestamp),
                written_ms: obj.written_ms,
                wal: Some(WalSlice {
                    first_group: p.first_group,
                    groups: p.groups,
                    object_size: obj.size,
                }),
            });
        }
        if live.iter().any(|l| *l) {
            plan.keep.push((obj, live));
        } else {
            plan.orphans.push(wal_path(obj.seq));
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(id: u8, p: i32, base: i64, last: i64) -> WalPart {
        WalPart {
            topic: "t".into(),
            topic_id: super::super::hex_id(&[id; 16]),
            partition: p,
            base,
            last,
            first_group: 0,
            groups: 1,
            bytes: 10,
            max_timestamp: 0,
        }
    }

    fn obj(seq: u64, parts: Vec<WalPart>) -> WalObjectDoc {
        WalObjectDoc {
            seq,
            size: 100,
            written_ms: 0,
            parts,
            released: vec![],
        }
    }

    #[test]
    fn paths_round_trip() {
        assert_eq!(wal_path(7), "wal/00000000000000000007.parquet");
        assert_eq!(parse_wal_path(&wal_path(7)), Some(7));
        assert_eq!(parse_wal_path("wal/x.parquet"), None);
    }

    #[test]
    fn an_object_is_dead_once_every_part_is_released() {
        let mut w = WalIndex::new(0);
        let (seq, path) = w.allocate();
        w.add(seq, 100, 0, vec![part(1, 0, 0, 9), part(1, 1, 0, 4)], None);
        let tp0 = TopicPartition::with_id("t", [1; 16], 0);
        let tp1 = TopicPartition::with_id("t", [1; 16], 1);
        assert_eq!(w.release(&path, &tp0, 0), None);
        assert_eq!(w.release(&path, &tp0, 5), None, "no such part");
        assert_eq!(w.release(&path, &tp1, 0), Some(path.clone()));
        assert_eq!(w.stats(), (0, 0));
        let (seq, path) = w.allocate();
        assert_eq!(seq, 1);
        w.add(seq, 100, 0, vec![part(2, 0, 0, 9), part(3, 0, 0, 4)], None);
        assert!(w.release_topic(&[2; 16]).is_empty());
        assert_eq!(w.release_topic(&[3; 16]), vec![path]);
    }

    #[test]
    fn checkpoint_round_trips_released_parts() {
        let mut w = WalIndex::new(5);
        w.add(5, 100, 1, vec![part(1, 0, 0, 9), part(1, 1, 0, 4)], None);
        w.release(&wal_path(5), &TopicPartition::with_id("t", [1; 16], 1), 0);
        let doc: CheckpointDoc = serde_json::from_slice(&w.take_checkpoint().unwrap()).unwrap();
        assert!(w.take_checkpoint().is_none(), "nothing changed since");
        assert_eq!(doc.next_seq, 6);
        assert_eq!(doc.objects[0].released, vec![1]);
    }

    #[test]
    fn recovery_accepts_parts_that_continue_the_log_only() {
        let live = |id: &[u8; 16]| match id[0] {
            1 => Owner::Live(2),
            2 => Owner::Deleted,
            _ => Owner::Unknown,
        };
        // Partition 0 has segments up to offset 99.
        let next = HashMap::from([(([1; 16], 0), 100)]);
        let objects = vec![
            // Compacted already (covered by the segment): not accepted.
            obj(1, vec![part(1, 0, 50, 99), part(2, 0, 0, 5)]),
            obj(2, vec![part(1, 0, 100, 149), part(1, 1, 0, 9)]),
            // A gap: 150..159 never became durable, so 160.. was never acknowledged.
            obj(4, vec![part(1, 0, 160, 170)]),
            // The retried write of 150.. after the failure.
            obj(5, vec![part(1, 0, 150, 155), part(9, 0, 0, 1)]),
        ];
        let plan = plan_recovery(objects, next, live);
        let p0: Vec<(i64, i64)> = plan.parts[&([1; 16], 0)]
            .iter()
            .map(|s| (s.base, s.last))
            .collect();
        assert_eq!(p0, vec![(100, 149), (150, 155)]);
        assert_eq!(plan.parts[&([1; 16], 1)].len(), 1);
        assert!(!plan.parts.contains_key(&([2; 16], 0)), "deleted topic");
        assert_eq!(plan.orphans, vec![wal_path(1), wal_path(4)]);
        let kept: Vec<(u64, Vec<bool>)> =
            plan.keep.iter().map(|(o, l)| (o.seq, l.clone())).collect();
        // The unknown topic's part stays live (kept, and never checkpointed as released).
        assert_eq!(kept, vec![(2, vec![true, true]), (5, vec![true, true])]);
        let s = &plan.parts[&([1; 16], 0)][0];
        assert_eq!(
            s.wal,
            Some(WalSlice {
                first_group: 0,
                groups: 1,
                object_size: 100
            })
        );
    }

    #[test]
    fn released_parts_stay_released() {
        let mut o = obj(1, vec![part(1, 0, 0, 9)]);
        o.released = vec![0];
        let plan = plan_recovery(vec![o], HashMap::new(), |_| Owner::Live(1));
        assert!(plan.parts.is_empty());
        assert_eq!(plan.orphans, vec![wal_path(1)]);
    }

    #[test]
    fn due_objects_are_the_oldest_within_a_budget_and_runs_are_per_partition() {
        let mut w = WalIndex::new(0);
        w.add(0, 100, 10, vec![part(1, 0, 0, 9), part(1, 1, 0, 4)], None);
        w.add(1, 100, 20, vec![part(1, 0, 10, 19)], None);
        w.add(2, 100, 30, vec![part(1, 0, 20, 29)], None);
        assert!(w.due(5, 1000).is_empty(), "nothing old enough");
        let due = w.due(25, 1000);
        assert_eq!(due.len(), 2);
        assert_eq!(w.due(100, 150).len(), 1, "budget");
        w.release(&wal_path(0), &TopicPartition::with_id("t", [1; 16], 1), 0);
        let due = w.due(25, 1000);
        assert_eq!(due[0].parts.len(), 1, "released parts are not rewritten");
        let runs = partition_runs(&due);
        assert_eq!(runs.len(), 1);
        let (tp, run) = &runs[0];
        assert_eq!(tp.partition, 0);
        let ranges: Vec<(i64, i64)> = run.iter().map(|s| (s.base, s.last)).collect();
        assert_eq!(ranges, vec![(0, 9), (10, 19)]);
        assert_eq!(run[1].path, wal_path(1));
        assert_eq!(run[1].wal.unwrap().object_size, 100);
        let tp0 = TopicPartition::with_id("t", [1; 16], 0);
        w.mark_compacted(&wal_path(0), &tp0, 0);
        assert!(
            w.due(25, 1000)[0].parts.is_empty(),
            "swapped parts are not offered again"
        );
    }
}
