//! Operations: every listed metric present and moving, config layering and rejection with the
//! real binary, and SIGTERM during an acks=all produce losing no acknowledged record.

mod common;

use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn metric_value(body: &str, line_prefix: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn metrics_are_present_and_move() {
    let mut s = settings("memory://");
    s.groups.min_session_timeout_ms = 1000;
    s.groups.initial_rebalance_delay_ms = 0;
    let b = TestBroker::start(s);
    let (_, before) = http_get(b.http, "/metrics");
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .create()
        .unwrap();
    for i in 0..100 {
        p.send(
            BaseRecord::<(), String>::to("metered")
                .partition(0)
                .payload(&format!("m{i}")),
        )
        .map_err(|(e, _)| e)
        .unwrap();
    }
    p.flush(Duration::from_secs(20)).unwrap();
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("group.id", "metered-group")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "3000")
        .create()
        .unwrap();
    c.subscribe(&["metered"]).unwrap();
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while got < 60 && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            got += 1;
            if got == 60 {
                c.commit_message(&m, CommitMode::Sync).unwrap();
            }
        }
    }
    assert_eq!(got, 60);
    let (status, body) = http_get(b.http, "/metrics");
    assert_eq!(status, 200);
    for name in [
        "heraclitus_kafka_requests_total{api=\"Produce\"",
        "heraclitus_kafka_request_duration_seconds_bucket{api=\"Fetch\"",
        "heraclitus_kafka_errors_total",
        "heraclitus_topic_bytes_in_total{topic=\"metered\"}",
        "heraclitus_topic_records_in_total{topic=\"metered\"}",
        "heraclitus_topic_bytes_out_total{topic=\"metered\"}",
        "heraclitus_topic_records_out_total{topic=\"metered\"}",
        "heraclitus_connections_accepted_total",
        "heraclitus_connections_open",
        "heraclitus_sasl_authentication_failures_total",
        "heraclitus_partition_high_watermark{partition=\"0\",topic=\"metered\"}",
        "heraclitus_partition_log_start_offset{partition=\"0\",topic=\"metered\"}",
        "heraclitus_consumer_groups{state=\"Stable\"}",
        "heraclitus_consumer_group_members{group=\"metered-group\"}",
        "heraclitus_consumer_group_lag{group=\"metered-group\",partition=\"0\",topic=\"metered\"}",
        "heraclitus_segment_flushes_total",
        "heraclitus_segment_flush_bytes_total",
        "heraclitus_segment_flush_records_total",
        "heraclitus_segment_flush_failures_total",
        "heraclitus_segment_flush_duration_seconds_bucket",
        "heraclitus_object_store_operations_total{op=\"put\"}",
        "heraclitus_object_store_bytes_total{op=\"put\"}",
        "heraclitus_object_store_operation_duration_seconds_bucket{op=\"put\"",
        "heraclitus_object_store_errors_total",
        "heraclitus_hot_tail_bytes",
        "heraclitus_segment_cache_bytes",
        "heraclitus_http_requests_total",
    ] {
        assert!(body.contains(name), "missing {name}\n{body}");
    }
    assert_eq!(
        metric_value(
            &body,
            "heraclitus_topic_records_in_total{topic=\"metered\"}"
        ),
        Some(100.0)
    );
    assert_eq!(
        metric_value(
            &body,
            "heraclitus_partition_high_watermark{partition=\"0\",topic=\"metered\"}"
        ),
        Some(100.0)
    );
    assert_eq!(
        metric_value(&body, "heraclitus_consumer_group_lag{group=\"metered-group\",partition=\"0\",topic=\"metered\"}"),
        Some(40.0),
        "lag = high watermark 100 - committed 60"
    );
    assert!(metric_value(&body, "heraclitus_segment_flushes_total").unwrap() >= 1.0);
    assert!(metric_value(&body, "heraclitus_hot_tail_bytes").unwrap() > 0.0);
    assert_eq!(
        metric_value(&body, "heraclitus_consumer_groups{state=\"Stable\"}"),
        Some(1.0)
    );
    assert!(!before.contains("topic=\"metered\""));
    assert_eq!(http_get(b.http, "/health").0, 200);
    assert_eq!(http_get(b.http, "/ready").0, 200);
}

fn run_binary(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_heraclitus"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// Defaults → file → HERACLITUS_ env → CLI flags; unknown keys and bad values stop start-up
/// naming the key.
#[test]
fn config_layering_and_rejection_with_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("h.yaml");
    let (k1, h1) = (free_port(), free_port());
    std::fs::write(
        &cfg,
        format!(
            "kafka_port: {k1}\nhttp_port: 1\nbind_host: 127.0.0.1\nstorage:\n  path: memory://\n"
        ),
    )
    .unwrap();
    // env overrides the file's http_port; CLI would override env (checked below).
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_heraclitus"))
        .args(["--config", cfg.to_str().unwrap()])
        .env("HERACLITUS_HTTP_PORT", h1.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let http: std::net::SocketAddr = format!("127.0.0.1:{h1}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(http).is_err() {
        assert!(
            Instant::now() < deadline,
            "env override of the file did not take"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", k1)).is_ok(),
        "file's kafka_port used"
    );
    let _ = child.kill();
    let _ = child.wait();
    // Rejections name the key.
    let out = run_binary(
        &["--config", cfg.to_str().unwrap()],
        &[("HERACLITUS_BATCHING__MAX_BATCH_SIZ", "5")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_batch_siz"));
    let out = run_binary(
        &["--config", cfg.to_str().unwrap()],
        &[("HERACLITUS_GROUPS__MAX_SIZE", "0")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("groups.max_size"));
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "performance:\n  compression_level: 99\n").unwrap();
    let out = run_binary(&["--config", bad.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("performance.compression_level"));
    let out = run_binary(&["--config", "/nonexistent/heraclitus.yaml"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[derive(Clone, Default)]
struct Acks(Arc<Mutex<Vec<Acked>>>);
type Acked = (i64, Vec<u8>);
impl ClientContext for Acks {}
impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        if let Ok(m) = r {
            self.0
                .lock()
                .unwrap()
                .push((m.offset(), m.payload().unwrap_or_default().to_vec()));
        }
    }
}

/// SIGTERM while an acks=all producer is sending: the broker flushes what is pending, exits
/// cleanly within a bounded time, and every acknowledged record is there after a restart.
#[test]
fn sigterm_during_produce_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_string();
    let (kp, hp) = (free_port(), free_port());
    // A long flush interval leaves appends buffered when the signal arrives.
    let env = [("HERACLITUS_BATCHING__FLUSH_INTERVAL_MS", "200")];
    let broker = BinaryBroker::start(&path, kp, hp, &env);
    let acks = Acks::default();
    let p: BaseProducer<Acks> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("acks", "all")
        .set("linger.ms", "1")
        .set("message.timeout.ms", "5000")
        .set("log_level", "0")
        .create_with_context(acks.clone())
        .unwrap();
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < Duration::from_millis(1500) {
        let v = format!("term-{i}");
        if p.send(
            BaseRecord::<(), String>::to("term")
                .partition(0)
                .payload(&v),
        )
        .is_ok()
        {
            i += 1;
        }
        p.poll(Duration::from_millis(1));
    }
    let t = Instant::now();
    let status = broker.terminate();
    assert!(status.success(), "clean exit: {status:?}");
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "bounded shutdown: {:?}",
        t.elapsed()
    );
    let _ = p.flush(Duration::from_secs(10));
    let acked = acks.0.lock().unwrap().clone();
    assert!(!acked.is_empty());
    let broker = BinaryBroker::start(&path, kp, hp, &[]);
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "term-verify")
        .create()
        .unwrap();
    let (_, hi) = c
        .fetch_watermarks("term", 0, Duration::from_secs(10))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("term", 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut stored = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while (stored.len() as i64) < hi && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            stored.insert(m.offset(), m.payload().unwrap_or_default().to_vec());
        }
    }
    for (off, v) in &acked {
        assert_eq!(stored.get(off), Some(v), "acked record at offset {off}");
    }
}

/// The status page and its JSON: a topic produced to and a group's committed offset show up
/// with the right high watermark and lag; the page is self-contained (no scripts, no external
/// assets) and escapes names.
#[test]
fn status_page_and_json_api() {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    let b = TestBroker::start(settings("memory://"));
    let mut raw = Raw::connect(b.kafka);
    raw.create_topic("page-orders", &[]);
    for v in [b"a", b"b", b"c", b"d", b"e"] {
        assert_eq!(raw.produce_batch("page-orders", 0, batch(&[v])).0, 0);
    }
    // A simple (non-member) commit of offset 2: lag 3.
    let mut p = OffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = 2;
    let mut t = OffsetCommitRequestTopic::default();
    t.name = TopicName(StrBytes::from_static_str("page-orders"));
    t.partitions = vec![p];
    let mut req = OffsetCommitRequest::default();
    req.group_id = GroupId(StrBytes::from_static_str("page-billing"));
    req.generation_id_or_member_epoch = -1;
    req.topics = vec![t];
    let ResponseKind::OffsetCommit(r) =
        raw.request(ApiKey::OffsetCommit, 8, RequestKind::OffsetCommit(req))
    else {
        panic!()
    };
    assert_eq!(r.topics[0].partitions[0].error_code, 0);

    let (code, html) = http_get(b.http, "/");
    assert_eq!(code, 200);
    assert!(html.contains("<!DOCTYPE html>") && html.contains("http-equiv=\"refresh\""));
    assert!(html.contains("page-orders") && html.contains("page-billing"));
    assert!(!html.contains("<script") && !html.contains("src=\"http"));

    let (code, topics) = http_get(b.http, "/api/v1/topics");
    assert_eq!(code, 200);
    let topics: serde_json::Value = serde_json::from_str(&topics).unwrap();
    let t = topics
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "page-orders")
        .unwrap();
    assert_eq!(t["partitions"][0]["high_watermark"], 5);
    let (_, groups) = http_get(b.http, "/api/v1/groups");
    let groups: serde_json::Value = serde_json::from_str(&groups).unwrap();
    let g = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "page-billing")
        .unwrap();
    assert_eq!(g["lag"], 3);
    let (code, status) = http_get(b.http, "/api/v1/status");
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["broker"]["ready"], true);
    assert!(status["storage"]["requests"].as_array().unwrap().len() == 4);
    assert_eq!(http_get(b.http, "/api/v1/nope").0, 404);
}

/// `metrics.bearer_token` / `basic_username`+`basic_password` protect /metrics, the status page
/// and its API with 401 otherwise; /health and /ready stay open for probes.
#[test]
fn metrics_can_require_a_token_or_basic_auth() {
    let mut s = settings("memory://");
    s.metrics.bearer_token = Some("t0ken".into());
    s.metrics.basic_username = Some("prom".into());
    s.metrics.basic_password = Some("scrape".into());
    let b = TestBroker::start(s);
    assert_eq!(http_get(b.http, "/health").0, 200);
    assert_eq!(http_get(b.http, "/ready").0, 200);
    for path in ["/metrics", "/", "/api/v1/topics"] {
        assert_eq!(http_get(b.http, path).0, 401, "{path}");
        assert_eq!(http_get_with(b.http, path, Some("Bearer wrong")).0, 401);
        // prom:wrong / prom:scrape in base64.
        assert_eq!(
            http_get_with(b.http, path, Some("Basic cHJvbTp3cm9uZw==")).0,
            401
        );
    }
    let (code, body) = http_get_with(b.http, "/metrics", Some("Bearer t0ken"));
    assert_eq!(code, 200);
    assert!(body.contains("heraclitus_kafka_requests_total") || body.contains("# TYPE"));
    assert_eq!(
        http_get_with(b.http, "/metrics", Some("Basic cHJvbTpzY3JhcGU=")).0,
        200
    );
}
