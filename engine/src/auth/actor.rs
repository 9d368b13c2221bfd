//! The auth actor: the generic shell around [`AuthCore`]. Proved links open the router's gate and
//! reach the subsystems as `Up`; frames that raced the proof are handed on in order.

use super::core::{AuthCore, Output};
use super::Gate;
use crate::core::{LinkEvent, Shell, Wiring};
use crate::router::{Dispatch, Outbox};
use std::rc::Rc;

pub struct AuthWiring {
    pub outbox: Outbox,
    pub dispatch: Dispatch,
    pub gate: Rc<Gate>,
}

impl Wiring<Output> for AuthWiring {
    fn route(&mut self, output: Output) {
        match output {
            Output::Effect(e) => self.outbox.apply(e),
            Output::Up { peer, outbound, generation } => {
                if self.gate.prove(&peer, generation) {
                    self.dispatch.link(LinkEvent::Up { peer, outbound });
                }
            }
            Output::Down { peer, clean } => self.dispatch.link(LinkEvent::Down { peer, clean }),
            Output::DialFailed { peer } => self.dispatch.link(LinkEvent::DialFailed { peer }),
            Output::Deliver { from, msg } => {
                if self.gate.is_proved(&from) {
                    self.dispatch.frame(from, msg);
                }
            }
        }
    }
}

pub type AuthActor = Shell<AuthCore, AuthWiring>;
