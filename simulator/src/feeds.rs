//! The feeds workload (`[feeds]` of a scenario): a few authors post, each node follows each author
//! with a probability that gives `followers_per_author` followers; the nodes' feed listeners tell
//! the run when a follower learns a post. Measured: how long after a post its followers that were
//! online learned it (`announce_delay_p50_s` / `_p99_s`) and which share of them learned it within
//! `reach_window_s` (`announce_reach_share`). Measurement and ground truth only.

use crate::report::percentile;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use swarm_engine::PeerId;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedsSpec {
    /// Authors (0: no feeds workload). Drawn among the starting nodes the churn schedule never
    /// crashes (an author who left would post nothing).
    pub authors: usize,
    /// Followers each author has on average among live nodes (each node, starting or joining,
    /// follows each author with probability followers_per_author / nodes).
    pub followers_per_author: usize,
    /// Posts per author per hour (a Poisson process), from `warmup_s` until `reach_window_s`
    /// before the end.
    pub posts_per_author_per_hour: f64,
    /// A follower online at a post and still up this long after must have learned it (reach);
    /// the target is 120 s (p99 delay).
    pub reach_window_s: u64,
}

impl Default for FeedsSpec {
    fn default() -> Self {
        FeedsSpec { authors: 0, followers_per_author: 50, posts_per_author_per_hour: 6.0, reach_window_s: 300 }
    }
}

impl FeedsSpec {
    pub fn enabled(&self) -> bool {
        self.authors > 0
    }

    /// Checked against the run; (field, reason) on error.
    pub fn validate(&self, nodes: usize, duration_s: u64, warmup_s: u64) -> Result<(), (String, String)> {
        if !self.enabled() {
            return Ok(());
        }
        let err = |f: &str, r: String| Err((format!("feeds.{f}"), r));
        if self.authors > nodes {
            return err("authors", format!("must not exceed nodes ({nodes})"));
        }
        if self.followers_per_author == 0 || self.followers_per_author > nodes {
            return err("followers_per_author", format!("must be within 1..=nodes ({nodes})"));
        }
        if !(self.posts_per_author_per_hour > 0.0 && self.posts_per_author_per_hour <= 3600.0) {
            return err("posts_per_author_per_hour", "must be within (0, 3600]".into());
        }
        if self.reach_window_s == 0 || warmup_s + self.reach_window_s >= duration_s {
            return err(
                "reach_window_s",
                format!("must be >= 1 and leave time to post (warmup_s + it < duration_s {duration_s})"),
            );
        }
        Ok(())
    }
}

/// One post, as the run made it.
#[derive(Clone, Debug)]
pub struct Post {
    pub author: PeerId,
    pub at_ms: u64,
    /// Followers online when it was made.
    pub online: Vec<PeerId>,
}

/// What the run and the nodes told the measure.
#[derive(Default)]
pub struct FeedsLog {
    pub posts: Vec<Post>,
    /// Posts not made: their author was down.
    pub skipped: u64,
    /// (post index, follower) -> first learned at (ms).
    pub learned: BTreeMap<(usize, PeerId), u64>,
    /// Follower -> when it went down (ms; several times for a node that comes back), for the
    /// reach window.
    pub crashed: BTreeMap<PeerId, Vec<u64>>,
    /// Entries learned of posts the run did not make as such (other publications, restarts).
    pub other_learned: u64,
}

impl FeedsLog {
    /// A follower learned an entry named `name` (the run names posts `post-N`).
    pub fn on_learned(&mut self, follower: PeerId, owner: PeerId, name: &str, now_ms: u64) {
        let post = name.strip_prefix("post-").and_then(|n| n.parse::<usize>().ok());
        match post.filter(|i| self.posts.get(*i).is_some_and(|p| p.author == owner)) {
            Some(i) => {
                self.learned.entry((i, follower)).or_insert(now_ms);
            }
            None => self.other_learned += 1,
        }
    }

    pub fn summary(&self, window_ms: u64, end_ms: u64) -> FeedsSummary {
        let mut delays_s = Vec::new();
        let (mut due, mut reached) = (0usize, 0usize);
        for (i, p) in self.posts.iter().enumerate() {
            let deadline = p.at_ms + window_ms;
            if deadline > end_ms {
                continue;
            }
            for f in &p.online {
                let learned = self.learned.get(&(i, *f)).copied();
                if let Some(t) = learned {
                    delays_s.push(t.saturating_sub(p.at_ms) as f64 / 1000.0);
                }
                // Reach counts followers that stayed up through the window.
                if self.crashed.get(f).is_some_and(|c| c.iter().any(|t| (p.at_ms..deadline).contains(t))) {
                    continue;
                }
                due += 1;
                reached += usize::from(learned.is_some_and(|t| t <= deadline));
            }
        }
        delays_s.sort_by(f64::total_cmp);
        FeedsSummary {
            posts: self.posts.len(),
            pairs_due: due,
            pairs_reached: reached,
            reach_share: (due > 0).then(|| reached as f64 / due as f64),
            delay_p50_s: (!delays_s.is_empty()).then(|| percentile(&delays_s, 50.0)),
            delay_p99_s: (!delays_s.is_empty()).then(|| percentile(&delays_s, 99.0)),
            delay_max_s: delays_s.last().copied(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct FeedsSummary {
    pub posts: usize,
    /// (post, follower online at it and up through the window) pairs, and those learned in it.
    pub pairs_due: usize,
    pub pairs_reached: usize,
    pub reach_share: Option<f64>,
    pub delay_p50_s: Option<f64>,
    pub delay_p99_s: Option<f64>,
    pub delay_max_s: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reach_and_delay_count_only_followers_online_and_up() {
        let (a, f1, f2, f3) = (PeerId([1; 32]), PeerId([2; 32]), PeerId([3; 32]), PeerId([4; 32]));
        let mut log = FeedsLog::default();
        log.posts.push(Post { author: a, at_ms: 1000, online: vec![f1, f2, f3] });
        log.posts.push(Post { author: a, at_ms: 990_000, online: vec![f1] }); // window past the end
        log.on_learned(f1, a, "post-0", 3000);
        log.on_learned(f1, a, "post-0", 9000); // a second copy changes nothing
        log.on_learned(f2, a, "post-0", 200_000); // after the window
        log.crashed.insert(f3, vec![500, 5000]); // down within the window: not due
        log.on_learned(f1, f2, "post-0", 3000); // wrong author: not this post
        let s = log.summary(120_000, 1_000_000);
        assert_eq!((s.posts, s.pairs_due, s.pairs_reached), (2, 2, 1));
        assert_eq!(s.reach_share, Some(0.5));
        assert_eq!(s.delay_p50_s, Some(2.0));
        assert_eq!(s.delay_max_s, Some(199.0));
        assert_eq!(log.other_learned, 1);
        assert!(FeedsSpec { authors: 1, reach_window_s: 0, ..Default::default() }.validate(10, 600, 60).is_err());
        assert!(
            FeedsSpec { authors: 11, ..Default::default() }.validate(10, 600, 60).unwrap_err().0 == "feeds.authors"
        );
    }
}
