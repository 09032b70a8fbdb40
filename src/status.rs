//! The status page: what an operator wants to see without a separate tool — the broker, its
//! topics and partitions (offsets, bytes), consumer groups (state, members, lag), object-store
//! request counters and memory bounds in use.
//!
//! [`Status::collect`] reads the same shared numbers the metrics collector reads (no actor
//! messages, no store requests); [`render_html`] turns it into one self-contained HTML page
//! (inline CSS, no scripts, no external assets, refreshing itself), and `http.rs` serves it at
//! `/` and as JSON under `/api/v1/…`.

use crate::broker::Broker;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;

/// Everything the page shows.
#[derive(Debug, Serialize)]
pub struct Status {
    pub broker: BrokerInfo,
    pub topics: Vec<TopicInfo>,
    pub groups: Vec<GroupInfo>,
    pub storage: StorageInfo,
}

#[derive(Debug, Serialize)]
pub struct BrokerInfo {
    pub node_id: i32,
    pub host: String,
    pub port: u16,
    pub cluster_id: String,
    pub version: &'static str,
    pub ready: bool,
    pub storage: String,
    pub partitions: usize,
    pub hot_tail_bytes: usize,
    pub segment_cache_bytes: usize,
    pub unflushed_bytes: usize,
}

#[derive(Debug, Serialize)]
pub struct TopicInfo {
    pub name: String,
    pub id: String,
    pub partitions: Vec<PartitionInfo>,
    pub configs: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
pub struct PartitionInfo {
    pub partition: i32,
    pub log_start_offset: i64,
    pub high_watermark: i64,
    pub bytes: i64,
}

#[derive(Debug, Serialize)]
pub struct GroupInfo {
    pub name: String,
    pub state: &'static str,
    pub members: usize,
    pub lag: i64,
    pub partitions: Vec<GroupPartition>,
}

#[derive(Debug, Serialize)]
pub struct GroupPartition {
    pub topic: String,
    pub partition: i32,
    pub committed: i64,
    /// High watermark minus committed offset (`None` when the partition no longer exists).
    pub lag: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct StorageInfo {
    pub description: String,
    /// Object-store requests since start, by kind (put, get, list, delete).
    pub requests: Vec<StoreOps>,
    /// Write-ahead objects some partition still needs (not yet compacted), and their bytes.
    pub wal_objects: usize,
    pub wal_bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct StoreOps {
    pub op: &'static str,
    pub requests: u64,
    pub bytes: u64,
    pub errors: u64,
}

impl Status {
    pub fn collect(b: &Broker) -> Status {
        let mut ends: HashMap<(String, i32), i64> = HashMap::new();
        let topics: Vec<TopicInfo> = b
            .topics()
            .iter()
            .map(|t| TopicInfo {
                name: t.name.clone(),
                id: crate::storage::hex_id(&t.id),
                configs: t.configs.clone(),
                partitions: t
                    .local_partitions()
                    .map(|(i, p)| {
                        let hw = p.stats.high_watermark.load(Ordering::Relaxed);
                        ends.insert((t.name.clone(), i), hw);
                        PartitionInfo {
                            partition: i,
                            log_start_offset: p.stats.log_start.load(Ordering::Relaxed),
                            high_watermark: hw,
                            bytes: p.stats.size_bytes.load(Ordering::Relaxed),
                        }
                    })
                    .collect(),
            })
            .collect();
        let mut groups: Vec<GroupInfo> = b
            .groups
            .stats()
            .into_iter()
            .map(|(name, s)| {
                let mut partitions: Vec<GroupPartition> = s
                    .committed
                    .iter()
                    .map(|((topic, p), committed)| GroupPartition {
                        topic: topic.clone(),
                        partition: *p,
                        committed: *committed,
                        lag: ends
                            .get(&(topic.clone(), *p))
                            .map(|end| (end - committed).max(0)),
                    })
                    .collect();
                partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
                GroupInfo {
                    name,
                    state: if s.phase.is_empty() { "Empty" } else { s.phase },
                    members: s.members,
                    lag: partitions.iter().filter_map(|p| p.lag).sum(),
                    partitions,
                }
            })
            .collect();
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        let m = &b.metrics;
        let requests = ["put", "get", "list", "delete"]
            .into_iter()
            .map(|op| StoreOps {
                op,
                requests: m.store_ops.with_label_values(&[op]).get(),
                bytes: m.store_bytes.with_label_values(&[op]).get(),
                errors: m.store_errors.with_label_values(&[op]).get(),
            })
            .collect();
        Status {
            broker: BrokerInfo {
                node_id: b.node_id(),
                host: b.advertised_host().to_string(),
                port: b.advertised_port(),
                cluster_id: b.cluster_id.clone(),
                version: env!("CARGO_PKG_VERSION"),
                ready: b.ready.load(Ordering::SeqCst) && !b.shutting_down.load(Ordering::SeqCst),
                storage: b.storage.describe().to_string(),
                partitions: b.partition_count(),
                hot_tail_bytes: b.hot_tail_bytes(),
                segment_cache_bytes: b.cache.bytes(),
                unflushed_bytes: b.unflushed_bytes(),
            },
            topics,
            groups,
            storage: {
                let (wal_objects, wal_bytes) = b.wal_stats();
                StorageInfo {
                    description: b.storage.describe().to_string(),
                    requests,
                    wal_objects,
                    wal_bytes,
                }
            },
        }
    }
}

/// Escape text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn human_bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.5em}\
table{border-collapse:collapse;margin:.4em 0}td,th{border:1px solid #ccc;padding:.25em .6em;\
text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}.ok{color:#070}.bad{color:#b00}\
small{color:#666}";

/// The status page: one HTML document, refreshing itself every 5 s.
pub fn render_html(s: &Status) -> String {
    let mut h = String::with_capacity(8192);
    let b = &s.broker;
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"5\"><title>Heraclitus {}:{}</title>\
         <link rel=\"icon\" href=\"data:,\"><style>{STYLE}</style></head><body>",
        esc(&b.host),
        b.port
    );
    let _ = write!(
        h,
        "<h1>Heraclitus</h1><p><small>cluster {} · version {} · refreshes every 5 s · \
         JSON: <a href=\"/api/v1/status\">/api/v1/status</a></small></p>",
        esc(&b.cluster_id),
        b.version
    );
    h.push_str("<h2>Brokers</h2><table><tr><th>node</th><th class=\"l\">address</th><th class=\"l\">state</th><th class=\"l\">storage</th><th>partitions</th><th>unflushed</th><th>hot tail</th><th>cache</th></tr>");
    let _ = write!(
        h,
        "<tr><td>{}</td><td class=\"l\">{}:{}</td><td class=\"l {}\">{}</td><td class=\"l\">{}</td>\
         <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        b.node_id,
        esc(&b.host),
        b.port,
        if b.ready { "ok" } else { "bad" },
        if b.ready { "ready" } else { "not ready" },
        esc(&b.storage),
        b.partitions,
        human_bytes(b.unflushed_bytes as i64),
        human_bytes(b.hot_tail_bytes as i64),
        human_bytes(b.segment_cache_bytes as i64),
    );
    let _ = write!(h, "<h2>Topics ({})</h2>", s.topics.len());
    if s.topics.is_empty() {
        h.push_str("<p>No topics yet.</p>");
    } else {
        h.push_str("<table><tr><th class=\"l\">topic</th><th>partition</th><th>log start</th><th>high watermark</th><th>records</th><th>stored</th></tr>");
        for t in &s.topics {
            for p in &t.partitions {
                let _ = write!(
                    h,
                    "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&t.name),
                    p.partition,
                    p.log_start_offset,
                    p.high_watermark,
                    p.high_watermark - p.log_start_offset,
                    human_bytes(p.bytes),
                );
            }
        }
        h.push_str("</table>");
    }
    let _ = write!(h, "<h2>Consumer groups ({})</h2>", s.groups.len());
    if s.groups.is_empty() {
        h.push_str("<p>No consumer groups yet.</p>");
    } else {
        h.push_str("<table><tr><th class=\"l\">group</th><th class=\"l\">state</th><th>members</th><th>total lag</th><th class=\"l\">topic</th><th>partition</th><th>committed</th><th>lag</th></tr>");
        for g in &s.groups {
            let head = format!(
                "<td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td>",
                esc(&g.name),
                g.state,
                g.members,
                g.lag
            );
            if g.partitions.is_empty() {
                let _ = write!(
                    h,
                    "<tr>{head}<td class=\"l\">–</td><td></td><td></td><td></td></tr>"
                );
            }
            for p in &g.partitions {
                let _ = write!(
                    h,
                    "<tr>{head}<td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&p.topic),
                    p.partition,
                    p.committed,
                    p.lag.map_or("–".to_string(), |l| l.to_string()),
                );
            }
        }
        h.push_str("</table>");
    }
    let _ = write!(
        h,
        "<h2>Object store</h2><p class=\"l\">{} &middot; {} write-ahead object(s) awaiting compaction ({})</p><table><tr><th class=\"l\">request</th><th>count</th><th>bytes</th><th>errors</th></tr>",
        esc(&s.storage.description),
        s.storage.wal_objects,
        human_bytes(s.storage.wal_bytes as i64)
    );
    for o in &s.storage.requests {
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            o.op,
            o.requests,
            human_bytes(o.bytes as i64),
            o.errors
        );
    }
    h.push_str("</table></body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_and_sizes_are_human() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
    }

    #[test]
    fn page_shows_topics_groups_and_lag() {
        let s = Status {
            broker: BrokerInfo {
                node_id: 1,
                host: "127.0.0.1".into(),
                port: 9092,
                cluster_id: "c".into(),
                version: "0",
                ready: true,
                storage: "memory://".into(),
                partitions: 1,
                hot_tail_bytes: 0,
                segment_cache_bytes: 0,
                unflushed_bytes: 0,
            },
            topics: vec![TopicInfo {
                name: "orders<script>".into(),
                id: "00".into(),
                partitions: vec![PartitionInfo {
                    partition: 0,
                    log_start_offset: 0,
                    high_watermark: 10,
                    bytes: 2048,
                }],
                configs: Default::default(),
            }],
            groups: vec![GroupInfo {
                name: "billing".into(),
                state: "Stable",
                members: 2,
                lag: 4,
                partitions: vec![GroupPartition {
                    topic: "orders".into(),
                    partition: 0,
                    committed: 6,
                    lag: Some(4),
                }],
            }],
            storage: StorageInfo {
                description: "memory://".into(),
                requests: vec![],
                wal_objects: 2,
                wal_bytes: 1000,
            },
        };
        let h = render_html(&s);
        assert!(h.contains("orders&lt;script&gt;"));
        assert!(!h.contains("<script"));
        assert!(h.contains("billing") && h.contains("<td>4</td>"));
    }
}
