//! The log on a real S3 server on loopback (`moto_server`): produce, consume, kill -9 and
//! restart, with every acknowledged record back at its offset.

mod common;

use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Default)]
struct Acks(Arc<Mutex<Vec<Acked>>>);

/// (partition, offset, payload) of an acknowledged record.
type Acked = (i32, i64, Vec<u8>);
impl ClientContext for Acks {}
impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        if let Ok(m) = r {
            let p = m.payload().unwrap_or_default().to_vec();
            self.0.lock().unwrap().push((m.partition(), m.offset(), p));
        }
    }
}

fn consume(bootstrap: &str, topic: &str, partitions: i32) -> BTreeMap<(i32, i64), Vec<u8>> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "s3-verify")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    let mut total = 0;
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
        total += c
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .unwrap()
            .1;
    }
    c.assign(&tpl).unwrap();
    let mut out = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (out.len() as i64) < total && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(500)) {
            out.insert(
                (m.partition(), m.offset()),
                m.payload().unwrap_or_default().to_vec(),
            );
        }
    }
    assert_eq!(out.len() as i64, total);
    out
}

#[test]
fn produce_consume_kill_restart_on_s3() {
    let s3 = S3Server::start("heraclitus-test");
    let env_owned = s3.env();
    let mut env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("HERACLITUS_DEFAULT_PARTITIONS", "3"));
    let dsn = "s3://heraclitus-test/cluster-a";
    let (kport, hport) = (free_port(), free_port());
    let broker = BinaryBroker::start(dsn, kport, hport, &env);
    let acks = Acks::default();
    let p: BaseProducer<Acks> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("acks", "all")
        .set("linger.ms", "5")
        .create_with_context(acks.clone())
        .unwrap();
    for i in 0..3000 {
        let v = format!("s3-record-{i}");
        p.send(
            BaseRecord::<(), String>::to("on-s3")
                .partition(i % 3)
                .payload(&v),
        )
        .map_err(|(e, _)| e)
        .unwrap();
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(60)).unwrap();
    assert_eq!(acks.0.lock().unwrap().len(), 3000);
    let first = consume(&broker.bootstrap(), "on-s3", 3);
    assert_eq!(first.len(), 3000);
    broker.kill9();
    let broker = BinaryBroker::start(dsn, kport, hport, &env);
    let second = consume(&broker.bootstrap(), "on-s3", 3);
    for (part, off, payload) in acks.0.lock().unwrap().iter() {
        assert_eq!(second.get(&(*part, *off)), Some(payload));
    }
    assert_eq!(first, second, "identical after restart from S3");
}
