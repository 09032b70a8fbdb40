//! The KIP-848 consumer group protocol (`group.protocol=consumer`) with real librdkafka
//! consumers — balanced assignment, exactly-once consumption with commits, incremental
//! hand-over when a member leaves, regex subscriptions picking up new topics, a member
//! rejoining after kill -9 of its coordinator — and the protocol's errors and cross-protocol
//! answers over raw requests.

mod common;

use common::*;
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

fn protocol_settings(storage: &str) -> heraclitus::config::Settings {
    let mut s = settings(storage);
    s.groups.consumer_heartbeat_interval_ms = 300;
    s.groups.consumer_session_timeout_ms = 10_000;
    s
}

fn produce(bootstrap: &str, topic: &str, partitions: i32, from: usize, n: usize) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    for i in from..from + n {
        let v = format!("{topic}-{i}");
        let rec = BaseRecord::<(), String>::to(topic)
            .partition((i % partitions as usize) as i32)
            .payload(&v);
        p.send(rec).map_err(|(e, _)| e).unwrap();
    }
    p.flush(Duration::from_secs(30)).unwrap();
}

fn consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("group.protocol", "consumer")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("topic.metadata.refresh.interval.ms", "500")
        .create()
        .unwrap()
}

fn partitions(c: &BaseConsumer) -> BTreeSet<i32> {
    c.assignment()
        .map(|a| a.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

/// Commit one record. A commit racing the member's move to a new epoch is refused with
/// STALE_MEMBER_EPOCH, as Kafka refuses it, and librdkafka hands manual commits' errors to the
/// application: retry once the next heartbeat brought the new epoch.
fn commit(c: &BaseConsumer, m: &rdkafka::message::BorrowedMessage<'_>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match c.commit_message(m, CommitMode::Sync) {
            Ok(()) => return,
            Err(rdkafka::error::KafkaError::ConsumerCommit(
                rdkafka::types::RDKafkaErrorCode::StaleMemberEpoch,
            )) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("commit: {e}"),
        }
    }
}

/// Poll every consumer, committing each record, until `want` distinct values were seen (or
/// 60 s). Returns value → how many times it was delivered.
fn consume_all(cs: &[&BaseConsumer], seen: &mut BTreeMap<String, usize>, want: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < want && Instant::now() < deadline {
        for c in cs {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(20)) {
                let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
                *seen.entry(v).or_default() += 1;
                commit(c, &m);
            }
        }
    }
}

fn describe(b: &TestBroker, group: &str) -> consumer_group_describe_response::DescribedGroup {
    let mut raw = Raw::connect(b.kafka);
    let mut req = ConsumerGroupDescribeRequest::default();
    req.group_ids = vec![GroupId(StrBytes::from_string(group.to_string()))];
    let ResponseKind::ConsumerGroupDescribe(mut r) = raw.request(
        ApiKey::ConsumerGroupDescribe,
        1,
        RequestKind::ConsumerGroupDescribe(req),
    ) else {
        panic!()
    };
    r.groups.remove(0)
}

/// Three members over six partitions: two each, every record consumed exactly once with
/// commits; when one leaves, the other two take over its partitions without giving up theirs.
#[test]
fn members_share_partitions_and_hand_over_incrementally() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(protocol_settings(dir.path().to_str().unwrap()));
    let bs = b.bootstrap();
    Raw::connect(b.kafka).create_topic_with("cp6", 6, &[]);
    let cs: Vec<BaseConsumer> = (0..3).map(|_| consumer(&bs, "g-cp")).collect();
    for c in &cs {
        c.subscribe(&["cp6"]).unwrap();
    }
    // Balanced once reconciled.
    let deadline = Instant::now() + Duration::from_secs(20);
    while cs.iter().any(|c| partitions(c).len() != 2) && Instant::now() < deadline {
        for c in &cs {
            c.poll(Duration::from_millis(20));
        }
    }
    let before: Vec<BTreeSet<i32>> = cs.iter().map(partitions).collect();
    assert!(before.iter().all(|p| p.len() == 2), "{before:?}");
    produce(&bs, "cp6", 6, 0, 600);
    let mut seen = BTreeMap::new();
    consume_all(&cs.iter().collect::<Vec<_>>(), &mut seen, 600);
    assert_eq!(seen.len(), 600);
    assert!(seen.values().all(|n| *n == 1), "a record delivered twice");
    let g = describe(&b, "g-cp");
    assert_eq!(g.error_code, 0);
    assert_eq!(g.group_state.as_str(), "Stable");
    assert_eq!(g.assignor_name.as_str(), "uniform");
    assert_eq!(g.members.len(), 3);
    assert!(g
        .members
        .iter()
        .all(|m| m.member_epoch == g.assignment_epoch));
    // One member leaves; more records arrive meanwhile.
    let mut cs = cs;
    let gone = cs.pop().unwrap();
    gone.unsubscribe();
    drop(gone);
    produce(&bs, "cp6", 6, 600, 300);
    consume_all(&cs.iter().collect::<Vec<_>>(), &mut seen, 900);
    let deadline = Instant::now() + Duration::from_secs(20);
    while cs.iter().any(|c| partitions(c).len() != 3) && Instant::now() < deadline {
        for c in &cs {
            c.poll(Duration::from_millis(20));
        }
    }
    assert_eq!(seen.len(), 900);
    assert!(seen.values().all(|n| *n == 1), "a record delivered twice");
    for (i, c) in cs.iter().enumerate() {
        let now = partitions(c);
        assert_eq!(now.len(), 3);
        assert!(before[i].is_subset(&now), "member {i} gave up a partition");
    }
    let g = describe(&b, "g-cp");
    assert_eq!((g.members.len(), g.group_state.as_str()), (2, "Stable"));
    // ListGroups reports the type.
    let mut raw = Raw::connect(b.kafka);
    let ResponseKind::ListGroups(l) = raw.request(
        ApiKey::ListGroups,
        5,
        RequestKind::ListGroups(ListGroupsRequest::default()),
    ) else {
        panic!()
    };
    let listed = l
        .groups
        .iter()
        .find(|g| g.group_id.as_str() == "g-cp")
        .unwrap();
    assert_eq!(listed.group_type.as_str(), "consumer");
    assert_eq!(listed.group_state.as_str(), "Stable");
    drop(cs);
    b.stop();
}

/// A regex subscription picks up a topic created after the consumer joined.
#[test]
fn regex_subscription_follows_new_topics() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(protocol_settings(dir.path().to_str().unwrap()));
    let bs = b.bootstrap();
    let mut raw = Raw::connect(b.kafka);
    raw.create_topic_with("rx-a", 2, &[]);
    raw.create_topic_with("other", 1, &[]);
    produce(&bs, "rx-a", 2, 0, 20);
    produce(&bs, "other", 1, 0, 5);
    let c = consumer(&bs, "g-rx");
    c.subscribe(&["^rx-.*"]).unwrap();
    let mut seen = BTreeMap::new();
    consume_all(&[&c], &mut seen, 20);
    assert_eq!(seen.len(), 20);
    raw.create_topic_with("rx-b", 3, &[]);
    produce(&bs, "rx-b", 3, 0, 30);
    consume_all(&[&c], &mut seen, 50);
    assert_eq!(seen.len(), 50, "records of the later topic consumed");
    assert!(seen.keys().all(|k| k.starts_with("rx-")));
    let g = describe(&b, "g-rx");
    let re = g.members[0]
        .subscribed_topic_regex
        .clone()
        .unwrap_or_default();
    assert!(re.contains("^rx-.*"), "{re}");
    drop(c);
    b.stop();
}

fn heartbeat(raw: &mut Raw, req: ConsumerGroupHeartbeatRequest) -> ConsumerGroupHeartbeatResponse {
    let ResponseKind::ConsumerGroupHeartbeat(r) = raw.request(
        ApiKey::ConsumerGroupHeartbeat,
        1,
        RequestKind::ConsumerGroupHeartbeat(req),
    ) else {
        panic!()
    };
    r
}

fn join_request(group: &str, member: &str, topic: &str) -> ConsumerGroupHeartbeatRequest {
    let mut r = ConsumerGroupHeartbeatRequest::default();
    r.group_id = GroupId(StrBytes::from_string(group.to_string()));
    r.member_id = StrBytes::from_string(member.to_string());
    r.member_epoch = 0;
    r.rebalance_timeout_ms = 30_000;
    r.subscribed_topic_names = Some(vec![TopicName(StrBytes::from_string(topic.to_string()))]);
    r.topic_partitions = Some(Vec::new());
    r
}

fn raw_commit(raw: &mut Raw, version: i16, group: &str, member: &str, epoch: i32) -> i16 {
    let mut p = OffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = 1;
    let mut t = OffsetCommitRequestTopic::default();
    t.name = TopicName(StrBytes::from_static_str("raw848"));
    t.partitions = vec![p];
    let mut req = OffsetCommitRequest::default();
    req.group_id = GroupId(StrBytes::from_string(group.to_string()));
    req.member_id = StrBytes::from_string(member.to_string());
    req.generation_id_or_member_epoch = epoch;
    req.topics = vec![t];
    let ResponseKind::OffsetCommit(r) = raw.request(
        ApiKey::OffsetCommit,
        version,
        RequestKind::OffsetCommit(req),
    ) else {
        panic!()
    };
    r.topics[0].partitions[0].error_code
}

/// The protocol's errors as Kafka answers them, and what the classic APIs say about a
/// consumer-protocol group (and the reverse).
#[test]
fn heartbeat_errors_and_cross_protocol_answers() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(protocol_settings(dir.path().to_str().unwrap()));
    let mut raw = Raw::connect(b.kafka);
    raw.create_topic_with("raw848", 2, &[]);
    // Validation.
    let mut r = join_request("g-raw", "m1", "raw848");
    r.server_assignor = Some(StrBytes::from_static_str("sticky"));
    assert_eq!(
        heartbeat(&mut raw, r).error_code,
        112,
        "UNSUPPORTED_ASSIGNOR"
    );
    let mut r = join_request("g-raw", "m1", "raw848");
    r.rebalance_timeout_ms = -1;
    assert_eq!(heartbeat(&mut raw, r).error_code, 42, "INVALID_REQUEST");
    let mut r = join_request("g-raw", "m1", "raw848");
    r.subscribed_topic_names = None;
    r.subscribed_topic_regex = Some(StrBytes::from_static_str("(bad"));
    assert_eq!(
        heartbeat(&mut raw, r).error_code,
        128,
        "INVALID_REGULAR_EXPRESSION"
    );
    assert_eq!(
        heartbeat(&mut raw, join_request("g-raw", "", "raw848")).error_code,
        42,
        "v1 needs a member id"
    );
    // A join gets everything at epoch 1.
    let r = heartbeat(&mut raw, join_request("g-raw", "m1", "raw848"));
    assert_eq!(r.error_code, 0);
    assert_eq!(r.member_epoch, 1);
    assert_eq!(r.heartbeat_interval_ms, 300);
    let a = r.assignment.unwrap();
    assert_eq!(a.topic_partitions.len(), 1);
    assert_eq!(a.topic_partitions[0].partitions, vec![0, 1]);
    // Epochs are fenced.
    let mut hb = ConsumerGroupHeartbeatRequest::default();
    hb.group_id = GroupId(StrBytes::from_static_str("g-raw"));
    hb.member_id = StrBytes::from_static_str("m1");
    hb.member_epoch = 5;
    hb.rebalance_timeout_ms = -1;
    assert_eq!(
        heartbeat(&mut raw, hb.clone()).error_code,
        110,
        "FENCED_MEMBER_EPOCH"
    );
    hb.member_epoch = 1;
    let ok = heartbeat(&mut raw, hb.clone());
    assert_eq!((ok.error_code, ok.member_epoch), (0, 1));
    assert!(ok.assignment.is_none(), "unchanged: no assignment");
    hb.member_id = StrBytes::from_static_str("nobody");
    assert_eq!(
        heartbeat(&mut raw, hb.clone()).error_code,
        25,
        "UNKNOWN_MEMBER_ID"
    );
    // The owned partitions are reported by topic id.
    let mut tp = TopicPartitions::default();
    tp.topic_id = a.topic_partitions[0].topic_id;
    tp.partitions = vec![0, 1];
    hb.member_id = StrBytes::from_static_str("m1");
    hb.topic_partitions = Some(vec![tp]);
    assert_eq!(heartbeat(&mut raw, hb).error_code, 0);
    // Commits: the member's epoch and OffsetCommit v9.
    assert_eq!(raw_commit(&mut raw, 9, "g-raw", "m1", 1), 0);
    assert_eq!(
        raw_commit(&mut raw, 9, "g-raw", "m1", 0),
        113,
        "STALE_MEMBER_EPOCH"
    );
    assert_eq!(
        raw_commit(&mut raw, 8, "g-raw", "m1", 1),
        35,
        "UNSUPPORTED_VERSION"
    );
    assert_eq!(
        raw_commit(&mut raw, 9, "g-raw", "", -1),
        25,
        "UNKNOWN_MEMBER_ID"
    );
    // Classic APIs: a classic member joins the consumer group (a mixed group: answered at once,
    // not the leader, its generation is its member epoch), and DescribeGroups (v5) reports the
    // group Dead (it has no classic view).
    let mut p = JoinGroupRequestProtocol::default();
    p.name = StrBytes::from_static_str("range");
    p.metadata = bytes::Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let mut j = JoinGroupRequest::default();
    j.group_id = GroupId(StrBytes::from_static_str("g-raw"));
    j.session_timeout_ms = 10_000;
    j.rebalance_timeout_ms = 10_000;
    j.member_id = StrBytes::from_static_str("classic-1");
    j.protocol_type = StrBytes::from_static_str("consumer");
    j.protocols = vec![p];
    let ResponseKind::JoinGroup(jr) = raw.request(ApiKey::JoinGroup, 5, RequestKind::JoinGroup(j))
    else {
        panic!()
    };
    assert_eq!(jr.error_code, 0);
    assert_eq!(jr.leader.as_str(), "");
    assert_eq!(jr.generation_id, 2, "a new member: a new epoch");
    let g = describe(&b, "g-raw");
    let types: Vec<(String, i8)> = g
        .members
        .iter()
        .map(|m| (m.member_id.to_string(), m.member_type))
        .collect();
    assert!(types.contains(&("classic-1".to_string(), 0)), "{types:?}");
    assert!(types.contains(&("m1".to_string(), 1)), "{types:?}");
    let mut lv = LeaveGroupRequest::default();
    lv.group_id = GroupId(StrBytes::from_static_str("g-raw"));
    lv.members = vec![leave_group_request::MemberIdentity::default()
        .with_member_id(StrBytes::from_static_str("classic-1"))];
    let ResponseKind::LeaveGroup(lr) =
        raw.request(ApiKey::LeaveGroup, 3, RequestKind::LeaveGroup(lv))
    else {
        panic!()
    };
    assert_eq!(lr.members[0].error_code, 0);
    let mut d = DescribeGroupsRequest::default();
    d.groups = vec![GroupId(StrBytes::from_static_str("g-raw"))];
    let ResponseKind::DescribeGroups(dr) =
        raw.request(ApiKey::DescribeGroups, 5, RequestKind::DescribeGroups(d))
    else {
        panic!()
    };
    assert_eq!(dr.groups[0].group_state.as_str(), "Dead");
    // Leaving: epoch -1 echoed, the group empties (and stays a consumer group).
    let mut leave = ConsumerGroupHeartbeatRequest::default();
    leave.group_id = GroupId(StrBytes::from_static_str("g-raw"));
    leave.member_id = StrBytes::from_static_str("m1");
    leave.member_epoch = -1;
    leave.rebalance_timeout_ms = -1;
    let r = heartbeat(&mut raw, leave);
    assert_eq!((r.error_code, r.member_epoch), (0, -1));
    let g = describe(&b, "g-raw");
    assert_eq!((g.error_code, g.group_state.as_str()), (0, "Empty"));
    // ConsumerGroupDescribe of a group that does not exist.
    let g = describe(&b, "no-such-group");
    assert_eq!(g.error_code, 69, "GROUP_ID_NOT_FOUND");
    b.stop();
}

fn describe_group_configs(raw: &mut Raw, group: &str) -> (i16, BTreeMap<String, (String, i8)>) {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    let mut dc = DescribeConfigsRequest::default();
    dc.resources = vec![DescribeConfigsResource::default()
        .with_resource_type(32)
        .with_resource_name(StrBytes::from_string(group.to_string()))
        .with_configuration_keys(None)];
    let ResponseKind::DescribeConfigs(r) =
        raw.request(ApiKey::DescribeConfigs, 4, RequestKind::DescribeConfigs(dc))
    else {
        panic!()
    };
    let res = &r.results[0];
    let configs = res
        .configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                (
                    c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                    c.config_source,
                ),
            )
        })
        .collect();
    (res.error_code, configs)
}

/// (operation, name, value) changes to one group's configs: (error code, message).
fn alter_group_configs(
    raw: &mut Raw,
    group: &str,
    changes: &[(i8, &str, Option<&str>)],
    validate_only: bool,
) -> (i16, String) {
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    let mut req = IncrementalAlterConfigsRequest::default();
    req.validate_only = validate_only;
    req.resources = vec![AlterConfigsResource::default()
        .with_resource_type(32)
        .with_resource_name(StrBytes::from_string(group.to_string()))
        .with_configs(
            changes
                .iter()
                .map(|(op, name, value)| {
                    AlterableConfig::default()
                        .with_name(StrBytes::from_string(name.to_string()))
                        .with_config_operation(*op)
                        .with_value(value.map(|v| StrBytes::from_string(v.to_string())))
                })
                .collect(),
        )];
    let ResponseKind::IncrementalAlterConfigs(r) = raw.request(
        ApiKey::IncrementalAlterConfigs,
        1,
        RequestKind::IncrementalAlterConfigs(req),
    ) else {
        panic!()
    };
    let r = &r.responses[0];
    (
        r.error_code,
        r.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

/// Group configs (Kafka 4's GROUP config resource): described with defaults for any group,
/// overridden and validated as Kafka validates them, persisted across a restart, listed by
/// ListConfigResources, replaced whole by the legacy AlterConfigs, and applied to a consumer
/// group's heartbeat interval on the member's next heartbeat.
#[test]
fn group_configs_are_validated_persisted_and_applied() {
    const SET: i8 = 0;
    const DELETE: i8 = 1;
    const APPEND: i8 = 2;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_string();
    let b = TestBroker::start(protocol_settings(&path));
    let mut raw = Raw::connect(b.kafka);
    raw.create_topic("gcfg", &[]);

    // Any group name has the defaults (the broker's settings here).
    let (code, all) = describe_group_configs(&mut raw, "cfg-group");
    assert_eq!(code, 0);
    assert_eq!(all.len(), 11, "{all:?}");
    assert_eq!(all["consumer.heartbeat.interval.ms"], ("300".into(), 5));
    assert_eq!(all["share.auto.offset.reset"], ("latest".into(), 5));
    assert_eq!(describe_group_configs(&mut raw, "").0, 42);

    // Kafka's validation.
    let bad = |raw: &mut Raw, changes: &[(i8, &str, Option<&str>)]| {
        alter_group_configs(raw, "cfg-group", changes, false)
    };
    let (code, msg) = bad(
        &mut raw,
        &[(SET, "consumer.session.timeout.ms", Some("1000"))],
    );
    assert_eq!(code, 40);
    assert!(
        msg.ends_with("consumer.session.timeout.ms must be in the range 10000 to 60000 inclusive."),
        "{msg}"
    );
    let (code, msg) = bad(&mut raw, &[(SET, "no.such.config", Some("1"))]);
    assert_eq!(code, 40);
    assert!(
        msg.ends_with("Unknown group config name: no.such.config"),
        "{msg}"
    );
    assert_eq!(
        bad(
            &mut raw,
            &[(SET, "consumer.heartbeat.interval.ms", Some("x"))]
        )
        .0,
        40
    );
    assert_eq!(
        bad(
            &mut raw,
            &[(APPEND, "share.auto.offset.reset", Some("latest"))]
        )
        .0,
        40
    );
    assert_eq!(
        bad(&mut raw, &[(SET, "share.auto.offset.reset", None)]).0,
        42
    );
    assert_eq!(alter_group_configs(&mut raw, "", &[], false).0, 42);
    // validate_only checks without storing.
    assert_eq!(
        alter_group_configs(
            &mut raw,
            "cfg-group",
            &[(SET, "share.auto.offset.reset", Some("earliest"))],
            true
        )
        .0,
        0
    );
    assert_eq!(
        describe_group_configs(&mut raw, "cfg-group").1["share.auto.offset.reset"].0,
        "latest"
    );
    // Nothing above was stored: no group has configs yet.
    let list_groups_with_configs = |raw: &mut Raw| {
        let ResponseKind::ListConfigResources(r) = raw.request(
            ApiKey::ListConfigResources,
            1,
            RequestKind::ListConfigResources(
                ListConfigResourcesRequest::default().with_resource_types(vec![32]),
            ),
        ) else {
            panic!()
        };
        r.config_resources
            .iter()
            .map(|c| c.resource_name.to_string())
            .collect::<Vec<_>>()
    };
    assert!(list_groups_with_configs(&mut raw).is_empty());

    // A consumer-protocol member gets the broker's interval, then the group's own.
    let mut member = join_request("cfg-group", "", "gcfg");
    member.member_id = StrBytes::from_static_str("cfg-member-1");
    let r = heartbeat(&mut raw, member.clone());
    assert_eq!((r.error_code, r.heartbeat_interval_ms), (0, 300));
    assert_eq!(
        alter_group_configs(
            &mut raw,
            "cfg-group",
            &[
                (SET, "consumer.heartbeat.interval.ms", Some("7000")),
                (SET, "share.auto.offset.reset", Some("by_duration:PT1H")),
            ],
            false
        ),
        (0, String::new())
    );
    let (_, all) = describe_group_configs(&mut raw, "cfg-group");
    assert_eq!(all["consumer.heartbeat.interval.ms"], ("7000".into(), 8));
    let mut next = member.clone();
    next.member_epoch = r.member_epoch;
    next.subscribed_topic_names = None;
    next.topic_partitions = None;
    let r2 = heartbeat(&mut raw, next);
    assert_eq!((r2.error_code, r2.heartbeat_interval_ms), (0, 7000));
    assert_eq!(
        list_groups_with_configs(&mut raw),
        vec!["cfg-group".to_string()]
    );

    // Persisted: a restarted broker describes the same overrides.
    drop(raw);
    b.stop();
    let b = TestBroker::start(protocol_settings(&path));
    let mut raw = Raw::connect(b.kafka);
    let (_, all) = describe_group_configs(&mut raw, "cfg-group");
    assert_eq!(all["consumer.heartbeat.interval.ms"], ("7000".into(), 8));
    assert_eq!(
        all["share.auto.offset.reset"],
        ("by_duration:PT1H".into(), 8)
    );

    // DELETE returns a config to its default; the legacy AlterConfigs replaces the whole set.
    assert_eq!(
        alter_group_configs(
            &mut raw,
            "cfg-group",
            &[(DELETE, "consumer.heartbeat.interval.ms", None)],
            false
        )
        .0,
        0
    );
    assert_eq!(
        describe_group_configs(&mut raw, "cfg-group").1["consumer.heartbeat.interval.ms"],
        ("300".into(), 5)
    );
    {
        use kafka_protocol::messages::alter_configs_request::{
            AlterConfigsResource, AlterableConfig,
        };
        let mut req = AlterConfigsRequest::default();
        req.resources = vec![AlterConfigsResource::default()
            .with_resource_type(32)
            .with_resource_name(StrBytes::from_static_str("cfg-group"))
            .with_configs(vec![AlterableConfig::default()
                .with_name(StrBytes::from_static_str("consumer.session.timeout.ms"))
                .with_value(Some(StrBytes::from_static_str("50000")))])];
        let ResponseKind::AlterConfigs(r) =
            raw.request(ApiKey::AlterConfigs, 2, RequestKind::AlterConfigs(req))
        else {
            panic!()
        };
        assert_eq!(r.responses[0].error_code, 0);
    }
    let (_, all) = describe_group_configs(&mut raw, "cfg-group");
    assert_eq!(all["consumer.session.timeout.ms"], ("50000".into(), 8));
    assert_eq!(
        all["share.auto.offset.reset"],
        ("latest".into(), 5),
        "replaced"
    );
    drop(raw);
    b.stop();
}

/// kill -9 of the broker under a consumer-protocol group: membership is in memory, so the
/// restarted coordinator answers the member's next heartbeat UNKNOWN_MEMBER_ID; librdkafka
/// rejoins (never a fatal error) and goes on from the committed offsets — every record is
/// consumed, none lost, and only a record whose commit the kill cut off may come twice.
#[test]
fn members_rejoin_after_a_coordinator_restart() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().to_str().unwrap().to_string();
    let (kp, hp) = (free_port(), free_port());
    let env = [
        ("HERACLITUS_GROUPS__CONSUMER_HEARTBEAT_INTERVAL_MS", "300"),
        ("HERACLITUS_GROUPS__CONSUMER_SESSION_TIMEOUT_MS", "10000"),
    ];
    let b = BinaryBroker::start(&storage, kp, hp, &env);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{kp}").parse().unwrap();
    Raw::connect(addr).create_topic_with("restarted", 3, &[]);
    produce(&b.bootstrap(), "restarted", 3, 0, 60);
    let c = consumer(&b.bootstrap(), "survivors");
    c.subscribe(&["restarted"]).unwrap();
    let mut seen = BTreeMap::new();
    consume_all(&[&c], &mut seen, 30);
    assert!(seen.len() >= 30, "{} consumed before the kill", seen.len());
    b.kill9();

    let b = BinaryBroker::start(&storage, kp, hp, &env);
    produce(&b.bootstrap(), "restarted", 3, 60, 60);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut uncommitted = 0;
    while seen.len() < 120 && Instant::now() < deadline {
        match c.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => {
                let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
                *seen.entry(v).or_default() += 1;
                // Until the member has rejoined (librdkafka does so once the application
                // polls past the lost partitions) its commits are refused
                // (UNKNOWN_MEMBER_ID): such a record comes again from the last commit.
                if c.commit_message(&m, CommitMode::Sync).is_err() {
                    uncommitted += 1;
                }
            }
            Some(Err(e)) => {
                assert!(
                    !matches!(
                        e.rdkafka_error_code(),
                        Some(rdkafka::types::RDKafkaErrorCode::Fatal)
                    ),
                    "fatal consumer error: {e}"
                );
            }
            None => {}
        }
    }
    let missing: Vec<String> = (0..120)
        .map(|i| format!("restarted-{i}"))
        .filter(|v| !seen.contains_key(v))
        .collect();
    assert!(missing.is_empty(), "never consumed: {missing:?}");
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.len() <= uncommitted,
        "redelivered beyond what was not committed ({uncommitted}): {twice:?}"
    );
    drop(c); // closed while its broker still answers
}
