//! Group configs (ConfigResource type GROUP, Kafka 4): per-group overrides of the group
//! coordinator's settings, described with DescribeConfigs and changed with
//! IncrementalAlterConfigs / AlterConfigs as a Kafka 4.2 broker serves them.
//!
//! The names and defaults are Kafka's (`GroupConfig`): `consumer.session.timeout.ms` and
//! `consumer.heartbeat.interval.ms` apply to consumer-protocol (KIP-848) groups on each
//! member's next heartbeat; the `share.*` and `streams.*` ones are validated and kept for the
//! share and streams groups, which this broker does not serve yet. A group need not exist to
//! have configs. Values are range-checked against the broker's bounds (the `groups` settings;
//! Kafka's `group.consumer.min/max.*`), messages as Kafka 4.4 words them.
//!
//! The overrides are one document (`meta/group_configs.json` standalone, the `group_configs`
//! document of the metadata store in cluster mode), persisted before an alter is answered.

use crate::broker::topic::{ctype, source, ConfigEntry};
use crate::config::GroupSettings;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::time::Duration;

/// Group id → config name → value (only overridden names).
pub type GroupConfigs = BTreeMap<String, BTreeMap<String, String>>;

/// Kafka's `ConfigSource.GROUP_CONFIG` (shown by admin clients as DYNAMIC_GROUP_CONFIG).
pub const GROUP_CONFIG_SOURCE: i8 = 8;

/// Most groups that may have overrides: the document is rewritten whole on each change, so a
/// client allowed to alter configs must not grow it without bound.
pub const MAX_GROUPS_WITH_CONFIGS: usize = 10_000;

/// Largest overrides document (group ids are not length-limited by Kafka, values are).
pub const MAX_DOCUMENT_BYTES: usize = 16 << 20;

/// Refuse a next set of overrides beyond [`MAX_GROUPS_WITH_CONFIGS`] groups or
/// [`MAX_DOCUMENT_BYTES`].
pub fn check_size(next: &GroupConfigs) -> Result<()> {
    if next.len() > MAX_GROUPS_WITH_CONFIGS {
        return Err(Error::InvalidRequest(format!(
            "at most {MAX_GROUPS_WITH_CONFIGS} groups may have config overrides"
        )));
    }
    let bytes: usize = next
        .iter()
        .map(|(g, own)| g.len() + own.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>())
        .sum();
    if bytes > MAX_DOCUMENT_BYTES {
        return Err(Error::InvalidRequest(format!(
            "group config overrides may take at most {MAX_DOCUMENT_BYTES} bytes"
        )));
    }
    Ok(())
}

/// The longest config value Kafka stores.
const MAX_VALUE_BYTES: usize = 32_767;

/// How a config's value is checked.
enum Kind {
    /// An INT within bounds (inclusive).
    Int(i64, i64),
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// `share.auto.offset.reset`: latest, earliest or `by_duration:<ISO-8601 duration>`.
    AutoOffsetReset,
}

struct Def {
    name: &'static str,
    default: String,
    kind: Kind,
    doc: &'static str,
}

/// Broker bounds of the share and streams group settings (Kafka's defaults; those groups do
/// not exist here yet, so their bounds are not configurable).
const SHARE_SESSION: (i64, i64) = (45_000, 60_000);
const SHARE_HEARTBEAT: (i64, i64) = (5_000, 15_000);
const SHARE_RECORD_LOCK: (i64, i64) = (15_000, 60_000);
const STREAMS_SESSION: (i64, i64) = (45_000, 60_000);
const STREAMS_HEARTBEAT: (i64, i64) = (5_000, 15_000);
const STREAMS_MAX_STANDBY: i64 = 2;

/// A range that always holds the broker's own default (an operator who sets
/// `groups.consumer_heartbeat_interval_ms: 500` for tests keeps it valid for groups too).
fn around(min: u64, max: u64, default: u64) -> Kind {
    Kind::Int(min.min(default) as i64, max.max(default) as i64)
}

fn defs(s: &GroupSettings) -> Vec<Def> {
    vec![
        Def {
            name: "consumer.session.timeout.ms",
            default: s.consumer_session_timeout_ms.to_string(),
            kind: around(
                s.consumer_min_session_timeout_ms,
                s.consumer_max_session_timeout_ms,
                s.consumer_session_timeout_ms,
            ),
            doc: "The timeout to detect client failures when using the consumer group protocol.",
        },
        Def {
            name: "consumer.heartbeat.interval.ms",
            default: s.consumer_heartbeat_interval_ms.to_string(),
            kind: around(
                s.consumer_min_heartbeat_interval_ms,
                s.consumer_max_heartbeat_interval_ms,
                s.consumer_heartbeat_interval_ms,
            ),
            doc: "The heartbeat interval given to the members of a consumer group.",
        },
        Def {
            name: "share.session.timeout.ms",
            default: "45000".into(),
            kind: Kind::Int(SHARE_SESSION.0, SHARE_SESSION.1),
            doc: "The timeout to detect client failures when using the share group protocol.",
        },
        Def {
            name: "share.heartbeat.interval.ms",
            default: "5000".into(),
            kind: Kind::Int(SHARE_HEARTBEAT.0, SHARE_HEARTBEAT.1),
            doc: "The heartbeat interval given to the members of a share group.",
        },
        Def {
            name: "share.record.lock.duration.ms",
            default: "30000".into(),
            kind: Kind::Int(SHARE_RECORD_LOCK.0, SHARE_RECORD_LOCK.1),
            doc: "The record acquisition lock duration in milliseconds for share groups.",
        },
        Def {
            name: "share.auto.offset.reset",
            default: "latest".into(),
            kind: Kind::AutoOffsetReset,
            doc: "The strategy to initialize the share-partition start offset.",
        },
        Def {
            name: "share.isolation.level",
            default: "read_uncommitted".into(),
            kind: Kind::OneOf(&["read_committed", "read_uncommitted"]),
            doc: "Controls how to read records written transactionally.",
        },
        Def {
            name: "streams.session.timeout.ms",
            default: "45000".into(),
            kind: Kind::Int(STREAMS_SESSION.0, STREAMS_SESSION.1),
            doc: "The timeout to detect client failures when using the streams group protocol.",
        },
        Def {
            name: "streams.heartbeat.interval.ms",
            default: "5000".into(),
            kind: Kind::Int(STREAMS_HEARTBEAT.0, STREAMS_HEARTBEAT.1),
            doc: "The heartbeat interval given to the members of a streams group.",
        },
        Def {
            name: "streams.num.standby.replicas",
            default: "0".into(),
            kind: Kind::Int(0, STREAMS_MAX_STANDBY),
            doc: "The number of standby replicas for each task.",
        },
        Def {
            name: "streams.initial.rebalance.delay.ms",
            default: "3000".into(),
            kind: Kind::Int(0, i32::MAX as i64),
            doc: "The amount of time the group coordinator will wait for more streams clients to join a new group before performing the first rebalance.",
        },
    ]
}

/// DescribeConfigs of one group: every group config, overridden (source GROUP_CONFIG) or at
/// the broker's value (DEFAULT_CONFIG), as Kafka 4.2 answers them.
pub fn describe(
    s: &GroupSettings,
    overrides: Option<&BTreeMap<String, String>>,
) -> Vec<ConfigEntry> {
    defs(s)
        .into_iter()
        .map(|d| {
            let own = overrides.and_then(|o| o.get(d.name));
            ConfigEntry {
                name: d.name.to_string(),
                value: own.cloned().unwrap_or(d.default),
                source: if own.is_some() {
                    GROUP_CONFIG_SOURCE
                } else {
                    source::DEFAULT_CONFIG
                },
                read_only: false,
                config_type: match d.kind {
                    Kind::Int(..) => ctype::INT,
                    _ => ctype::STRING,
                },
                doc: d.doc,
                default: None,
            }
        })
        .collect()
}

/// Is `v` an ISO-8601 duration as Java's `Duration.parse` reads it (`PnDTnHnMn.nS`, sign
/// allowed)? Kafka refuses negative durations for `by_duration:`.
fn iso_duration(v: &str) -> bool {
    let v = v.strip_prefix('+').unwrap_or(v);
    if v.starts_with('-') {
        return false;
    }
    let Some(rest) = v.strip_prefix('P').or_else(|| v.strip_prefix('p')) else {
        return false;
    };
    let (days, time) = match rest.find(['T', 't']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let number = |s: &str, fraction: bool| {
        let s = s.strip_prefix(['+', '-']).unwrap_or(s);
        let mut parts = s.splitn(2, '.');
        let whole = parts.next().unwrap_or("");
        let frac = parts.next();
        !whole.is_empty()
            && whole.bytes().all(|b| b.is_ascii_digit())
            && frac.is_none_or(|f| {
                fraction && !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit())
            })
    };
    let mut any = false;
    if !days.is_empty() {
        let Some(n) = days.strip_suffix(['D', 'd']) else {
            return false;
        };
        if !number(n, false) {
            return false;
        }
        any = true;
    }
    if let Some(mut t) = time {
        if t.is_empty() {
            return false;
        }
        for unit in ['H', 'M', 'S'] {
            if let Some(i) = t.find([unit, unit.to_ascii_lowercase()]) {
                if !number(&t[..i], unit == 'S') {
                    return false;
                }
                t = &t[i + 1..];
                any = true;
            }
        }
        if !t.is_empty() {
            return false;
        }
    }
    any
}

/// Check one config's value.
fn check(d: &Def, value: &str) -> Result<()> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(Error::InvalidConfig(format!(
            "The configuration value cannot be added because it exceeds the maximum value size of {MAX_VALUE_BYTES} bytes."
        )));
    }
    match &d.kind {
        Kind::Int(min, max) => {
            let n: i64 = value
                .trim()
                .parse()
                .ok()
                .filter(|n| *n >= i32::MIN as i64 && *n <= i32::MAX as i64)
                .ok_or_else(|| {
                    Error::InvalidConfig(format!(
                        "Invalid value {value} for configuration {}: Not a number of type INT",
                        d.name
                    ))
                })?;
            if n < *min || n > *max {
                return Err(Error::InvalidConfig(format!(
                    "{} must be in the range {min} to {max} inclusive.",
                    d.name
                )));
            }
        }
        Kind::OneOf(values) => {
            if !values.contains(&value) {
                return Err(Error::InvalidConfig(format!(
                    "Invalid value {value} for configuration {}: String must be one of: {}",
                    d.name,
                    values.join(", ")
                )));
            }
        }
        Kind::AutoOffsetReset => {
            let ok = match value {
                "latest" | "earliest" => true,
                v => v.strip_prefix("by_duration:").is_some_and(iso_duration),
            };
            if !ok {
                return Err(Error::InvalidConfig(format!(
                    "Invalid value {value} for configuration {}: Invalid value `{value}` for configuration share.auto.offset.reset. The value must be either 'earliest', 'latest' or of the format 'by_duration:<PnDTnHnMn.nS.>'.",
                    d.name
                )));
            }
        }
    }
    Ok(())
}

/// Validate a group's whole set of overrides after an alter: names known, values in range,
/// and each session timeout above its heartbeat interval (the missing side at the broker's
/// value).
pub fn validate(s: &GroupSettings, configs: &BTreeMap<String, String>) -> Result<()> {
    let defs = defs(s);
    for (name, value) in configs {
        let d = defs
            .iter()
            .find(|d| d.name == name)
            .ok_or_else(|| Error::InvalidConfig(format!("Unknown group config name: {name}")))?;
        check(d, value)?;
    }
    let value = |name: &str| -> i64 {
        configs
            .get(name)
            .cloned()
            .or_else(|| {
                defs.iter()
                    .find(|d| d.name == name)
                    .map(|d| d.default.clone())
            })
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    for kind in ["consumer", "share", "streams"] {
        let session = format!("{kind}.session.timeout.ms");
        let heartbeat = format!("{kind}.heartbeat.interval.ms");
        let touched = configs.contains_key(&session) || configs.contains_key(&heartbeat);
        if touched && value(&session) <= value(&heartbeat) {
            return Err(Error::InvalidConfig(format!(
                "{session} must be greater than {heartbeat}"
            )));
        }
    }
    Ok(())
}

/// The session timeout and heartbeat interval of a consumer-protocol group: its overrides,
/// else the broker's settings.
pub fn consumer_timeouts(
    s: &GroupSettings,
    overrides: Option<&BTreeMap<String, String>>,
) -> (Duration, Duration) {
    let get = |name: &str, default: u64| {
        overrides
            .and_then(|o| o.get(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(default)
    };
    (
        Duration::from_millis(get(
            "consumer.session.timeout.ms",
            s.consumer_session_timeout_ms,
        )),
        Duration::from_millis(get(
            "consumer.heartbeat.interval.ms",
            s.consumer_heartbeat_interval_ms,
        )),
    )
}

pub fn to_json(c: &GroupConfigs) -> String {
    serde_json::to_string(c).unwrap_or_else(|_| "{}".into())
}

pub fn from_json(doc: &[u8]) -> std::result::Result<GroupConfigs, String> {
    serde_json::from_slice(doc).map_err(|e| format!("group configs document: {e}"))
}

/// The broker's current group configs, swapped whole on every change.
#[derive(Debug, Default)]
pub struct GroupConfigStore {
    current: std::sync::RwLock<std::sync::Arc<GroupConfigs>>,
}

impl GroupConfigStore {
    pub fn get(&self) -> std::sync::Arc<GroupConfigs> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set(&self, c: GroupConfigs) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = std::sync::Arc::new(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_and_overrides_are_described_with_their_sources() {
        let s = GroupSettings::default();
        let all = describe(&s, None);
        assert_eq!(all.len(), 11);
        let session = all
            .iter()
            .find(|e| e.name == "consumer.session.timeout.ms")
            .unwrap();
        assert_eq!(
            (session.value.as_str(), session.source, session.read_only),
            ("45000", source::DEFAULT_CONFIG, false)
        );
        let o = map(&[("consumer.session.timeout.ms", "50000")]);
        let e = describe(&s, Some(&o))
            .into_iter()
            .find(|e| e.name == "consumer.session.timeout.ms")
            .unwrap();
        assert_eq!((e.value.as_str(), e.source), ("50000", GROUP_CONFIG_SOURCE));
    }

    #[test]
    fn values_are_checked_as_kafka_checks_them() {
        let s = GroupSettings::default();
        let err = |kv: &[(&str, &str)]| match validate(&s, &map(kv)) {
            Err(Error::InvalidConfig(m)) => m,
            r => panic!("{r:?}"),
        };
        assert!(validate(&s, &map(&[("consumer.session.timeout.ms", "60000")])).is_ok());
        assert_eq!(
            err(&[("consumer.session.timeout.ms", "1000")]),
            "consumer.session.timeout.ms must be in the range 45000 to 60000 inclusive."
        );
        assert_eq!(err(&[("nope", "1")]), "Unknown group config name: nope");
        assert!(
            err(&[("consumer.heartbeat.interval.ms", "abc")]).contains("Not a number of type INT")
        );
        assert!(err(&[("consumer.heartbeat.interval.ms", "99999999999")]).contains("INT"));
        assert!(err(&[("share.isolation.level", "dirty")]).contains("read_committed"));
        for ok in [
            "latest",
            "earliest",
            "by_duration:PT1H",
            "by_duration:P1DT2H3M4.5S",
        ] {
            assert!(
                validate(&s, &map(&[("share.auto.offset.reset", ok)])).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "newest",
            "by_duration:",
            "by_duration:-PT1H",
            "by_duration:P",
            "by_duration:PT",
        ] {
            assert!(
                validate(&s, &map(&[("share.auto.offset.reset", bad)])).is_err(),
                "{bad}"
            );
        }
        let long = "x".repeat(MAX_VALUE_BYTES + 1);
        assert!(err(&[("share.auto.offset.reset", &long)]).contains("maximum value size"));
    }

    #[test]
    fn a_session_timeout_must_exceed_the_heartbeat_interval() {
        let s = GroupSettings {
            consumer_max_heartbeat_interval_ms: 60_000,
            ..Default::default()
        };
        assert!(validate(&s, &map(&[("consumer.heartbeat.interval.ms", "45000")])).is_err());
        assert!(validate(&s, &map(&[("consumer.heartbeat.interval.ms", "44999")])).is_ok());
    }

    #[test]
    fn the_broker_default_stays_within_the_bounds() {
        let s = GroupSettings {
            consumer_heartbeat_interval_ms: 500,
            consumer_session_timeout_ms: 6_000,
            ..Default::default()
        };
        assert!(validate(&s, &map(&[("consumer.heartbeat.interval.ms", "500")])).is_ok());
        assert!(validate(&s, &map(&[("consumer.session.timeout.ms", "6000")])).is_ok());
        assert!(validate(&s, &map(&[("consumer.session.timeout.ms", "5999")])).is_err());
    }

    #[test]
    fn consumer_timeouts_come_from_the_overrides() {
        let s = GroupSettings::default();
        assert_eq!(
            consumer_timeouts(&s, None),
            (Duration::from_secs(45), Duration::from_secs(5))
        );
        let o = map(&[("consumer.heartbeat.interval.ms", "7000")]);
        assert_eq!(
            consumer_timeouts(&s, Some(&o)),
            (Duration::from_secs(45), Duration::from_secs(7))
        );
    }

    #[test]
    fn the_document_is_bounded() {
        let mut c = GroupConfigs::new();
        c.insert("g".repeat(MAX_DOCUMENT_BYTES), BTreeMap::new());
        assert!(check_size(&c).is_ok());
        c.insert("h".into(), map(&[("share.auto.offset.reset", "latest")]));
        assert!(check_size(&c).is_err());
        let many: GroupConfigs = (0..=MAX_GROUPS_WITH_CONFIGS)
            .map(|i| (i.to_string(), BTreeMap::new()))
            .collect();
        assert!(check_size(&many).is_err());
    }

    #[test]
    fn the_document_round_trips() {
        let mut c = GroupConfigs::new();
        c.insert("g".into(), map(&[("consumer.session.timeout.ms", "50000")]));
        assert_eq!(from_json(to_json(&c).as_bytes()).unwrap(), c);
        assert!(from_json(b"[").is_err());
    }
}
