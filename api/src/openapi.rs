//! The OpenAPI 3 document of the client API, generated from the types of this crate.
//!
//! The node serves it at `GET /v1/openapi.json`; `api/openapi.json` is the checked-in copy
//! (`api/tests/openapi.rs` fails when it is stale). The paths are described here on stub
//! functions rather than on the node's handlers, so that this crate stays the whole contract
//! and never depends on the node.
#![allow(dead_code)] // the stub functions exist only for `#[utoipa::path]`

use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::requests::*;
use crate::types::*;

/// The answer to `POST /v1/keys/{name}/sign`: its shape follows the request (`message` or
/// `batch`). Only for the document; clients decode the variant they asked for.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SignAnswer {
    Single(SignResponse),
    Batch(BatchSignResponse),
}

/// Name of the bearer security scheme in the document.
pub const BEARER: &str = "bearer";

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A client token from `keyquorum cluster init` (admin.token); nodes \
                         store only its SHA-256.",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "keyquorum client API",
        description = "Threshold key management: DKG key ceremonies, FROST signing and \
threshold decryption. Any node takes a request and coordinates it with its peers. Bytes travel \
as standard base64, keys and signatures as lowercase hex. Every error answers with an \
ErrorBody and a 4xx/5xx status.",
        license(name = "Apache-2.0")
    ),
    paths(
        health,
        status,
        openapi_json,
        metrics,
        create_key,
        list_keys,
        get_key,
        retire_key,
        refresh_key,
        repair_key,
        reshare_key,
        sign,
        verify,
        encrypt,
        decrypt,
        decrypt_report,
        create_decrypt_request,
        list_decrypt_requests,
        get_decrypt_request,
        approve_decrypt_request,
        deny_decrypt_request,
        execute_decrypt_request,
        set_policy,
        list_clients,
        put_client,
        remove_client,
        audit,
        audit_heads,
        seal,
        unseal
    ),
    components(schemas(SignAnswer)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "node", description = "Liveness, status, metrics and this document"),
        (name = "keys", description = "Key ceremonies and public key data"),
        (name = "lifecycle", description = "New shares of a key without ever reconstructing \
it: refresh, repair, reshare; and retirement. Each is a ceremony with the same guarantees as key \
generation and needs the `manage` permission of the key's policy."),
        (name = "operations", description = "Signing, verification, encryption, decryption"),
        (name = "requests", description = "Decryption requests that approvers review: every \
step is a signed request that every node checks against its own copy of the request and logs \
(README, Decryption requests). Refusals name the broken rule: `self_approval`, \
`not_an_approver`, `duplicate_approval`, `content_mismatch`, `request_denied`, \
`request_expired`, `not_approved`, `not_requester`, `already_executed`, `no_such_request`."),
        (name = "access", description = "Clients, key policies, the audit trail, sealing. \
Calls that create, use or change something need a signed request: `Authorization: KQ-Ed25519 \
client=NAME,node=ID,ts=MS,nonce=NONCE,sig=HEX` over `KQ-REQUEST-V2\\nCLIENT\\nNODE\\nMETHOD\\n\
PATH\\nhex(SHA-256(body))\\nTS\\nNONCE`; approvals in `X-KQ-Approval` over `KQ-APPROVAL-V1\\n\
APPROVER\\nREQUESTER\\nREQUEST-NONCE\\nMETHOD\\nPATH\\nhex(SHA-256(body))\\nTS\\nNONCE` \
(README, Access control).")
    )
)]
pub struct ApiDoc;

/// The document as pretty JSON with a final newline: the exact bytes of `api/openapi.json`
/// and of `GET /v1/openapi.json`.
pub fn json() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    text.push('\n');
    text
}

#[utoipa::path(
    get,
    path = "/v1/health",
    tag = "node",
    security(()),
    responses((status = 200, description = "The node is up", body = Health))
)]
fn health() {}

#[utoipa::path(
    get,
    path = "/v1/status",
    tag = "node",
    responses(
        (status = 200, description = "This node's id, sealed state, key count, which peers answer a ping, and whether it has caught up on the admin log since it started", body = Status),
        (status = 401, description = "Missing or unknown token", body = ErrorBody)
    )
)]
fn status() {}

#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "node",
    security(()),
    responses((status = 200, description = "This OpenAPI 3 document", content_type = "application/json", body = Object))
)]
fn openapi_json() {}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "node",
    security(()),
    responses((
        status = 200,
        description = "Prometheus metrics (OpenMetrics text): requests and latency per operation and outcome, culprits, peer rounds and bytes, sealed state, peer reachability",
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8",
        body = String
    ))
)]
fn metrics() {}

#[utoipa::path(
    post,
    path = "/v1/keys",
    tag = "keys",
    request_body = CreateKeyRequest,
    responses(
        (status = 201, description = "Every participant holds its share and all n confirmations; `ceremony` gives the cost", body = KeyInfo),
        (status = 400, description = "Invalid name, algorithm, threshold or participants", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 409, description = "A key of that name exists", body = ErrorBody),
        (status = 502, description = "A participant misbehaved; `culprits` names it", body = ErrorBody),
        (status = 503, description = "A participant is unreachable or timed out; `culprits` names it", body = ErrorBody),
        (status = 504, description = "The whole ceremony ran out of time (`timeouts.ceremony_ms`); nothing changed", body = ErrorBody)
    )
)]
fn create_key() {}

#[utoipa::path(
    get,
    path = "/v1/keys",
    tag = "keys",
    params(
        ("after" = Option<String>, Query, description = "Keys after this name (the `next` of the previous page)"),
        ("limit" = Option<u32>, Query, description = "At most this many (1 to 1000, default 100)")
    ),
    responses(
        (status = 200, description = "One page of the keys this node knows, in name order; `next` names the cursor of the following page", body = KeyList),
        (status = 400, description = "A query parameter does not parse", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody)
    )
)]
fn list_keys() {}

#[utoipa::path(
    get,
    path = "/v1/keys/{name}",
    tag = "keys",
    params(("name" = String, Path, description = "The key's name")),
    responses(
        (status = 200, description = "The key's public data, identical on every participant", body = KeyInfo),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 404, description = "No such key on this node", body = ErrorBody)
    )
)]
fn get_key() {}

#[utoipa::path(
    delete,
    path = "/v1/keys/{name}",
    tag = "lifecycle",
    params(("name" = String, Path, description = "The key to retire")),
    responses(
        (status = 200, description = "Every node erased its share; the public data stays, `state` = `retired`", body = KeyInfo),
        (status = 401, description = "Request not authentic", body = ErrorBody),
        (status = 403, description = "The client may not manage the key", body = ErrorBody),
        (status = 404, description = "No such key on this node", body = ErrorBody),
        (status = 409, description = "Retired already (`key_retired`)", body = ErrorBody),
        (status = 503, description = "Fewer than `[admin] quorum` nodes accepted it; retired nowhere", body = ErrorBody)
    )
)]
fn retire_key() {}

#[utoipa::path(
    post,
    path = "/v1/keys/{name}/refresh",
    tag = "lifecycle",
    params(("name" = String, Path, description = "The key to refresh")),
    request_body(content = RefreshRequest, description = "Empty, or `{}`"),
    responses(
        (status = 200, description = "Every participant holds a new share of the same key; `generation` went up by one; `ceremony` is its cost", body = KeyInfo),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "Request not authentic", body = ErrorBody),
        (status = 403, description = "The client may not manage the key", body = ErrorBody),
        (status = 404, description = "No such key on this node", body = ErrorBody),
        (status = 409, description = "Retired, or another ceremony of the key is running", body = ErrorBody),
        (status = 502, description = "A participant misbehaved (`culprits`); the old shares stay active", body = ErrorBody),
        (status = 503, description = "A participant is unreachable (`culprits`); the old shares stay active", body = ErrorBody),
        (status = 504, description = "The whole ceremony ran out of time (`timeouts.ceremony_ms`); nothing changed", body = ErrorBody)
    )
)]
fn refresh_key() {}

#[utoipa::path(
    post,
    path = "/v1/keys/{name}/repair",
    tag = "lifecycle",
    params(("name" = String, Path, description = "The key")),
    request_body = RepairRequest,
    responses(
        (status = 200, description = "The node holds its share again, matching its verifying share on record", body = KeyInfo),
        (status = 400, description = "Not a participant, or too few or unfit helpers", body = ErrorBody),
        (status = 401, description = "Request not authentic", body = ErrorBody),
        (status = 403, description = "The client may not manage the key", body = ErrorBody),
        (status = 404, description = "No such key on this node", body = ErrorBody),
        (status = 409, description = "The node holds its share: nothing to repair; or the key is retired", body = ErrorBody),
        (status = 502, description = "A helper misbehaved and is named in `culprits`; nothing was stored", body = ErrorBody),
        (status = 503, description = "A helper or the node is unreachable (`culprits`)", body = ErrorBody),
        (status = 504, description = "The whole ceremony ran out of time (`timeouts.ceremony_ms`); nothing changed", body = ErrorBody)
    )
)]
fn repair_key() {}

#[utoipa::path(
    post,
    path = "/v1/keys/{name}/reshare",
    tag = "lifecycle",
    params(("name" = String, Path, description = "The key")),
    request_body = ReshareRequest,
    responses(
        (status = 200, description = "The new committee holds shares of the same key with the new threshold; nodes that left erased theirs", body = KeyInfo),
        (status = 400, description = "Unknown participant, duplicate, or unusable threshold", body = ErrorBody),
        (status = 401, description = "Request not authentic", body = ErrorBody),
        (status = 403, description = "The client may not manage the key", body = ErrorBody),
        (status = 404, description = "No such key on this node", body = ErrorBody),
        (status = 409, description = "Retired, or another ceremony of the key is running", body = ErrorBody),
        (status = 502, description = "A node misbehaved (`culprits`); the old shares stay active", body = ErrorBody),
        (status = 503, description = "A node is unreachable (`culprits`); the old shares stay active", body = ErrorBody),
        (status = 504, description = "The whole ceremony ran out of time (`timeouts.ceremony_ms`); nothing changed", body = ErrorBody)
    )
)]
fn reshare_key() {}

#[utoipa::path(
    post,
    path = "/v1/keys/{name}/sign",
    tag = "operations",
    params(("name" = String, Path, description = "A signing key")),
    request_body(content = SignRequest, description = "Exactly one of `message` (base64) or `batch` (at most 256 items)"),
    responses(
        (status = 200, description = "`SignResponse` for `message`, `BatchSignResponse` for `batch`", body = SignAnswer),
        (status = 400, description = "Malformed request, or a decryption key", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 404, description = "No such key on this node", body = ErrorBody),
        (status = 503, description = "Fewer than t signers answered correctly (`culprits` names the others), or the node has not caught up on the admin log since it started (`catching_up`)", body = ErrorBody)
    )
)]
fn sign() {}

#[utoipa::path(
    post,
    path = "/v1/keys/{name}/verify",
    tag = "operations",
    params(("name" = String, Path, description = "A signing key")),
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "Whether the signature is valid for the key's group public key", body = VerifyResponse),
        (status = 400, description = "Malformed request, or a decryption key", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 404, description = "No such key on this node", body = ErrorBody)
    )
)]
fn verify() {}

#[utoipa::path(
    post,
    path = "/v1/keys/{name}/encrypt",
    tag = "operations",
    params(("name" = String, Path, description = "A decryption key")),
    request_body(content = EncryptRequest, description = "1 to 4096 plaintexts"),
    responses(
        (status = 200, description = "One ciphertext per plaintext, in the decrypt format", body = EncryptResponse),
        (status = 400, description = "Malformed request, or a signing key", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 404, description = "No such key on this node", body = ErrorBody)
    )
)]
fn encrypt() {}

#[utoipa::path(
    post,
    path = "/v1/keys/{name}/decrypt",
    tag = "operations",
    params(("name" = String, Path, description = "A decryption key")),
    request_body(content = DecryptRequest, description = "1 to 4096 ciphertexts"),
    responses(
        (status = 200, description = "Coordinator-combine mode: one `plaintext` or `error` per item, in order. End-to-end mode (the request names `reply_to`): no results; `sealed_partials` holds each holder's partials and proofs sealed to `reply_to`, which the requester checks and combines (DESIGN.md §6)", body = DecryptResponse),
        (status = 400, description = "Malformed request, or a signing key", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 403, description = "The key's policy allows only end-to-end decryption and the request names no `reply_to`", body = ErrorBody),
        (status = 404, description = "No such key on this node", body = ErrorBody),
        (status = 503, description = "Fewer than t nodes gave valid partials (`culprits` names the others), or the node has not caught up on the admin log since it started (`catching_up`)", body = ErrorBody)
    )
)]
fn decrypt() {}

#[utoipa::path(
    post,
    path = "/v1/keys/{name}/decrypt/report",
    tag = "operations",
    params(("name" = String, Path, description = "A decryption key")),
    request_body(content = DecryptReport, description = "Holders whose end-to-end partials failed the requester's checks"),
    responses(
        (status = 200, description = "The report is in this node's audit trail (`decrypt.report`)", body = ReportAccepted),
        (status = 400, description = "Malformed report", body = ErrorBody),
        (status = 401, description = "Missing or unknown token", body = ErrorBody),
        (status = 403, description = "The client may not decrypt with this key", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody)
    )
)]
fn decrypt_report() {}

#[utoipa::path(
    post,
    path = "/v1/keys/{name}/decrypt-requests",
    tag = "requests",
    params(("name" = String, Path, description = "A decryption key")),
    request_body(content = CreateDecryptRequest, description = "1 to 4096 records and the reason; signed by the requester, who must be in the key policy's `decrypt` list"),
    responses(
        (status = 201, description = "Logged on every node; `id` is derived from the requester and the request's nonce", body = DecryptRequestCreated),
        (status = 400, description = "Malformed request or record", body = ErrorBody),
        (status = 401, description = "Not a valid signed request", body = ErrorBody),
        (status = 403, description = "The client may not decrypt with this key", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody),
        (status = 503, description = "Fewer than the admin quorum of nodes accepted it (`change_not_applied`), or another change went first (`retry`)", body = ErrorBody)
    )
)]
fn create_decrypt_request() {}

#[utoipa::path(
    get,
    path = "/v1/decrypt-requests",
    tag = "requests",
    params(("state" = Option<String>, Query, description = "pending, approved, denied, expired or executed")),
    responses(
        (status = 200, description = "The requests this node holds that the caller may see, newest first", body = DecryptRequestList),
        (status = 400, description = "Unknown state", body = ErrorBody),
        (status = 401, description = "Missing or unknown credentials", body = ErrorBody)
    )
)]
fn list_decrypt_requests() {}

#[utoipa::path(
    get,
    path = "/v1/decrypt-requests/{id}",
    tag = "requests",
    params(("id" = String, Path, description = "The request's id")),
    responses(
        (status = 200, description = "The request with its records, labels, approvals and refusals", body = DecryptRequestInfo),
        (status = 401, description = "Missing or unknown credentials", body = ErrorBody),
        (status = 403, description = "The caller may not see this request", body = ErrorBody),
        (status = 404, description = "No such request on this node", body = ErrorBody)
    )
)]
fn get_decrypt_request() {}

#[utoipa::path(
    post,
    path = "/v1/decrypt-requests/{id}/approve",
    tag = "requests",
    params(("id" = String, Path, description = "The request's id")),
    request_body(content = ReviewDecryptRequest, description = "Signed by an approver: the signature covers the id (path) and `content_sha256` (body)"),
    responses(
        (status = 200, description = "The request after the approval, logged on every node", body = DecryptRequestInfo),
        (status = 401, description = "Not a valid signed request (an approval signed for another request's path fails here: `bad_signature`)", body = ErrorBody),
        (status = 403, description = "`self_approval` or `not_an_approver`", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "`duplicate_approval`, `content_mismatch`, `request_denied`, `request_expired` or `already_executed`", body = ErrorBody)
    )
)]
fn approve_decrypt_request() {}

#[utoipa::path(
    post,
    path = "/v1/decrypt-requests/{id}/deny",
    tag = "requests",
    params(("id" = String, Path, description = "The request's id")),
    request_body(content = ReviewDecryptRequest, description = "Signed by an approver, as an approval"),
    responses(
        (status = 200, description = "The request after the refusal (`denied` when the policy's `deny_closes`)", body = DecryptRequestInfo),
        (status = 401, description = "Not a valid signed request", body = ErrorBody),
        (status = 403, description = "`self_approval` or `not_an_approver`", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "As for approve", body = ErrorBody)
    )
)]
fn deny_decrypt_request() {}

#[utoipa::path(
    post,
    path = "/v1/decrypt-requests/{id}/execute",
    tag = "requests",
    params(("id" = String, Path, description = "The request's id")),
    request_body(content = ExecuteDecryptRequest, description = "Signed by the requester; `reply_to` for end-to-end mode. The records are the approved ones"),
    responses(
        (status = 200, description = "The decrypt answer, as `POST /v1/keys/{name}/decrypt` gives it", body = DecryptResponse),
        (status = 401, description = "Not a valid signed request", body = ErrorBody),
        (status = 403, description = "`not_requester`, or the key allows only end-to-end decryption and `reply_to` is missing", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "`not_approved`, `request_denied`, `request_expired` or `already_executed`", body = ErrorBody),
        (status = 503, description = "Fewer than t holders gave partials", body = ErrorBody)
    )
)]
fn execute_decrypt_request() {}

#[utoipa::path(
    put,
    path = "/v1/keys/{name}/policy",
    tag = "access",
    params(("name" = String, Path, description = "A key")),
    request_body = KeyPolicy,
    responses(
        (status = 200, description = "Applied on every node; the key's data", body = KeyInfo),
        (status = 401, description = "Request not authentic", body = ErrorBody),
        (status = 403, description = "The client may not manage the key", body = ErrorBody),
        (status = 503, description = "Fewer than `[admin] quorum` nodes accepted it; applied nowhere", body = ErrorBody)
    )
)]
fn set_policy() {}

#[utoipa::path(
    get,
    path = "/v1/clients",
    tag = "access",
    responses((status = 200, description = "The client registry", body = ClientList))
)]
fn list_clients() {}

#[utoipa::path(
    post,
    path = "/v1/clients",
    tag = "access",
    request_body = ClientInfo,
    responses(
        (status = 200, description = "Registered (or replaced) on every node", body = ChangeApplied),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 503, description = "Fewer than `[admin] quorum` nodes accepted it; applied nowhere", body = ErrorBody)
    )
)]
fn put_client() {}

#[utoipa::path(
    delete,
    path = "/v1/clients/{name}",
    tag = "access",
    params(("name" = String, Path, description = "A client")),
    responses(
        (status = 200, description = "Removed on every node", body = ChangeApplied),
        (status = 403, description = "Not an admin", body = ErrorBody)
    )
)]
fn remove_client() {}

#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "access",
    params(
        ("after" = Option<u64>, Query, description = "Entries after this sequence number"),
        ("limit" = Option<u32>, Query, description = "At most this many (1 to 1000, default 100)")
    ),
    responses(
        (status = 200, description = "A page of this node's hash-chained audit trail", body = AuditPage),
        (status = 403, description = "A signed client without the admin or auditor role", body = ErrorBody)
    )
)]
fn audit() {}

#[utoipa::path(
    get,
    path = "/v1/audit/heads",
    tag = "access",
    responses(
        (status = 200, description = "This node's signed audit head and the latest signed head of each peer it recorded, with the first conflict seen (a rollback or fork of that peer's trail)", body = AuditHeads),
        (status = 403, description = "A signed client without the admin or auditor role", body = ErrorBody)
    )
)]
fn audit_heads() {}

#[utoipa::path(
    post,
    path = "/v1/sys/seal",
    tag = "access",
    responses(
        (status = 200, description = "Sealed: shares dropped from memory", body = SealState),
        (status = 403, description = "Not an admin", body = ErrorBody)
    )
)]
fn seal() {}

#[utoipa::path(
    post,
    path = "/v1/sys/unseal",
    tag = "access",
    security(()),
    request_body = UnsealRequest,
    responses(
        (status = 200, description = "Unsealed", body = SealState),
        (status = 403, description = "Wrong passphrase; still sealed", body = ErrorBody)
    )
)]
fn unseal() {}
