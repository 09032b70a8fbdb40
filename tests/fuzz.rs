//! A mutation fuzzer for the broker's untrusted-input decoders, on the stable toolchain, run
//! as an ordinary integration test.
//!
//! # Targets
//!
//! * `requests`: a request frame as the connection reads it, decoded exactly as
//!   `heraclitus::handlers::dispatch` does: the frame codec (`FrameCodec`, size cap and
//!   8-byte minimum), the served-API/version checks (`SUPPORTED`, Produce v3+), then
//!   `kafka_protocol::protocol::decode_request_header_from_buffer` and
//!   `kafka_protocol::messages::RequestKind::decode`.
//! * `records`: one produced partition's `records` field through
//!   `heraclitus::protocol::records::validate_produce` and `parse_records` (and, for batches that
//!   validate, `recompress` and re-validation).
//! * `decompress`: `heraclitus::protocol::compression::decompress` with a small output cap; the
//!   output must never exceed the cap.
//!
//! Every input runs inside `std::panic::catch_unwind`: a panic is a failure, reported with the
//! input in hex. The process's resident memory (VmRSS) must stay under [`RSS_BOUND_MB`]
//! throughout (kafka-protocol reserves `Vec::with_capacity(count)` from wire counts; the broker's
//! allocator must turn that into reservations, not commitments).
//!
//! # Seeds
//!
//! `requests`: for every API and version in `SUPPORTED`, a representative request encoded with
//! kafka-protocol's client-side encoders (arrays of one or two elements, strings, nullable
//! fields set, a real record batch for Produce, tagged fields in flexible versions) and the same
//! request with every field at its default, each behind a request header. `records`: batches of
//! every codec built by `encode_batch` and `tests/common`'s `batch`. `decompress`: payloads
//! compressed with every codec (xerial and raw snappy included).
//!
//! # Mutations
//!
//! One to four of: bit flips; byte overwrites with 0x00/0xFF/0x7F/0x80; insertion (or
//! overwrite) of a hostile varint `FF FF FF FF 0F` or i32 `7F FF FF FF`; truncation; deleting,
//! duplicating or inserting slices; splicing two seeds. Request mutants mostly keep their API
//! key and version; record mutants mostly get their length and CRC-32C fixed up (or have their
//! decompressed records mutated and recompressed) so they reach the record parser.
//!
//! # Running
//!
//! `cargo test --test fuzz` runs each target for `FUZZ_SECONDS` (default 3) seconds from seed
//! `FUZZ_SEED` (default fixed, so runs are reproducible), after replaying [`REGRESSIONS`]. For a
//! real campaign (CI uses 60 s):
//!
//! `FUZZ_SECONDS=60 cargo test --release --test fuzz -- --nocapture`
//!
//! Iterations per second are printed per target. A crash input found by a run goes into
//! [`REGRESSIONS`] (it is replayed through every target) before the bug is fixed.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use heraclitus::handlers::{spec, MIN_DECODABLE_PRODUCE, SUPPORTED};
use heraclitus::protocol::compression::{self, Codec};
use heraclitus::protocol::frame::FrameCodec;
use heraclitus::protocol::records::{self, BatchMeta, OwnedRecord, BATCH_HEADER_LEN};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{decode_request_header_from_buffer, Encodable, StrBytes};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};
use tokio_util::codec::Decoder;

/// Inputs that once crashed a target (or pin a boundary), replayed through every target before
/// fuzzing. Add any crash input a run reports here.
const REGRESSIONS: &[&[u8]] = &[
    // Produce v9 claiming 2^32 - 1 topics: aborted the process before the reserving allocator.
    &[
        0, 0, 0, 9, 0, 0, 0, 1, 0, 1, b'h', 0, 0, 0xff, 0xff, 0, 0, 0x03, 0xe8, 0xff, 0xff, 0xff,
        0xff, 0x0f,
    ],
    // Metadata v1 claiming 2^31 - 1 topics.
    &[0, 3, 0, 1, 0, 0, 0, 1, 0, 1, b'h', 0x7f, 0xff, 0xff, 0xff],
    // Frames shorter than a request header.
    &[],
    &[0],
    &[0, 3, 0, 1, 0, 0, 0],
];

/// Resident memory bound for the whole test process, checked throughout.
const RSS_BOUND_MB: u64 = 1024;

/// Output cap for decompression and record parsing (the broker's per-batch cap is of this
/// order; small keeps the fuzzer fast).
const CAP: usize = 256 * 1024;

/// The frame-size cap of the requests target (the broker's default is larger; a mutant never
/// comes near either).
const MAX_FRAME: usize = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Harness: PRNG, budget, memory, panics.
// ---------------------------------------------------------------------------------------------

/// xorshift64* (deterministic, no dependency).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // splitmix64 of the seed, never zero.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// True with probability `num/den`.
    fn chance(&mut self, num: usize, den: usize) -> bool {
        self.below(den) < num
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

fn fuzz_seconds() -> f64 {
    std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0)
}

fn fuzz_seed() -> u64 {
    std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| {
            s.strip_prefix("0x")
                .map(|h| u64::from_str_radix(h, 16).ok())
                .unwrap_or_else(|| s.parse().ok())
        })
        .unwrap_or(0x00c0_ffee_5eed)
}

fn vm_rss_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

thread_local! {
    /// Set while a target runs: its panics are expected to be caught and reported by us,
    /// so the panic hook stays quiet (no backtrace per finding).
    static IN_TARGET: Cell<bool> = const { Cell::new(false) };
}

static LAST_PANIC: Mutex<String> = Mutex::new(String::new());

fn install_quiet_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_TARGET.with(|t| t.get()) {
                *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = info.to_string();
            } else {
                previous(info);
            }
        }));
    });
}

/// Run `f` on `input`; a panic becomes `Err(panic message)`.
fn guarded<F: FnOnce() -> Result<bool, String>>(f: F) -> Result<bool, String> {
    IN_TARGET.with(|t| t.set(true));
    let r = catch_unwind(AssertUnwindSafe(f));
    IN_TARGET.with(|t| t.set(false));
    match r {
        Ok(r) => r,
        Err(_) => Err(format!(
            "panic: {}",
            LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner())
        )),
    }
}

/// Replay the regressions and the seeds, then fuzz `target` for the configured time.
/// `target` returns `Err` for a finding (a panic or a broken property), else whether the input
/// was accepted (got through every check: a measure of how deep the mutants reach).
fn campaign(
    name: &str,
    seeds: &[Vec<u8>],
    mut mutate: impl FnMut(&mut Rng, &[Vec<u8>]) -> Vec<u8>,
    target: impl Fn(&[u8]) -> Result<bool, String>,
) {
    install_quiet_hook();
    assert!(!seeds.is_empty(), "{name}: no seeds");
    fn fail(name: &str, what: &str, input: &[u8], e: String) -> ! {
        panic!(
            "{name}: {what} failed: {e}\ninput ({} bytes): {}",
            input.len(),
            hex(input)
        )
    }
    for r in REGRESSIONS {
        if let Err(e) = guarded(|| target(r)) {
            fail(name, "regression", r, e);
        }
    }
    for s in seeds {
        if let Err(e) = guarded(|| target(s)) {
            fail(name, "seed", s, e);
        }
    }
    let seed = fuzz_seed() ^ name.bytes().fold(0u64, |h, b| h.rotate_left(5) ^ b as u64);
    let mut rng = Rng::new(seed);
    let budget = Duration::from_secs_f64(fuzz_seconds());
    let started = Instant::now();
    let mut iterations: u64 = 0;
    let mut accepted: u64 = 0;
    let mut peak = vm_rss_mb();
    while started.elapsed() < budget {
        for _ in 0..64 {
            let input = mutate(&mut rng, seeds);
            match guarded(|| target(&input)) {
                Ok(ok) => accepted += ok as u64,
                Err(e) => fail(
                    name,
                    &format!("iteration {iterations} (seed {seed:#x})"),
                    &input,
                    e,
                ),
            }
            iterations += 1;
        }
        if iterations.is_multiple_of(1024) {
            let rss = vm_rss_mb();
            peak = peak.max(rss);
            assert!(
                rss < RSS_BOUND_MB,
                "{name}: VmRSS {rss} MB >= {RSS_BOUND_MB} MB after {iterations} iterations"
            );
        }
    }
    let rss = vm_rss_mb();
    peak = peak.max(rss);
    assert!(rss < RSS_BOUND_MB, "{name}: VmRSS {rss} MB");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "fuzz {name}: {iterations} iterations in {secs:.1} s ({:.0}/s), {:.1}% accepted, {} seeds, \
         seed {seed:#x}, peak VmRSS {peak} MB",
        iterations as f64 / secs,
        100.0 * accepted as f64 / iterations.max(1) as f64,
        seeds.len()
    );
}

// ---------------------------------------------------------------------------------------------
// Mutations.
// ---------------------------------------------------------------------------------------------

const VARINT_BOMB: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0x0f];
const I32_BOMB: &[u8] = &[0x7f, 0xff, 0xff, 0xff];

/// Apply one to four random mutations to a copy of `base` (`pool` supplies splice partners).
fn mutate_bytes(rng: &mut Rng, base: &[u8], pool: &[Vec<u8>]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = |rng: &mut Rng, v: &[u8]| rng.below(v.len() + 1);
        match rng.below(12) {
            // Bit flip.
            0 | 1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            // Interesting byte.
            2 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = *rng.pick(&[0x00, 0xff, 0x7f, 0x80, 0x01]);
            }
            // Hostile count or length, inserted.
            3 => {
                let i = at(rng, &v);
                let bomb = if rng.chance(1, 2) {
                    VARINT_BOMB
                } else {
                    I32_BOMB
                };
                v.splice(i..i, bomb.iter().copied());
            }
            // Hostile count or length, overwriting what is there (a count field in place).
            4 if !v.is_empty() => {
                let bomb = if rng.chance(1, 2) {
                    VARINT_BOMB
                } else {
                    I32_BOMB
                };
                let i = rng.below(v.len());
                for (k, b) in bomb.iter().enumerate() {
                    if let Some(x) = v.get_mut(i + k) {
                        *x = *b;
                    }
                }
            }
            // Interesting 16/32-bit value.
            5 if v.len() >= 4 => {
                let i = rng.below(v.len() - 3);
                let val: [u8; 4] = *rng.pick(&[
                    [0xff, 0xff, 0xff, 0xff],
                    [0x80, 0x00, 0x00, 0x00],
                    [0x00, 0x00, 0x00, 0x00],
                    [0x7f, 0xff, 0x00, 0x00],
                    [0x00, 0x00, 0x00, 0x01],
                ]);
                let n = if rng.chance(1, 2) { 2 } else { 4 };
                v[i..i + n].copy_from_slice(&val[..n]);
            }
            // Truncate.
            6 => {
                let n = rng.below(v.len() + 1);
                v.truncate(n);
            }
            // Delete a slice.
            7 if !v.is_empty() => {
                let i = rng.below(v.len());
                let n = 1 + rng.below((v.len() - i).min(16));
                v.drain(i..i + n);
            }
            // Duplicate a slice somewhere.
            8 if !v.is_empty() => {
                let i = rng.below(v.len());
                let n = 1 + rng.below((v.len() - i).min(32));
                let slice = v[i..i + n].to_vec();
                let j = at(rng, &v);
                v.splice(j..j, slice);
            }
            // Random bytes inserted.
            9 => {
                let i = at(rng, &v);
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                v.splice(i..i, bytes);
            }
            // Splice: our prefix, another seed's suffix.
            10 | 11 => {
                let other = rng.pick(pool);
                let i = at(rng, &v);
                let j = rng.below(other.len() + 1);
                v.truncate(i);
                v.extend_from_slice(&other[j..]);
            }
            _ => {}
        }
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Target: request decoding, as dispatch does it.
// ---------------------------------------------------------------------------------------------

/// Decode one request body (what follows the 4-byte size) the way the broker does: the frame
/// codec, then `dispatch`'s checks and decoders. `Ok(true)` if the request decodes, `Ok(false)`
/// if the broker would refuse it; only a panic is a finding.
fn decode_like_dispatch(body: &[u8]) -> Result<bool, String> {
    let mut src = BytesMut::with_capacity(4 + body.len());
    src.put_i32(body.len() as i32);
    src.extend_from_slice(body);
    let frame = match FrameCodec::new(MAX_FRAME).decode(&mut src) {
        Ok(Some(f)) => f,
        Ok(None) => return Err("the frame codec wants more bytes of a complete frame".into()),
        Err(_) => return Ok(false), // refused: connection closed
    };
    if frame.len() < heraclitus::protocol::frame::MIN_REQUEST_BYTES {
        return Ok(false);
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let Ok(api_key) = ApiKey::try_from(key) else {
        return Ok(false);
    };
    let Some(spec) = spec(api_key) else {
        return Ok(false);
    };
    if version < spec.min || version > spec.max {
        return Ok(false);
    }
    if api_key == ApiKey::Produce && version < MIN_DECODABLE_PRODUCE {
        return Ok(false);
    }
    let mut buf = frame.freeze();
    if decode_request_header_from_buffer(&mut buf).is_err() {
        return Ok(false);
    }
    Ok(RequestKind::decode(api_key, &mut buf, version).is_ok())
}

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}
fn topic(x: &str) -> TopicName {
    TopicName(s(x))
}
fn group(x: &str) -> GroupId {
    GroupId(s(x))
}
fn tags() -> BTreeMap<i32, Bytes> {
    BTreeMap::from([(7, Bytes::from_static(b"tagged"))])
}
fn uuid(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(n)
}

/// A representative request of `key` at `version`: arrays of one or two elements, strings and
/// nullable fields set where the version has them, tagged fields in flexible versions.
fn representative(key: ApiKey, v: i16) -> RequestKind {
    use kafka_protocol::messages::{
        alter_configs_request as ac, create_partitions_request as cp, create_topics_request as ct,
        delete_records_request as dr, delete_topics_request as dt, describe_configs_request as dc,
        describe_log_dirs_request as dl, describe_topic_partitions_request as dtp,
        fetch_request as fe, incremental_alter_configs_request as ia, join_group_request as jg,
        leave_group_request as lg, list_offsets_request as lo, metadata_request as md,
        offset_commit_request as oc, offset_delete_request as od, offset_fetch_request as of,
        offset_for_leader_epoch_request as oe, produce_request as pr, sync_group_request as sg,
    };
    use kafka_protocol::messages::{
        alter_partition_reassignments_request as apr, create_acls_request as ca,
        delete_acls_request as da, elect_leaders_request as el,
        list_partition_reassignments_request as lpr,
    };
    use kafka_protocol::messages::{
        alter_user_scram_credentials_request as aus, describe_user_scram_credentials_request as dus,
    };
    let flex = key.request_header_version(v) >= 2;
    let t = if flex { tags() } else { BTreeMap::new() };
    // Produce v13 names topics by id.
    let named = |d: pr::TopicProduceData, name: &str, id: u128| {
        if v >= 13 {
            d.with_topic_id(uuid(id))
        } else {
            d.with_name(topic(name))
        }
    };
    match key {
        ApiKey::Produce => {
            let part = |i: i32, values: &[&[u8]]| {
                pr::PartitionProduceData::default()
                    .with_index(i)
                    .with_records(Some(common::batch(values)))
            };
            RequestKind::Produce(
                ProduceRequest::default()
                    .with_transactional_id(Some(TransactionalId(s("txn"))))
                    .with_acks(-1)
                    .with_timeout_ms(5000)
                    .with_topic_data(vec![
                        named(pr::TopicProduceData::default(), "t", 1)
                            .with_partition_data(vec![part(0, &[b"a", b"bb"]), part(1, &[b"ccc"])]),
                        named(pr::TopicProduceData::default(), "u", 2)
                            .with_partition_data(vec![part(0, &[b"d"])]),
                    ])
                    .with_unknown_tagged_fields(t),
            )
        }
        ApiKey::Fetch => {
            let mut p = fe::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(5)
                .with_partition_max_bytes(1 << 20);
            if v >= 9 {
                p.current_leader_epoch = 3;
            }
            if v >= 12 {
                p.last_fetched_epoch = 2;
            }
            if v >= 5 {
                p.log_start_offset = 0;
            }
            let mut ft =
                fe::FetchTopic::default().with_partitions(vec![p.clone(), p.with_partition(1)]);
            let mut forgotten = fe::ForgottenTopic::default().with_partitions(vec![1, 2]);
            if v <= 12 {
                ft.topic = topic("t");
                forgotten.topic = topic("u");
            } else {
                ft.topic_id = uuid(1);
                forgotten.topic_id = uuid(2);
            }
            let mut r = FetchRequest::default()
                .with_max_wait_ms(500)
                .with_min_bytes(1)
                .with_max_bytes(1 << 20)
                .with_isolation_level(1)
                .with_topics(vec![ft])
                .with_unknown_tagged_fields(t);
            if v >= 7 {
                r.session_id = 1;
                r.session_epoch = 0;
                r.forgotten_topics_data = vec![forgotten];
            }
            if v >= 11 {
                r.rack_id = s("rack");
            }
            if v >= 12 {
                r.cluster_id = Some(s("cluster"));
            }
            RequestKind::Fetch(r)
        }
        ApiKey::ListOffsets => {
            let mut p = lo::ListOffsetsPartition::default().with_timestamp(-1);
            if v >= 4 {
                p.current_leader_epoch = 3;
            }
            let mut r = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![lo::ListOffsetsTopic::default()
                    .with_name(topic("t"))
                    .with_partitions(vec![
                        p.clone(),
                        p.with_partition_index(1).with_timestamp(-2),
                    ])])
                .with_unknown_tagged_fields(t);
            if v >= 2 {
                r.isolation_level = 1;
            }
            if v >= 10 {
                r.timeout_ms = 1000;
            }
            RequestKind::ListOffsets(r)
        }
        ApiKey::Metadata => {
            let mut r = MetadataRequest::default()
                .with_topics(Some(vec![
                    md::MetadataRequestTopic::default().with_name(Some(topic("a"))),
                    md::MetadataRequestTopic::default().with_name(Some(topic("b"))),
                ]))
                .with_unknown_tagged_fields(t);
            if v >= 4 {
                r.allow_auto_topic_creation = false;
            }
            if (8..=10).contains(&v) {
                r.include_cluster_authorized_operations = true;
            }
            if v >= 8 {
                r.include_topic_authorized_operations = true;
            }
            RequestKind::Metadata(r)
        }
        ApiKey::OffsetCommit => {
            let mut p = oc::OffsetCommitRequestPartition::default()
                .with_committed_offset(10)
                .with_committed_metadata(Some(s("md")));
            if v >= 6 {
                p.committed_leader_epoch = 2;
            }
            let mut r = OffsetCommitRequest::default()
                .with_group_id(group("g"))
                .with_generation_id_or_member_epoch(3)
                .with_member_id(s("m"))
                .with_topics(vec![oc::OffsetCommitRequestTopic::default()
                    .with_name(topic("t"))
                    .with_partitions(vec![
                        p.clone(),
                        p.with_partition_index(1).with_committed_metadata(None),
                    ])])
                .with_unknown_tagged_fields(t);
            if v >= 7 {
                r.group_instance_id = Some(s("i"));
            }
            if v <= 4 {
                r.retention_time_ms = 60_000;
            }
            RequestKind::OffsetCommit(r)
        }
        ApiKey::OffsetFetch => {
            let mut r = OffsetFetchRequest::default().with_unknown_tagged_fields(t);
            if v <= 7 {
                r.group_id = group("g");
                r.topics = Some(vec![of::OffsetFetchRequestTopic::default()
                    .with_name(topic("t"))
                    .with_partition_indexes(vec![0, 1])]);
            } else {
                let mut g = of::OffsetFetchRequestGroup::default()
                    .with_group_id(group("g"))
                    .with_topics(Some(vec![of::OffsetFetchRequestTopics::default()
                        .with_name(topic("t"))
                        .with_partition_indexes(vec![0, 1])]));
                if v >= 9 {
                    g.member_id = Some(s("m"));
                    g.member_epoch = 4;
                }
                r.groups = vec![
                    g,
                    of::OffsetFetchRequestGroup::default()
                        .with_group_id(group("h"))
                        .with_topics(None),
                ];
            }
            if v >= 7 {
                r.require_stable = true;
            }
            RequestKind::OffsetFetch(r)
        }
        ApiKey::FindCoordinator => {
            let mut r = FindCoordinatorRequest::default().with_unknown_tagged_fields(t);
            if v <= 3 {
                r.key = s("g");
            } else {
                r.coordinator_keys = vec![s("g"), s("h")];
            }
            if v >= 1 {
                r.key_type = 1;
            }
            RequestKind::FindCoordinator(r)
        }
        ApiKey::JoinGroup => {
            let mut r = JoinGroupRequest::default()
                .with_group_id(group("g"))
                .with_session_timeout_ms(10_000)
                .with_member_id(s(""))
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![
                    jg::JoinGroupRequestProtocol::default()
                        .with_name(s("range"))
                        .with_metadata(Bytes::from_static(b"\0\x01meta")),
                    jg::JoinGroupRequestProtocol::default().with_name(s("roundrobin")),
                ])
                .with_unknown_tagged_fields(t);
            if v >= 1 {
                r.rebalance_timeout_ms = 30_000;
            }
            if v >= 5 {
                r.group_instance_id = Some(s("i"));
            }
            if v >= 8 {
                r.reason = Some(s("why"));
            }
            RequestKind::JoinGroup(r)
        }
        ApiKey::Heartbeat => {
            let mut r = HeartbeatRequest::default()
                .with_group_id(group("g"))
                .with_generation_id(1)
                .with_member_id(s("m"))
                .with_unknown_tagged_fields(t);
            if v >= 3 {
                r.group_instance_id = Some(s("i"));
            }
            RequestKind::Heartbeat(r)
        }
        ApiKey::LeaveGroup => {
            let mut r = LeaveGroupRequest::default()
                .with_group_id(group("g"))
                .with_unknown_tagged_fields(t);
            if v <= 2 {
                r.member_id = s("m");
            } else {
                let mut m = lg::MemberIdentity::default()
                    .with_member_id(s("m"))
                    .with_group_instance_id(Some(s("i")));
                if v >= 5 {
                    m.reason = Some(s("bye"));
                }
                r.members = vec![m, lg::MemberIdentity::default().with_member_id(s("n"))];
            }
            RequestKind::LeaveGroup(r)
        }
        ApiKey::SyncGroup => {
            let mut r = SyncGroupRequest::default()
                .with_group_id(group("g"))
                .with_generation_id(1)
                .with_member_id(s("m"))
                .with_assignments(vec![
                    sg::SyncGroupRequestAssignment::default()
                        .with_member_id(s("m"))
                        .with_assignment(Bytes::from_static(b"assignment")),
                    sg::SyncGroupRequestAssignment::default().with_member_id(s("n")),
                ])
                .with_unknown_tagged_fields(t);
            if v >= 3 {
                r.group_instance_id = Some(s("i"));
            }
            if v >= 5 {
                r.protocol_type = Some(s("consumer"));
                r.protocol_name = Some(s("range"));
            }
            RequestKind::SyncGroup(r)
        }
        ApiKey::DescribeGroups => {
            let mut r = DescribeGroupsRequest::default()
                .with_groups(vec![group("g"), group("h")])
                .with_unknown_tagged_fields(t);
            if v >= 3 {
                r.include_authorized_operations = true;
            }
            RequestKind::DescribeGroups(r)
        }
        ApiKey::ListGroups => {
            let mut r = ListGroupsRequest::default().with_unknown_tagged_fields(t);
            if v >= 4 {
                r.states_filter = vec![s("Stable"), s("Empty")];
            }
            if v >= 5 {
                r.types_filter = vec![s("classic")];
            }
            RequestKind::ListGroups(r)
        }
        ApiKey::ApiVersions => {
            let mut r = ApiVersionsRequest::default().with_unknown_tagged_fields(t);
            if v >= 3 {
                r.client_software_name = s("fuzz");
                r.client_software_version = s("1.0");
            }
            RequestKind::ApiVersions(r)
        }
        ApiKey::CreateTopics => RequestKind::CreateTopics(
            CreateTopicsRequest::default()
                .with_topics(vec![
                    ct::CreatableTopic::default()
                        .with_name(topic("t"))
                        .with_num_partitions(3)
                        .with_replication_factor(1)
                        .with_configs(vec![
                            ct::CreatableTopicConfig::default()
                                .with_name(s("cleanup.policy"))
                                .with_value(Some(s("compact"))),
                            ct::CreatableTopicConfig::default()
                                .with_name(s("x"))
                                .with_value(None),
                        ]),
                    ct::CreatableTopic::default()
                        .with_name(topic("u"))
                        .with_num_partitions(-1)
                        .with_replication_factor(-1)
                        .with_assignments(vec![ct::CreatableReplicaAssignment::default()
                            .with_broker_ids(vec![BrokerId(1)])]),
                ])
                .with_timeout_ms(5000)
                .with_unknown_tagged_fields(t),
        ),
        ApiKey::DeleteTopics => {
            let mut r = DeleteTopicsRequest::default()
                .with_timeout_ms(5000)
                .with_unknown_tagged_fields(t);
            if v <= 5 {
                r.topic_names = vec![topic("t"), topic("u")];
            } else {
                r.topics = vec![
                    dt::DeleteTopicState::default().with_name(Some(topic("t"))),
                    dt::DeleteTopicState::default().with_topic_id(uuid(3)),
                ];
            }
            RequestKind::DeleteTopics(r)
        }
        ApiKey::DeleteGroups => RequestKind::DeleteGroups(
            DeleteGroupsRequest::default()
                .with_groups_names(vec![group("g"), group("h")])
                .with_unknown_tagged_fields(t),
        ),
        ApiKey::OffsetDelete => RequestKind::OffsetDelete(
            OffsetDeleteRequest::default()
                .with_group_id(group("g"))
                .with_topics(vec![od::OffsetDeleteRequestTopic::default()
                    .with_name(topic("t"))
                    .with_partitions(vec![
                        od::OffsetDeleteRequestPartition::default().with_partition_index(0),
                        od::OffsetDeleteRequestPartition::default().with_partition_index(1),
                    ])]),
        ),
        ApiKey::CreatePartitions => RequestKind::CreatePartitions(
            CreatePartitionsRequest::default()
                .with_topics(vec![
                    cp::CreatePartitionsTopic::default()
                        .with_name(topic("t"))
                        .with_count(4)
                        .with_assignments(None),
                    cp::CreatePartitionsTopic::default()
                        .with_name(topic("u"))
                        .with_count(2)
                        .with_assignments(Some(vec![cp::CreatePartitionsAssignment::default()
                            .with_broker_ids(vec![BrokerId(1)])])),
                ])
                .with_timeout_ms(5000)
                .with_validate_only(true)
                .with_unknown_tagged_fields(t),
        ),
        ApiKey::InitProducerId => {
            let mut r = InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(s("txn"))))
                .with_transaction_timeout_ms(60_000)
                .with_unknown_tagged_fields(t);
            if v >= 3 {
                r.producer_id = ProducerId(5);
                r.producer_epoch = 1;
            }
            RequestKind::InitProducerId(r)
        }
        ApiKey::SaslHandshake => {
            RequestKind::SaslHandshake(SaslHandshakeRequest::default().with_mechanism(s("PLAIN")))
        }
        ApiKey::SaslAuthenticate => RequestKind::SaslAuthenticate(
            SaslAuthenticateRequest::default()
                .with_auth_bytes(Bytes::from_static(b"\0alice\0wonderland"))
                .with_unknown_tagged_fields(t),
        ),
        ApiKey::DescribeConfigs => {
            let mut r = DescribeConfigsRequest::default()
                .with_resources(vec![
                    dc::DescribeConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(s("t"))
                        .with_configuration_keys(Some(vec![s("retention.ms")])),
                    dc::DescribeConfigsResource::default()
                        .with_resource_type(4)
                        .with_resource_name(s("0"))
                        .with_configuration_keys(None),
                ])
                .with_include_synonyms(true)
                .with_unknown_tagged_fields(t);
            if v >= 3 {
                r.include_documentation = true;
            }
            RequestKind::DescribeConfigs(r)
        }
        ApiKey::AlterConfigs => RequestKind::AlterConfigs(
            AlterConfigsRequest::default()
                .with_resources(vec![ac::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("t"))
                    .with_configs(vec![
                        ac::AlterableConfig::default()
                            .with_name(s("retention.ms"))
                            .with_value(Some(s("1000"))),
                        ac::AlterableConfig::default()
                            .with_name(s("x"))
                            .with_value(None),
                    ])])
                .with_unknown_tagged_fields(t),
        ),
        ApiKey::IncrementalAlterConfigs => RequestKind::IncrementalAlterConfigs(
            IncrementalAlterConfigsRequest::default()
                .with_resources(vec![ia::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("t"))
                    .with_configs(vec![
                        ia::AlterableConfig::default()
                            .with_name(s("retention.ms"))
                            .with_config_operation(0)
                            .with_value(Some(s("1000"))),
                        ia::AlterableConfig::default()
                            .with_name(s("x"))
                            .with_config_operation(1)
                            .with_value(None),
                    ])])
                .with_unknown_tagged_fields(t),
        ),
        ApiKey::DeleteRecords => RequestKind::DeleteRecords(
            DeleteRecordsRequest::default()
                .with_topics(vec![dr::DeleteRecordsTopic::default()
                    .with_name(topic("t"))
                    .with_partitions(vec![
                        dr::DeleteRecordsPartition::default().with_offset(5),
                        dr::DeleteRecordsPartition::default()
                            .with_partition_index(1)
                            .with_offset(-1),
                    ])])
                .with_timeout_ms(5000)
                .with_unknown_tagged_fields(t),
        ),
        ApiKey::DescribeCluster => {
            let mut r = DescribeClusterRequest::default()
                .with_include_cluster_authorized_operations(true)
                .with_unknown_tagged_fields(t);
            if v >= 1 {
                r.endpoint_type = 1;
            }
            RequestKind::DescribeCluster(r)
        }
        ApiKey::OffsetForLeaderEpoch => {
            let mut r = OffsetForLeaderEpochRequest::default()
                .with_topics(vec![oe::OffsetForLeaderTopic::default()
                    .with_topic(topic("t"))
                    .with_partitions(vec![oe::OffsetForLeaderPartition::default()
                        .with_current_leader_epoch(1)
                        .with_leader_epoch(2)])])
                .with_unknown_tagged_fields(t);
            if v >= 3 {
                r.replica_id = BrokerId(-1);
            }
            RequestKind::OffsetForLeaderEpoch(r)
        }
        ApiKey::DescribeLogDirs => RequestKind::DescribeLogDirs(
            DescribeLogDirsRequest::default()
                .with_topics(Some(vec![dl::DescribableLogDirTopic::default()
                    .with_topic(topic("t"))
                    .with_partitions(vec![0, 1])]))
                .with_unknown_tagged_fields(t),
        ),
        ApiKey::DescribeTopicPartitions => RequestKind::DescribeTopicPartitions(
            DescribeTopicPartitionsRequest::default()
                .with_topics(vec![
                    dtp::TopicRequest::default().with_name(topic("t")),
                    dtp::TopicRequest::default().with_name(topic("u")),
                ])
                .with_response_partition_limit(100)
                .with_cursor(Some(
                    dtp::Cursor::default()
                        .with_topic_name(topic("t"))
                        .with_partition_index(1),
                ))
                .with_unknown_tagged_fields(t),
        ),
        ApiKey::ListConfigResources => {
            let mut r = ListConfigResourcesRequest::default().with_unknown_tagged_fields(t);
            if v >= 1 {
                r.resource_types = vec![2, 4];
            }
            RequestKind::ListConfigResources(r)
        }
        ApiKey::CreateAcls => RequestKind::CreateAcls(
            CreateAclsRequest::default()
                .with_creations(vec![ca::AclCreation::default()
                    .with_resource_type(2)
                    .with_resource_name(s("t"))
                    .with_resource_pattern_type(3)
                    .with_principal(s("User:a"))
                    .with_host(s("*"))
                    .with_operation(3)
                    .with_permission_type(3)])
                .with_unknown_tagged_fields(t),
        ),
        ApiKey::DescribeAcls => RequestKind::DescribeAcls(
            DescribeAclsRequest::default()
                .with_resource_type_filter(1)
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1)
                .with_unknown_tagged_fields(t),
        ),
        ApiKey::DeleteAcls => RequestKind::DeleteAcls(
            DeleteAclsRequest::default()
                .with_filters(vec![da::DeleteAclsFilter::default()
                    .with_resource_type_filter(2)
                    .with_resource_name_filter(Some(s("t")))
                    .with_pattern_type_filter(3)
                    .with_operation(1)
                    .with_permission_type(1)])
                .with_unknown_tagged_fields(t),
        ),
        ApiKey::ElectLeaders => {
            let mut r = ElectLeadersRequest::default()
                .with_topic_partitions(Some(vec![el::TopicPartitions::default()
                    .with_topic(topic("t"))
                    .with_partitions(vec![0, 1])]))
                .with_timeout_ms(1000)
                .with_unknown_tagged_fields(t);
            if v >= 1 {
                r.election_type = 1;
            }
            RequestKind::ElectLeaders(r)
        }
        ApiKey::AlterPartitionReassignments => RequestKind::AlterPartitionReassignments(
            AlterPartitionReassignmentsRequest::default()
                .with_timeout_ms(1000)
                .with_topics(vec![apr::ReassignableTopic::default()
                    .with_name(topic("t"))
                    .with_partitions(vec![
                        apr::ReassignablePartition::default()
                            .with_partition_index(0)
                            .with_replicas(Some(vec![BrokerId(1), BrokerId(2)])),
                        apr::ReassignablePartition::default().with_partition_index(1),
                    ])])
                .with_unknown_tagged_fields(t),
        ),
        ApiKey::ListPartitionReassignments => RequestKind::ListPartitionReassignments(
            ListPartitionReassignmentsRequest::default()
                .with_timeout_ms(1000)
                .with_topics(Some(vec![lpr::ListPartitionReassignmentsTopics::default()
                    .with_name(topic("t"))
                    .with_partition_indexes(vec![0])]))
                .with_unknown_tagged_fields(t),
        ),
        ApiKey::DescribeUserScramCredentials => RequestKind::DescribeUserScramCredentials(
            DescribeUserScramCredentialsRequest::default()
                .with_users(Some(vec![dus::UserName::default().with_name(s("alice"))]))
                .with_unknown_tagged_fields(t),
        ),
        ApiKey::AlterUserScramCredentials => RequestKind::AlterUserScramCredentials(
            AlterUserScramCredentialsRequest::default()
                .with_deletions(vec![aus::ScramCredentialDeletion::default()
                    .with_name(s("bob"))
                    .with_mechanism(1)])
                .with_upsertions(vec![aus::ScramCredentialUpsertion::default()
                    .with_name(s("alice"))
                    .with_mechanism(2)
                    .with_iterations(4096)
                    .with_salt(Bytes::from_static(b"salt"))
                    .with_salted_password(Bytes::from_static(&[7; 64]))])
                .with_unknown_tagged_fields(t),
        ),
        ApiKey::ConsumerGroupHeartbeat => RequestKind::ConsumerGroupHeartbeat(
            ConsumerGroupHeartbeatRequest::default()
                .with_group_id(GroupId(s("fuzz-group")))
                .with_member_id(s("fuzz-member"))
                .with_member_epoch(0)
                .with_rebalance_timeout_ms(30_000)
                .with_subscribed_topic_names(Some(vec![TopicName(s("fuzz-topic"))]))
                .with_subscribed_topic_regex((v >= 1).then(|| s("^fuzz-.*")))
                .with_server_assignor(Some(s("uniform")))
                .with_topic_partitions(Some(vec![
                    consumer_group_heartbeat_request::TopicPartitions::default()
                        .with_topic_id(uuid::Uuid::from_u128(7))
                        .with_partitions(vec![0, 1]),
                ]))
                .with_unknown_tagged_fields(t),
        ),
        ApiKey::ConsumerGroupDescribe => RequestKind::ConsumerGroupDescribe(
            ConsumerGroupDescribeRequest::default()
                .with_group_ids(vec![GroupId(s("fuzz-group"))])
                .with_include_authorized_operations(true)
                .with_unknown_tagged_fields(t),
        ),
        ApiKey::AddPartitionsToTxn => RequestKind::AddPartitionsToTxn(
            AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(TransactionalId(s("txn")))
                .with_v3_and_below_producer_id(ProducerId(7))
                .with_v3_and_below_producer_epoch(0)
                .with_v3_and_below_topics(vec![
                    add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                        .with_name(TopicName(s("fuzz-topic")))
                        .with_partitions(vec![0, 1]),
                ])
                .with_unknown_tagged_fields(t),
        ),
        ApiKey::AddOffsetsToTxn => RequestKind::AddOffsetsToTxn(
            AddOffsetsToTxnRequest::default()
                .with_transactional_id(TransactionalId(s("txn")))
                .with_producer_id(ProducerId(7))
                .with_group_id(GroupId(s("fuzz-group")))
                .with_unknown_tagged_fields(t),
        ),
        ApiKey::EndTxn => RequestKind::EndTxn(
            EndTxnRequest::default()
                .with_transactional_id(TransactionalId(s("txn")))
                .with_producer_id(ProducerId(7))
                .with_committed(true)
                .with_unknown_tagged_fields(t),
        ),
        ApiKey::TxnOffsetCommit => RequestKind::TxnOffsetCommit(
            TxnOffsetCommitRequest::default()
                .with_transactional_id(TransactionalId(s("txn")))
                .with_group_id(GroupId(s("fuzz-group")))
                .with_producer_id(ProducerId(7))
                .with_topics(vec![
                    txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                        .with_name(TopicName(s("fuzz-topic")))
                        .with_partitions(vec![
                            txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                                .with_committed_offset(3)
                                .with_committed_metadata(Some(s("m"))),
                        ]),
                ])
                .with_unknown_tagged_fields(t),
        ),
        ApiKey::DescribeProducers => RequestKind::DescribeProducers(
            DescribeProducersRequest::default()
                .with_topics(vec![describe_producers_request::TopicRequest::default()
                    .with_name(TopicName(s("fuzz-topic")))
                    .with_partition_indexes(vec![0, 1])])
                .with_unknown_tagged_fields(t),
        ),
        ApiKey::DescribeTransactions => RequestKind::DescribeTransactions(
            DescribeTransactionsRequest::default()
                .with_transactional_ids(vec![TransactionalId(s("txn"))])
                .with_unknown_tagged_fields(t),
        ),
        ApiKey::ListTransactions => RequestKind::ListTransactions(
            ListTransactionsRequest::default()
                .with_state_filters(vec![s("Ongoing")])
                .with_producer_id_filters(vec![ProducerId(7)])
                .with_duration_filter(if v >= 1 { 1_000 } else { -1 })
                .with_transactional_id_pattern((v >= 2).then(|| s("tx.*")))
                .with_unknown_tagged_fields(t),
        ),
        other => panic!("no representative request for {other:?}: add one"),
    }
}

/// The same API with every field at its default (empty arrays, empty strings).
fn empty_request(key: ApiKey) -> RequestKind {
    match key {
        ApiKey::Produce => RequestKind::Produce(Default::default()),
        ApiKey::Fetch => RequestKind::Fetch(Default::default()),
        ApiKey::ListOffsets => RequestKind::ListOffsets(Default::default()),
        ApiKey::Metadata => RequestKind::Metadata(Default::default()),
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(Default::default()),
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(Default::default()),
        ApiKey::FindCoordinator => RequestKind::FindCoordinator(Default::default()),
        ApiKey::JoinGroup => RequestKind::JoinGroup(Default::default()),
        ApiKey::Heartbeat => RequestKind::Heartbeat(Default::default()),
        ApiKey::LeaveGroup => RequestKind::LeaveGroup(Default::default()),
        ApiKey::SyncGroup => RequestKind::SyncGroup(Default::default()),
        ApiKey::DescribeGroups => RequestKind::DescribeGroups(Default::default()),
        ApiKey::ListGroups => RequestKind::ListGroups(Default::default()),
        ApiKey::ApiVersions => RequestKind::ApiVersions(Default::default()),
        ApiKey::CreateTopics => RequestKind::CreateTopics(Default::default()),
        ApiKey::DeleteTopics => RequestKind::DeleteTopics(Default::default()),
        ApiKey::DeleteGroups => RequestKind::DeleteGroups(Default::default()),
        ApiKey::OffsetDelete => RequestKind::OffsetDelete(Default::default()),
        ApiKey::CreatePartitions => RequestKind::CreatePartitions(Default::default()),
        ApiKey::InitProducerId => RequestKind::InitProducerId(Default::default()),
        ApiKey::SaslHandshake => RequestKind::SaslHandshake(Default::default()),
        ApiKey::SaslAuthenticate => RequestKind::SaslAuthenticate(Default::default()),
        ApiKey::DescribeConfigs => RequestKind::DescribeConfigs(Default::default()),
        ApiKey::AlterConfigs => RequestKind::AlterConfigs(Default::default()),
        ApiKey::IncrementalAlterConfigs => RequestKind::IncrementalAlterConfigs(Default::default()),
        ApiKey::DeleteRecords => RequestKind::DeleteRecords(Default::default()),
        ApiKey::DescribeCluster => RequestKind::DescribeCluster(Default::default()),
        ApiKey::OffsetForLeaderEpoch => RequestKind::OffsetForLeaderEpoch(Default::default()),
        ApiKey::DescribeLogDirs => RequestKind::DescribeLogDirs(Default::default()),
        ApiKey::DescribeTopicPartitions => RequestKind::DescribeTopicPartitions(Default::default()),
        ApiKey::ListConfigResources => RequestKind::ListConfigResources(Default::default()),
        ApiKey::CreateAcls => RequestKind::CreateAcls(Default::default()),
        ApiKey::DescribeAcls => RequestKind::DescribeAcls(Default::default()),
        ApiKey::DeleteAcls => RequestKind::DeleteAcls(Default::default()),
        ApiKey::ElectLeaders => RequestKind::ElectLeaders(Default::default()),
        ApiKey::AlterPartitionReassignments => {
            RequestKind::AlterPartitionReassignments(Default::default())
        }
        ApiKey::ListPartitionReassignments => {
            RequestKind::ListPartitionReassignments(Default::default())
        }
        ApiKey::DescribeUserScramCredentials => {
            RequestKind::DescribeUserScramCredentials(Default::default())
        }
        ApiKey::AlterUserScramCredentials => {
            RequestKind::AlterUserScramCredentials(Default::default())
        }
        ApiKey::ConsumerGroupHeartbeat => RequestKind::ConsumerGroupHeartbeat(Default::default()),
        ApiKey::ConsumerGroupDescribe => RequestKind::ConsumerGroupDescribe(Default::default()),
        ApiKey::DescribeProducers => RequestKind::DescribeProducers(Default::default()),
        ApiKey::DescribeTransactions => RequestKind::DescribeTransactions(Default::default()),
        ApiKey::ListTransactions => RequestKind::ListTransactions(Default::default()),
        ApiKey::AddPartitionsToTxn => RequestKind::AddPartitionsToTxn(Default::default()),
        ApiKey::AddOffsetsToTxn => RequestKind::AddOffsetsToTxn(Default::default()),
        ApiKey::EndTxn => RequestKind::EndTxn(Default::default()),
        ApiKey::TxnOffsetCommit => RequestKind::TxnOffsetCommit(Default::default()),
        other => panic!("no empty request for {other:?}: add one"),
    }
}

/// Header and body of one request (no size prefix), as a client sends it.
fn encode_request(key: ApiKey, version: i16, correlation: i32, req: &RequestKind) -> Vec<u8> {
    let mut buf = BytesMut::new();
    let mut h = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation)
        .with_client_id(Some(s("fuzz-client")));
    let header_version = key.request_header_version(version);
    if header_version >= 2 {
        h.unknown_tagged_fields = tags();
    }
    h.encode(&mut buf, header_version).unwrap();
    req.encode(&mut buf, version)
        .unwrap_or_else(|e| panic!("encoding the {key:?} v{version} seed: {e}"));
    buf.to_vec()
}

/// Two seeds (representative and empty) for every API and version we serve and decode.
fn request_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for spec in SUPPORTED {
        for v in spec.min..=spec.max {
            if spec.key == ApiKey::Produce && v < MIN_DECODABLE_PRODUCE {
                continue; // closed before decoding; kafka-protocol has no encoder for them
            }
            let full = encode_request(
                spec.key,
                v,
                seeds.len() as i32,
                &representative(spec.key, v),
            );
            // The seed decodes back: it is a real request, not noise.
            let mut buf = Bytes::from(full.clone());
            decode_request_header_from_buffer(&mut buf).unwrap();
            RequestKind::decode(spec.key, &mut buf, v)
                .unwrap_or_else(|e| panic!("{:?} v{v} seed does not decode: {e}", spec.key));
            seeds.push(full);
            seeds.push(encode_request(spec.key, v, 0, &empty_request(spec.key)));
        }
    }
    seeds
}

fn mutate_request(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let base = rng.pick(seeds);
    let mut m = mutate_bytes(rng, base, seeds);
    // Mostly keep the API key and version, so mutants reach that API's body decoder.
    if m.len() >= 4 && rng.chance(7, 8) {
        m[..4].copy_from_slice(&base[..4]);
    }
    m
}

/// Request frames of every served API and version, mutated, through the broker's decoding path.
#[test]
fn fuzz_request_decoding() {
    let seeds = request_seeds();
    campaign("requests", &seeds, mutate_request, decode_like_dispatch);
}

// ---------------------------------------------------------------------------------------------
// Target: record batch validation and parsing.
// ---------------------------------------------------------------------------------------------

const CODECS: [Codec; 5] = [
    Codec::None,
    Codec::Gzip,
    Codec::Snappy,
    Codec::Lz4,
    Codec::Zstd,
];

/// Records with and without keys, null/empty/large values, duplicate headers.
fn sample_records(n: usize, base_ts: i64) -> Vec<OwnedRecord> {
    (0..n)
        .map(|i| OwnedRecord {
            offset: i as i64,
            timestamp: base_ts + i as i64,
            key: (i % 3 != 0).then(|| Bytes::from(format!("key-{i}"))),
            value: match i % 4 {
                0 => None,
                1 => Some(Bytes::new()),
                _ => Some(Bytes::from(vec![b'v'; i * 5])),
            },
            headers: if i % 2 == 0 {
                vec![
                    (Bytes::from_static(b"h"), Some(Bytes::from_static(b"1"))),
                    (Bytes::from_static(b"h"), None),
                ]
            } else {
                vec![]
            },
        })
        .collect()
}

fn record_seeds() -> Vec<Vec<u8>> {
    let mut seeds = vec![
        common::batch(&[b"a", b"bb", b"ccc"]).to_vec(),
        common::batch_idempotent(&[b"x"], 7, 1, 0).to_vec(),
    ];
    for codec in CODECS {
        for n in [1, 5, 20] {
            let meta = BatchMeta {
                producer_id: 9,
                producer_epoch: 0,
                base_sequence: 3,
                ..BatchMeta::plain(0)
            };
            let b = records::encode_batch(&meta, &sample_records(n, 1_700_000_000_000), codec, 3)
                .unwrap();
            // The seeds are valid batches.
            records::validate_produce(&Bytes::from(b.clone()), CAP)
                .unwrap_or_else(|e| panic!("{codec:?} seed of {n} records: {e}"));
            seeds.push(b);
        }
    }
    seeds
}

/// Make a mutant's `batch_length` and CRC-32C consistent (each most of the time), so it gets
/// past the header checks to the record parser.
fn fix_up(rng: &mut Rng, b: &mut [u8]) {
    if b.len() >= 12 && rng.chance(3, 4) {
        let len = (b.len() - 12) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
    }
    if b.len() >= 21 && rng.chance(3, 4) {
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
    }
}

fn mutate_batch(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let base = rng.pick(seeds);
    let codec = (base.len() >= BATCH_HEADER_LEN)
        .then(|| Codec::from_attributes(i16::from_be_bytes([base[21], base[22]])).ok())
        .flatten();
    let mut m = match codec {
        // Structure-aware: mutate the decompressed records, recompress, rebuild the batch.
        Some(c) if c != Codec::None && rng.chance(1, 3) => {
            let plain = compression::decompress(c, &base[BATCH_HEADER_LEN..], CAP).unwrap();
            let mutated = mutate_bytes(rng, &plain, std::slice::from_ref(&plain));
            let mut b = base[..BATCH_HEADER_LEN].to_vec();
            b.extend_from_slice(&compression::compress(c, &mutated, 1).unwrap());
            b
        }
        _ => mutate_bytes(rng, base, seeds),
    };
    fix_up(rng, &mut m);
    m
}

/// One produced `records` field: validation must not panic, and what validates must parse
/// to the declared record count, recompress, and validate again. `Ok(true)`: it validated.
fn check_batch(input: &[u8]) -> Result<bool, String> {
    let bytes = Bytes::copy_from_slice(input);
    let parsed = records::parse_records(&bytes, CAP);
    let Ok(valid) = records::validate_produce(&bytes, CAP) else {
        return Ok(false);
    };
    let (header, recs) =
        parsed.map_err(|e| format!("validate_produce accepted what parse_records refuses: {e}"))?;
    if recs.len() != header.record_count as usize {
        return Err(format!(
            "validated batch declares {} records, parse_records found {}",
            header.record_count,
            recs.len()
        ));
    }
    for codec in [Codec::None, Codec::Zstd] {
        let again = records::recompress(&valid, codec, 3, CAP)
            .map_err(|e| format!("recompress of a validated batch to {codec:?}: {e}"))?;
        records::validate_produce(&again.bytes, CAP)
            .map_err(|e| format!("a batch recompressed to {codec:?} does not validate: {e}"))?;
    }
    Ok(true)
}

/// Record batches of every codec, mutated (CRC and length mostly fixed up), through
/// `validate_produce` and `parse_records`.
#[test]
fn fuzz_record_batches() {
    let seeds = record_seeds();
    campaign("records", &seeds, mutate_batch, check_batch);
}

// ---------------------------------------------------------------------------------------------
// Target: capped decompression.
// ---------------------------------------------------------------------------------------------

/// A codec tag byte in front of the compressed bytes (so one input names its codec).
fn decompress_seeds() -> Vec<Vec<u8>> {
    let text: Vec<u8> = b"the quick brown fox jumps over the lazy dog "
        .iter()
        .copied()
        .cycle()
        .take(20_000)
        .collect();
    let noise: Vec<u8> = {
        let mut r = Rng::new(1);
        (0..4096).map(|_| r.next() as u8).collect()
    };
    let zeros = vec![0u8; 4 * CAP]; // inflates past the cap
    let small = b"hello".to_vec();
    let mut seeds = Vec::new();
    for codec in &CODECS[1..] {
        for payload in [&text, &noise, &zeros, &small] {
            let mut s = vec![*codec as u8];
            s.extend_from_slice(&compression::compress(*codec, payload, 3).unwrap());
            seeds.push(s);
        }
    }
    // Raw (unframed) snappy, which the broker also accepts.
    for payload in [&text, &small] {
        let mut s = vec![Codec::Snappy as u8];
        s.extend_from_slice(&snap::raw::Encoder::new().compress_vec(payload).unwrap());
        seeds.push(s);
    }
    seeds
}

fn mutate_compressed(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let base = rng.pick(seeds);
    let mut m = mutate_bytes(rng, &base[1..], seeds);
    // Mostly the codec the bytes were made with, sometimes another one.
    let tag = if rng.chance(7, 8) {
        base[0]
    } else {
        CODECS[1 + rng.below(4)] as u8
    };
    m.insert(0, tag);
    m
}

/// `decompress` must not panic and must never return more than its cap. `Ok(true)`: some
/// codec decompressed it.
fn check_decompress(input: &[u8]) -> Result<bool, String> {
    let (codecs, data): (Vec<Codec>, &[u8]) = match input.split_first() {
        Some((&tag, rest)) => match Codec::from_attributes(tag as i16) {
            Ok(c) if c != Codec::None => (vec![c], rest),
            _ => (CODECS[1..].to_vec(), rest),
        },
        None => (CODECS[1..].to_vec(), input),
    };
    let mut accepted = false;
    for codec in codecs {
        if let Ok(out) = compression::decompress(codec, data, CAP) {
            if out.len() > CAP {
                return Err(format!(
                    "{codec:?} returned {} bytes over a cap of {CAP}",
                    out.len()
                ));
            }
            accepted = true;
        }
    }
    Ok(accepted)
}

/// Compressed payloads of every codec, mutated, through `decompress` with a small cap.
#[test]
fn fuzz_decompression() {
    let seeds = decompress_seeds();
    campaign("decompress", &seeds, mutate_compressed, check_decompress);
}

/// The harness itself: a panicking target is caught and reported with its message, quietly.
#[test]
fn harness_catches_and_reports_panics() {
    install_quiet_hook();
    let r = guarded(|| -> Result<bool, String> { panic!("boom {}", 42) });
    assert!(r.unwrap_err().contains("boom 42"));
    assert_eq!(guarded(|| Ok(true)), Ok(true));
}
