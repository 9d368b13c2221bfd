//! The discovery actor: the generic shell around [`DiscoveryCore`], wired to the router and to the
//! gossip actor (which asks it for the peers to announce).

use super::core::{DiscoveryCore, Output};
use crate::core::{In, Shell, Wiring};
use crate::gossip::{self, GossipActor};
use crate::router::Outbox;
use actix::Addr;

pub struct DiscoveryWiring {
    pub outbox: Outbox,
    pub gossip: Addr<GossipActor>,
}

impl Wiring<Output> for DiscoveryWiring {
    fn route(&mut self, output: Output) {
        match output {
            Output::Effect(e) => self.outbox.apply(e),
            Output::TopPeers(peers) => self.gossip.do_send(In(gossip::Input::TopPeers(peers))),
        }
    }
}

pub type DiscoveryActor = Shell<DiscoveryCore, DiscoveryWiring>;
