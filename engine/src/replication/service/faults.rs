//! Deliberate misbehaviour of a content service, for the simulator's adversaries only (a real
//! node never sets any): holding replicas and never serving them, serving wrong bytes, answering
//! late. Applied where the service answers from its store, so the rest of the node (announcing
//! holdings, accepting replicas, relaying) stays as an honest node's. A flooder's bursts of
//! lookup questions are sent from here too.

use super::*;

/// What an adversarial content service does; nothing by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContentFaults {
    /// Accept replicas and announce them, but answer every request for one "not here".
    pub withhold: bool,
    /// Serve bytes that do not hash to the chunk asked for.
    pub corrupt: bool,
    /// Hold every answer from the store this long before sending it.
    pub slow_ms: Millis,
    /// Honest until this time (node time, ms): a covert adversary builds a score first.
    pub from_ms: Millis,
    /// Not content: the node's recovery holder releases a wrong share (a lying holder). Carried
    /// here so the node's adversarial faults come in one place.
    pub lie_shares: bool,
    /// Not content either: discovery answers peer exchange with dead or invented ids.
    pub poison_pex: bool,
    /// A flooder: every [`FLOOD_INTERVAL_MS`], this many lookup questions (for made-up keys) to
    /// every link...
    pub flood_lookups: usize,
    /// ...and every gossip round this many more rumours of its own (the gossip core's
    /// `Faults::flood_rumors`; carried here so the node's adversarial faults come in one place).
    pub flood_rumors: usize,
    /// ...and a slanderer's group (the gossip core's `Faults::slander`).
    pub slander: Option<crate::gossip::Slander>,
}

/// How often a flooder sends its burst of lookup questions.
pub const FLOOD_INTERVAL_MS: Millis = 5_000;

impl ContentFaults {
    /// The content service is honest (`lie_shares` is the recovery holder's).
    pub fn is_honest(&self) -> bool {
        !self.withhold && !self.corrupt && self.slow_ms == 0
    }

    fn active(&self, now: Millis) -> bool {
        !self.is_honest() && now >= self.from_ms
    }
}

impl ContentCore {
    pub fn with_faults(mut self, faults: ContentFaults) -> Self {
        self.faults = faults;
        self
    }

    /// The bytes a read for someone else is answered with, once the faults had their way.
    pub(super) fn tamper(&self, now: Millis, data: Option<Vec<u8>>) -> Option<Vec<u8>> {
        if !self.faults.active(now) {
            return data;
        }
        if self.faults.withhold {
            return None;
        }
        let mut data = data?;
        if self.faults.corrupt {
            match data.first_mut() {
                Some(b) => *b ^= 0xff,
                None => data.push(0),
            }
        }
        Some(data)
    }

    /// Send an answer from the store: at once, or after the slow fault's delay.
    pub(super) fn answer_send(&mut self, now: Millis, to: PeerId, msg: Message) {
        if self.faults.active(now) && self.faults.slow_ms > 0 {
            self.delayed.push_back((now + self.faults.slow_ms, to, msg));
        } else {
            self.send(to, msg);
        }
    }

    /// The flooder's burst of lookup questions, when due: the same made-up question to every
    /// link, `flood_lookups` times (answers to unknown queries are ignored).
    pub(super) fn flood(&mut self, now: Millis) {
        if self.faults.flood_lookups == 0 || now < self.flood_next_ms {
            return;
        }
        self.flood_next_ms = now + FLOOD_INTERVAL_MS;
        let to = self.links.peers();
        if to.is_empty() {
            return;
        }
        for i in 0..self.faults.flood_lookups as u64 {
            // Query ids far from the node's own lookups' (counted up from 0).
            let query = u64::MAX / 2 + now.saturating_mul(1_000) + i;
            let mut target = [0u8; 32];
            target[..8].copy_from_slice(&query.to_le_bytes());
            let msg = Message::Lookup(LookupMsg::FindNode { query, target });
            self.effect(Effect::Broadcast { to: to.clone(), msg });
        }
    }

    pub(super) fn flood_timeout(&self) -> Option<Millis> {
        (self.faults.flood_lookups > 0).then_some(self.flood_next_ms)
    }

    /// Delayed answers now due (their link may be gone: then they are dropped).
    pub(super) fn send_delayed(&mut self, now: Millis) {
        while let Some((at, _, _)) = self.delayed.front() {
            if *at > now {
                break;
            }
            let (_, to, msg) = self.delayed.pop_front().expect("front checked");
            if self.links.contains(&to) {
                self.send(to, msg);
            }
        }
    }
}
