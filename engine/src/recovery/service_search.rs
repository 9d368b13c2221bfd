//! The holder-list search of the recovery core: answering other nodes' list requests, and, for a
//! recovery started with a user id and no holders, the lookup toward the list key whose answers
//! name the holders to ask. Part of [`super::RecoveryCore`]; split out to keep files small.

use super::*;

impl RecoveryCore {
    /// A peer asks for a user's holder list: the list if kept, and the peers closest to its key.
    pub(super) fn on_list_request(&mut self, unix: u64, from: PeerId, env: &Envelope) {
        let req = match open::<ListRequest>(env) {
            Ok(r)
                if r.storer == self.me
                    && r.user_id.len() <= crate::recovery::messages::MAX_USER_ID_CHARS
                    && r.region < MAX_LIST_REGIONS =>
            {
                r
            }
            Ok(_) => return self.out.push_back(Output::Dropped { from, error: "list request not for us".into() }),
            Err(e) => return self.out.push_back(Output::Dropped { from, error: e.to_string() }),
        };
        let mut closer = self.list_targets(&req.user_id, req.region, MAX_LIST_CLOSER + 1);
        closer.retain(|p| *p != from);
        closer.truncate(MAX_LIST_CLOSER);
        let list = self.lists.get(&req.user_id).cloned();
        tracing::debug!(me = %self.me.short(), user_id = %req.user_id, from = %from.short(), kept = list.is_some(), "holder list asked");
        let reply = ListReply { user_id: req.user_id, to: from, list, closer, region: req.region };
        let env = sign(&self.identity, &reply, unix);
        self.send(from, env);
    }

    /// A list search's answer: follow the closer peers; a list found names the holders to ask.
    /// The owner's own placement lookup takes it too.
    pub(super) fn on_list_reply(&mut self, now: Millis, from: PeerId, env: &Envelope) {
        let reply = match open::<ListReply>(env) {
            Ok(r) if r.to == self.me => r,
            Ok(_) => return self.out.push_back(Output::Dropped { from, error: "list reply not for us".into() }),
            Err(e) => return self.out.push_back(Output::Dropped { from, error: e.to_string() }),
        };
        let unix = self.unix(now);
        let mut requests = Vec::new();
        for r in self.sessions.values_mut() {
            let Some(f) = r.finder.as_mut() else { continue };
            if let Found::List(list) = f.on_reply(&from, reply.clone()) {
                let fresh: Vec<PeerId> = list.holders.iter().filter(|h| **h != self.me).copied().collect();
                for h in &fresh {
                    if f.ask(now, *h, self.view.contains(h)) {
                        requests.push((*h, sign(&self.identity, &f.request(*h), unix)));
                    }
                }
                r.session.add_holders(&fresh, MAX_SESSION_HOLDERS);
                let waiting = |h: &PeerId| r.session.holders().get(h) == Some(&Asked::Waiting);
                let reachable: Vec<PeerId> =
                    fresh.into_iter().filter(|h| self.view.contains(h) && waiting(h)).collect();
                for h in reachable {
                    requests.extend(r.session.request(&h, unix).map(|e| (h, e)));
                }
            }
        }
        if let Some(f) = self.placing.as_mut() {
            f.on_reply(&from, reply);
        }
        for (h, e) in requests {
            self.send(h, e);
        }
        self.pump_finders(now);
    }

    /// A search toward `user`'s list key in `region`, seeded with the peers this node knows
    /// closest to it.
    pub(super) fn list_finder(&self, user: &str, region: u8) -> ListFinder {
        let seeds = self.list_targets(user, region, 4 * self.cfg.list_lookup_k);
        let cfg = LookupConfig { k: self.cfg.list_lookup_k, alpha: self.cfg.list_lookup_alpha, await_stalled: true };
        ListFinder::new(user, region, seeds, cfg)
    }

    /// List searches ask their next peers (at once over a link, else when one is up); the
    /// owner's placement lookup, once done, names where its list goes.
    pub(super) fn pump_finders(&mut self, now: Millis) {
        let unix = self.unix(now);
        let view = self.view.clone();
        let mut requests = Vec::new();
        for f in finders(&mut self.sessions, &mut self.placing) {
            for p in f.next_queries(now, |p| view.contains(p)) {
                requests.push((p, sign(&self.identity, &f.request(p), unix)));
            }
        }
        for (p, e) in requests {
            self.send(p, e);
        }
        if self.placing.as_ref().is_some_and(|f| f.is_done()) {
            let placed = self.placing.take().expect("checked");
            self.place_list(now, placed.closest(self.cfg.list_rf));
        }
    }

    /// A recovery's list search ended with nothing: a new one from what this node knows now,
    /// toward the next region's key.
    pub(super) fn search_again(&mut self, now: Millis, op: OpId) {
        let Some((user, region)) =
            self.sessions.get(&op).and_then(|r| r.finder.as_ref()).map(|f| (f.user_id().to_string(), f.region()))
        else {
            return;
        };
        let finder = self.list_finder(&user, (region + 1) % self.cfg.list_regions.max(1));
        if let Some(old) =
            self.sessions.get(&op).and_then(|r| r.finder.as_ref()).filter(|_| tracing::enabled!(tracing::Level::DEBUG))
        {
            let closest: Vec<String> = old.closest(10).iter().map(|p| p.short()).collect();
            tracing::debug!(me = %self.me.short(), %user, region, ?closest, "holder list search found nothing; again");
        }
        if let Some(r) = self.sessions.get_mut(&op) {
            r.finder = Some(finder);
            r.started = now;
            r.searches += 1;
        }
        self.pump_finders(now);
    }

    /// Questions of list searches that went unanswered too long fail (the search moves on).
    pub(super) fn expire_list_asks(&mut self, now: Millis) {
        let mut any = false;
        for f in finders(&mut self.sessions, &mut self.placing) {
            any |= f.expire(now);
        }
        if any {
            self.pump_finders(now);
        }
    }

    /// The earliest time a list search's question times out.
    pub(super) fn next_list_expiry(&self) -> Option<Millis> {
        self.sessions
            .values()
            .filter_map(|r| r.finder.as_ref())
            .chain(self.placing.as_ref())
            .filter_map(|f| f.next_expiry())
            .min()
    }

    /// A peer a list search asked is out of reach (dial failed, link lost before its answer).
    pub(super) fn list_peer_lost(&mut self, now: Millis, peer: &PeerId) {
        for f in finders(&mut self.sessions, &mut self.placing) {
            f.failed(peer);
        }
        self.pump_finders(now);
    }
}

/// Every running list search: the recoveries' and the owner's placement lookup.
pub(super) fn finders<'a>(
    sessions: &'a mut BTreeMap<OpId, Running>,
    placing: &'a mut Option<ListFinder>,
) -> impl Iterator<Item = &'a mut ListFinder> {
    sessions.values_mut().filter_map(|r| r.finder.as_mut()).chain(placing.as_mut())
}
