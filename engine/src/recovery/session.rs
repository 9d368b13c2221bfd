//! One recovery on a new device, as the recovery core runs it: which holders were asked, what each
//! answered, and the owner's key once a holder's challenge names it (a recovery by user id learns
//! the key from the first challenge whose key hashes to that user id). Built on the pure
//! [`Recovery`] of [`super::owner`]; time is Unix ms passed in.

use super::holder::UNKNOWN_OWNER;
use super::messages::{open, sign, Challenge, ChallengeByUser, OwnerRef, Refusal};
use super::owner::{Recovery, RecoveryError};
use super::split::Recovered;
use crate::identity::{Envelope, Identity};
use crate::types::PeerId;
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// Where a recovery stands with one holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Asked {
    /// Not reached yet (no link).
    Waiting,
    /// Asked for a challenge.
    Requested,
    /// Sent the proof.
    Proved,
    /// Its share is in.
    Released,
    /// It said no, or answered something unusable: why.
    Failed(String),
}

impl Asked {
    /// Nothing more will come from this holder.
    pub fn is_final(&self) -> bool {
        matches!(self, Asked::Released | Asked::Failed(_))
    }
}

/// What happened to an answer the session was handed.
#[derive(Debug)]
pub enum Answer {
    /// Send this to the holder.
    Reply(Envelope),
    /// The holder's share came in.
    Share,
    /// The holder lied: its share fails the owner's commitments.
    BadShare(RecoveryError),
    /// Nothing to do (refused, or not for this session).
    Nothing,
}

pub struct Session {
    owner: OwnerRef,
    me: PeerId,
    identity: Identity,
    passphrase: Zeroizing<Vec<u8>>,
    recovery: Option<Recovery>,
    holders: BTreeMap<PeerId, Asked>,
}

impl Session {
    pub fn new(owner: OwnerRef, identity: Identity, passphrase: Zeroizing<Vec<u8>>, holders: &[PeerId]) -> Self {
        let recovery = match &owner {
            OwnerRef::Peer(p) => Some(Recovery::new(*p, identity.duplicate(), &passphrase)),
            OwnerRef::User(_) => None,
        };
        Session {
            owner,
            me: identity.peer_id(),
            identity,
            passphrase,
            recovery,
            holders: holders.iter().map(|h| (*h, Asked::Waiting)).collect(),
        }
    }

    /// More holders to ask (from a holder list found meanwhile), up to `max` in all.
    pub fn add_holders(&mut self, holders: &[PeerId], max: usize) {
        for h in holders {
            if self.holders.len() >= max {
                break;
            }
            self.holders.entry(*h).or_insert(Asked::Waiting);
        }
    }

    pub fn holders(&self) -> &BTreeMap<PeerId, Asked> {
        &self.holders
    }

    pub fn asks(&self, holder: &PeerId) -> bool {
        self.holders.contains_key(holder)
    }

    /// The owner's key, once known.
    pub fn owner(&self) -> Option<PeerId> {
        self.recovery.as_ref().map(|r| r.owner)
    }

    /// The request that starts (or restarts, after a lost link) the exchange with `holder`, if
    /// it still has something to give.
    pub fn request(&mut self, holder: &PeerId, now_ms: u64) -> Option<Envelope> {
        let state = self.holders.get_mut(holder)?;
        if state.is_final() {
            return None;
        }
        *state = Asked::Requested;
        Some(match (&self.recovery, &self.owner) {
            (Some(r), _) => r.challenge_request(holder, now_ms),
            (None, OwnerRef::User(u)) => {
                sign(&self.identity, &ChallengeByUser { user_id: u.clone(), holder: *holder }, now_ms)
            }
            (None, OwnerRef::Peer(p)) => {
                let r = Recovery::new(*p, self.identity.duplicate(), &self.passphrase);
                let env = r.challenge_request(holder, now_ms);
                self.recovery = Some(r);
                env
            }
        })
    }

    /// The link to `holder` went down: an exchange under way with it starts again at the next
    /// link (a request sent twice on one link would spend two of the holder's attempts).
    pub fn lost(&mut self, holder: &PeerId) {
        if let Some(s @ (Asked::Requested | Asked::Proved)) = self.holders.get_mut(holder) {
            *s = Asked::Waiting;
        }
    }

    fn fail(&mut self, holder: &PeerId, why: String) {
        if let Some(s) = self.holders.get_mut(holder) {
            if !s.is_final() {
                *s = Asked::Failed(why);
            }
        }
    }

    pub fn on_challenge(&mut self, env: &Envelope, now_ms: u64) -> Answer {
        let holder = env.public_key;
        if self.holders.get(&holder).is_none_or(Asked::is_final) {
            return Answer::Nothing;
        }
        let c: Challenge = match open(env) {
            Ok(c) => c,
            Err(e) => {
                self.fail(&holder, format!("challenge: {e}"));
                return Answer::Nothing;
            }
        };
        if c.requester != self.me || !self.owner.matches(&c.owner) {
            self.fail(&holder, "challenge for another owner or requester".into());
            return Answer::Nothing;
        }
        let recovery = match &mut self.recovery {
            Some(r) if r.owner == c.owner => r,
            Some(_) => {
                self.fail(&holder, "challenge names another key than the other holders".into());
                return Answer::Nothing;
            }
            None => self.recovery.insert(Recovery::new(c.owner, self.identity.duplicate(), &self.passphrase)),
        };
        match recovery.on_challenge(env, now_ms) {
            Ok(reply) => {
                self.holders.insert(holder, Asked::Proved);
                Answer::Reply(reply)
            }
            Err(e) => {
                self.fail(&holder, e.to_string());
                Answer::Nothing
            }
        }
    }

    pub fn on_release(&mut self, env: &Envelope) -> Answer {
        let holder = env.public_key;
        let asked = self.asks(&holder);
        let Some(recovery) = self.recovery.as_mut().filter(|_| asked) else {
            return Answer::Nothing;
        };
        match recovery.on_release(env) {
            Ok(_) => {
                self.holders.insert(holder, Asked::Released);
                Answer::Share
            }
            Err(e) => {
                self.fail(&holder, e.to_string());
                match e {
                    RecoveryError::BadShare { .. } | RecoveryError::Mislabelled { .. } => Answer::BadShare(e),
                    _ => Answer::Nothing,
                }
            }
        }
    }

    pub fn on_refusal(&mut self, env: &Envelope) -> Answer {
        let holder = env.public_key;
        if !self.asks(&holder) {
            return Answer::Nothing;
        }
        let ours = |r: &Refusal| r.to == self.me && (self.owner.matches(&r.owner) || r.owner == UNKNOWN_OWNER);
        match open::<Refusal>(env) {
            Ok(r) if ours(&r) => self.fail(&holder, format!("refused: {}", r.reason)),
            Ok(_) => {}
            Err(e) => self.fail(&holder, format!("refusal: {e}")),
        }
        Answer::Nothing
    }

    /// The owner's identity, once the shares collected rebuild it.
    pub fn try_finish(&self) -> Option<Recovered> {
        self.recovery.as_ref().and_then(|r| r.finish().ok())
    }

    /// Why the shares collected do not rebuild the key (for the final report).
    pub fn why_not(&self) -> String {
        match &self.recovery {
            None => "no holder named the owner's key (none holds a share for it?)".into(),
            Some(r) => match r.finish() {
                Ok(_) => "recovered".into(),
                Err(e) => e.to_string(),
            },
        }
    }

    /// Every holder has answered for good.
    pub fn all_final(&self) -> bool {
        self.holders.values().all(Asked::is_final)
    }
}
