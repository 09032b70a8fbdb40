//! ACL authorization end to end: the ACL APIs (CreateAcls, DescribeAcls, DeleteAcls with
//! Kafka's filters), what every principal may do once ACLs exist (produce, fetch, metadata,
//! groups, admin APIs) with Kafka's error codes, super users, persistence across a restart,
//! the denial metric, and librdkafka clients refused and then allowed.

mod common;

use common::*;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::time::Duration;

// Kafka's codes (ResourceType, PatternType, AclOperation, AclPermissionType).
const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const ANY: i8 = 1;
const MATCH: i8 = 2;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const ALL: i8 = 2;
const READ: i8 = 3;
const WRITE: i8 = 4;
const DESCRIBE: i8 = 8;
const DENY: i8 = 2;
const ALLOW: i8 = 3;

const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const GROUP_AUTHORIZATION_FAILED: i16 = 30;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const INVALID_REQUEST: i16 = 42;

fn acl_settings(storage: &str) -> heraclitus::config::Settings {
    let mut s = settings(storage);
    s.auth.enabled = true;
    s.auth.users = ["admin", "alice", "bob"]
        .iter()
        .map(|u| heraclitus::config::UserSettings {
            username: u.to_string(),
            password: Some(format!("{u}-secret")),
            scram_sha_256: None,
            scram_sha_512: None,
        })
        .collect();
    s.authorization.enabled = true;
    s.authorization.super_users = vec!["User:admin".into()];
    s
}

fn login(b: &TestBroker, user: &str) -> Raw {
    Raw::connect_plain(b.kafka, user, &format!("{user}-secret"))
}

type Acl<'a> = (i8, &'a str, i8, &'a str, i8, i8);

fn create_acls(raw: &mut Raw, acls: &[Acl]) -> Vec<i16> {
    let req = CreateAclsRequest::default().with_creations(
        acls.iter()
            .map(|(rt, name, pt, principal, op, perm)| {
                AclCreation::default()
                    .with_resource_type(*rt)
                    .with_resource_name(StrBytes::from_string(name.to_string()))
                    .with_resource_pattern_type(*pt)
                    .with_principal(StrBytes::from_string(principal.to_string()))
                    .with_host(StrBytes::from_static_str("*"))
                    .with_operation(*op)
                    .with_permission_type(*perm)
            })
            .collect(),
    );
    let ResponseKind::CreateAcls(r) =
        raw.request(ApiKey::CreateAcls, 3, RequestKind::CreateAcls(req))
    else {
        panic!()
    };
    r.results.iter().map(|x| x.error_code).collect()
}

/// A described binding: (resource type, name, pattern, principal, operation, permission).
type Described = (i8, String, i8, String, i8, i8);

/// DescribeAcls v3: (error code, bindings).
fn describe_acls(raw: &mut Raw, rt: i8, name: Option<&str>, pt: i8) -> (i16, Vec<Described>) {
    let req = DescribeAclsRequest::default()
        .with_resource_type_filter(rt)
        .with_resource_name_filter(name.map(|n| StrBytes::from_string(n.to_string())))
        .with_pattern_type_filter(pt)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(ANY)
        .with_permission_type(ANY);
    let ResponseKind::DescribeAcls(r) =
        raw.request(ApiKey::DescribeAcls, 3, RequestKind::DescribeAcls(req))
    else {
        panic!()
    };
    let mut out = Vec::new();
    for res in &r.resources {
        for a in &res.acls {
            out.push((
                res.resource_type,
                res.resource_name.to_string(),
                res.pattern_type,
                a.principal.to_string(),
                a.operation,
                a.permission_type,
            ));
        }
    }
    (r.error_code, out)
}

/// DeleteAcls v3 of one filter on a resource type and principal: (error code, bindings
/// removed).
fn delete_acls(raw: &mut Raw, rt: i8, principal: Option<&str>) -> (i16, usize) {
    let f = DeleteAclsFilter::default()
        .with_resource_type_filter(rt)
        .with_resource_name_filter(None)
        .with_pattern_type_filter(ANY)
        .with_principal_filter(principal.map(|p| StrBytes::from_string(p.to_string())))
        .with_host_filter(None)
        .with_operation(ANY)
        .with_permission_type(ANY);
    let req = DeleteAclsRequest::default().with_filters(vec![f]);
    let ResponseKind::DeleteAcls(r) =
        raw.request(ApiKey::DeleteAcls, 3, RequestKind::DeleteAcls(req))
    else {
        panic!()
    };
    let f = &r.filter_results[0];
    (f.error_code, f.matching_acls.len())
}

/// Metadata v10 asking for authorized operations: [(name, error code, topic operations)] and
/// the cluster's operations.
fn metadata(raw: &mut Raw, topics: Option<&[&str]>) -> (Vec<(String, i16, i32)>, i32) {
    let req = MetadataRequest::default()
        .with_topics(topics.map(|ts| {
            ts.iter()
                .map(|t| {
                    metadata_request::MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(t.to_string()))))
                })
                .collect()
        }))
        .with_allow_auto_topic_creation(false)
        .with_include_cluster_authorized_operations(true)
        .with_include_topic_authorized_operations(true);
    let ResponseKind::Metadata(m) = raw.request(ApiKey::Metadata, 10, RequestKind::Metadata(req))
    else {
        panic!()
    };
    let topics = m
        .topics
        .iter()
        .map(|t| {
            (
                t.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                t.error_code,
                t.topic_authorized_operations,
            )
        })
        .collect();
    (topics, m.cluster_authorized_operations)
}

fn fetch_code(raw: &mut Raw, topic: &str) -> i16 {
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let ResponseKind::Fetch(f) = raw.request(ApiKey::Fetch, 12, RequestKind::Fetch(req)) else {
        panic!()
    };
    f.responses[0].partitions[0].error_code
}

/// A simple (generation -1) OffsetCommit v8 of offset 0 on partition 0.
fn commit_code(raw: &mut Raw, group: &str, topic: &str) -> i16 {
    use offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(0)])]);
    let ResponseKind::OffsetCommit(r) =
        raw.request(ApiKey::OffsetCommit, 8, RequestKind::OffsetCommit(req))
    else {
        panic!()
    };
    r.topics[0].partitions[0].error_code
}

fn find_coordinator_code(raw: &mut Raw, group: &str) -> i16 {
    let req = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_string(group.to_string()))
        .with_key_type(0);
    let ResponseKind::FindCoordinator(r) = raw.request(
        ApiKey::FindCoordinator,
        3,
        RequestKind::FindCoordinator(req),
    ) else {
        panic!()
    };
    r.error_code
}

fn init_pid_code(raw: &mut Raw) -> i16 {
    let req = InitProducerIdRequest::default()
        .with_transaction_timeout_ms(-1)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let ResponseKind::InitProducerId(r) =
        raw.request(ApiKey::InitProducerId, 4, RequestKind::InitProducerId(req))
    else {
        panic!()
    };
    r.error_code
}

fn delete_topic_code(raw: &mut Raw, topic: &str) -> i16 {
    let req = DeleteTopicsRequest::default()
        .with_topic_names(vec![TopicName(StrBytes::from_string(topic.to_string()))])
        .with_timeout_ms(5000);
    let ResponseKind::DeleteTopics(r) =
        raw.request(ApiKey::DeleteTopics, 5, RequestKind::DeleteTopics(req))
    else {
        panic!()
    };
    r.responses[0].error_code
}

fn bits(ops: &[i8]) -> i32 {
    ops.iter().fold(0, |b, o| b | (1 << o))
}

/// The whole model through the Kafka API, standalone, and persisted across a restart.
#[test]
fn acls_are_managed_enforced_and_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_string();
    let b = TestBroker::start(acl_settings(&path));
    let mut admin = login(&b, "admin");
    for t in ["orders", "logs-1", "secret"] {
        admin.create_topic(t, &[]);
    }
    let mut alice = login(&b, "alice");
    // No ACL at all: nothing is visible or writable (allow_everyone_if_no_acl_found is off).
    assert_eq!(metadata(&mut alice, None).0, vec![]);
    assert_eq!(
        alice.produce_batch("orders", 0, batch(&[b"x"])).0,
        TOPIC_AUTHORIZATION_FAILED
    );
    assert_eq!(init_pid_code(&mut alice), CLUSTER_AUTHORIZATION_FAILED);
    // Only a principal with ALTER on the cluster manages ACLs.
    assert_eq!(
        create_acls(
            &mut alice,
            &[(TOPIC, "orders", LITERAL, "User:alice", ALL, ALLOW)]
        ),
        vec![CLUSTER_AUTHORIZATION_FAILED]
    );
    assert_eq!(
        describe_acls(&mut alice, ANY, None, ANY).0,
        CLUSTER_AUTHORIZATION_FAILED
    );
    // The super user grants; an invalid binding is refused on its own.
    assert_eq!(
        create_acls(
            &mut admin,
            &[
                (TOPIC, "orders", LITERAL, "User:alice", WRITE, ALLOW),
                (TOPIC, "logs-", PREFIXED, "User:alice", READ, ALLOW),
                (GROUP, "g1", LITERAL, "User:alice", READ, ALLOW),
                (TOPIC, "*", LITERAL, "User:bob", ALL, ALLOW),
                (TOPIC, "secret", LITERAL, "User:bob", READ, DENY),
                (TOPIC, "x", MATCH, "User:bob", READ, ALLOW),
                (CLUSTER, "other", LITERAL, "User:bob", ALL, ALLOW),
                (TOPIC, "x", LITERAL, "bob", READ, ALLOW),
            ]
        ),
        vec![
            0,
            0,
            0,
            0,
            0,
            INVALID_REQUEST,
            INVALID_REQUEST,
            INVALID_REQUEST
        ]
    );
    // They apply to the next request of a connection opened before.
    assert_eq!(alice.produce_batch("orders", 0, batch(&[b"x"])).0, 0);
    assert_eq!(
        init_pid_code(&mut alice),
        0,
        "WRITE on a topic allows idempotence"
    );
    let (topics, cluster_ops) = metadata(&mut alice, None);
    let mut names: Vec<&str> = topics.iter().map(|t| t.0.as_str()).collect();
    names.sort();
    assert_eq!(names, vec!["logs-1", "orders"], "secret is hidden");
    assert_eq!(cluster_ops, 0);
    let orders = topics.iter().find(|t| t.0 == "orders").unwrap();
    assert_eq!(orders.2, bits(&[WRITE, DESCRIBE]));
    let (named, _) = metadata(&mut alice, Some(&["secret", "orders"]));
    assert_eq!(named[0].1, TOPIC_AUTHORIZATION_FAILED);
    assert_eq!(named[1].1, 0);
    assert_eq!(fetch_code(&mut alice, "orders"), TOPIC_AUTHORIZATION_FAILED);
    assert_eq!(fetch_code(&mut alice, "logs-1"), 0);
    // Groups: READ on g1 only.
    assert_eq!(commit_code(&mut alice, "g1", "logs-1"), 0);
    assert_eq!(
        commit_code(&mut alice, "g1", "orders"),
        TOPIC_AUTHORIZATION_FAILED
    );
    assert_eq!(
        commit_code(&mut alice, "g2", "logs-1"),
        GROUP_AUTHORIZATION_FAILED
    );
    assert_eq!(find_coordinator_code(&mut alice, "g1"), 0);
    assert_eq!(
        find_coordinator_code(&mut alice, "g2"),
        GROUP_AUTHORIZATION_FAILED
    );
    assert_eq!(
        delete_topic_code(&mut alice, "orders"),
        TOPIC_AUTHORIZATION_FAILED
    );
    // Deny wins over allow: bob may do anything with any topic except read secret.
    let mut bob = login(&b, "bob");
    assert_eq!(fetch_code(&mut bob, "orders"), 0);
    assert_eq!(fetch_code(&mut bob, "secret"), TOPIC_AUTHORIZATION_FAILED);
    assert_eq!(bob.produce_batch("secret", 0, batch(&[b"y"])).0, 0);
    // Describe with filters: everything, then what would apply to a topic named logs-9.
    let (code, all) = describe_acls(&mut admin, ANY, None, ANY);
    assert_eq!((code, all.len()), (0, 5));
    let (_, matching) = describe_acls(&mut admin, TOPIC, Some("logs-9"), MATCH);
    assert_eq!(
        matching,
        vec![
            (TOPIC, "*".into(), LITERAL, "User:bob".into(), ALL, ALLOW),
            (
                TOPIC,
                "logs-".into(),
                PREFIXED,
                "User:alice".into(),
                READ,
                ALLOW
            ),
        ]
    );
    // Denials are counted.
    let (_, m) = http_get(b.http, "/metrics");
    assert!(
        m.lines().any(|l| l.starts_with(
            "heraclitus_authorization_denials_total{api=\"Produce\",resource=\"topic\"}"
        ) && !l.ends_with(" 0")),
        "{m}"
    );
    // Delete alice's topic ACLs: her produce is refused again at once.
    assert_eq!(delete_acls(&mut admin, TOPIC, Some("User:alice")), (0, 2));
    assert_eq!(
        alice.produce_batch("orders", 0, batch(&[b"z"])).0,
        TOPIC_AUTHORIZATION_FAILED
    );
    drop((admin, alice, bob));
    b.stop();
    // A restart keeps what was left.
    let b = TestBroker::start(acl_settings(&path));
    let mut admin = login(&b, "admin");
    let (_, left) = describe_acls(&mut admin, ANY, None, ANY);
    assert_eq!(left.len(), 3, "{left:?}");
    let mut alice = login(&b, "alice");
    assert_eq!(
        commit_code(&mut alice, "g1", "logs-1"),
        TOPIC_AUTHORIZATION_FAILED
    );
    let mut bob = login(&b, "bob");
    assert_eq!(fetch_code(&mut bob, "secret"), TOPIC_AUTHORIZATION_FAILED);
}

/// Without `authorization.enabled` the ACL APIs answer SECURITY_DISABLED and nothing is checked;
/// with `allow_everyone_if_no_acl_found`, only resources that have ACLs are closed.
#[test]
fn authorization_off_and_open_by_default() {
    let mut s = acl_settings("memory://");
    s.authorization.enabled = false;
    let b = TestBroker::start(s);
    let mut alice = login(&b, "alice");
    alice.create_topic("free", &[]);
    assert_eq!(alice.produce_batch("free", 0, batch(&[b"x"])).0, 0);
    assert_eq!(
        create_acls(
            &mut alice,
            &[(TOPIC, "free", LITERAL, "User:x", READ, ALLOW)]
        ),
        vec![54]
    );
    b.stop();
    let mut s = acl_settings("memory://");
    s.authorization.allow_everyone_if_no_acl_found = true;
    let b = TestBroker::start(s);
    let mut admin = login(&b, "admin");
    admin.create_topic("open", &[]);
    admin.create_topic("closed", &[]);
    assert_eq!(
        create_acls(
            &mut admin,
            &[(TOPIC, "closed", LITERAL, "User:bob", WRITE, ALLOW)]
        ),
        vec![0]
    );
    let mut alice = login(&b, "alice");
    assert_eq!(alice.produce_batch("open", 0, batch(&[b"x"])).0, 0);
    assert_eq!(
        alice.produce_batch("closed", 0, batch(&[b"x"])).0,
        TOPIC_AUTHORIZATION_FAILED
    );
    let mut bob = login(&b, "bob");
    assert_eq!(bob.produce_batch("closed", 0, batch(&[b"x"])).0, 0);
}

/// librdkafka: a producer the ACLs refuse gets TOPIC_AUTHORIZATION_FAILED for its records; once
/// WRITE is granted, a new producer delivers.
#[test]
fn rdkafka_producer_is_refused_then_allowed() {
    let b = TestBroker::start(acl_settings("memory://"));
    let mut admin = login(&b, "admin");
    admin.create_topic("guarded", &[]);
    let producer = || -> BaseProducer<Outcomes> {
        ClientConfig::new()
            .set("bootstrap.servers", b.bootstrap())
            .set("security.protocol", "SASL_PLAINTEXT")
            .set("sasl.mechanism", "PLAIN")
            .set("sasl.username", "alice")
            .set("sasl.password", "alice-secret")
            .set("message.timeout.ms", "5000")
            .set("enable.idempotence", "false")
            .set("log_level", "0")
            .create_with_context(Outcomes::default())
            .unwrap()
    };
    let p = producer();
    p.send(BaseRecord::<(), str>::to("guarded").payload("no"))
        .map_err(|(e, _)| e)
        .unwrap();
    let _ = p.flush(Duration::from_secs(10));
    let o = p.context().0.lock().unwrap().clone();
    assert_eq!(
        o,
        vec![Some(
            rdkafka::types::RDKafkaErrorCode::TopicAuthorizationFailed
        )]
    );
    assert_eq!(
        create_acls(
            &mut admin,
            &[(TOPIC, "guarded", LITERAL, "User:alice", WRITE, ALLOW)]
        ),
        vec![0]
    );
    let p = producer();
    p.send(BaseRecord::<(), str>::to("guarded").payload("yes"))
        .map_err(|(e, _)| e)
        .unwrap();
    p.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(p.context().0.lock().unwrap().clone(), vec![None]);
}

/// Delivery outcomes: `None` delivered, `Some(code)` failed.
#[derive(Clone, Default)]
struct Outcomes(std::sync::Arc<std::sync::Mutex<Vec<Option<rdkafka::types::RDKafkaErrorCode>>>>);
impl rdkafka::ClientContext for Outcomes {}
impl rdkafka::producer::ProducerContext for Outcomes {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
        self.0.lock().unwrap().push(match r {
            Ok(_) => None,
            Err((e, _)) => e.rdkafka_error_code(),
        });
    }
}

/// Cluster mode: ACLs live in PostgreSQL; one created through one broker is enforced by the
/// others (after their next look at the store), a deletion through a third applies everywhere,
/// a change while PostgreSQL is down is refused (the brokers keep enforcing what they had), and
/// a broker that joins later (another one was killed) loads them.
#[test]
#[ignore = "needs PostgreSQL (installed and run by .ci/run)"]
fn cluster_acls_apply_on_every_broker() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().to_str().unwrap().to_string();
    let env = [
        ("HERACLITUS_CLUSTER__METADATA_STORE", pg.dsn()),
        ("HERACLITUS_CLUSTER__POLL_INTERVAL_MS", "100".to_string()),
        ("HERACLITUS_AUTH__ENABLED", "true".to_string()),
        ("HERACLITUS_AUTH__PLAIN_USERNAME", "alice".to_string()),
        (
            "HERACLITUS_AUTH__PLAIN_PASSWORD",
            "alice-secret".to_string(),
        ),
        ("HERACLITUS_AUTHORIZATION__ENABLED", "true".to_string()),
        (
            "HERACLITUS_AUTHORIZATION__SUPER_USERS",
            "User:nobody;User:root".to_string(),
        ),
        (
            "HERACLITUS_AUTHORIZATION__ALLOW_EVERYONE_IF_NO_ACL_FOUND",
            "true".to_string(),
        ),
    ];
    let start = |node: usize, ports: (u16, u16)| {
        let mut e: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let id = node.to_string();
        e.push(("HERACLITUS_NODE_ID", &id));
        BinaryBroker::start(&storage, ports.0, ports.1, &e)
    };
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let mut brokers: Vec<BinaryBroker> = (0..3).map(|i| start(i + 1, ports[i])).collect();
    let addr =
        |i: usize| -> std::net::SocketAddr { format!("127.0.0.1:{}", ports[i].0).parse().unwrap() };
    let alice = |i: usize| Raw::connect_plain(addr(i), "alice", "alice-secret");
    // No ACL yet: everyone may do everything (allow_everyone_if_no_acl_found).
    let (code, msg) = alice(0).create_topic_with("shared", 1, &[]);
    assert_eq!(code, 0, "{msg:?}");
    let visible = |i: usize| {
        let (topics, _) = metadata(&mut alice(i), None);
        topics.iter().any(|t| t.0 == "shared")
    };
    let eventually = |what: &str, f: &dyn Fn() -> bool| {
        let t0 = std::time::Instant::now();
        while !f() {
            assert!(t0.elapsed() < Duration::from_secs(10), "{what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    eventually("broker 2 sees the topic", &|| visible(1));
    // A DENY of DESCRIBE made through broker 1 hides the topic on broker 2.
    assert_eq!(
        create_acls(
            &mut alice(0),
            &[(TOPIC, "shared", LITERAL, "User:alice", DESCRIBE, DENY)]
        ),
        vec![0]
    );
    eventually("broker 2 applies the ACL", &|| !visible(1));
    assert_eq!(describe_acls(&mut alice(2), ANY, None, ANY).1.len(), 1);
    // Deleted through broker 3: visible again on broker 2.
    assert_eq!(
        delete_acls(&mut alice(2), TOPIC, Some("User:alice")),
        (0, 1)
    );
    eventually("broker 2 applies the deletion", &|| visible(1));
    // PostgreSQL down: a change cannot be made durable, so it is not acknowledged, and the
    // brokers keep enforcing what they had; once it is back, the change goes through.
    let deny_describe = [(TOPIC, "shared", LITERAL, "User:alice", DESCRIBE, DENY)];
    pg.stop_immediate();
    let refused = create_acls(&mut alice(0), &deny_describe);
    assert_ne!(refused, vec![0], "acknowledged without the metadata store");
    assert!(visible(1), "the brokers keep their ACLs meanwhile");
    pg.start_server();
    eventually("a change goes through once PostgreSQL is back", &|| {
        create_acls(&mut alice(0), &deny_describe) == vec![0]
    });
    eventually("and applies on broker 2", &|| !visible(1));
    assert_eq!(
        delete_acls(&mut alice(2), TOPIC, Some("User:alice")),
        (0, 1)
    );
    eventually("its deletion too", &|| visible(1));
    // A broker started afterwards loads the ACLs from the store.
    assert_eq!(
        create_acls(
            &mut alice(0),
            &[(GROUP, "g", PREFIXED, "User:alice", READ, DENY)]
        ),
        vec![0]
    );
    brokers.remove(1).kill9();
    let late_ports = (free_port(), free_port());
    let late = start(4, late_ports);
    let mut raw = Raw::connect_plain(
        format!("127.0.0.1:{}", late_ports.0).parse().unwrap(),
        "alice",
        "alice-secret",
    );
    assert_eq!(
        find_coordinator_code(&mut raw, "g-1"),
        GROUP_AUTHORIZATION_FAILED
    );
    drop((late, brokers));
}

/// Group configs need DESCRIBE_CONFIGS / ALTER_CONFIGS on the group (Kafka's GROUP resource):
/// GROUP_AUTHORIZATION_FAILED otherwise.
#[test]
fn group_configs_need_rights_on_the_group() {
    const DESCRIBE_CONFIGS: i8 = 10;
    const ALTER_CONFIGS: i8 = 11;
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(acl_settings(dir.path().to_str().unwrap()));
    let mut admin = login(&b, "admin");
    let mut alice = login(&b, "alice");
    let describe = |raw: &mut Raw| {
        use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
        let mut dc = DescribeConfigsRequest::default();
        dc.resources = vec![DescribeConfigsResource::default()
            .with_resource_type(32)
            .with_resource_name(StrBytes::from_static_str("cfg-g"))
            .with_configuration_keys(None)];
        let ResponseKind::DescribeConfigs(r) =
            raw.request(ApiKey::DescribeConfigs, 4, RequestKind::DescribeConfigs(dc))
        else {
            panic!()
        };
        (r.results[0].error_code, r.results[0].configs.len())
    };
    let alter = |raw: &mut Raw| {
        use kafka_protocol::messages::incremental_alter_configs_request::{
            AlterConfigsResource, AlterableConfig,
        };
        let mut req = IncrementalAlterConfigsRequest::default();
        req.resources = vec![AlterConfigsResource::default()
            .with_resource_type(32)
            .with_resource_name(StrBytes::from_static_str("cfg-g"))
            .with_configs(vec![AlterableConfig::default()
                .with_name(StrBytes::from_static_str("consumer.heartbeat.interval.ms"))
                .with_config_operation(0)
                .with_value(Some(StrBytes::from_static_str("6000")))])];
        let ResponseKind::IncrementalAlterConfigs(r) = raw.request(
            ApiKey::IncrementalAlterConfigs,
            1,
            RequestKind::IncrementalAlterConfigs(req),
        ) else {
            panic!()
        };
        r.responses[0].error_code
    };
    assert_eq!(describe(&mut alice), (GROUP_AUTHORIZATION_FAILED, 0));
    assert_eq!(alter(&mut alice), GROUP_AUTHORIZATION_FAILED);
    assert_eq!(
        create_acls(
            &mut admin,
            &[(
                GROUP,
                "cfg-",
                PREFIXED,
                "User:alice",
                DESCRIBE_CONFIGS,
                ALLOW
            )]
        ),
        vec![0]
    );
    assert_eq!(describe(&mut alice).0, 0);
    assert_eq!(alter(&mut alice), GROUP_AUTHORIZATION_FAILED);
    assert_eq!(
        create_acls(
            &mut admin,
            &[(GROUP, "cfg-g", LITERAL, "User:alice", ALTER_CONFIGS, ALLOW)]
        ),
        vec![0]
    );
    assert_eq!(alter(&mut alice), 0);
    assert_eq!(alter(&mut admin), 0, "super user");
    drop((admin, alice));
    b.stop();
}

/// Rules Kafka applies beyond one resource: DELETE on the cluster covers every topic
/// (DeleteTopics), the cluster's authorized operations are 0 without DESCRIBE on it (Metadata
/// and DescribeCluster), and the transaction admin APIs check DESCRIBE on the transactional id
/// (DescribeTransactions refuses, ListTransactions filters) and READ on the topic
/// (DescribeProducers).
#[test]
fn cluster_wide_rules_and_transaction_admin_apis() {
    const TRANSACTIONAL_ID: i8 = 5;
    const DELETE: i8 = 6;
    const IDEMPOTENT_WRITE: i8 = 12;
    let b = TestBroker::start(acl_settings("memory://"));
    let mut admin = login(&b, "admin");
    admin.create_topic("doomed", &[]);
    assert_eq!(
        create_acls(
            &mut admin,
            &[
                (
                    CLUSTER,
                    "kafka-cluster",
                    LITERAL,
                    "User:alice",
                    IDEMPOTENT_WRITE,
                    ALLOW
                ),
                (CLUSTER, "kafka-cluster", LITERAL, "User:bob", DELETE, ALLOW),
                (
                    CLUSTER,
                    "kafka-cluster",
                    LITERAL,
                    "User:bob",
                    DESCRIBE,
                    ALLOW
                ),
                (
                    TRANSACTIONAL_ID,
                    "app-",
                    PREFIXED,
                    "User:bob",
                    DESCRIBE,
                    ALLOW
                ),
                (TOPIC, "doomed", LITERAL, "User:bob", READ, ALLOW),
                (GROUP, "cg", LITERAL, "User:alice", DESCRIBE, ALLOW),
                (GROUP, "cg", LITERAL, "User:bob", DESCRIBE, ALLOW),
            ]
        ),
        vec![0; 7]
    );
    let cluster_ops = |raw: &mut Raw| {
        let req =
            DescribeClusterRequest::default().with_include_cluster_authorized_operations(true);
        let ResponseKind::DescribeCluster(r) = raw.request(
            ApiKey::DescribeCluster,
            1,
            RequestKind::DescribeCluster(req),
        ) else {
            panic!()
        };
        (r.cluster_authorized_operations, metadata(raw, Some(&[])).1)
    };
    let mut alice = login(&b, "alice");
    assert_eq!(
        cluster_ops(&mut alice),
        (0, 0),
        "IDEMPOTENT_WRITE alone shows nothing"
    );
    let mut bob = login(&b, "bob");
    let ops = bits(&[DESCRIBE]);
    assert_eq!(cluster_ops(&mut bob), (ops, ops));

    let describe_txn = |raw: &mut Raw, id: &str| {
        let req = DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(StrBytes::from_string(id.into()))]);
        let ResponseKind::DescribeTransactions(r) = raw.request(
            ApiKey::DescribeTransactions,
            0,
            RequestKind::DescribeTransactions(req),
        ) else {
            panic!()
        };
        r.transaction_states[0].error_code
    };
    assert_eq!(
        describe_txn(&mut alice, "app-1"),
        53,
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"
    );
    assert_eq!(
        describe_txn(&mut bob, "app-1"),
        105,
        "TRANSACTIONAL_ID_NOT_FOUND"
    );
    assert_eq!(describe_txn(&mut bob, "other"), 53);
    let list = |raw: &mut Raw| {
        let ResponseKind::ListTransactions(r) = raw.request(
            ApiKey::ListTransactions,
            1,
            RequestKind::ListTransactions(
                ListTransactionsRequest::default().with_duration_filter(-1),
            ),
        ) else {
            panic!()
        };
        r.error_code
    };
    assert_eq!(
        list(&mut alice),
        0,
        "ListTransactions filters, never refuses"
    );
    let producers = |raw: &mut Raw| {
        let req = DescribeProducersRequest::default().with_topics(vec![
            describe_producers_request::TopicRequest::default()
                .with_name(TopicName(StrBytes::from_static_str("doomed")))
                .with_partition_indexes(vec![0]),
        ]);
        let ResponseKind::DescribeProducers(r) = raw.request(
            ApiKey::DescribeProducers,
            0,
            RequestKind::DescribeProducers(req),
        ) else {
            panic!()
        };
        r.topics[0].partitions[0].error_code
    };
    assert_eq!(producers(&mut alice), TOPIC_AUTHORIZATION_FAILED);
    assert_eq!(producers(&mut bob), 0);

    // OffsetFetch v1 has no top-level error: a refused group is on every partition.
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g9")))
        .with_topics(Some(vec![
            offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("doomed")))
                .with_partition_indexes(vec![0, 1]),
        ]));
    let ResponseKind::OffsetFetch(r) =
        alice.request(ApiKey::OffsetFetch, 1, RequestKind::OffsetFetch(req))
    else {
        panic!()
    };
    let codes: Vec<i16> = r.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(codes, vec![GROUP_AUTHORIZATION_FAILED; 2]);

    // ConsumerGroupDescribe: a group assigned a topic the principal may not describe is
    // refused as a whole (alice), shown to a principal who may (bob).
    let join = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("cg")))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![TopicName(StrBytes::from_static_str("doomed"))]))
        .with_topic_partitions(Some(vec![]));
    let ResponseKind::ConsumerGroupHeartbeat(r) = admin.request(
        ApiKey::ConsumerGroupHeartbeat,
        0,
        RequestKind::ConsumerGroupHeartbeat(join),
    ) else {
        panic!()
    };
    assert_eq!(r.error_code, 0);
    let describe_group = |raw: &mut Raw| {
        let req = ConsumerGroupDescribeRequest::default()
            .with_group_ids(vec![GroupId(StrBytes::from_static_str("cg"))]);
        let ResponseKind::ConsumerGroupDescribe(r) = raw.request(
            ApiKey::ConsumerGroupDescribe,
            0,
            RequestKind::ConsumerGroupDescribe(req),
        ) else {
            panic!()
        };
        (r.groups[0].error_code, r.groups[0].members.len())
    };
    assert_eq!(describe_group(&mut alice), (TOPIC_AUTHORIZATION_FAILED, 0));
    assert_eq!(describe_group(&mut bob), (0, 1));

    // No ACL on the topic itself: DELETE on the cluster is enough (alice has neither).
    assert_eq!(
        delete_topic_code(&mut alice, "doomed"),
        TOPIC_AUTHORIZATION_FAILED
    );
    assert_eq!(delete_topic_code(&mut bob, "doomed"), 0);
}
