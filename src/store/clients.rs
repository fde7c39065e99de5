//! The client registry: every node keeps the same list of clients, changed only through
//! admin-signed changes applied on all nodes (see `crate::admin`), and seeded from the
//! config's bootstrap clients on a node's first start.

use std::collections::BTreeMap;

use api::{ClientInfo, Role};

use crate::store::{Store, Tagged};

/// Loads the registry; an empty one is seeded with the config's bootstrap clients.
pub fn load(
    store: &Store,
    bootstrap: &[ClientInfo],
) -> anyhow::Result<BTreeMap<String, ClientInfo>> {
    let tree = store.clients();
    if tree.is_empty() {
        let mut seeded = BTreeMap::new();
        for client in bootstrap {
            validate(client).map_err(|e| anyhow::anyhow!("bootstrap client: {e}"))?;
            key_is_unclaimed(&seeded, client)
                .map_err(|e| anyhow::anyhow!("bootstrap client {}: {e}", client.name))?;
            seeded.insert(client.name.clone(), client.clone());
            let name = client.name.as_bytes();
            tree.insert(name, store.write_tagged(Tagged::Clients, name, client)?)?;
        }
        tree.flush()?;
    }
    tree.iter()
        .map(|item| {
            let (name, json) = item?;
            let client: ClientInfo = store.read_tagged(Tagged::Clients, &name, &json)?;
            anyhow::ensure!(
                client.name.as_bytes() == name.as_ref(),
                "the record of client {} is stored under another name",
                client.name
            );
            Ok((client.name.clone(), client))
        })
        .collect()
}

pub fn put(store: &Store, client: &ClientInfo) -> anyhow::Result<()> {
    let name = client.name.as_bytes();
    store
        .clients()
        .insert(name, store.write_tagged(Tagged::Clients, name, client)?)?;
    store.clients().flush()?;
    Ok(())
}

pub fn remove(store: &Store, name: &str) -> anyhow::Result<()> {
    store.clients().remove(name.as_bytes())?;
    store.clients().flush()?;
    Ok(())
}

/// A client record a registry may hold.
pub fn validate(client: &ClientInfo) -> Result<(), String> {
    crate::validate::client_name(&client.name)?;
    let key: [u8; 32] = hex::decode(&client.public_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("public_key must be 32 bytes of hex")?;
    let point = ed25519_dalek::VerifyingKey::from_bytes(&key)
        .map_err(|_| "public_key is not an Ed25519 point".to_string())?;
    if point.is_weak() {
        return Err("public_key is a small-order point".into());
    }
    let mut roles = client.roles.clone();
    roles.sort();
    roles.dedup();
    if roles.len() != client.roles.len() {
        return Err("roles contain a duplicate".into());
    }
    Ok(())
}

/// A public key names one client only: refuses `client` if another name holds its key.
pub fn key_is_unclaimed(
    clients: &BTreeMap<String, ClientInfo>,
    client: &ClientInfo,
) -> Result<(), String> {
    match clients
        .values()
        .find(|c| c.name != client.name && c.public_key.eq_ignore_ascii_case(&client.public_key))
    {
        Some(holder) => Err(format!(
            "public_key is already registered to client {}; a key names one client",
            holder.name
        )),
        None => Ok(()),
    }
}

/// Whether at least one admin would remain.
pub fn has_admin(clients: &BTreeMap<String, ClientInfo>) -> bool {
    clients.values().any(|c| c.roles.contains(&Role::Admin))
}
