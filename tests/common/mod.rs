//! Helpers shared by the integration tests.

pub mod procs;
pub mod simnode;
