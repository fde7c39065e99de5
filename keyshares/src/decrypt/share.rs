//! A participant's secret share s_i as a bare scalar, taken from its FROST key package.

use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::group::PrimeGroup;
use super::secp256k1::Secp256k1;
use super::x25519::Ed25519;
use super::{DecryptError, Scheme};

/// A participant's secret share as a scalar. Zeroized on drop; `Debug` shows only the curve.
pub struct ShareScalar(Inner);

enum Inner {
    Ed25519(curve25519_dalek::Scalar),
    Secp256k1(k256::Scalar),
    /// The key package did not hold a canonical 32-byte scalar. FROST never produces that, but
    /// the constructors cannot fail, so the error is reported when the share is used.
    Malformed(Scheme),
}

impl ShareScalar {
    /// The share of an Ed25519-group key (used for [`Scheme::HpkeX25519`]).
    pub fn from_ed25519(kp: &frost_ed25519::keys::KeyPackage) -> Self {
        let bytes = Zeroizing::new(kp.signing_share().serialize());
        Self::from_bytes(Scheme::HpkeX25519, &bytes)
    }

    /// The share of a secp256k1 key (used for [`Scheme::EciesSecp256k1`]).
    pub fn from_secp256k1(kp: &frost_secp256k1::keys::KeyPackage) -> Self {
        let bytes = Zeroizing::new(kp.signing_share().serialize());
        Self::from_bytes(Scheme::EciesSecp256k1, &bytes)
    }

    /// A share from a canonical little-endian Ed25519 scalar, for test vectors only (RFC 9180
    /// gives a bare private key, not a key package). `None` if not canonical.
    #[doc(hidden)]
    pub fn from_ed25519_scalar_bytes_for_tests(bytes: &[u8; 32]) -> Option<Self> {
        Ed25519::scalar_from_canonical(bytes).map(|s| Self(Inner::Ed25519(s)))
    }

    /// The scheme this share can decrypt for.
    pub fn scheme(&self) -> Scheme {
        match self.0 {
            Inner::Ed25519(_) => Scheme::HpkeX25519,
            Inner::Secp256k1(_) => Scheme::EciesSecp256k1,
            Inner::Malformed(scheme) => scheme,
        }
    }

    fn from_bytes(scheme: Scheme, bytes: &[u8]) -> Self {
        let Ok(arr) = <&[u8; 32]>::try_from(bytes) else {
            return Self(Inner::Malformed(scheme));
        };
        let inner = match scheme {
            Scheme::HpkeX25519 => Ed25519::scalar_from_canonical(arr).map(Inner::Ed25519),
            Scheme::EciesSecp256k1 => Secp256k1::scalar_from_canonical(arr).map(Inner::Secp256k1),
        };
        Self(inner.unwrap_or(Inner::Malformed(scheme)))
    }

    pub(crate) fn ed25519(&self) -> Result<&curve25519_dalek::Scalar, DecryptError> {
        match &self.0 {
            Inner::Ed25519(s) => Ok(s),
            Inner::Malformed(Scheme::HpkeX25519) => Err(DecryptError::MalformedShare),
            _ => Err(self.mismatch(Scheme::HpkeX25519)),
        }
    }

    pub(crate) fn secp256k1(&self) -> Result<&k256::Scalar, DecryptError> {
        match &self.0 {
            Inner::Secp256k1(s) => Ok(s),
            Inner::Malformed(Scheme::EciesSecp256k1) => Err(DecryptError::MalformedShare),
            _ => Err(self.mismatch(Scheme::EciesSecp256k1)),
        }
    }

    fn mismatch(&self, wanted: Scheme) -> DecryptError {
        DecryptError::SchemeMismatch {
            share_curve: self.scheme().curve_name(),
            scheme_curve: wanted.curve_name(),
        }
    }
}

impl Drop for ShareScalar {
    fn drop(&mut self) {
        match &mut self.0 {
            Inner::Ed25519(s) => s.zeroize(),
            Inner::Secp256k1(s) => s.zeroize(),
            Inner::Malformed(_) => {}
        }
    }
}

impl ZeroizeOnDrop for ShareScalar {}

impl fmt::Debug for ShareScalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShareScalar({}, <redacted>)", self.scheme().curve_name())
    }
}
