//! The feeds workload's steps in a run: authors drawn among the starting nodes the churn schedule
//! never crashes, follows drawn for every node that starts (a node that comes back follows the
//! same authors again), posts made by live authors, and the figures for the report. See
//! [`crate::feeds`].

use super::*;
use crate::feeds::{FeedsLog, Post};
use std::cell::RefCell;
use std::collections::BTreeMap;
use swarm_engine::feeds::{FeedEvent, Followee};
use swarm_engine::wiring::FeedListener;

/// Op ids of the run's posts (their own range).
const POST_OPS: u64 = 1 << 61;

pub(super) struct FeedsRun {
    pub(super) log: Rc<RefCell<FeedsLog>>,
    rng: ChaCha8Rng,
    /// Author slots (drawn at the start), and their ids once the starting nodes exist.
    author_slots: Vec<usize>,
    authors: Vec<PeerId>,
    /// Who follows whom: follower -> authors (drawn once per identity).
    follows: BTreeMap<PeerId, Vec<usize>>,
    /// author index -> followers.
    followers: Vec<BTreeSet<PeerId>>,
    /// Where each follower runs (to tell whether it is up).
    slot_of: BTreeMap<PeerId, usize>,
    /// Nodes started before the authors were known, to follow once they are.
    waiting: Vec<usize>,
    next_op: u64,
}

impl FeedsRun {
    pub(super) fn new(sc: &Scenario, churn: &[ChurnEvent], mut rng: ChaCha8Rng) -> Self {
        let crashed: BTreeSet<usize> = churn
            .iter()
            .filter_map(|e| match e.action {
                ChurnAction::Crash { slot } | ChurnAction::Offline { slot } => Some(slot),
                ChurnAction::Join { .. } | ChurnAction::Online { .. } => None,
            })
            .collect();
        let mut steady: Vec<usize> = (0..sc.nodes).filter(|s| !crashed.contains(s)).collect();
        if steady.len() < sc.feeds.authors {
            // Too few never crash: the rest from the others (their posts stop when they leave).
            steady = (0..sc.nodes).collect();
        }
        let picked = rand::seq::index::sample(&mut rng, steady.len(), sc.feeds.authors.min(steady.len()));
        let mut author_slots: Vec<usize> = picked.into_iter().map(|i| steady[i]).collect();
        author_slots.sort_unstable();
        FeedsRun {
            log: Rc::new(RefCell::new(FeedsLog::default())),
            rng,
            followers: vec![BTreeSet::new(); author_slots.len()],
            author_slots,
            authors: Vec::new(),
            follows: BTreeMap::new(),
            slot_of: BTreeMap::new(),
            waiting: Vec::new(),
            next_op: POST_OPS,
        }
    }

    /// What node `id` tells the run about feeds.
    pub(super) fn listener(&self, id: PeerId, clock: Clock) -> FeedListener {
        let log = self.log.clone();
        Box::new(move |ev| {
            if let FeedEvent::Learned(item) = ev {
                log.borrow_mut().on_learned(id, item.owner, &item.entry.name, clock.now());
            }
        })
    }

    /// Post times: a Poisson process at all authors' rate, from warm-up until the reach window
    /// before the end (its own RNG stream).
    pub(super) fn post_times(sc: &Scenario, mut rng: ChaCha8Rng) -> Vec<u64> {
        let f = &sc.feeds;
        let rate_per_ms = f.posts_per_author_per_hour * f.authors as f64 / 3_600_000.0;
        let stop = (sc.duration_s.saturating_sub(f.reach_window_s) * 1000) as f64;
        let mut at = (sc.warmup_s * 1000) as f64;
        let mut out = Vec::new();
        loop {
            let u: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
            at += -u.ln() / rate_per_ms;
            if at >= stop {
                break;
            }
            out.push(at as u64);
        }
        out
    }
}

/// A node started in `slot`: it follows its authors (drawn the first time its identity starts).
pub(super) fn on_start(world: &mut World, slot: usize) {
    let Some(f) = world.feeds.as_mut() else { return };
    if f.authors.is_empty() {
        f.waiting.push(slot);
        return;
    }
    follow(world, slot);
}

/// The starting population is up: authors are known; the nodes started so far follow.
pub(super) fn ready(world: &mut World) {
    let Some(f) = world.feeds.as_mut() else { return };
    f.authors = f.author_slots.iter().map(|s| world.ids[*s]).collect();
    for slot in std::mem::take(&mut f.waiting) {
        follow(world, slot);
    }
}

fn follow(world: &mut World, slot: usize) {
    let (Some(f), Some(node)) = (world.feeds.as_mut(), world.nodes[slot].as_ref()) else { return };
    let id = world.ids[slot];
    f.slot_of.insert(id, slot);
    if !f.follows.contains_key(&id) {
        let p = (world.sc.feeds.followers_per_author as f64 / world.sc.nodes as f64).min(1.0);
        let mine: Vec<usize> = (0..f.authors.len()).filter(|a| f.authors[*a] != id && f.rng.gen_bool(p)).collect();
        for a in &mine {
            f.followers[*a].insert(id);
        }
        f.follows.insert(id, mine);
    }
    for a in &f.follows[&id] {
        node.follow(0, Followee::of(f.authors[*a]));
    }
}

pub(super) fn on_crash(world: &mut World, id: PeerId, at_ms: u64) {
    if let Some(f) = world.feeds.as_mut() {
        if f.follows.get(&id).is_some_and(|a| !a.is_empty()) {
            f.log.borrow_mut().crashed.entry(id).or_default().push(at_ms);
        }
    }
}

/// A random author posts (if up); its followers online now are the ones measured.
pub(super) fn post(world: &mut World, at_ms: u64) {
    let Some(f) = world.feeds.as_mut() else { return };
    if f.authors.is_empty() {
        return;
    }
    let a = f.rng.gen_range(0..f.authors.len());
    let slot = f.author_slots[a];
    let author = f.authors[a];
    let Some(node) = world.nodes[slot].as_ref().filter(|n| n.id == author) else {
        f.log.borrow_mut().skipped += 1;
        return;
    };
    let live = |p: &PeerId| f.slot_of.get(p).is_some_and(|s| world.nodes[*s].as_ref().is_some_and(|n| n.id == *p));
    let online: Vec<PeerId> = f.followers[a].iter().filter(|p| live(p)).copied().collect();
    let mut log = f.log.borrow_mut();
    let n = log.posts.len();
    log.posts.push(Post { author, at_ms, online });
    let op = f.next_op;
    f.next_op += 1;
    node.publish_post(op, format!("post-{n}"));
}

pub(super) fn feeds_metrics(world: &World, m: &mut Metrics, notes: &mut Vec<String>) {
    let Some(f) = world.feeds.as_ref() else { return };
    let spec = &world.sc.feeds;
    let log = f.log.borrow();
    let s = log.summary(spec.reach_window_s * 1000, world.sc.duration_s * 1000);
    m.feed_posts = Some(s.posts);
    m.announce_delay_p50_s = s.delay_p50_s;
    m.announce_delay_p99_s = s.delay_p99_s;
    m.announce_reach_share = s.reach_share;
    let followers: usize = f.followers.iter().map(BTreeSet::len).sum();
    notes.push(format!(
        "feeds: {} authors, {} follows drawn (target {} per author), {} posts made ({} skipped: author down); {} of {} (post, follower online and up for {} s) pairs learned within the window; delay max {} s; {} other entries learned",
        f.authors.len(),
        followers,
        spec.followers_per_author,
        s.posts,
        log.skipped,
        s.pairs_reached,
        s.pairs_due,
        spec.reach_window_s,
        s.delay_max_s.map_or_else(|| "n/a".into(), |d| format!("{d:.1}")),
        log.other_learned,
    ));
}
