//! Producer features and security: SASL gatekeeping, idempotent producers (duplicates, gaps,
//! fencing, state across restarts), compression bombs and topic compression.type.

mod common;

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::time::Duration;

fn produce(raw: &mut Raw, topic: &str, records: Bytes) -> (i16, i64) {
    raw.produce_batch(topic, 0, records)
}

fn fetch_all(raw: &mut Raw, topic: &str) -> (i64, Bytes) {
    let mut fp = FetchPartition::default();
    fp.partition_max_bytes = 10 << 20;
    let mut ft = FetchTopic::default();
    ft.topic = TopicName(StrBytes::from_string(topic.to_string()));
    ft.partitions = vec![fp];
    let mut req = FetchRequest::default();
    req.max_bytes = 10 << 20;
    req.replica_id = BrokerId(-1);
    req.topics = vec![ft];
    let ResponseKind::Fetch(r) = raw.request(ApiKey::Fetch, 12, RequestKind::Fetch(req)) else {
        panic!()
    };
    let p = &r.responses[0].partitions[0];
    (p.high_watermark, p.records.clone().unwrap_or_default())
}

fn init_pid(raw: &mut Raw) -> (i64, i16) {
    let ResponseKind::InitProducerId(r) = raw.request(
        ApiKey::InitProducerId,
        4,
        RequestKind::InitProducerId(InitProducerIdRequest::default()),
    ) else {
        panic!()
    };
    assert_eq!(r.error_code, 0);
    (r.producer_id.0, r.producer_epoch)
}

/// A retried idempotent batch gets its original offset and is stored once; a gap is
/// OUT_OF_ORDER_SEQUENCE_NUMBER; an older epoch is INVALID_PRODUCER_EPOCH; all of it holds after
/// a restart (producer state rebuilt from segments); producer ids never repeat.
#[test]
fn idempotent_producer_dedup_gaps_fencing_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_string();
    let (pid, epoch);
    {
        let b = TestBroker::start(settings(&path));
        let mut raw = Raw::connect(b.kafka);
        raw.create_topic("idem", &[]);
        (pid, epoch) = init_pid(&mut raw);
        let first = batch_idempotent(&[b"a", b"b"], pid, epoch, 0);
        assert_eq!(produce(&mut raw, "idem", first.clone()), (0, 0));
        assert_eq!(
            produce(&mut raw, "idem", first.clone()),
            (0, 0),
            "retry → same offset"
        );
        assert_eq!(fetch_all(&mut raw, "idem").0, 2, "stored once");
        let second = batch_idempotent(&[b"c"], pid, epoch, 2);
        assert_eq!(produce(&mut raw, "idem", second.clone()), (0, 2));
        let gap = batch_idempotent(&[b"x"], pid, epoch, 9);
        assert_eq!(
            produce(&mut raw, "idem", gap).0,
            45,
            "OUT_OF_ORDER_SEQUENCE_NUMBER"
        );
        // Epoch bump (KIP-360) fences the old epoch.
        let mut req = InitProducerIdRequest::default();
        req.producer_id = ProducerId(pid);
        req.producer_epoch = epoch;
        let ResponseKind::InitProducerId(r) =
            raw.request(ApiKey::InitProducerId, 4, RequestKind::InitProducerId(req))
        else {
            panic!()
        };
        assert_eq!((r.producer_id.0, r.producer_epoch), (pid, epoch + 1));
        assert_eq!(
            produce(
                &mut raw,
                "idem",
                batch_idempotent(&[b"n"], pid, epoch + 1, 0)
            ),
            (0, 3)
        );
        let stale = batch_idempotent(&[b"old"], pid, epoch, 3);
        assert_eq!(
            produce(&mut raw, "idem", stale).0,
            47,
            "INVALID_PRODUCER_EPOCH"
        );
        drop(raw);
        b.stop();
    }
    let b = TestBroker::start(settings(&path));
    let mut raw = Raw::connect(b.kafka);
    let again = batch_idempotent(&[b"n"], pid, epoch + 1, 0);
    assert_eq!(
        produce(&mut raw, "idem", again),
        (0, 3),
        "duplicate detected after restart"
    );
    assert_eq!(fetch_all(&mut raw, "idem").0, 4);
    let (pid2, _) = init_pid(&mut raw);
    assert!(
        pid2 > pid,
        "producer ids never repeat across restarts ({pid2} after {pid})"
    );
    // A transactional id: its own producer id (never an idempotent one's), epoch 0; a
    // transaction timeout outside 1 ms..15 min is INVALID_TRANSACTION_TIMEOUT.
    let mut req = InitProducerIdRequest::default();
    req.transactional_id = Some(TransactionalId(StrBytes::from_static_str("txn")));
    for (timeout, code) in [(0, 50), (900_001, 50), (60_000, 0)] {
        req.transaction_timeout_ms = timeout;
        let ResponseKind::InitProducerId(r) = raw.request(
            ApiKey::InitProducerId,
            4,
            RequestKind::InitProducerId(req.clone()),
        ) else {
            panic!()
        };
        assert_eq!(r.error_code, code, "timeout {timeout}");
        if code == 0 {
            assert!(r.producer_id.0 > pid2 && r.producer_epoch == 0, "{r:?}");
        }
    }
}

/// librdkafka with enable.idempotence produces through InitProducerId and sequence numbers.
#[test]
fn rdkafka_idempotent_producer() {
    let b = TestBroker::start(settings("memory://"));
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    for i in 0..2000 {
        let v = format!("idem-{i}");
        p.send(
            BaseRecord::<(), String>::to("rk-idem")
                .partition(0)
                .payload(&v),
        )
        .map_err(|(e, _)| e)
        .unwrap();
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(30)).unwrap();
    let mut raw = Raw::connect(b.kafka);
    assert_eq!(fetch_all(&mut raw, "rk-idem").0, 2000);
}

/// A zstd batch that inflates far beyond the cap gets CORRUPT_MESSAGE, not an out-of-memory.
#[test]
fn compression_bomb_is_refused() {
    let b = TestBroker::start(settings("memory://"));
    let mut raw = Raw::connect(b.kafka);
    raw.create_topic("bomb", &[]);
    // One record whose value is 200 MiB of zeros, zstd-compressed to a few KiB.
    let plain = batch(&[b"x"]);
    let n: usize = 200 << 20;
    let mut rec = vec![0u8]; // attributes
    rec.push(0); // ts delta
    rec.push(0); // offset delta
    rec.push(1); // key null (-1)
    let mut v = Vec::new();
    let mut u = (n as u64) << 1;
    while u >= 0x80 {
        v.push((u as u8) | 0x80);
        u >>= 7;
    }
    v.push(u as u8);
    rec.extend_from_slice(&v);
    let zeros = vec![0u8; n];
    let mut body = Vec::new();
    let rl = rec.len() + n + 1;
    let mut u = (rl as u64) << 1;
    while u >= 0x80 {
        body.push((u as u8) | 0x80);
        u >>= 7;
    }
    body.push(u as u8);
    body.extend_from_slice(&rec);
    body.extend_from_slice(&zeros);
    body.push(0); // no headers
    let compressed = zstd::bulk::compress(&body, 3).unwrap();
    let mut out = plain[..61].to_vec();
    out.extend_from_slice(&compressed);
    let len = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&len.to_be_bytes());
    out[21..23].copy_from_slice(&4i16.to_be_bytes()); // zstd
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    assert!(out.len() < 1 << 20);
    assert_eq!(
        produce(&mut raw, "bomb", Bytes::from(out)).0,
        2,
        "CORRUPT_MESSAGE"
    );
    assert_eq!(
        produce(&mut raw, "bomb", batch(&[b"fine"])).0,
        0,
        "broker still serves"
    );
}

/// A topic's compression.type is applied to what the broker stores and serves.
#[test]
fn topic_compression_type_is_honoured() {
    let b = TestBroker::start(settings("memory://"));
    let mut raw = Raw::connect(b.kafka);
    raw.create_topic("zstd-topic", &[("compression.type", "zstd")]);
    assert_eq!(
        produce(&mut raw, "zstd-topic", batch(&[b"one", b"two"])),
        (0, 0)
    );
    let (_, recs) = fetch_all(&mut raw, "zstd-topic");
    let attrs = i16::from_be_bytes([recs[21], recs[22]]);
    assert_eq!(attrs & 7, 4, "stored as zstd");
    let mut buf = recs.clone();
    let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf).unwrap();
    let vals: Vec<_> = sets[0]
        .records
        .iter()
        .map(|r| r.value.clone().unwrap())
        .collect();
    assert_eq!(
        vals,
        vec![Bytes::from_static(b"one"), Bytes::from_static(b"two")]
    );
}

fn sasl_settings() -> heraclitus::config::Settings {
    let mut s = settings("memory://");
    s.auth.enabled = true;
    s.auth.plain_username = "alice".into();
    s.auth.plain_password = "wonderland".into();
    s
}

/// With SASL on, only ApiVersions/SaslHandshake/SaslAuthenticate are served before
/// authentication (anything else closes the connection, big frames too); an unknown mechanism
/// gets the enabled list; librdkafka with the right password works, with a wrong one does not.
#[test]
fn sasl_plain_gatekeeping_with_rdkafka() {
    let b = TestBroker::start(sasl_settings());
    let mut raw = Raw::connect(b.kafka);
    let ResponseKind::ApiVersions(v) = raw.request(
        ApiKey::ApiVersions,
        3,
        RequestKind::ApiVersions(ApiVersionsRequest::default()),
    ) else {
        panic!()
    };
    assert_eq!(v.error_code, 0);
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = StrBytes::from_static_str("GSSAPI");
    let ResponseKind::SaslHandshake(h) =
        raw.request(ApiKey::SaslHandshake, 1, RequestKind::SaslHandshake(hs))
    else {
        panic!()
    };
    assert_eq!(h.error_code, 33);
    assert_eq!(h.mechanisms, vec![StrBytes::from_static_str("PLAIN")]);
    // Metadata before authentication closes the connection.
    let mut raw = Raw::connect(b.kafka);
    assert!(raw
        .try_request(
            ApiKey::Metadata,
            9,
            RequestKind::Metadata(MetadataRequest::default())
        )
        .is_none());
    // A frame over the 512 KiB pre-authentication cap closes the connection.
    let mut raw = Raw::connect(b.kafka);
    raw.send_bytes(&(600 * 1024i32).to_be_bytes());
    assert!(raw.is_closed());
    // Wrong password: SASL_AUTHENTICATION_FAILED, then closed.
    let mut raw = Raw::connect(b.kafka);
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = StrBytes::from_static_str("PLAIN");
    raw.request(ApiKey::SaslHandshake, 1, RequestKind::SaslHandshake(hs));
    let mut au = SaslAuthenticateRequest::default();
    au.auth_bytes = Bytes::from_static(b"\0alice\0nope");
    let ResponseKind::SaslAuthenticate(a) = raw.request(
        ApiKey::SaslAuthenticate,
        2,
        RequestKind::SaslAuthenticate(au),
    ) else {
        panic!()
    };
    assert_eq!(a.error_code, 58);
    assert!(raw.is_closed());
    // librdkafka, right password.
    let ok: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "PLAIN")
        .set("sasl.username", "alice")
        .set("sasl.password", "wonderland")
        .create()
        .unwrap();
    ok.send(BaseRecord::<(), str>::to("secure").payload("hi"))
        .map_err(|(e, _)| e)
        .unwrap();
    ok.flush(Duration::from_secs(20))
        .expect("authenticated produce");
    // librdkafka, wrong password: the record is never acknowledged.
    let ctx = Outcomes::default();
    let bad: BaseProducer<Outcomes> = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "PLAIN")
        .set("sasl.username", "alice")
        .set("sasl.password", "wrong")
        .set("message.timeout.ms", "3000")
        .set("log_level", "0")
        .create_with_context(ctx.clone())
        .unwrap();
    bad.send(BaseRecord::<(), str>::to("secure").payload("no"))
        .map_err(|(e, _)| e)
        .unwrap();
    let _ = bad.flush(Duration::from_secs(10));
    let o = ctx.0.lock().unwrap().clone();
    assert_eq!(o, vec![false], "delivery failed, never acked");
}

#[derive(Clone, Default)]
struct Outcomes(std::sync::Arc<std::sync::Mutex<Vec<bool>>>);
impl rdkafka::ClientContext for Outcomes {}
impl rdkafka::producer::ProducerContext for Outcomes {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
        self.0.lock().unwrap().push(r.is_ok());
    }
}

fn alter_scram(
    raw: &mut Raw,
    deletions: &[(&str, i8)],
    upsertions: &[(&str, i8, i32)],
) -> Vec<(String, i16)> {
    use kafka_protocol::messages::alter_user_scram_credentials_request::{
        ScramCredentialDeletion, ScramCredentialUpsertion,
    };
    let req = AlterUserScramCredentialsRequest::default()
        .with_deletions(
            deletions
                .iter()
                .map(|(u, m)| {
                    ScramCredentialDeletion::default()
                        .with_name(StrBytes::from_string(u.to_string()))
                        .with_mechanism(*m)
                })
                .collect(),
        )
        .with_upsertions(
            upsertions
                .iter()
                .map(|(u, m, i)| {
                    let (alg, len) = if *m == 2 {
                        (ring::pbkdf2::PBKDF2_HMAC_SHA512, 64)
                    } else {
                        (ring::pbkdf2::PBKDF2_HMAC_SHA256, 32)
                    };
                    let mut salted = vec![0u8; len];
                    ring::pbkdf2::derive(
                        alg,
                        std::num::NonZeroU32::new((*i).max(1) as u32).unwrap(),
                        b"some-salt",
                        b"password",
                        &mut salted,
                    );
                    ScramCredentialUpsertion::default()
                        .with_name(StrBytes::from_string(u.to_string()))
                        .with_mechanism(*m)
                        .with_iterations(*i)
                        .with_salt(Bytes::from_static(b"some-salt"))
                        .with_salted_password(Bytes::from(salted))
                })
                .collect(),
        );
    let ResponseKind::AlterUserScramCredentials(r) = raw.request(
        ApiKey::AlterUserScramCredentials,
        0,
        RequestKind::AlterUserScramCredentials(req),
    ) else {
        panic!()
    };
    r.results
        .iter()
        .map(|x| (x.user.to_string(), x.error_code))
        .collect()
}

/// (user, error code, [(mechanism, iterations)]).
type Described = (String, i16, Vec<(i8, i32)>);

fn describe_scram(raw: &mut Raw, users: Option<&[&str]>) -> Vec<Described> {
    use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
    let req = DescribeUserScramCredentialsRequest::default().with_users(users.map(|u| {
        u.iter()
            .map(|n| UserName::default().with_name(StrBytes::from_string(n.to_string())))
            .collect()
    }));
    let ResponseKind::DescribeUserScramCredentials(r) = raw.request(
        ApiKey::DescribeUserScramCredentials,
        0,
        RequestKind::DescribeUserScramCredentials(req),
    ) else {
        panic!()
    };
    r.results
        .iter()
        .map(|x| {
            (
                x.user.to_string(),
                x.error_code,
                x.credential_infos
                    .iter()
                    .map(|c| (c.mechanism, c.iterations))
                    .collect(),
            )
        })
        .collect()
}

/// AlterUserScramCredentials / DescribeUserScramCredentials: Kafka's validation and error
/// codes, and the credentials survive a restart (persisted before the answer).
#[test]
fn scram_credentials_are_managed_and_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_string();
    let b = TestBroker::start(settings(&path));
    let mut raw = Raw::connect(b.kafka);
    assert_eq!(describe_scram(&mut raw, None), vec![]);
    let r = alter_scram(
        &mut raw,
        &[("ghost", 1)],
        &[
            ("alice", 1, 4096),
            ("alice", 2, 8192),
            ("bob", 1, 100),
            ("carol", 9, 4096),
            ("dave", 1, 5000),
            ("dave", 1, 6000),
        ],
    );
    assert_eq!(
        r,
        vec![
            ("ghost".into(), 91),
            ("alice".into(), 0),
            ("bob".into(), 93),
            ("carol".into(), 33),
            ("dave".into(), 92)
        ]
    );
    assert_eq!(
        describe_scram(&mut raw, Some(&["alice", "bob", "alice2"])),
        vec![
            ("alice".into(), 0, vec![(1, 4096), (2, 8192)]),
            ("bob".into(), 91, vec![]),
            ("alice2".into(), 91, vec![])
        ]
    );
    assert_eq!(
        describe_scram(&mut raw, Some(&["alice", "alice"]))[0].1,
        92,
        "asked twice"
    );
    drop(raw);
    b.stop();
    let b = TestBroker::start(settings(&path));
    let mut raw = Raw::connect(b.kafka);
    assert_eq!(
        describe_scram(&mut raw, None),
        vec![("alice".into(), 0, vec![(1, 4096), (2, 8192)])],
        "persisted"
    );
    assert_eq!(
        alter_scram(&mut raw, &[("alice", 1)], &[]),
        vec![("alice".into(), 0)]
    );
    assert_eq!(
        describe_scram(&mut raw, None),
        vec![("alice".into(), 0, vec![(2, 8192)])]
    );
}
