//! Compatibility details other clients' own test suites check, over the raw protocol: null
//! error messages on success, the internal `__consumer_offsets`, the newest versions of
//! Produce (v13, topic ids), Fetch (v18), ListOffsets (v10) and Metadata (v13), ListConfigResources,
//! the ACL APIs without an authorizer, FindCoordinator for transactions (and INVALID_REQUEST for
//! unknown key types), and the leadership APIs standalone (cluster mode: `tests/cluster.rs`).

mod common;

use common::*;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn metadata(raw: &mut Raw, version: i16, topics: Option<Vec<&str>>) -> MetadataResponse {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    let mut req = MetadataRequest::default();
    req.topics = topics.map(|ts| {
        ts.into_iter()
            .map(|t| MetadataRequestTopic::default().with_name(Some(name(t))))
            .collect()
    });
    let ResponseKind::Metadata(r) =
        raw.request(ApiKey::Metadata, version, RequestKind::Metadata(req))
    else {
        panic!()
    };
    r
}

#[test]
fn success_messages_are_null() {
    let b = TestBroker::start(settings("memory://"));
    let mut raw = Raw::connect(b.kafka);
    // CreateTopics at its newest version: success carries a null message (aiokafka asserts it).
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![CreatableTopic::default()
        .with_name(name("nulls"))
        .with_num_partitions(2)
        .with_replication_factor(1)];
    req.timeout_ms = 5000;
    for v in [2, 7] {
        let mut req = req.clone();
        if v == 2 {
            req.topics[0].name = name("nulls2");
        }
        let ResponseKind::CreateTopics(r) =
            raw.request(ApiKey::CreateTopics, v, RequestKind::CreateTopics(req))
        else {
            panic!()
        };
        assert_eq!(r.topics[0].error_code, 0);
        assert_eq!(r.topics[0].error_message, None, "v{v}: null on success");
    }
    // An error still says what went wrong.
    let (code, msg) = raw.create_topic_with("nulls", 1, &[]);
    assert_eq!(code, 36);
    assert!(msg.is_some_and(|m| !m.is_empty()));
    // DescribeConfigs, IncrementalAlterConfigs and FindCoordinator(GROUP) on success.
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    let mut dc = DescribeConfigsRequest::default();
    dc.resources = vec![DescribeConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(StrBytes::from_static_str("nulls"))];
    let ResponseKind::DescribeConfigs(r) =
        raw.request(ApiKey::DescribeConfigs, 4, RequestKind::DescribeConfigs(dc))
    else {
        panic!()
    };
    assert_eq!(r.results[0].error_code, 0);
    assert_eq!(r.results[0].error_message, None);
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    let mut ia = IncrementalAlterConfigsRequest::default();
    ia.resources = vec![AlterConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(StrBytes::from_static_str("nulls"))
        .with_configs(vec![AlterableConfig::default()
            .with_name(StrBytes::from_static_str("retention.ms"))
            .with_value(Some(StrBytes::from_static_str("60000")))])];
    let ResponseKind::IncrementalAlterConfigs(r) = raw.request(
        ApiKey::IncrementalAlterConfigs,
        1,
        RequestKind::IncrementalAlterConfigs(ia),
    ) else {
        panic!()
    };
    assert_eq!(r.responses[0].error_code, 0);
    assert_eq!(r.responses[0].error_message, None);
    for v in [3, 4] {
        let mut fc = FindCoordinatorRequest::default();
        if v == 3 {
            fc.key = StrBytes::from_static_str("g");
        } else {
            fc.coordinator_keys = vec![StrBytes::from_static_str("g")];
        }
        let ResponseKind::FindCoordinator(r) =
            raw.request(ApiKey::FindCoordinator, v, RequestKind::FindCoordinator(fc))
        else {
            panic!()
        };
        if v == 3 {
            assert_eq!((r.error_code, r.error_message), (0, None));
        } else {
            let c = &r.coordinators[0];
            assert_eq!((c.error_code, c.error_message.clone()), (0, None));
        }
    }
}

#[test]
fn consumer_offsets_is_an_internal_topic() {
    let b = TestBroker::start(settings("memory://"));
    let mut raw = Raw::connect(b.kafka);
    raw.create_topic("plain", &[]);
    for v in [1, 9, 12, 13] {
        let r = metadata(&mut raw, v, None);
        let names: Vec<(String, bool)> = r
            .topics
            .iter()
            .map(|t| (t.name.as_ref().unwrap().to_string(), t.is_internal))
            .collect();
        assert!(names.contains(&("plain".into(), false)), "v{v}: {names:?}");
        assert!(
            names.contains(&("__consumer_offsets".into(), true)),
            "v{v}: {names:?}"
        );
    }
    // By name: one partition (standalone: one coordinator), led here, a stable topic id.
    let r = metadata(&mut raw, 12, Some(vec!["__consumer_offsets"]));
    let t = &r.topics[0];
    assert_eq!(
        (t.error_code, t.is_internal, t.partitions.len()),
        (0, true, 1)
    );
    assert_eq!(t.partitions[0].leader_id.0, r.brokers[0].node_id.0);
    let id = t.topic_id;
    assert!(!id.is_nil());
    assert_eq!(
        metadata(&mut raw, 12, None).topics.last().unwrap().topic_id,
        id
    );
    // The name cannot be created (nor auto-created), written or deleted.
    assert_eq!(raw.create_topic_with("__consumer_offsets", 1, &[]).0, 36);
    assert_eq!(
        raw.produce_batch("__consumer_offsets", 0, batch(&[b"x"])).0,
        17,
        "not writable: INVALID_TOPIC_EXCEPTION"
    );
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    let mut dt = DeleteTopicsRequest::default();
    dt.topics = vec![DeleteTopicState::default().with_name(Some(name("__consumer_offsets")))];
    dt.timeout_ms = 5000;
    let ResponseKind::DeleteTopics(r) =
        raw.request(ApiKey::DeleteTopics, 6, RequestKind::DeleteTopics(dt))
    else {
        panic!()
    };
    assert_eq!(r.responses[0].error_code, 17, "not deletable");
    assert_eq!(
        metadata(&mut raw, 12, Some(vec!["__consumer_offsets"])).topics[0].error_code,
        0,
        "still there"
    );
    // It reads as an empty log: ListOffsets 0/0, Fetch empty.
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let mut lo = ListOffsetsRequest::default();
    lo.replica_id = BrokerId(-1);
    lo.topics = vec![ListOffsetsTopic::default()
        .with_name(name("__consumer_offsets"))
        .with_partitions(vec![
            ListOffsetsPartition::default().with_timestamp(-2),
            ListOffsetsPartition::default().with_timestamp(-1),
            ListOffsetsPartition::default()
                .with_partition_index(7)
                .with_timestamp(-1),
        ])];
    let ResponseKind::ListOffsets(r) =
        raw.request(ApiKey::ListOffsets, 7, RequestKind::ListOffsets(lo))
    else {
        panic!()
    };
    let ps = &r.topics[0].partitions;
    assert_eq!((ps[0].error_code, ps[0].offset), (0, 0));
    assert_eq!((ps[1].error_code, ps[1].offset), (0, 0));
    assert_eq!(ps[2].error_code, 3, "no partition 7");
    let (code, hw, _, batches) = fetch_v(&mut raw, 12, Some("__consumer_offsets"), None, 0);
    assert_eq!((code, hw, batches), (0, 0, 0));
    let (code, hw, _, batches) = fetch_v(&mut raw, 18, None, Some(id), 0);
    assert_eq!((code, hw, batches), (0, 0, 0));
    // DescribeTopicPartitions of every topic lists it as internal too.
    let ResponseKind::DescribeTopicPartitions(r) = raw.request(
        ApiKey::DescribeTopicPartitions,
        0,
        RequestKind::DescribeTopicPartitions(
            DescribeTopicPartitionsRequest::default().with_response_partition_limit(100),
        ),
    ) else {
        panic!()
    };
    let t = r
        .topics
        .iter()
        .find(|t| {
            t.name
                .as_ref()
                .is_some_and(|n| n.as_str() == "__consumer_offsets")
        })
        .expect("listed");
    assert!(t.is_internal);
    assert_eq!((t.topic_id, t.partitions.len()), (id, 1));
}

/// One Fetch of partition 0 from `offset` (by name before v13, by id from v13):
/// (error code, high watermark, log start, batches).
fn fetch_v(
    raw: &mut Raw,
    version: i16,
    topic: Option<&str>,
    id: Option<uuid::Uuid>,
    offset: i64,
) -> (i16, i64, i64, usize) {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    let mut ft = FetchTopic::default().with_partitions(vec![FetchPartition::default()
        .with_fetch_offset(offset)
        .with_partition_max_bytes(1 << 20)]);
    if let Some(t) = topic {
        ft.topic = name(t);
    }
    if let Some(id) = id {
        ft.topic_id = id;
    }
    let mut req = FetchRequest::default();
    req.max_bytes = 1 << 20;
    req.max_wait_ms = 0;
    req.topics = vec![ft];
    if version <= 14 {
        req.replica_id = BrokerId(-1);
    }
    let ResponseKind::Fetch(r) = raw.request(ApiKey::Fetch, version, RequestKind::Fetch(req))
    else {
        panic!()
    };
    let p = &r.responses[0].partitions[0];
    let batches = p.records.clone().map_or(0, count_batches);
    (p.error_code, p.high_watermark, p.log_start_offset, batches)
}

#[test]
fn newest_versions_with_topic_ids() {
    let b = TestBroker::start(settings("memory://"));
    let mut raw = Raw::connect(b.kafka);
    // ApiVersions: what kafka-python needs to see Kafka 4.x (ListOffsets v10, Produce v13).
    let ResponseKind::ApiVersions(r) = raw.request(
        ApiKey::ApiVersions,
        3,
        RequestKind::ApiVersions(ApiVersionsRequest::default()),
    ) else {
        panic!()
    };
    let max = |k: ApiKey| {
        r.api_keys
            .iter()
            .find(|a| a.api_key == k as i16)
            .map(|a| a.max_version)
    };
    assert_eq!(max(ApiKey::Produce), Some(13));
    assert_eq!(max(ApiKey::Fetch), Some(18));
    assert_eq!(max(ApiKey::ListOffsets), Some(10));
    assert_eq!(max(ApiKey::Metadata), Some(13));
    assert_eq!(max(ApiKey::ListConfigResources), Some(1));
    assert_eq!(
        max(ApiKey::DescribeQuorum),
        None,
        "KRaft only: not advertised"
    );
    assert_eq!(
        max(ApiKey::AlterReplicaLogDirs),
        None,
        "replica logs: not advertised"
    );

    raw.create_topic("ids", &[]);
    let md = metadata(&mut raw, 13, Some(vec!["ids"]));
    assert_eq!(md.error_code, 0);
    let id = md.topics[0].topic_id;
    // Produce v13 addresses the topic by id; the answer carries the id back.
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    let produce = |raw: &mut Raw, id: uuid::Uuid| {
        let mut req = ProduceRequest::default();
        req.acks = -1;
        req.timeout_ms = 10_000;
        req.topic_data = vec![TopicProduceData::default()
            .with_topic_id(id)
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(&[b"a", b"b"])))])];
        let ResponseKind::Produce(r) = raw.request(ApiKey::Produce, 13, RequestKind::Produce(req))
        else {
            panic!()
        };
        let t = &r.responses[0];
        assert_eq!(t.topic_id, id);
        let p = &t.partition_responses[0];
        (p.error_code, p.base_offset, p.error_message.clone())
    };
    assert_eq!(produce(&mut raw, id), (0, 0, None));
    assert_eq!(produce(&mut raw, id).1, 2);
    let (code, _, msg) = produce(&mut raw, uuid::Uuid::from_u128(42));
    assert_eq!(code, 100, "UNKNOWN_TOPIC_ID: {msg:?}");
    // Fetch v17 and v18 (by id) read it back; Fetch v12 by name agrees.
    for v in [17, 18] {
        assert_eq!(
            fetch_v(&mut raw, v, None, Some(id), 0),
            (0, 4, 0, 2),
            "v{v}"
        );
    }
    assert_eq!(fetch_v(&mut raw, 12, Some("ids"), None, 2), (0, 4, 0, 1));
    // ListOffsets v10: earliest-local (-4) is the log start, latest-tiered (-5) is -1.
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let list = |raw: &mut Raw, v: i16, ts: i64| {
        let mut lo = ListOffsetsRequest::default();
        lo.replica_id = BrokerId(-1);
        lo.timeout_ms = 1000;
        lo.topics = vec![ListOffsetsTopic::default()
            .with_name(name("ids"))
            .with_partitions(vec![ListOffsetsPartition::default().with_timestamp(ts)])];
        let ResponseKind::ListOffsets(r) =
            raw.request(ApiKey::ListOffsets, v, RequestKind::ListOffsets(lo))
        else {
            panic!()
        };
        let p = &r.topics[0].partitions[0];
        (p.error_code, p.offset)
    };
    assert_eq!(list(&mut raw, 10, -1), (0, 4));
    assert_eq!(list(&mut raw, 10, -2), (0, 0));
    assert_eq!(list(&mut raw, 10, -3).0, 0);
    assert_eq!(list(&mut raw, 10, -4), (0, 0));
    assert_eq!(list(&mut raw, 10, -5), (0, -1));
    assert_eq!(list(&mut raw, 7, -4).0, 42, "-4 needs v8");
}

#[test]
fn list_config_resources_acls_and_transactions() {
    let b = TestBroker::start(settings("memory://"));
    let mut raw = Raw::connect(b.kafka);
    raw.create_topic("cfg-a", &[]);
    raw.create_topic("cfg-b", &[]);
    let list = |raw: &mut Raw, v: i16, types: Vec<i8>| {
        let ResponseKind::ListConfigResources(r) = raw.request(
            ApiKey::ListConfigResources,
            v,
            RequestKind::ListConfigResources(
                ListConfigResourcesRequest::default().with_resource_types(types),
            ),
        ) else {
            panic!()
        };
        let mut out: Vec<(String, i8)> = r
            .config_resources
            .iter()
            .map(|c| (c.resource_name.to_string(), c.resource_type))
            .collect();
        out.sort();
        (r.error_code, out)
    };
    let ResponseKind::Metadata(md) = raw.request(
        ApiKey::Metadata,
        12,
        RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![]))),
    ) else {
        panic!()
    };
    let broker_id = md.brokers[0].node_id.0.to_string();
    assert_eq!(
        list(&mut raw, 1, vec![]),
        (
            0,
            vec![
                (broker_id.clone(), 4),
                ("cfg-a".into(), 2),
                ("cfg-b".into(), 2)
            ]
        )
    );
    assert_eq!(
        list(&mut raw, 1, vec![2]),
        (0, vec![("cfg-a".into(), 2), ("cfg-b".into(), 2)])
    );
    assert_eq!(list(&mut raw, 1, vec![16, 32]), (0, vec![]));
    assert_eq!(list(&mut raw, 1, vec![99]).0, 42, "unknown type");
    assert_eq!(
        list(&mut raw, 0, vec![]),
        (0, vec![]),
        "v0: client metrics only"
    );

    // ACL APIs without an authorizer: SECURITY_DISABLED, as Kafka.
    use kafka_protocol::messages::create_acls_request::AclCreation;
    use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
    let ResponseKind::CreateAcls(r) = raw.request(
        ApiKey::CreateAcls,
        3,
        RequestKind::CreateAcls(CreateAclsRequest::default().with_creations(vec![
            AclCreation::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("t"))
                .with_resource_pattern_type(3)
                .with_principal(StrBytes::from_static_str("User:a"))
                .with_host(StrBytes::from_static_str("*"))
                .with_operation(3)
                .with_permission_type(3),
        ])),
    ) else {
        panic!()
    };
    assert_eq!(r.results.len(), 1);
    assert_eq!(r.results[0].error_code, 54);
    assert!(r.results[0].error_message.is_some());
    let ResponseKind::DescribeAcls(r) = raw.request(
        ApiKey::DescribeAcls,
        3,
        RequestKind::DescribeAcls(
            DescribeAclsRequest::default()
                .with_resource_type_filter(1)
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1),
        ),
    ) else {
        panic!()
    };
    assert_eq!(r.error_code, 54);
    let ResponseKind::DeleteAcls(r) = raw.request(
        ApiKey::DeleteAcls,
        1,
        RequestKind::DeleteAcls(DeleteAclsRequest::default().with_filters(vec![
            DeleteAclsFilter::default()
                .with_resource_type_filter(1)
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1),
        ])),
    ) else {
        panic!()
    };
    assert_eq!(r.filter_results[0].error_code, 54);

    // A transaction coordinator is asked for: standalone, this broker (cluster mode refuses
    // at once with a reason, see tests/cluster.rs).
    for v in [1, 3, 4] {
        let mut fc = FindCoordinatorRequest::default().with_key_type(1);
        if v < 4 {
            fc.key = StrBytes::from_static_str("txn");
        } else {
            fc.coordinator_keys = vec![StrBytes::from_static_str("txn")];
        }
        let ResponseKind::FindCoordinator(r) =
            raw.request(ApiKey::FindCoordinator, v, RequestKind::FindCoordinator(fc))
        else {
            panic!()
        };
        let (code, node, port) = if v < 4 {
            (r.error_code, r.node_id.0, r.port)
        } else {
            let c = &r.coordinators[0];
            (c.error_code, c.node_id.0, c.port)
        };
        assert_eq!(
            (code, node, port),
            (0, 1, i32::from(b.kafka.port())),
            "v{v}"
        );
    }
    // SHARE (2, share-group state coordinators: not served) and unknown key types are
    // INVALID_REQUEST, as Kafka answers an unknown coordinator type.
    for (v, key_type) in [(3, 2), (4, 2), (4, 9)] {
        let mut fc = FindCoordinatorRequest::default().with_key_type(key_type);
        if v < 4 {
            fc.key = StrBytes::from_static_str("k");
        } else {
            fc.coordinator_keys = vec![StrBytes::from_static_str("k")];
        }
        let ResponseKind::FindCoordinator(r) =
            raw.request(ApiKey::FindCoordinator, v, RequestKind::FindCoordinator(fc))
        else {
            panic!()
        };
        let code = if v < 4 {
            r.error_code
        } else {
            r.coordinators[0].error_code
        };
        assert_eq!(code, 42, "v{v} key type {key_type}");
    }
}

#[test]
fn leadership_apis_standalone() {
    let b = TestBroker::start(settings("memory://"));
    let mut raw = Raw::connect(b.kafka);
    raw.create_topic_with("lead", 2, &[]);
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    let elect = |raw: &mut Raw, v: i16, tps: Option<Vec<TopicPartitions>>| {
        let ResponseKind::ElectLeaders(r) = raw.request(
            ApiKey::ElectLeaders,
            v,
            RequestKind::ElectLeaders(ElectLeadersRequest::default().with_topic_partitions(tps)),
        ) else {
            panic!()
        };
        r
    };
    let r = elect(
        &mut raw,
        2,
        Some(vec![
            TopicPartitions::default()
                .with_topic(name("lead"))
                .with_partitions(vec![0, 1, 5]),
            TopicPartitions::default()
                .with_topic(name("nope"))
                .with_partitions(vec![0]),
        ]),
    );
    let codes: Vec<Vec<i16>> = r
        .replica_election_results
        .iter()
        .map(|t| t.partition_result.iter().map(|p| p.error_code).collect())
        .collect();
    assert_eq!(codes, vec![vec![84, 84, 3], vec![3]]);
    assert_eq!(elect(&mut raw, 0, None).replica_election_results.len(), 0);

    use kafka_protocol::messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };
    let ResponseKind::Metadata(md) = raw.request(
        ApiKey::Metadata,
        12,
        RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![]))),
    ) else {
        panic!()
    };
    let me = md.brokers[0].node_id;
    let ResponseKind::AlterPartitionReassignments(r) = raw.request(
        ApiKey::AlterPartitionReassignments,
        0,
        RequestKind::AlterPartitionReassignments(
            AlterPartitionReassignmentsRequest::default().with_topics(vec![
                ReassignableTopic::default()
                    .with_name(name("lead"))
                    .with_partitions(vec![
                        ReassignablePartition::default()
                            .with_partition_index(0)
                            .with_replicas(Some(vec![me])),
                        ReassignablePartition::default()
                            .with_partition_index(1)
                            .with_replicas(Some(vec![BrokerId(me.0 + 100)])),
                        ReassignablePartition::default().with_partition_index(1),
                    ]),
            ]),
        ),
    ) else {
        panic!()
    };
    let codes: Vec<i16> = r.responses[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(codes, vec![0, 39, 85]);
    assert_eq!(r.responses[0].partitions[0].error_message, None);
    let ResponseKind::ListPartitionReassignments(r) = raw.request(
        ApiKey::ListPartitionReassignments,
        0,
        RequestKind::ListPartitionReassignments(Default::default()),
    ) else {
        panic!()
    };
    assert_eq!((r.error_code, r.topics.len()), (0, 0));
}
