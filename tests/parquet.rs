//! Segments are real Parquet tables: pyarrow reads them with the documented schema and values
//! (null key, tombstone vs empty value, header order and duplicates, millisecond timestamps).

mod common;

use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::time::Duration;

#[test]
#[ignore = "needs Python with pyarrow: run by .ci/run (cargo test -- --ignored)"]
fn pyarrow_reads_segments_with_the_documented_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_string();
    let mut s = settings(&path);
    // Compact write-ahead objects into the table layout at once.
    s.storage.compaction_delay_ms = Some(0);
    s.storage.merge_interval_ms = 100;
    let b = TestBroker::start(s);
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("acks", "all")
        .set("linger.ms", "20")
        .create()
        .unwrap();
    let ts = 1_767_225_600_123i64; // 2026-01-01T00:00:00.123Z
    let send = |rec: BaseRecord<'_, str, [u8]>| {
        p.send(rec).map_err(|(e, _)| e).unwrap();
    };
    send(
        BaseRecord::to("pq")
            .partition(0)
            .key("k0")
            .payload(&b"v0"[..])
            .timestamp(ts),
    );
    send(
        BaseRecord::to("pq")
            .partition(0)
            .payload(&b""[..])
            .timestamp(ts + 1),
    );
    send(
        BaseRecord::to("pq")
            .partition(0)
            .key("k2")
            .timestamp(ts + 2),
    );
    send(
        BaseRecord::to("pq")
            .partition(0)
            .key("k3")
            .payload(&b"v3"[..])
            .timestamp(ts + 3)
            .headers(
                OwnedHeaders::new()
                    .insert(Header {
                        key: "a",
                        value: Some("1"),
                    })
                    .insert(Header {
                        key: "a",
                        value: None::<&str>,
                    })
                    .insert(Header {
                        key: "b",
                        value: Some(""),
                    }),
            ),
    );
    p.flush(Duration::from_secs(30)).unwrap();
    // The table appears once the compactor rewrote the write-ahead objects.
    let seg_dir = common::partition_dir(dir.path(), "pq", 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(&seg_dir).map_or(0, |d| d.count()) == 0 {
        assert!(std::time::Instant::now() < deadline, "never compacted");
        std::thread::sleep(Duration::from_millis(100));
    }
    b.stop();
    let script = r#"
import sys, pyarrow.dataset as ds, pyarrow as pa
d = ds.dataset(sys.argv[1] + "/data/topic=pq", format="parquet", partitioning="hive")
t = d.to_table().sort_by("offset")
s = t.schema
assert s.field("offset").type == pa.int64(), s
assert s.field("timestamp").type == pa.timestamp("ms"), s
assert s.field("timestamp_type").type == pa.int8(), s
assert s.field("key").type == pa.binary() and s.field("value").type == pa.binary(), s
assert s.field("headers").type == pa.list_(pa.struct([pa.field("key", pa.string(), nullable=False), pa.field("value", pa.binary())])) or str(s.field("headers").type).startswith("list<item: struct<key: string"), s
for col in ("producer_id", "producer_epoch", "sequence", "batch_base_offset", "compression"):
    assert col in s.names, col
rows = t.to_pylist()
assert [r["offset"] for r in rows] == [0, 1, 2, 3], rows
assert rows[0]["key"] == b"k0" and rows[0]["value"] == b"v0"
assert rows[1]["key"] is None and rows[1]["value"] == b"", "empty value is not null"
assert rows[2]["value"] is None, "tombstone is null"
assert [(h["key"], h["value"]) for h in rows[3]["headers"]] == [("a", b"1"), ("a", None), ("b", b"")]
ts = [int(r["timestamp"].timestamp() * 1000 + 0.5) for r in rows]
assert ts == [1767225600123, 1767225600124, 1767225600125, 1767225600126], ts
assert all(r["timestamp_type"] == 0 for r in rows)
print("pyarrow ok", len(rows))
"#;
    let out = std::process::Command::new(python())
        .args(["-c", script, &path])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "pyarrow check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
