//! Transaction state of one partition log, as Kafka's `ProducerStateManager` and
//! `TransactionIndex` keep it: the first offset of every open transaction (which bounds the
//! last stable offset), and the aborted transactions (producer id, first offset, offset of
//! the ABORT marker) that a read_committed Fetch lists so the client drops their records.
//!
//! A plain structure: the partition leader feeds it transactional batches and control
//! markers as it appends them, and asks it for the LSO and for the aborted transactions
//! overlapping a fetched range.

use std::collections::{BTreeMap, HashMap};

/// An aborted transaction as FetchResponse's `aborted_transactions` lists it (Kafka also
/// keeps `last_offset`, the ABORT marker's offset, to bound the index lookups).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aborted {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Default)]
pub struct PartitionTransactions {
    /// Open transactions: producer id → first offset.
    open: HashMap<i64, i64>,
    /// The same, by first offset (several producers cannot share one offset).
    by_first: BTreeMap<i64, i64>,
    /// Aborted transactions ordered by the marker's offset.
    aborted: Vec<Aborted>,
}

impl PartitionTransactions {
    /// A transactional batch of `producer_id` was appended at `base`: it opens the producer's
    /// transaction if none is open.
    pub fn on_transactional_batch(&mut self, producer_id: i64, base: i64) {
        if let std::collections::hash_map::Entry::Vacant(e) = self.open.entry(producer_id) {
            e.insert(base);
            self.by_first.insert(base, producer_id);
        }
    }

    /// A COMMIT or ABORT marker of `producer_id` at `offset` is durable (call it then, not at
    /// append: until the marker is acknowledged the transaction's records stay above the
    /// LSO): the transaction is closed; an aborted one is remembered for read_committed fetches. A marker without an
    /// open transaction (a retried marker, or a transaction that wrote nothing here) changes
    /// nothing.
    pub fn on_marker(&mut self, producer_id: i64, offset: i64, commit: bool) {
        let Some(first) = self.open.remove(&producer_id) else {
            return;
        };
        self.by_first.remove(&first);
        if !commit {
            self.aborted.push(Aborted {
                producer_id,
                first_offset: first,
                last_offset: offset,
            });
        }
    }

    /// Every open transaction here: (producer id, first offset), oldest first.
    pub fn open_transactions(&self) -> Vec<(i64, i64)> {
        self.by_first
            .iter()
            .map(|(first, pid)| (*pid, *first))
            .collect()
    }

    /// First offset of `producer_id`'s open transaction here, if one is open.
    pub fn open_since(&self, producer_id: i64) -> Option<i64> {
        self.open.get(&producer_id).copied()
    }

    /// Is a transaction of `producer_id` open here?
    pub fn is_open(&self, producer_id: i64) -> bool {
        self.open.contains_key(&producer_id)
    }

    /// The last stable offset: the first offset of the oldest open transaction, or the high
    /// watermark when none is open.
    pub fn last_stable_offset(&self, high_watermark: i64) -> i64 {
        self.by_first
            .keys()
            .next()
            .map_or(high_watermark, |&first| first.min(high_watermark))
    }

    /// Aborted transactions a read_committed fetch of `[from, to)` must list: those whose
    /// records may fall in the range (first offset before `to`, marker at or after `from`).
    pub fn aborted_in(&self, from: i64, to: i64) -> Vec<Aborted> {
        // Markers are ordered: skip those before the range.
        let start = self.aborted.partition_point(|a| a.last_offset < from);
        self.aborted[start..]
            .iter()
            .filter(|a| a.first_offset < to)
            .copied()
            .collect()
    }

    /// Forget aborted transactions wholly before `log_start` (retention or DeleteRecords
    /// removed their records); an open transaction starting before it keeps its place.
    pub fn truncate_before(&mut self, log_start: i64) {
        self.aborted.retain(|a| a.last_offset >= log_start);
    }

    /// Forget transactions opened at or after `offset` (a write that failed before it was
    /// acknowledged). Markers are only applied once durable, so none is undone here.
    pub fn truncate_from(&mut self, offset: i64) {
        let gone: Vec<i64> = self.by_first.range(offset..).map(|(_, &p)| p).collect();
        for p in gone {
            if let Some(first) = self.open.remove(&p) {
                self.by_first.remove(&first);
            }
        }
        self.aborted.retain(|a| a.last_offset < offset);
    }

    pub fn open_count(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lso_stops_at_the_oldest_open_transaction() {
        let mut t = PartitionTransactions::default();
        assert_eq!(t.last_stable_offset(10), 10);
        t.on_transactional_batch(1, 10);
        t.on_transactional_batch(2, 12);
        t.on_transactional_batch(1, 14); // same transaction
        assert_eq!(t.last_stable_offset(20), 10);
        t.on_marker(1, 20, true);
        assert_eq!(t.last_stable_offset(21), 12);
        t.on_marker(2, 21, false);
        assert_eq!(t.last_stable_offset(22), 22);
        assert_eq!(t.open_count(), 0);
        // A retried marker changes nothing.
        t.on_marker(2, 22, false);
        assert_eq!(t.aborted_in(0, 100).len(), 1);
    }

    #[test]
    fn aborted_transactions_overlapping_a_fetch_are_listed() {
        let mut t = PartitionTransactions::default();
        t.on_transactional_batch(1, 0);
        t.on_marker(1, 5, false);
        t.on_transactional_batch(2, 6);
        t.on_marker(2, 8, true);
        t.on_transactional_batch(3, 9);
        t.on_marker(3, 15, false);
        let ids = |v: Vec<Aborted>| v.iter().map(|a| a.producer_id).collect::<Vec<_>>();
        assert_eq!(ids(t.aborted_in(0, 6)), vec![1]);
        assert_eq!(ids(t.aborted_in(6, 9)), Vec::<i64>::new());
        assert_eq!(ids(t.aborted_in(4, 10)), vec![1, 3]);
        assert_eq!(ids(t.aborted_in(16, 20)), Vec::<i64>::new());
        t.truncate_before(6);
        assert_eq!(ids(t.aborted_in(0, 100)), vec![3]);
    }

    #[test]
    fn a_failed_write_is_forgotten() {
        let mut t = PartitionTransactions::default();
        t.on_transactional_batch(1, 0);
        t.on_transactional_batch(2, 5);
        t.truncate_from(5);
        assert!(t.is_open(1) && !t.is_open(2));
        assert_eq!(t.last_stable_offset(5), 0);
    }
}
