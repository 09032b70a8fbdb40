//! The consumer protocol embedded in classic JoinGroup/SyncGroup bytes
//! (`ConsumerProtocolSubscription`, `ConsumerProtocolAssignment`: a version, then the body),
//! read and written when classic members share a group with KIP-848 members.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::TopicName;
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// Newest version of both structures this broker reads and writes.
const MAX_VERSION: i16 = 3;

/// A member's subscription as its JoinGroup metadata carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub version: i16,
    pub topics: Vec<String>,
    /// Partitions the member owns (v1+; empty for eager members, which revoke before joining).
    pub owned: Vec<(String, Vec<i32>)>,
    pub rack_id: Option<String>,
}

fn version_and_body(bytes: &[u8]) -> Option<(i16, Bytes)> {
    if bytes.len() < 2 {
        return None;
    }
    let version = i16::from_be_bytes([bytes[0], bytes[1]]);
    (version >= 0).then(|| (version, Bytes::copy_from_slice(&bytes[2..])))
}

pub fn parse_subscription(bytes: &[u8]) -> Option<Subscription> {
    let (version, mut body) = version_and_body(bytes)?;
    let s = ConsumerProtocolSubscription::decode(&mut body, version.min(MAX_VERSION)).ok()?;
    Some(Subscription {
        version,
        topics: s.topics.iter().map(|t| t.to_string()).collect(),
        owned: s
            .owned_partitions
            .iter()
            .map(|tp| (tp.topic.to_string(), tp.partitions.clone()))
            .collect(),
        rack_id: s.rack_id.map(|r| r.to_string()),
    })
}

/// The partitions of a SyncGroup assignment, by topic name. A custom assignor's user data
/// cannot be carried over: `None`, like bytes that do not parse.
pub fn parse_assignment(bytes: &[u8]) -> Option<Vec<(String, Vec<i32>)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let (version, mut body) = version_and_body(bytes)?;
    let a = ConsumerProtocolAssignment::decode(&mut body, version.min(MAX_VERSION)).ok()?;
    if a.user_data.as_ref().is_some_and(|d| !d.is_empty()) {
        return None;
    }
    Some(
        a.assigned_partitions
            .iter()
            .map(|tp| (tp.topic.to_string(), tp.partitions.clone()))
            .collect(),
    )
}

/// A SyncGroup assignment at `version` (the member's subscription version, at most 3).
pub fn encode_assignment(version: i16, partitions: &[(String, Vec<i32>)]) -> Bytes {
    let version = version.clamp(0, MAX_VERSION);
    let mut a = ConsumerProtocolAssignment::default();
    a.assigned_partitions = partitions
        .iter()
        .map(|(t, ps)| {
            let mut tp = AssignedTopic::default();
            tp.topic = TopicName(StrBytes::from_string(t.clone()));
            tp.partitions = ps.clone();
            tp
        })
        .collect();
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    // Encoding a structure we built cannot fail (no field outside its versions).
    if a.encode(&mut buf, version).is_err() {
        buf.truncate(2);
    }
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_round_trips_and_subscriptions_parse() {
        let parts = vec![("a".to_string(), vec![0, 2]), ("b".to_string(), vec![1])];
        for v in 0..=3 {
            let b = encode_assignment(v, &parts);
            assert_eq!(parse_assignment(&b), Some(parts.clone()), "v{v}");
        }
        assert_eq!(parse_assignment(&[]), Some(Vec::new()));
        assert_eq!(parse_assignment(&[0xff]), None);
        let mut s = ConsumerProtocolSubscription::default();
        s.topics = vec![StrBytes::from_static_str("t")];
        let mut tp =
            kafka_protocol::messages::consumer_protocol_subscription::TopicPartition::default();
        tp.topic = TopicName(StrBytes::from_static_str("t"));
        tp.partitions = vec![3];
        s.owned_partitions = vec![tp];
        let mut buf = BytesMut::new();
        buf.put_i16(1);
        s.encode(&mut buf, 1).unwrap();
        let got = parse_subscription(&buf).unwrap();
        assert_eq!(got.topics, vec!["t".to_string()]);
        assert_eq!(got.owned, vec![("t".to_string(), vec![3])]);
        assert_eq!(parse_subscription(&[0, 1, 0xff]), None);
    }
}
