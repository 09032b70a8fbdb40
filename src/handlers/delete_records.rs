//! DeleteRecords (v0–2): moves partitions' log start offsets (-1 = the high watermark); data
//! below becomes unreadable (OFFSET_OUT_OF_RANGE) and whole segments below it are deleted.

use super::RequestCtx;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

pub async fn handle(ctx: &RequestCtx, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut resp = DeleteRecordsResponse::default();
    let broker = &ctx.broker;
    let wanted = req.topics.iter().flat_map(|t| {
        t.partitions
            .iter()
            .map(|p| (t.name.as_str(), p.partition_index))
    });
    // A view one poll behind must not answer NOT_LEADER for a partition just moved here.
    if broker.cluster.is_some() && !broker.leads_all(wanted) {
        broker.catch_up_view().await;
    }
    for t in req.topics {
        let mut rt = DeleteRecordsTopicResult::default();
        rt.name = t.name.clone();
        let deletable = ctx.allowed(
            crate::auth::acl::op::DELETE,
            crate::auth::acl::resource::TOPIC,
            t.name.as_str(),
        );
        for p in t.partitions {
            let mut rp = DeleteRecordsPartitionResult::default();
            rp.partition_index = p.partition_index;
            if !deletable {
                rp.low_watermark = -1;
                rp.error_code = crate::error::code::TOPIC_AUTHORIZATION_FAILED;
                rt.partitions.push(rp);
                continue;
            }
            match ctx
                .broker
                .delete_records(t.name.as_str(), p.partition_index, p.offset)
                .await
            {
                Ok(low) => rp.low_watermark = low,
                Err(e) => {
                    rp.low_watermark = -1;
                    rp.error_code = e.code();
                }
            }
            rt.partitions.push(rp);
        }
        resp.topics.push(rt);
    }
    resp
}
