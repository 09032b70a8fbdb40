//! Zero-copy Fetch response encoding.
//!
//! A Fetch response is mostly record batches the broker already holds as shared [`Bytes`] (the
//! hot tail, or the segment cache). Encoding it with `kafka-protocol` would first concatenate
//! each partition's batches and then copy them again into the response buffer. Here the
//! response is encoded as a list of chunks instead: the fixed fields go into one small buffer,
//! and each partition's batches are referenced in place between its pieces. The connection
//! writes the chunks with vectored writes, so payload bytes are never copied on the way out.
//!
//! The wire layout follows Kafka's `FetchResponse.json` for the versions the broker serves
//! (4–18; 17 and 18 change only the request), including flexible versions (12+: compact
//! arrays/strings/bytes and tagged fields).
//! Tagged fields the broker never sets (diverging epoch, current leader, snapshot id, node
//! endpoints, unknown tags) make [`encode`] fall back to `kafka-protocol`'s encoder, so the
//! output is always a faithful response. Unit tests compare both encoders byte for byte.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseHeader};
use kafka_protocol::protocol::Encodable;

/// The encoded frame (length prefix included) as chunks to write in order.
pub type Chunks = Vec<Bytes>;

/// Encode a Fetch response frame. `records[i]` holds the batches of the i-th partition (topics
/// in order, then their partitions in order); a partition's own `records` field is ignored
/// when `records` has an entry for it, and used as-is otherwise.
pub fn encode(
    version: i16,
    correlation_id: i32,
    resp: &FetchResponse,
    records: &[Vec<Bytes>],
) -> anyhow::Result<Chunks> {
    if !(4..=18).contains(&version) || needs_generic_encoder(resp) {
        return generic(version, correlation_id, resp, records);
    }
    let flexible = version >= 12;
    let mut w = Writer::new(flexible);
    w.buf.put_i32(0); // frame length, patched at the end
    w.buf.put_i32(correlation_id);
    w.tags_none(); // response header v1 tagged fields
    w.buf.put_i32(resp.throttle_time_ms);
    if version >= 7 {
        w.buf.put_i16(resp.error_code);
        w.buf.put_i32(resp.session_id);
    }
    w.array_len(Some(resp.responses.len()));
    let mut index = 0usize;
    for t in &resp.responses {
        if version >= 13 {
            w.buf.put_slice(t.topic_id.as_bytes());
        } else {
            w.string(t.topic.as_str());
        }
        w.array_len(Some(t.partitions.len()));
        for p in &t.partitions {
            w.buf.put_i32(p.partition_index);
            w.buf.put_i16(p.error_code);
            w.buf.put_i64(p.high_watermark);
            w.buf.put_i64(p.last_stable_offset);
            if version >= 5 {
                w.buf.put_i64(p.log_start_offset);
            }
            match &p.aborted_transactions {
                None => w.array_len(None),
                Some(list) => {
                    w.array_len(Some(list.len()));
                    for a in list {
                        w.buf.put_i64(a.producer_id.0);
                        w.buf.put_i64(a.first_offset);
                        w.tags_none();
                    }
                }
            }
            if version >= 11 {
                w.buf.put_i32(p.preferred_read_replica.0);
            }
            match records.get(index) {
                Some(chunks) => w.records(chunks),
                None => match &p.records {
                    Some(b) => w.records(std::slice::from_ref(b)),
                    None => w.null_records(),
                },
            }
            w.tags_none();
            index += 1;
        }
        w.tags_none();
    }
    w.tags_none();
    // A frame length is an i32: a response past 2 GiB cannot be sent (the handler's byte
    // limits keep real responses far below; this refuses rather than wrapping negative).
    let total = w.buf.len() + w.spliced_len;
    if total - 4 > i32::MAX as usize {
        anyhow::bail!("a Fetch response of {total} bytes exceeds the 2 GiB frame limit");
    }
    Ok(w.finish())
}

/// Whether the response sets something the fast encoder does not write.
fn needs_generic_encoder(resp: &FetchResponse) -> bool {
    let partition = |p: &PartitionData| {
        p.diverging_epoch != Default::default()
            || p.current_leader != Default::default()
            || p.snapshot_id != Default::default()
            || !p.unknown_tagged_fields.is_empty()
    };
    !resp.node_endpoints.is_empty()
        || !resp.unknown_tagged_fields.is_empty()
        || resp.responses.iter().any(|t| {
            !t.unknown_tagged_fields.is_empty()
                || t.partitions.iter().any(|p| {
                    partition(p)
                        || p.aborted_transactions
                            .iter()
                            .flatten()
                            .any(|a| !a.unknown_tagged_fields.is_empty())
                })
        })
}

/// `kafka-protocol`'s encoder, with the chunks concatenated into each partition.
fn generic(
    version: i16,
    correlation_id: i32,
    resp: &FetchResponse,
    records: &[Vec<Bytes>],
) -> anyhow::Result<Chunks> {
    let mut resp = resp.clone();
    let mut index = 0usize;
    for t in resp.responses.iter_mut() {
        for p in t.partitions.iter_mut() {
            if let Some(chunks) = records.get(index) {
                p.records = Some(concat(chunks));
            }
            index += 1;
        }
    }
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    let header_version = ApiKey::Fetch.response_header_version(version);
    let size = header.compute_size(header_version)? + resp.compute_size(version)?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size as i32);
    header.encode(&mut buf, header_version)?;
    resp.encode(&mut buf, version)?;
    Ok(vec![buf.freeze()])
}

/// Concatenate chunks (one copy; only for the fallback encoder and tests).
pub fn concat(chunks: &[Bytes]) -> Bytes {
    match chunks {
        [] => Bytes::new(),
        [one] => one.clone(),
        _ => {
            let mut b = BytesMut::with_capacity(chunks.iter().map(|c| c.len()).sum());
            for c in chunks {
                b.extend_from_slice(c);
            }
            b.freeze()
        }
    }
}

/// Accumulates fixed fields in one buffer and splices record chunks in between.
struct Writer {
    flexible: bool,
    buf: BytesMut,
    /// (end of the fixed bytes before them, the chunks) in order.
    splices: Vec<(usize, Vec<Bytes>)>,
    spliced_len: usize,
}

impl Writer {
    fn new(flexible: bool) -> Writer {
        Writer {
            flexible,
            buf: BytesMut::with_capacity(256),
            splices: Vec::new(),
            spliced_len: 0,
        }
    }

    fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.put_u8(v as u8);
    }

    /// No tagged fields (flexible versions only).
    fn tags_none(&mut self) {
        if self.flexible {
            self.buf.put_u8(0);
        }
    }

    fn array_len(&mut self, len: Option<usize>) {
        match (self.flexible, len) {
            (true, None) => self.buf.put_u8(0),
            (true, Some(n)) => self.uvarint(n as u64 + 1),
            (false, None) => self.buf.put_i32(-1),
            (false, Some(n)) => self.buf.put_i32(n as i32),
        }
    }

    fn string(&mut self, s: &str) {
        if self.flexible {
            self.uvarint(s.len() as u64 + 1);
        } else {
            self.buf.put_i16(s.len() as i16);
        }
        self.buf.put_slice(s.as_bytes());
    }

    fn null_records(&mut self) {
        if self.flexible {
            self.buf.put_u8(0);
        } else {
            self.buf.put_i32(-1);
        }
    }

    fn records(&mut self, chunks: &[Bytes]) {
        let len: usize = chunks.iter().map(|c| c.len()).sum();
        if self.flexible {
            self.uvarint(len as u64 + 1);
        } else {
            self.buf.put_i32(len as i32);
        }
        let chunks: Vec<Bytes> = chunks.iter().filter(|c| !c.is_empty()).cloned().collect();
        if !chunks.is_empty() {
            self.spliced_len += len;
            self.splices.push((self.buf.len(), chunks));
        }
    }

    fn finish(mut self) -> Chunks {
        let total = self.buf.len() + self.spliced_len;
        let frame_len = (total - 4) as i32;
        self.buf[0..4].copy_from_slice(&frame_len.to_be_bytes());
        let fixed = self.buf.freeze();
        let mut out = Vec::with_capacity(self.splices.len() * 3 + 1);
        let mut at = 0;
        for (end, chunks) in self.splices {
            if end > at {
                out.push(fixed.slice(at..end));
            }
            out.extend(chunks);
            at = end;
        }
        if at < fixed.len() {
            out.push(fixed.slice(at..));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::encode_response;
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, EpochEndOffset, FetchableTopicResponse,
    };
    use kafka_protocol::messages::ResponseKind;
    use kafka_protocol::messages::{ProducerId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    fn sample(version: i16) -> (FetchResponse, Vec<Vec<Bytes>>) {
        let mut resp = FetchResponse::default();
        resp.throttle_time_ms = 7;
        let mut chunks = Vec::new();
        for (ti, name) in ["alpha", "b"].iter().enumerate() {
            let mut t = FetchableTopicResponse::default();
            if version >= 13 {
                t.topic_id = uuid::Uuid::from_bytes([ti as u8 + 1; 16]);
            } else {
                t.topic = TopicName(StrBytes::from_static_str(name));
            }
            for pi in 0..3 {
                let mut p = PartitionData::default();
                p.partition_index = pi;
                p.error_code = if pi == 2 { 1 } else { 0 };
                p.high_watermark = 1000 + pi as i64;
                p.last_stable_offset = 1000 + pi as i64;
                p.log_start_offset = 3;
                if pi == 1 {
                    let mut a = AbortedTransaction::default();
                    a.producer_id = ProducerId(9);
                    a.first_offset = 4;
                    p.aborted_transactions = Some(vec![a]);
                }
                if version >= 11 {
                    p.preferred_read_replica = (-1).into();
                }
                let c: Vec<Bytes> = (0..pi)
                    .map(|k| Bytes::from(vec![k as u8 + 10; 50 + 200 * k as usize]))
                    .collect();
                chunks.push(c);
                t.partitions.push(p);
            }
            resp.responses.push(t);
        }
        (resp, chunks)
    }

    fn reference(version: i16, resp: &FetchResponse, chunks: &[Vec<Bytes>]) -> Bytes {
        let mut resp = resp.clone();
        let mut i = 0;
        for t in resp.responses.iter_mut() {
            for p in t.partitions.iter_mut() {
                p.records = Some(concat(&chunks[i]));
                i += 1;
            }
        }
        encode_response(ApiKey::Fetch, version, 42, &ResponseKind::Fetch(resp)).unwrap()
    }

    #[test]
    fn matches_kafka_protocol_for_every_served_version() {
        for version in 4..=18 {
            let (resp, chunks) = sample(version);
            let ours = encode(version, 42, &resp, &chunks).unwrap();
            assert!(ours.len() > 1, "v{version}: records should be spliced");
            assert_eq!(
                concat(&ours),
                reference(version, &resp, &chunks),
                "v{version}"
            );
        }
    }

    #[test]
    fn record_chunks_are_referenced_not_copied() {
        let (resp, chunks) = sample(12);
        let ours = encode(12, 1, &resp, &chunks).unwrap();
        let big = &chunks[2][1];
        assert!(ours.iter().any(|c| c.as_ptr() == big.as_ptr()));
    }

    #[test]
    fn null_and_missing_records_follow_the_partition_field() {
        for version in [4, 11, 12, 16, 18] {
            let (mut resp, _) = sample(version);
            resp.responses[0].partitions[0].records = None;
            resp.responses[0].partitions[1].records = Some(Bytes::from_static(b"xyz"));
            let ours = encode(version, 42, &resp, &[]).unwrap();
            let want = encode_response(
                ApiKey::Fetch,
                version,
                42,
                &ResponseKind::Fetch(resp.clone()),
            )
            .unwrap();
            assert_eq!(concat(&ours), want, "v{version}");
        }
    }

    #[test]
    fn tagged_fields_fall_back_to_the_generic_encoder() {
        let (mut resp, chunks) = sample(12);
        let mut e = EpochEndOffset::default();
        e.epoch = 3;
        e.end_offset = 10;
        resp.responses[1].partitions[0].diverging_epoch = e;
        let ours = encode(12, 42, &resp, &chunks).unwrap();
        assert_eq!(ours.len(), 1);
        assert_eq!(concat(&ours), reference(12, &resp, &chunks));
    }
}
