//! The owner's side of the recovery core: making a backup, watching its holders, re-sharing
//! when one has been gone too long, and publishing the signed holder list. Part of
//! [`super::RecoveryCore`] (its state is the core's); split out to keep files small.

use super::*;

impl RecoveryCore {
    pub(super) fn on_backup(&mut self, now: Millis, op: OpId, holders: Vec<PeerId>, threshold: u8, pass: &[u8]) {
        let shares = u8::try_from(holders.len()).unwrap_or(u8::MAX);
        let cfg = BackupConfig { params: SplitParams { shares, threshold }, kdf: self.cfg.kdf };
        let now_ms = self.unix(now);
        let generation = self.next_generation(now_ms);
        let (backup, key) = match build_backup(&self.identity, &holders, pass, cfg, generation, now_ms, &mut self.rng) {
            Ok(b) => b,
            Err(e) => return self.done(RecoveryEvent::BackupStarted { op, result: Err(e) }),
        };
        if let Some(old) = self.own.take() {
            let dropped: Vec<PeerId> = old.holders().into_iter().filter(|h| !holders.contains(h)).collect();
            self.revoke(&dropped, generation, now_ms, true);
        }
        let tracker = BackupTracker::new(self.me, &backup, now);
        self.own = Some(OwnBackup { backup, tracker, threshold, key, reshares: 0 });
        self.started(now, &holders);
        let status = self.status();
        self.done(RecoveryEvent::BackupStarted { op, result: Ok(status) });
    }

    /// A Unix-ms generation grows across restarts without a stored counter.
    pub(super) fn next_generation(&self, now_ms: u64) -> u64 {
        self.own.as_ref().map_or(now_ms, |o| now_ms.max(o.backup.generation + 1))
    }

    pub(super) fn revoke(&mut self, holders: &[PeerId], generation: u64, now_ms: u64, want: bool) {
        for (h, env) in revocations(&self.identity, holders, generation, now_ms) {
            self.revokes.insert(h, (env, want));
        }
        while self.revokes.len() > MAX_PENDING_REVOKES {
            self.revokes.pop_first();
        }
    }

    /// A new generation is out: deposits to the linked holders, the list to its keepers.
    pub(super) fn started(&mut self, now: Millis, holders: &[PeerId]) {
        self.publish_list(now, true);
        for h in holders {
            if self.view.contains(h) {
                self.on_up(now, *h);
            }
        }
        self.next_check = Some(now.saturating_add(self.cfg.check_interval_ms));
        self.dirty = true;
        self.placing = None;
        self.start_placing(now);
    }

    pub(super) fn on_backup_suggested(&mut self, now: Millis, op: OpId, shares: u8, threshold: u8, pass: &[u8]) {
        let exclude = BTreeSet::from([self.me]);
        let holders = suggest_holders(&self.view, &self.trust, &exclude, usize::from(shares));
        if holders.len() < usize::from(shares) {
            let e = BackupError::HolderCount { holders: holders.len(), shares };
            return self.done(RecoveryEvent::BackupStarted { op, result: Err(e) });
        }
        self.on_backup(now, op, holders, threshold, pass)
    }

    /// The peers closest to a holder list's key in `region` that we know of (routing table and
    /// links).
    pub(super) fn list_targets(&self, user: &str, region: u8, n: usize) -> Vec<PeerId> {
        let key = list_key(user, region);
        let mut known = self.view.peers();
        if let Some(t) = &self.table {
            known.extend(t.borrow().closest(&key, n));
        }
        known.retain(|p| *p != self.me);
        closest(&key, known, n)
    }

    /// Sign and hand out the current generation's list (`fresh`), or send it to new members of
    /// the closest set.
    pub(super) fn publish_list(&mut self, now: Millis, fresh: bool) {
        let Some(own) = &self.own else { return };
        let user = self.identity.user_id();
        let targets: Vec<PeerId> =
            (0..self.cfg.list_regions).flat_map(|r| self.list_targets(&user, r, self.cfg.list_rf)).collect();
        if fresh {
            let body = HolderList {
                owner: self.me,
                generation: own.backup.generation,
                threshold: own.threshold,
                holders: own.holders(),
            };
            self.publisher.publish(sign(&self.identity, &body, self.unix(now)), targets);
        } else {
            self.publisher.retarget(targets);
        }
        self.send_due_list();
    }

    fn send_due_list(&mut self) {
        for p in self.publisher.due().clone() {
            if self.view.contains(&p) {
                if let Some(env) = self.publisher.on_up(&p) {
                    self.send(p, env);
                }
            }
        }
    }

    /// Look for the peers closest to our list key beyond what we know (a lookup over list
    /// requests, one region per look, in turn); [`Self::place_list`] takes its result.
    pub(super) fn start_placing(&mut self, now: Millis) {
        if self.own.is_none() || self.placing.is_some() {
            return;
        }
        let region = self.place_region;
        self.place_region = (region + 1) % self.cfg.list_regions.max(1);
        self.placing = Some(self.list_finder(&self.identity.user_id(), region));
        self.pump_finders(now);
    }

    /// The placement lookup's closest peers get the list too.
    pub(super) fn place_list(&mut self, _now: Millis, closest: Vec<PeerId>) {
        self.publisher.add(closest);
        self.send_due_list();
    }

    /// The look at the holders: linked ones are seen; ones gone too long are replaced.
    pub(super) fn check(&mut self, now: Millis) {
        let Some(own) = &mut self.own else { return };
        for h in own.holders() {
            if self.view.contains(&h) {
                own.tracker.seen(&h, now);
            }
        }
        self.dirty = true;
        let gone = own.tracker.gone(now, self.cfg.reshare_after_ms);
        self.next_check = Some(now.saturating_add(self.cfg.check_interval_ms));
        if !gone.is_empty() {
            self.reshare(now, &gone);
        }
        self.publish_list(now, false);
        self.start_placing(now);
    }

    /// A fresh split under the same K: the live holders keep their places (a new share each),
    /// suggested peers take the gone ones'. Without enough candidates it waits for the next look.
    pub(super) fn reshare(&mut self, now: Millis, gone: &[PeerId]) {
        let Some(own) = &self.own else { return };
        let mut exclude: BTreeSet<PeerId> = own.holders().into_iter().collect();
        exclude.insert(self.me);
        let fresh = suggest_holders(&self.view, &self.trust, &exclude, gone.len());
        if fresh.len() < gone.len() {
            let error =
                format!("{} holders gone, {} peers to take their places: re-share waits", gone.len(), fresh.len());
            return self.out.push_back(Output::Dropped { from: self.me, error });
        }
        let mut by = fresh.iter();
        let holders: Vec<PeerId> = own
            .holders()
            .into_iter()
            .map(|h| if gone.contains(&h) { *by.next().expect("one each") } else { h })
            .collect();
        let now_ms = self.unix(now);
        let generation = self.next_generation(now_ms);
        let keys = (&own.backup.passphrase, &own.key);
        let built =
            build_backup_with_key(&self.identity, &holders, keys, own.params(), generation, now_ms, &mut self.rng);
        let backup = match built {
            Ok(b) => b,
            Err(e) => return self.out.push_back(Output::Dropped { from: self.me, error: e.to_string() }),
        };
        self.revoke(gone, generation, now_ms, false);
        let own = self.own.as_mut().expect("checked above");
        own.tracker = BackupTracker::new(self.me, &backup, now);
        own.backup = backup;
        own.reshares += 1;
        self.started(now, &holders);
        self.done(RecoveryEvent::Reshared { generation, replaced: gone.to_vec(), by: fresh });
    }
}
