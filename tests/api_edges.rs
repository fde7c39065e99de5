//! The API's edges: query strings that do not parse get the JSON error body, cursors do not
//! overflow, and key listings page through the store one page at a time.

mod common;

use api::Algorithm;
use common::Harness;
use keyquorum::store::Store;

fn get(h: &Harness, path: &str) -> (u16, String, String) {
    let url = format!("{}{path}", h.cluster.client_url(1));
    let answer = reqwest::blocking::Client::new()
        .get(url)
        .bearer_auth(&h.cluster.files.token)
        .send()
        .unwrap();
    let status = answer.status().as_u16();
    let content_type = answer
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, answer.text().unwrap())
}

#[test]
fn bad_query_strings_get_the_json_error_body_and_cursors_do_not_wrap() {
    let h = Harness::start(2);
    for path in [
        "/v1/audit?after=abc",
        "/v1/audit?limit=-3",
        "/v1/audit?after=18446744073709551616",
        "/v1/keys?limit=many",
    ] {
        let (status, content_type, body) = get(&h, path);
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(content_type, "application/json", "{path}");
        let error: api::ErrorBody = serde_json::from_str(&body).unwrap();
        assert_eq!(error.error, "invalid_request", "{path}");
        assert!(error.message.contains("query"), "{path}: {}", error.message);
    }
    // The last possible cursor has nothing after it (it used to wrap to the start).
    let (status, _, body) = get(&h, "/v1/audit?after=18446744073709551615");
    assert_eq!(status, 200);
    let page: api::AuditPage = serde_json::from_str(&body).unwrap();
    assert!(page.entries.is_empty() && page.next_after.is_none());
}

#[test]
fn a_key_listing_pages_through_thousands_of_keys() {
    let mut h = Harness::start(2);
    h.create(1, "seed", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    // Thousands of keys' public records written straight into node 1's store (a DKG each
    // would take minutes): copies of the real one under other names.
    let config = h.cluster.config(1).unwrap();
    h.cluster.stop(1);
    {
        let store = Store::open(&config.data_dir, &config.passphrase().unwrap()).unwrap();
        let seed = store.record("seed").unwrap().unwrap();
        for i in 0..2500 {
            let mut record = seed.clone();
            record.name = format!("key-{i:05}");
            record.participants = vec![2];
            store.put_public(&record, &Default::default()).unwrap();
        }
    }
    h.cluster.start(1).unwrap();
    let client = h.client(1);
    let mut names = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page =
            h.rt.block_on(client.list_keys_page(after.as_deref(), 1000))
                .unwrap();
        assert!(page.keys.len() <= 1000);
        pages += 1;
        names.extend(page.keys.into_iter().map(|k| k.name));
        match page.next {
            Some(next) => {
                assert_eq!(Some(&next), names.last());
                after = Some(next);
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 2501);
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, names, "in name order, each once");
    // A page from the middle, and the whole listing through the client.
    let middle =
        h.rt.block_on(client.list_keys_page(Some("key-01233"), 2))
            .unwrap();
    let middle: Vec<String> = middle.keys.into_iter().map(|k| k.name).collect();
    assert_eq!(middle, ["key-01234", "key-01235"]);
    assert_eq!(h.rt.block_on(client.list_keys()).unwrap().keys.len(), 2501);
}
