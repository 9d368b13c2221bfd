//! One fetch: the root fetched and opened (a post, or a file's manifest), then the file's chunks
//! asked of the content actor a window at a time, put back in order in a bounded buffer and
//! handed over decrypted and checked. At most `fetch_window_chunks` chunks are asked for,
//! waiting in the buffer, or handed over and not yet taken by the caller.

use super::core::Cx;
use super::{FileError, FileEvent, OpId, RootInfo};
use crate::content::{self, ChunkId, FileKey, Manifest, Opened, ShareLink};
use crate::replication::{ContentInput, FetchError};
use crate::time::Millis;
use std::collections::BTreeMap;

pub(super) struct Fetch {
    op: OpId,
    link: ShareLink,
    /// The content actor's fetch id of the root, while it is asked for.
    root_request: Option<u64>,
    /// The file, once its root is open.
    file: Option<(Manifest, FileKey)>,
    /// Content fetch id -> chunk index.
    pub requested: BTreeMap<u64, u32>,
    /// Chunks arrived ahead of their turn: index -> plaintext.
    ready: BTreeMap<u32, Vec<u8>>,
    next_request: u32,
    next_deliver: u32,
    /// Handed over, not yet taken.
    unconsumed: usize,
    pub finished: bool,
    last_activity: Millis,
}

impl Fetch {
    pub fn start(op: OpId, link: ShareLink, cx: &mut Cx) -> Self {
        let id = cx.fetch_id();
        cx.out.push_back(super::Output::Content(ContentInput::Fetch { id, chunk: link.root }));
        Fetch {
            op,
            link,
            root_request: Some(id),
            file: None,
            requested: BTreeMap::new(),
            ready: BTreeMap::new(),
            next_request: 0,
            next_deliver: 0,
            unconsumed: 0,
            finished: false,
            last_activity: cx.now,
        }
    }

    /// Whether content fetch `id` is one of ours.
    pub fn asked(&self, id: u64) -> bool {
        self.root_request == Some(id) || self.requested.contains_key(&id)
    }

    /// When to give up on a caller that does not take what it was handed.
    pub fn deadline(&self, idle_ms: Millis) -> Option<Millis> {
        (!self.finished && self.unconsumed > 0).then_some(self.last_activity + idle_ms)
    }

    /// Chunks held or asked for: the window.
    pub fn in_window(&self) -> usize {
        self.requested.len() + self.ready.len() + self.unconsumed
    }

    pub fn consumed(&mut self, cx: &mut Cx) {
        self.unconsumed = self.unconsumed.saturating_sub(1);
        self.last_activity = cx.now;
        self.pump(cx);
    }

    pub fn on_fetched(&mut self, id: u64, result: Result<Vec<u8>, FetchError>, cx: &mut Cx) {
        if self.finished {
            return;
        }
        if self.root_request == Some(id) {
            self.root_request = None;
            return match result {
                Ok(bytes) => self.open(&bytes, cx),
                Err(reason) => self.end(Err(FileError::RootUnavailable { root: self.link.root, reason }), cx),
            };
        }
        let Some(index) = self.requested.remove(&id) else { return };
        let Some((manifest, key)) = &self.file else { return };
        let chunk = manifest.chunks.get(index as usize).copied().unwrap_or(ChunkId([0; 32]));
        let plain = match result {
            Ok(bytes) => manifest.open_chunk(key, index, &bytes),
            Err(reason) => return self.end(Err(FileError::ChunkUnavailable { index, id: chunk, reason }), cx),
        };
        match plain {
            Ok(p) => {
                self.ready.insert(index, p);
                self.deliver(cx);
            }
            Err(reason) => self.end(Err(FileError::BadChunk { index, id: chunk, reason }), cx),
        }
    }

    fn open(&mut self, bytes: &[u8], cx: &mut Cx) {
        let opened = match content::open_root(&self.link, bytes, cx.verifier) {
            Ok(o) => o,
            Err(e) => return self.end(Err(FileError::BadRoot(e)), cx),
        };
        match opened {
            Opened::Post { post, author, unix_ms } => {
                cx.event(FileEvent::Opened { op: self.op, root: RootInfo::Post { text: post.text, author, unix_ms } });
                self.end(Ok(()), cx);
            }
            Opened::File { manifest, author, unix_ms } => {
                // `open_root` opens a file root only under the link's key.
                let Some(key) = self.link.key.clone() else {
                    let e = content::ContentError::Malformed { what: "file root", reason: "no key".into() };
                    return self.end(Err(FileError::BadRoot(e)), cx);
                };
                let root = RootInfo::File {
                    name: manifest.name.clone(),
                    size: manifest.size,
                    chunks: manifest.chunks.len(),
                    author,
                    unix_ms,
                };
                cx.event(FileEvent::Opened { op: self.op, root });
                self.file = Some((manifest, key));
                self.deliver(cx);
            }
        }
    }

    /// Hand over what is next in order, then ask for more while the window allows.
    fn deliver(&mut self, cx: &mut Cx) {
        while let Some(data) = self.ready.remove(&self.next_deliver) {
            self.next_deliver += 1;
            self.unconsumed += 1;
            self.last_activity = cx.now;
            cx.event(FileEvent::Piece { op: self.op, data });
        }
        let total = self.file.as_ref().map_or(0, |(m, _)| m.chunks.len());
        if self.next_deliver as usize == total {
            return self.end(Ok(()), cx);
        }
        self.pump(cx);
    }

    fn pump(&mut self, cx: &mut Cx) {
        let Some((manifest, _)) = &self.file else { return };
        while !self.finished && self.in_window() < cx.cfg.fetch_window_chunks {
            let Some(&chunk) = manifest.chunks.get(self.next_request as usize) else { break };
            let id = cx.fetch_id();
            self.requested.insert(id, self.next_request);
            self.next_request += 1;
            cx.out.push_back(super::Output::Content(ContentInput::Fetch { id, chunk }));
        }
    }

    pub fn end(&mut self, result: Result<(), FileError>, cx: &mut Cx) {
        if !self.finished {
            self.finished = true;
            self.ready.clear();
            cx.event(FileEvent::Fetched { op: self.op, result });
        }
    }
}
