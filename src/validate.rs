//! Checks of client input shared by the client API and the peer protocol.

/// Key names: `[A-Za-z0-9._-]{1,64}`, safe in URLs, file names and logs.
pub fn key_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid key name {name:?}: use 1 to 64 characters of A-Z a-z 0-9 . _ -"
        ))
    }
}

/// Client names follow the same rule as key names.
pub fn client_name(name: &str) -> Result<(), String> {
    key_name(name).map_err(|_| {
        format!("invalid client name {name:?}: use 1 to 64 characters of A-Z a-z 0-9 . _ -")
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_names() {
        for good in ["a", "video-keys_2026.v1", &"x".repeat(64)] {
            assert!(super::key_name(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "a/b", "ä", &"x".repeat(65), "../x"] {
            assert!(super::key_name(bad).is_err(), "{bad}");
        }
    }
}
