//! A node's long-term identity: an Ed25519 key that signs its peer messages and an X25519 key
//! that peers seal secrets to. Written by `cluster init` to a file readable by its owner only.
//! The Ed25519 key may live on a PKCS#11 token instead (`token_key`): the file then holds its
//! label and public key, never the secret.

pub mod token_key;

use std::path::Path;

use anyhow::{bail, Context};
use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

/// Where the peer-signing key lives.
enum SignKey {
    File(SigningKey),
    Token(token_key::TokenSigner),
}

pub struct Identity {
    pub id: u16,
    sign: SignKey,
    seal_secret: Zeroizing<[u8; 32]>,
    pub seal_public: [u8; 32],
}

/// The file format; hex fields, zeroized after parsing.
#[derive(Serialize, Deserialize, Zeroize)]
#[zeroize(drop)]
struct IdentityFile {
    node: u16,
    /// Absent when the signing key is on a token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sign_secret_key: Option<String>,
    /// The signing key's label on the token, when it is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sign_key_on_token: Option<String>,
    /// Hex; written with a token key, whose secret half the file cannot show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sign_public_key: Option<String>,
    seal_secret_key: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity(node {}, <secret keys redacted>)", self.id)
    }
}

fn decode32(hex_text: &str, what: &str) -> anyhow::Result<Zeroizing<[u8; 32]>> {
    let bytes =
        Zeroizing::new(hex::decode(hex_text).with_context(|| format!("{what} is not hex"))?);
    if bytes.len() != 32 {
        bail!("{what} must be 32 bytes");
    }
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&bytes);
    Ok(out)
}

impl Identity {
    pub fn generate(id: u16) -> Identity {
        let mut rng = rand::rngs::OsRng;
        let sign = SignKey::File(SigningKey::generate(&mut rng));
        let (seal_secret, seal_public) = keyshares::seal::generate(&mut rng);
        Identity {
            id,
            sign,
            seal_secret,
            seal_public,
        }
    }

    /// A new identity whose signing key is generated on the token, labelled `token.key_label`.
    pub fn generate_on_token(id: u16, token: crate::pkcs11::TokenSeal) -> anyhow::Result<Identity> {
        let signer = token_key::TokenSigner::generate(token)?;
        let (seal_secret, seal_public) = keyshares::seal::generate(&mut rand::rngs::OsRng);
        Ok(Identity {
            id,
            sign: SignKey::Token(signer),
            seal_secret,
            seal_public,
        })
    }

    /// Whether the signing key is on a token.
    pub fn on_token(&self) -> bool {
        matches!(self.sign, SignKey::Token(_))
    }

    /// Loads an identity whose signing key is in the file.
    pub fn load(path: &Path) -> anyhow::Result<Identity> {
        Self::load_with(path, None)
    }

    /// Loads an identity; `token` (module, token label and PIN) opens a signing key kept on a
    /// token, which must then sign for the public key in the file.
    pub fn load_with(
        path: &Path,
        token: Option<&crate::pkcs11::TokenSeal>,
    ) -> anyhow::Result<Identity> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read identity file {}", path.display()))?,
        );
        let file: IdentityFile = serde_json::from_str(&text)
            .with_context(|| format!("invalid identity file {}", path.display()))?;
        let sign = match (&file.sign_secret_key, &file.sign_key_on_token, token) {
            (Some(secret), None, None) => SignKey::File(SigningKey::from_bytes(&*decode32(
                secret,
                "sign_secret_key",
            )?)),
            (Some(_), None, Some(_)) => bail!(
                "[seal] identity_on_token is set but {} holds the signing key itself",
                path.display()
            ),
            (None, Some(label), Some(token)) => {
                let public = file
                    .sign_public_key
                    .as_deref()
                    .with_context(|| format!("{}: sign_public_key is missing", path.display()))?;
                let public =
                    ed25519_dalek::VerifyingKey::from_bytes(&*decode32(public, "sign_public_key")?)
                        .context("sign_public_key is not an Ed25519 key")?;
                let token = crate::pkcs11::TokenSeal {
                    key_label: label.clone(),
                    ..token.clone()
                };
                SignKey::Token(token_key::TokenSigner::open(token, public)?)
            }
            (None, Some(label), None) => bail!(
                "the signing key of {} is on a PKCS#11 token (label {label}): set [seal] \
                 identity_on_token = true with the token's module, label and PIN",
                path.display()
            ),
            _ => bail!(
                "{}: give either sign_secret_key or sign_key_on_token",
                path.display()
            ),
        };
        let seal_secret = decode32(&file.seal_secret_key, "seal_secret_key")?;
        let seal_public = keyshares::seal::public_key(&seal_secret)?;
        Ok(Identity {
            id: file.node,
            sign,
            seal_secret,
            seal_public,
        })
    }

    /// Writes the identity with owner-only permissions; refuses to overwrite.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let file = match &self.sign {
            SignKey::File(key) => IdentityFile {
                node: self.id,
                sign_secret_key: Some(hex::encode(key.to_bytes())),
                sign_key_on_token: None,
                sign_public_key: None,
                seal_secret_key: hex::encode(*self.seal_secret),
            },
            SignKey::Token(signer) => IdentityFile {
                node: self.id,
                sign_secret_key: None,
                sign_key_on_token: Some(signer.label().to_string()),
                sign_public_key: Some(self.sign_public_hex()),
                seal_secret_key: hex::encode(*self.seal_secret),
            },
        };
        let text = Zeroizing::new(serde_json::to_string_pretty(&file)?);
        crate::fsutil::write_private(path, text.as_bytes())
    }

    pub fn sign_public_hex(&self) -> String {
        match &self.sign {
            SignKey::File(key) => hex::encode(key.verifying_key().to_bytes()),
            SignKey::Token(signer) => hex::encode(signer.public().to_bytes()),
        }
    }

    pub fn seal_public_hex(&self) -> String {
        hex::encode(self.seal_public)
    }

    /// Signs `bytes`. A token that stops signing while the node runs stops the node: it can no
    /// longer speak for its member id, and a node that cannot sign must not pretend to
    /// (fail-stop; the others carry on while t remain, README "Running with an HSM").
    pub fn sign(&self, bytes: &[u8]) -> [u8; 64] {
        match &self.sign {
            SignKey::File(key) => key.sign(bytes).to_bytes(),
            SignKey::Token(signer) => match signer.sign(bytes) {
                Ok(signature) => signature,
                Err(e) => {
                    tracing::error!(error = %e, "the identity key on the token does not sign; stopping");
                    eprintln!("error: {e}; stopping: this node cannot sign without its token");
                    std::process::exit(2)
                }
            },
        }
    }

    pub fn seal_secret(&self) -> &[u8; 32] {
        &self.seal_secret
    }
}
