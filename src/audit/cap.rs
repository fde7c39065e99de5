//! Bounds on what the trail stores of strings an outsider controls (client names, nonces,
//! paths, reasons that quote them): each is cut to [`MAX_CHARS`] characters, the cut marked,
//! so no request can make one entry large (DESIGN.md §8: the trail shares its disk with the
//! shares).

/// Longest string stored in an entry, in characters, the truncation mark included. A hex
/// Ed25519 signature (128 characters) fits whole.
pub const MAX_CHARS: usize = 128;

/// Appended to a string that was cut.
pub const MARK: &str = "…[truncated]";

/// `text` whole if it fits, or its start and [`MARK`], [`MAX_CHARS`] characters in all.
pub fn text(text: String) -> String {
    if text.chars().count() <= MAX_CHARS {
        return text;
    }
    let keep = MAX_CHARS - MARK.chars().count();
    let mut cut: String = text.chars().take(keep).collect();
    cut.push_str(MARK);
    cut
}

/// Caps every string in `value`, object keys included.
pub fn json(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(text(s)),
        Value::Array(items) => Value::Array(items.into_iter().map(json).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (text(k), json(v))).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_strings_are_cut_and_marked_short_ones_kept() {
        assert_eq!(text("alice".into()), "alice");
        let exact = "x".repeat(MAX_CHARS);
        assert_eq!(text(exact.clone()), exact);
        let cut = text("é".repeat(1024));
        assert_eq!(cut.chars().count(), MAX_CHARS);
        assert!(cut.ends_with(MARK));
        let capped = json(serde_json::json!({"a": ["y".repeat(500)], "n": 3}));
        assert_eq!(capped["a"][0].as_str().unwrap().chars().count(), MAX_CHARS);
        assert_eq!(capped["n"], 3);
    }
}
