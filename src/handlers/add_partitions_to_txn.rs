//! AddPartitionsToTxn (v0–3, what producers send): adds partitions to the ongoing transaction
//! of a transactional id (starting one), persisted before the answer. WRITE on the
//! TRANSACTIONAL_ID and on each TOPIC; an unauthorized or unknown partition fails the request
//! as Kafka does (those partitions get their error, the others OPERATION_NOT_ATTEMPTED). The
//! batched v4+ form is broker-to-broker (KIP-890) and not served.

use super::{ask_txn_coordinator, RequestCtx};
use crate::auth::acl::{op, resource};
use crate::error::code;
use crate::txn::coordinator::Add;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};

/// A partition and the error it got before the coordinator was asked, if any.
type Checked = (i32, Option<i16>);

/// Kafka's OPERATION_NOT_ATTEMPTED.
const OPERATION_NOT_ATTEMPTED: i16 = 55;

pub async fn handle(
    ctx: &RequestCtx,
    req: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let id = req.v3_and_below_transactional_id.to_string();
    let broker = &ctx.broker;
    // A transaction cannot hold more partitions than the broker has: a longer list (hostile,
    // up to a 100 MB frame) is answered with nothing rather than echoed entry by entry.
    let listed: usize = req
        .v3_and_below_topics
        .iter()
        .map(|t| t.partitions.len())
        .sum();
    if listed > broker.settings.max_partitions {
        tracing::debug!("AddPartitionsToTxn listing {listed} partitions refused");
        return AddPartitionsToTxnResponse::default();
    }
    // Per topic, per partition: an error found before the coordinator is asked.
    let mut pre: Vec<(String, Vec<Checked>)> = Vec::new();
    let id_ok = ctx.allowed(op::WRITE, resource::TRANSACTIONAL_ID, &id);
    for t in &req.v3_and_below_topics {
        let name = t.name.to_string();
        let topic = broker.topic(&name);
        let topic_ok = ctx.allowed(op::WRITE, resource::TOPIC, &name);
        let parts = t
            .partitions
            .iter()
            .map(|&p| {
                let e = if !topic_ok {
                    Some(code::TOPIC_AUTHORIZATION_FAILED)
                } else if !topic
                    .as_ref()
                    .is_some_and(|tp| (0..tp.partition_count()).contains(&p))
                {
                    Some(code::UNKNOWN_TOPIC_OR_PARTITION)
                } else {
                    None
                };
                (p, e)
            })
            .collect();
        pre.push((name, parts));
    }
    let any_error = pre
        .iter()
        .any(|(_, ps)| ps.iter().any(|(_, e)| e.is_some()));
    let result: Option<i16> = if id.is_empty() {
        Some(code::INVALID_REQUEST)
    } else if !id_ok {
        Some(code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    } else if any_error {
        None
    } else {
        let partitions: std::collections::BTreeSet<(String, i32)> = pre
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |(p, _)| (t.clone(), *p)))
            .collect();
        let partitions = partitions.into_iter().collect();
        let add = Add {
            transactional_id: id,
            producer_id: req.v3_and_below_producer_id.0,
            producer_epoch: req.v3_and_below_producer_epoch,
            partitions,
            groups: Vec::new(),
        };
        Some(ask_txn_coordinator(ctx, add, 2).await)
    };
    let mut resp = AddPartitionsToTxnResponse::default();
    for (name, parts) in pre {
        let mut tr = AddPartitionsToTxnTopicResult::default();
        tr.name = kafka_protocol::protocol::StrBytes::from_string(name).into();
        for (p, e) in parts {
            let mut pr = AddPartitionsToTxnPartitionResult::default();
            pr.partition_index = p;
            pr.partition_error_code = match (result, e) {
                (Some(r), _) => r,
                (None, Some(e)) => e,
                (None, None) => OPERATION_NOT_ATTEMPTED,
            };
            tr.results_by_partition.push(pr);
        }
        resp.results_by_topic_v3_and_below.push(tr);
    }
    resp
}
