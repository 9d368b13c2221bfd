//! Per-link inbound rate limits: what a flooder would abuse, each link's peer gets a budget of,
//! checked by the router's inbox before a frame reaches any subsystem. Rumours of the peer's
//! own (each costs every receiver a signature check, and the relays pass them on) and requests
//! (lookup questions, routed and chunk requests, peer exchange: each costs an answer) are
//! counted in token buckets ([`bucket`]); a frame over budget is dropped unprocessed, and the
//! link reported (`Offence::Flood`) at most once per `report_interval_ms`.
//!
//! Only the peer's own rumours are counted, not those it relays: warnings are pushed at once
//! and forwarded by every node, so the rumours crossing one link grow with the swarm and with
//! how many adversaries it holds (measured at 300 nodes with a fifth adversarial: 68 in one
//! second on one link), while a node's own stay few whatever happens around it. Every rumour
//! was counted against its origin on the link it entered the swarm by, and a node cannot sign
//! for another.

pub mod bucket;
pub mod config;
#[cfg(test)]
mod tests;

pub use bucket::{Rate, TokenBucket};
pub use config::FloodConfig;

use crate::time::Millis;
use crate::types::PeerId;
use crate::wire::{LookupMsg, Message, Relayed};

/// What a frame costs against its link's budgets (nothing for most frames).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Charge {
    /// Rumours signed by the link's peer.
    pub rumors: u32,
    pub requests: u32,
}

impl Charge {
    /// The cost of `msg`, received from `from`.
    pub fn of(from: &PeerId, msg: &Message) -> Charge {
        let request = Charge { rumors: 0, requests: 1 };
        match msg {
            Message::Gossip { rumors } => {
                let own = rumors.iter().filter(|r| r.origin() == *from).count();
                Charge { rumors: u32::try_from(own).unwrap_or(u32::MAX), requests: 0 }
            }
            Message::Lookup(LookupMsg::FindNode { .. })
            | Message::Relay { msg: Relayed::Lookup(LookupMsg::FindNode { .. }), .. }
            | Message::Route { .. }
            | Message::GetChunk { .. }
            | Message::GetVia { .. }
            | Message::PexRequest { .. } => request,
            _ => Charge::default(),
        }
    }

    pub fn is_free(&self) -> bool {
        *self == Charge::default()
    }
}

/// What to do with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Within budget: process it.
    Pass,
    /// Over budget: drop it (the link was reported within `report_interval_ms`).
    Drop,
    /// Over budget: drop it and report the link.
    Report,
}

/// One link's budgets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    rumors: TokenBucket,
    requests: TokenBucket,
    /// When the link was last reported.
    reported_ms: Option<Millis>,
}

impl FloodConfig {
    fn rumors(&self) -> Rate {
        Rate { burst: self.max_rumors_burst, per_min: self.rumors_per_min }
    }

    fn requests(&self) -> Rate {
        Rate { burst: self.max_requests_burst, per_min: self.requests_per_min }
    }
}

impl Budget {
    /// A new link's budgets, full.
    pub fn new(cfg: &FloodConfig, now: Millis) -> Self {
        Budget {
            rumors: TokenBucket::full(cfg.rumors(), now),
            requests: TokenBucket::full(cfg.requests(), now),
            reported_ms: None,
        }
    }

    /// Charge a frame: taken whole if both budgets have room for it, else dropped whole (and
    /// nothing taken).
    pub fn admit(&mut self, cfg: &FloodConfig, now: Millis, charge: Charge) -> Admit {
        if charge.is_free() {
            return Admit::Pass;
        }
        self.rumors.refill(now, cfg.rumors());
        self.requests.refill(now, cfg.requests());
        if self.rumors.has(charge.rumors) && self.requests.has(charge.requests) {
            self.rumors.take(charge.rumors);
            self.requests.take(charge.requests);
            return Admit::Pass;
        }
        match self.reported_ms {
            Some(t) if now.saturating_sub(t) < cfg.report_interval_ms => Admit::Drop,
            _ => {
                self.reported_ms = Some(now);
                Admit::Report
            }
        }
    }

    /// Whole tokens left in each budget (as last refilled): rumours, requests.
    pub fn tokens(&self) -> (u64, u64) {
        (self.rumors.tokens(), self.requests.tokens())
    }
}
