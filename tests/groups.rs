//! Consumer groups with real librdkafka consumers: balanced assignment and exactly-once
//! consumption with commits, leave and session-expiry reassignment, resume from committed offsets
//! after a broker restart, static membership without rebalance, cooperative-sticky.

mod common;

use common::*;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientContext;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn group_settings(storage: &str) -> heraclitus::config::Settings {
    let mut s = settings(storage);
    s.groups.min_session_timeout_ms = 1000;
    s.groups.initial_rebalance_delay_ms = 0;
    s
}

fn produce_n(bootstrap: &str, topic: &str, partitions: i32, n: usize) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    for i in 0..n {
        let v = format!("m{i}");
        loop {
            match p.send(
                BaseRecord::<(), String>::to(topic)
                    .partition((i % partitions as usize) as i32)
                    .payload(&v),
            ) {
                Ok(()) => break,
                Err(_) => {
                    p.poll(Duration::from_millis(10));
                }
            }
        }
    }
    p.flush(Duration::from_secs(30)).unwrap();
}

fn create(bootstrap: &str, topic: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let a: AdminClient<rdkafka::client::DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let r = futures::executor::block_on(a.create_topics(
        &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
        &AdminOptions::new(),
    ))
    .unwrap();
    assert!(r[0].is_ok());
}

#[derive(Clone, Default)]
struct Counting(Arc<AtomicUsize>);
impl ClientContext for Counting {}
impl ConsumerContext for Counting {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        if matches!(r, Rebalance::Assign(_)) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn consumer(bootstrap: &str, group: &str, extra: &[(&str, &str)]) -> BaseConsumer<Counting> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "3000")
        .set("heartbeat.interval.ms", "300");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create_with_context(Counting::default()).unwrap()
}

fn assigned(c: &BaseConsumer<Counting>) -> usize {
    c.assignment().map(|a| a.count()).unwrap_or(0)
}

/// Three consumers share six partitions two each; every message is consumed exactly once with
/// synchronous commits; after one consumer leaves, the others take its partitions.
#[test]
fn three_consumers_share_six_partitions_exactly_once() {
    let b = TestBroker::start(group_settings("memory://"));
    let bs = b.bootstrap();
    create(&bs, "shared", 6);
    let n = 6000;
    produce_n(&bs, "shared", 6, n);
    let seen: Arc<Mutex<BTreeMap<(i32, i64), usize>>> = Arc::default();
    let cs: Vec<_> = (0..3).map(|_| consumer(&bs, "g-shared", &[])).collect();
    for c in &cs {
        c.subscribe(&["shared"]).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().len() < n && Instant::now() < deadline {
        for (i, c) in cs.iter().enumerate() {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(50)) {
                *seen
                    .lock()
                    .unwrap()
                    .entry((m.partition(), m.offset()))
                    .or_default() += 1;
                let _ = i;
                c.commit_message(&m, CommitMode::Sync).unwrap();
            }
        }
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), n, "every message consumed");
    assert!(seen.values().all(|&k| k == 1), "exactly once");
    let counts: Vec<usize> = cs.iter().map(assigned).collect();
    assert_eq!(counts, vec![2, 2, 2], "balanced");
    // One consumer closes (LeaveGroup): its partitions move within the session timeout.
    let mut cs = cs;
    let gone = cs.pop().unwrap();
    drop(gone);
    let deadline = Instant::now() + Duration::from_secs(10);
    while cs.iter().map(assigned).sum::<usize>() < 6 && Instant::now() < deadline {
        for c in &cs {
            c.poll(Duration::from_millis(50));
        }
    }
    assert_eq!(cs.iter().map(assigned).collect::<Vec<_>>(), vec![3, 3]);
}

/// A member that stops heartbeating without leaving (here: a raw protocol member that just goes
/// silent) is expired after its session timeout and its partitions move.
#[test]
fn silent_member_expires_after_session_timeout() {
    let b = TestBroker::start(group_settings("memory://"));
    let bs = b.bootstrap();
    create(&bs, "expiry", 2);
    let c = consumer(&bs, "g-expiry", &[]);
    c.subscribe(&["expiry"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while assigned(&c) < 2 && Instant::now() < deadline {
        c.poll(Duration::from_millis(50));
    }
    assert_eq!(assigned(&c), 2);
    // A raw member joins with a 2 s session, gets into the group, then goes silent.
    let addr = b.kafka;
    let joiner = std::thread::spawn(move || {
        let mut raw = Raw::connect(addr);
        let mut member = StrBytes::default();
        loop {
            let mut p = JoinGroupRequestProtocol::default();
            p.name = StrBytes::from_static_str("range");
            p.metadata = bytes::Bytes::from_static(&[
                0, 0, 0, 0, 0, 1, 0, 6, b'e', b'x', b'p', b'i', b'r', b'y', 0, 0, 0, 0,
            ]);
            let mut j = JoinGroupRequest::default();
            j.group_id = GroupId(StrBytes::from_static_str("g-expiry"));
            j.session_timeout_ms = 2000;
            j.rebalance_timeout_ms = 10_000;
            j.member_id = member.clone();
            j.protocol_type = StrBytes::from_static_str("consumer");
            j.protocols = vec![p];
            let ResponseKind::JoinGroup(r) =
                raw.request(ApiKey::JoinGroup, 5, RequestKind::JoinGroup(j))
            else {
                panic!()
            };
            if r.error_code == 79 {
                member = r.member_id;
                continue;
            }
            assert_eq!(r.error_code, 0);
            let mut s = SyncGroupRequest::default();
            s.group_id = GroupId(StrBytes::from_static_str("g-expiry"));
            s.generation_id = r.generation_id;
            s.member_id = r.member_id.clone();
            if r.leader == r.member_id {
                panic!("the rdkafka consumer joined first and should lead");
            }
            let ResponseKind::SyncGroup(_) =
                raw.request(ApiKey::SyncGroup, 3, RequestKind::SyncGroup(s))
            else {
                panic!()
            };
            return;
        }
    });
    let start = Instant::now();
    let mut dipped = false;
    while Instant::now() < start + Duration::from_secs(30) {
        c.poll(Duration::from_millis(50));
        let a = assigned(&c);
        if a < 2 {
            dipped = true;
        }
        if dipped && a == 2 {
            break;
        }
    }
    joiner.join().unwrap();
    assert!(dipped, "the silent member got partitions first");
    assert_eq!(
        assigned(&c),
        2,
        "its partitions came back after its session expired"
    );
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "not before the session timeout"
    );
}

/// Commits survive a broker restart: a new consumer of the group resumes at the committed offset.
#[test]
fn group_resumes_from_committed_offsets_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_string();
    let committed;
    {
        let b = TestBroker::start(group_settings(&path));
        let bs = b.bootstrap();
        create(&bs, "resume", 1);
        produce_n(&bs, "resume", 1, 100);
        let c = consumer(&bs, "g-resume", &[]);
        c.subscribe(&["resume"]).unwrap();
        let mut got = 0;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = None;
        while got < 40 && Instant::now() < deadline {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                got += 1;
                last = Some(m.offset());
                c.commit_message(&m, CommitMode::Sync).unwrap();
            }
        }
        committed = last.unwrap() + 1;
        drop(c);
        b.stop();
    }
    let b = TestBroker::start(group_settings(&path));
    let c = consumer(&b.bootstrap(), "g-resume", &[]);
    c.subscribe(&["resume"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "no message after restart");
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            assert_eq!(
                m.offset(),
                committed,
                "resumed exactly after the last commit"
            );
            break;
        }
    }
}

/// A static member (group.instance.id) that restarts within its session timeout gets its
/// partitions back without a rebalance: the other member sees no new assignment.
#[test]
fn static_member_restart_does_not_rebalance() {
    let b = TestBroker::start(group_settings("memory://"));
    let bs = b.bootstrap();
    create(&bs, "static", 4);
    let other = consumer(
        &bs,
        "g-static",
        &[
            ("group.instance.id", "other"),
            ("session.timeout.ms", "10000"),
        ],
    );
    let s1 = consumer(
        &bs,
        "g-static",
        &[("group.instance.id", "s1"), ("session.timeout.ms", "10000")],
    );
    other.subscribe(&["static"]).unwrap();
    s1.subscribe(&["static"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while (assigned(&other) != 2 || assigned(&s1) != 2) && Instant::now() < deadline {
        other.poll(Duration::from_millis(50));
        s1.poll(Duration::from_millis(50));
    }
    assert_eq!((assigned(&other), assigned(&s1)), (2, 2));
    let before = other.context().0.load(Ordering::SeqCst);
    drop(s1);
    let s1 = consumer(
        &bs,
        "g-static",
        &[("group.instance.id", "s1"), ("session.timeout.ms", "10000")],
    );
    s1.subscribe(&["static"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline {
        other.poll(Duration::from_millis(50));
        s1.poll(Duration::from_millis(50));
        if assigned(&s1) == 2 && Instant::now() + Duration::from_secs(5) > deadline {
            break;
        }
    }
    assert_eq!(
        assigned(&s1),
        2,
        "the restarted static member got its partitions back"
    );
    assert_eq!(
        other.context().0.load(Ordering::SeqCst),
        before,
        "no rebalance for the other member"
    );
}

/// Commit a message synchronously, retrying while the group completes a rebalance: like Kafka,
/// the coordinator answers REBALANCE_IN_PROGRESS to commits that arrive between JoinGroup and
/// SyncGroup (a cooperative member keeps consuming meanwhile).
fn commit_sync<C: ConsumerContext>(c: &BaseConsumer<C>, m: &rdkafka::message::BorrowedMessage<'_>) {
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    for _ in 0..200 {
        match c.commit_message(m, CommitMode::Sync) {
            Ok(()) => return,
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::RebalanceInProgress)) => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("commit: {e}"),
        }
    }
    panic!("commit still refused after 10 s");
}

/// cooperative-sticky: incremental assignment across two consumers, all messages consumed once.
#[test]
fn cooperative_sticky_incremental_assignment() {
    let b = TestBroker::start(group_settings("memory://"));
    let bs = b.bootstrap();
    create(&bs, "coop", 4);
    produce_n(&bs, "coop", 4, 400);
    let cfg = [("partition.assignment.strategy", "cooperative-sticky")];
    let c1 = consumer(&bs, "g-coop", &cfg);
    c1.subscribe(&["coop"]).unwrap();
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while assigned(&c1) < 4 && Instant::now() < deadline {
        if let Some(Ok(m)) = c1.poll(Duration::from_millis(50)) {
            seen.insert((m.partition(), m.offset()));
            commit_sync(&c1, &m);
        }
    }
    assert_eq!(assigned(&c1), 4);
    let c2 = consumer(&bs, "g-coop", &cfg);
    c2.subscribe(&["coop"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    while (assigned(&c1) != 2 || assigned(&c2) != 2 || seen.len() < 400)
        && Instant::now() < deadline
    {
        for c in [&c1, &c2] {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(50)) {
                assert!(seen.insert((m.partition(), m.offset())), "no re-delivery");
                commit_sync(c, &m);
            }
        }
    }
    assert_eq!(
        (assigned(&c1), assigned(&c2)),
        (2, 2),
        "incrementally rebalanced"
    );
    assert_eq!(seen.len(), 400);
    assert!(c2.context().0.load(Ordering::SeqCst) >= 1);
}
