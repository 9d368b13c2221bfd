//! One publication: bytes in, cut into encrypted chunks as they come (never more than the
//! window cut and not yet stored), each batch journalled before it goes to the content actor;
//! ended by the signed manifest sealed into the root chunk, stored last, and the record that
//! replaces the journal; or failed, and what it stored reclaimed before the caller is told.

use super::core::Cx;
use super::store::{forget_journal, journal_entry, PublicationRecord};
use super::{FileError, FileEvent, OpId, Output, PublishedFile, Write};
use crate::content::{self, Chunk, ChunkId, FileKey, Manifest, ManifestBuilder, ShareLink, MAX_CHUNK_BYTES};
use crate::replication::{ContentInput, PublishError};
use crate::time::Millis;
use bytes::{Buf, Bytes};
use std::collections::{BTreeSet, VecDeque};

/// Where a failed publication is in cleaning up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cleanup {
    /// Waiting for journal writes already asked for (their chunks may be stored yet).
    Draining,
    /// The reclaim is with the content actor.
    Reclaiming,
    /// The journal entries are being deleted.
    Forgetting,
}

pub(super) struct Publish {
    op: OpId,
    /// This publication's entries in the journal: (journal, 0..next_seq).
    pub journal: u64,
    next_seq: u32,
    /// Pieces not cut yet (the front one may be partly cut).
    pieces: VecDeque<Bytes>,
    finishing: bool,
    /// Taking the file's bytes (None for a post, and once every byte is taken).
    builder: Option<ManifestBuilder>,
    /// Every byte taken: the root is sealed once every data chunk is stored.
    sealed: Option<(Manifest, FileKey)>,
    /// The root, once made: its id, the link, and the record written once it is stored.
    root: Option<(ChunkId, ShareLink, PublicationRecord)>,
    /// Batches cut and waiting for their journal write, in write order.
    journalling: VecDeque<Vec<Chunk>>,
    /// Chunks journalled (stored, being stored, or refused).
    pub journalled: Vec<ChunkId>,
    /// Chunks with the content actor, not answered yet.
    pub storing: BTreeSet<ChunkId>,
    stored: usize,
    failed: Option<(FileError, Cleanup)>,
    /// The record is being written: past this point only its own failure fails the
    /// publication (an abort or a timeout would reclaim what the record is about to name).
    recording: bool,
    /// Set when the reclaim is due: the core sends it (it knows what else references a chunk).
    pub reclaim_due: bool,
    /// The completed publication's chunks (root first), once recorded.
    pub recorded: Option<Vec<ChunkId>>,
    pub finished: bool,
    last_activity: Millis,
}

impl Publish {
    pub fn file(op: OpId, journal: u64, name: &str, key: FileKey, now: Millis) -> Result<Self, FileError> {
        let builder = ManifestBuilder::new(name, MAX_CHUNK_BYTES, key).map_err(FileError::Content)?;
        Ok(Self::new(op, journal, Some(builder), now))
    }

    /// A post: its root is all there is.
    pub fn post(op: OpId, journal: u64, root: Chunk, unix_ms: u64, cx: &mut Cx) -> Self {
        let mut p = Self::new(op, journal, None, cx.now);
        let record = PublicationRecord { name: None, bytes: root.ciphertext.len() as u64, unix_ms, chunks: vec![] };
        p.root = Some((root.id, ShareLink { root: root.id, key: None }, record));
        p.finishing = true;
        p.journal_batch(vec![root], cx);
        p
    }

    fn new(op: OpId, journal: u64, builder: Option<ManifestBuilder>, now: Millis) -> Self {
        Publish {
            op,
            journal,
            next_seq: 0,
            pieces: VecDeque::new(),
            finishing: false,
            builder,
            sealed: None,
            root: None,
            journalling: VecDeque::new(),
            journalled: Vec::new(),
            storing: BTreeSet::new(),
            stored: 0,
            failed: None,
            recording: false,
            reclaim_due: false,
            recorded: None,
            finished: false,
            last_activity: now,
        }
    }

    /// When to give up on the caller (None: the caller is not the one awaited).
    pub fn deadline(&self, idle_ms: Millis) -> Option<Millis> {
        let waiting_on_caller = self.failed.is_none() && !self.finishing;
        waiting_on_caller.then_some(self.last_activity + idle_ms)
    }

    /// Chunks cut and not yet stored.
    fn in_window(&self) -> usize {
        self.storing.len() + self.journalling.iter().map(Vec::len).sum::<usize>()
    }

    pub fn piece(&mut self, data: Bytes, cx: &mut Cx) {
        if self.failed.is_some() {
            return;
        }
        if self.finishing {
            return self
                .fail(FileError::Content(content::ContentError::Inconsistent("a piece after finish".into())), cx);
        }
        self.last_activity = cx.now;
        self.pieces.push_back(data);
        self.pump(cx);
    }

    pub fn finish(&mut self, cx: &mut Cx) {
        if self.failed.is_none() && !self.finishing {
            self.finishing = true;
            self.pump(cx);
        }
    }

    /// Give up (the caller aborted, or went quiet, or a store or write failed): what was
    /// stored is reclaimed first. Ignored once the record is being written.
    pub fn fail(&mut self, error: FileError, cx: &mut Cx) {
        if self.failed.is_some() || self.finished || self.recording {
            return;
        }
        tracing::debug!(op = self.op, %error, "publication failed");
        self.failed = Some((error, Cleanup::Draining));
        self.pieces.clear();
        self.builder = None;
        self.sealed = None;
        self.cleanup(cx);
    }

    /// Cut what the window allows, finish the manifest once every piece is cut, seal the root
    /// once every data chunk is stored.
    fn pump(&mut self, cx: &mut Cx) {
        let mut batch = Vec::new();
        while self.in_window() + batch.len() < cx.cfg.publish_window_chunks {
            let Some(front) = self.pieces.front_mut() else { break };
            if front.is_empty() {
                self.pieces.pop_front();
                cx.event(FileEvent::Accepted { op: self.op });
                continue;
            }
            let Some(builder) = self.builder.as_mut() else { break };
            match builder.feed(front) {
                Ok((taken, chunk)) => {
                    front.advance(taken);
                    batch.extend(chunk);
                }
                Err(e) => return self.fail(FileError::Content(e), cx),
            }
        }
        if self.finishing && self.pieces.is_empty() {
            if let Some(builder) = self.builder.take() {
                match builder.finish() {
                    Ok((manifest, last, key)) => {
                        batch.extend(last);
                        self.sealed = Some((manifest, key));
                    }
                    Err(e) => return self.fail(FileError::Content(e), cx),
                }
            }
        }
        if !batch.is_empty() {
            self.journal_batch(batch, cx);
        }
        if self.in_window() == 0 {
            if let Some((manifest, key)) = self.sealed.take() {
                match content::seal_file_root(cx.identity, &manifest, key, cx.unix_ms) {
                    Ok((root, link)) => {
                        let record = PublicationRecord {
                            name: Some(manifest.name),
                            bytes: manifest.size,
                            unix_ms: cx.unix_ms,
                            chunks: manifest.chunks,
                        };
                        self.root = Some((root.id, link, record));
                        self.journal_batch(vec![root], cx);
                    }
                    Err(e) => self.fail(FileError::Content(e), cx),
                }
            }
        }
    }

    /// Into the journal first; the chunks go to the content actor once it is written.
    fn journal_batch(&mut self, batch: Vec<Chunk>, cx: &mut Cx) {
        let ops = batch
            .iter()
            .enumerate()
            .map(|(i, c)| journal_entry(self.journal, self.next_seq + i as u32, &c.id))
            .collect();
        self.next_seq += batch.len() as u32;
        self.journalling.push_back(batch);
        cx.out.push_back(Output::Write { op: self.op, write: Write::Journal, ops });
    }

    pub fn on_written(&mut self, write: Write, result: Result<(), String>, cx: &mut Cx) {
        match write {
            Write::Journal => {
                let batch = self.journalling.pop_front().unwrap_or_default();
                match result {
                    Ok(()) => {
                        self.journalled.extend(batch.iter().map(|c| c.id));
                        if self.failed.is_none() {
                            for c in batch {
                                self.storing.insert(c.id);
                                cx.out.push_back(Output::Content(ContentInput::Publish { data: c.ciphertext }));
                            }
                        }
                    }
                    Err(reason) => {
                        let index = self.journalled.len() as u32;
                        self.fail(FileError::Store { index, reason: format!("journal: {reason}") }, cx)
                    }
                }
            }
            Write::Record => {
                self.recording = false;
                match result {
                    Ok(()) => {
                        let Some((root, link, record)) = self.root.take() else { return };
                        let chunks = self.stored;
                        self.recorded = Some(std::iter::once(root).chain(record.chunks).collect());
                        self.end(Ok(PublishedFile { link, chunks, bytes: record.bytes }), cx);
                    }
                    Err(e) => self.fail(FileError::Record(e), cx),
                }
            }
            Write::Forget => {
                if let Err(e) = result {
                    // The next start finds the entries and reclaims again (nothing is left to).
                    tracing::warn!(op = self.op, error = %e, "journal entries of a reclaimed publication not deleted");
                }
                self.end_failed(cx);
            }
        }
        if self.failed.is_some() {
            self.cleanup(cx);
        } else {
            self.pump(cx);
        }
    }

    /// The content actor's answer to one of our chunks; false if it was not ours.
    pub fn on_published(&mut self, chunk: &ChunkId, result: &Result<(), PublishError>, cx: &mut Cx) -> bool {
        if !self.storing.remove(chunk) {
            return false;
        }
        if self.failed.is_some() {
            self.cleanup(cx);
            return true;
        }
        if let Err(e) = result {
            let index = self.journalled.iter().position(|c| c == chunk).unwrap_or(0) as u32;
            self.fail(FileError::Store { index, reason: e.to_string() }, cx);
            return true;
        }
        self.stored += 1;
        self.last_activity = cx.now;
        match &self.root {
            Some((root, _, record)) if root == chunk => {
                // Root stored: the record replaces the journal, in one batch.
                let mut ops = Vec::with_capacity(self.next_seq as usize + 1);
                match PublicationRecord::put(root, record) {
                    Ok(op) => ops.push(op),
                    Err(e) => {
                        self.fail(FileError::Record(e.to_string()), cx);
                        return true;
                    }
                }
                ops.extend(forget_journal(self.journal, self.next_seq));
                self.recording = true;
                cx.out.push_back(Output::Write { op: self.op, write: Write::Record, ops });
            }
            _ => self.pump(cx),
        }
        true
    }

    /// The content actor reclaimed (or could not reclaim) what we stored.
    pub fn on_reclaimed(&mut self, result: &Result<Vec<ChunkId>, String>, cx: &mut Cx) {
        let Some((_, step)) = &mut self.failed else { return };
        if *step != Cleanup::Reclaiming {
            return;
        }
        match result {
            Ok(_) => {
                *step = Cleanup::Forgetting;
                let ops = forget_journal(self.journal, self.next_seq).collect();
                cx.out.push_back(Output::Write { op: self.op, write: Write::Forget, ops });
            }
            Err(e) => {
                // The journal stays: the next start reclaims what is left.
                tracing::warn!(op = self.op, error = %e, "chunks of a failed publication not reclaimed");
                self.end_failed(cx);
            }
        }
    }

    /// Once no journal write is outstanding, reclaim everything journalled (the content actor
    /// takes it after every store we asked for: one mailbox, in order).
    fn cleanup(&mut self, cx: &mut Cx) {
        let Some((_, step)) = &mut self.failed else { return };
        if *step != Cleanup::Draining || !self.journalling.is_empty() {
            return;
        }
        if self.next_seq == 0 {
            return self.end_failed(cx);
        }
        *step = Cleanup::Reclaiming;
        self.reclaim_due = true;
    }

    fn end_failed(&mut self, cx: &mut Cx) {
        if let Some((error, _)) = self.failed.clone() {
            self.end(Err(error), cx);
        }
    }

    fn end(&mut self, result: Result<PublishedFile, FileError>, cx: &mut Cx) {
        if !self.finished {
            self.finished = true;
            cx.event(FileEvent::Published { op: self.op, result });
        }
    }
}
