//! DeleteTopics (v1–6): by name, or by topic id from v6; deletes metadata and segments. Needs
//! DELETE on the topic, or on the cluster (which covers every topic, as in Kafka's controller).

use super::{err_msg, RequestCtx};
use crate::broker::OFFSETS_TOPIC;
use crate::error::Error;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

pub async fn handle(ctx: &RequestCtx, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let broker = &ctx.broker;
    let mut targets: Vec<(Option<String>, uuid::Uuid)> = req
        .topic_names
        .iter()
        .map(|n| (Some(n.as_str().to_string()), uuid::Uuid::nil()))
        .collect();
    targets.extend(
        req.topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.as_str().to_string()), t.topic_id)),
    );
    let mut resp = DeleteTopicsResponse::default();
    // Kafka's controller: DELETE on the cluster covers every topic.
    let cluster_delete = ctx.may(
        crate::auth::acl::op::DELETE,
        crate::auth::acl::resource::CLUSTER,
        crate::auth::acl::CLUSTER_NAME,
    );
    for (name, id) in targets {
        let mut r = DeletableTopicResult::default();
        r.topic_id = id;
        let internal = match &name {
            Some(n) => n == OFFSETS_TOPIC,
            None => id.as_bytes() == &broker.offsets_topic_id(),
        };
        let resolved = match &name {
            _ if internal => Ok(OFFSETS_TOPIC.to_string()),
            Some(n) => broker
                .topic(n)
                .map(|t| t.name.clone())
                .ok_or(Error::UnknownTopicOrPartition),
            None => broker
                .topic_by_id(id.as_bytes())
                .map(|t| t.name.clone())
                .ok_or(Error::UnknownTopicId),
        };
        r.name = name.clone().map(|n| TopicName(StrBytes::from_string(n)));
        // DELETE on the cluster, or on the topic (a topic named but unknown is refused the
        // same way when the principal may not delete it, as Kafka's controller does; an
        // unknown id stays unknown).
        let resolved = match resolved {
            _ if cluster_delete => resolved,
            Ok(n)
                if !ctx.allowed(
                    crate::auth::acl::op::DELETE,
                    crate::auth::acl::resource::TOPIC,
                    &n,
                ) =>
            {
                Err(Error::TopicAuthorization)
            }
            Err(Error::UnknownTopicOrPartition)
                if name.as_ref().is_some_and(|n| {
                    !ctx.allowed(
                        crate::auth::acl::op::DELETE,
                        crate::auth::acl::resource::TOPIC,
                        n,
                    )
                }) =>
            {
                Err(Error::TopicAuthorization)
            }
            other => other,
        };
        let result = match resolved {
            Ok(n) => {
                if let Some(t) = broker.topic(&n) {
                    r.topic_id = uuid::Uuid::from_bytes(t.id);
                }
                r.name = Some(TopicName(StrBytes::from_string(n.clone())));
                broker.delete_topic(&n).await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            r.error_code = e.code();
            r.error_message = err_msg(&e);
        }
        resp.responses.push(r);
    }
    resp
}
