//! ACL authorization as a plain state machine: Kafka's ACL model (resource patterns, principals,
//! hosts, operations, ALLOW/DENY), the decision Kafka's standard authorizer makes for one
//! action, the binding filters of DescribeAcls/DeleteAcls (ANY and MATCH), validation of new
//! bindings with Kafka's rules, and the persisted form (one JSON document, written to the store
//! before a change is answered or used).
//!
//! The decision, as Kafka's `StandardAuthorizer` makes it:
//! 1. a super user may do anything;
//! 2. the ACLs that apply to a resource are those whose pattern matches it — LITERAL with its
//!    name or the wildcard `*`, PREFIXED with a prefix of its name;
//! 3. a DENY for the principal (or `User:*`), the host (or `*`) and the operation (or ALL) wins;
//! 4. otherwise an ALLOW for the operation, ALL, or an operation that implies it (DESCRIBE is
//!    implied by READ, WRITE, DELETE and ALTER; DESCRIBE_CONFIGS by ALTER_CONFIGS) allows;
//! 5. a resource no ACL applies to at all is allowed only with
//!    `allow_everyone_if_no_acl_found`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Kafka's `ResourceType` codes.
pub mod resource {
    pub const UNKNOWN: i8 = 0;
    pub const ANY: i8 = 1;
    pub const TOPIC: i8 = 2;
    pub const GROUP: i8 = 3;
    pub const CLUSTER: i8 = 4;
    pub const TRANSACTIONAL_ID: i8 = 5;
    pub const DELEGATION_TOKEN: i8 = 6;
    pub const USER: i8 = 7;
}

/// Kafka's `PatternType` codes.
pub mod pattern {
    pub const UNKNOWN: i8 = 0;
    pub const ANY: i8 = 1;
    pub const MATCH: i8 = 2;
    pub const LITERAL: i8 = 3;
    pub const PREFIXED: i8 = 4;
}

/// Kafka's `AclOperation` codes.
pub mod op {
    pub const UNKNOWN: i8 = 0;
    pub const ANY: i8 = 1;
    pub const ALL: i8 = 2;
    pub const READ: i8 = 3;
    pub const WRITE: i8 = 4;
    pub const CREATE: i8 = 5;
    pub const DELETE: i8 = 6;
    pub const ALTER: i8 = 7;
    pub const DESCRIBE: i8 = 8;
    pub const CLUSTER_ACTION: i8 = 9;
    pub const DESCRIBE_CONFIGS: i8 = 10;
    pub const ALTER_CONFIGS: i8 = 11;
    pub const IDEMPOTENT_WRITE: i8 = 12;
    pub const CREATE_TOKENS: i8 = 13;
    pub const DESCRIBE_TOKENS: i8 = 14;
}

/// Kafka's `AclPermissionType` codes.
pub mod permission {
    pub const UNKNOWN: i8 = 0;
    pub const ANY: i8 = 1;
    pub const DENY: i8 = 2;
    pub const ALLOW: i8 = 3;
}

/// The one name a CLUSTER resource has.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// The wildcard resource name, principal (`User:*`) and host.
pub const WILDCARD: &str = "*";
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// The principal of a client that did not authenticate.
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// A client address as Kafka writes ACL hosts (Java's `InetAddress.getHostAddress`): IPv4
/// dotted (also for IPv4-mapped IPv6), IPv6 as eight lower-case hex groups without `::`.
pub fn host_of(ip: std::net::IpAddr) -> String {
    match ip.to_canonical() {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => v6
            .segments()
            .iter()
            .map(|g| format!("{g:x}"))
            .collect::<Vec<_>>()
            .join(":"),
    }
}

/// The operations Kafka reports in `*_authorized_operations`, per resource type.
pub fn operations_of(resource_type: i8) -> &'static [i8] {
    use op::*;
    match resource_type {
        resource::TOPIC => &[
            READ,
            WRITE,
            CREATE,
            DELETE,
            ALTER,
            DESCRIBE,
            DESCRIBE_CONFIGS,
            ALTER_CONFIGS,
        ],
        // Kafka 4 (group configs, KIP-848): DESCRIBE_CONFIGS and ALTER_CONFIGS too.
        resource::GROUP => &[READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS],
        resource::CLUSTER => &[
            CREATE,
            ALTER,
            DESCRIBE,
            CLUSTER_ACTION,
            DESCRIBE_CONFIGS,
            ALTER_CONFIGS,
            IDEMPOTENT_WRITE,
        ],
        resource::TRANSACTIONAL_ID => &[WRITE, DESCRIBE],
        _ => &[],
    }
}

/// One ACL binding: a resource pattern and an access control entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Binding {
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission: i8,
}

impl Binding {
    /// Does this binding's pattern apply to the resource `(resource_type, name)`?
    fn applies_to(&self, resource_type: i8, name: &str) -> bool {
        self.resource_type == resource_type
            && match self.pattern_type {
                pattern::LITERAL => self.resource_name == name || self.resource_name == WILDCARD,
                pattern::PREFIXED => name.starts_with(self.resource_name.as_str()),
                _ => false,
            }
    }

    fn for_principal_and_host(&self, principal: &str, host: &str) -> bool {
        (self.principal == principal || self.principal == WILDCARD_PRINCIPAL)
            && (self.host == host || self.host == WILDCARD)
    }
}

/// A DescribeAcls/DeleteAcls filter. `None` strings match anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub resource_type: i8,
    pub resource_name: Option<String>,
    pub pattern_type: i8,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: i8,
    pub permission: i8,
}

impl Filter {
    /// Kafka's `AclBindingFilter.matches`.
    pub fn matches(&self, b: &Binding) -> bool {
        self.matches_pattern(b)
            && self.principal.as_ref().is_none_or(|p| *p == b.principal)
            && self.host.as_ref().is_none_or(|h| *h == b.host)
            && (self.operation == op::ANY || self.operation == b.operation)
            && (self.permission == permission::ANY || self.permission == b.permission)
    }

    fn matches_pattern(&self, b: &Binding) -> bool {
        if self.resource_type != resource::ANY && self.resource_type != b.resource_type {
            return false;
        }
        if self.pattern_type != pattern::ANY
            && self.pattern_type != pattern::MATCH
            && self.pattern_type != b.pattern_type
        {
            return false;
        }
        let Some(name) = &self.resource_name else {
            return true;
        };
        if self.pattern_type == pattern::ANY || self.pattern_type == b.pattern_type {
            return *name == b.resource_name;
        }
        // MATCH: the bindings that would apply to a resource of this name.
        match b.pattern_type {
            pattern::LITERAL => *name == b.resource_name || b.resource_name == WILDCARD,
            pattern::PREFIXED => name.starts_with(b.resource_name.as_str()),
            _ => false,
        }
    }

    /// Why Kafka would refuse this filter (INVALID_REQUEST), if it would.
    pub fn invalid(&self) -> Option<&'static str> {
        if self.resource_type == resource::UNKNOWN
            || self.pattern_type == pattern::UNKNOWN
            || self.operation == op::UNKNOWN
            || self.permission == permission::UNKNOWN
        {
            return Some("The filter contains an UNKNOWN element.");
        }
        if !(resource::ANY..=resource::USER).contains(&self.resource_type)
            || !(pattern::ANY..=pattern::PREFIXED).contains(&self.pattern_type)
            || !(op::ANY..=op::DESCRIBE_TOKENS).contains(&self.operation)
            || !(permission::ANY..=permission::ALLOW).contains(&self.permission)
        {
            return Some("The filter contains an invalid enum value.");
        }
        None
    }
}

/// Why Kafka would refuse to create this binding (INVALID_REQUEST), if it would.
pub fn invalid_binding(b: &Binding) -> Option<String> {
    if !(resource::TOPIC..=resource::USER).contains(&b.resource_type) {
        return Some(format!("Invalid resource type {}", b.resource_type));
    }
    if b.pattern_type != pattern::LITERAL && b.pattern_type != pattern::PREFIXED {
        return Some(format!("Invalid patternType {}", b.pattern_type));
    }
    if !(op::ALL..=op::DESCRIBE_TOKENS).contains(&b.operation) {
        return Some(format!("Invalid operation {}", b.operation));
    }
    if b.permission != permission::ALLOW && b.permission != permission::DENY {
        return Some(format!("Invalid permissionType {}", b.permission));
    }
    if b.resource_name.is_empty() {
        return Some("Resource name should not be empty".into());
    }
    if b.resource_type == resource::CLUSTER && b.resource_name != CLUSTER_NAME {
        return Some(format!(
            "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
        ));
    }
    match b.principal.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
        _ => return Some(format!("Could not parse principal {}", b.principal)),
    }
    if b.host.is_empty() {
        return Some("Host should not be empty".into());
    }
    None
}

/// The authorizer's configuration.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub super_users: BTreeSet<String>,
    pub allow_everyone_if_no_acl_found: bool,
}

/// The ACL set.
pub type Acls = BTreeSet<Binding>;

/// May `principal` from `host` perform `operation` on the resource `(resource_type, name)`?
pub fn authorize(
    acls: &Acls,
    policy: &Policy,
    principal: &str,
    host: &str,
    operation: i8,
    resource_type: i8,
    name: &str,
) -> bool {
    if policy.super_users.contains(principal) {
        return true;
    }
    let mut any = false;
    let mut allowed = false;
    for b in applicable(acls, resource_type, name) {
        any = true;
        if !b.for_principal_and_host(principal, host) {
            continue;
        }
        if b.permission == permission::DENY && (b.operation == operation || b.operation == op::ALL)
        {
            return false;
        }
        if b.permission == permission::ALLOW && implies(b.operation, operation) {
            allowed = true;
        }
    }
    if !any {
        return policy.allow_everyone_if_no_acl_found;
    }
    allowed
}

/// The bindings whose pattern applies to `(resource_type, name)`. A small set is scanned; a
/// large one is searched by range in its order (resource type, then name): the literal name,
/// the literal wildcard, and each prefix of the name as a PREFIXED pattern.
fn applicable<'a>(
    acls: &'a Acls,
    resource_type: i8,
    name: &'a str,
) -> Box<dyn Iterator<Item = &'a Binding> + 'a> {
    if acls.len() <= 64 {
        return Box::new(
            acls.iter()
                .filter(move |b| b.applies_to(resource_type, name)),
        );
    }
    let with_name = move |n: &'a str| {
        let from = Binding {
            resource_type,
            resource_name: n.to_string(),
            pattern_type: i8::MIN,
            principal: String::new(),
            host: String::new(),
            operation: i8::MIN,
            permission: i8::MIN,
        };
        acls.range(from..)
            .take_while(move |b| b.resource_type == resource_type && b.resource_name == n)
    };
    let literal = with_name(name)
        .chain(with_name(WILDCARD))
        .filter(|b| b.pattern_type == pattern::LITERAL);
    let prefixed = name
        .char_indices()
        .map(move |(i, c)| &name[..i + c.len_utf8()])
        .flat_map(move |p| with_name(p).filter(|b| b.pattern_type == pattern::PREFIXED));
    Box::new(literal.chain(prefixed))
}

/// Kafka's `authorizeByResourceType`: may `principal` do `operation` on *some* resource of the
/// type (InitProducerId of an idempotent producer needs WRITE on any topic)? Yes when a check
/// of a placeholder name passes (a super user; `allow_everyone_if_no_acl_found` and no ACL
/// applies to it); no when a DENY on every name (`*`) applies; yes when an ALLOW pattern exists
/// that no DENY pattern covers.
pub fn authorize_any(
    acls: &Acls,
    policy: &Policy,
    principal: &str,
    host: &str,
    operation: i8,
    resource_type: i8,
) -> bool {
    // As Kafka's default implementation: first an ordinary check of a placeholder name (super
    // users, allow_everyone_if_no_acl_found when no ACL applies to it, a wildcard ALLOW).
    if authorize(
        acls,
        policy,
        principal,
        host,
        operation,
        resource_type,
        "hardcode",
    ) {
        return true;
    }
    let mine: Vec<&Binding> = acls
        .iter()
        .filter(|b| b.resource_type == resource_type && b.for_principal_and_host(principal, host))
        .filter(|b| b.operation == operation || b.operation == op::ALL)
        .collect();
    let denies: Vec<&&Binding> = mine
        .iter()
        .filter(|b| b.permission == permission::DENY)
        .collect();
    if denies
        .iter()
        .any(|d| d.pattern_type == pattern::LITERAL && d.resource_name == WILDCARD)
    {
        return false;
    }
    let covered = |a: &Binding| {
        denies.iter().any(|d| match d.pattern_type {
            pattern::LITERAL => {
                a.pattern_type == pattern::LITERAL && a.resource_name == d.resource_name
            }
            pattern::PREFIXED => a.resource_name.starts_with(d.resource_name.as_str()),
            _ => false,
        })
    };
    mine.iter()
        .any(|a| a.permission == permission::ALLOW && !covered(a))
}

/// Does an ALLOW for `granted` allow `wanted`?
fn implies(granted: i8, wanted: i8) -> bool {
    granted == wanted
        || granted == op::ALL
        || (wanted == op::DESCRIBE
            && matches!(granted, op::READ | op::WRITE | op::DELETE | op::ALTER))
        || (wanted == op::DESCRIBE_CONFIGS && granted == op::ALTER_CONFIGS)
}

/// Kafka's `*_authorized_operations` bit field for a resource.
pub fn authorized_operations(
    acls: &Acls,
    policy: &Policy,
    principal: &str,
    host: &str,
    resource_type: i8,
    name: &str,
) -> i32 {
    operations_of(resource_type)
        .iter()
        .filter(|&&o| authorize(acls, policy, principal, host, o, resource_type, name))
        .fold(0, |bits, &o| bits | (1 << o))
}

/// Add bindings (already validated): the new set.
pub fn create(current: &Acls, bindings: &[Binding]) -> Acls {
    let mut next = current.clone();
    next.extend(bindings.iter().cloned());
    next
}

/// Remove what each filter matches: the new set and, per filter, the bindings it removed.
pub fn delete(current: &Acls, filters: &[Filter]) -> (Acls, Vec<Vec<Binding>>) {
    let mut next = current.clone();
    let removed = filters
        .iter()
        .map(|f| {
            let hit: Vec<Binding> = current.iter().filter(|b| f.matches(b)).cloned().collect();
            for b in &hit {
                next.remove(b);
            }
            hit
        })
        .collect();
    (next, removed)
}

/// The persisted form.
pub fn to_json(acls: &Acls) -> String {
    serde_json::to_string(&acls.iter().collect::<Vec<_>>()).unwrap_or_else(|_| "[]".into())
}

pub fn from_json(doc: &[u8]) -> Result<Acls, String> {
    serde_json::from_slice::<Vec<Binding>>(doc)
        .map(|v| v.into_iter().collect())
        .map_err(|e| format!("ACL document: {e}"))
}

/// The broker's authorizer: configuration plus the current ACL set (replaced as a whole when
/// ACLs change here or, in cluster mode, through another broker).
#[derive(Debug, Default)]
pub struct Authorizer {
    pub enabled: bool,
    pub policy: Policy,
    acls: std::sync::RwLock<std::sync::Arc<Acls>>,
}

impl Authorizer {
    pub fn new(s: &crate::config::AuthorizationSettings) -> Authorizer {
        Authorizer {
            enabled: s.enabled,
            policy: Policy {
                super_users: s.super_users.iter().cloned().collect(),
                allow_everyone_if_no_acl_found: s.allow_everyone_if_no_acl_found,
            },
            acls: Default::default(),
        }
    }

    /// The current ACLs (a snapshot: cheap to hold across a request).
    pub fn acls(&self) -> std::sync::Arc<Acls> {
        self.acls
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn set(&self, acls: Acls) {
        *self
            .acls
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = std::sync::Arc::new(acls);
    }

    /// May `principal` from `host` do `operation` on `(resource_type, name)`? Always when
    /// authorization is off.
    pub fn allows(
        &self,
        principal: &str,
        host: &str,
        operation: i8,
        resource_type: i8,
        name: &str,
    ) -> bool {
        !self.enabled
            || authorize(
                &self.acls(),
                &self.policy,
                principal,
                host,
                operation,
                resource_type,
                name,
            )
    }

    /// [`authorize_any`]; always when authorization is off.
    pub fn allows_any(
        &self,
        principal: &str,
        host: &str,
        operation: i8,
        resource_type: i8,
    ) -> bool {
        !self.enabled
            || authorize_any(
                &self.acls(),
                &self.policy,
                principal,
                host,
                operation,
                resource_type,
            )
    }

    /// The `*_authorized_operations` bits (every operation of the type when authorization is
    /// off).
    pub fn operations(&self, principal: &str, host: &str, resource_type: i8, name: &str) -> i32 {
        if !self.enabled {
            return operations_of(resource_type)
                .iter()
                .fold(0, |bits, &o| bits | (1 << o));
        }
        authorized_operations(
            &self.acls(),
            &self.policy,
            principal,
            host,
            resource_type,
            name,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(rt: i8, name: &str, pt: i8, principal: &str, operation: i8, perm: i8) -> Binding {
        Binding {
            resource_type: rt,
            resource_name: name.into(),
            pattern_type: pt,
            principal: principal.into(),
            host: "*".into(),
            operation,
            permission: perm,
        }
    }

    fn can(acls: &Acls, principal: &str, operation: i8, rt: i8, name: &str) -> bool {
        authorize(
            acls,
            &Policy::default(),
            principal,
            "10.0.0.1",
            operation,
            rt,
            name,
        )
    }

    #[test]
    fn literal_prefixed_and_wildcard_patterns() {
        let acls: Acls = [
            b(
                resource::TOPIC,
                "orders",
                pattern::LITERAL,
                "User:alice",
                op::READ,
                permission::ALLOW,
            ),
            b(
                resource::TOPIC,
                "logs-",
                pattern::PREFIXED,
                "User:bob",
                op::WRITE,
                permission::ALLOW,
            ),
            b(
                resource::TOPIC,
                "*",
                pattern::LITERAL,
                "User:carol",
                op::ALL,
                permission::ALLOW,
            ),
        ]
        .into();
        assert!(can(
            &acls,
            "User:alice",
            op::READ,
            resource::TOPIC,
            "orders"
        ));
        assert!(!can(
            &acls,
            "User:alice",
            op::WRITE,
            resource::TOPIC,
            "orders"
        ));
        assert!(!can(
            &acls,
            "User:alice",
            op::READ,
            resource::TOPIC,
            "orders2"
        ));
        assert!(can(&acls, "User:bob", op::WRITE, resource::TOPIC, "logs-a"));
        assert!(!can(&acls, "User:bob", op::WRITE, resource::TOPIC, "log"));
        assert!(can(&acls, "User:carol", op::DELETE, resource::TOPIC, "x"));
        // The same name as another resource type does not match.
        assert!(!can(
            &acls,
            "User:alice",
            op::READ,
            resource::GROUP,
            "orders"
        ));
    }

    #[test]
    fn deny_wins_and_implied_operations() {
        let acls: Acls = [
            b(
                resource::TOPIC,
                "t",
                pattern::LITERAL,
                "User:*",
                op::ALL,
                permission::ALLOW,
            ),
            b(
                resource::TOPIC,
                "t",
                pattern::PREFIXED,
                "User:mallory",
                op::WRITE,
                permission::DENY,
            ),
            b(
                resource::TOPIC,
                "c",
                pattern::LITERAL,
                "User:dave",
                op::ALTER_CONFIGS,
                permission::ALLOW,
            ),
        ]
        .into();
        assert!(can(&acls, "User:mallory", op::READ, resource::TOPIC, "t"));
        assert!(!can(&acls, "User:mallory", op::WRITE, resource::TOPIC, "t"));
        // A DENY of WRITE does not deny DESCRIBE (only the operation itself or ALL).
        assert!(can(
            &acls,
            "User:mallory",
            op::DESCRIBE,
            resource::TOPIC,
            "t"
        ));
        assert!(can(
            &acls,
            "User:dave",
            op::DESCRIBE_CONFIGS,
            resource::TOPIC,
            "c"
        ));
        assert!(!can(&acls, "User:dave", op::DESCRIBE, resource::TOPIC, "c"));
        let read: Acls = [b(
            resource::TOPIC,
            "r",
            pattern::LITERAL,
            "User:erin",
            op::READ,
            permission::ALLOW,
        )]
        .into();
        assert!(can(&read, "User:erin", op::DESCRIBE, resource::TOPIC, "r"));
        assert!(!can(
            &read,
            "User:erin",
            op::DESCRIBE_CONFIGS,
            resource::TOPIC,
            "r"
        ));
    }

    #[test]
    fn hosts_super_users_and_the_no_acl_policy() {
        let mut only_host = b(
            resource::GROUP,
            "g",
            pattern::LITERAL,
            "User:frank",
            op::READ,
            permission::ALLOW,
        );
        only_host.host = "10.0.0.2".into();
        let acls: Acls = [only_host].into();
        assert!(!can(&acls, "User:frank", op::READ, resource::GROUP, "g"));
        let p = Policy::default();
        assert!(authorize(
            &acls,
            &p,
            "User:frank",
            "10.0.0.2",
            op::READ,
            resource::GROUP,
            "g"
        ));
        // No ACL on the resource: denied unless allow_everyone_if_no_acl_found.
        assert!(!can(
            &acls,
            "User:frank",
            op::READ,
            resource::GROUP,
            "other"
        ));
        let open = Policy {
            allow_everyone_if_no_acl_found: true,
            ..Policy::default()
        };
        assert!(authorize(
            &acls,
            &open,
            "User:x",
            "h",
            op::READ,
            resource::GROUP,
            "other"
        ));
        // …but a resource with ACLs for someone else stays closed.
        assert!(!authorize(
            &acls,
            &open,
            "User:x",
            "10.0.0.2",
            op::READ,
            resource::GROUP,
            "g"
        ));
        let admin = Policy {
            super_users: ["User:admin".to_string()].into(),
            ..Policy::default()
        };
        assert!(authorize(
            &Acls::new(),
            &admin,
            "User:admin",
            "h",
            op::ALTER,
            resource::CLUSTER,
            CLUSTER_NAME
        ));
    }

    #[test]
    fn by_resource_type() {
        let p = Policy::default();
        let any = |acls: &Acls| authorize_any(acls, &p, "User:a", "h", op::WRITE, resource::TOPIC);
        assert!(!any(&Acls::new()));
        let allow = b(
            resource::TOPIC,
            "t",
            pattern::PREFIXED,
            "User:a",
            op::WRITE,
            permission::ALLOW,
        );
        assert!(any(&[allow.clone()].into()));
        let deny_prefix = b(
            resource::TOPIC,
            "",
            pattern::PREFIXED,
            "User:a",
            op::WRITE,
            permission::DENY,
        );
        assert!(!any(&[allow.clone(), deny_prefix].into()));
        let deny_all = b(
            resource::TOPIC,
            "*",
            pattern::LITERAL,
            "User:*",
            op::ALL,
            permission::DENY,
        );
        assert!(!any(&[allow, deny_all].into()));
        let open = Policy {
            allow_everyone_if_no_acl_found: true,
            ..Policy::default()
        };
        assert!(authorize_any(
            &Acls::new(),
            &open,
            "User:a",
            "h",
            op::WRITE,
            resource::TOPIC
        ));
    }

    /// Above 64 bindings the lookup goes by range: same decisions as the scan.
    #[test]
    fn ranged_lookup_matches_the_scan() {
        let mut acls = Acls::new();
        for i in 0..100 {
            acls.insert(b(
                resource::TOPIC,
                &format!("t{i}"),
                pattern::LITERAL,
                "User:a",
                op::READ,
                permission::ALLOW,
            ));
        }
        for (name, pt, perm) in [
            ("lo", pattern::PREFIXED, permission::ALLOW),
            ("logs-x", pattern::PREFIXED, permission::DENY),
            ("*", pattern::LITERAL, permission::ALLOW),
        ] {
            acls.insert(b(resource::TOPIC, name, pt, "User:b", op::WRITE, perm));
        }
        acls.insert(b(
            resource::GROUP,
            "t5",
            pattern::LITERAL,
            "User:a",
            op::DELETE,
            permission::ALLOW,
        ));
        for name in [
            "t5", "t50", "t100", "logs", "logs-x1", "lo", "l", "x", "*", "é-t5",
        ] {
            for (principal, operation) in [("User:a", op::READ), ("User:b", op::WRITE)] {
                for rt in [resource::TOPIC, resource::GROUP] {
                    let scanned = acls.iter().any(|x| x.applies_to(rt, name));
                    let ranged = applicable(&acls, rt, name).next().is_some();
                    assert_eq!(scanned, ranged, "{rt} {name}");
                    let small: Acls = acls
                        .iter()
                        .filter(|x| x.applies_to(rt, name))
                        .cloned()
                        .collect();
                    let p = Policy::default();
                    assert_eq!(
                        authorize(&acls, &p, principal, "h", operation, rt, name),
                        authorize(&small, &p, principal, "h", operation, rt, name),
                        "{principal} {rt} {name}"
                    );
                }
            }
        }
    }

    #[test]
    fn hosts_as_java_writes_them() {
        use std::net::IpAddr;
        let h = |s: &str| host_of(s.parse::<IpAddr>().unwrap());
        assert_eq!(h("10.0.0.1"), "10.0.0.1");
        assert_eq!(h("::ffff:10.0.0.1"), "10.0.0.1");
        assert_eq!(h("::1"), "0:0:0:0:0:0:0:1");
        assert_eq!(h("fe80::1:abcd"), "fe80:0:0:0:0:0:1:abcd");
    }

    #[test]
    fn authorized_operations_bits() {
        let acls: Acls = [b(
            resource::TOPIC,
            "t",
            pattern::LITERAL,
            "User:a",
            op::READ,
            permission::ALLOW,
        )]
        .into();
        let bits = authorized_operations(
            &acls,
            &Policy::default(),
            "User:a",
            "h",
            resource::TOPIC,
            "t",
        );
        assert_eq!(bits, (1 << op::READ) | (1 << op::DESCRIBE));
    }

    #[test]
    fn filters_any_match_and_exact() {
        let lit = b(
            resource::TOPIC,
            "foo",
            pattern::LITERAL,
            "User:a",
            op::READ,
            permission::ALLOW,
        );
        let star = b(
            resource::TOPIC,
            "*",
            pattern::LITERAL,
            "User:a",
            op::READ,
            permission::ALLOW,
        );
        let pre = b(
            resource::TOPIC,
            "fo",
            pattern::PREFIXED,
            "User:b",
            op::WRITE,
            permission::DENY,
        );
        let grp = b(
            resource::GROUP,
            "foo",
            pattern::LITERAL,
            "User:a",
            op::READ,
            permission::ALLOW,
        );
        let f = |rt, name: Option<&str>, pt| Filter {
            resource_type: rt,
            resource_name: name.map(String::from),
            pattern_type: pt,
            principal: None,
            host: None,
            operation: op::ANY,
            permission: permission::ANY,
        };
        let all = [&lit, &star, &pre, &grp];
        let hits = |flt: &Filter| all.iter().filter(|x| flt.matches(x)).count();
        assert_eq!(hits(&f(resource::ANY, None, pattern::ANY)), 4);
        assert_eq!(hits(&f(resource::TOPIC, None, pattern::ANY)), 3);
        assert_eq!(hits(&f(resource::TOPIC, Some("foo"), pattern::ANY)), 1);
        assert_eq!(hits(&f(resource::TOPIC, Some("foo"), pattern::MATCH)), 3);
        assert_eq!(hits(&f(resource::TOPIC, Some("fo"), pattern::PREFIXED)), 1);
        assert_eq!(hits(&f(resource::TOPIC, Some("foo"), pattern::LITERAL)), 1);
        let mut by_principal = f(resource::ANY, None, pattern::ANY);
        by_principal.principal = Some("User:b".into());
        assert_eq!(hits(&by_principal), 1);
        let mut by_perm = f(resource::ANY, None, pattern::ANY);
        by_perm.permission = permission::DENY;
        assert_eq!(hits(&by_perm), 1);
        assert!(f(resource::UNKNOWN, None, pattern::ANY).invalid().is_some());
        assert!(f(resource::ANY, None, 9).invalid().is_some());
        assert!(f(resource::ANY, None, pattern::MATCH).invalid().is_none());
    }

    #[test]
    fn create_delete_and_persist() {
        let x = b(
            resource::TOPIC,
            "foo",
            pattern::LITERAL,
            "User:a",
            op::READ,
            permission::ALLOW,
        );
        let y = b(
            resource::CLUSTER,
            CLUSTER_NAME,
            pattern::LITERAL,
            "User:a",
            op::CREATE,
            permission::ALLOW,
        );
        let acls = create(&Acls::new(), &[x.clone(), y.clone(), x.clone()]);
        assert_eq!(acls.len(), 2);
        assert_eq!(from_json(to_json(&acls).as_bytes()).unwrap(), acls);
        let (next, removed) = delete(
            &acls,
            &[Filter {
                resource_type: resource::CLUSTER,
                resource_name: None,
                pattern_type: pattern::ANY,
                principal: None,
                host: None,
                operation: op::ANY,
                permission: permission::ANY,
            }],
        );
        assert_eq!(removed, vec![vec![y]]);
        assert_eq!(next, [x].into());
        assert!(from_json(b"{").is_err());
    }

    #[test]
    fn validation_of_new_bindings() {
        let ok = b(
            resource::TOPIC,
            "t",
            pattern::LITERAL,
            "User:a",
            op::READ,
            permission::ALLOW,
        );
        assert_eq!(invalid_binding(&ok), None);
        let bad = |f: &dyn Fn(&mut Binding)| {
            let mut x = ok.clone();
            f(&mut x);
            invalid_binding(&x).is_some()
        };
        assert!(bad(&|x| x.resource_type = resource::ANY));
        assert!(bad(&|x| x.pattern_type = pattern::MATCH));
        assert!(bad(&|x| x.operation = op::ANY));
        assert!(bad(&|x| x.permission = permission::ANY));
        assert!(bad(&|x| x.resource_name.clear()));
        assert!(bad(&|x| x.principal = "alice".into()));
        assert!(bad(&|x| {
            x.resource_type = resource::CLUSTER;
            x.resource_name = "other".into();
        }));
    }
}
