//! A property of the whole HTTP API, checked on generated requests: whatever a client sends —
//! to any path and method the OpenAPI document lists, with any path parameter, query string,
//! body and credentials — the answer is never a 5xx other than the documented 502, 503 and 504,
//! and every error is the documented JSON body.
//!
//! `KEYQUORUM_API_CASES` sets the number of generated requests (default 300).

mod common;

use api::{Algorithm, ClientKey};
use common::Harness;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Every (method, path template) the OpenAPI document lists, but sealing, which would only
/// make the rest of the run answer 503.
fn operations() -> Vec<(String, String)> {
    let doc: serde_json::Value = serde_json::from_str(&api::openapi::json()).unwrap();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "delete"] {
            if item.get(method).is_some() && path != "/v1/sys/seal" {
                ops.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    assert!(
        ops.len() > 15,
        "the document lists {} operations",
        ops.len()
    );
    ops
}

/// Field names the API uses, so generated objects reach past the first parse error.
const FIELDS: &[&str] = &[
    "name",
    "algorithm",
    "threshold",
    "participants",
    "policy",
    "message",
    "batch",
    "ciphertexts",
    "plaintexts",
    "plaintext",
    "enc",
    "ciphertext",
    "aad",
    "info",
    "aead",
    "signature",
    "node",
    "helpers",
    "dealers",
    "roles",
    "public_key",
    "passphrase",
    "sign",
    "decrypt",
    "manage",
    "read",
    "approvals",
    "reply_to",
];

const WORDS: &[&str] = &[
    "",
    "frost-ed25519",
    "hpke-x25519",
    "ecies-secp256k1",
    "frost-secp256k1",
    "admin",
    "sig",
    "dec",
    "AAAA",
    "aGVsbG8=",
    "00",
    "ff",
    "*",
    "../..",
    "\u{0}",
    "é",
    "-1",
];

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u16>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(WORDS).prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(FIELDS), inner), 0..6).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

#[derive(Debug, Clone)]
enum Body {
    None,
    Json(serde_json::Value),
    Bytes(Vec<u8>),
}

#[derive(Debug, Clone, Copy)]
enum Credentials {
    None,
    Token,
    Signed,
    Garbage,
}

fn request() -> impl Strategy<Value = (usize, String, String, Body, Credentials)> {
    let param = prop_oneof![
        prop::sample::select(vec!["sig", "dec", "admin", "nope"]).prop_map(str::to_string),
        "[a-zA-Z0-9._~-]{0,70}",
        Just("%2e%2e%2f".to_string()),
        Just("x%00y".to_string()),
    ];
    let query = prop::sample::select(vec![
        "",
        "?after=abc",
        "?after=18446744073709551615",
        "?after=99999999999999999999",
        "?limit=0",
        "?limit=-3",
        "?limit=100000",
        "?after=&limit=",
        "?x=%ZZ",
    ])
    .prop_map(str::to_string);
    let body = prop_oneof![
        Just(Body::None),
        json_value().prop_map(Body::Json),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Body::Bytes),
    ];
    let credentials = prop::sample::select(vec![
        Credentials::None,
        Credentials::Token,
        Credentials::Signed,
        Credentials::Signed,
        Credentials::Garbage,
    ]);
    (0..1000usize, param, query, body, credentials)
}

#[test]
fn no_generated_request_gets_an_undocumented_5xx_or_a_non_json_error() {
    // Bad requests from one source are throttled after a burst (429, also JSON); a large
    // burst keeps every generated request reaching the handlers.
    let h = Harness::start_with(3, |c| {
        c.auth.rejected_burst = 1_000_000;
        c.auth.rejected_per_second = 1_000_000;
    });
    h.create(1, "sig", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    h.create(1, "dec", Algorithm::HpkeX25519, 2, None).unwrap();
    let ops = operations();
    let base = h.cluster.client_url(1);
    let token = h.cluster.files.token.clone();
    let admin: ClientKey = h.cluster.admin_key().clone();
    let http = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap();
    let cases: u32 = std::env::var("KEYQUORUM_API_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&request(), |(op, param, query, body, credentials)| {
            let (method, template) = &ops[op % ops.len()];
            let path = template.replace("{name}", &param);
            let bytes = match &body {
                Body::None => Vec::new(),
                Body::Json(v) => serde_json::to_vec(v).unwrap(),
                Body::Bytes(b) => b.clone(),
            };
            let method_value = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let mut req = http.request(method_value, format!("{base}{path}{query}"));
            if !matches!(body, Body::None) {
                req = req
                    .header("content-type", "application/json")
                    .body(bytes.clone());
            }
            req = match credentials {
                Credentials::None => req,
                Credentials::Token => req.bearer_auth(&token),
                Credentials::Signed => {
                    let sig = admin.sign_request(Some(1), method, &path, &bytes);
                    req.header("authorization", sig.to_header())
                }
                Credentials::Garbage => req.header(
                    "authorization",
                    "KQ-Ed25519 client=nobody,node=1,ts=1,nonce=aaaaaaaaaaaaaaaa,sig=00,sig=11",
                ),
            };
            let answer = match req.send() {
                Ok(a) => a,
                // A request reqwest itself refuses to send (an invalid header) tests nothing.
                Err(e) if e.is_builder() => return Ok(()),
                Err(e) => return Err(TestCaseError::fail(format!("{method} {path}: {e}"))),
            };
            let status = answer.status().as_u16();
            let json_type = answer
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            let text = answer.text().unwrap_or_default();
            let what =
                format!("{method} {path}{query} ({credentials:?}) answered {status}: {text}");
            prop_assert!(
                status < 500 || matches!(status, 502..=504),
                "undocumented server error: {}",
                what
            );
            if status >= 400 {
                prop_assert!(json_type, "non-JSON error: {}", what);
                let parsed: Result<api::ErrorBody, _> = serde_json::from_str(&text);
                prop_assert!(parsed.is_ok(), "not the error body: {}", what);
            }
            Ok(())
        })
        .unwrap();
}
