//! Transactions over the raw protocol, as far as they are served today: transactional records
//! are refused with Kafka's codes (no coordinator can have added a partition to a
//! transaction), nothing of them reaches the log, and Fetch / ListOffsets answer each
//! isolation level as Kafka does (read_committed: the last stable offset and a list of aborted
//! transactions, maybe empty; read_uncommitted: a null list).

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
