//! The reputation actor: the generic shell around [`ReputationCore`]. It hears link events (from
//! the connection manager), request outcomes (from content) and offences (every core's
//! `Effect::Report`); where its standings go is wired where the node is assembled
//! ([`crate::wiring`]). It also answers the operator's reading of live scores ([`ReadScores`]).

use super::core::{Output, ReputationCore};
use super::snapshot::ReadScores;
use crate::core::{Shell, Wiring};
use actix::{Context, Handler, MessageResult};

pub type ReputationActor = Shell<ReputationCore, Box<dyn Wiring<Output>>>;

impl Handler<ReadScores> for ReputationActor {
    type Result = MessageResult<ReadScores>;

    fn handle(&mut self, ReadScores(query): ReadScores, _: &mut Context<Self>) -> Self::Result {
        let now = self.now();
        MessageResult(self.core().scores(&query, now))
    }
}
