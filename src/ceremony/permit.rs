//! A participant's own reading of the client's signed request: it takes part in a ceremony
//! only if the request asks for exactly that ceremony, by a client allowed to ask for it.

use api::{CreateKeyRequest, ReshareRequest, Role};

use crate::auth::policy::{initial, Permission};
use crate::auth::{AuthError, Caller, ClientRequest};
use crate::node::Node;
use crate::peer::messages::CeremonyPurpose;
use crate::peer::CeremonySpec;

/// A participant's own check that a signed key-creation request asks for exactly this
/// ceremony, by a client allowed to create keys, with the policy the spec carries.
pub(super) fn permit_ceremony(
    node: &Node,
    spec: &CeremonySpec,
    request: &ClientRequest,
    caller: Caller,
) -> Result<Caller, AuthError> {
    if !(caller.has_role(Role::KeyCreator) || caller.has_role(Role::Admin)) {
        return Err(AuthError::Forbidden(format!(
            "client {} may not create keys",
            caller.name()
        )));
    }
    let body: CreateKeyRequest = serde_json::from_slice(&request.body).map_err(|e| {
        AuthError::Forbidden(format!("the signed request is not a key creation: {e}"))
    })?;
    let mut participants = body
        .participants
        .clone()
        .unwrap_or_else(|| node.members.keys().copied().collect());
    participants.sort_unstable();
    let matches = request.method == "POST"
        && request.path == "/v1/keys"
        && body.name == spec.name
        && body.algorithm == spec.algorithm
        && body.threshold == spec.threshold
        && participants == spec.participants
        && initial(&body, caller.name()) == spec.policy;
    if !matches {
        return Err(AuthError::Forbidden(
            "the ceremony is not the one the client's signed request asks for".into(),
        ));
    }
    Ok(caller)
}

/// A participant's own check that a signed refresh or reshare request asks for exactly this
/// ceremony, of the key this node holds, by a client allowed to manage it.
pub(super) fn permit_renewal(
    node: &Node,
    spec: &CeremonySpec,
    request: &ClientRequest,
    caller: Caller,
) -> Result<Caller, AuthError> {
    let refused = |why: String| AuthError::Forbidden(why);
    let Some(previous) = spec.purpose.previous() else {
        return Err(refused("not a refresh or reshare".into()));
    };
    let (operation, body_matches) = match &spec.purpose {
        CeremonyPurpose::Refresh { .. } => (
            "refresh",
            (request.body.is_empty()
                || serde_json::from_slice::<api::RefreshRequest>(&request.body).is_ok())
                && spec.participants == previous.participants
                && spec.threshold == previous.threshold,
        ),
        CeremonyPurpose::Reshare {
            participants,
            dealers,
            ..
        } => {
            let body: ReshareRequest = serde_json::from_slice(&request.body)
                .map_err(|e| refused(format!("the signed request is not a reshare: {e}")))?;
            let sorted = |mut ids: Vec<u16>| {
                ids.sort_unstable();
                ids
            };
            let asked_dealers = sorted(body.dealers.unwrap_or(previous.participants.clone()));
            (
                "reshare",
                sorted(body.participants) == *participants
                    && asked_dealers == *dealers
                    && body.threshold == spec.threshold,
            )
        }
        CeremonyPurpose::Create => unreachable!("checked above"),
    };
    let path_matches =
        request.method == "POST" && request.path == format!("/v1/keys/{}/{operation}", spec.name);
    if !(path_matches && body_matches && previous.name == spec.name) {
        return Err(refused(
            "the ceremony is not the one the client's signed request asks for".into(),
        ));
    }
    if previous.state != api::KeyState::Active {
        return Err(refused(format!("key {} is retired", spec.name)));
    }
    // A node joining the committee may know nothing of the key: it judges by the policy the
    // spec carries, which every holder checks against its own and confirms.
    let policy = node.policy(&spec.name);
    if policy.as_ref().is_some_and(|p| *p != spec.policy) && previous.held_by(node.id()) {
        return Err(refused(format!(
            "the key's policy on node {} is not the coordinator's",
            node.id()
        )));
    }
    crate::auth::policy::check(&spec.policy, &spec.name, &caller, Permission::Manage)?;
    if let Some(own) = &policy {
        crate::auth::policy::check(own, &spec.name, &caller, Permission::Manage)?;
    }
    Ok(caller)
}
