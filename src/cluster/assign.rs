//! Leader assignment as a plain function: given the live brokers and every unit of leadership
//! (a partition, or a group-coordinator slot) with its current leader, which units move where.
//!
//! Goals, in order: every unit has a live leader; each broker leads an even share (±1) of all
//! units and of each topic's partitions; as few moves as possible (a move bumps the leader
//! epoch and makes clients retry). With racks set, brokers are taken in rack-interleaved order,
//! so that equal shares per broker are also spread over racks.

use std::collections::{BTreeMap, HashMap};

/// A unit of leadership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unit {
    Partition([u8; 16], i32),
    Slot(i32),
}

impl Unit {
    /// Units are balanced per group: a topic's partitions, or the coordinator slots.
    fn group(&self) -> Option<[u8; 16]> {
        match self {
            Unit::Partition(t, _) => Some(*t),
            Unit::Slot(_) => None,
        }
    }
}

/// Brokers in rack-interleaved order (first broker of each rack, then the second…), by node id
/// within a rack. Without racks this is node id order.
fn interleave(live: &[(i32, Option<String>)]) -> Vec<i32> {
    let mut by_rack: BTreeMap<Option<&str>, Vec<i32>> = BTreeMap::new();
    for (id, rack) in live {
        by_rack.entry(rack.as_deref()).or_default().push(*id);
    }
    for ids in by_rack.values_mut() {
        ids.sort_unstable();
    }
    let mut out = Vec::with_capacity(live.len());
    let mut i = 0;
    while out.len() < live.len() {
        for ids in by_rack.values() {
            if let Some(id) = ids.get(i) {
                out.push(*id);
            }
        }
        i += 1;
    }
    out
}

/// A unit and its leader.
type Placed = (Unit, Option<i32>);

/// The moves that bring `units` to a balanced assignment over `live` brokers.
pub fn plan(live: &[(i32, Option<String>)], units: &[(Unit, Option<i32>)]) -> Vec<(Unit, i32)> {
    if live.is_empty() {
        return Vec::new();
    }
    let order = interleave(live);
    let n = order.len();
    let rank: HashMap<i32, usize> = order.iter().enumerate().map(|(i, b)| (*b, i)).collect();

    // Units per group, sorted, so the plan is deterministic.
    let mut groups: BTreeMap<Option<[u8; 16]>, Vec<Placed>> = BTreeMap::new();
    for u in units {
        groups.entry(u.0.group()).or_default().push(*u);
    }
    for g in groups.values_mut() {
        g.sort();
    }

    // Global share: total / n each, the remainder to the brokers that hold most already
    // (fewest moves), ties to rack order.
    let total = units.len();
    let mut held: HashMap<i32, usize> = HashMap::new();
    for (_, l) in units {
        if let Some(l) = l.filter(|l| rank.contains_key(l)) {
            *held.entry(l).or_default() += 1;
        }
    }
    let mut by_load = order.clone();
    by_load.sort_by_key(|b| {
        (
            std::cmp::Reverse(held.get(b).copied().unwrap_or(0)),
            rank[b],
        )
    });
    let mut target: HashMap<i32, usize> = HashMap::new();
    for (i, b) in by_load.iter().enumerate() {
        target.insert(*b, total / n + usize::from(i < total % n));
    }

    let mut count: HashMap<i32, usize> = order.iter().map(|b| (*b, 0)).collect();
    let mut moves = Vec::new();
    let mut pool: Vec<Placed> = Vec::new();
    // Keep what a live broker leads, within its global share and its topic share.
    for g in groups.values() {
        let cap = g.len().div_ceil(n);
        let mut in_group: HashMap<i32, usize> = HashMap::new();
        for (u, l) in g {
            match l {
                Some(l)
                    if rank.contains_key(l)
                        && count[l] < target[l]
                        && in_group.get(l).copied().unwrap_or(0) < cap =>
                {
                    *count.get_mut(l).unwrap_or(&mut 0) += 1;
                    *in_group.entry(*l).or_default() += 1;
                }
                _ => pool.push((*u, *l)),
            }
        }
    }
    // Place the rest: per unit the broker with the fewest units of its group, then the fewest
    // units overall, among those still under their share.
    let mut group_count: HashMap<(Option<[u8; 16]>, i32), usize> = HashMap::new();
    for g in groups.values() {
        for (u, l) in g {
            if let Some(l) = l {
                if !pool.iter().any(|(p, _)| p == u) && rank.contains_key(l) {
                    *group_count.entry((u.group(), *l)).or_default() += 1;
                }
            }
        }
    }
    for (u, old) in pool {
        let pick = |under: bool| {
            order
                .iter()
                .copied()
                .filter(|b| !under || count[b] < target[b])
                .min_by_key(|b| {
                    (
                        group_count.get(&(u.group(), *b)).copied().unwrap_or(0),
                        count[b],
                        rank[b],
                    )
                })
        };
        let Some(b) = pick(true).or_else(|| pick(false)) else {
            continue;
        };
        if let Some(c) = count.get_mut(&b) {
            *c += 1;
        }
        *group_count.entry((u.group(), b)).or_default() += 1;
        if old != Some(b) {
            moves.push((u, b));
        }
    }
    moves
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(units: &mut [(Unit, Option<i32>)], moves: &[(Unit, i32)]) {
        for (u, b) in moves {
            for x in units.iter_mut() {
                if x.0 == *u {
                    x.1 = Some(*b);
                }
            }
        }
    }

    fn topic(t: u8, n: i32) -> Vec<(Unit, Option<i32>)> {
        (0..n)
            .map(|p| (Unit::Partition([t; 16], p), None))
            .collect()
    }

    fn loads(units: &[(Unit, Option<i32>)]) -> BTreeMap<i32, usize> {
        let mut m = BTreeMap::new();
        for (_, l) in units {
            *m.entry(l.unwrap()).or_default() += 1;
        }
        m
    }

    fn live(ids: &[i32]) -> Vec<(i32, Option<String>)> {
        ids.iter().map(|i| (*i, None)).collect()
    }

    #[test]
    fn spreads_new_units_evenly_and_each_topic_evenly() {
        let mut units = topic(1, 6);
        units.extend(topic(2, 3));
        units.extend((0..4).map(|s| (Unit::Slot(s), None)));
        let brokers = live(&[1, 2, 3]);
        let moves = plan(&brokers, &units);
        apply(&mut units, &moves);
        let l = loads(&units);
        assert!(
            l.values().max().unwrap() - l.values().min().unwrap() <= 1,
            "{l:?}"
        );
        let t2: Vec<i32> = units[6..9].iter().map(|u| u.1.unwrap()).collect();
        let mut t2s = t2.clone();
        t2s.sort();
        assert_eq!(t2s, vec![1, 2, 3], "a 3-partition topic lands on 3 brokers");
        assert!(
            plan(&brokers, &units).is_empty(),
            "a balanced plan is stable"
        );
    }

    #[test]
    fn a_dead_brokers_units_move_and_nothing_else_does() {
        let mut units = topic(1, 9);
        let m = plan(&live(&[1, 2, 3]), &units);
        apply(&mut units, &m);
        let before = units.clone();
        let moves = plan(&live(&[1, 2]), &units);
        assert_eq!(moves.len(), 3, "only broker 3's units move: {moves:?}");
        for (u, _) in &moves {
            assert_eq!(before.iter().find(|x| x.0 == *u).unwrap().1, Some(3));
        }
        apply(&mut units, &moves);
        let l = loads(&units);
        assert_eq!(
            l.values()
                .copied()
                .collect::<Vec<_>>()
                .iter()
                .sum::<usize>(),
            9
        );
        assert!(
            l.values().max().unwrap() - l.values().min().unwrap() <= 1,
            "{l:?}"
        );
    }

    #[test]
    fn a_new_broker_takes_its_share() {
        let mut units = topic(1, 6);
        let m = plan(&live(&[1, 2, 3]), &units);
        apply(&mut units, &m);
        let moves = plan(&live(&[1, 2, 3, 4]), &units);
        assert_eq!(moves.len(), 1, "{moves:?}");
        assert_eq!(moves[0].1, 4);
        apply(&mut units, &moves);
        let l = loads(&units);
        assert!(
            l.values().max().unwrap() - l.values().min().unwrap() <= 1,
            "{l:?}"
        );
    }

    #[test]
    fn no_live_broker_means_no_moves() {
        assert!(plan(&[], &topic(1, 3)).is_empty());
    }

    #[test]
    fn racks_interleave() {
        let brokers = vec![
            (1, Some("a".to_string())),
            (2, Some("a".to_string())),
            (3, Some("b".to_string())),
            (4, Some("b".to_string())),
        ];
        assert_eq!(interleave(&brokers), vec![1, 3, 2, 4]);
        let mut units = topic(1, 2);
        let m = plan(&brokers, &units);
        apply(&mut units, &m);
        let racks: Vec<i32> = units.iter().map(|u| u.1.unwrap()).collect();
        assert_eq!(racks, vec![1, 3], "two partitions land in two racks");
    }
}
