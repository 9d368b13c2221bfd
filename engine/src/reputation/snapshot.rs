//! A reading of the live scores for the node's operator (`GET /peers`): each peer's score and its
//! parts as the reputation core computes them at `now`, the figures the node decides by. The
//! reputation actor answers it ([`ReadScores`]) with its own clock's `now`; nothing is written.

use super::core::ReputationCore;
use super::score::{Components, Record};
use crate::config::ReputationConfig;
use crate::time::Millis;
use crate::types::PeerId;
use actix::Message;

/// Which peers to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScoreQuery {
    /// These peers, each once, in id order; a peer with no record is read as neutral.
    Peers(Vec<PeerId>),
    /// Every peer with a record, in id order (at most `reputation.max_peers_scored`).
    All,
}

/// One peer's live score.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerScore {
    pub peer: PeerId,
    /// [`Record::score`] at the reading's `now`; 0 (neutral) for a peer with no record.
    pub score: f64,
    /// [`Record::components`] at `now`, named by [`super::score::COMPONENT_NAMES`]; `None` for
    /// a peer with no record (never seen, or forgotten at the bound).
    pub parts: Option<Components>,
}

impl PeerScore {
    /// `record` (the peer's, if it has one) as of `now`.
    pub fn read(peer: PeerId, record: Option<&Record>, now: Millis, cfg: &ReputationConfig) -> PeerScore {
        match record {
            Some(r) => PeerScore { peer, score: r.score(now, cfg), parts: Some(r.at(now, cfg).components(cfg)) },
            None => PeerScore { peer, score: 0.0, parts: None },
        }
    }
}

impl ReputationCore {
    /// The scores `query` asks for, at `now` (read only: no record is made or changed).
    pub fn scores(&self, query: &ScoreQuery, now: Millis) -> Vec<PeerScore> {
        let cfg = self.config();
        match query {
            ScoreQuery::Peers(peers) => {
                let mut peers = peers.clone();
                peers.sort_unstable();
                peers.dedup();
                peers.into_iter().map(|p| PeerScore::read(p, self.record(&p), now, cfg)).collect()
            }
            ScoreQuery::All => self.peers().map(|p| PeerScore::read(*p, self.record(p), now, cfg)).collect(),
        }
    }
}

/// Ask the reputation actor for live scores; answered at the actor's clock's `now`.
pub struct ReadScores(pub ScoreQuery);

impl Message for ReadScores {
    type Result = Vec<PeerScore>;
}

#[cfg(test)]
mod tests {
    use super::super::actor::ReputationActor;
    use super::super::core::{Input, Output};
    use super::super::score::{OffenceKind, Outcome, Standing, COMPONENT_NAMES, HEARSAY};
    use super::*;
    use crate::core::{Core, In, LinkEvent, Wiring};
    use crate::time::Clock;
    use actix::Actor;
    use std::time::Duration;

    const EPOCH: u64 = 1_700_000_000_000;

    fn pid(i: u8) -> PeerId {
        PeerId([i; 32])
    }

    #[test]
    fn names_follow_the_components() {
        assert_eq!(COMPONENT_NAMES[HEARSAY], "hearsay");
        assert_eq!(COMPONENT_NAMES.len(), std::mem::size_of::<Components>() / std::mem::size_of::<f64>());
        let mut sorted = COMPONENT_NAMES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), COMPONENT_NAMES.len(), "two parts share a name");
    }

    /// The reading is the record's own score and components at `now`; an unknown peer reads as
    /// neutral with no parts and is not made a record by being read.
    #[test]
    fn a_reading_is_the_records_score_and_parts() {
        let cfg = ReputationConfig::default();
        let mut core = ReputationCore::new(cfg.clone(), EPOCH).without_persistence();
        let (good, bad, unknown) = (pid(1), pid(2), pid(3));
        core.handle(0, Input::Link(LinkEvent::Up { peer: good, outbound: true }));
        core.handle(1_000, Input::Request { peer: good, outcome: Outcome::Served { rtt_ms: 40 } });
        core.handle(2_000, Input::Offence { peer: bad, kind: OffenceKind::BadChunk });
        let now = 60_000;
        let read = core.scores(&ScoreQuery::Peers(vec![unknown, bad, good, bad]), now);
        assert_eq!(read.iter().map(|s| s.peer).collect::<Vec<_>>(), vec![good, bad, unknown], "id order, once each");
        for s in &read[..2] {
            let r = core.record(&s.peer).unwrap();
            assert_eq!(s.score, r.score(now, &cfg));
            assert_eq!(s.parts, Some(r.at(now, &cfg).components(&cfg)));
            assert_eq!(s.score, s.parts.unwrap().iter().sum::<f64>().clamp(-100.0, 100.0));
        }
        let (g, b) = (read[0].parts.unwrap(), read[1].parts.unwrap());
        assert!(g[0] > 0.0 && g[2] > 0.0 && g[4] > 0.0, "uptime, availability, responsiveness: {g:?}");
        assert!(b[5] < 0.0, "malice: {b:?}");
        assert!(read[1].score < cfg.graylist_threshold, "{}", read[1].score);
        assert_eq!(read[2], PeerScore { peer: unknown, score: 0.0, parts: None });
        assert_eq!(core.len(), 2, "reading made a record");
        let all = core.scores(&ScoreQuery::All, now);
        assert_eq!(all, read[..2].to_vec());
    }

    /// Outputs of the actor under test, dropped (standings are not what is read here).
    struct Discard;

    impl Wiring<Output> for Discard {
        fn route(&mut self, _: Output) {}
    }

    /// Through the actor: inputs stamped by the node's clock (paused tokio time), read at that
    /// clock's `now` an hour later, match a record fed the same inputs at the same instants.
    #[test]
    fn the_actor_answers_at_the_clocks_now() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        actix::System::with_tokio_rt(move || rt).block_on(async move {
            let cfg = ReputationConfig::default();
            let clock = Clock::with_epoch(tokio::time::Instant::now(), EPOCH);
            let core = ReputationCore::new(cfg.clone(), EPOCH).without_persistence();
            let wiring: Box<dyn Wiring<Output>> = Box::new(Discard);
            let addr = ReputationActor::new(core, wiring, clock).start();
            let (peer, other) = (pid(7), pid(8));
            let mut expected = Record::new(0);
            addr.do_send(In(Input::Link(LinkEvent::Up { peer, outbound: false })));
            expected.link_up(0, &cfg);
            tokio::time::sleep(Duration::from_secs(30)).await;
            addr.do_send(In(Input::Offence { peer, kind: OffenceKind::BadSignature }));
            expected.offence(30_000, OffenceKind::BadSignature, &cfg);
            tokio::time::sleep(Duration::from_secs(3_600)).await;
            let now = clock.now();
            assert_eq!(now, 3_630_000);
            let read = addr.send(ReadScores(ScoreQuery::Peers(vec![peer, other]))).await.unwrap();
            assert_eq!(read.len(), 2);
            assert_eq!(read[0].score, expected.score(now, &cfg));
            let parts = read[0].parts.expect("the peer has a record");
            assert_eq!(parts, expected.at(now, &cfg).components(&cfg));
            assert!(parts[0] > 0.0, "an hour linked earns uptime: {parts:?}");
            assert!(parts[5] < 0.0, "a bad signature is malice: {parts:?}");
            assert_eq!(Standing::of(read[0].score, &cfg), Standing::Graylisted, "{}", read[0].score);
            assert_eq!(read[1], PeerScore { peer: other, score: 0.0, parts: None });
        });
    }
}
