//! The connection manager's actor: the generic shell around [`LinksCore`]. Its outputs (link
//! operations for the transport, link events for every core) are wired where the node is
//! assembled ([`crate::wiring`]).

use super::core::{LinksCore, Output};
use crate::core::{Shell, Wiring};

pub type LinksActor = Shell<LinksCore, Box<dyn Wiring<Output>>>;
