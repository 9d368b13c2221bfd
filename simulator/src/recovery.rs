//! The recovery workload (`[recovery]` of a scenario): owners back their keys up to holders their
//! nodes suggest, the swarm churns, then the owners lose their devices (and, optionally, some of
//! their current holders go with them) and recover on fresh nodes that know only the user id and
//! the passphrase. What the nodes report back is logged here and summarised for the report.
//! Measurement and ground truth only: nothing here feeds back into the nodes.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use swarm_engine::recovery::session::Asked;
use swarm_engine::recovery::RecoveryEvent;
use swarm_engine::PeerId;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecoverySpec {
    /// Owners that back up (0: no recovery workload). Drawn among honest nodes the churn schedule
    /// leaves up until `lose_at_s` (an owner must be there to re-share).
    pub owners: usize,
    /// When the owners back up (their nodes suggest the holders among their links).
    pub backup_at_s: u64,
    /// When every owner loses its device (a crash: no goodbye).
    pub lose_at_s: u64,
    /// A fresh node per owner starts at `lose_at_s`; it asks to recover this much later (it
    /// needs links first).
    pub recover_after_s: u64,
    pub recover_timeout_s: u64,
    pub shares: u8,
    pub threshold: u8,
    /// Of each owner's current holders, this many crash with the devices (at most this many per
    /// owner, counting owners' devices that held for it: see `run::recovery::lose_devices`).
    pub holders_lost: usize,
    /// Per owner, one more fresh node tries to recover with a wrong passphrase (before the
    /// owner's own try): it must get no share.
    pub wrong_passphrase_tries: bool,
}

impl Default for RecoverySpec {
    fn default() -> Self {
        RecoverySpec {
            owners: 0,
            backup_at_s: 120,
            lose_at_s: 3000,
            recover_after_s: 30,
            recover_timeout_s: 120,
            shares: 5,
            threshold: 3,
            holders_lost: 0,
            wrong_passphrase_tries: true,
        }
    }
}

impl RecoverySpec {
    pub fn enabled(&self) -> bool {
        self.owners > 0
    }

    /// Checked against the run's `duration_s`; (field, reason) on error.
    pub fn validate(&self, duration_s: u64) -> Result<(), (String, String)> {
        if !self.enabled() {
            return Ok(());
        }
        let err = |f: &str, r: String| Err((format!("recovery.{f}"), r));
        if self.backup_at_s >= self.lose_at_s {
            return err("backup_at_s", format!("must be before lose_at_s ({})", self.lose_at_s));
        }
        let end = self.lose_at_s + self.recover_after_s + self.recover_timeout_s;
        if end > duration_s {
            return err(
                "recover_timeout_s",
                format!(
                    "lose_at_s + recover_after_s + recover_timeout_s ({end}) must not exceed duration_s ({duration_s})"
                ),
            );
        }
        if self.recover_timeout_s == 0 {
            return err("recover_timeout_s", "must be at least 1".into());
        }
        let (n, t) = (self.shares, self.threshold);
        if t < 2 || t > n || n > swarm_engine::recovery::split::MAX_SHARES {
            return err("threshold", format!("need 2 <= threshold <= shares <= 16, got {t} of {n}"));
        }
        if self.holders_lost > usize::from(n) {
            return err("holders_lost", format!("must not exceed shares ({n})"));
        }
        Ok(())
    }
}

/// Operation ids: an owner's own recovery is its index, a wrong-passphrase try this plus it.
pub const GUESS_OPS: u64 = 1 << 40;

/// One owner, as the run tracks it.
#[derive(Clone, Debug)]
pub struct Owner {
    pub id: PeerId,
    pub user: String,
    /// The holders of its current generation (from its backup and re-share reports).
    pub holders: Vec<PeerId>,
    pub backed_up: bool,
    /// Of its holders, gone at device loss (killed with the devices, owners' devices that held
    /// for it, churned and not yet replaced).
    pub holders_gone: usize,
    /// Sim ms when its recovery was asked for.
    pub asked_at_ms: Option<u64>,
    pub result: Option<Outcome>,
}

#[derive(Clone, Debug)]
pub struct Outcome {
    pub ok: bool,
    pub ms: u64,
    /// Valid shares that came in (released, checked against the owner's commitments).
    pub released: usize,
    /// The error, if it failed.
    pub why: String,
    /// The holders the recovery asked, and how far each got.
    pub asked: Vec<(PeerId, Asked)>,
}

/// What the nodes told the run.
#[derive(Default)]
pub struct RecoveryLog {
    pub owners: Vec<Owner>,
    pub backups_failed: Vec<String>,
    pub reshares: u64,
    /// Wrong-passphrase tries: shares released to them, and tries that rebuilt a key.
    pub wrong_released: usize,
    pub wrong_recovered: usize,
    pub wrong_tries: usize,
    /// Recoveries that returned a key other than the owner's (must stay 0; the key is checked).
    pub wrong_keys: usize,
    /// Successful recoveries with fewer valid shares in than the threshold (must stay 0).
    pub below_threshold: usize,
    threshold: usize,
    by_id: BTreeMap<PeerId, usize>,
}

impl RecoveryLog {
    pub fn new(threshold: u8) -> Self {
        RecoveryLog { threshold: usize::from(threshold), ..RecoveryLog::default() }
    }

    pub fn add_owner(&mut self, id: PeerId) -> u64 {
        let i = self.owners.len();
        self.by_id.insert(id, i);
        let user = swarm_engine::identity::user_id(&id);
        self.owners.push(Owner {
            id,
            user,
            holders: vec![],
            backed_up: false,
            holders_gone: 0,
            asked_at_ms: None,
            result: None,
        });
        i as u64
    }

    /// A recovery event of node `node` at sim time `now_ms`.
    pub fn on_event(&mut self, node: PeerId, ev: RecoveryEvent, now_ms: u64) {
        match ev {
            RecoveryEvent::BackupStarted { op, result } => match (self.owners.get_mut(op as usize), result) {
                (Some(o), Ok(st)) if o.id == node => {
                    o.holders = st.holders.iter().map(|h| h.holder).collect();
                    o.backed_up = true;
                }
                (_, Err(e)) => self.backups_failed.push(e.to_string()),
                _ => {}
            },
            RecoveryEvent::Reshared { replaced, by, .. } => {
                if let Some(o) = self.by_id.get(&node).map(|i| &mut self.owners[*i]) {
                    self.reshares += 1;
                    for (gone, new) in replaced.iter().zip(&by) {
                        if let Some(h) = o.holders.iter_mut().find(|h| *h == gone) {
                            *h = *new;
                        }
                    }
                }
            }
            RecoveryEvent::Recovered { op, holders, result } => {
                let released = holders.iter().filter(|(_, a)| *a == Asked::Released).count();
                if op >= GUESS_OPS {
                    self.wrong_tries += 1;
                    self.wrong_released += released;
                    self.wrong_recovered += usize::from(result.is_ok());
                    return;
                }
                let Some(o) = self.owners.get_mut(op as usize) else { return };
                let ok = match &result {
                    Ok(id) if id.peer_id() == o.id => true,
                    Ok(_) => {
                        self.wrong_keys += 1;
                        false
                    }
                    Err(_) => false,
                };
                if ok && released < self.threshold {
                    self.below_threshold += 1;
                }
                let ms = now_ms.saturating_sub(o.asked_at_ms.unwrap_or(now_ms));
                let why = result.err().map(|e| e.to_string()).unwrap_or_default();
                o.result = Some(Outcome { ok, ms, released, why, asked: holders });
            }
            RecoveryEvent::Status { .. } => {}
        }
    }
}
