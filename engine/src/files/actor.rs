//! The files actor: the generic shell around [`FilesCore`]. Its wiring hands chunk work to the
//! content actor, applies the core's writes to the store and answers them, and tells the
//! caller (a real node's host, the simulator) what happened through a [`FileListener`].

use super::{FileEvent, FilesCore, FilesStore, Input, OpId, Output};
use crate::content::ShareLink;
use crate::core::{In, Outlet, Shell, Wiring};
use crate::replication::ContentActor;
use actix::Addr;
use bytes::Bytes;

pub type FilesActor = Shell<FilesCore, FilesWiring>;

/// Where the caller hears of its file operations. It is handed the actor's handle, so it can
/// answer at once (take a piece, send the next one) without holding the node.
pub type FileListener = Box<dyn FnMut(FileEvent, &FilesHandle)>;

/// Asks of the files actor (what [`crate::Node`]'s file methods send).
#[derive(Clone)]
pub struct FilesHandle(pub Addr<FilesActor>);

impl FilesHandle {
    fn send(&self, i: Input) {
        self.0.do_send(In(i));
    }

    pub fn publish_begin(&self, op: OpId, name: String) {
        self.send(Input::PublishBegin { op, name });
    }

    pub fn publish_piece(&self, op: OpId, data: Bytes) {
        self.send(Input::PublishPiece { op, data });
    }

    pub fn publish_finish(&self, op: OpId) {
        self.send(Input::PublishFinish { op });
    }

    pub fn publish_post(&self, op: OpId, text: String) {
        self.send(Input::PublishPost { op, text });
    }

    pub fn fetch(&self, op: OpId, link: ShareLink) {
        self.send(Input::Fetch { op, link });
    }

    pub fn consumed(&self, op: OpId) {
        self.send(Input::Consumed { op });
    }

    pub fn abort(&self, op: OpId) {
        self.send(Input::Abort { op });
    }

    pub(crate) fn content_result(&self, r: crate::replication::ContentResult) {
        self.send(Input::Content(r));
    }
}

pub struct FilesWiring {
    pub content: Addr<ContentActor>,
    pub store: FilesStore,
    /// This actor, for answering its own writes.
    pub me: FilesHandle,
    pub listener: Option<FileListener>,
}

/// Its writes are answered through the mailbox (`Input::Written`), so it never answers at once.
impl Outlet<FilesCore> for FilesWiring {
    fn route(&mut self, output: Output) -> Option<Input> {
        Wiring::route(self, output);
        None
    }
}

impl Wiring<Output> for FilesWiring {
    fn route(&mut self, output: Output) {
        match output {
            Output::Content(i) => self.content.do_send(In(i)),
            Output::Write { op, write, ops } => {
                let result = self.store.apply(&ops).map_err(|e| e.to_string());
                if let Err(e) = &result {
                    tracing::warn!(op, ?write, error = %e, "files: write refused");
                }
                self.me.send(Input::Written { op, write, result });
            }
            Output::Event(ev) => {
                if let Some(l) = &mut self.listener {
                    l(ev, &self.me);
                }
            }
        }
    }
}
