//! SASL authentication: the users and credentials from config ([`Users`]), PLAIN and
//! SCRAM-SHA-256/512 ([`scram`]), and the per-connection state machine ([`session`]).
//!
//! PLAIN passwords come from config as Kafka's JAAS files hold them; SCRAM credentials are stored
//! salted (`heraclitus scram-credential` prints one). Passwords are compared in constant time and
//! never logged; failures do not reveal whether the user exists.

pub mod scram;
pub mod session;

use crate::config::AuthSettings;
use scram::{Mechanism, ScramCredential};
use std::collections::HashMap;
use subtle::ConstantTimeEq;

/// Mechanism names as clients send them.
pub const PLAIN: &str = "PLAIN";

#[derive(Debug, Default)]
pub struct UserCreds {
    pub password: Option<String>,
    pub scram_sha_256: Option<ScramCredential>,
    pub scram_sha_512: Option<ScramCredential>,
}

/// Everything authentication needs, built once from config.
#[derive(Debug, Default)]
pub struct Users {
    pub enabled: bool,
    pub mechanisms: Vec<String>,
    users: HashMap<String, UserCreds>,
    /// Keys the fake salts of unknown SCRAM users, so they look like real ones.
    secret: Vec<u8>,
}

impl Users {
    pub fn from_settings(a: &AuthSettings) -> Result<Users, String> {
        let mut mechanisms: Vec<String> = if a.mechanisms.is_empty() {
            vec![a.mechanism.to_ascii_uppercase()]
        } else {
            a.mechanisms
                .iter()
                .map(|m| m.to_ascii_uppercase())
                .collect()
        };
        mechanisms.dedup();
        for m in &mechanisms {
            if m != PLAIN && Mechanism::from_name(m).is_none() {
                return Err(format!(
                    "auth.mechanism: unknown mechanism {m} (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"
                ));
            }
        }
        let mut users: HashMap<String, UserCreds> = HashMap::new();
        if !a.plain_username.is_empty() {
            users.entry(a.plain_username.clone()).or_default().password =
                Some(a.plain_password.clone());
        }
        for (i, u) in a.users.iter().enumerate() {
            if u.username.is_empty() {
                return Err(format!("auth.users[{i}].username: must not be empty"));
            }
            let e = users.entry(u.username.clone()).or_default();
            if let Some(p) = &u.password {
                e.password = Some(p.clone());
            }
            if let Some(c) = &u.scram_sha_256 {
                e.scram_sha_256 = Some(
                    ScramCredential::parse(c)
                        .map_err(|m| format!("auth.users[{i}].scram_sha_256: {m}"))?,
                );
            }
            if let Some(c) = &u.scram_sha_512 {
                e.scram_sha_512 = Some(
                    ScramCredential::parse(c)
                        .map_err(|m| format!("auth.users[{i}].scram_sha_512: {m}"))?,
                );
            }
        }
        if a.enabled && users.is_empty() {
            return Err(
                "auth.enabled: no users configured (auth.plain_username or auth.users)".into(),
            );
        }
        let mut secret = vec![0u8; 32];
        scram::random_bytes(&mut secret);
        Ok(Users {
            enabled: a.enabled,
            mechanisms,
            users,
            secret,
        })
    }

    /// Check a PLAIN username/password in constant time with respect to the password, doing the
    /// same work whether or not the user exists.
    pub fn check_plain(&self, user: &str, password: &str) -> bool {
        let stored = self.users.get(user).and_then(|u| u.password.as_deref());
        let dummy = "\u{0}no-such-user-password\u{0}";
        let candidate = stored.unwrap_or(dummy);
        let eq: bool = scram::sha256(candidate.as_bytes())
            .ct_eq(&scram::sha256(password.as_bytes()))
            .into();
        eq && stored.is_some()
    }

    pub fn scram(&self, user: &str, m: Mechanism) -> Option<&ScramCredential> {
        let u = self.users.get(user)?;
        match m {
            Mechanism::Sha256 => u.scram_sha_256.as_ref(),
            Mechanism::Sha512 => u.scram_sha_512.as_ref(),
        }
    }

    pub fn secret(&self) -> &[u8] {
        &self.secret
    }
}
