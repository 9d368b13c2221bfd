//! The followed users and what was learned of each: a bounded map by user id (16 hex digits of
//! SHA-256 of the public key), the peer id once known (given, or learned from a signed
//! announcement), and each user's latest entries with when they were learned.

use super::core::FeedItem;
use super::entry::FeedEntry;
pub use super::store::StoredFollow;
use crate::identity::user_id;
use crate::types::PeerId;
use std::collections::BTreeMap;

/// Whom to follow: a user id, with the peer id when the user gave one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Followee {
    pub user_id: String,
    pub peer: Option<PeerId>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FollowError {
    #[error("user id `{0}` is neither a user id (16 hex digits) nor a peer id (64 hex digits)")]
    Malformed(String),
    #[error("user {0} is this node itself")]
    Myself(String),
    #[error("this node follows {max} users already; unfollow one first")]
    TooMany { max: usize },
    #[error("this node does not follow user {0}")]
    NotFollowing(String),
}

impl Followee {
    /// `text`: a user id (16 hex digits) or a peer id (64 hex digits).
    pub fn parse(text: &str) -> Result<Followee, FollowError> {
        let s = text.trim();
        let hex = !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit());
        match s.len() {
            16 if hex => Ok(Followee { user_id: s.to_ascii_lowercase(), peer: None }),
            64 if hex => {
                let peer: PeerId = s.parse().map_err(|_| FollowError::Malformed(s.chars().take(80).collect()))?;
                Ok(Followee { user_id: user_id(&peer), peer: Some(peer) })
            }
            _ => Err(FollowError::Malformed(s.chars().take(80).collect())),
        }
    }

    pub fn of(peer: PeerId) -> Followee {
        Followee { user_id: user_id(&peer), peer: Some(peer) }
    }
}

#[derive(Clone, Debug)]
struct Followed {
    peer: Option<PeerId>,
    since_ms: u64,
    /// seq -> (entry, learned at, Unix ms).
    learned: BTreeMap<u64, (FeedEntry, u64)>,
}

#[derive(Clone, Debug)]
pub struct Follows {
    max_follows: usize,
    max_learned: usize,
    by_user: BTreeMap<String, Followed>,
}

impl Follows {
    pub fn new(max_follows: usize, max_learned: usize) -> Self {
        Follows { max_follows, max_learned, by_user: BTreeMap::new() }
    }

    pub fn is_empty(&self) -> bool {
        self.by_user.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_user.len()
    }

    pub fn contains(&self, user_id: &str) -> bool {
        self.by_user.contains_key(user_id)
    }

    /// Follow `user`; the row and whether it is new (following twice is no error).
    pub fn follow(&mut self, user: &Followee, me: PeerId, now_ms: u64) -> Result<(StoredFollow, bool), FollowError> {
        if user.user_id == user_id(&me) {
            return Err(FollowError::Myself(user.user_id.clone()));
        }
        if let Some(f) = self.by_user.get_mut(&user.user_id) {
            let newly_known = f.peer.is_none() && user.peer.is_some();
            if newly_known {
                f.peer = user.peer;
            }
            let row = StoredFollow { user_id: user.user_id.clone(), peer: f.peer, since_ms: f.since_ms };
            return Ok((row, newly_known));
        }
        if self.by_user.len() >= self.max_follows {
            return Err(FollowError::TooMany { max: self.max_follows });
        }
        let f = Followed { peer: user.peer, since_ms: now_ms, learned: BTreeMap::new() };
        self.by_user.insert(user.user_id.clone(), f);
        Ok((StoredFollow { user_id: user.user_id.clone(), peer: user.peer, since_ms: now_ms }, true))
    }

    /// A row read back at start.
    pub fn restore(&mut self, row: StoredFollow) -> Result<(), FollowError> {
        let user = Followee::parse(&row.user_id)?;
        if row.peer.is_some_and(|p| user_id(&p) != user.user_id) {
            return Err(FollowError::Malformed(row.user_id));
        }
        if self.by_user.len() >= self.max_follows {
            return Err(FollowError::TooMany { max: self.max_follows });
        }
        self.by_user
            .insert(user.user_id, Followed { peer: row.peer, since_ms: row.since_ms, learned: BTreeMap::new() });
        Ok(())
    }

    /// Stop following; the user id removed.
    pub fn unfollow(&mut self, user: &Followee) -> Result<String, FollowError> {
        match self.by_user.remove(&user.user_id) {
            Some(_) => Ok(user.user_id.clone()),
            None => Err(FollowError::NotFollowing(user.user_id.clone())),
        }
    }

    /// A followed user's peer id, learned from its signature: the row to store when it is new.
    pub fn peer_seen(&mut self, peer: &PeerId) -> Option<StoredFollow> {
        if self.by_user.is_empty() {
            return None;
        }
        let uid = user_id(peer);
        let f = self.by_user.get_mut(&uid)?;
        if f.peer.is_some() {
            return None;
        }
        f.peer = Some(*peer);
        Some(StoredFollow { user_id: uid, peer: f.peer, since_ms: f.since_ms })
    }

    /// Take `entry` of `owner` if followed and new (the oldest go past the bound); true if taken.
    pub fn learn(&mut self, owner: &PeerId, entry: FeedEntry, learned_ms: u64) -> bool {
        if self.by_user.is_empty() {
            return false;
        }
        let Some(f) = self.by_user.get_mut(&user_id(owner)) else { return false };
        if f.peer != Some(*owner) || f.learned.contains_key(&entry.seq) {
            return false;
        }
        if f.learned.len() >= self.max_learned && f.learned.first_key_value().is_some_and(|(s, _)| *s > entry.seq) {
            return false;
        }
        f.learned.insert(entry.seq, (entry, learned_ms));
        while f.learned.len() > self.max_learned {
            f.learned.pop_first();
        }
        true
    }

    /// Peer ids of followed users (those known), at most `n`, in user id order.
    pub fn known_peers(&self, n: usize) -> Vec<PeerId> {
        self.by_user.values().filter_map(|f| f.peer).take(n).collect()
    }

    /// Learned entries, newest first (by publication time, then owner and seq), at most `limit`.
    pub fn items(&self, limit: usize) -> Vec<FeedItem> {
        let mut items: Vec<FeedItem> = self
            .by_user
            .values()
            .filter_map(|f| Some((f.peer?, f)))
            .flat_map(|(owner, f)| {
                f.learned.values().map(move |(e, l)| FeedItem { owner, entry: e.clone(), learned_ms: *l })
            })
            .collect();
        items.sort_by(|a, b| {
            (b.entry.published_ms, b.owner, b.entry.seq).cmp(&(a.entry.published_ms, a.owner, a.entry.seq))
        });
        items.truncate(limit);
        items
    }

    /// The followed users as stored.
    pub fn rows(&self) -> Vec<StoredFollow> {
        self.by_user
            .iter()
            .map(|(u, f)| StoredFollow { user_id: u.clone(), peer: f.peer, since_ms: f.since_ms })
            .collect()
    }

    pub fn check_invariants(&self) {
        debug_assert!(self.by_user.len() <= self.max_follows, "follows over their bound");
        debug_assert!(self.by_user.values().all(|f| f.learned.len() <= self.max_learned), "learned over its bound");
        debug_assert!(
            self.by_user.iter().all(|(u, f)| f.peer.is_none_or(|p| user_id(&p) == *u)),
            "a followed peer id does not match its user id"
        );
    }
}
