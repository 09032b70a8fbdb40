//! SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677) server side, and salted credentials.
//!
//! A stored credential is `<iterations>:<salt b64>:<stored key b64>:<server key b64>`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::{digest, hmac, pbkdf2};
use subtle::ConstantTimeEq;

/// Kafka's minimum SCRAM iteration count.
pub const MIN_ITERATIONS: u32 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Sha256,
    Sha512,
}

impl Mechanism {
    pub fn from_name(n: &str) -> Option<Mechanism> {
        match n {
            "SCRAM-SHA-256" => Some(Mechanism::Sha256),
            "SCRAM-SHA-512" => Some(Mechanism::Sha512),
            _ => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Mechanism::Sha256 => "SCRAM-SHA-256",
            Mechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn hmac_alg(&self) -> hmac::Algorithm {
        match self {
            Mechanism::Sha256 => hmac::HMAC_SHA256,
            Mechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest_alg(&self) -> &'static digest::Algorithm {
        match self {
            Mechanism::Sha256 => &digest::SHA256,
            Mechanism::Sha512 => &digest::SHA512,
        }
    }

    fn pbkdf2_alg(&self) -> pbkdf2::Algorithm {
        match self {
            Mechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            Mechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    pub fn hash_len(&self) -> usize {
        match self {
            Mechanism::Sha256 => 32,
            Mechanism::Sha512 => 64,
        }
    }

    pub fn hmac(&self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac_alg(), key), data)
            .as_ref()
            .to_vec()
    }

    pub fn hash(&self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest_alg(), data).as_ref().to_vec()
    }
}

pub fn sha256(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, data).as_ref().to_vec()
}

pub fn random_bytes(out: &mut [u8]) {
    use ring::rand::SecureRandom;
    let rng = ring::rand::SystemRandom::new();
    if rng.fill(out).is_err() {
        // Fall back to a hash of the time and an address: still unpredictable enough for nonces.
        let seed = format!("{:?}{:p}", std::time::SystemTime::now(), out);
        let h = sha256(seed.as_bytes());
        for (i, b) in out.iter_mut().enumerate() {
            *b = h[i % h.len()];
        }
    }
}

/// A salted SCRAM credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl ScramCredential {
    /// Derive a credential from a password (what `heraclitus scram-credential` prints).
    pub fn derive(
        m: Mechanism,
        password: &str,
        iterations: u32,
        salt: Option<Vec<u8>>,
    ) -> ScramCredential {
        let salt = salt.unwrap_or_else(|| {
            let mut s = vec![0u8; 24];
            random_bytes(&mut s);
            s
        });
        let iterations = iterations.max(MIN_ITERATIONS);
        let mut salted = vec![0u8; m.hash_len()];
        pbkdf2::derive(
            m.pbkdf2_alg(),
            std::num::NonZeroU32::new(iterations).unwrap_or(std::num::NonZeroU32::MIN),
            &salt,
            password.as_bytes(),
            &mut salted,
        );
        let client_key = m.hmac(&salted, b"Client Key");
        let server_key = m.hmac(&salted, b"Server Key");
        ScramCredential {
            iterations,
            salt,
            stored_key: m.hash(&client_key),
            server_key,
        }
    }

    pub fn to_config_string(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(&self.stored_key),
            B64.encode(&self.server_key)
        )
    }

    pub fn parse(s: &str) -> Result<ScramCredential, String> {
        let parts: Vec<&str> = s.trim().split(':').collect();
        if parts.len() != 4 {
            return Err("expected iterations:salt:stored_key:server_key".into());
        }
        let iterations: u32 = parts[0]
            .parse()
            .map_err(|_| "bad iteration count".to_string())?;
        if iterations < MIN_ITERATIONS {
            return Err(format!("iterations must be at least {MIN_ITERATIONS}"));
        }
        let d = |x: &str| B64.decode(x).map_err(|e| format!("bad base64: {e}"));
        Ok(ScramCredential {
            iterations,
            salt: d(parts[1])?,
            stored_key: d(parts[2])?,
            server_key: d(parts[3])?,
        })
    }
}

/// The server side of one SCRAM exchange.
#[derive(Debug)]
pub struct ScramServer {
    mech: Mechanism,
    /// Set after the client-first message: what the final step needs.
    pending: Option<Pending>,
}

#[derive(Debug)]
struct Pending {
    user: String,
    cred: Option<ScramCredential>,
    nonce: String,
    client_first_bare: String,
    server_first: String,
}

/// Why a SCRAM step failed (reported to clients without saying whether the user exists).
#[derive(Debug, PartialEq, Eq)]
pub struct ScramError(pub String);

fn unescape_user(u: &str) -> Result<String, ScramError> {
    let mut out = String::new();
    let mut it = u.chars();
    while let Some(c) = it.next() {
        if c == '=' {
            let a = it.next();
            let b = it.next();
            match (a, b) {
                (Some('2'), Some('C')) => out.push(','),
                (Some('3'), Some('D')) => out.push('='),
                _ => return Err(ScramError("invalid username encoding".into())),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

impl ScramServer {
    pub fn new(mech: Mechanism) -> ScramServer {
        ScramServer {
            mech,
            pending: None,
        }
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mech
    }

    /// Handle client-first; returns server-first. `lookup` finds the stored credential; for an
    /// unknown user a fake credential (salt keyed by `secret`) keeps the exchange identical.
    pub fn client_first(
        &mut self,
        msg: &[u8],
        lookup: impl Fn(&str) -> Option<ScramCredential>,
        secret: &[u8],
    ) -> Result<Vec<u8>, ScramError> {
        let msg =
            std::str::from_utf8(msg).map_err(|_| ScramError("client-first is not UTF-8".into()))?;
        // gs2-header: "n,," or "y,," (channel binding is not supported), optional "a=authzid".
        let mut parts = msg.splitn(3, ',');
        let cb = parts.next().unwrap_or_default();
        let _authz = parts.next().unwrap_or_default();
        let bare = parts
            .next()
            .ok_or_else(|| ScramError("malformed client-first".into()))?;
        if cb != "n" && cb != "y" {
            return Err(ScramError("channel binding is not supported".into()));
        }
        let mut user = None;
        let mut cnonce = None;
        for attr in bare.split(',') {
            if let Some(u) = attr.strip_prefix("n=") {
                user = Some(unescape_user(u)?);
            } else if let Some(r) = attr.strip_prefix("r=") {
                cnonce = Some(r.to_string());
            } else if attr.starts_with("m=") {
                return Err(ScramError("mandatory extensions are not supported".into()));
            }
        }
        let user = user.ok_or_else(|| ScramError("client-first lacks a username".into()))?;
        let cnonce = cnonce
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ScramError("client-first lacks a nonce".into()))?;
        let cred = lookup(&user);
        let (salt, iterations) = match &cred {
            Some(c) => (c.salt.clone(), c.iterations),
            None => (
                self.mech.hmac(secret, user.as_bytes())[..24.min(self.mech.hash_len())].to_vec(),
                MIN_ITERATIONS,
            ),
        };
        let mut snonce = [0u8; 18];
        random_bytes(&mut snonce);
        let nonce = format!("{cnonce}{}", B64.encode(snonce));
        let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(&salt));
        self.pending = Some(Pending {
            user,
            cred,
            nonce,
            client_first_bare: bare.to_string(),
            server_first: server_first.clone(),
        });
        Ok(server_first.into_bytes())
    }

    /// Handle client-final; returns (username, server-final) when the proof is right.
    pub fn client_final(&mut self, msg: &[u8]) -> Result<(String, Vec<u8>), ScramError> {
        let p = self
            .pending
            .take()
            .ok_or_else(|| ScramError("client-final before client-first".into()))?;
        let msg =
            std::str::from_utf8(msg).map_err(|_| ScramError("client-final is not UTF-8".into()))?;
        let (without_proof, proof) = msg
            .rsplit_once(",p=")
            .ok_or_else(|| ScramError("client-final lacks a proof".into()))?;
        let mut nonce = None;
        let mut cbind = None;
        for attr in without_proof.split(',') {
            if let Some(r) = attr.strip_prefix("r=") {
                nonce = Some(r);
            } else if let Some(c) = attr.strip_prefix("c=") {
                cbind = Some(c);
            }
        }
        if nonce != Some(p.nonce.as_str()) {
            return Err(ScramError("nonce mismatch".into()));
        }
        if cbind != Some("biws") && cbind != Some("eSws") {
            return Err(ScramError("invalid channel binding".into()));
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| ScramError("proof is not base64".into()))?;
        let auth_message = format!(
            "{},{},{}",
            p.client_first_bare, p.server_first, without_proof
        );
        let failed = ScramError("Authentication failed: Invalid username or password".into());
        let Some(cred) = p.cred else {
            return Err(failed);
        };
        let client_sig = self.mech.hmac(&cred.stored_key, auth_message.as_bytes());
        if proof.len() != client_sig.len() {
            return Err(failed);
        }
        let client_key: Vec<u8> = proof.iter().zip(&client_sig).map(|(a, b)| a ^ b).collect();
        let ok: bool = self.mech.hash(&client_key).ct_eq(&cred.stored_key).into();
        if !ok {
            return Err(failed);
        }
        let server_sig = self.mech.hmac(&cred.server_key, auth_message.as_bytes());
        Ok((p.user, format!("v={}", B64.encode(server_sig)).into_bytes()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A client side, for tests: returns (client-first, closure for client-final).
    pub fn client_final(
        m: Mechanism,
        user: &str,
        password: &str,
        client_first_bare: &str,
        server_first: &str,
    ) -> String {
        let attrs: Vec<&str> = server_first.split(',').collect();
        let nonce = &attrs[0][2..];
        let salt = B64.decode(&attrs[1][2..]).unwrap();
        let iters: u32 = attrs[2][2..].parse().unwrap();
        let cred_salted = {
            let mut out = vec![0u8; m.hash_len()];
            pbkdf2::derive(
                m.pbkdf2_alg(),
                std::num::NonZeroU32::new(iters).unwrap(),
                &salt,
                password.as_bytes(),
                &mut out,
            );
            out
        };
        let client_key = m.hmac(&cred_salted, b"Client Key");
        let stored = m.hash(&client_key);
        let without = format!("c=biws,r={nonce}");
        let auth = format!("{client_first_bare},{server_first},{without}");
        let sig = m.hmac(&stored, auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        let _ = user;
        format!("{without},p={}", B64.encode(proof))
    }

    #[test]
    fn scram_round_trip_both_mechanisms() {
        for m in [Mechanism::Sha256, Mechanism::Sha512] {
            let cred = ScramCredential::derive(m, "s3cret", 4096, None);
            let parsed = ScramCredential::parse(&cred.to_config_string()).unwrap();
            assert_eq!(parsed, cred);
            let mut s = ScramServer::new(m);
            let bare = "n=alice,r=abc123";
            let sf = s
                .client_first(
                    format!("n,,{bare}").as_bytes(),
                    |u| (u == "alice").then(|| cred.clone()),
                    b"k",
                )
                .unwrap();
            let sf = String::from_utf8(sf).unwrap();
            let cf = client_final(m, "alice", "s3cret", bare, &sf);
            let (user, fin) = s.client_final(cf.as_bytes()).unwrap();
            assert_eq!(user, "alice");
            assert!(fin.starts_with(b"v="));
            // Wrong password.
            let mut s = ScramServer::new(m);
            let sf = String::from_utf8(
                s.client_first(
                    format!("n,,{bare}").as_bytes(),
                    |_| Some(cred.clone()),
                    b"k",
                )
                .unwrap(),
            )
            .unwrap();
            let cf = client_final(m, "alice", "wrong", bare, &sf);
            assert!(s.client_final(cf.as_bytes()).is_err());
        }
    }

    #[test]
    fn unknown_user_looks_like_a_real_one_then_fails_the_same_way() {
        let m = Mechanism::Sha256;
        let mut s = ScramServer::new(m);
        let bare = "n=mallory,r=xyz";
        let sf = String::from_utf8(
            s.client_first(format!("n,,{bare}").as_bytes(), |_| None, b"k")
                .unwrap(),
        )
        .unwrap();
        assert!(sf.contains(",s=") && sf.contains(",i=4096"));
        let cf = client_final(m, "mallory", "pw", bare, &sf);
        assert_eq!(
            s.client_final(cf.as_bytes()).unwrap_err(),
            ScramError("Authentication failed: Invalid username or password".into())
        );
    }

    #[test]
    fn malformed_messages_are_errors() {
        let mut s = ScramServer::new(Mechanism::Sha256);
        assert!(s.client_first(b"p=tls,,n=a,r=b", |_| None, b"k").is_err());
        assert!(s.client_first(b"n,,n=a", |_| None, b"k").is_err());
        assert!(s.client_first(&[0xff, 0xfe], |_| None, b"k").is_err());
        assert!(s.client_final(b"c=biws,r=x,p=AAAA").is_err());
    }
}
