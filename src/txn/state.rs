//! The transaction coordinator's state of one transactional id (KIP-98, with KIP-360's epoch
//! bumps), as a plain state machine: every operation reads the current [`TxnMetadata`] and
//! answers either an error code or the next metadata, which the caller persists **before** it
//! answers the client or writes a marker (write-ahead, as Kafka's `__transaction_state` log).
//!
//! States and moves (Kafka's `TransactionState`):
//!
//! ```text
//! Empty ──AddPartitions──▶ Ongoing ──EndTxn(commit)──▶ PrepareCommit ──markers written──▶ CompleteCommit
//!   ▲                        │  └──EndTxn(abort) / timeout / fencing──▶ PrepareAbort ──▶ CompleteAbort
//!   └── InitProducerId ◀─────┴── (from Empty / Complete*: epoch + 1; from Ongoing: abort first)
//! ```
//!
//! `PrepareEpochFence` is Kafka's marker for "a new producer instance fenced the ongoing
//! transaction": here the abort is prepared directly with the bumped epoch, which is what that
//! state leads to. `Dead` is an expired transactional id, removed by the caller.

use std::collections::BTreeSet;

/// Kafka's `transaction.max.timeout.ms` default: the longest `transaction.timeout.ms` a
/// producer may ask for.
pub const MAX_TIMEOUT_MS: i32 = 15 * 60 * 1000;

/// Kafka's `transactional.id.expiration.ms` default: an id idle this long (in a final state) is
/// forgotten.
pub const ID_EXPIRATION_MS: i64 = 7 * 24 * 60 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    PrepareEpochFence,
    Dead,
}

impl TxnState {
    /// The name DescribeTransactions and ListTransactions answer (Kafka's `stateName`).
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
            TxnState::Dead => "Dead",
        }
    }

    /// Markers are being written: the client must wait (CONCURRENT_TRANSACTIONS).
    pub fn is_preparing(self) -> bool {
        matches!(
            self,
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence
        )
    }
}

/// The coordinator's record of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump: a producer retrying InitProducerId after a lost answer
    /// presents it (KIP-360) and gets the current one back.
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// Partitions in the transaction (topic, partition), sorted.
    pub partitions: BTreeSet<(String, i32)>,
    /// Consumer groups whose offsets the transaction commits (AddOffsetsToTxn).
    pub groups: BTreeSet<String>,
    /// When the ongoing transaction started (ms), -1 outside one.
    pub start_ms: i64,
    pub last_update_ms: i64,
}

/// What InitProducerId decided.
#[derive(Debug, PartialEq, Eq)]
pub enum InitOutcome {
    /// Persist `next`, then answer its producer id and epoch.
    Ready(TxnMetadata),
    /// An ongoing transaction must be aborted first (the new instance fences the old one):
    /// persist `next` (PrepareAbort under the bumped epoch), write the abort markers, complete
    /// it, and answer CONCURRENT_TRANSACTIONS so that the client retries.
    AbortFirst(TxnMetadata),
    Error(i16),
}

/// What EndTxn decided.
#[derive(Debug, PartialEq, Eq)]
pub enum EndOutcome {
    /// Persist `next` (PrepareCommit / PrepareAbort), answer success, then write the markers
    /// to `next.partitions` and `next.groups` and persist [`TxnMetadata::complete`].
    Prepare(TxnMetadata),
    /// A retry of an EndTxn already completed the same way: success, nothing to do.
    AlreadyDone,
    Error(i16),
}

/// Error codes of the transaction APIs that `crate::error::code` does not need elsewhere.
pub mod codes {
    pub const INVALID_TXN_STATE: i16 = 48;
    pub const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
    pub const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
    pub const CONCURRENT_TRANSACTIONS: i16 = 51;
    pub const PRODUCER_FENCED: i16 = 90;
}
use codes::*;

/// Is `timeout_ms` acceptable as a producer's `transaction.timeout.ms`?
pub fn valid_timeout(timeout_ms: i32, max_ms: i32) -> bool {
    timeout_ms > 0 && timeout_ms <= max_ms
}

impl TxnMetadata {
    /// A transactional id seen for the first time, with a freshly allocated producer id.
    pub fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32, now_ms: i64) -> Self {
        TxnMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id,
            producer_epoch: 0,
            last_producer_epoch: -1,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now_ms,
        }
    }

    /// The epoch a producer must present, else PRODUCER_FENCED (older) or
    /// INVALID_PRODUCER_ID_MAPPING (another producer id).
    fn check_producer(&self, producer_id: i64, epoch: i16) -> Result<(), i16> {
        if producer_id != self.producer_id {
            return Err(INVALID_PRODUCER_ID_MAPPING);
        }
        if epoch != self.producer_epoch {
            return Err(PRODUCER_FENCED);
        }
        Ok(())
    }

    /// InitProducerId for this id. `presented` is the (producer id, epoch) a KIP-360 client
    /// sends to keep its id ((-1, -1) otherwise); `fresh_id` allocates a new producer id when
    /// the epoch would overflow.
    pub fn init(
        &self,
        presented: (i64, i16),
        timeout_ms: i32,
        now_ms: i64,
        fresh_id: impl FnOnce() -> i64,
    ) -> InitOutcome {
        if self.state.is_preparing() {
            return InitOutcome::Error(CONCURRENT_TRANSACTIONS);
        }
        if presented.0 >= 0 {
            // KIP-360: only the current producer (or one retrying after a lost answer) may
            // keep its id.
            let current = presented == (self.producer_id, self.producer_epoch);
            let retried = presented.0 == self.producer_id
                && self.last_producer_epoch >= 0
                && presented.1 == self.last_producer_epoch;
            if retried && self.state != TxnState::Ongoing {
                return InitOutcome::Ready(self.clone());
            }
            if !current {
                return InitOutcome::Error(PRODUCER_FENCED);
            }
        }
        let mut next = self.clone();
        next.timeout_ms = timeout_ms;
        next.last_update_ms = now_ms;
        if self.state == TxnState::Ongoing {
            // The new instance fences the old one: abort its transaction under the next epoch
            // of the same producer id (the markers must close that id's transaction).
            next.fence_epoch();
            next.state = TxnState::PrepareAbort;
            return InitOutcome::AbortFirst(next);
        }
        next.bump_epoch(fresh_id);
        next.state = TxnState::Empty;
        next.partitions.clear();
        next.groups.clear();
        next.start_ms = -1;
        InitOutcome::Ready(next)
    }

    /// Kafka's `prepareFenceProducerEpoch`: the next epoch of the same producer id (up to
    /// `i16::MAX`; a new id is only handed out by a later InitProducerId), with no previous
    /// epoch to retry with — the fenced producer cannot get it back through KIP-360.
    fn fence_epoch(&mut self) {
        self.producer_epoch = self.producer_epoch.saturating_add(1);
        self.last_producer_epoch = -1;
    }

    fn bump_epoch(&mut self, fresh_id: impl FnOnce() -> i64) {
        if self.producer_epoch >= i16::MAX - 1 {
            self.producer_id = fresh_id();
            self.producer_epoch = 0;
            self.last_producer_epoch = -1;
        } else {
            self.last_producer_epoch = self.producer_epoch;
            self.producer_epoch += 1;
        }
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: the next metadata with `partitions` and `groups`
    /// in the transaction (which starts now if none was ongoing).
    pub fn add(
        &self,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        groups: &[String],
        now_ms: i64,
    ) -> Result<TxnMetadata, i16> {
        self.check_producer(producer_id, epoch)?;
        match self.state {
            TxnState::Empty
            | TxnState::Ongoing
            | TxnState::CompleteCommit
            | TxnState::CompleteAbort => {}
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                return Err(CONCURRENT_TRANSACTIONS)
            }
            TxnState::Dead => return Err(INVALID_PRODUCER_ID_MAPPING),
        }
        let mut next = self.clone();
        if next.state != TxnState::Ongoing {
            next.partitions.clear();
            next.groups.clear();
            next.start_ms = now_ms;
            next.state = TxnState::Ongoing;
        }
        next.partitions.extend(partitions.iter().cloned());
        next.groups.extend(groups.iter().cloned());
        next.last_update_ms = now_ms;
        Ok(next)
    }

    /// Are these partitions and groups all in the ongoing transaction already (nothing to
    /// persist)?
    pub fn contains(&self, partitions: &[(String, i32)], groups: &[String]) -> bool {
        self.state == TxnState::Ongoing
            && partitions.iter().all(|p| self.partitions.contains(p))
            && groups.iter().all(|g| self.groups.contains(g))
    }

    /// EndTxn from the producer.
    pub fn end(&self, producer_id: i64, epoch: i16, commit: bool, now_ms: i64) -> EndOutcome {
        if producer_id != self.producer_id {
            return EndOutcome::Error(INVALID_PRODUCER_ID_MAPPING);
        }
        if epoch != self.producer_epoch {
            return EndOutcome::Error(PRODUCER_FENCED);
        }
        match (self.state, commit) {
            (TxnState::Ongoing, _) => {
                let mut next = self.clone();
                next.state = if commit {
                    TxnState::PrepareCommit
                } else {
                    TxnState::PrepareAbort
                };
                next.last_update_ms = now_ms;
                EndOutcome::Prepare(next)
            }
            // A retry after a lost answer.
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
                EndOutcome::AlreadyDone
            }
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                EndOutcome::Error(CONCURRENT_TRANSACTIONS)
            }
            // Aborting when nothing was added is allowed by clients (an empty transaction):
            // Kafka answers INVALID_TXN_STATE for Empty, which clients handle; keep it.
            _ => EndOutcome::Error(INVALID_TXN_STATE),
        }
    }

    /// The markers are written: the final state of a prepared transaction.
    pub fn complete(&self, now_ms: i64) -> TxnMetadata {
        let mut next = self.clone();
        next.state = match self.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort | TxnState::PrepareEpochFence => TxnState::CompleteAbort,
            s => s,
        };
        next.partitions.clear();
        next.groups.clear();
        // As Kafka: the start time of the last transaction stays until the next one starts
        // (DescribeTransactions shows it, ListTransactions' duration filter reads it).
        next.last_update_ms = now_ms;
        next
    }

    /// Has the ongoing transaction outlived its timeout?
    pub fn expired(&self, now_ms: i64) -> bool {
        self.state == TxnState::Ongoing && now_ms - self.start_ms > self.timeout_ms as i64
    }

    /// Abort a timed-out transaction: PrepareAbort under a bumped epoch, so that the producer
    /// that let it expire is fenced (its next request gets PRODUCER_FENCED) as in Kafka.
    pub fn abort_expired(&self, now_ms: i64) -> TxnMetadata {
        let mut next = self.clone();
        next.fence_epoch();
        next.state = TxnState::PrepareAbort;
        next.last_update_ms = now_ms;
        next
    }

    /// May the id be forgotten (idle in a final state for `ID_EXPIRATION_MS`)?
    pub fn forgettable(&self, now_ms: i64) -> bool {
        matches!(
            self.state,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        ) && now_ms - self.last_update_ms > ID_EXPIRATION_MS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(names: &[(&str, i32)]) -> Vec<(String, i32)> {
        names.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    fn ready(o: InitOutcome) -> TxnMetadata {
        match o {
            InitOutcome::Ready(m) => m,
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn a_transaction_commits_and_the_next_one_starts_from_a_final_state() {
        let m = TxnMetadata::new("t", 7, 60_000, 0);
        let m = ready(m.init((-1, -1), 60_000, 1, || unreachable!()));
        assert_eq!(
            (m.producer_id, m.producer_epoch, m.state),
            (7, 1, TxnState::Empty)
        );
        assert_eq!(
            m.end(7, 1, true, 2),
            EndOutcome::Error(INVALID_TXN_STATE),
            "nothing to commit"
        );
        let m = m.add(7, 1, &parts(&[("a", 0)]), &[], 3).unwrap();
        assert_eq!((m.state, m.start_ms), (TxnState::Ongoing, 3));
        let m = m
            .add(7, 1, &parts(&[("a", 1)]), &["g".to_string()], 4)
            .unwrap();
        assert!(m.contains(&parts(&[("a", 0), ("a", 1)]), &["g".to_string()]));
        let EndOutcome::Prepare(p) = m.end(7, 1, true, 5) else {
            panic!()
        };
        assert_eq!(p.state, TxnState::PrepareCommit);
        assert_eq!(p.partitions.len(), 2, "markers go to every partition");
        assert_eq!(
            p.add(7, 1, &parts(&[("a", 0)]), &[], 6),
            Err(CONCURRENT_TRANSACTIONS)
        );
        assert_eq!(
            p.init((-1, -1), 60_000, 6, || 0),
            InitOutcome::Error(CONCURRENT_TRANSACTIONS)
        );
        let c = p.complete(7);
        assert_eq!((c.state, c.partitions.len()), (TxnState::CompleteCommit, 0));
        assert_eq!(c.end(7, 1, true, 8), EndOutcome::AlreadyDone);
        assert_eq!(c.end(7, 1, false, 8), EndOutcome::Error(INVALID_TXN_STATE));
        // The next transaction starts from the final state.
        let n = c.add(7, 1, &parts(&[("b", 0)]), &[], 9).unwrap();
        assert_eq!((n.state, n.partitions.len()), (TxnState::Ongoing, 1));
    }

    #[test]
    fn a_second_instance_fences_the_first_and_aborts_its_transaction() {
        let m = TxnMetadata::new("t", 7, 60_000, 0);
        let m = m.add(7, 0, &parts(&[("a", 0)]), &[], 1).unwrap();
        let InitOutcome::AbortFirst(a) = m.init((-1, -1), 60_000, 2, || unreachable!()) else {
            panic!()
        };
        assert_eq!((a.state, a.producer_epoch), (TxnState::PrepareAbort, 1));
        assert_eq!(a.partitions.len(), 1, "the abort markers' partitions");
        let done = a.complete(3);
        assert_eq!(done.state, TxnState::CompleteAbort);
        // The old instance is fenced everywhere.
        assert_eq!(
            done.add(7, 0, &parts(&[("a", 0)]), &[], 4),
            Err(PRODUCER_FENCED)
        );
        assert_eq!(done.end(7, 0, true, 4), EndOutcome::Error(PRODUCER_FENCED));
        // The new one retries InitProducerId and gets the next epoch.
        let n = ready(done.init((-1, -1), 60_000, 5, || unreachable!()));
        assert_eq!((n.producer_epoch, n.state), (2, TxnState::Empty));
        assert_eq!(
            done.add(8, 1, &[], &[], 5),
            Err(INVALID_PRODUCER_ID_MAPPING)
        );
    }

    #[test]
    fn kip_360_retries_keep_the_producer_id_and_others_are_fenced() {
        let m = ready(TxnMetadata::new("t", 7, 1_000, 0).init((-1, -1), 1_000, 1, || 0));
        assert_eq!(m.producer_epoch, 1);
        // The current producer bumps its own epoch.
        let n = ready(m.init((7, 1), 1_000, 2, || 0));
        assert_eq!((n.producer_id, n.producer_epoch), (7, 2));
        // A retry of that request (answer lost) gets the same epoch back.
        assert_eq!(ready(n.init((7, 1), 1_000, 3, || 0)).producer_epoch, 2);
        // Anything older is fenced.
        assert_eq!(
            n.init((7, 0), 1_000, 3, || 0),
            InitOutcome::Error(PRODUCER_FENCED)
        );
    }

    #[test]
    fn epoch_overflow_takes_a_new_producer_id() {
        let mut m = TxnMetadata::new("t", 7, 1_000, 0);
        m.producer_epoch = i16::MAX - 1;
        let n = ready(m.init((-1, -1), 1_000, 1, || 99));
        assert_eq!((n.producer_id, n.producer_epoch), (99, 0));
    }

    /// Fencing an ongoing transaction at the last epochs keeps the producer id (its markers
    /// must close that id's transaction); only the next InitProducerId rotates it. The fenced
    /// producer cannot get the epoch back as a KIP-360 retry.
    #[test]
    fn fencing_at_exhausted_epochs_keeps_the_producer_id() {
        let mut m = TxnMetadata::new("t", 7, 1_000, 0);
        m.producer_epoch = i16::MAX - 1;
        let m = m
            .add(7, i16::MAX - 1, &parts(&[("a", 0)]), &[], 10)
            .unwrap();
        let InitOutcome::AbortFirst(a) = m.init((-1, -1), 1_000, 11, || unreachable!()) else {
            panic!()
        };
        assert_eq!((a.producer_id, a.producer_epoch), (7, i16::MAX));
        let done = a.complete(12);
        assert_eq!(
            done.init((7, i16::MAX - 1), 1_000, 13, || 99),
            InitOutcome::Error(PRODUCER_FENCED)
        );
        let n = ready(done.init((-1, -1), 1_000, 13, || 99));
        assert_eq!((n.producer_id, n.producer_epoch), (99, 0));
    }

    #[test]
    fn an_expired_transaction_is_aborted_under_a_new_epoch() {
        let m = TxnMetadata::new("t", 7, 1_000, 0);
        let m = m.add(7, 0, &parts(&[("a", 0)]), &[], 10).unwrap();
        assert!(!m.expired(1_010));
        assert!(m.expired(1_011));
        let a = m.abort_expired(1_011);
        assert_eq!((a.state, a.producer_epoch), (TxnState::PrepareAbort, 1));
        let done = a.complete(1_012);
        assert_eq!(
            done.end(7, 0, true, 1_013),
            EndOutcome::Error(PRODUCER_FENCED)
        );
        assert!(!done.forgettable(1_013));
        assert!(done.forgettable(1_012 + ID_EXPIRATION_MS + 1));
    }

    #[test]
    fn timeouts_are_bounded() {
        assert!(valid_timeout(60_000, MAX_TIMEOUT_MS));
        assert!(!valid_timeout(0, MAX_TIMEOUT_MS));
        assert!(!valid_timeout(MAX_TIMEOUT_MS + 1, MAX_TIMEOUT_MS));
    }
}
