//! The feeds core. A local publication (post or file) is appended to this node's feed record and
//! announced: a signed [`Announcement`] sent to every link, which receivers check, de-duplicate,
//! keep (the latest few per owner) and pass on to `fanout` random links while `hops` last and the
//! owner's rate allows. A node that follows the owner learns the entry. Followers also catch up:
//! they `Ask` each new link for what it holds of their followed owners, and read the followed
//! feed records through sync when they come back online and every `poll_interval_ms`.
//!
//! Pure: `now` comes in, sends, sync reads and writes and table writes go out.

use super::config::FeedsConfig;
use super::entry::{
    Announcement, EntryKind, FeedEntry, FeedError, FeedMessage, FeedRecord, MAX_ASK_OWNERS, MAX_FEED_ITEMS,
};
use super::follow::{FollowError, Followee, Follows, StoredFollow};
use super::limit::RateLimiter;
use crate::core::{Core, Effect, LinkEvent, Outputs};
use crate::gossip::SeenCache;
use crate::identity::{Envelope, Identity, Rejection, Verifier};
use crate::links::LinkView;
use crate::observer::Offence;
use crate::storage::Op;
use crate::time::Millis;
use crate::types::PeerId;
use crate::wire::Message;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::rc::Rc;

pub type OpId = u64;

/// Followed feeds read per poll round, at most (the rest in the next rounds).
pub const MAX_READS_PER_ROUND: usize = 64;
/// A started node announces its own latest entries this long after its first link (so that
/// more links are up).
pub const START_ANNOUNCE_DELAY_MS: Millis = 10_000;

#[derive(Debug)]
pub enum Input {
    Frame {
        from: PeerId,
        msg: FeedMessage,
    },
    Link(LinkEvent),
    /// A local publication completed: append it to this node's feed and announce it.
    Published {
        kind: EntryKind,
        name: String,
        link: String,
    },
    Follow {
        op: OpId,
        user: Followee,
    },
    Unfollow {
        op: OpId,
        user: Followee,
    },
    /// Entries of followed users, newest first, at most `limit`.
    List {
        op: OpId,
        limit: usize,
    },
    /// A followed feed's record as a sync read found it: its winning value and writer.
    FeedRead {
        owner: PeerId,
        winner: Option<(PeerId, Vec<u8>)>,
    },
    /// What was stored at start: the follows and this node's own feed record value.
    Restore {
        follows: Vec<StoredFollow>,
        own: Option<Vec<u8>>,
    },
}

/// One entry of a followed user, as `swarm feed` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedItem {
    pub owner: PeerId,
    pub entry: FeedEntry,
    /// When this node learned it, Unix ms.
    pub learned_ms: u64,
}

#[derive(Debug)]
pub enum FeedEvent {
    Followed {
        op: OpId,
        result: Result<StoredFollow, FollowError>,
    },
    Unfollowed {
        op: OpId,
        result: Result<(), FollowError>,
    },
    /// The followed users and their entries.
    Feed {
        op: OpId,
        follows: Vec<StoredFollow>,
        items: Vec<FeedItem>,
    },
    /// A new entry of a followed user (for listeners that measure).
    Learned(FeedItem),
    /// This node's own publication went into its feed.
    Appended(FeedEntry),
}

#[derive(Debug)]
pub enum Output {
    Effect(Effect),
    /// Write this node's feed record (owner: this node, key `feed`) with this value.
    WriteFeed(Vec<u8>),
    /// Read `owner`'s feed record (answered with `Input::FeedRead`).
    ReadFeed(PeerId),
    Store(Vec<Op>),
    /// Something refused or dropped, and why (logged).
    Dropped {
        from: Option<PeerId>,
        error: String,
    },
    Done(FeedEvent),
}

/// Counters, for tests and the simulator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeedStats {
    pub duplicates: u64,
    pub rejected: u64,
    pub rate_limited: u64,
    pub relayed: u64,
}

pub struct FeedsCore {
    me: PeerId,
    identity: Rc<Identity>,
    verifier: Rc<dyn Verifier>,
    unix_epoch_ms: u64,
    cfg: FeedsConfig,
    links: LinkView,
    rng: ChaCha8Rng,
    own: FeedRecord,
    follows: Follows,
    seen: SeenCache,
    /// Per owner, when its last announcement came and the latest ones heard (to answer `Ask`s).
    cache: BTreeMap<PeerId, (Millis, Vec<Announcement>)>,
    by_owner: RateLimiter<PeerId>,
    by_link: RateLimiter<PeerId>,
    online: bool,
    /// The start announcement, once the first link is up.
    announce_at: Option<Millis>,
    announced_start: bool,
    next_poll: Option<Millis>,
    poll_cursor: usize,
    stats: FeedStats,
    out: Outputs<Output>,
}

impl FeedsCore {
    pub fn new(
        identity: Rc<Identity>,
        verifier: Rc<dyn Verifier>,
        unix_epoch_ms: u64,
        cfg: FeedsConfig,
        links: LinkView,
        rng: ChaCha8Rng,
    ) -> Self {
        FeedsCore {
            me: identity.peer_id(),
            identity,
            verifier,
            unix_epoch_ms,
            seen: SeenCache::new(cfg.max_seen),
            follows: Follows::new(cfg.max_follows, cfg.max_learned_per_owner),
            by_owner: RateLimiter::new(cfg.owner_burst, cfg.owner_per_hour, cfg.max_tracked),
            by_link: RateLimiter::new(cfg.link_burst, cfg.link_per_hour, cfg.max_tracked),
            cfg,
            links,
            rng,
            own: FeedRecord::default(),
            cache: BTreeMap::new(),
            online: false,
            announce_at: None,
            announced_start: false,
            next_poll: None,
            poll_cursor: 0,
            stats: FeedStats::default(),
            out: Outputs::new(),
        }
    }

    pub fn stats(&self) -> FeedStats {
        self.stats
    }

    pub fn own(&self) -> &FeedRecord {
        &self.own
    }

    pub fn follows(&self) -> &Follows {
        &self.follows
    }

    fn unix(&self, now: Millis) -> u64 {
        self.unix_epoch_ms + now
    }

    fn publish(&mut self, now: Millis, kind: EntryKind, name: &str, link: String) {
        let entry = self.own.append(kind, name, link, self.unix(now));
        self.out.push_back(Output::WriteFeed(self.own.encode()));
        let ann = Announcement::seal(&self.identity, entry.clone());
        ann.envelope().announce_to(&*self.verifier);
        if let Some(id) = ann.envelope().quick_id() {
            self.seen.insert(id, now);
        }
        self.keep(now, &ann);
        let to = self.links.peers();
        if !to.is_empty() {
            let items = vec![ann.envelope().clone()];
            let msg = Message::Feed(FeedMessage::Announce { hops: self.cfg.max_hops, items });
            self.out.push_back(Output::Effect(Effect::Broadcast { to, msg }));
        }
        self.out.push_back(Output::Done(FeedEvent::Appended(entry)));
    }

    /// This node's latest entries, to every link (everything local is announced at start).
    fn announce_own(&mut self) {
        let to = self.links.peers();
        let skip = self.own.entries.len().saturating_sub(self.cfg.cached_per_owner.min(MAX_FEED_ITEMS));
        let items: Vec<Envelope> = self.own.entries[skip..]
            .iter()
            .map(|e| Announcement::seal(&self.identity, e.clone()).envelope().clone())
            .collect();
        if !to.is_empty() && !items.is_empty() {
            let msg = Message::Feed(FeedMessage::Announce { hops: self.cfg.max_hops, items });
            self.out.push_back(Output::Effect(Effect::Broadcast { to, msg }));
        }
    }

    fn on_frame(&mut self, now: Millis, from: PeerId, msg: FeedMessage) {
        if !self.links.contains(&from) {
            return;
        }
        if !self.by_link.allow(now, from) {
            self.stats.rate_limited += 1;
            self.out
                .push_back(Output::Dropped { from: Some(from), error: "feed messages over the link's rate".into() });
            return;
        }
        match msg {
            FeedMessage::Announce { hops, items } => self.on_announce(now, from, hops, items),
            FeedMessage::Ask { owners } => self.on_ask(from, owners),
        }
    }

    fn on_announce(&mut self, now: Millis, from: PeerId, hops: u8, items: Vec<Envelope>) {
        let mut relay = Vec::new();
        let hops = hops.min(self.cfg.max_hops);
        for env in items.into_iter().take(MAX_FEED_ITEMS) {
            let id = env.quick_id();
            if env.public_key == self.me || id.is_some_and(|id| self.seen.contains(&id)) {
                self.stats.duplicates += 1;
                continue;
            }
            let ahead = env.check_fresh(self.unix(now), u64::MAX, self.cfg.max_clock_ahead_ms);
            let ann = match ahead.map_err(FeedError::Signature).and_then(|()| Announcement::open(env, &*self.verifier))
            {
                Ok(a) => a,
                Err(e) => {
                    self.reject(from, e);
                    continue;
                }
            };
            if let Some(id) = id {
                self.seen.insert(id, now);
            }
            self.keep(now, &ann);
            self.learn(now, ann.owner(), ann.entry().clone());
            let fresh = ann.envelope().check_fresh(self.unix(now), self.cfg.relay_max_age_ms, u64::MAX).is_ok();
            if hops >= 1 && fresh {
                if self.by_owner.allow(now, ann.owner()) {
                    relay.push(ann.envelope().clone());
                } else {
                    self.stats.rate_limited += 1;
                }
            }
        }
        if !relay.is_empty() {
            self.relay(from, hops - 1, relay);
        }
    }

    fn reject(&mut self, from: PeerId, e: FeedError) {
        self.stats.rejected += 1;
        let reason = match &e {
            FeedError::Signature(r) => *r,
            _ => Rejection::Malformed,
        };
        self.out.push_back(Output::Effect(Effect::Report { peer: from, offence: Offence::InvalidEnvelope(reason) }));
        self.out.push_back(Output::Dropped { from: Some(from), error: format!("announcement refused: {e}") });
    }

    /// Pass `items` on to `fanout` random links other than the sender.
    fn relay(&mut self, from: PeerId, hops: u8, items: Vec<Envelope>) {
        let mut to = self.links.peers();
        to.retain(|p| *p != from);
        to.sort_unstable();
        to.shuffle(&mut self.rng);
        to.truncate(self.cfg.fanout);
        if to.is_empty() {
            return;
        }
        self.stats.relayed += 1;
        let msg = Message::Feed(FeedMessage::Announce { hops, items });
        self.out.push_back(Output::Effect(Effect::Broadcast { to, msg }));
    }

    fn on_ask(&mut self, from: PeerId, owners: Vec<PeerId>) {
        let items: Vec<Envelope> = owners
            .iter()
            .take(MAX_ASK_OWNERS)
            .filter_map(|o| self.cache.get(o))
            .flat_map(|(_, list)| list)
            .map(|a| a.envelope().clone())
            .take(MAX_FEED_ITEMS)
            .collect();
        if !items.is_empty() {
            let msg = Message::Feed(FeedMessage::Announce { hops: 0, items });
            self.out.push_back(Output::Effect(Effect::Send { to: from, msg }));
        }
    }

    /// Keep an announcement among its owner's latest (highest sequence numbers), within bounds.
    fn keep(&mut self, now: Millis, ann: &Announcement) {
        let owner = ann.owner();
        let (touched, list) = self.cache.entry(owner).or_insert((now, Vec::new()));
        if list.iter().any(|a| a.entry().seq == ann.entry().seq) {
            return;
        }
        list.push(ann.clone());
        list.sort_by_key(|a| std::cmp::Reverse(a.entry().seq));
        list.truncate(self.cfg.cached_per_owner);
        *touched = now;
        while self.cache.len() > self.cfg.max_cached_owners {
            let Some(oldest) = self.cache.iter().min_by_key(|(p, (t, _))| (*t, **p)).map(|(p, _)| *p) else {
                break;
            };
            self.cache.remove(&oldest);
        }
    }

    /// An entry of `owner` (checked by its signature or its record): learned if followed.
    fn learn(&mut self, now: Millis, owner: PeerId, entry: FeedEntry) {
        let learned_ms = self.unix(now);
        if let Some(update) = self.follows.peer_seen(&owner) {
            self.out.push_back(Output::Store(vec![super::store::put_op(&update)]));
        }
        if self.follows.learn(&owner, entry.clone(), learned_ms) {
            self.out.push_back(Output::Done(FeedEvent::Learned(FeedItem { owner, entry, learned_ms })));
        }
    }

    fn on_feed_read(&mut self, now: Millis, owner: PeerId, winner: Option<(PeerId, Vec<u8>)>) {
        let Some((writer, value)) = winner else { return };
        if writer != owner {
            // A writer the owner granted could write the record; only the owner's own entries count.
            let error = format!("feed record of {} written by {}", owner.short(), writer.short());
            return self.out.push_back(Output::Dropped { from: None, error });
        }
        match FeedRecord::decode(&value) {
            Ok(r) => r.entries.into_iter().for_each(|e| self.learn(now, owner, e)),
            Err(e) => {
                self.out.push_back(Output::Dropped { from: None, error: format!("feed of {}: {e}", owner.short()) })
            }
        }
    }

    fn follow(&mut self, now: Millis, op: OpId, user: Followee) {
        let result = self.follows.follow(&user, self.me, self.unix(now));
        if let Ok((row, new)) = &result {
            if *new {
                self.out.push_back(Output::Store(vec![super::store::put_op(row)]));
            }
            if let Some(peer) = row.peer {
                // Catch up at once: the record through sync, the neighbours' latest announcements.
                self.out.push_back(Output::ReadFeed(peer));
                let mut to = self.links.peers();
                to.sort_unstable();
                to.shuffle(&mut self.rng);
                to.truncate(self.cfg.fanout);
                if !to.is_empty() {
                    let msg = Message::Feed(FeedMessage::Ask { owners: vec![peer] });
                    self.out.push_back(Output::Effect(Effect::Broadcast { to, msg }));
                }
            }
        }
        let result = result.map(|(row, _)| row);
        self.out.push_back(Output::Done(FeedEvent::Followed { op, result }));
    }

    fn unfollow(&mut self, op: OpId, user: Followee) {
        let result = self
            .follows
            .unfollow(&user)
            .map(|uid| self.out.push_back(Output::Store(vec![super::store::delete_op(&uid)])));
        self.out.push_back(Output::Done(FeedEvent::Unfollowed { op, result }));
    }

    fn on_link(&mut self, now: Millis, ev: LinkEvent) {
        match ev {
            LinkEvent::Up { peer, .. } => {
                if !self.announced_start && self.announce_at.is_none() && !self.own.entries.is_empty() {
                    self.announce_at = Some(now + START_ANNOUNCE_DELAY_MS);
                }
                let owners = self.follows.known_peers(MAX_ASK_OWNERS);
                if !owners.is_empty() {
                    self.out.push_back(Output::Effect(Effect::Send {
                        to: peer,
                        msg: Message::Feed(FeedMessage::Ask { owners }),
                    }));
                }
                if !self.online {
                    // Back online: read the followed feeds (what was missed while away).
                    self.online = true;
                    self.poll();
                }
            }
            LinkEvent::Down { peer, .. } => {
                self.by_link.forget(&peer);
                self.online = !self.links.is_empty();
            }
            LinkEvent::DialFailed { .. } => {}
        }
    }

    /// Read up to [`MAX_READS_PER_ROUND`] followed feeds, going round.
    fn poll(&mut self) {
        let peers = self.follows.known_peers(usize::MAX);
        if peers.is_empty() {
            return;
        }
        let n = peers.len().min(MAX_READS_PER_ROUND);
        for i in 0..n {
            let p = peers[(self.poll_cursor + i) % peers.len()];
            self.out.push_back(Output::ReadFeed(p));
        }
        self.poll_cursor = (self.poll_cursor + n) % peers.len();
    }

    fn list(&mut self, op: OpId, limit: usize) {
        let items = self.follows.items(limit);
        let follows = self.follows.rows();
        self.out.push_back(Output::Done(FeedEvent::Feed { op, follows, items }));
    }

    fn restore(&mut self, follows: Vec<StoredFollow>, own: Option<Vec<u8>>) {
        for f in follows {
            if let Err(e) = self.follows.restore(f) {
                self.out.push_back(Output::Dropped { from: None, error: format!("stored follow: {e}") });
            }
        }
        if let Some(value) = own {
            match FeedRecord::decode(&value) {
                Ok(r) => self.own = r,
                Err(e) => self.out.push_back(Output::Dropped { from: None, error: format!("own feed record: {e}") }),
            }
        }
    }

    /// Keep the poll timer while anything is followed.
    fn settle(&mut self, now: Millis) {
        if self.follows.is_empty() {
            self.next_poll = None;
        } else if self.next_poll.is_none() {
            self.next_poll = Some(now + self.cfg.poll_interval_ms);
        }
    }
}

impl Core for FeedsCore {
    type Input = Input;
    type Output = Output;

    fn handle(&mut self, now: Millis, input: Input) {
        match input {
            Input::Frame { from, msg } => self.on_frame(now, from, msg),
            Input::Link(ev) => self.on_link(now, ev),
            Input::Published { kind, name, link } => self.publish(now, kind, &name, link),
            Input::Follow { op, user } => self.follow(now, op, user),
            Input::Unfollow { op, user } => self.unfollow(op, user),
            Input::List { op, limit } => self.list(op, limit),
            Input::FeedRead { owner, winner } => self.on_feed_read(now, owner, winner),
            Input::Restore { follows, own } => self.restore(follows, own),
        }
        self.settle(now);
    }

    fn handle_timeout(&mut self, now: Millis) {
        if self.announce_at.is_some_and(|t| t <= now) {
            self.announce_at = None;
            self.announced_start = true;
            self.announce_own();
        }
        if self.next_poll.is_some_and(|t| t <= now) {
            self.next_poll = Some(now + self.cfg.poll_interval_ms);
            self.seen.expire(now.saturating_sub(2 * self.cfg.relay_max_age_ms));
            if self.online {
                self.poll();
            }
        }
        self.settle(now);
    }

    fn next_timeout(&self) -> Option<Millis> {
        [self.announce_at, self.next_poll].into_iter().flatten().min()
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn check_invariants(&self) {
        debug_assert!(self.cache.len() <= self.cfg.max_cached_owners, "announcement cache over its owner bound");
        debug_assert!(
            self.cache.values().all(|(_, l)| l.len() <= self.cfg.cached_per_owner),
            "cache over per-owner bound"
        );
        debug_assert!(self.seen.len() <= self.cfg.max_seen, "seen cache over its bound");
        self.by_owner.check_invariants();
        self.by_link.check_invariants();
        self.follows.check_invariants();
    }
}
