//! Several rendezvous servers used as one, so that no single server is required. One supervisor
//! task per URL keeps a connection (reconnecting with bounded exponential backoff), re-registers
//! every namespace after a reconnect and refreshes registrations at half the TTL the server
//! granted, on a deadline that incoming events do not move; a registration the server refused
//! is tried again after `refresh_retry_ms`. Incoming signals of all servers arrive merged on one
//! event stream.
//!
//! `signal` goes out through every connected server, so the receiver may get the same payload
//! more than once: deduplicating is the job of the layer above (the WebRTC signalling state
//! machine ignores a repeated offer/answer/candidate).

use super::{ClientEvent, RendezvousClient};
use crate::auth::Signer;
use crate::config::MultiConfig;
use crate::error::ClientError;
use crate::proto::{ErrorCode, Namespace, PeerId};
use futures_util::future::join_all;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, warn};

/// What happened on one of the servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiEvent {
    Connected { url: String },
    Disconnected { url: String },
    Signal { url: String, from: PeerId, payload: String },
    Error { url: String, code: ErrorCode, message: String },
}

/// Shortest interval between registration refreshes.
const MIN_REFRESH_MS: u64 = 1_000;
/// Refresh interval of a connection with nothing to register (a `register` wakes it anyway).
const IDLE_REFRESH_MS: u64 = 3_600_000;

/// Handle on a set of servers. Dropping it stops every supervisor and closes every connection.
pub struct MultiRendezvous {
    shared: Arc<Shared>,
    _stop: watch::Sender<()>,
}

struct Shared {
    /// Signs every registration; each (re)connection brings a new challenge to sign.
    signer: Arc<dyn Signer>,
    peer: PeerId,
    urls: Vec<String>,
    cfg: MultiConfig,
    /// Connected clients by index into `urls`.
    clients: Mutex<BTreeMap<usize, RendezvousClient>>,
    /// Clients whose registrations have been replayed: signals go only through these (a signal
    /// sent before registering is refused as `not_registered`, and would be lost).
    ready: Mutex<BTreeSet<usize>>,
    /// Namespaces to be registered under, with the TTL asked: replayed after each reconnect.
    registrations: Mutex<BTreeMap<String, u64>>,
    /// TTL each server granted, by (index into `urls`, namespace), for the registrations in
    /// place on its current connection; a missing entry is a registration to try again.
    granted: Mutex<BTreeMap<(usize, String), u64>>,
    /// Bumped when `registrations` changes, so each supervisor recomputes its deadline.
    changed: watch::Sender<()>,
    /// Signals dropped by the pacing of connections that have ended (live ones count their own).
    paced_before: AtomicU64,
    events: mpsc::Sender<MultiEvent>,
}

impl MultiRendezvous {
    /// Starts one supervisor per URL (duplicates are ignored); must run inside a tokio runtime.
    /// Servers that are down, now or later, are retried until the handle is dropped. `signer`
    /// holds the key of the peer registered everywhere.
    pub fn start(
        urls: impl IntoIterator<Item = String>,
        signer: Arc<dyn Signer>,
        cfg: MultiConfig,
    ) -> (MultiRendezvous, mpsc::Receiver<MultiEvent>) {
        let mut seen = BTreeSet::new();
        let urls: Vec<String> = urls.into_iter().filter(|u| seen.insert(u.clone())).collect();
        let (events, event_rx) = mpsc::channel(cfg.event_queue_len);
        let (stop, stopped) = watch::channel(());
        let shared = Arc::new(Shared {
            peer: signer.peer(),
            signer,
            urls,
            cfg,
            clients: Mutex::new(BTreeMap::new()),
            ready: Mutex::new(BTreeSet::new()),
            registrations: Mutex::new(BTreeMap::new()),
            granted: Mutex::new(BTreeMap::new()),
            changed: watch::channel(()).0,
            paced_before: AtomicU64::new(0),
            events,
        });
        for idx in 0..shared.urls.len() {
            tokio::spawn(supervise(shared.clone(), idx, stopped.clone()));
        }
        (MultiRendezvous { shared, _stop: stop }, event_rx)
    }

    pub fn peer(&self) -> PeerId {
        self.shared.peer
    }

    /// URLs with a live connection, in the order given to `start`.
    pub fn connected(&self) -> Vec<String> {
        self.shared.connected().into_iter().map(|(idx, _)| self.shared.urls[idx].clone()).collect()
    }

    /// Registers under `ns` on every connected server and remembers it for servers that connect
    /// later. Returns how many servers accepted it now (0 is not an error: it is kept for later).
    pub async fn register(&self, ns: &str, ttl_s: u64) -> Result<usize, ClientError> {
        Namespace::parse(ns).map_err(|e| ClientError::Argument { field: "ns", problem: e.to_string() })?;
        lock(&self.shared.registrations).insert(ns.to_owned(), ttl_s);
        let clients = self.shared.connected();
        let results = join_all(clients.iter().map(|(_, c)| c.register(ns, ttl_s))).await;
        for ((idx, _), result) in clients.iter().zip(&results) {
            self.shared.record(*idx, ns, result);
        }
        // A refused one is retried by its supervisor, which this wakes.
        self.shared.changed.send_replace(());
        Ok(results.iter().filter(|r| r.is_ok()).count())
    }

    /// Withdraws `ns` everywhere and forgets it.
    pub fn unregister(&self, ns: &str) {
        lock(&self.shared.registrations).remove(ns);
        lock(&self.shared.granted).retain(|(_, n), _| n != ns);
        for (_, client) in self.shared.connected() {
            let _ = client.unregister(ns);
        }
        self.shared.changed.send_replace(());
    }

    /// Peers under `ns` from every connected server: each is asked for up to `limit` peers (in
    /// pages, at most `max_discover_pages`), and the union comes back sorted by peer id, without
    /// duplicates and without this peer. Servers that fail or time out are skipped.
    pub async fn discover_all(&self, ns: &str, limit: u32) -> Vec<PeerId> {
        let max_pages = self.shared.cfg.max_discover_pages;
        let clients = self.shared.connected();
        let answers = join_all(clients.iter().map(|(_, c)| discover_from(c, ns, limit, max_pages))).await;
        let mut merged = BTreeSet::new();
        for peers in answers {
            merged.extend(peers);
        }
        merged.remove(&self.shared.peer);
        merged.into_iter().collect()
    }

    /// Signals not sent because a server's budget was spent (see `ClientConfig`), over all
    /// connections so far.
    pub fn signals_paced(&self) -> u64 {
        let live: u64 = lock(&self.shared.clients).values().map(RendezvousClient::signals_paced).sum();
        self.shared.paced_before.load(Ordering::Relaxed) + live
    }

    /// Sends `payload` to `to` through every connected server where this peer's registrations
    /// are in place; returns through how many it went (a server whose budget is spent for now
    /// is skipped: see [`Self::signals_paced`]).
    pub fn signal(&self, to: PeerId, payload: &str) -> usize {
        let ready = lock(&self.shared.ready).clone();
        self.shared.connected().iter().filter(|(i, c)| ready.contains(i) && c.signal(to, payload).is_ok()).count()
    }
}

impl Shared {
    fn connected(&self) -> Vec<(usize, RendezvousClient)> {
        lock(&self.clients).iter().filter(|(_, c)| c.is_connected()).map(|(i, c)| (*i, c.clone())).collect()
    }

    fn emit(&self, event: MultiEvent) {
        if self.events.try_send(event).is_err() {
            warn!("multi-rendezvous event queue full (event_queue_len): dropping an event");
        }
    }

    /// (Re-)registers every remembered namespace on `client`.
    async fn register_all(&self, idx: usize, client: &RendezvousClient) {
        let wanted: Vec<(String, u64)> = lock(&self.registrations).iter().map(|(n, t)| (n.clone(), *t)).collect();
        for (ns, ttl_s) in wanted {
            let result = client.register(&ns, ttl_s).await;
            self.record(idx, &ns, &result);
        }
    }

    /// Remembers what server `idx` granted for `ns`, or that it must be tried again.
    fn record(&self, idx: usize, ns: &str, result: &Result<u64, ClientError>) {
        let mut granted = lock(&self.granted);
        match result {
            // Unless withdrawn meanwhile.
            Ok(ttl_s) if lock(&self.registrations).contains_key(ns) => {
                granted.insert((idx, ns.to_owned()), *ttl_s);
            }
            Ok(_) => {}
            Err(e) => {
                debug!(url = %self.urls[idx], %ns, error = %e, "register failed: retrying in refresh_retry_ms");
                granted.remove(&(idx, ns.to_owned()));
            }
        }
    }

    /// How long after the last refresh of server `idx` the next one is due: half the shortest
    /// TTL it granted, or `refresh_retry_ms` if a registration is not in place there.
    fn refresh_after(&self, idx: usize) -> Duration {
        let granted = lock(&self.granted);
        let ms = lock(&self.registrations)
            .keys()
            .map(|ns| match granted.get(&(idx, ns.clone())) {
                Some(ttl_s) => (ttl_s.saturating_mul(1000) / 2).max(MIN_REFRESH_MS),
                None => self.cfg.refresh_retry_ms,
            })
            .min()
            .unwrap_or(IDLE_REFRESH_MS);
        Duration::from_millis(ms)
    }

    /// Server `idx` is gone: nothing is registered there any more.
    fn forget_grants(&self, idx: usize) {
        lock(&self.granted).retain(|(i, _), _| *i != idx);
    }
}

/// The mutexes guard plain maps and are never held across an await; a panic elsewhere cannot
/// leave them half-updated, so a poisoned lock is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn discover_from(client: &RendezvousClient, ns: &str, limit: u32, max_pages: u32) -> Vec<PeerId> {
    let mut found = Vec::new();
    let mut cookie: Option<String> = None;
    for _ in 0..max_pages {
        let want = limit.saturating_sub(u32::try_from(found.len()).unwrap_or(u32::MAX));
        if want == 0 {
            break;
        }
        match client.discover(ns, want, cookie.as_deref()).await {
            Ok((peers, next)) => {
                let done = peers.is_empty();
                found.extend(peers);
                cookie = Some(next);
                if done {
                    break;
                }
            }
            Err(e) => {
                debug!(url = client.url(), error = %e, "discover failed");
                break;
            }
        }
    }
    found
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_millis(IDLE_REFRESH_MS)
}

/// Keeps the connection to `urls[idx]` until the handle is dropped.
async fn supervise(shared: Arc<Shared>, idx: usize, mut stopped: watch::Receiver<()>) {
    let url = shared.urls[idx].clone();
    let initial = Duration::from_millis(shared.cfg.backoff_initial_ms);
    let max = Duration::from_millis(shared.cfg.backoff_max_ms.max(shared.cfg.backoff_initial_ms));
    let mut backoff = initial;
    loop {
        let attempt = tokio::select! {
            biased;
            _ = stopped.changed() => return,
            attempt = RendezvousClient::connect_with(&url, shared.signer.clone(), shared.cfg.client.clone()) => attempt,
        };
        match attempt {
            Err(e) => debug!(%url, error = %e, retry_ms = backoff.as_millis() as u64, "rendezvous unreachable"),
            Ok((client, mut events)) => {
                backoff = initial;
                // In the map first, so a `register` from now on reaches it; then replay the rest.
                lock(&shared.clients).insert(idx, client.clone());
                shared.register_all(idx, &client).await;
                lock(&shared.ready).insert(idx);
                shared.emit(MultiEvent::Connected { url: url.clone() });
                let mut refreshed = Instant::now();
                let mut changed = shared.changed.subscribe();
                loop {
                    // A deadline from the last refresh: events arriving in between do not move it.
                    let due = refreshed.checked_add(shared.refresh_after(idx)).unwrap_or_else(far_future);
                    tokio::select! {
                        biased;
                        _ = stopped.changed() => return,
                        // Before the events, so a stream of them cannot starve the refresh.
                        _ = tokio::time::sleep_until(due) => {
                            refreshed = Instant::now();
                            shared.register_all(idx, &client).await;
                        }
                        // The registrations changed: recompute the deadline.
                        _ = changed.changed() => {}
                        event = events.recv() => match event {
                            Some(ClientEvent::Signal { from, payload }) => {
                                shared.emit(MultiEvent::Signal { url: url.clone(), from, payload })
                            }
                            Some(ClientEvent::Error { code, message }) => {
                                shared.emit(MultiEvent::Error { url: url.clone(), code, message })
                            }
                            Some(ClientEvent::Disconnected) | None => break,
                        },
                    }
                }
                lock(&shared.ready).remove(&idx);
                if let Some(gone) = lock(&shared.clients).remove(&idx) {
                    shared.paced_before.fetch_add(gone.signals_paced(), Ordering::Relaxed);
                }
                shared.forget_grants(idx);
                shared.emit(MultiEvent::Disconnected { url: url.clone() });
            }
        }
        tokio::select! {
            biased;
            _ = stopped.changed() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(max);
    }
}
