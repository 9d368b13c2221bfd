//! The gossip actor: the generic shell around [`GossipCore`]. Its outputs (frames, requests for
//! the peers to announce, peers learned) are wired where the node is assembled
//! ([`crate::wiring`]).

use super::core::{GossipCore, Output};
use crate::core::{Shell, Wiring};

pub type GossipActor = Shell<GossipCore, Box<dyn Wiring<Output>>>;
