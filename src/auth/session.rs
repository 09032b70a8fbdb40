//! The SASL state of one connection: handshake (mechanism choice), then one PLAIN step or two
//! SCRAM steps. While it is not authenticated, the connection serves only ApiVersions,
//! SaslHandshake and SaslAuthenticate.

use super::scram::{Mechanism, ScramServer};
use super::{Users, PLAIN};
use crate::error::code;
use std::sync::Arc;

/// Generic failure text: never says whether the user exists.
pub const AUTH_FAILED: &str = "Authentication failed: Invalid username or password";

#[derive(Debug)]
enum State {
    Start,
    Plain {
        raw: bool,
    },
    Scram {
        raw: bool,
        server: ScramServer,
        first_done: bool,
    },
    Authenticated,
    Failed,
}

/// Result of one SaslAuthenticate step.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this token and expect another.
    Continue(Vec<u8>),
    /// Authenticated; send this final token.
    Done(Vec<u8>),
    /// Authentication failed: send the error, then close.
    Fail(String),
}

#[derive(Debug)]
pub struct SaslSession {
    users: Arc<Users>,
    /// The connection came through a SASL listener.
    sasl: bool,
    state: State,
    pub principal: Option<String>,
}

impl SaslSession {
    /// A session of a connection on a SASL listener (`sasl`: SASL_PLAINTEXT, SASL_SSL) or not.
    pub fn new(users: Arc<Users>, sasl: bool) -> SaslSession {
        SaslSession {
            users,
            sasl,
            state: State::Start,
            principal: None,
        }
    }

    /// Does this connection still have to authenticate?
    pub fn required(&self) -> bool {
        self.sasl && self.users.enabled && !matches!(self.state, State::Authenticated)
    }

    /// After a v0 SaslHandshake, tokens come as raw length-prefixed frames.
    pub fn expects_raw_token(&self) -> bool {
        matches!(
            self.state,
            State::Plain { raw: true } | State::Scram { raw: true, .. }
        )
    }

    pub fn enabled_mechanisms(&self) -> Vec<String> {
        self.users.mechanisms.clone()
    }

    /// SaslHandshake: returns the error code (NONE, UNSUPPORTED_SASL_MECHANISM,
    /// ILLEGAL_SASL_STATE).
    pub fn handshake(&mut self, mechanism: &str, version: i16) -> i16 {
        if !self.sasl || !self.users.enabled || !matches!(self.state, State::Start) {
            return code::ILLEGAL_SASL_STATE;
        }
        if !self.users.mechanisms.iter().any(|m| m == mechanism) {
            return code::UNSUPPORTED_SASL_MECHANISM;
        }
        let raw = version == 0;
        self.state = if mechanism == PLAIN {
            State::Plain { raw }
        } else {
            match Mechanism::from_name(mechanism) {
                Some(m) => State::Scram {
                    raw,
                    server: ScramServer::new(m),
                    first_done: false,
                },
                None => return code::UNSUPPORTED_SASL_MECHANISM,
            }
        };
        code::NONE
    }

    /// One SaslAuthenticate step (or one raw token after a v0 handshake).
    pub fn authenticate(&mut self, token: &[u8]) -> Step {
        let users = self.users.clone();
        match std::mem::replace(&mut self.state, State::Failed) {
            State::Plain { .. } => {
                // [authzid] NUL authcid NUL passwd
                let parts: Vec<&[u8]> = token.split(|b| *b == 0).collect();
                if parts.len() != 3 {
                    return Step::Fail("Invalid SASL/PLAIN message".into());
                }
                let (Ok(user), Ok(pass)) =
                    (std::str::from_utf8(parts[1]), std::str::from_utf8(parts[2]))
                else {
                    return Step::Fail(AUTH_FAILED.into());
                };
                if !parts[0].is_empty() && parts[0] != parts[1] {
                    return Step::Fail("Authorization id must match the authentication id".into());
                }
                if users.check_plain(user, pass) {
                    self.state = State::Authenticated;
                    self.principal = Some(user.to_string());
                    Step::Done(Vec::new())
                } else {
                    Step::Fail(AUTH_FAILED.into())
                }
            }
            State::Scram {
                raw,
                mut server,
                first_done: false,
            } => {
                let mech = server.mechanism();
                match server.client_first(token, |u| users.scram(u, mech), users.secret()) {
                    Ok(reply) => {
                        self.state = State::Scram {
                            raw,
                            server,
                            first_done: true,
                        };
                        Step::Continue(reply)
                    }
                    Err(e) => Step::Fail(e.0),
                }
            }
            State::Scram { mut server, .. } => match server.client_final(token) {
                Ok((user, reply)) => {
                    self.state = State::Authenticated;
                    self.principal = Some(user);
                    Step::Done(reply)
                }
                Err(e) => Step::Fail(e.0),
            },
            State::Start | State::Authenticated | State::Failed => {
                Step::Fail("SaslAuthenticate is not expected now".into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::scram::{tests::client_final, ScramCredential};
    use crate::config::{AuthSettings, UserSettings};

    fn users() -> Arc<Users> {
        let cred = ScramCredential::derive(Mechanism::Sha512, "pw512", 4096, None);
        let a = AuthSettings {
            enabled: true,
            mechanism: "PLAIN".into(),
            mechanisms: vec!["PLAIN".into(), "SCRAM-SHA-512".into()],
            plain_username: "admin".into(),
            plain_password: "adminpw".into(),
            users: vec![UserSettings {
                username: "bob".into(),
                password: None,
                scram_sha_256: None,
                scram_sha_512: Some(cred.to_config_string()),
            }],
        };
        Arc::new(Users::from_settings(&a).unwrap())
    }

    #[test]
    fn plain_right_wrong_and_unknown() {
        let mut s = SaslSession::new(users(), true);
        assert!(s.required());
        assert_eq!(s.handshake("PLAIN", 1), 0);
        assert_eq!(s.authenticate(b"\0admin\0adminpw"), Step::Done(vec![]));
        assert!(!s.required());
        for bad in [&b"\0admin\0nope"[..], b"\0ghost\0adminpw"] {
            let mut s = SaslSession::new(users(), true);
            s.handshake("PLAIN", 1);
            assert_eq!(
                s.authenticate(bad),
                Step::Fail(AUTH_FAILED.into()),
                "same failure either way"
            );
        }
    }

    #[test]
    fn unknown_mechanism_and_illegal_state() {
        let mut s = SaslSession::new(users(), true);
        assert_eq!(s.handshake("GSSAPI", 1), code::UNSUPPORTED_SASL_MECHANISM);
        assert!(matches!(s.authenticate(b"x"), Step::Fail(_)));
        let mut s = SaslSession::new(users(), true);
        s.handshake("PLAIN", 0);
        assert!(s.expects_raw_token());
        assert_eq!(s.handshake("PLAIN", 1), code::ILLEGAL_SASL_STATE);
    }

    #[test]
    fn scram_two_steps() {
        let mut s = SaslSession::new(users(), true);
        assert_eq!(s.handshake("SCRAM-SHA-512", 1), 0);
        let bare = "n=bob,r=nonce1";
        let Step::Continue(sf) = s.authenticate(format!("n,,{bare}").as_bytes()) else {
            panic!()
        };
        let cf = client_final(
            Mechanism::Sha512,
            "bob",
            "pw512",
            bare,
            std::str::from_utf8(&sf).unwrap(),
        );
        assert!(matches!(s.authenticate(cf.as_bytes()), Step::Done(_)));
        assert_eq!(s.principal.as_deref(), Some("bob"));
    }
}
