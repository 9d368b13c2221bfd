//! The recovery workload's steps in a run: owners back up, lose their devices (with
//! `holders_lost` of their holders), and recover on fresh nodes from the published holder list;
//! and the figures for the report. See [`crate::recovery`].

use super::*;
use crate::adversary::ContentAdversary;
use crate::recovery::{RecoveryLog, GUESS_OPS};
use std::cell::RefCell;
use std::collections::BTreeMap;
use swarm_engine::recovery::messages::OwnerRef;
use swarm_engine::recovery::session::Asked;
use swarm_engine::wiring::RecoveryListener;
use zeroize::Zeroizing;

/// The run's recovery state.
pub(super) struct RecoveryRun {
    pub(super) log: Rc<RefCell<RecoveryLog>>,
    rng: ChaCha8Rng,
    /// Slots no churn event crashes before the devices are lost (owners are drawn among them).
    steady: BTreeSet<usize>,
    owner_slots: Vec<usize>,
    /// Per owner: the fresh device's slot, and the wrong-passphrase node's.
    devices: Vec<(usize, Option<usize>)>,
    /// Holders crashed with their owners' devices (summed over owners), and the owners that
    /// lost exactly `holders_lost`.
    pub(super) holders_lost: usize,
    pub(super) lost_exactly: usize,
}

fn passphrase(owner: usize) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(format!("recovery passphrase of owner {owner}").into_bytes())
}

impl RecoveryRun {
    pub(super) fn new(sc: &Scenario, churn: &[ChurnEvent], rng: ChaCha8Rng) -> Self {
        let lose_ms = sc.recovery.lose_at_s * 1000;
        let crashed: BTreeSet<usize> = churn
            .iter()
            .filter(|e| e.at_ms <= lose_ms)
            .filter_map(|e| match e.action {
                ChurnAction::Crash { slot } | ChurnAction::Offline { slot } => Some(slot),
                ChurnAction::Join { .. } | ChurnAction::Online { .. } => None,
            })
            .collect();
        RecoveryRun {
            log: Rc::new(RefCell::new(RecoveryLog::new(sc.recovery.threshold))),
            rng,
            steady: (0..sc.nodes).filter(|s| !crashed.contains(s)).collect(),
            owner_slots: vec![],
            devices: vec![],
            holders_lost: 0,
            lost_exactly: 0,
        }
    }

    /// What node `id` tells the run about recovery.
    pub(super) fn listener(&self, id: PeerId, clock: Clock) -> RecoveryListener {
        let log = self.log.clone();
        Box::new(move |ev| log.borrow_mut().on_event(id, ev, clock.now()))
    }
}

/// Owners back up: drawn among live honest nodes that stay up until the devices are lost.
pub(super) fn backup(world: &mut World) {
    let Some(r) = world.recovery.as_mut() else { return };
    let spec = &world.sc.recovery;
    let mut eligible: Vec<usize> = r
        .steady
        .iter()
        .copied()
        .filter(|s| world.nodes[*s].is_some() && !world.collector.is_adversary(&world.ids[*s]))
        .collect();
    eligible.shuffle(&mut r.rng);
    eligible.truncate(spec.owners);
    eligible.sort_unstable();
    for slot in eligible {
        let Some(node) = &world.nodes[slot] else { continue };
        let op = r.log.borrow_mut().add_owner(node.id);
        node.backup_suggested(op, spec.shares, spec.threshold, passphrase(op as usize));
        r.owner_slots.push(slot);
    }
}

/// Every owner's device crashes, and holders with them: for each owner in turn, its live holders
/// until it has lost `holders_lost` (counting owners' devices that held for it, and holders the
/// churn took that no re-share has replaced yet), never one whose
/// loss would take another owner past `holders_lost`: each recovery faces at most that many
/// holders gone, and most exactly that many. A fresh node starts for each owner (and a
/// wrong-passphrase node).
pub(super) fn lose_devices(world: &mut World, at_ms: u64) {
    let Some(mut r) = world.recovery.take() else { return };
    let owners: Vec<(PeerId, Vec<PeerId>)> =
        r.log.borrow().owners.iter().filter(|o| o.backed_up).map(|o| (o.id, o.holders.clone())).collect();
    let k = world.sc.recovery.holders_lost;
    let slot_of: BTreeMap<PeerId, usize> = world.live_slots().into_iter().map(|s| (world.ids[s], s)).collect();
    // Gone already: the owners' devices, and holders the churn took that no re-share replaced yet.
    let mut dead: BTreeSet<PeerId> = r.owner_slots.iter().map(|s| world.ids[*s]).collect();
    dead.extend(owners.iter().flat_map(|(_, hs)| hs.iter()).filter(|h| !slot_of.contains_key(*h)));
    let lost_of = |dead: &BTreeSet<PeerId>, hs: &[PeerId]| hs.iter().filter(|h| dead.contains(*h)).count();
    let mut crash: Vec<usize> = r.owner_slots.clone();
    for (_, holders) in &owners {
        let mut candidates: Vec<PeerId> = holders.iter().filter(|h| slot_of.contains_key(*h)).copied().collect();
        candidates.shuffle(&mut r.rng);
        for h in candidates {
            if lost_of(&dead, holders) >= k {
                break;
            }
            let fits = owners.iter().all(|(_, hs)| !hs.contains(&h) || lost_of(&dead, hs) < k);
            if !dead.contains(&h) && fits {
                dead.insert(h);
                crash.push(slot_of[&h]);
            }
        }
    }
    {
        let mut log = r.log.borrow_mut();
        for o in log.owners.iter_mut().filter(|o| o.backed_up) {
            o.holders_gone = lost_of(&dead, &o.holders);
        }
    }
    r.holders_lost = owners.iter().map(|(_, hs)| lost_of(&dead, hs)).sum();
    r.lost_exactly = owners.iter().filter(|(_, hs)| lost_of(&dead, hs) == k).count();
    for slot in crash {
        world.crash(slot, at_ms);
    }
    let n = r.log.borrow().owners.len();
    // Back first: the fresh nodes' listeners come from it.
    world.recovery = Some(r);
    for _ in 0..n {
        let device = fresh_node(world, at_ms);
        let guesser = world.sc.recovery.wrong_passphrase_tries.then(|| fresh_node(world, at_ms));
        if let Some(r) = world.recovery.as_mut() {
            r.devices.push((device, guesser));
        }
    }
}

/// A new node on a new slot (outside the churned population), told of peers as a joiner is.
fn fresh_node(world: &mut World, at_ms: u64) -> usize {
    let slot = world.nodes.len();
    world.nodes.push(None);
    world.ids.push(PeerId([0; 32]));
    let boot = world.rendezvous_answer(at_ms, slot);
    let ident = world.new_identity();
    world.start_node(slot, ident, boot);
    slot
}

/// The fresh devices ask to recover, by user id alone (the holders come from the published list).
pub(super) fn recover(world: &mut World, at_ms: u64) {
    let Some(r) = world.recovery.as_ref() else { return };
    let timeout_ms = world.sc.recovery.recover_timeout_s * 1000;
    let mut log = r.log.borrow_mut();
    // Holders gone as the recovery starts: those lost with the devices and any the churn took in
    // the `recover_after_s` since (each counts against the owner's "2 of 5 gone"), and lying
    // holders (their shares fail the owner's commitments: no better than none).
    let live: BTreeSet<PeerId> = world.live_slots().into_iter().map(|s| world.ids[s]).collect();
    let lies = |h: &PeerId| world.collector.adversary_kind(h) == Some(ContentAdversary::LyingHolder.name());
    for o in log.owners.iter_mut().filter(|o| o.backed_up) {
        o.holders_gone = o.holders.iter().filter(|h| !live.contains(*h) || lies(h)).count();
    }
    for (i, (device, guesser)) in r.devices.iter().enumerate() {
        let user = log.owners[i].user.clone();
        if let Some(node) = guesser.and_then(|g| world.nodes[g].as_ref()) {
            let wrong = Zeroizing::new(b"a wrong guess".to_vec());
            node.recover(GUESS_OPS + i as u64, OwnerRef::User(user.clone()), vec![], wrong, timeout_ms);
        }
        if let Some(node) = &world.nodes[*device] {
            log.owners[i].asked_at_ms = Some(at_ms);
            node.recover(i as u64, OwnerRef::User(user), vec![], passphrase(i), timeout_ms);
        }
    }
}

/// Holders an owner may lose and still recover: shares - threshold.
fn spec_gone_max(world: &World) -> u8 {
    world.sc.recovery.shares - world.sc.recovery.threshold
}

/// The recovery figures and notes.
pub(super) fn recovery_metrics(world: &World, m: &mut Metrics, notes: &mut Vec<String>) {
    let Some(r) = world.recovery.as_ref() else { return };
    let log = r.log.borrow();
    let backed: Vec<&crate::recovery::Owner> = log.owners.iter().filter(|o| o.backed_up).collect();
    let ok: Vec<f64> = {
        let mut v: Vec<f64> =
            backed.iter().filter_map(|o| o.result.as_ref().filter(|x| x.ok).map(|x| x.ms as f64 / 1000.0)).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    m.recovery_owners = Some(backed.len());
    m.recovery_success_share = (!backed.is_empty()).then(|| ok.len() as f64 / backed.len() as f64);
    // Owners left with at least `threshold` holders (at most shares - threshold gone): each of
    // them must recover.
    let most_gone = usize::from(spec_gone_max(world));
    let recoverable: Vec<&&crate::recovery::Owner> = backed.iter().filter(|o| o.holders_gone <= most_gone).collect();
    let recoverable_ok = recoverable.iter().filter(|o| o.result.as_ref().is_some_and(|x| x.ok)).count();
    m.recovery_owners_recoverable = Some(recoverable.len());
    m.recovery_success_share_recoverable =
        (!recoverable.is_empty()).then(|| recoverable_ok as f64 / recoverable.len() as f64);
    m.recovery_time_p50_s = (!ok.is_empty()).then(|| percentile(&ok, 50.0));
    m.recovery_time_p99_s = (!ok.is_empty()).then(|| percentile(&ok, 99.0));
    m.reshares = Some(log.reshares);
    m.wrong_shares_detected = Some(world.collector.bad_shares());
    m.recoveries_below_threshold = Some(log.below_threshold + log.wrong_keys);
    m.shares_released_to_wrong_proof = Some(log.wrong_released);
    m.backups_failed = Some(log.backups_failed.len());
    m.recovery_holders_lost = Some(r.holders_lost);
    let failures: Vec<String> = backed
        .iter()
        .filter_map(|o| match &o.result {
            Some(x) if !x.ok => Some(format!(
                "{} ({} holders gone): {} [{}] ({} shares in)",
                o.user,
                o.holders_gone,
                x.why,
                asked_states(world, o, &x.asked).join(", "),
                x.released
            )),
            None => Some(format!("{}: no answer", o.user)),
            _ => None,
        })
        .collect();
    let spec = &world.sc.recovery;
    notes.push(format!(
        "recovery: {} owners backed up at t={} s ({} of {} shares to recover, holders suggested by standing and link age), {} backups failed; {} re-shares; devices lost at t={} s, and holders with them: {} holders gone over the owners, {} owners with exactly {} gone (kills stop at that many per owner; owners' own devices and recent churn can add more); {} of {} recovered from the published holder list; {} wrong-passphrase tries got {} shares and {} keys",
        backed.len(),
        spec.backup_at_s,
        spec.threshold,
        spec.shares,
        log.backups_failed.len(),
        log.reshares,
        spec.lose_at_s,
        r.holders_lost,
        r.lost_exactly,
        spec.holders_lost,
        ok.len(),
        backed.len(),
        log.wrong_tries,
        log.wrong_released,
        log.wrong_recovered,
    ));
    let by_gone: Vec<String> = (0..=usize::from(spec.shares))
        .filter_map(|g| {
            let of: Vec<_> = backed.iter().filter(|o| o.holders_gone == g).collect();
            let ok = of.iter().filter(|o| o.result.as_ref().is_some_and(|x| x.ok)).count();
            (!of.is_empty()).then(|| format!("{g} gone: {ok}/{}", of.len()))
        })
        .collect();
    notes.push(format!(
        "recovery by holders gone when it was asked for (killed with the devices, owners' devices that held, churned and not yet replaced, churned since the loss, lying): {}",
        by_gone.join("; ")
    ));
    if !failures.is_empty() {
        notes.push(format!("recovery failures: {}", failures.join("; ")));
    }
    if let Some(e) = log.backups_failed.first() {
        notes.push(format!("first failed backup: {e}"));
    }
}

/// How far each holder a failed recovery asked got, and whether it is still up at the end of the
/// run and in the owner's last generation (for the failure note).
fn asked_states(world: &World, owner: &crate::recovery::Owner, asked: &[(PeerId, Asked)]) -> Vec<String> {
    let live: BTreeSet<PeerId> = world.live_slots().into_iter().map(|s| world.ids[s]).collect();
    asked
        .iter()
        .map(|(h, a)| {
            let state = match a {
                Asked::Waiting => "unreached".to_string(),
                Asked::Requested => "asked".to_string(),
                Asked::Proved => "proved".to_string(),
                Asked::Released => "released".to_string(),
                Asked::Failed(w) => w.clone(),
            };
            let up = if live.contains(h) { "up" } else { "down" };
            let current = if owner.holders.contains(h) { "" } else { ", not current" };
            format!("{}:{state} ({up}{current})", &h.short()[..6])
        })
        .collect()
}
