//! The content actor: the generic shell around [`ContentCore`]. Where its outputs go (frames,
//! exchange links, the peers lookups met, fetch and publish results) is wired where the node is
//! assembled ([`crate::wiring`]); so is the chunk store, whose reads and writes the wiring
//! applies and answers within the same flush ([`Outlet`]).

use super::service::ContentCore;
pub use super::service::ContentResult;
use crate::core::{Outlet, Shell};

/// Where a node's host hears how its fetches and publishes ended (a real node's API waits on
/// them; the simulator reads the observer's events instead).
pub type ContentListener = Box<dyn FnMut(ContentResult)>;

pub type ContentActor = Shell<ContentCore, Box<dyn Outlet<ContentCore>>>;
