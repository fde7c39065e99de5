//! A node's long-term identity: an Ed25519 key that signs its peer messages and an X25519 key
//! that peers seal secrets to. Written by `cluster init` to a file readable by its owner only.

use std::path::Path;

use anyhow::{bail, Context};
use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

pub struct Identity {
    pub id: u16,
    sign: SigningKey,
    seal_secret: Zeroizing<[u8; 32]>,
    pub seal_public: [u8; 32],
}

/// The file format; hex fields, zeroized after parsing.
#[derive(Serialize, Deserialize, Zeroize)]
#[zeroize(drop)]
struct IdentityFile {
    node: u16,
    sign_secret_key: String,
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
        let sign = SigningKey::generate(&mut rng);
        let (seal_secret, seal_public) = keyshares::seal::generate(&mut rng);
        Identity {
            id,
            sign,
            seal_secret,
            seal_public,
        }
    }

    pub fn load(path: &Path) -> anyhow::Result<Identity> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read identity file {}", path.display()))?,
        );
        let file: IdentityFile = serde_json::from_str(&text)
            .with_context(|| format!("invalid identity file {}", path.display()))?;
        let sign = SigningKey::from_bytes(&*decode32(&file.sign_secret_key, "sign_secret_key")?);
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
        let file = IdentityFile {
            node: self.id,
            sign_secret_key: hex::encode(self.sign.to_bytes()),
            seal_secret_key: hex::encode(*self.seal_secret),
        };
        let text = Zeroizing::new(serde_json::to_string_pretty(&file)?);
        crate::fsutil::write_private(path, text.as_bytes())
    }

    pub fn sign_public_hex(&self) -> String {
        hex::encode(self.sign.verifying_key().to_bytes())
    }

    pub fn seal_public_hex(&self) -> String {
        hex::encode(self.seal_public)
    }

    pub fn sign(&self, bytes: &[u8]) -> [u8; 64] {
        self.sign.sign(bytes).to_bytes()
    }

    pub fn seal_secret(&self) -> &[u8; 32] {
        &self.seal_secret
    }
}
