//! Prometheus metrics. Counters and histograms are updated where things happen (dispatch,
//! produce/fetch, the SegmentWriter, the object store wrapper, SASL, the accept loop); gauges that
//! describe state (partition offsets, hot tail and cache memory, groups, members, consumer lag)
//! are computed at scrape time by [`BrokerCollector`]. Everything is registered in the registry
//! actix-web-prom serves on `/metrics`, under the configured prefix, in base units.

use crate::broker::Broker;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

pub struct Metrics {
    pub registry: Registry,
    pub requests: IntCounterVec,
    pub request_seconds: HistogramVec,
    pub errors: IntCounterVec,
    pub bytes_in: IntCounterVec,
    pub records_in: IntCounterVec,
    pub bytes_out: IntCounterVec,
    pub records_out: IntCounterVec,
    /// Fetch payload bytes by where they came from: the hot tail (as produced) or rebuilt
    /// from stored objects (cold).
    pub fetch_bytes: IntCounterVec,
    /// Fetch requests by fetch session use (KIP-227): `none` (sessionless), `new` (a full
    /// fetch that created a session), `incremental`.
    pub fetch_session_requests: IntCounterVec,
    /// TLS handshakes by result (`ok`, `failed`, `timeout`).
    pub tls_handshakes: IntCounterVec,
    pub flushes: IntCounter,
    pub compactions: IntCounter,
    pub flush_failures: IntCounter,
    pub flush_bytes: IntCounter,
    pub flush_records: IntCounter,
    pub flush_seconds: Histogram,
    pub store_ops: IntCounterVec,
    pub store_bytes: IntCounterVec,
    pub store_errors: IntCounterVec,
    pub store_seconds: HistogramVec,
    pub sasl_failures: IntCounter,
    /// Requests (or parts of them) refused by the ACLs, by API and resource type.
    pub authorization_denials: IntCounterVec,
    /// Transactions ended, by outcome (commit, abort, timeout: aborted by the coordinator).
    pub transactions: IntCounterVec,
    pub connections_accepted: IntCounter,
    pub connections_refused: IntCounter,
    pub connections_open: IntGauge,
}

fn counter_vec(ns: &str, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help).namespace(ns), labels).expect("valid metric")
}

fn histogram_vec(ns: &str, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    HistogramVec::new(
        HistogramOpts::new(name, help)
            .namespace(ns)
            .buckets(LATENCY_BUCKETS.to_vec()),
        labels,
    )
    .expect("valid metric")
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Create every metric under `prefix` and register it in a fresh registry.
    pub fn new(prefix: &str) -> Arc<Metrics> {
        let ns = prefix;
        let c = |name: &str, help: &str| {
            IntCounter::with_opts(Opts::new(name, help).namespace(ns)).expect("valid metric")
        };
        let m = Metrics {
            registry: Registry::new(),
            requests: counter_vec(
                ns,
                "kafka_requests_total",
                "Kafka requests handled",
                &["api", "version"],
            ),
            request_seconds: histogram_vec(
                ns,
                "kafka_request_duration_seconds",
                "Kafka request latency",
                &["api", "version"],
            ),
            errors: counter_vec(
                ns,
                "kafka_errors_total",
                "Kafka error codes returned (per partition where the API has partitions)",
                &["api", "code"],
            ),
            bytes_in: counter_vec(
                ns,
                "topic_bytes_in_total",
                "Record batch bytes produced",
                &["topic"],
            ),
            records_in: counter_vec(ns, "topic_records_in_total", "Records produced", &["topic"]),
            bytes_out: counter_vec(
                ns,
                "topic_bytes_out_total",
                "Record batch bytes fetched",
                &["topic"],
            ),
            fetch_bytes: counter_vec(
                ns,
                "fetch_bytes_total",
                "Record batch bytes fetched, by source (hot tail or rebuilt from storage)",
                &["source"],
            ),
            fetch_session_requests: counter_vec(
                ns,
                "fetch_session_requests_total",
                "Fetch requests by fetch session use (none, new, incremental)",
                &["session"],
            ),
            tls_handshakes: counter_vec(
                ns,
                "tls_handshakes_total",
                "TLS handshakes on SSL and SASL_SSL listeners, by result (ok, failed, timeout)",
                &["result"],
            ),
            records_out: counter_vec(
                ns,
                "topic_records_out_total",
                "Records fetched (whole batches)",
                &["topic"],
            ),
            flushes: c(
                "segment_flushes_total",
                "Flushes of the SegmentWriter (one write-ahead object each, all partitions)",
            ),
            compactions: c(
                "compactions_total",
                "Table segments the compactor wrote from write-ahead objects",
            ),
            flush_failures: c(
                "segment_flush_failures_total",
                "Write-ahead object writes that failed",
            ),
            flush_bytes: c(
                "segment_flush_bytes_total",
                "Parquet bytes written in write-ahead objects",
            ),
            flush_records: c(
                "segment_flush_records_total",
                "Records written in write-ahead objects",
            ),
            flush_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "segment_flush_duration_seconds",
                    "Encode + write time of one segment",
                )
                .namespace(ns)
                .buckets(LATENCY_BUCKETS.to_vec()),
            )
            .expect("valid metric"),
            store_ops: counter_vec(
                ns,
                "object_store_operations_total",
                "Object store operations",
                &["op"],
            ),
            store_bytes: counter_vec(
                ns,
                "object_store_bytes_total",
                "Bytes moved by object store operations",
                &["op"],
            ),
            store_errors: counter_vec(
                ns,
                "object_store_errors_total",
                "Object store operations that failed",
                &["op"],
            ),
            store_seconds: histogram_vec(
                ns,
                "object_store_operation_duration_seconds",
                "Object store operation latency",
                &["op"],
            ),
            sasl_failures: c(
                "sasl_authentication_failures_total",
                "Failed SASL authentications",
            ),
            authorization_denials: counter_vec(
                ns,
                "authorization_denials_total",
                "Actions refused by the ACLs, by API and resource type",
                &["api", "resource"],
            ),
            transactions: counter_vec(
                ns,
                "transactions_total",
                "Transactions completed by the transaction coordinator, by outcome (commit, abort; timeout counts the aborts of expired transactions)",
                &["outcome"],
            ),
            connections_accepted: c("connections_accepted_total", "Kafka connections accepted"),
            connections_refused: c(
                "connections_refused_total",
                "Kafka connections closed at once: max_connections or max_connections_per_ip reached",
            ),
            connections_open: IntGauge::with_opts(
                Opts::new("connections_open", "Kafka connections open").namespace(ns),
            )
            .expect("valid metric"),
        };
        let cs: Vec<Box<dyn Collector>> = vec![
            Box::new(m.requests.clone()),
            Box::new(m.request_seconds.clone()),
            Box::new(m.errors.clone()),
            Box::new(m.bytes_in.clone()),
            Box::new(m.records_in.clone()),
            Box::new(m.bytes_out.clone()),
            Box::new(m.records_out.clone()),
            Box::new(m.fetch_bytes.clone()),
            Box::new(m.flushes.clone()),
            Box::new(m.flush_failures.clone()),
            Box::new(m.compactions.clone()),
            Box::new(m.flush_bytes.clone()),
            Box::new(m.flush_records.clone()),
            Box::new(m.flush_seconds.clone()),
            Box::new(m.store_ops.clone()),
            Box::new(m.store_bytes.clone()),
            Box::new(m.store_errors.clone()),
            Box::new(m.store_seconds.clone()),
            Box::new(m.fetch_session_requests.clone()),
            Box::new(m.tls_handshakes.clone()),
            Box::new(m.sasl_failures.clone()),
            Box::new(m.authorization_denials.clone()),
            Box::new(m.transactions.clone()),
            Box::new(m.connections_accepted.clone()),
            Box::new(m.connections_refused.clone()),
            Box::new(m.connections_open.clone()),
        ];
        for op in ["put", "get", "list", "delete"] {
            m.store_ops.with_label_values(&[op]);
            m.store_bytes.with_label_values(&[op]);
            m.store_errors.with_label_values(&[op]);
        }
        for c in cs {
            if let Err(e) = m.registry.register(c) {
                tracing::error!("metric registration failed: {e}");
            }
        }
        Arc::new(m)
    }

    /// Count a returned Kafka error code (ignores NONE).
    pub fn error(&self, api: &str, code: i16) {
        if code != 0 {
            self.errors
                .with_label_values(&[api, &code.to_string()])
                .inc();
        }
    }

    /// Record one object-store operation.
    pub fn store_op(&self, op: &str, bytes: usize, seconds: f64, ok: bool) {
        self.store_ops.with_label_values(&[op]).inc();
        self.store_bytes
            .with_label_values(&[op])
            .inc_by(bytes as u64);
        self.store_seconds.with_label_values(&[op]).observe(seconds);
        if !ok {
            self.store_errors.with_label_values(&[op]).inc();
        }
    }
}

/// Gauges computed from the broker's state when `/metrics` is scraped.
pub struct BrokerCollector {
    broker: Weak<Broker>,
    prefix: String,
    descs: Vec<Desc>,
}

impl BrokerCollector {
    pub fn new(broker: &Arc<Broker>, prefix: &str) -> BrokerCollector {
        let names = [
            "partition_high_watermark",
            "partition_log_start_offset",
            "partition_lso_lag",
            "transactions_open",
            "hot_tail_bytes",
            "segment_cache_bytes",
            "wal_objects",
            "wal_bytes",
            "consumer_groups",
            "consumer_group_members",
            "consumer_group_lag",
            "cluster_live_brokers",
            "cluster_partitions_led",
            "fetch_sessions",
        ];
        let descs = names
            .iter()
            .filter_map(|n| {
                Desc::new(
                    format!("{prefix}_{n}"),
                    n.replace('_', " "),
                    vec![],
                    Default::default(),
                )
                .ok()
            })
            .collect();
        BrokerCollector {
            broker: Arc::downgrade(broker),
            prefix: prefix.to_string(),
            descs,
        }
    }

    fn gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        IntGaugeVec::new(Opts::new(name, help).namespace(self.prefix.clone()), labels)
            .expect("valid metric")
    }
}

impl Collector for BrokerCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Some(b) = self.broker.upgrade() else {
            return Vec::new();
        };
        let hw = self.gauge_vec(
            "partition_high_watermark",
            "High watermark (durable end) per partition",
            &["topic", "partition"],
        );
        let ls = self.gauge_vec(
            "partition_log_start_offset",
            "Log start offset per partition",
            &["topic", "partition"],
        );
        let lso_lag = self.gauge_vec(
            "partition_lso_lag",
            "High watermark minus last stable offset per partition (what open transactions hold back from read_committed consumers)",
            &["topic", "partition"],
        );
        let mut ends = std::collections::HashMap::new();
        for t in b.topics() {
            for (i, p) in t.local_partitions() {
                let part = i.to_string();
                let h = p.stats.high_watermark.load(Ordering::Relaxed);
                hw.with_label_values(&[&t.name, &part]).set(h);
                ls.with_label_values(&[&t.name, &part])
                    .set(p.stats.log_start.load(Ordering::Relaxed));
                let lso = p.stats.last_stable_offset.load(Ordering::Relaxed);
                lso_lag
                    .with_label_values(&[&t.name, &part])
                    .set((h - lso).max(0));
                ends.insert((t.name.clone(), i), h);
            }
        }
        let hot = self.gauge_vec(
            "hot_tail_bytes",
            "Bytes of recent batches kept in memory",
            &[],
        );
        hot.with_label_values::<&str>(&[])
            .set(b.hot_tail_bytes() as i64);
        let cache = self.gauge_vec(
            "segment_cache_bytes",
            "Bytes of decoded cold segments cached",
            &[],
        );
        cache
            .with_label_values::<&str>(&[])
            .set(b.cache.bytes() as i64);
        let (objects, bytes) = b.wal_stats();
        let wal_objects = self.gauge_vec(
            "wal_objects",
            "Write-ahead objects some partition still needs (not yet compacted)",
            &[],
        );
        wal_objects
            .with_label_values::<&str>(&[])
            .set(objects as i64);
        let wal_bytes = self.gauge_vec("wal_bytes", "Bytes of those write-ahead objects", &[]);
        wal_bytes.with_label_values::<&str>(&[]).set(bytes as i64);
        let groups = self.gauge_vec("consumer_groups", "Consumer groups by state", &["state"]);
        for s in [
            "Empty",
            "PreparingRebalance",
            "CompletingRebalance",
            "Stable",
            "Dead",
        ] {
            groups.with_label_values(&[s]).set(0);
        }
        let members = self.gauge_vec(
            "consumer_group_members",
            "Members per consumer group",
            &["group"],
        );
        let lag = self.gauge_vec(
            "consumer_group_lag",
            "High watermark minus committed offset, per group and partition",
            &["group", "topic", "partition"],
        );
        for (name, stats) in b.groups.stats() {
            groups.with_label_values(&[stats.phase]).inc();
            members
                .with_label_values(&[&name])
                .set(stats.members as i64);
            for ((topic, p), committed) in &stats.committed {
                if let Some(end) = ends.get(&(topic.clone(), *p)) {
                    lag.with_label_values(&[&name, topic, &p.to_string()])
                        .set((end - committed).max(0));
                }
            }
        }
        // Cluster mode: live brokers as this broker sees them, and the partitions it leads.
        let live = self.gauge_vec(
            "cluster_live_brokers",
            "Live brokers of the cluster (1 for a standalone broker)",
            &[],
        );
        live.with_label_values::<&str>(&[])
            .set(b.live_brokers().len() as i64);
        let led = self.gauge_vec(
            "cluster_partitions_led",
            "Partitions this broker leads",
            &[],
        );
        led.with_label_values::<&str>(&[]).set(
            b.topics()
                .iter()
                .map(|t| t.local_partitions().count() as i64)
                .sum(),
        );
        let sessions = self.gauge_vec(
            "fetch_sessions",
            "Incremental fetch sessions (KIP-227) cached",
            &[],
        );
        sessions.with_label_values::<&str>(&[]).set(
            b.fetch_sessions
                .lock()
                .map(|s| s.len() as i64)
                .unwrap_or_default(),
        );
        let open = self.gauge_vec(
            "transactions_open",
            "Transactional ids with a transaction open (ongoing, or decided with markers still being written) on this broker's coordinator",
            &[],
        );
        open.with_label_values::<&str>(&[]).set(
            b.txn_index
                .lock()
                .map(|i| i.open_transactions() as i64)
                .unwrap_or_default(),
        );
        let mut out = Vec::new();
        for v in [
            open,
            lso_lag,
            live,
            led,
            sessions,
            hw,
            ls,
            hot,
            cache,
            wal_objects,
            wal_bytes,
            groups,
            members,
            lag,
        ] {
            out.extend(v.collect());
        }
        out
    }
}
