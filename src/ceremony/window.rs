//! A ceremony's time window (DESIGN.md §11). The coordinator mints the session id with its
//! clock's time in it; a member joins only a session minted within `max_clock_skew_ms` of its
//! own clock and confirms it only until `mint + max_clock_skew_ms + ceremony_ms`. So a refusal
//! needs keeping only until that instant (plus a margin for the clock): after it the ceremony
//! cannot be confirmed here whatever anyone sends, and before it no request can push the
//! refusal out. A member that could forget a refusal early could be led to confirm a ceremony
//! it had refused, and the certificate and the refusal would then both exist.

use crate::config::Timeouts;

/// Hex digits of the mint time at the start of a session id.
const TIME_HEX: usize = 16;

/// How long a refusal outlives its ceremony's window, for a clock stepped back meanwhile.
pub const CLOCK_MARGIN_MS: u64 = 60_000;

/// A fresh session id: the mint time (ms since the Unix epoch, 16 hex digits) and 16 random
/// bytes.
pub fn mint(now_ms: u64) -> String {
    format!("{now_ms:0w$x}{}", crate::random_id(), w = TIME_HEX)
}

/// When `session` was minted; `None` for an id that does not carry its time.
pub fn minted_at(session: &str) -> Option<u64> {
    let time = session.get(..TIME_HEX)?;
    if session.len() != TIME_HEX + 32 || !session.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(time, 16).ok()
}

/// Whether this node may join ceremony `session` at `now_ms`.
pub fn check_start(session: &str, now_ms: u64, timeouts: &Timeouts) -> Result<(), String> {
    let minted = minted_at(session)
        .ok_or_else(|| format!("ceremony session {session:?} does not carry its mint time"))?;
    let skew = timeouts.max_clock_skew_ms;
    if minted.abs_diff(now_ms) > skew {
        return Err(format!(
            "ceremony session {session} was minted at {minted} ms, {} ms from this node's clock (limit {skew} ms)",
            minted.abs_diff(now_ms)
        ));
    }
    Ok(())
}

/// The last instant this node may confirm (or, as coordinator, commit) `session`; `None` for
/// an id it could never have joined.
pub fn confirm_by(session: &str, timeouts: &Timeouts) -> Option<u64> {
    minted_at(session)?
        .checked_add(timeouts.max_clock_skew_ms)?
        .checked_add(timeouts.ceremony_ms)
}

/// How long a refusal of `session` must be kept, asked at `now_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKeeping {
    /// Until this instant: the ceremony could still be confirmed here before it.
    Until(u64),
    /// Not at all: the ceremony can no longer be confirmed here.
    Closed,
    /// The session claims to be minted ahead of this node's clock by more than the skew, so
    /// no member can have joined it yet; refusing it would mean keeping a promise for as long
    /// as the asker likes.
    FromTheFuture,
}

pub fn refusal_keeping(session: &str, now_ms: u64, timeouts: &Timeouts) -> RefusalKeeping {
    let Some(minted) = minted_at(session) else {
        return RefusalKeeping::Closed;
    };
    if minted > now_ms.saturating_add(timeouts.max_clock_skew_ms) {
        return RefusalKeeping::FromTheFuture;
    }
    match confirm_by(session, timeouts).and_then(|t| t.checked_add(CLOCK_MARGIN_MS)) {
        Some(until) if until >= now_ms => RefusalKeeping::Until(until),
        _ => RefusalKeeping::Closed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeouts() -> Timeouts {
        Timeouts {
            max_clock_skew_ms: 30_000,
            ceremony_ms: 60_000,
            ..Timeouts::default()
        }
    }

    #[test]
    fn a_session_carries_its_mint_time_and_nothing_else_parses() {
        let s = mint(1_700_000_000_123);
        assert_eq!(s.len(), 48);
        assert_eq!(minted_at(&s), Some(1_700_000_000_123));
        assert_ne!(mint(5), mint(5));
        assert_eq!(minted_at(&crate::random_id()), None);
        assert_eq!(minted_at(&format!("{}zz", &s[..46])), None);
        assert_eq!(minted_at(&format!("{s}00")), None);
        assert_eq!(minted_at("é"), None);
    }

    #[test]
    fn a_member_joins_only_a_session_minted_within_the_skew() {
        let t = timeouts();
        let now = 10_000_000;
        assert!(check_start(&mint(now - 30_000), now, &t).is_ok());
        assert!(check_start(&mint(now + 30_000), now, &t).is_ok());
        assert!(check_start(&mint(now - 30_001), now, &t).is_err());
        assert!(check_start(&mint(now + 30_001), now, &t).is_err());
        assert!(check_start(&crate::random_id(), now, &t).is_err());
    }

    #[test]
    fn a_refusal_is_kept_exactly_while_its_ceremony_could_be_confirmed() {
        let t = timeouts();
        let minted = 10_000_000;
        let s = mint(minted);
        let end = minted + 30_000 + 60_000;
        assert_eq!(confirm_by(&s, &t), Some(end));
        // Asked at any moment a member could have joined: kept past the last confirmation.
        for now in [minted - 30_000, minted, end] {
            assert_eq!(
                refusal_keeping(&s, now, &t),
                RefusalKeeping::Until(end + CLOCK_MARGIN_MS)
            );
        }
        assert_eq!(
            refusal_keeping(&s, end + CLOCK_MARGIN_MS + 1, &t),
            RefusalKeeping::Closed
        );
        assert_eq!(
            refusal_keeping(&s, minted - 30_001, &t),
            RefusalKeeping::FromTheFuture
        );
        assert_eq!(
            refusal_keeping(&crate::random_id(), minted, &t),
            RefusalKeeping::Closed
        );
    }
}
