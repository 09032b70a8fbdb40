//! ListTransactions (v0–2): the transactional ids this broker coordinates, with producer id and
//! state, filtered as Kafka filters them (`kafka-transactions.sh list`, the admin clients'
//! `listTransactions`): by state names (unknown names are echoed in `unknown_state_filters`;
//! a filter of unknown names only lists nothing), by producer ids, by duration (v1+: only
//! transactions started longer ago than it; Kafka compares with the start time as stored,
//! -1 before an id's first transaction), and by
//! a regular expression matched against the whole id (v2+, KIP-1152; INVALID_REGULAR_EXPRESSION
//! if it does not compile). Ids in the transient `Dead` state and ids the principal may not
//! DESCRIBE are left out.

use super::RequestCtx;
use crate::auth::acl::{op, resource};
use crate::error::code;
use crate::storage::writer::now_ms;
use crate::txn::coordinator::Snapshot;
use crate::txn::state::{TxnMetadata, TxnState};
use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use std::collections::{BTreeSet, HashSet};

const STATES: [TxnState; 8] = [
    TxnState::Empty,
    TxnState::Ongoing,
    TxnState::PrepareCommit,
    TxnState::PrepareAbort,
    TxnState::CompleteCommit,
    TxnState::CompleteAbort,
    TxnState::PrepareEpochFence,
    TxnState::Dead,
];

/// The filters of one request, resolved.
pub struct Filter {
    /// `None`: no state filter; `Some`: only these (maybe none, when every name was unknown).
    pub states: Option<Vec<TxnState>>,
    /// Empty: no producer id filter.
    pub producer_ids: HashSet<i64>,
    /// -1: none.
    pub duration_ms: i64,
    pub pattern: Option<regex::Regex>,
}

impl Filter {
    /// Does Kafka's `TransactionStateManager.listTransactionStates` include `m` at `now`?
    pub fn includes(&self, m: &TxnMetadata, now: i64) -> bool {
        m.state != TxnState::Dead
            && (self.producer_ids.is_empty() || self.producer_ids.contains(&m.producer_id))
            && self.states.as_ref().is_none_or(|s| s.contains(&m.state))
            && (self.duration_ms < 0 || now - m.start_ms > self.duration_ms)
            && self
                .pattern
                .as_ref()
                .is_none_or(|p| p.is_match(&m.transactional_id))
    }
}

/// Resolve state names (Kafka's names, case-sensitive): `None` without names; the unknown
/// names are returned once each.
pub fn states(names: &[String]) -> (Option<Vec<TxnState>>, Vec<String>) {
    if names.is_empty() {
        return (None, Vec::new());
    }
    let mut known = Vec::new();
    let mut unknown = BTreeSet::new();
    for n in names {
        match STATES.iter().find(|s| s.name() == n) {
            Some(s) if !known.contains(s) => known.push(*s),
            Some(_) => {}
            None => {
                unknown.insert(n.clone());
            }
        }
    }
    (Some(known), unknown.into_iter().collect())
}

pub async fn handle(ctx: &RequestCtx, req: ListTransactionsRequest) -> ListTransactionsResponse {
    let mut resp = ListTransactionsResponse::default();
    let names: Vec<String> = req.state_filters.iter().map(|s| s.to_string()).collect();
    let (states, unknown) = self::states(&names);
    let pattern = match req
        .transactional_id_pattern
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        None => None,
        // Matched against the whole id, as Java's `Matcher.matches` (bounded in size).
        Some(p) => match crate::group::consumer::compile_regex(p) {
            Ok(r) => Some(r),
            Err(_) => {
                resp.error_code = code::INVALID_REGULAR_EXPRESSION;
                return resp;
            }
        },
    };
    let filter = Filter {
        states,
        producer_ids: req.producer_id_filters.iter().map(|p| p.0).collect(),
        duration_ms: if ctx.version >= 1 {
            req.duration_filter
        } else {
            -1
        },
        pattern,
    };
    resp.unknown_state_filters = unknown.into_iter().map(StrBytes::from_string).collect();
    let Some(c) = ctx.broker.transactions.get() else {
        return resp; // cluster mode: no transactional ids
    };
    let Ok(all) = c.send(Snapshot { ids: None }).await else {
        resp.error_code = crate::group::state::COORDINATOR_NOT_AVAILABLE;
        return resp;
    };
    let now = now_ms();
    let mut listed: Vec<&TxnMetadata> = all
        .iter()
        .filter(|m| filter.includes(m, now))
        .filter(|m| {
            ctx.may(
                op::DESCRIBE,
                resource::TRANSACTIONAL_ID,
                &m.transactional_id,
            )
        })
        .collect();
    listed.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
    for m in listed {
        let mut s = TransactionState::default();
        s.transactional_id = TransactionalId(StrBytes::from_string(m.transactional_id.clone()));
        s.producer_id = ProducerId(m.producer_id);
        s.transaction_state = StrBytes::from_static_str(m.state.name());
        resp.transaction_states.push(s);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str, pid: i64, state: TxnState, start_ms: i64) -> TxnMetadata {
        let mut m = TxnMetadata::new(id, pid, 60_000, 0);
        m.state = state;
        m.start_ms = start_ms;
        m
    }

    #[test]
    fn filters_as_kafka() {
        let none = Filter {
            states: None,
            producer_ids: HashSet::new(),
            duration_ms: -1,
            pattern: None,
        };
        let ongoing = meta("app-1", 7, TxnState::Ongoing, 1_000);
        let empty = meta("app-2", 8, TxnState::Empty, -1);
        assert!(none.includes(&ongoing, 5_000) && none.includes(&empty, 5_000));
        assert!(!none.includes(&meta("gone", 9, TxnState::Dead, -1), 5_000));
        let (s, unknown) = states(&[
            "Ongoing".into(),
            "Bogus".into(),
            "ongoing".into(),
            "Bogus".into(),
        ]);
        assert_eq!(s, Some(vec![TxnState::Ongoing]));
        assert_eq!(unknown, vec!["Bogus".to_string(), "ongoing".to_string()]);
        let by_state = Filter { states: s, ..none };
        assert!(by_state.includes(&ongoing, 5_000) && !by_state.includes(&empty, 5_000));
        // Only unknown names: nothing is listed (Kafka's filter is on the names given).
        let (s, _) = states(&["Bogus".into()]);
        let bogus = Filter {
            states: s,
            producer_ids: HashSet::new(),
            duration_ms: -1,
            pattern: None,
        };
        assert!(!bogus.includes(&ongoing, 5_000) && !bogus.includes(&empty, 5_000));
        let by_pid = Filter {
            states: None,
            producer_ids: [8].into_iter().collect(),
            duration_ms: -1,
            pattern: None,
        };
        assert!(!by_pid.includes(&ongoing, 5_000) && by_pid.includes(&empty, 5_000));
        // Running longer than the duration: 4 s > 3 s, not > 5 s.
        let long = |d| Filter {
            states: Some(vec![TxnState::Ongoing]),
            producer_ids: HashSet::new(),
            duration_ms: d,
            pattern: None,
        };
        assert!(long(3_000).includes(&ongoing, 5_000));
        assert!(!long(5_000).includes(&ongoing, 5_000));
        let re = Filter {
            states: None,
            producer_ids: HashSet::new(),
            duration_ms: -1,
            pattern: Some(regex::Regex::new("^(?:app-1)$").unwrap()),
        };
        assert!(
            re.includes(&ongoing, 0) && !re.includes(&meta("app-10", 1, TxnState::Empty, -1), 0)
        );
    }
}
