//! Criterion micro-benchmarks of the broker's hot paths, each on realistic batches:
//!
//! - `validate`: produce-side batch validation (CRC-32C, header checks, record parse, with and
//!   without lz4 decompression);
//! - `assign`: offset assignment into a partition's hot tail;
//! - `parquet_encode` / `segment_read`: a 16 MiB flush encoded as a Parquet segment, and the
//!   same segment decoded back into servable batches;
//! - `fetch_encode`: a 100-partition Fetch response, the zero-copy encoder against
//!   `kafka-protocol`'s (which concatenates and copies the batches).
//!
//! Run with `cargo bench --bench hot_paths`; CI runs each once with `cargo test --bench hot_paths`.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use heraclitus::log::partition::PartitionLog;
use heraclitus::log::TopicPartition;
use heraclitus::protocol::compression::Codec;
use heraclitus::protocol::fetch_response;
use heraclitus::protocol::records::{
    encode_batch, set_base_offset, validate_produce, BatchMeta, OwnedRecord,
};
use heraclitus::storage::segment::{decode_segment, encode_segment};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::hint::black_box;

const MAX_UNCOMPRESSED: usize = 64 << 20;

/// A batch of `n` records of `size`-byte values (keyed like a typical producer), at `base`.
fn batch(n: usize, size: usize, codec: Codec, base: i64) -> Bytes {
    let records: Vec<OwnedRecord> = (0..n)
        .map(|i| OwnedRecord {
            offset: base + i as i64,
            timestamp: 1_700_000_000_000 + i as i64,
            key: Some(Bytes::from(format!("key-{}", i % 64))),
            // Compressible but not constant, like real payloads.
            value: Some(Bytes::from(
                (0..size)
                    .map(|j| b"abcdefghij"[(i + j / 7) % 10])
                    .collect::<Vec<u8>>(),
            )),
            headers: Vec::new(),
        })
        .collect();
    Bytes::from(encode_batch(&BatchMeta::plain(base), &records, codec, 3).expect("encode batch"))
}

fn validate(c: &mut Criterion) {
    let mut g = c.benchmark_group("validate");
    for (name, n, size, codec) in [
        ("1KiB x 1000 none", 1000, 1024, Codec::None),
        ("1KiB x 1000 lz4", 1000, 1024, Codec::Lz4),
        ("100B x 10000 none", 10_000, 100, Codec::None),
    ] {
        let b = batch(n, size, codec, 0);
        g.throughput(Throughput::Bytes((n * size) as u64));
        g.bench_function(name, |bench| {
            bench.iter(|| validate_produce(black_box(&b), MAX_UNCOMPRESSED).expect("valid"))
        });
    }
    g.finish();
}

fn assign(c: &mut Criterion) {
    let mut g = c.benchmark_group("assign");
    let v = validate_produce(&batch(1000, 1024, Codec::None, 0), MAX_UNCOMPRESSED).expect("valid");
    g.throughput(Throughput::Bytes(100 * v.bytes.len() as u64));
    g.bench_function("100 batches of 1 MiB", |bench| {
        bench.iter_batched_ref(
            || PartitionLog::new(TopicPartition::new("bench", 0), Vec::new()),
            |log| {
                for _ in 0..100 {
                    black_box(log.assign(&v));
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// 16 MiB of 1 KiB records in 16 consecutive batches, as one flush sees them.
fn flush_batches() -> Vec<Bytes> {
    (0..16)
        .map(|k| {
            let mut b = batch(1024, 1024, Codec::None, 0).to_vec();
            set_base_offset(&mut b, k * 1024);
            Bytes::from(b)
        })
        .collect()
}

fn parquet(c: &mut Criterion) {
    let batches = flush_batches();
    let bytes: u64 = batches.iter().map(|b| b.len() as u64).sum();
    let mut g = c.benchmark_group("parquet");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("encode 16 MiB (zstd 1)", |bench| {
        bench.iter(|| encode_segment(black_box(&batches), 0, 1).expect("encode"))
    });
    let seg = encode_segment(&batches, 0, 1).expect("encode").data;
    g.bench_function("segment read 16 MiB", |bench| {
        bench.iter(|| decode_segment(black_box(seg.clone())).expect("decode"))
    });
    g.finish();
}

fn fetch_encode(c: &mut Criterion) {
    // 10 topics x 10 partitions, each with ten 100 KiB batches (100 MiB in all).
    let chunk = batch(100, 1024, Codec::None, 0);
    let mut resp = FetchResponse::default();
    let mut records = Vec::new();
    for t in 0..10 {
        let mut tr = FetchableTopicResponse::default();
        tr.topic = TopicName(StrBytes::from_string(format!("topic-{t}")));
        for p in 0..10 {
            let mut pd = PartitionData::default();
            pd.partition_index = p;
            pd.high_watermark = 1_000_000;
            pd.last_stable_offset = 1_000_000;
            pd.preferred_read_replica = (-1).into();
            tr.partitions.push(pd);
            records.push(vec![chunk.clone(); 10]);
        }
        resp.responses.push(tr);
    }
    let total: u64 = records.iter().flatten().map(|b| b.len() as u64).sum();
    let mut g = c.benchmark_group("fetch_encode");
    g.throughput(Throughput::Bytes(total));
    g.bench_function("zero-copy chunks (v12)", |bench| {
        bench.iter(|| fetch_response::encode(12, 1, black_box(&resp), &records).expect("encode"))
    });
    g.sample_size(10);
    g.bench_function("kafka-protocol, concatenated (v12)", |bench| {
        bench.iter(|| {
            let mut r = resp.clone();
            let mut i = 0;
            for t in r.responses.iter_mut() {
                for p in t.partitions.iter_mut() {
                    p.records = Some(fetch_response::concat(&records[i]));
                    i += 1;
                }
            }
            heraclitus::handlers::encode_response(ApiKey::Fetch, 12, 1, &ResponseKind::Fetch(r))
                .expect("encode")
        })
    });
    g.finish();
}

criterion_group!(benches, validate, assign, parquet, fetch_encode);
criterion_main!(benches);
