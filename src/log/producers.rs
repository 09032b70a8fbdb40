//! Idempotent-producer state of one partition: per producer id, its epoch and the sequence
//! ranges and offsets of its last five batches (as Kafka keeps), so a retried batch gets its
//! original offset and is stored once, a gap is OUT_OF_ORDER_SEQUENCE_NUMBER, and an older epoch
//! is INVALID_PRODUCER_EPOCH. Rebuilt from the newest segments at start-up.

use crate::error::Error;
use std::collections::{HashMap, VecDeque};

/// Batches remembered per producer (Kafka's `MAX_IN_FLIGHT_REQUESTS` for idempotence).
pub const REMEMBERED_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSeq {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base: i64,
    pub last: i64,
}

#[derive(Debug, Clone, Default)]
struct Entry {
    epoch: i16,
    batches: VecDeque<BatchSeq>,
    /// When this producer last appended (ms since the epoch; start-up counts as an append).
    last_ms: i64,
}

/// What to do with an incoming idempotent batch.
#[derive(Debug, PartialEq, Eq)]
pub enum SeqCheck {
    Append,
    /// A retry of a batch already appended at these offsets.
    Duplicate {
        base: i64,
        last: i64,
    },
    Reject(Error),
}

impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        self.code() == other.code()
    }
}
impl Eq for Error {}

fn next_seq(s: i32) -> i32 {
    if s == i32::MAX {
        0
    } else {
        s + 1
    }
}

/// Last sequence of a batch of `count` records starting at `first` (sequences wrap at i32::MAX).
pub fn last_seq(first: i32, count: i32) -> i32 {
    ((first as i64 + count as i64 - 1) % (i32::MAX as i64 + 1)) as i32
}

#[derive(Debug, Default)]
pub struct ProducerStates {
    map: HashMap<i64, Entry>,
}

impl ProducerStates {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn check(&self, pid: i64, epoch: i16, first_seq: i32, last_seq: i32) -> SeqCheck {
        let Some(e) = self.map.get(&pid) else {
            return SeqCheck::Append;
        };
        if epoch < e.epoch {
            return SeqCheck::Reject(Error::InvalidProducerEpoch(format!(
                "epoch {epoch} is older than the current epoch {}",
                e.epoch
            )));
        }
        if epoch > e.epoch {
            return if first_seq == 0 {
                SeqCheck::Append
            } else {
                SeqCheck::Reject(Error::OutOfOrderSequence(format!(
                    "a new epoch must start at sequence 0, got {first_seq}"
                )))
            };
        }
        if let Some(b) = e
            .batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
        {
            return SeqCheck::Duplicate {
                base: b.base,
                last: b.last,
            };
        }
        match e.batches.back() {
            None => SeqCheck::Append,
            Some(b) if next_seq(b.last_seq) == first_seq => SeqCheck::Append,
            Some(b) => SeqCheck::Reject(Error::OutOfOrderSequence(format!(
                "expected sequence {}, got {first_seq}",
                next_seq(b.last_seq)
            ))),
        }
    }

    /// Every producer the partition knows, by id: (producer id, epoch, last sequence or -1,
    /// time of its last write in ms), for DescribeProducers.
    pub fn describe(&self) -> Vec<(i64, i16, i32, i64)> {
        let mut out: Vec<_> = self
            .map
            .iter()
            .map(|(pid, e)| {
                let last_seq = e.batches.back().map_or(-1, |b| b.last_seq);
                (*pid, e.epoch, last_seq, e.last_ms)
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// The epoch the partition knows for producer `pid`.
    pub fn epoch_of(&self, pid: i64) -> Option<i16> {
        self.map.get(&pid).map(|e| e.epoch)
    }

    /// A transaction marker of `pid` at `epoch` was appended: batches of older epochs are
    /// refused from now on (INVALID_PRODUCER_EPOCH), and a newer epoch starts its sequences
    /// again at 0. A marker of the current epoch keeps the sequences (Kafka continues them
    /// across transactions).
    pub fn fence_older_than(&mut self, pid: i64, epoch: i16) {
        let e = self.map.entry(pid).or_default();
        e.last_ms = crate::storage::writer::now_ms();
        if epoch > e.epoch {
            e.epoch = epoch;
            e.batches.clear();
        }
    }

    pub fn record(&mut self, pid: i64, epoch: i16, b: BatchSeq) {
        self.record_at(pid, epoch, b, crate::storage::writer::now_ms());
    }

    /// [`Self::record`] at a given time.
    pub fn record_at(&mut self, pid: i64, epoch: i16, b: BatchSeq, now_ms: i64) {
        let e = self.map.entry(pid).or_default();
        e.last_ms = now_ms;
        if epoch != e.epoch || e.batches.is_empty() {
            if epoch > e.epoch || e.batches.is_empty() {
                e.batches.clear();
            }
            e.epoch = e.epoch.max(epoch);
        }
        e.batches.push_back(b);
        while e.batches.len() > REMEMBERED_BATCHES {
            e.batches.pop_front();
        }
    }

    /// Forget producers idle for longer than `ttl_ms` (Kafka's `producer.id.expiration.ms`)
    /// unless `keep` says otherwise (a producer with a transaction open here is kept, as in
    /// Kafka): their next batch is treated as a new producer's. Returns how many were
    /// forgotten.
    pub fn expire(&mut self, now_ms: i64, ttl_ms: i64, keep: impl Fn(i64) -> bool) -> usize {
        let before = self.map.len();
        self.map
            .retain(|pid, e| now_ms.saturating_sub(e.last_ms) <= ttl_ms || keep(*pid));
        before - self.map.len()
    }

    /// Forget batches at or after `offset` (their write failed).
    pub fn truncate_from(&mut self, offset: i64) {
        for e in self.map.values_mut() {
            while e.batches.back().is_some_and(|b| b.base >= offset) {
                e.batches.pop_back();
            }
        }
    }
}

#[cfg(test)]
mod expiry_tests {
    use super::*;

    #[test]
    fn describe_lists_epochs_and_last_sequences() {
        let mut s = ProducerStates::default();
        let b = |first_seq, last_seq, base| BatchSeq {
            first_seq,
            last_seq,
            base,
            last: base + (last_seq - first_seq) as i64,
        };
        s.record_at(9, 1, b(0, 4, 0), 100);
        s.record_at(9, 1, b(5, 9, 5), 200);
        s.record_at(3, 0, b(0, 0, 10), 300);
        s.fence_older_than(4, 2); // a marker of a producer with no batch here
        let d = s.describe();
        assert_eq!(d[0], (3, 0, 0, 300));
        assert_eq!((d[1].0, d[1].1, d[1].2), (4, 2, -1));
        assert_eq!(d[2], (9, 1, 9, 200));
    }

    /// Idempotent-producer state used to be kept forever, one entry per producer id ever seen.
    #[test]
    fn idle_producers_expire() {
        let mut s = ProducerStates::default();
        let b = BatchSeq {
            first_seq: 0,
            last_seq: 0,
            base: 0,
            last: 0,
        };
        s.record_at(1, 0, b, 1_000);
        s.record_at(2, 0, b, 5_000);
        assert_eq!(s.expire(6_000, 2_000, |_| false), 1);
        assert_eq!(s.len(), 1);
        assert_eq!(s.check(1, 0, 0, 0), SeqCheck::Append);
        assert_eq!(s.expire(100_000, 2_000, |_| false), 1);
        assert!(s.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(first: i32, last: i32, base: i64) -> BatchSeq {
        BatchSeq {
            first_seq: first,
            last_seq: last,
            base,
            last: base + (last - first) as i64,
        }
    }

    #[test]
    fn sequences_duplicates_gaps_and_epochs() {
        let mut s = ProducerStates::default();
        assert_eq!(s.check(7, 0, 0, 4), SeqCheck::Append);
        s.record(7, 0, b(0, 4, 100));
        assert_eq!(
            s.check(7, 0, 0, 4),
            SeqCheck::Duplicate {
                base: 100,
                last: 104
            }
        );
        assert_eq!(s.check(7, 0, 5, 9), SeqCheck::Append);
        assert!(matches!(
            s.check(7, 0, 7, 9),
            SeqCheck::Reject(Error::OutOfOrderSequence(_))
        ));
        s.record(7, 0, b(5, 9, 105));
        assert!(matches!(
            s.check(7, 1, 3, 3),
            SeqCheck::Reject(Error::OutOfOrderSequence(_))
        ));
        assert_eq!(s.check(7, 1, 0, 0), SeqCheck::Append);
        s.record(7, 1, b(0, 0, 110));
        assert!(matches!(
            s.check(7, 0, 10, 10),
            SeqCheck::Reject(Error::InvalidProducerEpoch(_))
        ));
    }

    #[test]
    fn only_five_batches_are_remembered_and_truncation_rolls_back() {
        let mut s = ProducerStates::default();
        for i in 0..7 {
            s.record(1, 0, b(i, i, i as i64));
        }
        assert_eq!(
            s.check(1, 0, 0, 0),
            SeqCheck::Reject(Error::OutOfOrderSequence(String::new()))
        );
        assert_eq!(
            s.check(1, 0, 6, 6),
            SeqCheck::Duplicate { base: 6, last: 6 }
        );
        s.truncate_from(5);
        assert_eq!(s.check(1, 0, 5, 5), SeqCheck::Append);
    }

    #[test]
    fn sequence_wraps() {
        assert_eq!(last_seq(i32::MAX, 2), 0);
        let mut s = ProducerStates::default();
        s.record(1, 0, b(i32::MAX - 1, i32::MAX, 0));
        assert_eq!(s.check(1, 0, 0, 3), SeqCheck::Append);
    }
}
