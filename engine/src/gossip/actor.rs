//! The gossip actor: the generic shell around [`GossipCore`], wired to the router and to the
//! discovery actor (source of the peers to announce, sink of the peers learned).

use super::core::{GossipCore, Output};
use crate::core::{In, Shell, Wiring};
use crate::discovery::{self, DiscoveryActor};
use crate::router::Outbox;
use actix::Addr;

pub struct GossipWiring {
    pub outbox: Outbox,
    pub discovery: Addr<DiscoveryActor>,
}

impl Wiring<Output> for GossipWiring {
    fn route(&mut self, output: Output) {
        match output {
            Output::Effect(e) => self.outbox.apply(e),
            Output::RequestTopPeers(n) => self.discovery.do_send(In(discovery::Input::TopPeersRequest { n })),
            Output::Learned(peers) => self.discovery.do_send(In(discovery::Input::Learned { peers })),
        }
    }
}

pub type GossipActor = Shell<GossipCore, GossipWiring>;
