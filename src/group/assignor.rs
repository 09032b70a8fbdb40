//! Server-side partition assignors of the KIP-848 consumer protocol: `uniform` (the default)
//! and `range`, as Kafka names them. Plain functions over the group's subscriptions; the
//! previous target assignment is passed in so that `uniform` moves as few partitions as it can.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A topic id (as in `Topic::id`).
pub type TopicId = [u8; 16];
/// Partitions by topic id.
pub type Assignment = BTreeMap<TopicId, BTreeSet<i32>>;

/// The assignors a client may name in `server_assignor`.
pub const ASSIGNORS: &[&str] = &["uniform", "range"];
/// Kafka's default (`group.consumer.assignors`' first entry).
pub const DEFAULT_ASSIGNOR: &str = "uniform";

/// What an assignor sees of one member.
#[derive(Debug, Clone)]
pub struct MemberSpec<'a> {
    pub id: &'a str,
    /// Topics the member subscribes to that exist, by id.
    pub topics: BTreeSet<TopicId>,
    /// Its current target assignment (for stickiness).
    pub previous: Option<&'a Assignment>,
}

/// Assign every partition of every subscribed topic (`partitions`: topic id → partition
/// count) to one of the members subscribed to it. Members are given in a stable order.
pub fn assign(
    name: &str,
    members: &[MemberSpec<'_>],
    partitions: &BTreeMap<TopicId, i32>,
) -> BTreeMap<String, Assignment> {
    match name {
        "range" => range(members, partitions),
        _ => uniform(members, partitions),
    }
}

/// Kafka's range assignor, per topic: its subscribers sorted by member id get consecutive
/// ranges, the first `partitions % subscribers` one partition more.
fn range(
    members: &[MemberSpec<'_>],
    partitions: &BTreeMap<TopicId, i32>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.id.to_string(), Assignment::new()))
        .collect();
    for (topic, count) in partitions {
        let mut subs: Vec<&str> = members
            .iter()
            .filter(|m| m.topics.contains(topic))
            .map(|m| m.id)
            .collect();
        if subs.is_empty() {
            continue;
        }
        subs.sort_unstable();
        let n = subs.len() as i32;
        let (each, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, m) in subs.iter().enumerate() {
            let take = each + i32::from((i as i32) < extra);
            if take > 0 {
                let parts = out
                    .entry(m.to_string())
                    .or_default()
                    .entry(*topic)
                    .or_default();
                parts.extend(next..next + take);
            }
            next += take;
        }
    }
    out
}

/// Balanced and sticky: every partition goes to a subscriber, loads differ by at most one
/// among members that could take each other's partitions, and a partition stays with its
/// previous owner whenever that keeps the balance.
fn uniform(
    members: &[MemberSpec<'_>],
    partitions: &BTreeMap<TopicId, i32>,
) -> BTreeMap<String, Assignment> {
    let mut out: Vec<Assignment> = vec![Assignment::new(); members.len()];
    let mut load = vec![0usize; members.len()];
    let subscribers: BTreeMap<TopicId, usize> = partitions
        .keys()
        .map(|t| (*t, members.iter().filter(|m| m.topics.contains(t)).count()))
        .collect();
    let total: usize = partitions
        .iter()
        .filter(|(t, _)| subscribers[*t] > 0)
        .map(|(_, c)| (*c).max(0) as usize)
        .sum();
    if members.is_empty() || total == 0 {
        return names(members, out);
    }
    // No member keeps more than an even share (`total % n` of them may keep one more): the
    // rest is handed out afresh.
    let floor = total / members.len();
    let mut extra = total % members.len();
    let mut previous: HashMap<(TopicId, i32), usize> = HashMap::new();
    for (i, m) in members.iter().enumerate() {
        for (t, ps) in m.previous.into_iter().flatten() {
            if m.topics.contains(t) {
                previous.extend(ps.iter().map(|p| ((*t, *p), i)));
            }
        }
    }
    let mut unassigned: Vec<(TopicId, i32)> = Vec::new();
    for (topic, count) in partitions {
        if subscribers[topic] == 0 {
            continue;
        }
        for p in 0..*count {
            match previous.get(&(*topic, p)) {
                Some(&i) if load[i] < floor || (load[i] == floor && extra > 0) => {
                    if load[i] == floor {
                        extra -= 1;
                    }
                    load[i] += 1;
                    out[i].entry(*topic).or_default().insert(p);
                }
                _ => unassigned.push((*topic, p)),
            }
        }
    }
    // Partitions with the fewest possible owners first, each to its least loaded subscriber
    // (with one subscription for all, the first member in load order).
    unassigned.sort_by_key(|(t, p)| (subscribers[t], *t, *p));
    let mut by_load: BTreeSet<(usize, usize)> = load.iter().copied().zip(0..).collect();
    for (topic, p) in unassigned {
        let found = by_load
            .iter()
            .find(|(_, i)| members[*i].topics.contains(&topic))
            .copied();
        if let Some((l, i)) = found {
            by_load.remove(&(l, i));
            by_load.insert((l + 1, i));
            load[i] += 1;
            out[i].entry(topic).or_default().insert(p);
        }
    }
    // Different subscriptions: move partitions to a member that could own them while loads
    // differ by more than one (bounded: every move lowers the spread).
    let homogeneous = members.windows(2).all(|w| w[0].topics == w[1].topics);
    for _ in 0..if homogeneous { 0 } else { total } {
        let mut order: Vec<usize> = (0..members.len()).collect();
        order.sort_by_key(|i| std::cmp::Reverse(load[*i]));
        let candidate = order.iter().find_map(|&heavy| {
            out[heavy].iter().find_map(|(t, ps)| {
                let light = (0..members.len())
                    .filter(|i| *i != heavy && members[*i].topics.contains(t))
                    .min_by_key(|i| load[*i])?;
                let p = *ps.iter().next_back()?;
                (load[light] + 1 < load[heavy]).then_some((heavy, *t, p, light))
            })
        });
        let Some((heavy, t, p, light)) = candidate else {
            break;
        };
        if let Some(ps) = out[heavy].get_mut(&t) {
            ps.remove(&p);
            if ps.is_empty() {
                out[heavy].remove(&t);
            }
        }
        out[light].entry(t).or_default().insert(p);
        load[heavy] -= 1;
        load[light] += 1;
    }
    names(members, out)
}

fn names(members: &[MemberSpec<'_>], out: Vec<Assignment>) -> BTreeMap<String, Assignment> {
    members
        .iter()
        .zip(out)
        .map(|(m, a)| (m.id.to_string(), a))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: u8) -> TopicId {
        [n; 16]
    }

    fn spec<'a>(id: &'a str, topics: &[u8], prev: Option<&'a Assignment>) -> MemberSpec<'a> {
        MemberSpec {
            id,
            topics: topics.iter().map(|n| t(*n)).collect(),
            previous: prev,
        }
    }

    fn count(a: &Assignment) -> usize {
        a.values().map(|s| s.len()).sum()
    }

    fn all_once(out: &BTreeMap<String, Assignment>, parts: &BTreeMap<TopicId, i32>) {
        let mut seen = BTreeSet::new();
        for a in out.values() {
            for (topic, ps) in a {
                for p in ps {
                    assert!(seen.insert((*topic, *p)), "{p} twice");
                }
            }
        }
        let want: usize = parts.values().map(|c| *c as usize).sum();
        assert_eq!(seen.len(), want);
    }

    #[test]
    fn range_gives_consecutive_ranges_per_topic() {
        let parts = BTreeMap::from([(t(1), 7), (t(2), 2)]);
        let m = [
            spec("a", &[1, 2], None),
            spec("b", &[1, 2], None),
            spec("c", &[1], None),
        ];
        let out = assign("range", &m, &parts);
        all_once(&out, &parts);
        assert_eq!(out["a"][&t(1)], BTreeSet::from([0, 1, 2]));
        assert_eq!(out["b"][&t(1)], BTreeSet::from([3, 4]));
        assert_eq!(out["c"][&t(1)], BTreeSet::from([5, 6]));
        assert_eq!(out["a"][&t(2)], BTreeSet::from([0]));
        assert_eq!(out["b"][&t(2)], BTreeSet::from([1]));
        assert!(!out["c"].contains_key(&t(2)));
    }

    #[test]
    fn uniform_is_balanced_and_sticky() {
        let parts = BTreeMap::from([(t(1), 6)]);
        let m = [
            spec("a", &[1], None),
            spec("b", &[1], None),
            spec("c", &[1], None),
        ];
        let first = assign("uniform", &m, &parts);
        all_once(&first, &parts);
        assert!(first.values().all(|a| count(a) == 2));
        // c leaves: a and b keep what they had and share c's partitions.
        let m = [
            spec("a", &[1], Some(&first["a"])),
            spec("b", &[1], Some(&first["b"])),
        ];
        let second = assign("uniform", &m, &parts);
        all_once(&second, &parts);
        for id in ["a", "b"] {
            assert_eq!(count(&second[id]), 3);
            assert!(first[id][&t(1)].is_subset(&second[id][&t(1)]));
        }
        // d joins: it takes one from each, nobody else moves anything.
        let m = [
            spec("a", &[1], Some(&second["a"])),
            spec("b", &[1], Some(&second["b"])),
            spec("d", &[1], None),
        ];
        let third = assign("uniform", &m, &parts);
        all_once(&third, &parts);
        assert!(third.values().all(|a| count(a) == 2));
        for id in ["a", "b"] {
            assert!(third[id][&t(1)].is_subset(&second[id][&t(1)]));
        }
    }

    #[test]
    fn uniform_scales_to_large_groups() {
        // 1,000 members over 20 topics of 500 partitions: ten each, and after one member
        // leaves, only its ten partitions move.
        let parts: BTreeMap<TopicId, i32> = (0..20u8).map(|n| (t(n), 500)).collect();
        let ids: Vec<String> = (0..1000).map(|i| format!("m{i:04}")).collect();
        let all: Vec<u8> = (0..20).collect();
        let m: Vec<MemberSpec<'_>> = ids.iter().map(|id| spec(id, &all, None)).collect();
        let started = std::time::Instant::now();
        let first = assign("uniform", &m, &parts);
        all_once(&first, &parts);
        assert!(first.values().all(|a| count(a) == 10));
        let m: Vec<MemberSpec<'_>> = ids[1..]
            .iter()
            .map(|id| spec(id, &all, Some(&first[id.as_str()])))
            .collect();
        let second = assign("uniform", &m, &parts);
        all_once(&second, &parts);
        let kept: usize = ids[1..]
            .iter()
            .map(|id| count(&intersect(&first[id.as_str()], &second[id.as_str()])))
            .sum();
        assert_eq!(kept, 10_000 - 10);
        eprintln!(
            "two assignments of 10,000 partitions to 1,000 members: {:?}",
            started.elapsed()
        );
    }

    fn intersect(a: &Assignment, b: &Assignment) -> Assignment {
        a.iter()
            .filter_map(|(t, ps)| {
                let both: BTreeSet<i32> = ps.intersection(b.get(t)?).copied().collect();
                (!both.is_empty()).then_some((*t, both))
            })
            .collect()
    }

    #[test]
    fn uniform_with_different_subscriptions() {
        // b alone subscribes to topic 2; topic 1 is shared and must lean towards a.
        let parts = BTreeMap::from([(t(1), 4), (t(2), 4)]);
        let m = [spec("a", &[1], None), spec("b", &[1, 2], None)];
        let out = assign("uniform", &m, &parts);
        all_once(&out, &parts);
        assert_eq!(count(&out["a"]), 4);
        assert_eq!(count(&out["b"]), 4);
        assert_eq!(out["b"][&t(2)].len(), 4);
        // A member subscribed to nothing that exists gets nothing.
        let m = [spec("a", &[1], None), spec("z", &[9], None)];
        let out = assign("uniform", &m, &parts);
        assert_eq!(count(&out["z"]), 0);
        assert_eq!(count(&out["a"]), 4);
    }
}
