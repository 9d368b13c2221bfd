//! Slander, for the simulator's adversaries only (a real node never slanders): a node that is
//! honest in everything else warns of every peer it links to, as if it had graylisted it. A
//! sybil operator runs many ids as one group: its members share their victims (every member
//! warns of every peer any member linked to, so a victim soon has as many accusers as the group
//! has ids) and never accuse one another. The group is the operator's own state, shared by its
//! ids' gossip cores (the simulator runs them on one thread).

use crate::time::Millis;
use crate::types::PeerId;
use crate::wire::MAX_RUMOR_WARNINGS;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// Victims a group keeps, the newest (a member warns of at most `MAX_RUMOR_WARNINGS` at once).
pub const MAX_VICTIMS: usize = 4 * MAX_RUMOR_WARNINGS;

/// One slanderer's group: a lone slanderer is a group of one.
#[derive(Clone, Default)]
pub struct Slander(Rc<RefCell<Group>>);

#[derive(Default)]
struct Group {
    members: BTreeSet<PeerId>,
    /// Victim -> when a member first linked to it.
    victims: BTreeMap<PeerId, Millis>,
}

impl Slander {
    /// A new group, with no member yet.
    pub fn new_group() -> Self {
        Slander::default()
    }

    /// `member` is one of the group's ids.
    pub fn join(&self, member: PeerId) {
        self.0.borrow_mut().members.insert(member);
    }

    pub fn members(&self) -> usize {
        self.0.borrow().members.len()
    }

    /// A member linked to `peer`: a victim, unless it is one of the group.
    pub(super) fn linked(&self, peer: PeerId, now: Millis) -> bool {
        let mut g = self.0.borrow_mut();
        if g.members.contains(&peer) {
            return false;
        }
        g.victims.entry(peer).or_insert(now);
        while g.victims.len() > MAX_VICTIMS {
            let oldest = g.victims.iter().min_by_key(|(p, t)| (**t, **p)).map(|(p, _)| *p);
            if let Some(p) = oldest {
                g.victims.remove(&p);
            }
        }
        true
    }

    /// The group's victims, newest first.
    pub(super) fn victims(&self) -> Vec<PeerId> {
        let g = self.0.borrow();
        let mut v: Vec<(Millis, PeerId)> = g.victims.iter().map(|(p, t)| (*t, *p)).collect();
        v.sort_unstable_by(|a, b| b.cmp(a));
        v.into_iter().map(|(_, p)| p).collect()
    }
}

impl std::fmt::Debug for Slander {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.0.borrow();
        f.debug_struct("Slander").field("members", &g.members.len()).field("victims", &g.victims.len()).finish()
    }
}

impl PartialEq for Slander {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Slander {}
