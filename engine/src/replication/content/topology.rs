//! The links the content actor keeps: its XOR neighbourhood plus one link per farther bucket,
//! refreshed by lookups of its own key and of random keys in empty buckets; idle links it opened
//! and no longer wants are closed cleanly.

use super::*;

fn random_key_in_bucket(me: &Key, b: usize, rng: &mut ChaCha8Rng) -> Key {
    let mut d = [0u8; 32];
    rng.fill_bytes(&mut d);
    let byte = 31 - b / 8;
    for x in d.iter_mut().take(byte) {
        *x = 0;
    }
    let bit = b % 8;
    d[byte] &= ((1u16 << (bit + 1)) - 1) as u8;
    d[byte] |= 1 << bit;
    let mut k = me.0;
    for (x, y) in k.iter_mut().zip(d) {
        *x ^= y;
    }
    Key(k)
}

impl<S: Storage> ContentCore<S> {
    /// Our XOR neighbourhood as the table knows it, and the bucket of its farthest member (the
    /// buckets above it are where one link each is wanted).
    pub(super) fn neighbourhood(&self) -> (Vec<PeerId>, usize) {
        let hood = self.table.closest(&self.my_key, self.tcfg.neighbourhood);
        let lowest = hood.iter().filter_map(|p| self.my_key.distance(&Key::of_peer(p)).bucket()).max().unwrap_or(0);
        (hood, lowest)
    }

    /// The peers we want links to: our neighbourhood, and one peer in each bucket above it
    /// (a bucket already holding a link needs nothing more). Which peer of a bucket is this
    /// node's own pick (by its key): taking the freshest, as every node did, piled inbound links
    /// on the busiest peers until they refused connections.
    pub(super) fn wanted(&self) -> BTreeSet<PeerId> {
        let (hood, lowest) = self.neighbourhood();
        let mut linked_buckets = BTreeSet::new();
        for p in self.links.keys() {
            if let Some(b) = self.my_key.distance(&Key::of_peer(p)).bucket() {
                linked_buckets.insert(b);
            }
        }
        let mut want: BTreeSet<PeerId> = hood.into_iter().collect();
        for b in (lowest + 1)..256 {
            if !linked_buckets.contains(&b) {
                let members: Vec<&PeerId> = self.table.bucket(b).collect();
                if !members.is_empty() {
                    want.insert(*members[(usize::from(self.my_key.0[31]) + b) % members.len()]);
                }
            }
        }
        want
    }

    /// Dial wanted peers; close links we opened that are idle and no longer wanted.
    pub(super) fn maintain(&mut self, now: Millis) {
        let want = self.wanted();
        let mut topo_dials = self.dialing.values().filter(|d| !d.exchange).count();
        for p in &want {
            if topo_dials >= self.tcfg.max_dials {
                break;
            }
            if !self.links.contains_key(p) && !self.dialing.contains_key(p) {
                self.dialing.insert(*p, Dial { at: now, exchange: false, queued: vec![] });
                self.effect(Effect::Dial(*p));
                topo_dials += 1;
            }
        }
        let busy: BTreeSet<PeerId> = self.gets.keys().map(|(p, _)| *p).collect();
        let idle = self.tcfg.idle_link_ms;
        let close: Vec<PeerId> = self
            .links
            .iter()
            .filter(|(p, l)| {
                l.ours && !want.contains(p) && !busy.contains(p) && now.saturating_sub(l.last_used) >= idle
            })
            .map(|(p, _)| *p)
            .collect();
        for p in close {
            self.effect(Effect::Close(p));
        }
    }

    /// Look ourselves up (finding the neighbourhood) and a random key in each empty bucket.
    pub(super) fn refresh(&mut self, now: Millis) {
        self.start_lookup(now, self.my_key, Purpose::Refresh);
        let (_, lowest) = self.neighbourhood();
        let mut started = 0;
        for b in ((lowest + 1)..256).rev() {
            if started >= BUCKET_LOOKUPS_PER_REFRESH {
                break;
            }
            // Farthest buckets first; those below the neighbourhood's are not looked into.
            if self.table.bucket(b).next().is_none() {
                let target = random_key_in_bucket(&self.my_key, b, &mut self.rng);
                self.start_lookup(now, target, Purpose::Refresh);
                started += 1;
            }
        }
    }
}
