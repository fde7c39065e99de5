//! The node's Ed25519 peer-signing key on a PKCS#11 token (PKCS#11 3.0 `CKM_EDDSA`), so that a
//! copied volume cannot speak for the node (DESIGN.md §8). The key pair is generated on the
//! token (`CKA_SENSITIVE`, not `CKA_EXTRACTABLE`); the identity file keeps only its label and
//! public key, and every start checks that the token signs for that public key.

use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::Session;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};

use crate::pkcs11::{TokenError, TokenSeal};

/// CKA_EC_PARAMS of an Ed25519 key: the DER of its OID 1.3.101.112 (RFC 8410).
const ED25519_PARAMS: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

/// Signs with the private key labelled `token.key_label` on the token.
#[derive(Clone, Debug)]
pub struct TokenSigner {
    token: TokenSeal,
    public: VerifyingKey,
}

fn token_error(token: &TokenSeal, what: &str, e: impl std::fmt::Display) -> TokenError {
    TokenError::Failed(format!(
        "the node's identity key {} on token {}: {what}: {e}",
        token.key_label, token.token_label
    ))
}

/// The 32-byte public key in a `CKA_EC_POINT`: raw, or DER-wrapped as an OCTET STRING.
fn ec_point_key(point: &[u8]) -> Option<[u8; 32]> {
    match point {
        [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest.try_into().ok(),
        raw if raw.len() == 32 => raw.try_into().ok(),
        _ => None,
    }
}

impl TokenSigner {
    /// Generates an Ed25519 key pair labelled `token.key_label` on the token; refuses when the
    /// token already holds an object by that label.
    pub fn generate(token: TokenSeal) -> Result<TokenSigner, TokenError> {
        let label = token.key_label.as_bytes().to_vec();
        let public = token.with_session(|session| {
            let existing = session
                .find_objects(&[Attribute::Label(label.clone())])
                .map_err(|e| token_error(&token, "cannot search the token", e))?;
            if !existing.is_empty() {
                return Err(TokenError::Failed(format!(
                    "token {} already holds a key labelled {}; refusing to make another",
                    token.token_label, token.key_label
                )));
            }
            let (public, _private) = session
                .generate_key_pair(
                    &Mechanism::EccEdwardsKeyPairGen,
                    &[
                        Attribute::Token(true),
                        Attribute::Verify(true),
                        Attribute::EcParams(ED25519_PARAMS.to_vec()),
                        Attribute::Label(label.clone()),
                    ],
                    &[
                        Attribute::Token(true),
                        Attribute::Private(true),
                        Attribute::Sensitive(true),
                        Attribute::Extractable(false),
                        Attribute::Sign(true),
                        Attribute::Label(label.clone()),
                    ],
                )
                .map_err(|e| token_error(&token, "cannot generate it", e))?;
            let point = session
                .get_attributes(public, &[AttributeType::EcPoint])
                .map_err(|e| token_error(&token, "cannot read its public key", e))?;
            match point.as_slice() {
                [Attribute::EcPoint(p)] => ec_point_key(p)
                    .ok_or_else(|| token_error(&token, "public key", "not an Ed25519 point")),
                _ => Err(token_error(&token, "public key", "missing")),
            }
        })?;
        let public =
            VerifyingKey::from_bytes(&public).map_err(|e| token_error(&token, "public key", e))?;
        Ok(TokenSigner { token, public })
    }

    /// The signer for `public` on the token: it must sign, and its signature must verify under
    /// `public`, or the node does not start.
    pub fn open(token: TokenSeal, public: VerifyingKey) -> Result<TokenSigner, TokenError> {
        let signer = TokenSigner { token, public };
        let check = b"keyquorum/identity-on-token/check";
        let signature = signer.sign(check)?;
        public
            .verify(check, &Signature::from_bytes(&signature))
            .map_err(|_| {
                TokenError::Failed(format!(
                    "the key {} on token {} is not this node's identity key (its signature does \
                     not verify under the identity's public key)",
                    signer.token.key_label, signer.token.token_label
                ))
            })?;
        Ok(signer)
    }

    pub fn public(&self) -> &VerifyingKey {
        &self.public
    }

    pub fn label(&self) -> &str {
        &self.token.key_label
    }

    fn private_key(&self, session: &Session) -> Result<cryptoki::object::ObjectHandle, TokenError> {
        let found = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(self.token.key_label.as_bytes().to_vec()),
            ])
            .map_err(|e| token_error(&self.token, "cannot search the token", e))?;
        match found.as_slice() {
            [key] => Ok(*key),
            [] => Err(TokenError::Failed(format!(
                "the node's identity key {} is missing on token {}",
                self.token.key_label, self.token.token_label
            ))),
            _ => Err(TokenError::Failed(format!(
                "token {} holds several private keys labelled {}",
                self.token.token_label, self.token.key_label
            ))),
        }
    }

    /// A pure Ed25519 signature (RFC 8032) made on the token.
    pub fn sign(&self, bytes: &[u8]) -> Result<[u8; 64], TokenError> {
        let signature = self.token.with_session(|session| {
            let key = self.private_key(session)?;
            session
                .sign(
                    &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                    key,
                    bytes,
                )
                .map_err(|e| token_error(&self.token, "cannot sign", e))
        })?;
        signature
            .try_into()
            .map_err(|_| token_error(&self.token, "signature", "not 64 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::ec_point_key;

    #[test]
    fn an_ec_point_is_read_raw_or_der_wrapped_and_nothing_else() {
        let key = [7u8; 32];
        let mut der = vec![0x04, 0x20];
        der.extend_from_slice(&key);
        assert_eq!(ec_point_key(&der), Some(key));
        assert_eq!(ec_point_key(&key), Some(key));
        assert_eq!(ec_point_key(&der[..33]), None);
        assert_eq!(ec_point_key(&[0x04, 0x21, 1, 2]), None);
    }
}
