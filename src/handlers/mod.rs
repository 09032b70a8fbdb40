//! Request dispatch: one file per Kafka API, and the table of what we serve.
//!
//! [`SUPPORTED`] is the single source of truth: ApiVersions is generated from it and dispatch
//! refuses anything outside it, so what is advertised cannot drift from what exists.
//! Behaviour on requests we cannot serve follows Kafka: an ApiVersions request at an unknown
//! version gets error 35 and our ranges (KIP-511) on an open connection; an unknown API key,
//! an unsupported version of another API, or a body that does not decode closes the connection.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_topic_partitions;
pub mod describe_transactions;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_config_resources;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod sync_group;
pub mod txn_offset_commit;

use crate::broker::Broker;
use bytes::{BufMut, Bytes, BytesMut};
use futures::FutureExt;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{decode_request_header_from_buffer, Encodable};
use std::net::SocketAddr;
use std::sync::Arc;

/// One API we serve and the versions we serve it at.
#[derive(Debug, Clone, Copy)]
pub struct ApiSpec {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

/// Every API the broker serves. Produce advertises 0 as its minimum like Kafka 4 does
/// (KAFKA-18659: older librdkafka disables compression otherwise) but v0–2 requests, which
/// carry message formats 0/1, are answered by closing the connection, as Kafka 4 does.
#[rustfmt::skip]
pub const SUPPORTED: &[ApiSpec] = &[
    ApiSpec { key: ApiKey::Produce, min: 0, max: 13 },
    ApiSpec { key: ApiKey::Fetch, min: 4, max: 18 },
    ApiSpec { key: ApiKey::ListOffsets, min: 1, max: 10 },
    ApiSpec { key: ApiKey::Metadata, min: 0, max: 13 },
    ApiSpec { key: ApiKey::OffsetCommit, min: 2, max: 9 },
    ApiSpec { key: ApiKey::OffsetFetch, min: 1, max: 9 },
    ApiSpec { key: ApiKey::FindCoordinator, min: 0, max: 4 },
    ApiSpec { key: ApiKey::JoinGroup, min: 0, max: 9 },
    ApiSpec { key: ApiKey::Heartbeat, min: 0, max: 4 },
    ApiSpec { key: ApiKey::LeaveGroup, min: 0, max: 5 },
    ApiSpec { key: ApiKey::SyncGroup, min: 0, max: 5 },
    ApiSpec { key: ApiKey::DescribeGroups, min: 0, max: 5 },
    ApiSpec { key: ApiKey::ListGroups, min: 0, max: 5 },
    ApiSpec { key: ApiKey::ApiVersions, min: 0, max: 4 },
    ApiSpec { key: ApiKey::CreateTopics, min: 2, max: 7 },
    ApiSpec { key: ApiKey::DeleteTopics, min: 1, max: 6 },
    ApiSpec { key: ApiKey::DeleteGroups, min: 0, max: 2 },
    ApiSpec { key: ApiKey::OffsetDelete, min: 0, max: 0 },
    ApiSpec { key: ApiKey::CreatePartitions, min: 0, max: 3 },
    ApiSpec { key: ApiKey::InitProducerId, min: 0, max: 4 },
    ApiSpec { key: ApiKey::AddPartitionsToTxn, min: 0, max: 3 },
    ApiSpec { key: ApiKey::AddOffsetsToTxn, min: 0, max: 3 },
    ApiSpec { key: ApiKey::EndTxn, min: 0, max: 4 },
    ApiSpec { key: ApiKey::TxnOffsetCommit, min: 0, max: 3 },
    ApiSpec { key: ApiKey::DescribeProducers, min: 0, max: 0 },
    ApiSpec { key: ApiKey::DescribeTransactions, min: 0, max: 0 },
    ApiSpec { key: ApiKey::ListTransactions, min: 0, max: 2 },
    ApiSpec { key: ApiKey::SaslHandshake, min: 0, max: 1 },
    ApiSpec { key: ApiKey::SaslAuthenticate, min: 0, max: 2 },
    ApiSpec { key: ApiKey::DescribeConfigs, min: 1, max: 4 },
    ApiSpec { key: ApiKey::AlterConfigs, min: 0, max: 2 },
    ApiSpec { key: ApiKey::IncrementalAlterConfigs, min: 0, max: 1 },
    ApiSpec { key: ApiKey::DeleteRecords, min: 0, max: 2 },
    ApiSpec { key: ApiKey::DescribeCluster, min: 0, max: 1 },
    ApiSpec { key: ApiKey::OffsetForLeaderEpoch, min: 2, max: 4 },
    ApiSpec { key: ApiKey::DescribeLogDirs, min: 1, max: 4 },
    ApiSpec { key: ApiKey::DescribeTopicPartitions, min: 0, max: 0 },
    ApiSpec { key: ApiKey::ListConfigResources, min: 0, max: 1 },
    ApiSpec { key: ApiKey::CreateAcls, min: 1, max: 3 },
    ApiSpec { key: ApiKey::DescribeAcls, min: 1, max: 3 },
    ApiSpec { key: ApiKey::DeleteAcls, min: 1, max: 3 },
    ApiSpec { key: ApiKey::ElectLeaders, min: 0, max: 2 },
    ApiSpec { key: ApiKey::AlterPartitionReassignments, min: 0, max: 1 },
    ApiSpec { key: ApiKey::ListPartitionReassignments, min: 0, max: 0 },
    ApiSpec { key: ApiKey::DescribeUserScramCredentials, min: 0, max: 0 },
    ApiSpec { key: ApiKey::AlterUserScramCredentials, min: 0, max: 0 },
    ApiSpec { key: ApiKey::ConsumerGroupHeartbeat, min: 0, max: 1 },
    ApiSpec { key: ApiKey::ConsumerGroupDescribe, min: 0, max: 1 },
];

/// The lowest Produce version whose body we decode (message format 2 only).
pub const MIN_DECODABLE_PRODUCE: i16 = 3;

pub fn spec(key: ApiKey) -> Option<&'static ApiSpec> {
    SUPPORTED.iter().find(|s| s.key == key)
}

/// What the connection does with a request.
#[derive(Debug)]
pub enum Outcome {
    /// Write this frame (length prefix included).
    Respond(Bytes),
    /// Write this frame, given as chunks (shared record batches), with vectored writes.
    RespondChunks(Vec<Bytes>),
    /// Nothing to write (Produce with acks=0).
    NoResponse,
    /// Close the connection, for this reason.
    Close(String),
}

/// Per-request context handed to handlers.
pub struct RequestCtx {
    pub broker: Arc<Broker>,
    pub header: RequestHeader,
    pub version: i16,
    /// The client's address (DescribeGroups reports it as the member's host).
    pub peer: SocketAddr,
    /// The listener the request came through: brokers are advertised at its addresses.
    pub listener: Arc<crate::network::ListenerInfo>,
    /// Who sent it, for authorization (`User:alice`, `User:ANONYMOUS`).
    pub principal: Arc<str>,
    /// The client's address as ACL hosts are written (see `auth::acl::host_of`); empty when
    /// authorization is off.
    pub host: String,
    /// For Produce: keeps appends in the connection's request order (see [`ProduceGate`]).
    pub produce_gate: std::sync::Mutex<Option<ProduceGate>>,
    /// For Produce: this request's share of the broker-wide unflushed-bytes budget, held until
    /// its batches are durable (released when the context drops, or later for acks=0).
    pub unflushed_permit: std::sync::Mutex<Option<tokio::sync::OwnedSemaphorePermit>>,
}

/// Orders the appends of pipelined Produce requests on one connection.
///
/// Requests run concurrently (validation and decompression happen in parallel, on the blocking
/// pool), but Kafka assigns offsets in the order a connection sent its requests: a producer
/// with several requests in flight relies on it. Each Produce waits for the previous one on
/// its connection to have queued its appends before queueing its own; dropping a gate (a
/// request that failed early) releases the next one.
pub struct ProduceGate {
    prev: Option<tokio::sync::oneshot::Receiver<()>>,
    done: tokio::sync::oneshot::Sender<()>,
}

impl ProduceGate {
    /// A gate after `prev` (the previous Produce's), and the receiver the next one waits on.
    pub fn chain(
        prev: Option<tokio::sync::oneshot::Receiver<()>>,
    ) -> (ProduceGate, tokio::sync::oneshot::Receiver<()>) {
        let (done, next) = tokio::sync::oneshot::channel();
        (ProduceGate { prev, done }, next)
    }

    /// Wait until the previous Produce queued its appends (or ended).
    pub async fn wait_turn(&mut self) {
        if let Some(prev) = self.prev.take() {
            let _ = prev.await;
        }
    }

    /// This request's appends are queued: let the next one go.
    pub fn release(self) {
        let _ = self.done.send(());
    }
}

impl RequestCtx {
    pub fn take_produce_gate(&self) -> Option<ProduceGate> {
        self.produce_gate.lock().ok().and_then(|mut g| g.take())
    }

    pub fn take_unflushed_permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.unflushed_permit.lock().ok().and_then(|mut g| g.take())
    }
}

impl RequestCtx {
    /// Live brokers at the addresses of the request's listener.
    pub fn brokers(&self) -> Vec<crate::cluster::store::BrokerInfo> {
        self.broker.live_brokers_on(self.listener.name())
    }

    /// May this request's principal do `operation` on `(resource_type, name)`? A refusal is
    /// counted in `authorization_denials_total`.
    pub fn allowed(&self, operation: i8, resource_type: i8, name: &str) -> bool {
        let ok = self.may(operation, resource_type, name);
        if !ok {
            use crate::auth::acl::resource;
            let kind = match resource_type {
                resource::TOPIC => "topic",
                resource::GROUP => "group",
                resource::CLUSTER => "cluster",
                resource::TRANSACTIONAL_ID => "transactional_id",
                _ => "other",
            };
            let api = ApiKey::try_from(self.header.request_api_key)
                .map(|k| format!("{k:?}"))
                .unwrap_or_default();
            self.broker
                .metrics
                .authorization_denials
                .with_label_values(&[api.as_str(), kind])
                .inc();
            tracing::debug!(
                "{} from {} may not {operation} on {resource_type}:{name}",
                self.principal,
                self.peer
            );
        }
        ok
    }

    /// [`RequestCtx::allowed`] without counting a refusal (a check with a fallback, or a
    /// listing that quietly leaves out what may not be seen).
    pub fn may(&self, operation: i8, resource_type: i8, name: &str) -> bool {
        if !self.broker.authorizer.enabled {
            return true; // the common case: no host string to build
        }
        self.broker
            .authorizer
            .allows(&self.principal, &self.host, operation, resource_type, name)
    }

    /// `Err(GROUP_AUTHORIZATION_FAILED)` unless the principal may do `operation` on the group.
    pub fn check_group(&self, operation: i8, group: &str) -> Result<(), i16> {
        use crate::auth::acl::resource;
        match self.allowed(operation, resource::GROUP, group) {
            true => Ok(()),
            false => Err(crate::error::code::GROUP_AUTHORIZATION_FAILED),
        }
    }

    /// A group request's gate: the principal may do `operation` on the group
    /// (GROUP_AUTHORIZATION_FAILED) and this broker coordinates it (cluster mode:
    /// NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE, see `GroupManager::route`).
    pub async fn route_group(&self, operation: i8, group: &str) -> Result<(), i16> {
        self.check_group(operation, group)?;
        self.broker.groups.route(group).await
    }

    /// For config resources (DescribeConfigs, AlterConfigs, IncrementalAlterConfigs): the
    /// refusal of `operation` (DESCRIBE_CONFIGS, ALTER_CONFIGS) on a topic or the cluster (a
    /// broker resource), with Kafka's code and message.
    pub fn config_denied(
        &self,
        operation: i8,
        resource_type: i8,
        name: &str,
    ) -> Option<(i16, &'static str)> {
        use crate::auth::acl::resource;
        use crate::error::code;
        match resource_type {
            describe_configs::TOPIC if !self.allowed(operation, resource::TOPIC, name) => Some((
                code::TOPIC_AUTHORIZATION_FAILED,
                "Topic authorization failed.",
            )),
            describe_configs::GROUP if !self.allowed(operation, resource::GROUP, name) => Some((
                code::GROUP_AUTHORIZATION_FAILED,
                "Group authorization failed.",
            )),
            // ConfigResource BROKER and BROKER_LOGGER are cluster resources.
            describe_configs::BROKER | describe_configs::BROKER_LOGGER
                if !self.allowed_on_cluster(operation) =>
            {
                Some((
                    code::CLUSTER_AUTHORIZATION_FAILED,
                    "Cluster authorization failed.",
                ))
            }
            _ => None,
        }
    }

    /// [`RequestCtx::allowed`] on the cluster resource.
    pub fn allowed_on_cluster(&self, operation: i8) -> bool {
        use crate::auth::acl::{resource, CLUSTER_NAME};
        self.allowed(operation, resource::CLUSTER, CLUSTER_NAME)
    }

    /// The `*_authorized_operations` bits of a resource for this request's principal.
    pub fn authorized_operations(&self, resource_type: i8, name: &str) -> i32 {
        self.broker
            .authorizer
            .operations(&self.principal, &self.host, resource_type, name)
    }

    /// The cluster's authorized-operations bits as Kafka computes them for Metadata and
    /// DescribeCluster: 0 for a principal without DESCRIBE on the cluster.
    pub fn cluster_authorized_operations(&self) -> i32 {
        use crate::auth::acl::{op, resource, CLUSTER_NAME};
        if self.may(op::DESCRIBE, resource::CLUSTER, CLUSTER_NAME) {
            self.authorized_operations(resource::CLUSTER, CLUSTER_NAME)
        } else {
            0
        }
    }

    pub fn client_id(&self) -> String {
        self.header
            .client_id
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default()
    }
}

/// Decode, handle and encode one request frame.
pub async fn dispatch(
    broker: Arc<Broker>,
    frame: BytesMut,
    peer: SocketAddr,
    listener: Arc<crate::network::ListenerInfo>,
    principal: Arc<str>,
    produce_gate: Option<ProduceGate>,
    unflushed_permit: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Outcome {
    if frame.len() < crate::protocol::frame::MIN_REQUEST_BYTES {
        return Outcome::Close(format!("a {}-byte frame is not a request", frame.len()));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let Ok(api_key) = ApiKey::try_from(key) else {
        return Outcome::Close(format!("unknown API key {key}"));
    };
    let Some(spec) = spec(api_key) else {
        return Outcome::Close(format!("API {api_key:?} is not served by this broker"));
    };
    if api_key == ApiKey::ApiVersions && (version < spec.min || version > spec.max) {
        return Outcome::Respond(api_versions::unsupported_version_response(correlation_id));
    }
    if version < spec.min || version > spec.max {
        return Outcome::Close(format!("{api_key:?} v{version} is not supported"));
    }
    if api_key == ApiKey::Produce && version < MIN_DECODABLE_PRODUCE {
        return Outcome::Close(format!(
            "Produce v{version} (message format 0/1) is not served, as in Kafka 4"
        ));
    }
    let mut buf = frame.freeze();
    let (header, request) = match decode_request(api_key, version, &mut buf) {
        Ok(x) => x,
        Err(e) => return Outcome::Close(e),
    };
    // The request now references what it needs of the frame (e.g. produced batches); release
    // the rest as soon as the request itself lets go of it.
    drop(buf);
    tracing::debug!(
        "request {api_key:?} v{version} correlation {correlation_id} from {:?}",
        header.client_id
    );
    let started = std::time::Instant::now();
    let metrics = broker.metrics.clone();
    let api = format!("{api_key:?}");
    let broker_authorizes = broker.authorizer.enabled;
    let ctx = RequestCtx {
        broker,
        header,
        version,
        peer,
        listener,
        host: match broker_authorizes {
            true => crate::auth::acl::host_of(peer.ip()),
            false => String::new(),
        },
        principal,
        produce_gate: std::sync::Mutex::new(produce_gate),
        unflushed_permit: std::sync::Mutex::new(unflushed_permit),
    };
    let fut = std::panic::AssertUnwindSafe(handle(&ctx, request)).catch_unwind();
    let result = fut.await;
    let v = version.to_string();
    metrics
        .requests
        .with_label_values(&[api.as_str(), v.as_str()])
        .inc();
    metrics
        .request_seconds
        .with_label_values(&[api.as_str(), v.as_str()])
        .observe(started.elapsed().as_secs_f64());
    let reply = match result {
        Ok(Ok(Some(r))) => r,
        Ok(Ok(None)) => return Outcome::NoResponse,
        Ok(Err(e)) => return Outcome::Close(e),
        Err(_) => return Outcome::Close(format!("internal error handling {api_key:?}")),
    };
    let encoded = match reply {
        Reply::Kind(mut response) => {
            null_empty_messages(&mut response);
            for code in response_errors(&response) {
                metrics.error(&api, code);
            }
            encode_response(api_key, version, correlation_id, &response).map(Outcome::Respond)
        }
        Reply::Fetch(f) => {
            for code in fetch_errors(&f.response) {
                metrics.error(&api, code);
            }
            crate::protocol::fetch_response::encode(
                version,
                correlation_id,
                &f.response,
                &f.records,
            )
            .map(Outcome::RespondChunks)
        }
    };
    encoded.unwrap_or_else(|e| {
        Outcome::Close(format!(
            "cannot encode {api_key:?} v{version} response: {e}"
        ))
    })
}

/// Decode a request's header and body with `kafka-protocol`. A panic inside the decoder (none
/// is known: the fuzz targets in `tests/fuzz.rs` look for them) is an error like any other
/// undecodable request, never a dead worker thread. Hostile array counts cannot abort the
/// process either (see `crate::alloc`).
pub fn decode_request(
    api_key: ApiKey,
    version: i16,
    buf: &mut Bytes,
) -> Result<(RequestHeader, RequestKind), String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let header = decode_request_header_from_buffer(buf)
            .map_err(|e| format!("bad request header: {e}"))?;
        let request = RequestKind::decode(api_key, buf, version)
            .map_err(|e| format!("cannot decode {api_key:?} v{version}: {e}"))?;
        Ok((header, request))
    }))
    .unwrap_or_else(|_| Err(format!("the {api_key:?} v{version} decoder panicked")))
}

/// What a handler answers: a response for `kafka-protocol` to encode, or a Fetch response
/// whose record batches are spliced in without copying.
enum Reply {
    Kind(ResponseKind),
    Fetch(fetch::FetchReply),
}

/// Run the handler of a decoded request. `Ok(None)`: no response (acks=0).
#[rustfmt::skip]
async fn handle(ctx: &RequestCtx, request: RequestKind) -> Result<Option<Reply>, String> {
    use ResponseKind as R;
    Ok(Some(Reply::Kind(match request {
        RequestKind::ApiVersions(r) => R::ApiVersions(api_versions::handle(ctx, r)),
        RequestKind::Metadata(r) => R::Metadata(metadata::handle(ctx, r).await),
        RequestKind::CreateTopics(r) => R::CreateTopics(create_topics::handle(ctx, r).await),
        RequestKind::DeleteTopics(r) => R::DeleteTopics(delete_topics::handle(ctx, r).await),
        RequestKind::Produce(r) => match produce::handle(ctx, r).await {
            Some(r) => R::Produce(r),
            None => return Ok(None),
        },
        RequestKind::Fetch(r) => return Ok(Some(Reply::Fetch(fetch::handle(ctx, r).await))),
        RequestKind::ListOffsets(r) => R::ListOffsets(list_offsets::handle(ctx, r).await),
        RequestKind::FindCoordinator(r) => R::FindCoordinator(find_coordinator::handle(ctx, r)),
        RequestKind::JoinGroup(r) => R::JoinGroup(join_group::handle(ctx, r).await),
        RequestKind::SyncGroup(r) => R::SyncGroup(sync_group::handle(ctx, r).await),
        RequestKind::Heartbeat(r) => R::Heartbeat(heartbeat::handle(ctx, r).await),
        RequestKind::LeaveGroup(r) => R::LeaveGroup(leave_group::handle(ctx, r).await),
        RequestKind::DescribeGroups(r) => R::DescribeGroups(describe_groups::handle(ctx, r).await),
        RequestKind::ConsumerGroupHeartbeat(r) => {
            R::ConsumerGroupHeartbeat(consumer_group_heartbeat::handle(ctx, r).await)
        }
        RequestKind::ConsumerGroupDescribe(r) => {
            R::ConsumerGroupDescribe(consumer_group_describe::handle(ctx, r).await)
        }
        RequestKind::ListGroups(r) => R::ListGroups(list_groups::handle(ctx, r).await),
        RequestKind::DeleteGroups(r) => R::DeleteGroups(delete_groups::handle(ctx, r).await),
        RequestKind::OffsetCommit(r) => R::OffsetCommit(offset_commit::handle(ctx, r).await),
        RequestKind::OffsetFetch(r) => R::OffsetFetch(offset_fetch::handle(ctx, r).await),
        RequestKind::OffsetDelete(r) => R::OffsetDelete(offset_delete::handle(ctx, r).await),
        RequestKind::CreatePartitions(r) => R::CreatePartitions(create_partitions::handle(ctx, r).await),
        RequestKind::InitProducerId(r) => R::InitProducerId(init_producer_id::handle(ctx, r).await),
        RequestKind::AddPartitionsToTxn(r) => R::AddPartitionsToTxn(add_partitions_to_txn::handle(ctx, r).await),
        RequestKind::AddOffsetsToTxn(r) => R::AddOffsetsToTxn(add_offsets_to_txn::handle(ctx, r).await),
        RequestKind::EndTxn(r) => R::EndTxn(end_txn::handle(ctx, r).await),
        RequestKind::TxnOffsetCommit(r) => R::TxnOffsetCommit(txn_offset_commit::handle(ctx, r).await),
        RequestKind::DescribeProducers(r) => R::DescribeProducers(describe_producers::handle(ctx, r).await),
        RequestKind::DescribeTransactions(r) => R::DescribeTransactions(describe_transactions::handle(ctx, r).await),
        RequestKind::ListTransactions(r) => R::ListTransactions(list_transactions::handle(ctx, r).await),
        // Reaching dispatch means no SASL exchange is expected on this connection (the
        // Connection actor answers them itself while one is).
        RequestKind::SaslHandshake(_) => R::SaslHandshake(sasl_handshake::not_expected()),
        RequestKind::SaslAuthenticate(_) => R::SaslAuthenticate(sasl_authenticate::not_expected()),
        RequestKind::DescribeConfigs(r) => R::DescribeConfigs(describe_configs::handle(ctx, r).await),
        RequestKind::AlterConfigs(r) => R::AlterConfigs(alter_configs::handle(ctx, r).await),
        RequestKind::IncrementalAlterConfigs(r) => R::IncrementalAlterConfigs(incremental_alter_configs::handle(ctx, r).await),
        RequestKind::DeleteRecords(r) => R::DeleteRecords(delete_records::handle(ctx, r).await),
        RequestKind::DescribeCluster(r) => R::DescribeCluster(describe_cluster::handle(ctx, r)),
        RequestKind::OffsetForLeaderEpoch(r) => R::OffsetForLeaderEpoch(offset_for_leader_epoch::handle(ctx, r)),
        RequestKind::DescribeLogDirs(r) => R::DescribeLogDirs(describe_log_dirs::handle(ctx, r)),
        RequestKind::DescribeTopicPartitions(r) => R::DescribeTopicPartitions(describe_topic_partitions::handle(ctx, r)),
        RequestKind::ListConfigResources(r) => R::ListConfigResources(list_config_resources::handle(ctx, r).await),
        RequestKind::CreateAcls(r) => R::CreateAcls(create_acls::handle(ctx, r).await),
        RequestKind::DescribeAcls(r) => R::DescribeAcls(describe_acls::handle(ctx, r).await),
        RequestKind::DeleteAcls(r) => R::DeleteAcls(delete_acls::handle(ctx, r).await),
        RequestKind::ElectLeaders(r) => R::ElectLeaders(elect_leaders::handle(ctx, r).await),
        RequestKind::AlterPartitionReassignments(r) => R::AlterPartitionReassignments(alter_partition_reassignments::handle(ctx, r).await),
        RequestKind::ListPartitionReassignments(r) => R::ListPartitionReassignments(list_partition_reassignments::handle(ctx, r)),
        RequestKind::DescribeUserScramCredentials(r) => R::DescribeUserScramCredentials(describe_user_scram_credentials::handle(ctx, r)),
        RequestKind::AlterUserScramCredentials(r) => R::AlterUserScramCredentials(alter_user_scram_credentials::handle(ctx, r).await),
        other => return Err(format!("no handler for {other:?}")),
    })))
}

fn fetch_errors(r: &kafka_protocol::messages::FetchResponse) -> Vec<i16> {
    std::iter::once(r.error_code)
        .chain(
            r.responses
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        )
        .collect()
}

/// The error codes a response carries (top level and per partition/topic/member), for metrics.
pub fn response_errors(r: &ResponseKind) -> Vec<i16> {
    use ResponseKind as R;
    match r {
        R::Produce(r) => r
            .responses
            .iter()
            .flat_map(|t| t.partition_responses.iter().map(|p| p.error_code))
            .collect(),
        R::Fetch(r) => fetch_errors(r),
        R::ListOffsets(r) => r
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect(),
        R::Metadata(r) => r.topics.iter().map(|t| t.error_code).collect(),
        R::CreateTopics(r) => r.topics.iter().map(|t| t.error_code).collect(),
        R::DeleteTopics(r) => r.responses.iter().map(|t| t.error_code).collect(),
        R::CreatePartitions(r) => r.results.iter().map(|t| t.error_code).collect(),
        R::OffsetCommit(r) => r
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect(),
        R::OffsetFetch(r) => std::iter::once(r.error_code)
            .chain(r.groups.iter().map(|g| g.error_code))
            .collect(),
        R::JoinGroup(r) => vec![r.error_code],
        R::SyncGroup(r) => vec![r.error_code],
        R::Heartbeat(r) => vec![r.error_code],
        R::LeaveGroup(r) => std::iter::once(r.error_code)
            .chain(r.members.iter().map(|m| m.error_code))
            .collect(),
        R::FindCoordinator(r) => std::iter::once(r.error_code)
            .chain(r.coordinators.iter().map(|c| c.error_code))
            .collect(),
        R::DescribeGroups(r) => r.groups.iter().map(|g| g.error_code).collect(),
        R::ListGroups(r) => vec![r.error_code],
        R::DeleteGroups(r) => r.results.iter().map(|g| g.error_code).collect(),
        R::OffsetDelete(r) => vec![r.error_code],
        R::InitProducerId(r) => vec![r.error_code],
        R::AddPartitionsToTxn(r) => r
            .results_by_topic_v3_and_below
            .iter()
            .flat_map(|t| {
                t.results_by_partition
                    .iter()
                    .map(|p| p.partition_error_code)
            })
            .collect(),
        R::AddOffsetsToTxn(r) => vec![r.error_code],
        R::DescribeProducers(r) => r
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect(),
        R::DescribeTransactions(r) => r.transaction_states.iter().map(|x| x.error_code).collect(),
        R::ListTransactions(r) => vec![r.error_code],
        R::EndTxn(r) => vec![r.error_code],
        R::TxnOffsetCommit(r) => r
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect(),
        R::SaslHandshake(r) => vec![r.error_code],
        R::SaslAuthenticate(r) => vec![r.error_code],
        R::ApiVersions(r) => vec![r.error_code],
        R::DescribeConfigs(r) => r.results.iter().map(|x| x.error_code).collect(),
        R::AlterConfigs(r) => r.responses.iter().map(|x| x.error_code).collect(),
        R::IncrementalAlterConfigs(r) => r.responses.iter().map(|x| x.error_code).collect(),
        R::DeleteRecords(r) => r
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect(),
        R::DescribeCluster(r) => vec![r.error_code],
        R::DescribeTopicPartitions(r) => r.topics.iter().map(|t| t.error_code).collect(),
        R::OffsetForLeaderEpoch(r) => r
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect(),
        R::ListConfigResources(r) => vec![r.error_code],
        R::ElectLeaders(r) => std::iter::once(r.error_code)
            .chain(
                r.replica_election_results
                    .iter()
                    .flat_map(|t| t.partition_result.iter().map(|p| p.error_code)),
            )
            .collect(),
        R::AlterPartitionReassignments(r) => std::iter::once(r.error_code)
            .chain(
                r.responses
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
            )
            .collect(),
        R::ListPartitionReassignments(r) => vec![r.error_code],
        R::DescribeUserScramCredentials(r) => std::iter::once(r.error_code)
            .chain(r.results.iter().map(|x| x.error_code))
            .collect(),
        R::AlterUserScramCredentials(r) => r.results.iter().map(|x| x.error_code).collect(),
        R::CreateAcls(r) => r.results.iter().map(|x| x.error_code).collect(),
        R::DescribeAcls(r) => vec![r.error_code],
        R::DeleteAcls(r) => r.filter_results.iter().map(|x| x.error_code).collect(),
        R::DescribeLogDirs(r) => std::iter::once(r.error_code)
            .chain(r.results.iter().map(|x| x.error_code))
            .collect(),
        _ => Vec::new(),
    }
}

/// Send one transaction operation to this broker's coordinator and answer as the transaction
/// APIs do: NONE or the coordinator's code (PRODUCER_FENCED read as INVALID_PRODUCER_EPOCH
/// below version `fenced_from`, see `fenced_code`), the retriable COORDINATOR_NOT_AVAILABLE
/// when it does not answer, and TRANSACTIONAL_ID_AUTHORIZATION_FAILED in cluster mode, which
/// has no transaction coordinator yet.
pub async fn ask_txn_coordinator<M>(ctx: &RequestCtx, msg: M, fenced_from: i16) -> i16
where
    M: actix::Message<Result = std::result::Result<(), i16>> + Send + 'static,
    crate::txn::coordinator::TxnCoordinator: actix::Handler<M>,
{
    match ctx.broker.transactions.get() {
        None => crate::error::code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        Some(c) => match c.send(msg).await {
            Ok(Ok(())) => crate::error::code::NONE,
            Ok(Err(e)) => crate::txn::coordinator::fenced_code(e, ctx.version, fenced_from),
            Err(_) => crate::group::state::COORDINATOR_NOT_AVAILABLE,
        },
    }
}

/// Kafka sends a null error message where there is nothing to say; `kafka-protocol` defaults
/// some nullable messages to "" (clients such as aiokafka assert `None` on success). Every
/// nullable error message we may answer with goes through here.
pub fn null_empty_messages(r: &mut ResponseKind) {
    use kafka_protocol::protocol::StrBytes;
    fn fix(m: &mut Option<StrBytes>) {
        if m.as_ref().is_some_and(|s| s.is_empty()) {
            *m = None;
        }
    }
    use ResponseKind as R;
    match r {
        R::CreateTopics(r) => r.topics.iter_mut().for_each(|t| fix(&mut t.error_message)),
        R::DeleteTopics(r) => r
            .responses
            .iter_mut()
            .for_each(|t| fix(&mut t.error_message)),
        R::CreatePartitions(r) => r.results.iter_mut().for_each(|t| fix(&mut t.error_message)),
        R::DescribeConfigs(r) => r.results.iter_mut().for_each(|t| fix(&mut t.error_message)),
        R::AlterConfigs(r) => r
            .responses
            .iter_mut()
            .for_each(|t| fix(&mut t.error_message)),
        R::IncrementalAlterConfigs(r) => r
            .responses
            .iter_mut()
            .for_each(|t| fix(&mut t.error_message)),
        R::FindCoordinator(r) => {
            fix(&mut r.error_message);
            r.coordinators
                .iter_mut()
                .for_each(|c| fix(&mut c.error_message));
        }
        R::SaslAuthenticate(r) => fix(&mut r.error_message),
        R::DescribeCluster(r) => fix(&mut r.error_message),
        R::ElectLeaders(r) => r.replica_election_results.iter_mut().for_each(|t| {
            t.partition_result
                .iter_mut()
                .for_each(|p| fix(&mut p.error_message))
        }),
        R::AlterPartitionReassignments(r) => {
            fix(&mut r.error_message);
            r.responses.iter_mut().for_each(|t| {
                t.partitions
                    .iter_mut()
                    .for_each(|p| fix(&mut p.error_message))
            });
        }
        R::ListPartitionReassignments(r) => fix(&mut r.error_message),
        R::DescribeUserScramCredentials(r) => {
            fix(&mut r.error_message);
            r.results.iter_mut().for_each(|x| fix(&mut x.error_message));
        }
        R::AlterUserScramCredentials(r) => {
            r.results.iter_mut().for_each(|x| fix(&mut x.error_message))
        }
        R::Produce(r) => r.responses.iter_mut().for_each(|t| {
            t.partition_responses.iter_mut().for_each(|p| {
                fix(&mut p.error_message);
                p.record_errors
                    .iter_mut()
                    .for_each(|e| fix(&mut e.batch_index_error_message));
            })
        }),
        R::CreateAcls(r) => r.results.iter_mut().for_each(|t| fix(&mut t.error_message)),
        R::DescribeAcls(r) => fix(&mut r.error_message),
        R::DeleteAcls(r) => r.filter_results.iter_mut().for_each(|f| {
            fix(&mut f.error_message);
            f.matching_acls
                .iter_mut()
                .for_each(|m| fix(&mut m.error_message));
        }),
        _ => {}
    }
}

/// Encode a response frame: length, response header (at the API's header version), body.
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> anyhow::Result<Bytes> {
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    let header_version = api_key.response_header_version(version);
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    header.encode(&mut buf, header_version)?;
    body.encode(&mut buf, version)?;
    let len = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

/// Error message for responses: `None` when there is no error.
pub fn err_msg(e: &crate::error::Error) -> Option<kafka_protocol::protocol::StrBytes> {
    Some(kafka_protocol::protocol::StrBytes::from_string(e.message()))
}
