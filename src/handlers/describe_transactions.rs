//! DescribeTransactions (v0): the coordinator's record of each transactional id — state,
//! timeout, start time of the ongoing transaction (-1 outside one), producer id and epoch, and
//! the partitions in the transaction — as `kafka-transactions.sh describe` shows it. As in
//! Kafka: DESCRIBE on the TRANSACTIONAL_ID (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
//! partitions of topics the principal may not describe are left out, an unknown id is
//! TRANSACTIONAL_ID_NOT_FOUND, an empty one INVALID_REQUEST; a repeated id is answered once. In
//! cluster mode no id exists (transactions are refused there).

use super::RequestCtx;
use crate::auth::acl::{op, resource};
use crate::error::code;
use crate::txn::coordinator::Snapshot;
use crate::txn::state::{TxnMetadata, TxnState};
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName,
    TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use std::collections::{BTreeMap, HashMap};

pub async fn handle(
    ctx: &RequestCtx,
    req: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    // Each id answered once (a request repeating ids gets one answer per id).
    let mut unique = std::collections::HashSet::new();
    let ids: Vec<(String, bool)> = req
        .transactional_ids
        .iter()
        .map(|id| id.to_string())
        .filter(|id| unique.insert(id.clone()))
        .map(|id| {
            let ok = id.is_empty() || ctx.allowed(op::DESCRIBE, resource::TRANSACTIONAL_ID, &id);
            (id, ok)
        })
        .collect();
    let wanted: Vec<String> = ids
        .iter()
        .filter(|(_, ok)| *ok)
        .map(|(id, _)| id.clone())
        .collect();
    // None: the coordinator did not answer (COORDINATOR_NOT_AVAILABLE, retriable).
    let known: Option<HashMap<String, TxnMetadata>> = match ctx.broker.transactions.get() {
        Some(c) if !wanted.is_empty() => {
            c.send(Snapshot { ids: Some(wanted) }).await.ok().map(|v| {
                v.into_iter()
                    .map(|m| (m.transactional_id.clone(), m))
                    .collect()
            })
        }
        _ => Some(HashMap::new()),
    };
    let mut resp = DescribeTransactionsResponse::default();
    for (id, ok) in ids {
        let mut s = TransactionState::default();
        s.transactional_id = TransactionalId(StrBytes::from_string(id.clone()));
        let meta = known.as_ref().map(|k| k.get(&id));
        s.error_code = match (ok, meta) {
            _ if id.is_empty() => code::INVALID_REQUEST,
            (false, _) => code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            (true, None) => crate::group::state::COORDINATOR_NOT_AVAILABLE,
            (true, Some(None)) => code::TRANSACTIONAL_ID_NOT_FOUND,
            (true, Some(Some(m))) if m.state == TxnState::Dead => code::TRANSACTIONAL_ID_NOT_FOUND,
            (true, Some(Some(m))) => {
                describe(ctx, m, &mut s);
                code::NONE
            }
        };
        resp.transaction_states.push(s);
    }
    resp
}

fn describe(ctx: &RequestCtx, m: &TxnMetadata, s: &mut TransactionState) {
    s.transaction_state = StrBytes::from_static_str(m.state.name());
    s.transaction_timeout_ms = m.timeout_ms;
    s.transaction_start_time_ms = m.start_ms;
    s.producer_id = ProducerId(m.producer_id);
    s.producer_epoch = m.producer_epoch;
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in &m.partitions {
        topics.entry(t).or_default().push(*p);
    }
    for (topic, partitions) in topics {
        if !ctx.may(op::DESCRIBE, resource::TOPIC, topic) {
            continue;
        }
        let mut td = TopicData::default();
        td.topic = TopicName(StrBytes::from_string(topic.to_string()));
        td.partitions = partitions;
        s.topics.push(td);
    }
}
