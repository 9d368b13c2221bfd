//! The discovery actor: the generic shell around [`DiscoveryCore`]. Its outputs (frames, random
//! links asked of the connection manager, the peers gossip announces, registry snapshots to store)
//! are wired where the node is assembled ([`crate::wiring`]).

use super::core::{DiscoveryCore, Output};
use crate::core::{Shell, Wiring};

pub type DiscoveryActor = Shell<DiscoveryCore, Box<dyn Wiring<Output>>>;
