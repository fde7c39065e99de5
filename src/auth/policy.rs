//! Per-key policy: who may sign, decrypt, read and manage a key, and how many approvers a
//! decryption needs.

use api::{CreateKeyRequest, KeyPolicy, Role};

use super::{AuthError, Caller};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Sign,
    Decrypt,
    Read,
    Manage,
}

impl Permission {
    fn as_str(self) -> &'static str {
        match self {
            Permission::Sign => "sign",
            Permission::Decrypt => "decrypt",
            Permission::Read => "read",
            Permission::Manage => "manage",
        }
    }
}

fn names(list: &[String], client: &str) -> bool {
    list.iter().any(|n| n == client || n == "*")
}

/// The policy of a new key: the request's, or the creating client may do everything.
pub fn initial(request: &CreateKeyRequest, creator: &str) -> KeyPolicy {
    request.policy.clone().unwrap_or_else(|| {
        let me = vec![creator.to_string()];
        KeyPolicy {
            sign: me.clone(),
            decrypt: me.clone(),
            read: me.clone(),
            manage: me,
            decrypt_approvals: 0,
            approve: vec![],
            decrypt_mode: Default::default(),
            ..Default::default()
        }
    })
}

/// Checks that `caller` may do `what` with the key named `key`.
pub fn check(
    policy: &KeyPolicy,
    key: &str,
    caller: &Caller,
    what: Permission,
) -> Result<(), AuthError> {
    let admin = caller.has_role(Role::Admin);
    let allowed = match what {
        Permission::Sign => names(&policy.sign, caller.name()),
        Permission::Decrypt => names(&policy.decrypt, caller.name()),
        // A decryptor reads the key's verifying shares to check end-to-end partials
        // (DESIGN.md §6); a key's data is public to whoever may use it.
        Permission::Read => {
            admin || names(&policy.read, caller.name()) || names(&policy.decrypt, caller.name())
        }
        Permission::Manage => admin || names(&policy.manage, caller.name()),
    };
    if !allowed {
        return Err(AuthError::Forbidden(format!(
            "client {} may not {} with key {key}",
            caller.name(),
            what.as_str()
        )));
    }
    if what == Permission::Decrypt && policy.decrypt_approvals > 0 {
        let approvers: Vec<&String> = caller
            .approvers
            .iter()
            .filter(|a| {
                if policy.approve.is_empty() {
                    names(&policy.decrypt, a)
                } else {
                    names(&policy.approve, a)
                }
            })
            .collect();
        if approvers.len() < usize::from(policy.decrypt_approvals) {
            return Err(AuthError::ApprovalsRequired(format!(
                "key {key} needs {} approvals from distinct approvers other than {}; got {}",
                policy.decrypt_approvals,
                caller.name(),
                approvers.len()
            )));
        }
    }
    Ok(())
}

/// A policy must be one that can be used: names are valid, the approval count is sane.
pub fn validate(policy: &KeyPolicy) -> Result<(), String> {
    for name in policy
        .sign
        .iter()
        .chain(&policy.decrypt)
        .chain(&policy.read)
        .chain(&policy.manage)
        .chain(&policy.approve)
    {
        if name != "*" {
            crate::validate::client_name(name)?;
        }
    }
    if !(1..=31_536_000).contains(&policy.request_ttl_seconds) {
        return Err("request_ttl_seconds must be 1 to 31536000 (a year)".into());
    }
    if policy.decrypt_approvals > 16 {
        return Err("decrypt_approvals is at most 16".into());
    }
    Ok(())
}
