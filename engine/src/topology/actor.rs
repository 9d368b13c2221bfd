//! The topology actor: the generic shell around [`TopologyCore`]. Where its outputs go (wants to
//! the connection manager, refresh lookups to content routing) is wired where the node is
//! assembled ([`crate::wiring`]).

use super::core::{Output, TopologyCore};
use crate::core::{Shell, Wiring};

pub type TopologyActor = Shell<TopologyCore, Box<dyn Wiring<Output>>>;
