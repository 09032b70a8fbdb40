//! Listeners as Kafka operators write them: `listeners` and `advertised_listeners` strings such
//! as `PLAINTEXT://0.0.0.0:9092,SASL_SSL://:9094`, parsed and resolved into what the accept
//! loops bind and what Metadata advertises on each. A listener's name is its security protocol
//! (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL), so each protocol appears at most once.
//!
//! Without `listeners`, `kafka_port` (on `bind_host`, advertised as `advertised_host` /
//! `advertised_port`) is one PLAINTEXT listener — SASL_PLAINTEXT when `auth.enabled`, as before
//! listeners existed.

use crate::config::Settings;

/// A listener's security protocol (Kafka's `SecurityProtocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl Protocol {
    pub fn parse(s: &str) -> Option<Protocol> {
        match s.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(Protocol::Plaintext),
            "SSL" => Some(Protocol::Ssl),
            "SASL_PLAINTEXT" => Some(Protocol::SaslPlaintext),
            "SASL_SSL" => Some(Protocol::SaslSsl),
            _ => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Protocol::Plaintext => "PLAINTEXT",
            Protocol::Ssl => "SSL",
            Protocol::SaslPlaintext => "SASL_PLAINTEXT",
            Protocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Connections are TLS.
    pub fn tls(&self) -> bool {
        matches!(self, Protocol::Ssl | Protocol::SaslSsl)
    }

    /// Clients authenticate with SASL before anything else.
    pub fn sasl(&self) -> bool {
        matches!(self, Protocol::SaslPlaintext | Protocol::SaslSsl)
    }
}

/// One `PROTOCOL://host:port` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub protocol: Protocol,
    /// Empty: every interface (binding) or unset (advertising).
    pub host: String,
    pub port: u16,
}

/// Parse a Kafka listener list. Hosts may be empty (`SSL://:9093`) or bracketed IPv6
/// (`PLAINTEXT://[::1]:9092`); each protocol may appear once.
pub fn parse(list: &str) -> Result<Vec<Endpoint>, String> {
    let mut out: Vec<Endpoint> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (proto, rest) = item
            .split_once("://")
            .ok_or_else(|| format!("'{item}' is not PROTOCOL://host:port"))?;
        let protocol = Protocol::parse(proto).ok_or_else(|| {
            format!(
                "'{proto}' is not a security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)"
            )
        })?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| format!("'{item}' has no port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port
            .parse()
            .map_err(|_| format!("'{port}' in '{item}' is not a port"))?;
        if out.iter().any(|e| e.protocol == protocol) {
            return Err(format!("{} is listed twice", protocol.name()));
        }
        out.push(Endpoint {
            protocol,
            host: host.to_string(),
            port,
        });
    }
    if out.is_empty() {
        return Err("no listener given".into());
    }
    Ok(out)
}

/// A listener as the broker runs it: where it binds and what it advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub protocol: Protocol,
    pub bind_host: String,
    /// 0: any free port (tests), fixed once bound.
    pub bind_port: u16,
    pub advertised_host: String,
    /// `None`: the bound port.
    pub advertised_port: Option<u16>,
}

impl Listener {
    pub fn name(&self) -> &'static str {
        self.protocol.name()
    }
}

/// The listeners the settings describe (validated by `Settings::validate`).
pub fn resolve(s: &Settings) -> Result<Vec<Listener>, String> {
    let Some(list) = s.listeners.as_deref().filter(|l| !l.trim().is_empty()) else {
        let protocol = if s.auth.enabled {
            Protocol::SaslPlaintext
        } else {
            Protocol::Plaintext
        };
        return Ok(vec![Listener {
            protocol,
            bind_host: s.bind_host.clone(),
            bind_port: s.kafka_port,
            advertised_host: s.advertised_host.clone(),
            advertised_port: s.advertised_port,
        }]);
    };
    let bound = parse(list)?;
    let advertised = match s.advertised_listeners.as_deref() {
        Some(a) if !a.trim().is_empty() => parse(a)?,
        _ => Vec::new(),
    };
    if let Some(a) = advertised
        .iter()
        .find(|a| !bound.iter().any(|b| b.protocol == a.protocol))
    {
        return Err(format!(
            "advertised listener {} has no listener of that name",
            a.protocol.name()
        ));
    }
    Ok(bound
        .into_iter()
        .map(|b| {
            let adv = advertised.iter().find(|a| a.protocol == b.protocol);
            let wildcard = b.host.is_empty() || b.host == "0.0.0.0" || b.host == "::";
            Listener {
                protocol: b.protocol,
                bind_host: if b.host.is_empty() {
                    "0.0.0.0".into()
                } else {
                    b.host.clone()
                },
                bind_port: b.port,
                advertised_host: match adv {
                    Some(a) if !a.host.is_empty() => a.host.clone(),
                    _ if wildcard => s.advertised_host.clone(),
                    _ => b.host.clone(),
                },
                advertised_port: adv.map(|a| a.port).or(if b.port == 0 {
                    None
                } else {
                    Some(b.port)
                }),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kafka_listener_lists() {
        let l = parse("PLAINTEXT://0.0.0.0:9092, SASL_SSL://:9094,ssl://[::1]:9093").unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(
            l[1],
            Endpoint {
                protocol: Protocol::SaslSsl,
                host: String::new(),
                port: 9094
            }
        );
        assert_eq!((l[2].protocol, l[2].host.as_str()), (Protocol::Ssl, "::1"));
        for bad in [
            "",
            "9092",
            "HTTP://x:1",
            "PLAINTEXT://x",
            "PLAINTEXT://x:99999",
            "SSL://a:1,SSL://b:2",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(Protocol::SaslSsl.tls() && Protocol::SaslSsl.sasl());
        assert!(!Protocol::Ssl.sasl() && !Protocol::SaslPlaintext.tls());
    }

    #[test]
    fn resolves_with_kafka_port_shorthand_and_advertised_listeners() {
        let mut s = Settings::default();
        let l = resolve(&s).unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(
            (l[0].protocol, l[0].bind_port, l[0].advertised_port),
            (Protocol::Plaintext, 9092, None)
        );
        s.auth.enabled = true;
        assert_eq!(resolve(&s).unwrap()[0].protocol, Protocol::SaslPlaintext);
        s.listeners = Some("PLAINTEXT://:9092,SSL://127.0.0.2:9093".into());
        s.advertised_listeners = Some("PLAINTEXT://kafka.example:19092".into());
        let l = resolve(&s).unwrap();
        assert_eq!(
            (
                l[0].bind_host.as_str(),
                l[0].advertised_host.as_str(),
                l[0].advertised_port
            ),
            ("0.0.0.0", "kafka.example", Some(19092))
        );
        assert_eq!(
            (l[1].advertised_host.as_str(), l[1].advertised_port),
            ("127.0.0.2", Some(9093))
        );
        s.advertised_listeners = Some("SASL_SSL://x:1".into());
        assert!(resolve(&s).is_err(), "advertised without a listener");
    }
}
