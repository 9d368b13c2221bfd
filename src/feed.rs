//! `swarm follow|unfollow USER_ID` and `swarm feed`: the users a node follows and what it learned
//! of them, through a running node's control API. Posts and files a node publishes (`swarm put`)
//! go into its own feed and are announced by themselves.

use crate::client;
use crate::node::feed::{FeedView, FollowRequest, FollowView};
use anyhow::Result;

pub fn follow(api: &str, user: String, follow: bool) -> Result<()> {
    let path = if follow { "/feed/follow" } else { "/feed/unfollow" };
    let f: FollowView = client::post_json(api, path, serde_json::to_value(FollowRequest { user })?)?;
    let peer = f.peer_id.as_deref().unwrap_or("peer id not known yet");
    if follow {
        println!("following {} ({peer})", f.user_id);
    } else {
        println!("no longer following {}", f.user_id);
    }
    Ok(())
}

pub fn feed(api: &str, limit: usize, json: bool) -> Result<()> {
    let limit = limit.to_string();
    let f: FeedView = client::get_query(api, "/feed", &[("limit", limit.as_str())])?;
    if json {
        println!("{}", serde_json::to_string_pretty(&f)?);
        return Ok(());
    }
    for u in &f.following {
        println!("following {} ({})", u.user_id, u.peer_id.as_deref().unwrap_or("peer id not known yet"));
    }
    for e in &f.entries {
        println!(
            "{} #{} {} {:?} {} (published unix ms {}, learned unix ms {})",
            e.user_id, e.seq, e.kind, e.name, e.link, e.published_unix_ms, e.learned_unix_ms
        );
        if let Some(t) = &e.text {
            println!("    {t}");
        }
    }
    println!("{} entries", f.entries.len());
    Ok(())
}
