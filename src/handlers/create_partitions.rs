//! CreatePartitions (v0–3): grows topics (never shrinks), with `validate_only`. Replica
//! assignments, if given, must name only this broker, one replica per new partition.

use super::{err_msg, RequestCtx};
use crate::error::Error;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use std::collections::HashSet;

pub async fn handle(ctx: &RequestCtx, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let broker = &ctx.broker;
    let mut resp = CreatePartitionsResponse::default();
    let mut seen = HashSet::new();
    let dupes: HashSet<String> = req
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.to_string()))
        .map(|t| t.name.to_string())
        .collect();
    for t in req.topics {
        let name = t.name.to_string();
        let mut r = CreatePartitionsTopicResult::default();
        r.name = t.name.clone();
        let result = async {
            if dupes.contains(&name) {
                return Err(Error::InvalidRequest(format!(
                    "duplicate topic {name} in request"
                )));
            }
            if !ctx.allowed(
                crate::auth::acl::op::ALTER,
                crate::auth::acl::resource::TOPIC,
                &name,
            ) {
                return Err(Error::TopicAuthorization);
            }
            let current = broker
                .topic(&name)
                .map(|tp| tp.partitions.len() as i32)
                .ok_or(Error::UnknownTopicOrPartition)?;
            let assigned: Vec<Vec<i32>> = t
                .assignments
                .iter()
                .flatten()
                .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                .collect();
            if let Some(assignments) = &t.assignments {
                let wanted = (t.count - current).max(0) as usize;
                let ok = assignments.len() == wanted
                    && assignments.iter().all(|a| {
                        broker.valid_replicas(&a.broker_ids.iter().map(|b| b.0).collect::<Vec<_>>())
                    });
                if !ok {
                    return Err(Error::InvalidReplicaAssignment(format!(
                        "assignments must give {wanted} new partitions replicas on distinct live brokers"
                    )));
                }
            }
            broker
                .create_partitions(&name, t.count, &assigned, req.validate_only)
                .await
        }
        .await;
        if let Err(e) = result {
            r.error_code = e.code();
            r.error_message = err_msg(&e);
        }
        resp.results.push(r);
    }
    resp
}
