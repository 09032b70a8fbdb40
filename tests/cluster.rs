//! Cluster mode with real components: the `heraclitus` binary as N broker processes over one
//! bucket of a real S3 server (s3s-fs, in this process), coordinated through a real PostgreSQL
//! started from the system's packages. Ignored by plain `cargo test` (PostgreSQL is not part of
//! the Rust toolchain); `bash .ci/run` installs PostgreSQL and runs them with `--ignored`.
//!
//! The fault suite runs idempotent acks=all producers and a consumer group while it injects,
//! one at a time and combined: kill -9 of a leader, SIGSTOP of a leader past its lease (a
//! zombie) then SIGCONT, a restart of PostgreSQL, a restart of the S3 server, a rolling restart
//! of every broker, and a fourth broker joining. Its checker proves that every acknowledged
//! record is present exactly once at the offset it was acknowledged with, that no offset holds
//! two records, that offsets are dense, and that committed group offsets never go backwards.

mod common;

use common::{free_port, BinaryBroker, Postgres, Raw, S3Server};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SESSION_MS: u64 = 2000;

/// N brokers, PostgreSQL and an S3 server, all on loopback.
struct Cluster {
    pg: Postgres,
    s3: S3Server,
    brokers: Vec<Option<BinaryBroker>>,
    ports: Vec<(u16, u16)>,
    env: Vec<(String, String)>,
}

impl Cluster {
    fn start(n: usize, bucket: &str) -> Cluster {
        let pg = Postgres::start();
        let s3 = S3Server::start(bucket);
        let mut env: Vec<(String, String)> = s3
            .env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        env.extend(
            [
                ("HERACLITUS_CLUSTER__METADATA_STORE", pg.dsn()),
                ("HERACLITUS_CLUSTER__HEARTBEAT_INTERVAL_MS", "300".into()),
                (
                    "HERACLITUS_CLUSTER__SESSION_TIMEOUT_MS",
                    SESSION_MS.to_string(),
                ),
                ("HERACLITUS_CLUSTER__POLL_INTERVAL_MS", "100".into()),
                ("HERACLITUS_BATCHING__FLUSH_INTERVAL_MS", "20".into()),
                ("HERACLITUS_DEFAULT_PARTITIONS", "6".into()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v)),
        );
        let mut c = Cluster {
            pg,
            s3,
            brokers: Vec::new(),
            ports: Vec::new(),
            env,
        };
        for _ in 0..n {
            c.ports.push((free_port(), free_port()));
            c.brokers.push(None);
        }
        // Started together, as an operator would: registration and migration race.
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (k, h) = c.ports[i];
                let env = c.broker_env(i);
                let storage = c.storage();
                std::thread::spawn(move || {
                    let env: Vec<(&str, &str)> =
                        env.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                    BinaryBroker::start(&storage, k, h, &env)
                })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            c.brokers[i] = Some(h.join().expect("broker starts"));
        }
        c
    }

    fn storage(&self) -> String {
        "s3://cluster/data".to_string()
    }

    fn broker_env(&self, i: usize) -> Vec<(String, String)> {
        let mut env = self.env.clone();
        env.push(("HERACLITUS_NODE_ID".into(), (i + 1).to_string()));
        env
    }

    fn start_broker(&mut self, i: usize) {
        if i >= self.ports.len() {
            self.ports.push((free_port(), free_port()));
            self.brokers.push(None);
        }
        let (k, h) = self.ports[i];
        let env = self.broker_env(i);
        let env: Vec<(&str, &str)> = env.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        self.brokers[i] = Some(BinaryBroker::start(&self.storage(), k, h, &env));
    }

    fn bootstrap(&self) -> String {
        self.ports
            .iter()
            .map(|(k, _)| format!("127.0.0.1:{k}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn pid(&self, node: i32) -> u32 {
        self.brokers[(node - 1) as usize]
            .as_ref()
            .expect("broker running")
            .child
            .id()
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// Partition → leader as the cluster's Metadata reports it (-1: none).
fn leaders(bootstrap: &str, topic: &str) -> BTreeMap<i32, i32> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let mut out = BTreeMap::new();
    if let Ok(md) = c.fetch_metadata(Some(topic), Duration::from_secs(5)) {
        for t in md.topics() {
            for p in t.partitions() {
                let leader = if p.error().is_some() { -1 } else { p.leader() };
                out.insert(p.id(), leader);
            }
        }
    }
    out
}

/// Partition → leader once every one of `partitions` has a leader (Metadata from a broker whose
/// view lags a moment answers LEADER_NOT_AVAILABLE, as clients know to retry).
fn settled_leaders(bootstrap: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i32> {
    let t0 = Instant::now();
    loop {
        let l = leaders(bootstrap, topic);
        if l.len() == partitions as usize && l.values().all(|&b| b > 0) {
            return l;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{topic}: leaders did not settle: {l:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait until every partition has a live leader other than `not`; returns how long it took.
fn await_failover(bootstrap: &str, topic: &str, not: i32, partitions: i32) -> Duration {
    let t0 = Instant::now();
    loop {
        let l = leaders(bootstrap, topic);
        if l.len() == partitions as usize && l.values().all(|&b| b >= 0 && b != not) {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no failover away from {not}: {l:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// librdkafka's log lines, appended to a file when one is named.
struct FileLog(Option<String>);

impl ClientContext for FileLog {
    fn log(&self, _level: rdkafka::config::RDKafkaLogLevel, fac: &str, msg: &str) {
        if let Some(path) = &self.0 {
            use std::io::Write;
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                let _ = writeln!(f, "{}.{:03} {fac} {msg}", t.as_secs(), t.subsec_millis());
            }
        }
    }
}
impl rdkafka::consumer::ConsumerContext for FileLog {}

#[derive(Clone, Default)]
struct Acks {
    acked: Arc<Mutex<Vec<(i32, i64, String)>>>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl ClientContext for Acks {}
impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        match r {
            Ok(m) => self.acked.lock().unwrap().push((
                m.partition(),
                m.offset(),
                String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            )),
            Err((e, _)) => self.errors.lock().unwrap().push(e.to_string()),
        }
    }
}

/// (acknowledged records, producer errors, records the group consumed, committed-offset
/// regressions) of a finished workload.
type Outcome = (Vec<(i32, i64, String)>, Vec<String>, usize, Vec<String>);

/// Idempotent acks=all producers and a group consumer, until stopped.
struct Workload {
    stop: Arc<AtomicBool>,
    /// Stops the producers only (the group keeps consuming).
    stop_producing: Arc<AtomicBool>,
    /// The group's committed offsets as last observed.
    committed: Arc<Mutex<HashMap<i32, i64>>>,
    acks: Vec<Acks>,
    threads: Vec<std::thread::JoinHandle<()>>,
    consumed: Arc<AtomicUsize>,
    offset_regressions: Arc<Mutex<Vec<String>>>,
}

impl Workload {
    fn start(bootstrap: &str, topic: &str, producers: usize) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let stop_producing = Arc::new(AtomicBool::new(false));
        let committed = Arc::new(Mutex::new(HashMap::new()));
        let mut acks = Vec::new();
        let mut threads = Vec::new();
        for w in 0..producers {
            let a = Acks::default();
            acks.push(a.clone());
            let (stop, bootstrap, topic) = (
                stop_producing.clone(),
                bootstrap.to_string(),
                topic.to_string(),
            );
            threads.push(std::thread::spawn(move || {
                let p: BaseProducer<Acks> = ClientConfig::new()
                    .set("bootstrap.servers", &bootstrap)
                    .set("enable.idempotence", "true")
                    .set("acks", "all")
                    .set("linger.ms", "5")
                    .set("message.timeout.ms", "300000")
                    .set("retry.backoff.ms", "50")
                    .set("reconnect.backoff.max.ms", "500")
                    .set("topic.metadata.refresh.interval.ms", "1000")
                    .create_with_context(a)
                    .unwrap();
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let value = format!("w{w}-{seq}");
                    let key = seq.to_string();
                    if p.send(BaseRecord::to(&topic).key(&key).payload(&value))
                        .is_ok()
                    {
                        seq += 1;
                    }
                    p.poll(Duration::from_millis(2));
                }
                p.flush(Duration::from_secs(240)).expect("final flush");
            }));
        }
        // A group consumer committing as it goes, and an observer of the committed offsets.
        let consumed = Arc::new(AtomicUsize::new(0));
        let regressions = Arc::new(Mutex::new(Vec::new()));
        {
            let (stop, bootstrap, topic, consumed) = (
                stop.clone(),
                bootstrap.to_string(),
                topic.to_string(),
                consumed.clone(),
            );
            threads.push(std::thread::spawn(move || {
                let mut cfg = ClientConfig::new();
                cfg.set("bootstrap.servers", &bootstrap)
                    .set("group.id", "fault-group")
                    .set("enable.auto.commit", "false")
                    .set("auto.offset.reset", "earliest")
                    .set("session.timeout.ms", "10000");
                // FAULT_CONSUMER_LOG=FILE: librdkafka's group debug log of the consumer.
                let log = std::env::var("FAULT_CONSUMER_LOG").ok();
                if log.is_some() {
                    cfg.set("debug", "cgrp,fetch,topic")
                        .set_log_level(rdkafka::config::RDKafkaLogLevel::Debug);
                }
                let c: BaseConsumer<FileLog> = cfg.create_with_context(FileLog(log)).unwrap();
                c.subscribe(&[&topic]).unwrap();
                let mut since_commit = 0;
                let mut errors = 0;
                while !stop.load(Ordering::Relaxed) {
                    match c.poll(Duration::from_millis(100)) {
                        Some(Ok(_)) => {
                            consumed.fetch_add(1, Ordering::Relaxed);
                            since_commit += 1;
                        }
                        Some(Err(e)) => {
                            errors += 1;
                            if errors <= 20 {
                                eprintln!("group consumer: {e}");
                            }
                        }
                        // Idle: commit what was consumed.
                        None if since_commit > 0 => since_commit = 100,
                        None => {}
                    }
                    if since_commit >= 100 {
                        // Failures (coordinator moving) are retried by the next commit.
                        let _ = c.commit_consumer_state(CommitMode::Sync);
                        since_commit = 0;
                    }
                }
                let _ = c.commit_consumer_state(CommitMode::Sync);
            }));
        }
        {
            let (stop, bootstrap, topic, regressions, committed) = (
                stop.clone(),
                bootstrap.to_string(),
                topic.to_string(),
                regressions.clone(),
                committed.clone(),
            );
            threads.push(std::thread::spawn(move || {
                let c: BaseConsumer = ClientConfig::new()
                    .set("bootstrap.servers", &bootstrap)
                    .set("group.id", "fault-group")
                    .set("enable.auto.commit", "false")
                    .create()
                    .unwrap();
                let mut tpl = TopicPartitionList::new();
                for p in 0..6 {
                    tpl.add_partition(&topic, p);
                }
                let mut seen: HashMap<i32, i64> = HashMap::new();
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(list) = c.committed_offsets(tpl.clone(), Duration::from_secs(5)) {
                        for e in list.elements() {
                            if let Offset::Offset(o) = e.offset() {
                                let prev = seen.entry(e.partition()).or_insert(o);
                                if o < *prev {
                                    regressions.lock().unwrap().push(format!(
                                        "partition {}: committed {o} after {prev}",
                                        e.partition()
                                    ));
                                }
                                *prev = (*prev).max(o);
                                committed.lock().unwrap().insert(e.partition(), *prev);
                            }
                        }
                    }
                    std::thread::sleep(Duration::from_millis(300));
                }
            }));
        }
        Workload {
            stop,
            stop_producing,
            committed,
            acks,
            threads,
            consumed,
            offset_regressions: regressions,
        }
    }

    fn acked(&self) -> usize {
        self.acks
            .iter()
            .map(|a| a.acked.lock().unwrap().len())
            .sum()
    }

    /// Wait until `n` more records are acknowledged (the cluster makes progress).
    fn await_progress(&self, n: usize, what: &str) {
        let start = self.acked();
        let t0 = Instant::now();
        while self.acked() < start + n {
            assert!(
                t0.elapsed() < Duration::from_secs(90),
                "no progress after {what}: {} acked",
                self.acked()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "after {what}: {} acknowledged, {} consumed by the group",
            self.acked(),
            self.consumed.load(Ordering::Relaxed)
        );
    }

    /// Stop producing; wait until the group has committed everything up to `ends`.
    fn drain_group(&self, ends: &BTreeMap<i32, i64>) -> Duration {
        self.stop_producing.store(true, Ordering::Relaxed);
        let t0 = Instant::now();
        loop {
            let c = self.committed.lock().unwrap().clone();
            if ends
                .iter()
                .all(|(p, e)| c.get(p).copied().unwrap_or(0) >= *e)
            {
                return t0.elapsed();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "the group did not catch up: committed {c:?}, ends {ends:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn finish(self) -> Outcome {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("workload thread");
        }
        let mut acked = Vec::new();
        let mut errors = Vec::new();
        for a in &self.acks {
            acked.extend(a.acked.lock().unwrap().iter().cloned());
            errors.extend(a.errors.lock().unwrap().iter().cloned());
        }
        let regressions = self.offset_regressions.lock().unwrap().clone();
        (
            acked,
            errors,
            self.consumed.load(Ordering::Relaxed),
            regressions,
        )
    }
}

/// Everything in the topic up to the high watermarks, by (partition, offset).
fn read_log(bootstrap: &str, topic: &str, partitions: i32) -> BTreeMap<(i32, i64), String> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "checker")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    let mut total = 0;
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
        let (lo, hi) = c
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .unwrap();
        assert_eq!(lo, 0, "partition {p} starts at 0");
        total += hi;
    }
    c.assign(&tpl).unwrap();
    let mut out = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while (out.len() as i64) < total && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(500)) {
            let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            if let Some(old) = out.insert((m.partition(), m.offset()), v.clone()) {
                assert_eq!(
                    old,
                    v,
                    "offset {}/{} served two records",
                    m.partition(),
                    m.offset()
                );
            }
        }
    }
    assert_eq!(
        out.len() as i64,
        total,
        "read everything up to the high watermarks"
    );
    out
}

/// The checker: zero acknowledged loss, no offset with two records, no record twice, dense.
fn check(log: &BTreeMap<(i32, i64), String>, acked: &[(i32, i64, String)], partitions: i32) {
    for (p, o, v) in acked {
        assert_eq!(
            log.get(&(*p, *o)),
            Some(v),
            "acknowledged record {v} at {p}/{o} is in the log exactly there"
        );
    }
    let mut seen = HashSet::new();
    for ((p, o), v) in log {
        assert!(
            seen.insert(v.clone()),
            "{v} appears twice (again at {p}/{o})"
        );
    }
    for p in 0..partitions {
        let offsets: Vec<i64> = log
            .range((p, 0)..(p + 1, 0))
            .map(|((_, o), _)| *o)
            .collect();
        for (i, o) in offsets.iter().enumerate() {
            assert_eq!(*o, i as i64, "partition {p} is dense");
        }
    }
}

fn percentile(mut v: Vec<Duration>, q: f64) -> Duration {
    v.sort();
    v.get(((v.len() as f64 - 1.0) * q).round() as usize)
        .copied()
        .unwrap_or_default()
}

/// The fault suite (see the module comment). Prints the figures it measured.
#[test]
#[ignore = "needs PostgreSQL (installed and run by .ci/run)"]
fn fault_suite_three_brokers_zero_acknowledged_loss() {
    let topic = "faults";
    let mut c = Cluster::start(3, "cluster");
    let bootstrap = c.bootstrap();
    {
        let mut raw = Raw::connect(format!("127.0.0.1:{}", c.ports[0].0).parse().unwrap());
        let (code, msg) = raw.create_topic_with(topic, 6, &[]);
        assert_eq!(code, 0, "{msg:?}");
    }
    let w = Workload::start(&bootstrap, topic, 2);
    w.await_progress(2000, "start");
    let mut failovers = Vec::new();
    let mut faults = 0;

    // 1. kill -9 of a leader.
    let victim = settled_leaders(&bootstrap, topic, 6)[&0];
    c.brokers[(victim - 1) as usize].take().unwrap().kill9();
    faults += 1;
    failovers.push(await_failover(&bootstrap, topic, victim, 6));
    w.await_progress(1000, "kill -9");
    c.start_broker((victim - 1) as usize);
    w.await_progress(1000, "restart after kill -9");

    // 2. SIGSTOP of a leader past its lease (a zombie), then SIGCONT.
    let zombie = settled_leaders(&bootstrap, topic, 6)[&1];
    signal(c.pid(zombie), "-STOP");
    faults += 1;
    failovers.push(await_failover(&bootstrap, topic, zombie, 6));
    w.await_progress(1000, "SIGSTOP");
    std::thread::sleep(Duration::from_millis(SESSION_MS));
    signal(c.pid(zombie), "-CONT");
    w.await_progress(1000, "SIGCONT");

    // 3. A restart of PostgreSQL.
    c.pg.restart(Duration::from_secs(2));
    faults += 1;
    w.await_progress(1000, "PostgreSQL restart");

    // 4. A restart of the S3 server.
    c.s3.restart(Duration::from_secs(2));
    faults += 1;
    w.await_progress(1000, "S3 restart");

    // 5. A rolling restart of every broker (SIGTERM: leadership handed over).
    for i in 0..3 {
        let status = c.brokers[i].take().unwrap().terminate();
        assert!(
            status.success(),
            "broker {} exits cleanly on SIGTERM",
            i + 1
        );
        faults += 1;
        c.start_broker(i);
        w.await_progress(500, "rolling restart");
    }

    // 6. A fourth broker joins and takes its share.
    c.start_broker(3);
    faults += 1;
    let t0 = Instant::now();
    while !leaders(&bootstrap, topic).values().any(|&b| b == 4) {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "broker 4 leads nothing"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    w.await_progress(1000, "a fourth broker");

    // 7. Combined: PostgreSQL restarts while a leader is killed.
    let victim = settled_leaders(&bootstrap, topic, 6)[&2];
    c.brokers[(victim - 1) as usize].take().unwrap().kill9();
    c.pg.restart(Duration::from_secs(1));
    faults += 2;
    failovers.push(await_failover(&c.bootstrap(), topic, victim, 6));
    w.await_progress(1000, "kill -9 during a PostgreSQL restart");
    c.start_broker((victim - 1) as usize);
    w.await_progress(500, "restart");

    w.stop_producing.store(true, Ordering::Relaxed);
    // Let the producers flush, then the group must commit up to the end of the log.
    std::thread::sleep(Duration::from_secs(2));
    let ends = {
        let probe: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", c.bootstrap())
            .create()
            .unwrap();
        (0..6)
            .map(|p| {
                let (_, hi) = probe
                    .fetch_watermarks(topic, p, Duration::from_secs(10))
                    .unwrap();
                (p, hi)
            })
            .collect::<BTreeMap<i32, i64>>()
    };
    let drained = w.drain_group(&ends);
    let (acked, errors, consumed, regressions) = w.finish();
    assert!(
        errors.is_empty(),
        "producer errors: {:?}",
        &errors[..errors.len().min(5)]
    );
    assert!(
        regressions.is_empty(),
        "committed offsets went back: {regressions:?}"
    );
    let log = read_log(&c.bootstrap(), topic, 6);
    check(&log, &acked, 6);
    println!(
        "fault suite: {} records acknowledged, {} in the log, {consumed} consumed by the group, \
         {faults} faults injected, failover p50 {:?} max {:?}, group caught up {drained:?} \
         after the producers stopped",
        acked.len(),
        log.len(),
        percentile(failovers.clone(), 0.5),
        percentile(failovers, 1.0),
    );
}

/// Every broker serves Metadata for the whole cluster; a topic created through one broker is
/// served by all; a produce to a non-leader gets NOT_LEADER_OR_FOLLOWER with the KIP-951 hint
/// naming the leader; FindCoordinator names the same coordinator on every broker.
#[test]
#[ignore = "needs PostgreSQL (installed and run by .ci/run)"]
fn brokers_route_clients_to_leaders_and_coordinators() {
    let c = Cluster::start(3, "routing");
    let addrs: Vec<std::net::SocketAddr> = c
        .ports
        .iter()
        .map(|(k, _)| format!("127.0.0.1:{k}").parse().unwrap())
        .collect();
    let mut raw = Raw::connect(addrs[1]);
    let (code, msg) = raw.create_topic_with("routed", 3, &[]);
    assert_eq!(code, 0, "{msg:?}");
    // Spread over the 3 brokers (once the controller sees all of them live).
    let t0 = Instant::now();
    let l = loop {
        let l = settled_leaders(&c.bootstrap(), "routed", 3);
        let mut by_leader: Vec<i32> = l.values().copied().collect();
        by_leader.sort();
        if by_leader == vec![1, 2, 3] {
            break l;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "3 partitions spread over 3 brokers: {l:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };

    // Produce v10 to a broker that does not lead partition 0.
    let leader = l[&0];
    let other = (1..=3).find(|n| *n != leader).unwrap();
    let mut raw = Raw::connect(addrs[(other - 1) as usize]);
    // That broker may learn about the topic a poll interval later (UNKNOWN_TOPIC_OR_PARTITION
    // until then, as a client would retry).
    let t0 = Instant::now();
    let r = loop {
        let req = common::produce_request("routed", 0, common::batch(&[b"x"]));
        let ResponseKind::Produce(r) = raw.request(ApiKey::Produce, 10, RequestKind::Produce(req))
        else {
            panic!()
        };
        let p = &r.responses[0].partition_responses[0];
        if p.error_code != 3 && p.current_leader.leader_id.0 >= 0 || t0.elapsed().as_secs() > 10 {
            break r;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let p = &r.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 6, "NOT_LEADER_OR_FOLLOWER");
    assert_eq!(p.current_leader.leader_id.0, leader, "KIP-951 leader hint");
    assert!(p.current_leader.leader_epoch >= 1);
    assert!(r.node_endpoints.iter().any(|n| n.node_id.0 == leader));
    // The leader takes it.
    let mut raw = Raw::connect(addrs[(leader - 1) as usize]);
    let t0 = Instant::now();
    let (code, off) = loop {
        // NOT_LEADER_OR_FOLLOWER until the leader has started it (retriable).
        let r = raw.produce_batch("routed", 0, common::batch(&[b"y"]));
        if r.0 != 6 || t0.elapsed().as_secs() > 10 {
            break r;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!((code, off), (0, 0));

    // FindCoordinator agrees everywhere.
    let mut answers = HashSet::new();
    for a in &addrs {
        let mut raw = Raw::connect(*a);
        let mut req = kafka_protocol::messages::FindCoordinatorRequest::default();
        req.key = "some-group".into();
        let ResponseKind::FindCoordinator(r) = raw.request(
            ApiKey::FindCoordinator,
            3,
            RequestKind::FindCoordinator(req),
        ) else {
            panic!()
        };
        assert_eq!(r.error_code, 0);
        answers.insert((r.node_id.0, r.port));
    }
    assert_eq!(answers.len(), 1, "one coordinator: {answers:?}");
    // Transactions are not served in cluster mode: a non-retriable answer at once, with a
    // reason (clients fail fast instead of retrying until their timeout).
    let mut raw = Raw::connect(addrs[0]);
    let mut req = kafka_protocol::messages::FindCoordinatorRequest::default();
    req.key = "txn".into();
    req.key_type = 1;
    let ResponseKind::FindCoordinator(r) = raw.request(
        ApiKey::FindCoordinator,
        3,
        RequestKind::FindCoordinator(req),
    ) else {
        panic!()
    };
    assert_eq!(r.error_code, 53);
    assert!(r.error_message.is_some_and(|m| m.contains("cluster mode")));
}

fn tn(name: &str) -> kafka_protocol::messages::TopicName {
    kafka_protocol::messages::TopicName(kafka_protocol::protocol::StrBytes::from_string(
        name.to_string(),
    ))
}

/// ListOffsets of one partition on one broker: (error code, latest offset).
fn list_latest(addr: std::net::SocketAddr, topic: &str, partition: i32) -> (i16, i64) {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let mut raw = Raw::connect(addr);
    let mut req = kafka_protocol::messages::ListOffsetsRequest::default();
    req.replica_id = kafka_protocol::messages::BrokerId(-1);
    req.topics = vec![ListOffsetsTopic::default()
        .with_name(tn(topic))
        .with_partitions(vec![ListOffsetsPartition::default()
            .with_partition_index(partition)
            .with_timestamp(-1)])];
    let ResponseKind::ListOffsets(r) =
        raw.request(ApiKey::ListOffsets, 7, RequestKind::ListOffsets(req))
    else {
        panic!()
    };
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.offset)
}

/// A topic created through one broker answers ListOffsets at once on its leader (whose view
/// may be a poll behind: librdkafka takes UNKNOWN_TOPIC_OR_PARTITION there as final).
/// AlterPartitionReassignments moves a partition's leadership to the first broker of the given
/// list (replicas reported as given, epoch bumped, data intact, the new leader takes produces);
/// ElectLeaders PREFERRED then has nothing to do; a dead broker in the list is refused.
#[test]
#[ignore = "needs PostgreSQL (installed and run by .ci/run)"]
fn leadership_moves_by_hand() {
    use kafka_protocol::messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    use kafka_protocol::messages::{
        AlterPartitionReassignmentsRequest, BrokerId, ElectLeadersRequest, MetadataRequest,
    };
    let c = Cluster::start(3, "moves");
    let addrs: Vec<std::net::SocketAddr> = c
        .ports
        .iter()
        .map(|(k, _)| format!("127.0.0.1:{k}").parse().unwrap())
        .collect();
    let addr = |node: i32| addrs[(node - 1) as usize];
    // Wait until all three brokers are live in every view.
    let t0 = Instant::now();
    loop {
        let seen: Vec<usize> = addrs
            .iter()
            .map(|a| {
                let mut raw = Raw::connect(*a);
                let ResponseKind::Metadata(md) = raw.request(
                    ApiKey::Metadata,
                    12,
                    RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![]))),
                ) else {
                    panic!()
                };
                md.brokers.len()
            })
            .collect();
        if seen == vec![3, 3, 3] {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "3 brokers live");
        std::thread::sleep(Duration::from_millis(100));
    }
    for round in 0..5 {
        let topic = format!("fresh-{round}");
        let mut raw = Raw::connect(addrs[1]);
        assert_eq!(raw.create_topic_with(&topic, 3, &[]).0, 0);
        // Broker 2 answered after its own view had leaders: ask each leader right away.
        let mut raw = Raw::connect(addrs[1]);
        let ResponseKind::Metadata(md) = raw.request(
            ApiKey::Metadata,
            12,
            RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![
                kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                    .with_name(Some(tn(&topic))),
            ]))),
        ) else {
            panic!()
        };
        let l: Vec<(i32, i32)> = md.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.leader_id.0))
            .collect();
        assert_eq!(l.len(), 3);
        for (p, leader) in l {
            assert!(leader > 0, "{topic}-{p}: a leader");
            assert_eq!(
                list_latest(addr(leader), &topic, p),
                (0, 0),
                "{topic}-{p} on its new leader {leader}"
            );
        }
    }

    let mut raw = Raw::connect(addrs[0]);
    assert_eq!(raw.create_topic_with("moved", 2, &[]).0, 0);
    let l = settled_leaders(&c.bootstrap(), "moved", 2);
    let from = l[&0];
    let to = (1..=3).find(|n| *n != from).unwrap();
    let third = (1..=3).find(|n| *n != from && *n != to).unwrap();
    let produce = |node: i32, v: &[u8]| {
        let mut raw = Raw::connect(addr(node));
        let t0 = Instant::now();
        loop {
            let r = raw.produce_batch("moved", 0, common::batch(&[v]));
            if r.0 == 0 || t0.elapsed() > Duration::from_secs(15) {
                return r;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert_eq!(produce(from, b"before"), (0, 0));

    let reassign = |replicas: Vec<i32>| {
        let mut raw = Raw::connect(addrs[2]);
        let ResponseKind::AlterPartitionReassignments(r) = raw.request(
            ApiKey::AlterPartitionReassignments,
            0,
            RequestKind::AlterPartitionReassignments(
                AlterPartitionReassignmentsRequest::default().with_topics(vec![
                    ReassignableTopic::default()
                        .with_name(tn("moved"))
                        .with_partitions(vec![ReassignablePartition::default()
                            .with_partition_index(0)
                            .with_replicas(Some(replicas.into_iter().map(BrokerId).collect()))]),
                ]),
            ),
        ) else {
            panic!()
        };
        r.responses[0].partitions[0].error_code
    };
    assert_eq!(reassign(vec![to, third]), 0);
    assert_eq!(reassign(vec![to, 99]), 39, "INVALID_REPLICA_ASSIGNMENT");
    // Every broker follows: partition 0 led by `to`, replicas as given, partition 1 untouched.
    let t0 = Instant::now();
    loop {
        let l2 = leaders(&c.bootstrap(), "moved");
        if l2.get(&0) == Some(&to) && l2.get(&1) == l.get(&1) {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "moved: {l2:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Broker 1's view may be a poll behind: its Metadata shows the new replica list soon.
    let mut raw = Raw::connect(addrs[0]);
    let t0 = Instant::now();
    let p0 = loop {
        let ResponseKind::Metadata(md) = raw.request(
            ApiKey::Metadata,
            12,
            RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![
                kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                    .with_name(Some(tn("moved"))),
            ]))),
        ) else {
            panic!()
        };
        let p0 = md.topics[0]
            .partitions
            .iter()
            .find(|p| p.partition_index == 0)
            .unwrap()
            .clone();
        if p0.replica_nodes == vec![BrokerId(to), BrokerId(third)]
            || t0.elapsed() > Duration::from_secs(15)
        {
            break p0;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(p0.replica_nodes, vec![BrokerId(to), BrokerId(third)]);
    assert_eq!(p0.leader_id, BrokerId(to));
    assert!(p0.leader_epoch >= 2, "epoch bumped: {}", p0.leader_epoch);
    // The new leader continues the log.
    assert_eq!(produce(to, b"after"), (0, 1));
    assert_eq!(list_latest(addr(to), "moved", 0), (0, 2));
    // Already led by its preferred replica: nothing to elect.
    let ResponseKind::ElectLeaders(r) = raw.request(
        ApiKey::ElectLeaders,
        2,
        RequestKind::ElectLeaders(ElectLeadersRequest::default().with_topic_partitions(Some(
            vec![TopicPartitions::default()
                .with_topic(tn("moved"))
                .with_partitions(vec![0, 1])],
        ))),
    ) else {
        panic!()
    };
    let codes: Vec<i16> = r.replica_election_results[0]
        .partition_result
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(codes, vec![84, 84], "ELECTION_NOT_NEEDED");
}
