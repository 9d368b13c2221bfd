//! The reputation actor: the generic shell around [`ReputationCore`]. It hears link events (from
//! the connection manager), request outcomes (from content) and offences (every core's
//! `Effect::Report`); where its standings go is wired where the node is assembled
//! ([`crate::wiring`]).

use super::core::{Output, ReputationCore};
use crate::core::{Shell, Wiring};

pub type ReputationActor = Shell<ReputationCore, Box<dyn Wiring<Output>>>;
