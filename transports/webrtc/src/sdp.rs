//! A remote offer or answer, bounded before it reaches ICE. Non-trickle signaling puts every ICE
//! candidate in the SDP (`a=candidate` lines), and ICE sends connectivity checks to each: an
//! offer naming 200 attacker-chosen ports would make this node send checks to all of them (a
//! reflection amplifier). So the description is parsed with the webrtc stack's own SDP and
//! candidate parsers, and only the candidates for the first `max_remote_candidates` distinct
//! destinations (transport, address, port) are kept, at most two lines each.

use rtc::ice::candidate::unmarshal_candidate;
use rtc::sdp::description::common::Attribute;
use rtc::sdp::SessionDescription;
use std::collections::btree_map::{BTreeMap, Entry};

/// Candidate lines kept per destination: webrtc lists each address twice, as component 1 and 2.
const LINES_PER_DESTINATION: usize = 2;

/// A description that passed the bounds, ready for `set_remote_description`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounded {
    pub sdp: String,
    /// Candidate lines kept, and those dropped (over the bound, or unparseable).
    pub kept: usize,
    pub dropped: usize,
}

/// Why a remote description was refused before any peer connection was made for it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SdpError {
    #[error("SDP of {bytes} bytes is over max_signal_bytes {max}")]
    TooLarge { bytes: usize, max: usize },
    #[error("SDP does not parse: {0}")]
    Parse(String),
}

/// Parses `sdp` (at most `max_bytes`) and keeps the candidate lines of at most `max_candidates`
/// distinct destinations, in the order given, two lines each at most; unparseable candidate lines are dropped (the
/// webrtc stack would refuse the whole description for one). The text is passed on unchanged
/// when nothing is dropped.
pub fn bound_remote(sdp: &str, max_bytes: usize, max_candidates: usize) -> Result<Bounded, SdpError> {
    if sdp.len() > max_bytes {
        return Err(SdpError::TooLarge { bytes: sdp.len(), max: max_bytes });
    }
    let mut desc = SessionDescription::unmarshal(&mut std::io::Cursor::new(sdp.as_bytes()))
        .map_err(|e| SdpError::Parse(e.to_string()))?;
    let mut destinations: BTreeMap<_, usize> = BTreeMap::new();
    let (mut kept, mut dropped) = (0, 0);
    let mut keep = |a: &Attribute| {
        if !a.is_ice_candidate() {
            return true;
        }
        let destination = a.value.as_deref().and_then(|v| unmarshal_candidate(v).ok()).map(|c| {
            // Component 1 and 2 of one address are one destination (webrtc lists both).
            (c.network_type().to_string(), c.address().to_owned(), c.port())
        });
        let ok = destination.is_some_and(|d| {
            let room = destinations.len() < max_candidates;
            match destinations.entry(d) {
                Entry::Occupied(mut lines) if *lines.get() < LINES_PER_DESTINATION => {
                    *lines.get_mut() += 1;
                    true
                }
                Entry::Occupied(_) => false,
                Entry::Vacant(v) if room => {
                    v.insert(1);
                    true
                }
                Entry::Vacant(_) => false,
            }
        });
        if ok {
            kept += 1;
        } else {
            dropped += 1;
        }
        ok
    };
    desc.attributes.retain(&mut keep);
    for m in &mut desc.media_descriptions {
        m.attributes.retain(&mut keep);
    }
    let sdp = if dropped == 0 { sdp.to_owned() } else { desc.marshal() };
    Ok(Bounded { sdp, kept, dropped })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The shape of a webrtc-rs data-channel offer, with `n` candidates at ports 40000.. .
    pub(crate) fn offer_with(n: u16) -> String {
        let mut s = String::from(
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 \
             AB:CD\r\na=group:BUNDLE 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 \
             0.0.0.0\r\na=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=sctp-port:5000\r\na=ice-ufrag:abcd\r\n\
             a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n",
        );
        for i in 0..n {
            let port = 40_000 + i;
            s.push_str(&format!("a=candidate:{i} 1 udp 2130706431 127.0.0.1 {port} typ host\r\n"));
        }
        s.push_str("a=end-of-candidates\r\n");
        s
    }

    fn candidates(sdp: &str) -> usize {
        sdp.lines().filter(|l| l.starts_with("a=candidate:")).count()
    }

    #[test]
    fn two_hundred_candidates_are_cut_to_the_bound() {
        let b = bound_remote(&offer_with(200), 64 * 1024, 8).expect("parses");
        assert_eq!((b.kept, b.dropped), (8, 192));
        assert_eq!(candidates(&b.sdp), 8);
        assert!(b.sdp.contains("a=ice-pwd:abcdefghijklmnopqrstuvwx"), "the rest is kept: {}", b.sdp);
        let again = bound_remote(&b.sdp, 64 * 1024, 8).expect("what we pass on parses again");
        assert_eq!((again.kept, again.dropped), (8, 0));
    }

    #[test]
    fn a_description_within_the_bound_is_passed_on_unchanged() {
        let sdp = offer_with(3);
        assert_eq!(bound_remote(&sdp, 64 * 1024, 8), Ok(Bounded { sdp: sdp.clone(), kept: 3, dropped: 0 }));
    }

    #[test]
    fn both_components_of_one_address_are_one_destination() {
        let mut sdp = offer_with(0);
        for port in [40_000, 40_001] {
            for component in [1, 2] {
                sdp.push_str(&format!("a=candidate:1 {component} udp 2130706431 127.0.0.1 {port} typ host\r\n"));
            }
        }
        // A third line for the same address (another foundation) is one too many.
        sdp.push_str("a=candidate:2 1 udp 2130706431 127.0.0.1 40000 typ srflx raddr 0.0.0.0 rport 0\r\n");
        let b = bound_remote(&sdp, 64 * 1024, 1).expect("parses");
        assert_eq!((b.kept, b.dropped), (2, 3), "{}", b.sdp);
        assert!(b.sdp.contains(" 40000 ") && !b.sdp.contains(" 40001 "));
    }

    #[test]
    fn oversize_and_unparseable_descriptions_are_refused() {
        assert_eq!(
            bound_remote(&offer_with(1), 10, 8),
            Err(SdpError::TooLarge { bytes: offer_with(1).len(), max: 10 })
        );
        assert!(matches!(bound_remote("not sdp", 1024, 8), Err(SdpError::Parse(_))));
        let junk = offer_with(1).replace("typ host", "typ");
        let b = bound_remote(&junk, 64 * 1024, 8).expect("the description parses");
        assert_eq!((b.kept, b.dropped), (0, 1), "an unparseable candidate line is dropped");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn never_panics_and_never_exceeds_the_bound(
            n in 0u16..64,
            max in 0usize..16,
            pos in any::<usize>(),
            byte in any::<u8>(),
        ) {
            let mut bytes = offer_with(n).into_bytes();
            let i = pos % bytes.len();
            bytes[i] = byte;
            let text = String::from_utf8_lossy(&bytes);
            if let Ok(b) = bound_remote(&text, 64 * 1024, max) {
                let lines = candidates(&b.sdp);
                prop_assert_eq!(lines, b.kept);
                prop_assert!(b.kept <= 2 * max, "{} lines for {} destinations", b.kept, max);
            }
        }

        #[test]
        fn garbage_never_panics(text in ".{0,512}") {
            let _ = bound_remote(&text, 64 * 1024, 8);
        }
    }
}
