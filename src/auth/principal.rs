//! Who a connection is, for authorization: `User:ANONYMOUS` on PLAINTEXT listeners and on SSL
//! without a client certificate, `User:` + the SASL user after SASL authentication, and on SSL
//! listeners with mutual TLS `User:` + the client certificate's subject.
//!
//! The subject is written as Kafka's default principal builder writes it (Java's
//! `X500Principal.getName()`, RFC 2253): the RDNs most specific first, joined by `,`, values
//! of one RDN by `+`, the keywords CN, C, L, ST, O, OU, STREET, DC and UID, any other attribute
//! as its dotted OID and `#` + the hex of its DER encoding — e.g. `User:CN=alice,OU=eng,O=Acme`.
//! `authorization.ssl_principal: cn` takes the most specific common name alone (`User:alice`,
//! escaped as in the DN; the whole DN when there is no CN) — what an
//! `ssl.principal.mapping.rules` rule extracting the CN gives in Kafka.

use x509_cert::der::{Decode, Encode, Tag, Tagged};

/// RFC 2253's keywords (those Java writes by name).
const KEYWORDS: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// The principal of a client certificate (DER), by `rule` (`cn`, or `dn` for the whole
/// subject). `None` when the certificate cannot be parsed.
pub fn from_certificate(der: &[u8], rule: &str) -> Option<String> {
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let subject = &cert.tbs_certificate.subject;
    // (keyword or OID, value as RFC 2253 writes it), per RDN, most specific RDN first.
    let rdns: Vec<Vec<(String, String)>> = subject
        .0
        .iter()
        .rev()
        .map(|rdn| {
            rdn.0
                .iter()
                .map(|atv| {
                    let oid = atv.oid.to_string();
                    let keyword = KEYWORDS.iter().find(|(o, _)| *o == oid).map(|(_, k)| *k);
                    match (keyword, string_value(&atv.value)) {
                        (Some(k), Some(v)) => (k.to_string(), escape(&v)),
                        _ => {
                            let der = atv.value.to_der().unwrap_or_default();
                            (oid, format!("#{}", hex(&der)))
                        }
                    }
                })
                .collect()
        })
        .collect();
    if rule == "cn" {
        if let Some((_, cn)) = rdns.iter().flatten().find(|(k, _)| k == "CN") {
            return Some(format!("User:{cn}"));
        }
    }
    let dn = rdns
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect::<Vec<_>>()
        .join(",");
    Some(format!("User:{dn}"))
}

/// The text of a directory string (UTF8String, PrintableString, IA5String, TeletexString read
/// as Latin-1, BMPString as UTF-16); other types are written as hex, as Java does.
fn string_value(v: &x509_cert::der::Any) -> Option<String> {
    let bytes = v.value();
    match v.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String => {
            std::str::from_utf8(bytes).ok().map(String::from)
        }
        Tag::TeletexString => Some(bytes.iter().map(|&b| b as char).collect()),
        Tag::BmpString if bytes.len().is_multiple_of(2) => String::from_utf16(
            &bytes
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect::<Vec<_>>(),
        )
        .ok(),
        _ => None,
    }
}

/// Escaping as Java writes RFC 2253 names: `,=+<>#;"\` anywhere, and every leading and
/// trailing space.
fn escape(v: &str) -> String {
    let chars: Vec<char> = v.chars().collect();
    let lead = chars.iter().take_while(|c| **c == ' ').count();
    let trail = chars.iter().rev().take_while(|c| **c == ' ').count();
    let mut out = String::with_capacity(v.len());
    for (i, &c) in chars.iter().enumerate() {
        let edge_space = c == ' ' && (i < lead || i >= chars.len() - trail);
        if edge_space || matches!(c, ',' | '=' | '+' | '<' | '>' | '#' | ';' | '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `openssl req -x509 -subj "/C=US/O=Acme, Inc./OU=eng/CN=alice/emailAddress=a@x.io"`.
    const CERT: &[u8] = include_bytes!("../../tests/data/client-cert.der");

    #[test]
    fn subject_as_kafka_writes_it() {
        assert_eq!(
            from_certificate(CERT, "dn").unwrap(),
            "User:1.2.840.113549.1.9.1=#16066140782e696f,CN=alice,OU=eng,O=Acme\\, Inc.,C=US"
        );
        assert_eq!(
            from_certificate(CERT, "").unwrap(),
            from_certificate(CERT, "dn").unwrap()
        );
        assert_eq!(from_certificate(CERT, "cn").unwrap(), "User:alice");
        assert_eq!(from_certificate(b"not a certificate", "dn"), None);
        assert_eq!(from_certificate(&CERT[..CERT.len() / 2], "cn"), None);
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape("#x "), "\\#x\\ ");
        assert_eq!(escape("  a  b  "), "\\ \\ a  b\\ \\ ");
        assert_eq!(escape("a=b#c"), "a\\=b\\#c");
        assert_eq!(escape("plain"), "plain");
    }
}
