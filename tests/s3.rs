//! The log on a real S3 server on loopback (s3s-fs, started in-process by `S3Server`): produce,
//! consume, kill -9 and restart, with every acknowledged record back at its offset; and the
//! server itself honours conditional PUTs and checks signatures, as the broker relies on.

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
    // The segments are objects in the S3 server's bucket folder.
    fn parquet_under(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |rd| {
            rd.flatten()
                .map(|e| match e.path() {
                    p if p.is_dir() => parquet_under(&p),
                    p => usize::from(p.extension().is_some_and(|x| x == "parquet")),
                })
                .sum()
        })
    }
    assert!(parquet_under(&s3.root().join("heraclitus-test/cluster-a")) > 0);
}

fn s3_client(s3: &S3Server, bucket: &str, secret: &str) -> object_store::aws::AmazonS3 {
    object_store::aws::AmazonS3Builder::new()
        .with_endpoint(s3.endpoint())
        .with_bucket_name(bucket)
        .with_access_key_id(S3_ACCESS_KEY)
        .with_secret_access_key(secret)
        .with_region("us-east-1")
        .with_allow_http(true)
        .build()
        .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `PutMode::Create` (`If-None-Match: *`) through object_store's S3 client: the first PUT of a
/// key lands, every later one is `AlreadyExists` and leaves the object as it was; of many
/// concurrent creates of one key exactly one wins. Overwrites still work.
#[test]
fn conditional_put_is_exclusive_on_the_test_s3_server() {
    use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
    let s3 = S3Server::start("cond");
    let store = Arc::new(s3_client(&s3, "cond", S3_SECRET_KEY));
    runtime().block_on(async move {
        let create = || PutOptions::from(PutMode::Create);
        let key = object_store::path::Path::from("a/segment-0.parquet");
        store
            .put_opts(&key, PutPayload::from_static(b"first"), create())
            .await
            .expect("first create lands");
        let again = store
            .put_opts(&key, PutPayload::from_static(b"second"), create())
            .await;
        assert!(
            matches!(again, Err(object_store::Error::AlreadyExists { .. })),
            "second create of the same key: {again:?}"
        );
        let got = store.get(&key).await.unwrap().bytes().await.unwrap();
        assert_eq!(
            &got[..],
            b"first",
            "the losing create left the object alone"
        );

        // Overwrite is unconditional.
        store
            .put_opts(
                &key,
                PutPayload::from_static(b"third"),
                PutMode::Overwrite.into(),
            )
            .await
            .unwrap();
        let got = store.get(&key).await.unwrap().bytes().await.unwrap();
        assert_eq!(&got[..], b"third");

        // Racing creates of one key (bodies big enough that the writes overlap): one winner.
        for round in 0..5 {
            let key = object_store::path::Path::from(format!("race/{round}"));
            let tasks: Vec<_> = (0..16u8)
                .map(|i| {
                    let (store, key) = (store.clone(), key.clone());
                    tokio::spawn(async move {
                        let body = PutPayload::from(vec![i; 256 * 1024]);
                        (i, store.put_opts(&key, body, create()).await)
                    })
                })
                .collect();
            let mut winners = Vec::new();
            for t in tasks {
                match t.await.unwrap() {
                    (i, Ok(_)) => winners.push(i),
                    (_, Err(object_store::Error::AlreadyExists { .. })) => {}
                    (_, Err(e)) => panic!("racing create: {e}"),
                }
            }
            assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
            let got = store.get(&key).await.unwrap().bytes().await.unwrap();
            assert_eq!(got.len(), 256 * 1024);
            assert!(
                got.iter().all(|b| *b == winners[0]),
                "the winner's body is stored"
            );
        }
    });
}

/// The test server is not an open bucket: a request signed with the wrong secret is refused.
#[test]
fn test_s3_server_checks_signatures() {
    use object_store::{ObjectStoreExt, PutPayload};
    let s3 = S3Server::start("auth");
    let store = s3_client(&s3, "auth", "not-the-secret");
    runtime().block_on(async move {
        let r = store
            .put(
                &object_store::path::Path::from("k"),
                PutPayload::from_static(b"x"),
            )
            .await;
        assert!(r.is_err(), "a badly signed PUT was accepted");
    });
    assert!(!s3.root().join("auth/k").exists());
}
