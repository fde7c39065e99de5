//! The checked-in `api/openapi.json` must be what the types generate: a change to the contract
//! shows up in review as a change to that file. Regenerate it with
//! `UPDATE_OPENAPI=1 cargo test -p api --test openapi`.

use std::path::PathBuf;

fn checked_in() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi.json")
}

#[test]
fn checked_in_openapi_document_is_current() {
    let generated = api::openapi::json();
    let path = checked_in();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write api/openapi.json");
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == generated,
        "api/openapi.json is stale (or missing): the API types changed.\n\
         Regenerate it with: UPDATE_OPENAPI=1 cargo test -p api --test openapi\n\
         and commit the result."
    );
}

#[test]
fn document_is_openapi_3_with_bearer_security() {
    let doc: serde_json::Value = serde_json::from_str(&api::openapi::json()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // Liveness, metrics and the document itself need no token; everything else does.
    for open in ["/v1/health", "/v1/openapi.json", "/metrics"] {
        assert_eq!(
            doc["paths"][open]["get"]["security"],
            serde_json::json!([{}]),
            "{open}"
        );
    }
    assert_eq!(doc["security"], serde_json::json!([{"bearer": []}]));
}
