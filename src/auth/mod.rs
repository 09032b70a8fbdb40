//! SASL authentication: the users and credentials from config ([`Users`]), PLAIN and
//! SCRAM-SHA-256/512 ([`scram`]), and the per-connection state machine ([`session`]).
//!
//! PLAIN passwords come from config as Kafka's JAAS files hold them; SCRAM credentials are stored
//! salted (`heraclitus scram-credential` prints one). Passwords are compared in constant time and
//! never logged; failures do not reveal whether the user exists.

pub mod acl;
pub mod credentials;
pub mod principal;
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
    /// SCRAM credentials managed through AlterUserScramCredentials (persisted by the broker);
    /// they win over the file's for the same user and mechanism.
    managed: std::sync::RwLock<credentials::Credentials>,
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
            managed: Default::default(),
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

    /// The SCRAM credential of a user: the managed one, else the configuration file's.
    pub fn scram(&self, user: &str, m: Mechanism) -> Option<ScramCredential> {
        if let Some(c) = self
            .managed
            .read()
            .ok()
            .and_then(|d| d.get(user).and_then(|ms| ms.get(m.name())).cloned())
        {
            return Some(c);
        }
        let u = self.users.get(user)?;
        match m {
            Mechanism::Sha256 => u.scram_sha_256.clone(),
            Mechanism::Sha512 => u.scram_sha_512.clone(),
        }
    }

    /// The managed SCRAM credentials.
    pub fn managed(&self) -> credentials::Credentials {
        self.managed.read().map(|d| d.clone()).unwrap_or_default()
    }

    /// Replace the managed credentials (after they were persisted).
    pub fn set_managed(&self, c: credentials::Credentials) {
        if let Ok(mut d) = self.managed.write() {
            *d = c;
        }
    }

    /// Every user with a SCRAM credential, managed or from the file: user → [(mechanism,
    /// iterations)].
    pub fn scram_users(&self) -> std::collections::BTreeMap<String, Vec<(Mechanism, u32)>> {
        let mut out: std::collections::BTreeMap<String, Vec<(Mechanism, u32)>> = Default::default();
        for m in [Mechanism::Sha256, Mechanism::Sha512] {
            let mut names: Vec<String> = self.users.keys().cloned().collect();
            names.extend(self.managed().keys().cloned());
            names.sort();
            names.dedup();
            for u in names {
                if let Some(c) = self.scram(&u, m) {
                    out.entry(u).or_default().push((m, c.iterations));
                }
            }
        }
        out
    }

    pub fn secret(&self) -> &[u8] {
        &self.secret
    }
}
