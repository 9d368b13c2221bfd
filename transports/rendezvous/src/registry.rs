//! The registration table, a pure core: who is registered under which namespace until when.
//! Time comes in as `now_ms`; every order is a `BTreeMap` order, so paging is deterministic.
//!
//! Each registration gets a sequence number when first made; a refresh keeps it. Discovery pages
//! walk a namespace in sequence order and the cookie is the last sequence number walked, so pages
//! never repeat a registration and, after the last page, the cookie yields only newer ones.

use crate::proto::{Namespace, PeerId};
use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;

/// The bounds a `Registry` enforces (a subset of `ServerConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryLimits {
    pub max_registrations_per_peer: usize,
    pub max_registrations_total: usize,
    pub min_ttl_s: u64,
    pub max_ttl_s: u64,
    pub max_discover_limit: u32,
}

impl From<&crate::config::ServerConfig> for RegistryLimits {
    fn from(c: &crate::config::ServerConfig) -> Self {
        RegistryLimits {
            max_registrations_per_peer: c.max_registrations_per_peer,
            max_registrations_total: c.max_registrations_total,
            min_ttl_s: c.min_ttl_s,
            max_ttl_s: c.max_ttl_s,
            max_discover_limit: c.max_discover_limit,
        }
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RegistryError {
    #[error("peer {peer} is already registered under {max} namespaces (max_registrations_per_peer)")]
    TooManyForPeer { peer: PeerId, max: usize },
    #[error("the server holds its maximum of {max} registrations (max_registrations_total)")]
    Full { max: usize },
    #[error("cookie {cookie:?} was not issued by this server")]
    BadCookie { cookie: String },
}

/// Continuation point of a discovery walk: the last sequence number already walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Cookie(u64);

impl Cookie {
    /// Cookies are `c` + decimal sequence number; clients treat them as opaque.
    pub fn encode(&self) -> String {
        format!("c{}", self.0)
    }

    pub fn decode(s: &str) -> Result<Cookie, RegistryError> {
        let bad = || RegistryError::BadCookie { cookie: s.chars().take(40).collect() };
        let digits = s.strip_prefix('c').ok_or_else(bad)?;
        if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        digits.parse().map(Cookie).map_err(|_| bad())
    }
}

/// One page of a discovery walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub peers: Vec<PeerId>,
    /// Pass back for the next page. A page shorter than the limit asked means the walk reached
    /// the end (for now).
    pub cookie: Cookie,
}

#[derive(Debug, Clone)]
struct Entry {
    seq: u64,
    expires_ms: u64,
}

#[derive(Debug)]
pub struct Registry {
    limits: RegistryLimits,
    next_seq: u64,
    entries: BTreeMap<(Namespace, PeerId), Entry>,
    /// Per namespace, registrations in sequence order: the paging order.
    by_ns: BTreeMap<Namespace, BTreeMap<u64, PeerId>>,
    per_peer: BTreeMap<PeerId, BTreeSet<Namespace>>,
    /// (expires_ms, seq) -> key, so expiry pops from the front.
    expiry: BTreeMap<(u64, u64), (Namespace, PeerId)>,
}

impl Registry {
    pub fn new(limits: RegistryLimits) -> Registry {
        Registry {
            limits,
            next_seq: 1,
            entries: BTreeMap::new(),
            by_ns: BTreeMap::new(),
            per_peer: BTreeMap::new(),
            expiry: BTreeMap::new(),
        }
    }

    pub fn limits(&self) -> &RegistryLimits {
        &self.limits
    }

    /// Live and not yet swept registrations.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn clamp_ttl_s(&self, ttl_s: u64) -> u64 {
        ttl_s.clamp(self.limits.min_ttl_s, self.limits.max_ttl_s)
    }

    /// Registers or refreshes `peer` under `ns` until `now_ms + ttl` (ttl clamped); returns the
    /// TTL granted. A refresh keeps the registration's place in the paging order.
    pub fn register(&mut self, now_ms: u64, ns: &Namespace, peer: PeerId, ttl_s: u64) -> Result<u64, RegistryError> {
        self.expire(now_ms);
        let ttl_s = self.clamp_ttl_s(ttl_s);
        let expires_ms = now_ms.saturating_add(ttl_s.saturating_mul(1000));
        let key = (ns.clone(), peer);
        if let Some(entry) = self.entries.get_mut(&key) {
            let old = self.expiry.remove(&(entry.expires_ms, entry.seq));
            debug_assert!(old.is_some(), "every entry has an expiry slot");
            entry.expires_ms = expires_ms;
            self.expiry.insert((expires_ms, entry.seq), key);
            return Ok(ttl_s);
        }
        let held = self.per_peer.get(&peer).map_or(0, BTreeSet::len);
        if held >= self.limits.max_registrations_per_peer {
            return Err(RegistryError::TooManyForPeer { peer, max: self.limits.max_registrations_per_peer });
        }
        if self.entries.len() >= self.limits.max_registrations_total {
            return Err(RegistryError::Full { max: self.limits.max_registrations_total });
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.entries.insert(key.clone(), Entry { seq, expires_ms });
        self.by_ns.entry(ns.clone()).or_default().insert(seq, peer);
        self.per_peer.entry(peer).or_default().insert(ns.clone());
        self.expiry.insert((expires_ms, seq), key);
        self.check_sizes();
        Ok(ttl_s)
    }

    /// Removes one registration; false if there was none.
    pub fn unregister(&mut self, ns: &Namespace, peer: &PeerId) -> bool {
        let key = (ns.clone(), *peer);
        let Some(entry) = self.entries.remove(&key) else {
            return false;
        };
        self.expiry.remove(&(entry.expires_ms, entry.seq));
        if let Some(walk) = self.by_ns.get_mut(ns) {
            walk.remove(&entry.seq);
            if walk.is_empty() {
                self.by_ns.remove(ns);
            }
        }
        if let Some(set) = self.per_peer.get_mut(peer) {
            set.remove(ns);
            if set.is_empty() {
                self.per_peer.remove(peer);
            }
        }
        self.check_sizes();
        true
    }

    /// Removes every registration of `peer` (its connection closed); returns how many.
    pub fn unregister_peer(&mut self, peer: &PeerId) -> usize {
        let namespaces: Vec<Namespace> =
            self.per_peer.get(peer).map(|s| s.iter().cloned().collect()).unwrap_or_default();
        namespaces.iter().filter(|ns| self.unregister(ns, peer)).count()
    }

    /// Namespaces `peer` is registered under, in order.
    pub fn namespaces_of(&self, peer: &PeerId) -> Vec<Namespace> {
        self.per_peer.get(peer).map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }

    /// Sweeps registrations whose time is up (`expires_ms <= now_ms`); returns how many.
    pub fn expire(&mut self, now_ms: u64) -> usize {
        let mut swept = 0;
        while let Some((&(expires_ms, _), _)) = self.expiry.first_key_value() {
            if expires_ms > now_ms {
                break;
            }
            let Some((_, (ns, peer))) = self.expiry.pop_first() else { break };
            // unregister looks the expiry slot up again; it is already gone, which is fine.
            if self.unregister(&ns, &peer) {
                swept += 1;
            }
        }
        swept
    }

    /// When the next registration runs out, for a shell that wants to sweep exactly then.
    pub fn next_expiry_ms(&self) -> Option<u64> {
        self.expiry.first_key_value().map(|(&(t, _), _)| t)
    }

    /// One page of live registrations under `ns` after `cookie`, in registration order, leaving
    /// out `exclude` (the asker). `limit` is clamped to `1..=max_discover_limit`; 0 means the max.
    pub fn discover(
        &self,
        now_ms: u64,
        ns: &Namespace,
        exclude: Option<&PeerId>,
        limit: u32,
        cookie: Option<Cookie>,
    ) -> Page {
        let max = self.limits.max_discover_limit;
        let limit = if limit == 0 { max } else { limit.min(max) } as usize;
        let after = cookie.unwrap_or_default().0;
        let mut page = Page { peers: Vec::new(), cookie: Cookie(after) };
        let Some(walk) = self.by_ns.get(ns) else {
            return page;
        };
        for (&seq, peer) in walk.range(after.saturating_add(1)..) {
            if page.peers.len() == limit {
                break;
            }
            page.cookie = Cookie(seq);
            if Some(peer) == exclude {
                continue;
            }
            let live = self.entries.get(&(ns.clone(), *peer)).is_some_and(|e| e.expires_ms > now_ms);
            if live {
                page.peers.push(*peer);
            }
        }
        page
    }

    /// Full consistency check of the internal maps, O(n): for tests and the simulator.
    pub fn check_invariants(&self) -> Result<(), String> {
        if self.entries.len() != self.expiry.len() {
            return Err(format!("{} entries but {} expiry slots", self.entries.len(), self.expiry.len()));
        }
        let mut walked = 0;
        for (ns, walk) in &self.by_ns {
            if walk.is_empty() {
                return Err(format!("empty walk kept for namespace {ns}"));
            }
            for (seq, peer) in walk {
                let entry = self.entries.get(&(ns.clone(), *peer)).ok_or(format!("walk {ns}/{seq} has no entry"))?;
                if entry.seq != *seq || entry.seq >= self.next_seq {
                    return Err(format!("walk {ns}/{seq} points at entry with seq {}", entry.seq));
                }
                if self.expiry.get(&(entry.expires_ms, entry.seq)) != Some(&(ns.clone(), *peer)) {
                    return Err(format!("entry {ns}/{seq} has no matching expiry slot"));
                }
                walked += 1;
            }
        }
        let held: usize = self.per_peer.values().map(BTreeSet::len).sum();
        if walked != self.entries.len() || held != self.entries.len() {
            return Err(format!("{} entries, {walked} in walks, {held} per peer", self.entries.len()));
        }
        if self.per_peer.values().any(|s| s.len() > self.limits.max_registrations_per_peer) {
            return Err("a peer exceeds max_registrations_per_peer".into());
        }
        Ok(())
    }

    /// Cheap invariants, checked after every mutation (release builds keep debug assertions).
    fn check_sizes(&self) {
        debug_assert_eq!(self.entries.len(), self.expiry.len());
        debug_assert!(self.entries.len() <= self.limits.max_registrations_total);
        // Cross-map consistency (by_ns, per_peer) is O(n) to check: the property test does it.
    }
}
