//! The served OpenAPI document (issue #6): `GET /v1/openapi.json` needs no token, equals the
//! checked-in `api/openapi.json`, passes an independent validator (Python
//! openapi-spec-validator, installed by `.ci/run`), and lists every route of the client API.

mod common;

use std::process::Command;

use common::Harness;

fn checked_in() -> String {
    std::fs::read_to_string(format!("{}/api/openapi.json", env!("CARGO_MANIFEST_DIR")))
        .expect("api/openapi.json (regenerate: UPDATE_OPENAPI=1 cargo test -p api --test openapi)")
}

#[test]
fn served_document_equals_the_checked_in_copy_and_validates() {
    let h = Harness::start(2);
    let url = format!("{}/v1/openapi.json", h.cluster.client_url(1));
    let (status, ctype, body) = h.rt.block_on(async {
        let resp = reqwest::get(&url).await.unwrap();
        let ctype = resp.headers()["content-type"].to_str().unwrap().to_string();
        (resp.status(), ctype, resp.text().await.unwrap())
    });
    assert_eq!(status, 200);
    assert!(ctype.starts_with("application/json"), "{ctype}");
    assert_eq!(
        body,
        checked_in(),
        "served document differs from api/openapi.json: \
         UPDATE_OPENAPI=1 cargo test -p api --test openapi"
    );

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &body).unwrap();
    let script = format!(
        "{}/tests/interop/validate_openapi.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = Command::new("python3")
        .arg(&script)
        .arg(file.path())
        .output()
        .expect("python3 must be installed (see .ci/run)");
    assert!(
        out.status.success(),
        "openapi-spec-validator rejected the document (install tests/interop/requirements.txt):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every `.route(path, web::method()...)` of the client API in `src/http/mod.rs` is in the
/// document with that method, so a new endpoint cannot ship undocumented.
#[test]
fn every_client_route_is_documented() {
    let source =
        std::fs::read_to_string(format!("{}/src/http/mod.rs", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let client_routes = &source
        [source.find("pub fn client_routes").unwrap()..source.find("pub fn peer_routes").unwrap()];
    let doc: serde_json::Value = serde_json::from_str(&checked_in()).unwrap();
    let mut seen = 0;
    for line in client_routes.lines().filter(|l| l.contains(".route(\"")) {
        let path = line.split('"').nth(1).unwrap();
        let method = line
            .split("web::")
            .nth(1)
            .and_then(|m| m.split('(').next())
            .unwrap();
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is served but not in api/openapi.json"
        );
        seen += 1;
    }
    assert!(
        seen >= 11,
        "found only {seen} routes: did the source layout change?"
    );
}
