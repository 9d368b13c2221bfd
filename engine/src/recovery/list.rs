//! The published holder list: the owner signs who holds its current generation and hands the
//! list to the `rf` peers XOR-closest to each of a few keys derived from its user id (its
//! *regions*); a new device that knows only the user id finds those peers with the routing
//! module's iterative [`Lookup`], one region after another, and reads the list back. [`ListStore`] is the keeping side (bounded, newest generation wins), [`ListFinder`]
//! the asking side. The list is public (peer ids only); its signature and the user id's hash of
//! the owner's key make a forged list useless.

use super::messages::{open, HolderList, ListReply, ListRequest, MessageError, MAX_LIST_CLOSER, MAX_USER_ID_CHARS};
use super::split::MAX_SHARES;
use crate::identity::{user_id, Envelope};
use crate::routing::{Key, Lookup, LookupConfig};
use crate::time::Millis;
use crate::types::PeerId;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

const LIST_KEY_TAG: &[u8] = b"swarm-recovery-list-key-v1";

/// List regions at most (a request naming a higher one is refused).
pub const MAX_LIST_REGIONS: u8 = 8;

/// Where the holder list of `user_id` lives in the key space, in region `region`:
/// SHA-256(tag || user id) for region 0, SHA-256(tag || region || user id) for the others.
/// Regions are independent points of the key space, so one correlated loss (every peer near one
/// key gone at once) does not take every copy.
pub fn list_key(user_id: &str, region: u8) -> Key {
    let mut h = Sha256::new();
    h.update(LIST_KEY_TAG);
    if region > 0 {
        h.update([region]);
    }
    h.update(user_id.as_bytes());
    Key(h.finalize().into())
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error("{0}")]
    Message(MessageError),
    #[error("holder list signed by another key than the owner it names")]
    NotTheOwner,
    #[error("holder list of {0} holders (at most {MAX_SHARES})")]
    TooManyHolders(usize),
    #[error("holder list for another user id")]
    OtherUser,
    #[error("a newer generation of this list is kept")]
    Older,
    #[error("{0} lists kept already")]
    Full(usize),
}

/// An owner-signed holder list, checked: signature, owner = signer, size.
pub fn check_list(env: &Envelope) -> Result<HolderList, ListError> {
    let list: HolderList = open(env).map_err(ListError::Message)?;
    if list.owner != env.public_key {
        return Err(ListError::NotTheOwner);
    }
    if list.holders.len() > usize::from(MAX_SHARES) {
        return Err(ListError::TooManyHolders(list.holders.len()));
    }
    Ok(list)
}

/// The lists this node keeps for others, by user id.
pub struct ListStore {
    max_lists: usize,
    lists: BTreeMap<String, (u64, Envelope)>,
}

impl ListStore {
    pub fn new(max_lists: usize) -> Self {
        ListStore { max_lists, lists: BTreeMap::new() }
    }

    pub fn len(&self) -> usize {
        self.lists.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    /// Keep `env` (an owner's signed list) unless an equal or newer generation is kept; the user
    /// id it was kept under.
    pub fn put(&mut self, env: Envelope) -> Result<String, ListError> {
        let list = check_list(&env)?;
        let user = user_id(&list.owner);
        match self.lists.get(&user) {
            Some((g, _)) if *g >= list.generation => return Err(ListError::Older),
            None if self.lists.len() >= self.max_lists => return Err(ListError::Full(self.lists.len())),
            _ => {}
        }
        self.lists.insert(user.clone(), (list.generation, env));
        Ok(user)
    }

    pub fn get(&self, user_id: &str) -> Option<&Envelope> {
        self.lists.get(user_id).map(|(_, e)| e)
    }
}

/// What a [`ListFinder`] did with an answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// A valid list newer than any seen before.
    List(HolderList),
    Nothing,
}

/// One lookup toward a user's list key over `ListRequest` / `ListReply`: it keeps the newest
/// valid list any peer on the way returned, and the peers it asked (`true` once the request went
/// out on a link). A recovery runs one to find the holders; the owner runs one to find where its
/// list belongs (its routing table alone may not know the closest peers).
pub struct ListFinder {
    user_id: String,
    region: u8,
    lookup: Lookup,
    best: Option<HolderList>,
    asked: BTreeMap<PeerId, Ask>,
}

/// A question out: whether it went on a link yet, and when it was asked.
#[derive(Clone, Copy, Debug)]
struct Ask {
    sent: bool,
    at: Millis,
}

/// A peer asked for a list that has not answered in this long counts as failed, whether its
/// link never came or the question went unanswered (a dial gives up after 3 s; an answer over a
/// link takes a round trip). Without it one silent peer held a search open until the
/// recovery's deadline.
pub const LIST_ASK_TIMEOUT_MS: Millis = 8_000;

impl ListFinder {
    /// A lookup toward `user_id`'s list key in `region`; `seeds`: the peers this node knows (its
    /// routing table's closest to the key, its links).
    pub fn new(user_id: &str, region: u8, seeds: impl IntoIterator<Item = PeerId>, cfg: LookupConfig) -> Self {
        debug_assert!(user_id.len() <= MAX_USER_ID_CHARS && region < MAX_LIST_REGIONS);
        let lookup = Lookup::new(list_key(user_id, region), seeds, cfg);
        ListFinder { user_id: user_id.to_string(), region, lookup, best: None, asked: BTreeMap::new() }
    }

    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    pub fn region(&self) -> u8 {
        self.region
    }

    /// This search's question to `storer`.
    pub fn request(&self, storer: PeerId) -> ListRequest {
        ListRequest { user_id: self.user_id.clone(), storer, region: self.region }
    }

    /// The peers to ask next; those `linked` now are returned (to send to at once), the others
    /// wait for their link ([`Self::on_up`]).
    pub fn next_queries(&mut self, now: Millis, linked: impl Fn(&PeerId) -> bool) -> Vec<PeerId> {
        let mut send = Vec::new();
        for p in self.lookup.next_queries() {
            let l = linked(&p);
            self.asked.insert(p, Ask { sent: l, at: now });
            if l {
                send.push(p);
            }
        }
        send
    }

    /// A link to `peer` is up: a candidate (while nothing is found), and `true` when a request
    /// to it was waiting for this link.
    pub fn on_up(&mut self, peer: PeerId) -> bool {
        if self.best.is_none() {
            self.lookup.add_candidates([peer]);
        }
        match self.asked.get_mut(&peer) {
            Some(a) if !a.sent => {
                a.sent = true;
                true
            }
            _ => false,
        }
    }

    /// Ask `peer` outside the lookup (a holder a list named: holders of a generation keep its
    /// list, so a kept holder named by an old list knows the newer one). `true`: send now.
    pub fn ask(&mut self, now: Millis, peer: PeerId, linked: bool) -> bool {
        if self.asked.contains_key(&peer) {
            return false;
        }
        self.asked.insert(peer, Ask { sent: linked, at: now });
        linked
    }

    /// Peers asked [`LIST_ASK_TIMEOUT_MS`] ago or longer without an answer fail; `true` if any did.
    pub fn expire(&mut self, now: Millis) -> bool {
        let late: Vec<PeerId> = self
            .asked
            .iter()
            .filter(|(_, a)| a.at.saturating_add(LIST_ASK_TIMEOUT_MS) <= now)
            .map(|(p, _)| *p)
            .collect();
        for p in &late {
            self.failed(p);
        }
        !late.is_empty()
    }

    /// When the oldest unanswered question times out.
    pub fn next_expiry(&self) -> Option<Millis> {
        self.asked.values().map(|a| a.at.saturating_add(LIST_ASK_TIMEOUT_MS)).min()
    }

    /// Peers asked that have not answered (links wanted).
    pub fn waiting(&self) -> impl Iterator<Item = &PeerId> {
        self.asked.keys()
    }

    /// `peer` could not be asked or will not answer (dial failed, link lost before its answer).
    pub fn failed(&mut self, peer: &PeerId) {
        if self.asked.remove(peer).is_some() {
            self.lookup.on_failure(peer);
        }
    }

    /// A reply from `from` (already opened and addressed to us); ignored unless `from` was asked.
    pub fn on_reply(&mut self, from: &PeerId, reply: ListReply) -> Found {
        if reply.user_id != self.user_id || reply.region != self.region || self.asked.remove(from).is_none() {
            return Found::Nothing;
        }
        self.lookup.on_answer(from, reply.closer.into_iter().take(MAX_LIST_CLOSER));
        let Some(list) = reply.list.as_ref().and_then(|e| check_list(e).ok()) else { return Found::Nothing };
        if user_id(&list.owner) != self.user_id || self.best.as_ref().is_some_and(|b| b.generation >= list.generation) {
            return Found::Nothing;
        }
        self.best = Some(list.clone());
        Found::List(list)
    }

    /// The lookup has asked every peer it could.
    pub fn is_done(&self) -> bool {
        self.lookup.is_done()
    }

    pub fn best(&self) -> Option<&HolderList> {
        self.best.as_ref()
    }

    /// The `n` closest peers that answered, nearest first.
    pub fn closest(&self, n: usize) -> Vec<PeerId> {
        self.lookup.result().into_iter().take(n).collect()
    }
}

/// The owner's side of its list: the signed list of the current generation, and which of the
/// peers closest to its key have it. The targets are recomputed as the swarm changes (the closest
/// set moves under churn); a new generation goes to all of them again.
#[derive(Default)]
pub struct ListPublisher {
    list: Option<Envelope>,
    sent: BTreeSet<PeerId>,
    due: BTreeSet<PeerId>,
}

impl ListPublisher {
    /// A new generation's list, for `targets`.
    pub fn publish(&mut self, list: Envelope, targets: Vec<PeerId>) {
        self.list = Some(list);
        self.sent.clear();
        self.due = targets.into_iter().collect();
    }

    /// The closest set now: members that have not had the current list are due.
    pub fn retarget(&mut self, targets: Vec<PeerId>) {
        if self.list.is_some() {
            self.due = targets.into_iter().filter(|p| !self.sent.contains(p)).collect();
        }
    }

    /// The current generation's signed list.
    pub fn current(&self) -> Option<&Envelope> {
        self.list.as_ref()
    }

    /// More peers the list belongs at (a placement lookup's result).
    pub fn add(&mut self, targets: Vec<PeerId>) {
        if self.list.is_some() {
            self.due.extend(targets.into_iter().filter(|p| !self.sent.contains(p)));
        }
    }

    /// A link to `peer` is up: the list, if it is due there.
    pub fn on_up(&mut self, peer: &PeerId) -> Option<Envelope> {
        if !self.due.remove(peer) {
            return None;
        }
        self.sent.insert(*peer);
        self.list.clone()
    }

    /// Peers the list still has to reach (links wanted).
    pub fn due(&self) -> &BTreeSet<PeerId> {
        &self.due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::recovery::messages::sign;
    use rand::SeedableRng;

    fn ident(seed: u64) -> Identity {
        Identity::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(seed))
    }

    fn list_of(owner: &Identity, generation: u64) -> Envelope {
        let holders = (10..15).map(|i| ident(i).peer_id()).collect();
        sign(owner, &HolderList { owner: owner.peer_id(), generation, threshold: 3, holders }, 1_000)
    }

    #[test]
    fn a_store_keeps_the_newest_signed_list_and_refuses_forgeries() {
        let (owner, other) = (ident(1), ident(2));
        let mut s = ListStore::new(1);
        assert_eq!(s.put(list_of(&owner, 2)).unwrap(), owner.user_id());
        assert_eq!(s.put(list_of(&owner, 1)), Err(ListError::Older));
        assert_eq!(s.put(list_of(&owner, 2)), Err(ListError::Older));
        s.put(list_of(&owner, 3)).unwrap();
        assert_eq!(check_list(s.get(&owner.user_id()).unwrap()).unwrap().generation, 3);
        // Signed by another key than the owner it names.
        let forged =
            sign(&other, &HolderList { owner: owner.peer_id(), generation: 9, threshold: 3, holders: vec![] }, 1);
        assert_eq!(s.put(forged), Err(ListError::NotTheOwner));
        assert_eq!(s.put(list_of(&other, 1)), Err(ListError::Full(1)));
    }

    #[test]
    fn a_finder_keeps_the_newest_list_of_its_user_and_follows_closer_peers() {
        let (owner, other) = (ident(1), ident(2));
        let seeds: Vec<PeerId> = (20..23).map(|i| ident(i).peer_id()).collect();
        let mut f =
            ListFinder::new(&owner.user_id(), 0, seeds.clone(), LookupConfig { k: 3, alpha: 3, await_stalled: true });
        let asked = f.next_queries(0, |_| true);
        assert_eq!(asked.len(), 3);
        let reply = |list: Option<Envelope>, closer: Vec<PeerId>| ListReply {
            user_id: owner.user_id(),
            to: PeerId([0; 32]),
            list,
            closer,
            region: 0,
        };
        // Another user's list under our user id is ignored; the closer peer is asked next.
        let closer = ident(30).peer_id();
        assert_eq!(f.on_reply(&asked[0], reply(Some(list_of(&other, 5)), vec![closer])), Found::Nothing);
        assert!(
            matches!(f.on_reply(&asked[1], reply(Some(list_of(&owner, 2)), vec![])), Found::List(l) if l.generation == 2)
        );
        assert_eq!(f.on_reply(&asked[2], reply(Some(list_of(&owner, 1)), vec![])), Found::Nothing);
        assert_eq!(f.best().unwrap().generation, 2);
        assert!(f.next_queries(0, |_| true).contains(&closer) || f.is_done());
        // Replies from peers never asked are ignored.
        assert_eq!(f.on_reply(&ident(40).peer_id(), reply(Some(list_of(&owner, 9)), vec![])), Found::Nothing);
        assert_eq!(f.best().unwrap().generation, 2);
    }

    #[test]
    fn a_silent_peer_fails_after_the_ask_timeout_and_the_search_moves_on() {
        let owner = ident(1);
        let seeds: Vec<PeerId> = (20..24).map(|i| ident(i).peer_id()).collect();
        let mut f = ListFinder::new(&owner.user_id(), 0, seeds, LookupConfig { k: 3, alpha: 3, await_stalled: true });
        let asked = f.next_queries(1_000, |_| true);
        assert_eq!(asked.len(), 3);
        assert_eq!(f.next_expiry(), Some(1_000 + LIST_ASK_TIMEOUT_MS));
        let reply = ListReply { user_id: owner.user_id(), to: PeerId([0; 32]), list: None, closer: vec![], region: 0 };
        f.on_reply(&asked[0], reply.clone());
        f.on_reply(&asked[1], reply);
        // One never answers: not failed before its time, failed at it, and the fourth seed is
        // asked in its place.
        assert!(!f.expire(1_000 + LIST_ASK_TIMEOUT_MS - 1));
        assert!(!f.is_done());
        assert!(f.expire(1_000 + LIST_ASK_TIMEOUT_MS));
        assert_eq!(f.next_expiry(), None);
        let next = f.next_queries(9_000, |_| true);
        assert_eq!(next.len(), 1);
        assert!(!asked.contains(&next[0]));
    }
}
