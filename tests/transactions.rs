//! Transactions: over the raw protocol, transactional records outside a transaction are
//! refused with Kafka's codes, nothing of them reaches the log, and Fetch / ListOffsets answer
//! each isolation level as Kafka does (read_committed: the last stable offset and a list of
//! aborted transactions, maybe empty; read_uncommitted: a null list); with librdkafka, the
//! broker is killed (-9) with transactions open, and between a transaction's decision and its
//! markers, and read_committed consumers see exactly the committed records afterwards.

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

/// `batch` with the transactional attribute bit set (CRC recomputed).
fn transactional(batch: Bytes) -> Bytes {
    let mut b = BytesMut::from(&batch[..]);
    let attrs = i16::from_be_bytes([b[21], b[22]]) | 0x10;
    b[21..23].copy_from_slice(&attrs.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

fn produce(raw: &mut Raw, records: Bytes, transactional_id: Option<&str>) -> (i16, i64) {
    let mut req = produce_request("tx", 0, records);
    req.transactional_id =
        transactional_id.map(|t| TransactionalId(StrBytes::from_string(t.into())));
    let ResponseKind::Produce(r) = raw.request(ApiKey::Produce, 9, RequestKind::Produce(req))
    else {
        panic!()
    };
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// Fetch v11 of partition 0 from offset 0 at an isolation level: (error, high watermark, last
/// stable offset, aborted transactions, batches).
fn fetch(raw: &mut Raw, isolation: i8) -> (i16, i64, i64, Option<usize>, usize) {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    let ft = FetchTopic::default()
        .with_topic(TopicName(StrBytes::from_static_str("tx")))
        .with_partitions(vec![FetchPartition::default()
            .with_fetch_offset(0)
            .with_partition_max_bytes(1 << 20)]);
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_bytes(1 << 20)
        .with_isolation_level(isolation)
        .with_topics(vec![ft]);
    let ResponseKind::Fetch(r) = raw.request(ApiKey::Fetch, 11, RequestKind::Fetch(req)) else {
        panic!()
    };
    let p = &r.responses[0].partitions[0];
    (
        p.error_code,
        p.high_watermark,
        p.last_stable_offset,
        p.aborted_transactions.as_ref().map(|a| a.len()),
        p.records.clone().map_or(0, count_batches),
    )
}

fn latest(raw: &mut Raw, isolation: i8) -> i64 {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("tx")))
            .with_partitions(vec![
                ListOffsetsPartition::default().with_timestamp(-1)
            ])]);
    let ResponseKind::ListOffsets(r) =
        raw.request(ApiKey::ListOffsets, 7, RequestKind::ListOffsets(req))
    else {
        panic!()
    };
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.offset
}

#[test]
fn transactional_records_are_refused_and_isolation_levels_answer_as_kafka() {
    let b = TestBroker::start(settings("memory://"));
    let mut raw = Raw::connect(b.kafka);
    raw.create_topic("tx", &[]);
    let txn = transactional(batch_idempotent(&[b"a", b"b"], 5, 0, 0));
    // Without a transactional id in the request: TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
    assert_eq!(produce(&mut raw, txn.clone(), None), (53, -1));
    // With one: the partition is not part of any ongoing transaction (INVALID_TXN_STATE).
    assert_eq!(produce(&mut raw, txn, Some("app-1")), (48, -1));
    // Nothing reached the log: a plain batch (and an idempotent one of the same producer id)
    // still starts at offset 0.
    assert_eq!(produce(&mut raw, batch(&[b"x", b"y"]), None), (0, 0));
    assert_eq!(
        produce(&mut raw, batch_idempotent(&[b"z"], 5, 0, 0), None),
        (0, 2)
    );
    // read_committed: LSO = high watermark (no open transaction), an empty aborted list;
    // read_uncommitted: a null list.
    assert_eq!(fetch(&mut raw, 1), (0, 3, 3, Some(0), 2));
    assert_eq!(fetch(&mut raw, 0), (0, 3, 3, None, 2));
    assert_eq!(latest(&mut raw, 1), 3);
    assert_eq!(latest(&mut raw, 0), 3);
}

/// Values of `topic` partition 0 read from the beginning at an isolation level, until EOF
/// (which read_committed reaches only once the last stable offset caught up).
fn read_values(bootstrap: &str, topic: &str, isolation: &str) -> Option<Vec<String>> {
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::error::KafkaError;
    use rdkafka::message::Message;
    use rdkafka::types::RDKafkaErrorCode;
    use rdkafka::{Offset, TopicPartitionList};
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "txn-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", isolation)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        match c.poll(std::time::Duration::from_millis(200)) {
            Some(Ok(m)) => {
                out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into())
            }
            Some(Err(KafkaError::PartitionEOF(_))) => return Some(out),
            Some(Err(e)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF) => {
                return Some(out)
            }
            _ => {}
        }
    }
    None
}

/// kill -9 of the broker with one transaction committed and one open: after the restart the
/// committed records stay visible to read_committed consumers, the open transaction is
/// aborted once its timeout passes (its records never show up under read_committed, the LSO
/// moves on), and the transactional id works again.
#[test]
fn transactions_survive_kill9() {
    use rdkafka::config::ClientConfig;
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().to_str().unwrap().to_string();
    let (kp, hp) = (free_port(), free_port());
    let b = BinaryBroker::start(&storage, kp, hp, &[]);
    let bootstrap = b.bootstrap();
    let producer = |bootstrap: &str| -> ThreadedProducer<DefaultProducerContext> {
        let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("transactional.id", "survivor")
            .set("transaction.timeout.ms", "3000")
            .set("linger.ms", "1")
            .create()
            .unwrap();
        p.init_transactions(Duration::from_secs(30)).unwrap();
        p
    };
    let p = producer(&bootstrap);
    p.begin_transaction().unwrap();
    for i in 0..10 {
        let v = format!("committed-{i}");
        p.send(BaseRecord::<(), _>::to("kept").payload(&v).partition(0))
            .unwrap();
    }
    p.commit_transaction(Duration::from_secs(30)).unwrap();
    p.begin_transaction().unwrap();
    for i in 0..5 {
        let v = format!("open-{i}");
        p.send(BaseRecord::<(), _>::to("kept").payload(&v).partition(0))
            .unwrap();
    }
    p.flush(Duration::from_secs(30)).unwrap();
    // Metrics (before the 3 s timeout can abort it): one commit, one transaction open, 5
    // records held back (10 + marker + 5 open).
    let http: std::net::SocketAddr = format!("127.0.0.1:{hp}").parse().unwrap();
    let (_, metrics) = http_get(http, "/metrics");
    for line in [
        "heraclitus_transactions_total{outcome=\"commit\"} 1",
        "heraclitus_transactions_open 1",
        "heraclitus_partition_lso_lag{partition=\"0\",topic=\"kept\"} 5",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in {metrics}"
        );
    }
    // The open transaction holds read_committed readers at its first offset.
    let before = read_values(&bootstrap, "kept", "read_committed").unwrap();
    assert_eq!(before.len(), 10);
    std::mem::forget(p); // no abort on drop: the process dies with the transaction open
    b.kill9();

    let b = BinaryBroker::start(&storage, kp, hp, &[]);
    let bootstrap = b.bootstrap();
    // Within the timeout (3 s) plus the coordinator's sweep, the open transaction is aborted.
    let committed = read_values(&bootstrap, "kept", "read_committed").expect("LSO moved on");
    let expected: Vec<String> = (0..10).map(|i| format!("committed-{i}")).collect();
    assert_eq!(committed, expected);
    let all = read_values(&bootstrap, "kept", "read_uncommitted").unwrap();
    assert_eq!(all.len(), 15, "{all:?}");
    // The id is usable again, and a restart keeps the aborted list (rebuilt from storage).
    let p = producer(&bootstrap);
    p.begin_transaction().unwrap();
    p.send(
        BaseRecord::<(), _>::to("kept")
            .payload("after")
            .partition(0),
    )
    .unwrap();
    p.commit_transaction(Duration::from_secs(30)).unwrap();
    drop(p);
    b.kill9();
    let b = BinaryBroker::start(&storage, kp, hp, &[]);
    let mut expected = expected;
    expected.push("after".into());
    assert_eq!(
        read_values(&b.bootstrap(), "kept", "read_committed").unwrap(),
        expected
    );
}

/// kill -9 between EndTxn and the end of its markers, at the crash points
/// `txn.before_markers` (the outcome is persisted, no marker written) and `txn.after_markers`
/// (the markers are durable, the completion is not persisted): the restarted broker finishes
/// the decided outcome — a commit becomes fully visible to read_committed consumers, an abort
/// never does, markers written twice change nothing — and the transactional id works again.
#[test]
fn a_decided_transaction_is_finished_after_a_crash() {
    use rdkafka::config::ClientConfig;
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().to_str().unwrap().to_string();
    let (kp, hp) = (free_port(), free_port());
    let mut committed: Vec<String> = Vec::new();
    let mut written = 0;
    let mut zombies = Vec::new();
    let producer = |bootstrap: &str| -> ThreadedProducer<DefaultProducerContext> {
        let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("transactional.id", "decided")
            .set("linger.ms", "1")
            .create()
            .unwrap();
        // Retried by the client while the coordinator finishes the id's previous outcome.
        p.init_transactions(Duration::from_secs(30)).unwrap();
        p
    };
    let rounds = [
        ("txn.before_markers", true),
        ("txn.before_markers", false),
        ("txn.after_markers", true),
        ("txn.after_markers", false),
    ];
    for (round, (step, commit)) in rounds.into_iter().enumerate() {
        let mut b = BinaryBroker::start(&storage, kp, hp, &[("CRASH_AT", step)]);
        let p = producer(&b.bootstrap());
        p.begin_transaction().unwrap();
        let values: Vec<String> = (0..5).map(|i| format!("r{round}-{i}")).collect();
        for v in &values {
            p.send(BaseRecord::<(), _>::to("decided").payload(v).partition(0))
                .unwrap();
        }
        p.flush(Duration::from_secs(30)).unwrap();
        // The answer may or may not leave before the process dies at the crash point.
        let _ = if commit {
            p.commit_transaction(Duration::from_secs(5))
        } else {
            p.abort_transaction(Duration::from_secs(5))
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while b.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "{step}: crash point not reached");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Its broker is gone: kept (not destroyed against a dead broker) until a later
        // instance has fenced it.
        zombies.push(p);
        written += values.len();
        if commit {
            committed.extend(values);
        }

        let b = BinaryBroker::start(&storage, kp, hp, &[]);
        // Until the restarted coordinator has written the markers, read_committed stops
        // before the transaction; it never shows part of it or an aborted record.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let seen = read_values(&b.bootstrap(), "decided", "read_committed").unwrap_or_default();
            assert!(
                committed.starts_with(&seen),
                "{step}: read_committed saw {seen:?}, committed {committed:?}"
            );
            if seen == committed {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{step}: outcome not finished: {seen:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let all = read_values(&b.bootstrap(), "decided", "read_uncommitted").unwrap();
        assert_eq!(all.len(), written, "{step}: {all:?}");
        // A new instance initialises once the completion is persisted: the next round's
        // broker starts with nothing left to finish.
        drop(producer(&b.bootstrap()));
        b.kill9();
    }
    // The id still works, and the decided outcomes survive one more restart.
    let b = BinaryBroker::start(&storage, kp, hp, &[]);
    let p = producer(&b.bootstrap());
    p.begin_transaction().unwrap();
    p.send(
        BaseRecord::<(), _>::to("decided")
            .payload("last")
            .partition(0),
    )
    .unwrap();
    p.commit_transaction(Duration::from_secs(30)).unwrap();
    committed.push("last".into());
    assert_eq!(
        read_values(&b.bootstrap(), "decided", "read_committed").unwrap(),
        committed
    );
    drop(zombies); // fenced by now: destroyed while their broker answers
}

/// DescribeTransactions, ListTransactions and DescribeProducers — what `kafka-transactions.sh`
/// and the admin clients show — over the raw protocol, while a librdkafka transaction is open
/// and after it committed.
#[test]
fn transactions_and_producers_are_described() {
    use kafka_protocol::messages::{ApiKey, ProducerId, RequestKind, ResponseKind};
    use rdkafka::config::ClientConfig;
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    use std::time::Duration;
    let b = TestBroker::start(settings("memory://"));
    let mut raw = Raw::connect(b.kafka);
    raw.create_topic("watched", &[]);
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("transactional.id", "described")
        .set("transaction.timeout.ms", "60000")
        .set("linger.ms", "1")
        .create()
        .unwrap();
    p.init_transactions(Duration::from_secs(30)).unwrap();
    p.begin_transaction().unwrap();
    for v in ["a", "b", "c"] {
        p.send(BaseRecord::<(), _>::to("watched").payload(v).partition(0))
            .unwrap();
    }
    p.flush(Duration::from_secs(30)).unwrap();

    let describe = |raw: &mut Raw, ids: &[&str]| {
        let req = DescribeTransactionsRequest::default().with_transactional_ids(
            ids.iter()
                .map(|i| TransactionalId(StrBytes::from_string(i.to_string())))
                .collect(),
        );
        match raw.request(
            ApiKey::DescribeTransactions,
            0,
            RequestKind::DescribeTransactions(req),
        ) {
            ResponseKind::DescribeTransactions(r) => r.transaction_states,
            other => panic!("{other:?}"),
        }
    };
    let list = |raw: &mut Raw, version: i16, req: ListTransactionsRequest| match raw.request(
        ApiKey::ListTransactions,
        version,
        RequestKind::ListTransactions(req),
    ) {
        ResponseKind::ListTransactions(r) => r,
        other => panic!("{other:?}"),
    };
    let producers = |raw: &mut Raw| {
        let req = DescribeProducersRequest::default().with_topics(vec![
            describe_producers_request::TopicRequest::default()
                .with_name(TopicName(StrBytes::from_static_str("watched")))
                .with_partition_indexes(vec![0, 7]),
        ]);
        match raw.request(
            ApiKey::DescribeProducers,
            0,
            RequestKind::DescribeProducers(req),
        ) {
            ResponseKind::DescribeProducers(r) => r.topics[0].partitions.clone(),
            other => panic!("{other:?}"),
        }
    };

    // Open: Ongoing with its partition; unknown ids are TRANSACTIONAL_ID_NOT_FOUND.
    let states = describe(&mut raw, &["described", "nobody"]);
    assert_eq!(states[0].error_code, 0);
    assert_eq!(states[0].transaction_state.as_str(), "Ongoing");
    assert_eq!(states[0].transaction_timeout_ms, 60_000);
    assert!(states[0].transaction_start_time_ms > 0);
    let pid = states[0].producer_id;
    assert_eq!(states[0].topics.len(), 1);
    assert_eq!(states[0].topics[0].topic.as_str(), "watched");
    assert_eq!(states[0].topics[0].partitions, vec![0]);
    assert_eq!(states[1].error_code, 105, "TRANSACTIONAL_ID_NOT_FOUND");

    // The partition's leader knows the producer and its open transaction at offset 0.
    let parts = producers(&mut raw);
    assert_eq!(parts[0].error_code, 0);
    let active = &parts[0].active_producers;
    assert_eq!(active.len(), 1, "{active:?}");
    assert_eq!(active[0].producer_id, pid);
    assert_eq!(active[0].last_sequence, 2);
    assert_eq!(active[0].current_txn_start_offset, 0);
    assert_eq!(parts[1].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");

    // Filters: state (unknown names echoed), producer id, duration, pattern (v2).
    let r = list(
        &mut raw,
        1,
        ListTransactionsRequest::default()
            .with_state_filters(vec![
                StrBytes::from_static_str("Ongoing"),
                StrBytes::from_static_str("Bogus"),
            ])
            .with_duration_filter(-1),
    );
    assert_eq!(r.error_code, 0);
    assert_eq!(
        r.unknown_state_filters,
        vec![StrBytes::from_static_str("Bogus")]
    );
    assert_eq!(r.transaction_states.len(), 1);
    assert_eq!(
        r.transaction_states[0].transactional_id.as_str(),
        "described"
    );
    assert_eq!(r.transaction_states[0].producer_id, pid);
    let r = list(
        &mut raw,
        1,
        ListTransactionsRequest::default()
            .with_producer_id_filters(vec![ProducerId(pid.0 + 1)])
            .with_duration_filter(-1),
    );
    assert!(r.transaction_states.is_empty());
    let r = list(
        &mut raw,
        1,
        ListTransactionsRequest::default().with_duration_filter(3_600_000),
    );
    assert!(r.transaction_states.is_empty(), "not open for an hour");
    let r = list(
        &mut raw,
        2,
        ListTransactionsRequest::default()
            .with_duration_filter(-1)
            .with_transactional_id_pattern(Some(StrBytes::from_static_str("desc.*"))),
    );
    assert_eq!(r.transaction_states.len(), 1);
    let r = list(
        &mut raw,
        2,
        ListTransactionsRequest::default()
            .with_duration_filter(-1)
            .with_transactional_id_pattern(Some(StrBytes::from_static_str("desc"))),
    );
    assert!(r.transaction_states.is_empty(), "the whole id must match");
    let r = list(
        &mut raw,
        2,
        ListTransactionsRequest::default()
            .with_duration_filter(-1)
            .with_transactional_id_pattern(Some(StrBytes::from_static_str("(unclosed"))),
    );
    assert_eq!(r.error_code, 128, "INVALID_REGULAR_EXPRESSION");

    // Committed: CompleteCommit, no partitions, no open transaction on the partition.
    p.commit_transaction(Duration::from_secs(30)).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = &describe(&mut raw, &["described"])[0];
        if s.transaction_state.as_str() == "CompleteCommit" {
            assert!(s.topics.is_empty());
            // As Kafka: the last transaction's start time stays until the next one.
            assert_eq!(
                s.transaction_start_time_ms,
                states[0].transaction_start_time_ms
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{s:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let parts = producers(&mut raw);
    assert_eq!(parts[0].active_producers[0].current_txn_start_offset, -1);
    let r = list(
        &mut raw,
        0,
        ListTransactionsRequest::default()
            .with_state_filters(vec![StrBytes::from_static_str("CompleteCommit")]),
    );
    assert_eq!(r.transaction_states.len(), 1);
}

/// The object store refuses writes: the coordinator persists every change before acting, so
/// InitProducerId answers the retriable COORDINATOR_NOT_AVAILABLE and nothing changes — once
/// writes work again the epoch moves by exactly one from the last acknowledged one.
#[test]
fn a_failed_coordinator_write_changes_nothing() {
    use kafka_protocol::messages::{ApiKey, ProducerId, RequestKind, ResponseKind};
    use std::sync::atomic::Ordering;
    let b = TestBroker::start(settings("memory://"));
    let mut raw = Raw::connect(b.kafka);
    let mut init = || {
        let req = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("flaky"))))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        match raw.request(ApiKey::InitProducerId, 4, RequestKind::InitProducerId(req)) {
            ResponseKind::InitProducerId(r) => (r.error_code, r.producer_id.0, r.producer_epoch),
            other => panic!("{other:?}"),
        }
    };
    let (code, pid, epoch) = init();
    assert_eq!(code, 0);
    b.storage.failpoints.put.store(true, Ordering::SeqCst);
    assert_eq!(init().0, 15, "COORDINATOR_NOT_AVAILABLE while writes fail");
    assert_eq!(init().0, 15);
    b.storage.failpoints.put.store(false, Ordering::SeqCst);
    assert_eq!(init(), (0, pid, epoch + 1));
}
