//! DescribeLogDirs (v1–4): one "log dir" — the storage location — with the durable bytes of every
//! partition (sum of its segment objects).

use super::RequestCtx;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::sync::atomic::Ordering;

pub fn handle(ctx: &RequestCtx, req: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    let b = &ctx.broker;
    if !ctx.allowed_on_cluster(crate::auth::acl::op::DESCRIBE) {
        let mut resp = DescribeLogDirsResponse::default();
        if ctx.version >= 3 {
            resp.error_code = crate::error::code::CLUSTER_AUTHORIZATION_FAILED;
        }
        return resp;
    }
    let mut dir = DescribeLogDirsResult::default();
    dir.log_dir = StrBytes::from_string(b.storage.describe().to_string());
    let wanted: Option<Vec<(String, Vec<i32>)>> = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.topic.to_string(), t.partitions))
            .collect()
    });
    let mut total = 0i64;
    for t in b.topics() {
        let parts: Option<&Vec<i32>> = match &wanted {
            None => None,
            Some(w) => match w.iter().find(|(n, _)| *n == t.name) {
                Some((_, ps)) => Some(ps),
                None => continue,
            },
        };
        let mut dt = DescribeLogDirsTopic::default();
        dt.name = TopicName(StrBytes::from_string(t.name.clone()));
        for (i, p) in t.local_partitions() {
            if parts.is_some_and(|ps| !ps.contains(&i)) {
                continue;
            }
            let size = p.stats.size_bytes.load(Ordering::Relaxed);
            total += size;
            let mut dp = DescribeLogDirsPartition::default();
            dp.partition_index = i;
            dp.partition_size = size;
            dt.partitions.push(dp);
        }
        dir.topics.push(dt);
    }
    if ctx.version >= 4 {
        dir.total_bytes = total;
        dir.usable_bytes = -1;
    }
    let mut resp = DescribeLogDirsResponse::default();
    resp.results = vec![dir];
    resp
}
