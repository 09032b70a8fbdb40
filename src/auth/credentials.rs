//! SCRAM credentials managed through the Kafka API (DescribeUserScramCredentials,
//! AlterUserScramCredentials) as a plain state machine: validation of a whole request with
//! Kafka's rules and error codes, the resulting credential set, and its persisted form (one
//! JSON document of `user → mechanism → "iterations:salt:stored_key:server_key"`, written to
//! the store before the change is answered or used).
//!
//! Managed credentials sit beside those of the configuration file: for a (user, mechanism)
//! both have, the managed one wins; deleting it brings the file's back.

use super::scram::{Mechanism, ScramCredential};
use std::collections::{BTreeMap, BTreeSet};

pub const RESOURCE_NOT_FOUND: i16 = 91;
pub const DUPLICATE_RESOURCE: i16 = 92;
pub const UNACCEPTABLE_CREDENTIAL: i16 = 93;
pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;

/// Kafka's bounds on SCRAM iterations.
pub const MIN_ITERATIONS: i32 = 4096;
pub const MAX_ITERATIONS: i32 = 16384;

/// Kafka's `ScramMechanism` ids.
pub fn mechanism_of(id: i8) -> Option<Mechanism> {
    match id {
        1 => Some(Mechanism::Sha256),
        2 => Some(Mechanism::Sha512),
        _ => None,
    }
}

pub fn id_of(m: Mechanism) -> i8 {
    match m {
        Mechanism::Sha256 => 1,
        Mechanism::Sha512 => 2,
    }
}

/// Managed credentials: user → mechanism name → credential.
pub type Credentials = BTreeMap<String, BTreeMap<String, ScramCredential>>;

/// One change of an AlterUserScramCredentials request.
#[derive(Debug, Clone)]
pub enum Change {
    Delete {
        user: String,
        mechanism: i8,
    },
    Upsert {
        user: String,
        mechanism: i8,
        iterations: i32,
        salt: Vec<u8>,
        salted_password: Vec<u8>,
    },
}

impl Change {
    fn user(&self) -> &str {
        match self {
            Change::Delete { user, .. } | Change::Upsert { user, .. } => user,
        }
    }

    fn mechanism(&self) -> i8 {
        match self {
            Change::Delete { mechanism, .. } | Change::Upsert { mechanism, .. } => *mechanism,
        }
    }
}

/// Apply a request to `current`: the new credential set and, per user (in request order), the
/// error code and message (0 and `None` when that user's changes were applied). A user with
/// any invalid change has none of its changes applied, as Kafka does.
pub fn apply(
    current: &Credentials,
    changes: &[Change],
) -> (Credentials, Vec<(String, i16, Option<String>)>) {
    let mut users: Vec<String> = Vec::new();
    for c in changes {
        if !users.iter().any(|u| u == c.user()) {
            users.push(c.user().to_string());
        }
    }
    let mut next = current.clone();
    let mut results = Vec::new();
    for user in users {
        let mine: Vec<&Change> = changes.iter().filter(|c| c.user() == user).collect();
        match check(current, &user, &mine) {
            Err((code, msg)) => results.push((user, code, Some(msg))),
            Ok(()) => {
                for c in mine {
                    let Some(m) = mechanism_of(c.mechanism()) else {
                        continue;
                    };
                    match c {
                        Change::Delete { .. } => {
                            if let Some(ms) = next.get_mut(&user) {
                                ms.remove(m.name());
                                if ms.is_empty() {
                                    next.remove(&user);
                                }
                            }
                        }
                        Change::Upsert {
                            iterations,
                            salt,
                            salted_password,
                            ..
                        } => {
                            let client_key = m.hmac(salted_password, b"Client Key");
                            let cred = ScramCredential {
                                iterations: *iterations as u32,
                                salt: salt.clone(),
                                stored_key: m.hash(&client_key),
                                server_key: m.hmac(salted_password, b"Server Key"),
                            };
                            next.entry(user.clone())
                                .or_default()
                                .insert(m.name().to_string(), cred);
                        }
                    }
                }
                results.push((user, 0, None));
            }
        }
    }
    (next, results)
}

fn check(current: &Credentials, user: &str, changes: &[&Change]) -> Result<(), (i16, String)> {
    if user.is_empty() {
        return Err((UNACCEPTABLE_CREDENTIAL, "Username must not be empty".into()));
    }
    let mut seen = BTreeSet::new();
    for c in changes {
        if !seen.insert(c.mechanism()) {
            return Err((
                DUPLICATE_RESOURCE,
                "A user credential cannot be altered twice in the same request".into(),
            ));
        }
        let Some(m) = mechanism_of(c.mechanism()) else {
            return Err((
                UNSUPPORTED_SASL_MECHANISM,
                format!("Unknown SCRAM mechanism {}", c.mechanism()),
            ));
        };
        match c {
            Change::Delete { .. } => {
                if !current
                    .get(user)
                    .is_some_and(|ms| ms.contains_key(m.name()))
                {
                    return Err((
                        RESOURCE_NOT_FOUND,
                        "Attempt to delete a user credential that does not exist".into(),
                    ));
                }
            }
            Change::Upsert {
                iterations,
                salt,
                salted_password,
                ..
            } => {
                if *iterations < MIN_ITERATIONS {
                    return Err((
                        UNACCEPTABLE_CREDENTIAL,
                        format!("Too few iterations: at least {MIN_ITERATIONS}"),
                    ));
                }
                if *iterations > MAX_ITERATIONS {
                    return Err((
                        UNACCEPTABLE_CREDENTIAL,
                        format!("Too many iterations: at most {MAX_ITERATIONS}"),
                    ));
                }
                if salt.is_empty() || salted_password.len() != m.hash_len() {
                    return Err((
                        UNACCEPTABLE_CREDENTIAL,
                        "The salt must not be empty and the salted password must be one hash long"
                            .into(),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The persisted form.
pub fn to_json(c: &Credentials) -> String {
    let doc: BTreeMap<&String, BTreeMap<&String, String>> = c
        .iter()
        .map(|(u, ms)| {
            (
                u,
                ms.iter().map(|(m, c)| (m, c.to_config_string())).collect(),
            )
        })
        .collect();
    serde_json::to_string(&doc).unwrap_or_else(|_| "{}".into())
}

pub fn from_json(s: &[u8]) -> Result<Credentials, String> {
    let doc: BTreeMap<String, BTreeMap<String, String>> =
        serde_json::from_slice(s).map_err(|e| format!("SCRAM credentials: {e}"))?;
    let mut out = Credentials::new();
    for (u, ms) in doc {
        for (m, c) in ms {
            if Mechanism::from_name(&m).is_none() {
                return Err(format!("SCRAM credentials of {u}: unknown mechanism {m}"));
            }
            let cred = ScramCredential::parse(&c)
                .map_err(|e| format!("SCRAM credentials of {u} ({m}): {e}"))?;
            out.entry(u.clone()).or_default().insert(m, cred);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert(user: &str, mechanism: i8, iterations: i32) -> Change {
        let m = mechanism_of(mechanism).unwrap_or(Mechanism::Sha256);
        Change::Upsert {
            user: user.into(),
            mechanism,
            iterations,
            salt: b"salt".to_vec(),
            salted_password: vec![7; m.hash_len()],
        }
    }

    #[test]
    fn upserts_deletes_and_kafka_errors() {
        let (c, r) = apply(
            &Credentials::new(),
            &[
                upsert("alice", 1, 4096),
                upsert("alice", 2, 8192),
                upsert("bob", 1, 100),
            ],
        );
        assert_eq!(r[0], ("alice".into(), 0, None));
        assert_eq!(r[1].1, UNACCEPTABLE_CREDENTIAL, "too few iterations");
        assert_eq!(c["alice"].len(), 2);
        assert!(!c.contains_key("bob"));
        // The stored credential is what a client deriving from the same salted password checks.
        let m = Mechanism::Sha256;
        let salted = vec![7; m.hash_len()];
        assert_eq!(
            c["alice"]["SCRAM-SHA-256"].server_key,
            m.hmac(&salted, b"Server Key")
        );
        let (c2, r) = apply(
            &c,
            &[
                Change::Delete {
                    user: "alice".into(),
                    mechanism: 1,
                },
                Change::Delete {
                    user: "carol".into(),
                    mechanism: 1,
                },
                upsert("dave", 1, 4096),
                upsert("dave", 1, 5000),
                upsert("", 1, 4096),
                upsert("erin", 3, 4096),
                upsert("frank", 2, 20000),
            ],
        );
        let codes: Vec<i16> = r.iter().map(|x| x.1).collect();
        assert_eq!(
            codes,
            vec![
                0,
                RESOURCE_NOT_FOUND,
                DUPLICATE_RESOURCE,
                UNACCEPTABLE_CREDENTIAL,
                UNSUPPORTED_SASL_MECHANISM,
                UNACCEPTABLE_CREDENTIAL
            ]
        );
        assert_eq!(
            c2["alice"].keys().collect::<Vec<_>>(),
            vec!["SCRAM-SHA-512"]
        );
        assert!(
            !c2.contains_key("dave"),
            "nothing of a user with an invalid change"
        );
        assert_eq!(from_json(to_json(&c2).as_bytes()).unwrap(), c2);
        assert!(from_json(b"{\"x\":{\"MD5\":\"1:AA==:AA==:AA==\"}}").is_err());
    }
}
