//! Incremental fetch sessions (KIP-227) as a plain state machine: the cache of sessions, each
//! with its partitions in the order they were added, what the client last asked for each and
//! what the broker last told it. The Fetch handler asks [`FetchSessions::begin`] which
//! partitions a request covers and [`FetchSessions::finish`] which of them the response must
//! carry.
//!
//! Rules, as Kafka's `FetchSession`/`FetchSessionCache`:
//! - session 0, epoch -1: sessionless full fetch; session 0, epoch 0: a full fetch that creates a
//!   session (id answered in the response, 0 when the cache has no room); session S, epoch -1:
//!   close S, sessionless; session S, epoch 0: close S and create a new one.
//! - session S, epoch E > 0: incremental. Unknown S → FETCH_SESSION_ID_NOT_FOUND, E not the
//!   session's next epoch → INVALID_FETCH_SESSION_EPOCH. The request's partitions are added or
//!   updated, its forgotten topics removed, and the response lists only partitions with
//!   something new: records, an error, or a changed high watermark, last stable offset or log
//!   start offset (a partition added in this request always, as its cached values are unknown).
//! - Memory is bounded: a session holds at most `max_partitions` partitions (the broker's
//!   partition limit: no consumer needs more). A full request asking for more gets no session;
//!   an incremental one that would grow past it closes the session with
//!   FETCH_SESSION_ID_NOT_FOUND, so the client goes back to full fetches.
//! - The cache holds `max_slots` sessions (Kafka's `max.incremental.fetch.session.cache.slots`,
//!   1,000). When full, a new session evicts one idle longer than [`EVICTION_IDLE`], else the
//!   smallest session if the new one has more partitions (it saves more per fetch), else it is
//!   not created (the client keeps sending full fetches).

use indexmap::IndexMap;
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
pub const INVALID_FETCH_SESSION_EPOCH: i16 = 71;

/// Kafka's `min.incremental.fetch.session.eviction.ms`.
pub const EVICTION_IDLE: Duration = Duration::from_secs(120);

/// A partition as the client names it: topic name (before Fetch v13) or id (from v13).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub topic: String,
    pub topic_id: [u8; 16],
    pub partition: i32,
}

/// What the client asks for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    pub fetch_offset: i64,
    pub max_bytes: i32,
    pub leader_epoch: i32,
}

/// What the broker last answered for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
}

const UNKNOWN: Sent = Sent {
    high_watermark: -1,
    last_stable_offset: -1,
    log_start_offset: -1,
};

#[derive(Debug)]
struct Session {
    /// The epoch the next request must carry.
    next_epoch: i32,
    partitions: IndexMap<Key, (Want, Sent)>,
    last_used: Instant,
}

/// How a request is served.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// The partitions to read, in response order.
    pub partitions: Vec<(Key, Want)>,
    /// The session id to answer with (0: none).
    pub session_id: i32,
    /// Incremental: the response carries only changed partitions (see [`FetchSessions::finish`]).
    pub incremental: bool,
}

#[derive(Debug)]
pub struct FetchSessions {
    sessions: HashMap<i32, Session>,
    max_slots: usize,
    max_partitions: usize,
    next_id: i32,
}

/// The answer for one partition, for change detection.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub error_code: i16,
    pub has_records: bool,
    pub sent: Sent,
}

impl FetchSessions {
    pub fn new(max_slots: usize, max_partitions: usize) -> Self {
        FetchSessions {
            sessions: HashMap::new(),
            max_slots,
            max_partitions,
            next_id: 1,
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Start serving a request: `wanted` are the request's partitions, `forgotten` its
    /// forgotten topics' partitions. Err: the request's top-level error code.
    pub fn begin(
        &mut self,
        session_id: i32,
        epoch: i32,
        wanted: Vec<(Key, Want)>,
        forgotten: Vec<Key>,
        now: Instant,
    ) -> Result<Plan, i16> {
        if epoch == -1 || epoch == 0 {
            // A full request; it closes the session it names.
            if session_id != 0 {
                self.sessions.remove(&session_id);
            }
            let id = if epoch == 0 {
                self.create(&wanted, now)
            } else {
                0
            };
            return Ok(Plan {
                partitions: wanted,
                session_id: id,
                incremental: false,
            });
        }
        if epoch < -1 {
            return Err(INVALID_FETCH_SESSION_EPOCH);
        }
        let Some(s) = self.sessions.get_mut(&session_id) else {
            return Err(FETCH_SESSION_ID_NOT_FOUND);
        };
        if s.next_epoch != epoch {
            return Err(INVALID_FETCH_SESSION_EPOCH);
        }
        s.next_epoch = next_epoch(epoch);
        s.last_used = now;
        for k in forgotten {
            s.partitions.shift_remove(&k);
        }
        for (k, w) in wanted {
            if let Some((want, _)) = s.partitions.get_mut(&k) {
                *want = w;
            } else if s.partitions.len() >= self.max_partitions {
                self.sessions.remove(&session_id);
                return Err(FETCH_SESSION_ID_NOT_FOUND);
            } else {
                s.partitions.insert(k, (w, UNKNOWN));
            }
        }
        Ok(Plan {
            partitions: s
                .partitions
                .iter()
                .map(|(k, (w, _))| (k.clone(), *w))
                .collect(),
            session_id,
            incremental: true,
        })
    }

    /// Record what was answered for the plan's partitions (in plan order); returns, per
    /// partition, whether the response carries it (all of them unless incremental).
    pub fn finish(&mut self, plan: &Plan, outcomes: &[Outcome]) -> Vec<bool> {
        let Some(s) = self.sessions.get_mut(&plan.session_id) else {
            return vec![true; outcomes.len()];
        };
        plan.partitions
            .iter()
            .zip(outcomes)
            .map(|((k, _), o)| {
                let Some((_, sent)) = s.partitions.get_mut(k) else {
                    return true;
                };
                let changed = o.error_code != 0 || o.has_records || *sent != o.sent;
                if o.error_code == 0 {
                    *sent = o.sent;
                } else {
                    // Answer again once the error clears.
                    *sent = UNKNOWN;
                }
                changed || !plan.incremental
            })
            .collect()
    }

    /// A new session for a full request, if the cache has (or makes) room; its id, or 0.
    fn create(&mut self, wanted: &[(Key, Want)], now: Instant) -> i32 {
        if self.max_slots == 0 || wanted.len() > self.max_partitions {
            return 0;
        }
        if self.sessions.len() >= self.max_slots {
            let idle = self
                .sessions
                .iter()
                .filter(|(_, s)| now.duration_since(s.last_used) >= EVICTION_IDLE)
                .min_by_key(|(_, s)| s.last_used)
                .map(|(id, _)| *id);
            let smaller = || {
                self.sessions
                    .iter()
                    .filter(|(_, s)| s.partitions.len() < wanted.len())
                    .min_by_key(|(_, s)| (s.partitions.len(), s.last_used))
                    .map(|(id, _)| *id)
            };
            match idle.or_else(smaller) {
                Some(id) => {
                    self.sessions.remove(&id);
                }
                None => return 0,
            }
        }
        let id = self.fresh_id();
        let partitions = wanted
            .iter()
            .map(|(k, w)| (k.clone(), (*w, UNKNOWN)))
            .collect();
        self.sessions.insert(
            id,
            Session {
                next_epoch: 1,
                partitions,
                last_used: now,
            },
        );
        id
    }

    fn fresh_id(&mut self) -> i32 {
        loop {
            let id = self.next_id;
            self.next_id = if self.next_id == i32::MAX {
                1
            } else {
                self.next_id + 1
            };
            if !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }
}

/// Epochs run 1, 2, … i32::MAX, then wrap to 1 (0 and -1 mean full requests).
fn next_epoch(e: i32) -> i32 {
    if e == i32::MAX {
        1
    } else {
        e + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(t: &str, p: i32) -> Key {
        Key {
            topic: t.into(),
            topic_id: [0; 16],
            partition: p,
        }
    }

    fn want(o: i64) -> Want {
        Want {
            fetch_offset: o,
            max_bytes: 1 << 20,
            leader_epoch: -1,
        }
    }

    fn out(hw: i64, records: bool) -> Outcome {
        Outcome {
            error_code: 0,
            has_records: records,
            sent: Sent {
                high_watermark: hw,
                last_stable_offset: hw,
                log_start_offset: 0,
            },
        }
    }

    #[test]
    fn sessionless_and_new_sessions() {
        let mut c = FetchSessions::new(10, 1000);
        let now = Instant::now();
        let p = c
            .begin(0, -1, vec![(key("a", 0), want(0))], vec![], now)
            .unwrap();
        assert_eq!((p.session_id, p.incremental), (0, false));
        assert!(c.is_empty());
        let p = c
            .begin(0, 0, vec![(key("a", 0), want(0))], vec![], now)
            .unwrap();
        assert!(p.session_id > 0 && !p.incremental);
        assert_eq!(c.len(), 1);
        // Full request naming the session: closes it (epoch -1) or replaces it (epoch 0).
        let q = c.begin(p.session_id, 0, vec![], vec![], now).unwrap();
        assert_ne!(q.session_id, p.session_id);
        assert_eq!(c.len(), 1);
        c.begin(q.session_id, -1, vec![], vec![], now).unwrap();
        assert!(c.is_empty());
    }

    #[test]
    fn incremental_updates_forgets_and_reports_changes_only() {
        let mut c = FetchSessions::new(10, 1000);
        let now = Instant::now();
        let wanted = vec![(key("a", 0), want(0)), (key("a", 1), want(0))];
        let p = c.begin(0, 0, wanted, vec![], now).unwrap();
        let id = p.session_id;
        assert_eq!(
            c.finish(&p, &[out(5, true), out(0, false)]),
            vec![true, true]
        );
        // Epoch 1, nothing new in the request: both partitions fetched, only changes returned.
        let p = c.begin(id, 1, vec![], vec![], now).unwrap();
        assert!(p.incremental);
        assert_eq!(p.partitions.len(), 2);
        assert_eq!(p.partitions[0].1.fetch_offset, 0, "cached offset");
        assert_eq!(
            c.finish(&p, &[out(5, false), out(0, false)]),
            vec![false, false]
        );
        // The client moved partition 0 on and added b-0; partition 1 got data.
        let p = c
            .begin(
                id,
                2,
                vec![(key("a", 0), want(5)), (key("b", 0), want(0))],
                vec![],
                now,
            )
            .unwrap();
        assert_eq!(
            p.partitions
                .iter()
                .map(|(k, w)| (k.topic.as_str(), k.partition, w.fetch_offset))
                .collect::<Vec<_>>(),
            vec![("a", 0, 5), ("a", 1, 0), ("b", 0, 0)]
        );
        assert_eq!(
            c.finish(&p, &[out(5, false), out(3, true), out(0, false)]),
            vec![false, true, true],
            "b-0 is new: its first answer is always sent"
        );
        // Forgotten: gone from the session.
        let p = c.begin(id, 3, vec![], vec![key("a", 1)], now).unwrap();
        assert_eq!(p.partitions.len(), 2);
        // An error is always sent, and the partition is sent again once it clears.
        let mut err = out(-1, false);
        err.error_code = 6;
        assert_eq!(c.finish(&p, &[err, out(0, false)]), vec![true, false]);
        let p = c.begin(id, 4, vec![], vec![], now).unwrap();
        assert_eq!(
            c.finish(&p, &[out(5, false), out(0, false)]),
            vec![true, false]
        );
    }

    #[test]
    fn wrong_epoch_and_unknown_session() {
        let mut c = FetchSessions::new(10, 1000);
        let now = Instant::now();
        let id = c.begin(0, 0, vec![], vec![], now).unwrap().session_id;
        assert_eq!(
            c.begin(id, 2, vec![], vec![], now),
            Err(INVALID_FETCH_SESSION_EPOCH)
        );
        assert_eq!(
            c.begin(id + 7, 1, vec![], vec![], now),
            Err(FETCH_SESSION_ID_NOT_FOUND)
        );
        assert_eq!(
            c.begin(0, 1, vec![], vec![], now),
            Err(FETCH_SESSION_ID_NOT_FOUND)
        );
        assert!(c.begin(id, 1, vec![], vec![], now).is_ok());
        assert_eq!(
            c.begin(id, 1, vec![], vec![], now),
            Err(INVALID_FETCH_SESSION_EPOCH),
            "replayed"
        );
        assert_eq!(next_epoch(i32::MAX), 1);
    }

    #[test]
    fn sessions_are_bounded_in_partitions() {
        let mut c = FetchSessions::new(10, 3);
        let now = Instant::now();
        let four: Vec<_> = (0..4).map(|p| (key("a", p), want(0))).collect();
        let p = c.begin(0, 0, four.clone(), vec![], now).unwrap();
        assert_eq!(
            (p.session_id, p.partitions.len()),
            (0, 4),
            "served, no session"
        );
        let id = c
            .begin(0, 0, four[..3].to_vec(), vec![], now)
            .unwrap()
            .session_id;
        assert!(id > 0);
        assert!(
            c.begin(id, 1, four[..1].to_vec(), vec![], now).is_ok(),
            "an update"
        );
        assert_eq!(
            c.begin(id, 2, four[3..].to_vec(), vec![], now),
            Err(FETCH_SESSION_ID_NOT_FOUND),
            "growing past the bound closes it"
        );
        assert!(c.is_empty());
    }

    #[test]
    fn eviction_prefers_idle_then_smaller_sessions() {
        let mut c = FetchSessions::new(2, 1000);
        let t0 = Instant::now();
        let big: Vec<_> = (0..5).map(|p| (key("a", p), want(0))).collect();
        let one = vec![(key("a", 0), want(0))];
        let a = c.begin(0, 0, one.clone(), vec![], t0).unwrap().session_id;
        let b = c.begin(0, 0, big.clone(), vec![], t0).unwrap().session_id;
        // Full, nothing idle, the newcomer is not larger than anyone: not cached.
        assert_eq!(
            c.begin(0, 0, one.clone(), vec![], t0).unwrap().session_id,
            0
        );
        // A larger newcomer evicts the smallest session.
        let d = c.begin(0, 0, big.clone(), vec![], t0).unwrap().session_id;
        assert!(d > 0);
        assert_eq!(
            c.begin(a, 1, vec![], vec![], t0),
            Err(FETCH_SESSION_ID_NOT_FOUND)
        );
        // After the idle period any newcomer evicts the longest idle session.
        let later = t0 + EVICTION_IDLE + Duration::from_secs(1);
        assert!(c.begin(d, 1, vec![], vec![], later).is_ok());
        let e = c.begin(0, 0, one, vec![], later).unwrap().session_id;
        assert!(e > 0);
        assert_eq!(
            c.begin(b, 1, vec![], vec![], later),
            Err(FETCH_SESSION_ID_NOT_FOUND)
        );
        assert!(
            FetchSessions::new(0, 1000)
                .begin(0, 0, big, vec![], t0)
                .unwrap()
                .session_id
                == 0
        );
    }
}
