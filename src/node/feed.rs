//! Feeds through the control API: `POST /feed/follow` and `POST /feed/unfollow` (`{"user": ID}`,
//! a user id or a peer id), `GET /feed?limit=N` (the followed users and their entries, newest
//! first, with when this node learned each). The JSON shapes are shared with the CLI; answers come
//! from the feeds actor by op id. Publications go into this node's own feed by themselves.

use super::api::{ApiError, Reply};
use super::host::Host;
use super::recovery::OpWaiters;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use swarm_engine::feeds::store::StoredFollow;
use swarm_engine::feeds::{EntryKind, FeedEvent, FeedItem, FollowError, Followee};
use swarm_engine::identity::user_id;
use swarm_engine::wiring::FeedListener;
use tokio::sync::mpsc;

/// Entries `GET /feed` lists by default, and at most.
pub const DEFAULT_FEED_LIMIT: usize = 50;
pub const MAX_FEED_LIMIT: usize = 1000;
/// Posts learned and waiting to be fetched, at most (more are fetched when `swarm get` asks).
pub const MAX_PENDING_POST_FETCHES: usize = 256;
/// Post texts kept for `swarm feed` (the oldest link in order goes first).
pub const MAX_POST_TEXTS: usize = 1024;

/// Texts of followed users' posts, by link.
pub type PostTexts = Rc<RefCell<BTreeMap<String, String>>>;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FollowRequest {
    /// A user id (16 hex digits) or a peer id (64 hex digits).
    pub user: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FollowView {
    pub user_id: String,
    /// Known once given or once an announcement of the user's came in.
    pub peer_id: Option<String>,
    pub since_unix_ms: u64,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct FeedQuery {
    pub limit: Option<usize>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FeedItemView {
    pub user_id: String,
    pub peer_id: String,
    pub seq: u64,
    /// `post` or `file`.
    pub kind: String,
    pub name: String,
    /// `swarm get LINK` fetches it.
    pub link: String,
    pub published_unix_ms: u64,
    pub learned_unix_ms: u64,
    /// A post's text, once this node fetched it (it does as it learns the post).
    pub text: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FeedView {
    pub following: Vec<FollowView>,
    pub entries: Vec<FeedItemView>,
}

/// Waiters for the feeds actor's answers.
pub type FeedWaiters = OpWaiters<FeedEvent>;

impl OpWaiters<FeedEvent> {
    /// The listener handed to the node: each answer to its waiter; the links of posts learned
    /// go to `fetch` (dropped when it is full), other entries learned are logged.
    pub fn listener(self: &Rc<Self>, fetch: mpsc::Sender<String>) -> FeedListener {
        let me = self.clone();
        Box::new(move |ev| match ev {
            FeedEvent::Followed { op, .. } | FeedEvent::Unfollowed { op, .. } | FeedEvent::Feed { op, .. } => {
                me.deliver(op, ev)
            }
            FeedEvent::Learned(item) => {
                tracing::info!(
                    user = %user_id(&item.owner), seq = item.entry.seq, kind = item.entry.kind.name(),
                    name = %item.entry.name, "feed: new entry"
                );
                if item.entry.kind == EntryKind::Post && fetch.try_send(item.entry.link).is_err() {
                    tracing::debug!("feed: too many posts waiting to be fetched; this one is fetched on demand");
                }
            }
            FeedEvent::Appended(e) => tracing::info!(seq = e.seq, kind = e.kind.name(), "feed: entry published"),
        })
    }
}

fn follow_view(f: &StoredFollow) -> FollowView {
    FollowView { user_id: f.user_id.clone(), peer_id: f.peer.map(|p| p.to_string()), since_unix_ms: f.since_ms }
}

/// Fetch the posts the listener hands over, one at a time, keeping their texts (bounded).
pub async fn fetch_posts(host: Rc<Host>, mut links: mpsc::Receiver<String>) {
    while let Some(link) = links.recv().await {
        if host.post_texts.borrow().contains_key(&link) {
            continue;
        }
        match host.fetch_post_text(&link).await {
            Some(text) => {
                let mut texts = host.post_texts.borrow_mut();
                texts.insert(link, text);
                while texts.len() > MAX_POST_TEXTS {
                    texts.pop_first();
                }
            }
            None => tracing::debug!(%link, "feed: a followed post could not be fetched now"),
        }
    }
}

fn item_view(i: &FeedItem, texts: &BTreeMap<String, String>) -> FeedItemView {
    FeedItemView {
        user_id: user_id(&i.owner),
        peer_id: i.owner.to_string(),
        seq: i.entry.seq,
        kind: i.entry.kind.name().to_string(),
        name: i.entry.name.clone(),
        link: i.entry.link.clone(),
        published_unix_ms: i.entry.published_ms,
        learned_unix_ms: i.learned_ms,
        text: texts.get(&i.entry.link).cloned(),
    }
}

fn follow_error(e: FollowError) -> ApiError {
    let status = match &e {
        FollowError::Malformed(_) | FollowError::Myself(_) => StatusCode::BAD_REQUEST,
        FollowError::NotFollowing(_) => StatusCode::NOT_FOUND,
        FollowError::TooMany { .. } => StatusCode::CONFLICT,
    };
    ApiError::new(status, e.to_string())
}

fn gone() -> ApiError {
    ApiError::internal("the node stopped")
}

fn other() -> ApiError {
    ApiError::internal("the feeds actor answered something else")
}

impl Host {
    pub(super) async fn follow(&self, r: FollowRequest, reply: Reply<FollowView>) {
        let _ = reply.send(self.try_follow(r, true).await);
    }

    pub(super) async fn unfollow(&self, r: FollowRequest, reply: Reply<FollowView>) {
        let _ = reply.send(self.try_follow(r, false).await);
    }

    async fn try_follow(&self, r: FollowRequest, follow: bool) -> Result<FollowView, ApiError> {
        let user = Followee::parse(&r.user).map_err(follow_error)?;
        let (op, rx) = self.feeds.open();
        if follow {
            self.node.follow(op, user.clone());
        } else {
            self.node.unfollow(op, user.clone());
        }
        match rx.await.map_err(|_| gone())? {
            FeedEvent::Followed { result, .. } => result.map(|f| follow_view(&f)).map_err(follow_error),
            FeedEvent::Unfollowed { result, .. } => result.map_err(follow_error).map(|()| FollowView {
                user_id: user.user_id,
                peer_id: user.peer.map(|p| p.to_string()),
                since_unix_ms: 0,
            }),
            _ => Err(other()),
        }
    }

    pub(super) async fn feed(&self, q: FeedQuery, reply: Reply<FeedView>) {
        let _ = reply.send(self.try_feed(q).await);
    }

    async fn try_feed(&self, q: FeedQuery) -> Result<FeedView, ApiError> {
        let limit = q.limit.unwrap_or(DEFAULT_FEED_LIMIT);
        if limit == 0 || limit > MAX_FEED_LIMIT {
            return Err(ApiError::bad_request(format!("limit {limit}: must be 1 to {MAX_FEED_LIMIT}")));
        }
        let (op, rx) = self.feeds.open();
        self.node.feed(op, limit);
        match rx.await.map_err(|_| gone())? {
            FeedEvent::Feed { items, follows, .. } => Ok(FeedView {
                following: follows.iter().map(follow_view).collect(),
                entries: items.iter().map(|i| item_view(i, &self.post_texts.borrow())).collect(),
            }),
            _ => Err(other()),
        }
    }
}
