//! The health actor: the generic shell around [`HealthCore`]; all its effects go to the router.

use super::core::{HealthCore, Output};
use crate::core::{Shell, Wiring};
use crate::router::Outbox;

pub struct HealthWiring {
    pub outbox: Outbox,
}

impl Wiring<Output> for HealthWiring {
    fn route(&mut self, output: Output) {
        self.outbox.apply(output);
    }
}

pub type HealthActor = Shell<HealthCore, HealthWiring>;
