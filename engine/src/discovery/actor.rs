//! The discovery actor: the generic shell around [`DiscoveryCore`], wired to the router and to the
//! gossip actor (which asks it for the peers to announce).

use super::core::{DiscoveryCore, Output};
use super::persist::PeerStore;
use crate::core::{In, Shell, Wiring};
use crate::gossip::{self, GossipActor};
use crate::router::Outbox;
use actix::Addr;

pub struct DiscoveryWiring {
    pub outbox: Outbox,
    pub gossip: Addr<GossipActor>,
    /// Where registry snapshots are stored (real nodes); `None` in simulations.
    pub store: Option<PeerStore>,
}

impl Wiring<Output> for DiscoveryWiring {
    fn route(&mut self, output: Output) {
        match output {
            Output::Effect(e) => self.outbox.apply(e),
            Output::TopPeers(peers) => self.gossip.do_send(In(gossip::Input::TopPeers(peers))),
            Output::Persist { now, entries } => {
                if let Some(store) = &self.store {
                    // A failed write (disk full...) costs this snapshot only; the next re-scan
                    // tries again, and what was stored before stays as it was.
                    if let Err(e) = store.save(now, &entries) {
                        tracing::error!(error = %e, "could not store the peer registry");
                    }
                }
            }
        }
    }
}

pub type DiscoveryActor = Shell<DiscoveryCore, DiscoveryWiring>;
