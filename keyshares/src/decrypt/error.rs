//! Errors of the threshold-decryption module.
//!
//! Messages name what was wrong with which input so that an operator (or the node, when it
//! names a cheating peer) can act on them. They never carry secret values: at most lengths,
//! identifiers, encoding prefixes and the name of an AEAD the caller asked for.

/// Why a threshold-decryption step failed.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecryptError {
    /// An input of fixed size had the wrong size.
    #[error("{what} must be {expected} bytes, got {got}")]
    WrongLength {
        what: &'static str,
        expected: usize,
        got: usize,
    },

    /// A ciphertext is shorter than its fixed-size parts.
    #[error("ciphertext truncated: need at least {need} bytes, got {got}")]
    CiphertextTruncated { need: usize, got: usize },

    /// The X25519 `enc` has no point on Curve25519 (it is on the quadratic twist, or u = −1).
    #[error("enc is not on Curve25519 (a point on the twist, or u = -1)")]
    EncNotOnCurve,

    /// The X25519 `enc` is not the canonical encoding of its u-coordinate.
    #[error("enc is not a canonical X25519 encoding (u >= p or top bit set)")]
    EncNotCanonical,

    /// The X25519 `enc` is one of the points of order 1, 2, 4 or 8.
    #[error("enc is a small-order point")]
    EncSmallOrder,

    /// The X25519 `enc` has a small-order component (it is outside the prime-order subgroup).
    #[error("enc is not in the prime-order subgroup (it has a small-order component)")]
    EncNotTorsionFree,

    /// An Edwards25519 point (verifying share, partial point or group key) did not decode.
    #[error("{what} is not a canonical Edwards25519 point encoding")]
    EdwardsEncoding { what: &'static str },

    /// An Edwards25519 point is outside the prime-order subgroup, or is the identity where a
    /// key is expected.
    #[error("{what} is not a point of the prime-order subgroup")]
    EdwardsNotPrimeOrder { what: &'static str },

    /// A secp256k1 point had a SEC1 prefix that is not accepted here.
    #[error("{what} has SEC1 prefix 0x{prefix:02x}; expected {expected}")]
    Sec1Prefix {
        what: &'static str,
        prefix: u8,
        expected: &'static str,
    },

    /// A secp256k1 point is the identity (point at infinity).
    #[error("{what} is the point at infinity")]
    Secp256k1Identity { what: &'static str },

    /// A secp256k1 encoding does not give a point on the curve.
    #[error("{what} is not a point on secp256k1")]
    Secp256k1OffCurve { what: &'static str },

    /// The share is for a different curve than the scheme that was asked for.
    #[error("the key share is for {share_curve}, but the scheme needs {scheme_curve}")]
    SchemeMismatch {
        share_curve: &'static str,
        scheme_curve: &'static str,
    },

    /// The share could not be read from its key package.
    #[error("the key share is malformed")]
    MalformedShare,

    /// The DLEQ proof is not two canonical scalars.
    #[error("malformed DLEQ proof: must be 64 bytes holding two canonical scalars")]
    MalformedProof,

    /// The DLEQ proof does not verify.
    #[error("invalid DLEQ proof")]
    InvalidProof,

    /// `combine_and_open` was given no partial decryptions.
    #[error("no partial decryptions given")]
    NoPartials,

    /// A participant identifier of 0 was given (FROST identifiers are 1-based).
    #[error("participant identifier 0 is invalid (identifiers are 1-based)")]
    ZeroIdentifier,

    /// The same participant identifier was given twice.
    #[error("participant identifier {0} is given more than once")]
    DuplicateIdentifier(u16),

    /// The combined Diffie-Hellman output is all zero (RFC 9180 §7.1.4, RFC 7748 §6.1), or the
    /// combined ECIES point is the identity.
    #[error("the combined shared secret is degenerate (all-zero / identity)")]
    DegenerateSharedSecret,

    /// The AEAD rejected the ciphertext.
    #[error("AEAD open failed (wrong key, info or aad, or corrupted ciphertext)")]
    AeadOpen,

    /// Encryption failed.
    #[error("encryption failed: {0}")]
    Encrypt(&'static str),

    /// A condition that the code rules out; reaching it is a bug, reported instead of panicking.
    #[error("internal error: {0}")]
    Internal(&'static str),

    /// An AEAD wire name that is not supported.
    #[error("unknown HPKE AEAD {0:?}; expected aes-128-gcm, aes-256-gcm or chacha20-poly1305")]
    UnknownAead(String),

    /// A scheme wire name that is not supported.
    #[error("unknown decryption scheme {0:?}; expected hpke-x25519 or ecies-secp256k1")]
    UnknownScheme(String),
}
