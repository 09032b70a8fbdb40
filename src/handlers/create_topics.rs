//! CreateTopics (v2–7): validates names, partition counts, replication factor (1 or -1 on a
//! single broker), assignments and configs; honours `validate_only`; stores topic configs.

use super::{err_msg, RequestCtx};
use crate::auth::acl;
use crate::error::{code, Error};
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use std::collections::{BTreeMap, HashSet};

pub async fn handle(ctx: &RequestCtx, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let broker = &ctx.broker;
    let mut resp = CreateTopicsResponse::default();
    let mut seen = HashSet::new();
    let dupes: HashSet<String> = req
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.as_str().to_string()))
        .map(|t| t.name.as_str().to_string())
        .collect();
    for t in req.topics {
        let name = t.name.as_str().to_string();
        let mut r = CreatableTopicResult::default();
        r.name = t.name.clone();
        r.num_partitions = -1;
        r.replication_factor = -1;
        let result = async {
            if dupes.contains(&name) {
                return Err(Error::InvalidRequest(format!(
                    "topic '{name}' appears more than once in the request"
                )));
            }
            // Kafka: CREATE on the cluster, or on the topic.
            if !ctx.may(acl::op::CREATE, acl::resource::CLUSTER, acl::CLUSTER_NAME)
                && !ctx.allowed(acl::op::CREATE, acl::resource::TOPIC, &name)
            {
                return Err(Error::TopicAuthorization);
            }
            let partitions = if !t.assignments.is_empty() {
                if t.num_partitions != -1 || t.replication_factor != -1 {
                    return Err(Error::InvalidRequest(
                        "give either assignments or partitions and replication factor".into(),
                    ));
                }
                for (i, a) in t.assignments.iter().enumerate() {
                    let ids: Vec<i32> = a.broker_ids.iter().map(|b| b.0).collect();
                    if a.partition_index != i as i32 || !broker.valid_replicas(&ids) {
                        return Err(Error::InvalidReplicationFactor(
                            "assignments must name partitions 0..n, each on distinct live brokers"
                                .into(),
                        ));
                    }
                }
                t.assignments.len() as i32
            } else if t.num_partitions == -1 {
                broker.settings.default_partitions
            } else {
                t.num_partitions
            };
            let live = broker.live_brokers().len() as i16;
            let max = broker.settings.max_replication_factor.unwrap_or(live);
            if t.replication_factor != -1 && !(1..=max).contains(&t.replication_factor) {
                return Err(Error::InvalidReplicationFactor(
                    match broker.settings.max_replication_factor {
                        None => format!(
                            "replication factor {} must be between 1 and the {live} live broker(s)",
                            t.replication_factor
                        ),
                        Some(m) => format!(
                        "replication factor {} must be between 1 and {m} (max_replication_factor)",
                        t.replication_factor
                    ),
                    },
                ));
            }
            let mut configs = BTreeMap::new();
            for c in &t.configs {
                let Some(v) = &c.value else { continue };
                configs.insert(c.name.as_str().to_string(), v.as_str().to_string());
            }
            broker.check_create(&name, partitions, &configs)?;
            if req.validate_only {
                return Ok((partitions, configs, None));
            }
            let rf = match t.assignments.first() {
                Some(a) => a.broker_ids.len() as i32,
                None => i32::from(t.replication_factor).max(1),
            };
            let assigned: Vec<Vec<i32>> = t
                .assignments
                .iter()
                .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                .collect();
            let topic = broker
                .create_topic_replicated(&name, partitions, rf, &assigned, configs.clone())
                .await?;
            Ok((partitions, configs, Some(topic.id)))
        }
        .await;
        match result {
            Ok((partitions, configs, id)) => {
                r.num_partitions = partitions;
                r.replication_factor = 1;
                if let Some(id) = id {
                    r.topic_id = uuid::Uuid::from_bytes(id);
                }
                // Configs are reported from v5 on; older versions cannot carry them. As Kafka:
                // only to a principal that may DESCRIBE_CONFIGS the topic.
                let visible = ctx.may(acl::op::DESCRIBE_CONFIGS, acl::resource::TOPIC, &name);
                if ctx.version >= 5 && !visible {
                    r.topic_config_error_code = code::TOPIC_AUTHORIZATION_FAILED;
                } else if ctx.version >= 5 {
                    r.configs = Some(
                        configs
                            .into_iter()
                            .map(|(k, v)| {
                                let mut c = CreatableTopicConfigs::default();
                                c.name = StrBytes::from_string(k);
                                c.value = Some(StrBytes::from_string(v));
                                c.config_source = 1; // DYNAMIC_TOPIC_CONFIG
                                c
                            })
                            .collect(),
                    );
                }
            }
            Err(e) => {
                r.error_code = e.code();
                r.error_message = err_msg(&e);
                if e.code() == code::UNKNOWN_SERVER_ERROR {
                    tracing::warn!("create topic {name}: {e}");
                }
            }
        }
        resp.topics.push(r);
    }
    resp
}
