//! Audits, a sub-machine of the content service: every `audit_interval_ms`, the linked peer
//! audited longest ago (never first) is asked for one chunk it announced holding, chosen in
//! turn among them. The answer is rated like any request (served, late, withheld by an announced
//! holder, bytes failing their hash): reputation then hears of a misbehaving peer from each of
//! its neighbours, within a few audit rounds, instead of from the few that fetch from it.

use super::transfers::Waiter;
use super::*;

/// What audits know of a linked peer.
#[derive(Clone, Copy, Debug, Default)]
struct Audited {
    last: Millis,
    /// Requests it answered since it was linked, capped (a proven peer is audited in turn).
    passed: u32,
    /// Requests in a row it failed: a suspect is audited again at the next round.
    failed: u32,
}

impl Audited {
    fn is_suspect(&self) -> bool {
        self.failed > 0
    }
}

/// Who was audited when and how they did; the round's deadline.
#[derive(Default)]
pub(super) struct Audits {
    peers: BTreeMap<PeerId, Audited>,
    next_at: Option<Millis>,
    rounds: u64,
}

/// Answers after which a peer is no longer audited first.
const PROVEN_AFTER: u32 = 3;

impl Audits {
    pub fn next_timeout(&self) -> Option<Millis> {
        self.next_at
    }

    /// A request to `peer` ended (an audit or any other): `Some(true)` answered in time,
    /// `Some(false)` answered wrongly (withheld, late, bad bytes: the peer is alive and
    /// misbehaving), `None` no answer (a crashed peer looks the same: not a suspect for that).
    pub fn outcome(&mut self, peer: PeerId, verdict: Option<bool>) {
        let a = self.peers.entry(peer).or_default();
        match verdict {
            Some(true) => {
                a.passed = (a.passed + 1).min(PROVEN_AFTER);
                a.failed = 0;
            }
            Some(false) => a.failed += 1,
            None => {}
        }
    }

    /// The peer failed its last request (a wrong or late answer).
    pub fn is_suspect(&self, peer: &PeerId) -> bool {
        self.peers.get(peer).is_some_and(Audited::is_suspect)
    }

    fn any_suspect(&self) -> bool {
        self.peers.values().any(Audited::is_suspect)
    }

    /// The peer answered enough requests in time to be audited in turn.
    pub fn is_proven(&self, peer: &PeerId) -> bool {
        self.peers.get(peer).is_some_and(|a| a.passed >= PROVEN_AFTER && !a.is_suspect())
    }

    /// Audit order: suspects first, then peers not yet proven, then by when last audited
    /// (never first), ties by id.
    fn order(&self, linked: &[PeerId]) -> Vec<PeerId> {
        let mut keyed: Vec<(bool, u32, Millis, PeerId)> = linked
            .iter()
            .map(|p| {
                let a = self.peers.get(p).copied().unwrap_or_default();
                let seen = if self.peers.contains_key(p) { a.last + 1 } else { 0 };
                (!a.is_suspect(), a.passed, seen, *p)
            })
            .collect();
        keyed.sort_unstable();
        keyed.into_iter().map(|(.., p)| p).collect()
    }
}

impl ContentCore {
    /// Arm the first round (nothing when audits are off).
    pub(super) fn start_audits(&mut self, interval_ms: Millis) {
        self.audit_interval_ms = interval_ms;
        if interval_ms > 0 {
            self.audits.next_at = Some(interval_ms);
        }
    }

    pub(super) fn audit_due(&mut self, now: Millis) {
        let Some(at) = self.audits.next_at else { return };
        if at > now {
            return;
        }
        // While a linked peer is failing, rounds come four times as often: suspects are
        // settled within a minute or two, and an honest swarm pays only the base rate.
        let interval =
            if self.audits.any_suspect() { (self.audit_interval_ms / 4).max(1) } else { self.audit_interval_ms };
        self.audits.next_at = Some(now + interval);
        self.audits.rounds += 1;
        let linked = self.links.peers();
        self.audits.peers.retain(|p, _| linked.binary_search(p).is_ok());
        for peer in self.audits.order(&linked) {
            let Some(chunk) = self.audit_chunk(&peer) else { continue };
            self.audits.peers.entry(peer).or_default().last = now;
            if self.transfers.join(now, peer, chunk, Waiter::Audit) {
                self.send(peer, Message::GetChunk { chunk });
            }
            return;
        }
    }

    /// One chunk `peer` announced holding and we do not ask of it already: the round number
    /// picks where in our view of its holdings to start.
    fn audit_chunk(&self, peer: &PeerId) -> Option<ChunkId> {
        let mut from = Key::of_peer(peer).0;
        from[..8].copy_from_slice(&self.audits.rounds.to_be_bytes());
        let from = ChunkId(from);
        let mine = |c: &ChunkId| self.repl.known_holder(c, peer) && !self.transfers.contains(peer, c);
        let first = self.repl.known_chunks_from(&from).find(|c| mine(c));
        first.or_else(|| self.repl.known_chunks_from(&ChunkId([0; 32])).find(|c| mine(c)))
    }
}
