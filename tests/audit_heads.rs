//! Signed audit trails, witnessed by the peers (DESIGN.md §11): every entry carries its node's
//! signature over (seq, hash); nodes record each other's signed heads, so a trail truncated on
//! disk is noticed by the peers and by `keyquorum audit verify --peers`, and an edited entry
//! fails its signature even when the chain is rehashed.

mod common;

use std::path::Path;
use std::time::Duration;

use api::{Algorithm, AuditEntry};
use common::{eventually, Harness};

fn verify(config: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyquorum"))
        .args(["audit", "verify", "--config", config.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn audit_tree(config: &Path) -> (sled::Db, sled::Tree) {
    let data = keyquorum::config::NodeConfig::load(config)
        .unwrap()
        .data_dir;
    // A node stopped a moment ago: its lock goes when sled's threads let go.
    let db = keyquorum::store::open_db(&data, 1 << 20).unwrap();
    let tree = db.open_tree("audit").unwrap();
    (db, tree)
}

#[test]
fn a_truncated_trail_is_noticed_by_its_peers_and_an_edited_entry_by_its_signature() {
    let mut h = Harness::start(3);
    h.create(1, "sig", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    for i in 0..3 {
        h.rt.block_on(h.client(2).sign("sig", format!("m{i}").as_bytes()))
            .unwrap();
    }
    // Every entry is signed.
    let page = h.rt.block_on(h.client(2).audit(None, 1000)).unwrap();
    assert!(page.entries.iter().all(|e| e.signature.len() == 128));
    // Node 1 records node 2's current head (the periodic exchange).
    let own = h.rt.block_on(h.client(2).audit_heads()).unwrap().own;
    assert_eq!(own.node, 2);
    assert_eq!(own.seq, page.entries.last().unwrap().seq);
    eventually("node 1 records node 2's head", || {
        let heads = h.rt.block_on(h.client(1).audit_heads()).unwrap();
        heads
            .peers
            .iter()
            .find(|r| r.head.node == 2 && r.head.seq >= own.seq)
            .map(|_| ())
    });

    // Truncate node 2's trail while it is stopped: its last two entries go.
    let config2 = h.cluster.files.configs[&2].clone();
    h.cluster.stop(2);
    {
        let (db, tree) = audit_tree(&config2);
        for seq in [own.seq, own.seq - 1] {
            assert!(tree.remove(seq.to_be_bytes()).unwrap().is_some());
        }
        db.flush().unwrap();
    }
    // The chain alone is intact ...
    let (code, out) = verify(&config2, &[]);
    assert_eq!(code, Some(0), "{out}");
    // ... but not what the peers recorded.
    let token = h.cluster.files.dir.join("admin.token");
    std::fs::write(&token, &h.cluster.files.token).unwrap();
    let (code, out) = verify(
        &config2,
        &["--peers", "--token-file", token.to_str().unwrap()],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("BROKEN") && out.contains("truncated"), "{out}");

    // Restarted, node 2 shows its peers an older head: they report the rollback.
    h.cluster.start(2).unwrap();
    let conflict = eventually("node 1 reports node 2's rollback", || {
        let heads = h.rt.block_on(h.client(1).audit_heads()).unwrap();
        heads
            .peers
            .into_iter()
            .find(|r| r.head.node == 2)
            .and_then(|r| r.conflict)
    });
    assert_eq!(conflict.kind, "rollback");
    assert_eq!(conflict.recorded.seq, own.seq);
    assert_eq!(conflict.seen.seq, own.seq - 2);
    let trail = h.rt.block_on(h.client(1).audit(None, 1000)).unwrap();
    let entry = trail
        .entries
        .iter()
        .find(|e| e.action == "audit.peer_conflict")
        .expect("an audit entry of the conflict");
    assert_eq!(entry.culprits, vec![2]);
    assert_eq!(entry.details["kind"], "rollback");
    let metrics = reqwest::blocking::get(format!("{}/metrics", h.cluster.client_url(1)))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("keyquorum_audit_trail_conflicts_total{node=\"2\",kind=\"rollback\"} 1"),
        "{metrics}"
    );

    // An entry edited on disk, the chain rehashed after it, fails its signature. Node 3 may not
    // have signed (two signers suffice), but it audited the key's activation: its first entry.
    eventually("node 3 audits the key's activation", || {
        let page = h.rt.block_on(h.client(3).audit(None, 10)).unwrap();
        (!page.entries.is_empty()).then_some(())
    });
    let config3 = h.cluster.files.configs[&3].clone();
    h.cluster.stop(3);
    {
        let (db, tree) = audit_tree(&config3);
        // The first entry links to genesis; each later one to its predecessor.
        let mut prev: Option<String> = Some("0".repeat(64));
        for item in tree.iter() {
            let (key, json) = item.unwrap();
            let mut e: AuditEntry = serde_json::from_slice(&json).unwrap();
            if e.seq == 1 {
                e.client = Some("someone-else".into());
            }
            if let Some(p) = &prev {
                e.prev_hash = p.clone();
            }
            e.hash = keyquorum::audit::entry_hash(&e);
            prev = Some(e.hash.clone());
            tree.insert(key, serde_json::to_vec(&e).unwrap()).unwrap();
        }
        db.flush().unwrap();
    }
    let (code, out) = verify(&config3, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("BROKEN: entry 1: signature"), "{out}");
}

#[test]
fn a_trail_rewritten_past_the_recorded_head_is_a_fork() {
    let mut h = Harness::start(3);
    h.create(1, "sig", Algorithm::FrostEd25519, 2, None)
        .unwrap();
    h.rt.block_on(h.client(2).sign("sig", b"m")).unwrap();
    let own = h.rt.block_on(h.client(2).audit_heads()).unwrap().own;
    eventually("node 1 records node 2's head", || {
        let heads = h.rt.block_on(h.client(1).audit_heads()).unwrap();
        heads
            .peers
            .iter()
            .find(|r| r.head.node == 2 && r.head.seq >= own.seq)
            .map(|_| ())
    });
    // With node 2 stopped, someone holding its disk and identity drops its last two entries
    // and writes three others: the new trail is longer, signed, and consistent in itself.
    let config2 = h.cluster.files.configs[&2].clone();
    h.cluster.stop(2);
    {
        let config = keyquorum::config::NodeConfig::load(&config2).unwrap();
        let db = keyquorum::store::open_db(&config.data_dir, 1 << 20).unwrap();
        let tree = db.open_tree("audit").unwrap();
        for seq in [own.seq, own.seq - 1] {
            assert!(tree.remove(seq.to_be_bytes()).unwrap().is_some());
        }
        let identity = keyquorum::identity::Identity::load(&config.identity_file).unwrap();
        let trees = keyquorum::audit::Trees {
            entries: tree,
            peer_heads: db.open_tree("audit_heads").unwrap(),
            meta: db.open_tree("audit_meta").unwrap(),
        };
        let audit = keyquorum::audit::Audit::open(trees, identity, &config.audit).unwrap();
        for _ in 0..3 {
            audit
                .append(keyquorum::audit::Record {
                    action: "seal",
                    role: "coordinator",
                    outcome: "ok",
                    ..Default::default()
                })
                .unwrap();
        }
        assert_eq!(audit.head().seq, own.seq + 1);
        db.flush().unwrap();
    }
    let (code, out) = verify(&config2, &[]);
    assert_eq!(code, Some(0), "{out}");
    h.cluster.start(2).unwrap();
    let conflict = eventually("node 1 reports node 2's fork", || {
        let heads = h.rt.block_on(h.client(1).audit_heads()).unwrap();
        heads
            .peers
            .into_iter()
            .find(|r| r.head.node == 2)
            .and_then(|r| r.conflict)
    });
    assert_eq!(conflict.kind, "fork");
    assert_eq!(conflict.recorded, own);
    assert_eq!(conflict.seen.seq, own.seq);
    assert_ne!(conflict.seen.hash, own.hash);
}

/// Two answers of node 2 that cross on the wire (its later head arrives first) are no evidence
/// against it: node 1 keeps the later head recorded, asks node 2 for that entry, finds it, and
/// names nobody.
#[test]
fn heads_that_cross_on_the_wire_accuse_nobody() {
    use keyquorum::peer::{PeerRequest, PeerResponse};
    let h = Harness::start(3);
    let node2 = h.cluster.node(2).unwrap();
    for name in ["k1", "k2"] {
        h.create(1, name, Algorithm::FrostEd25519, 2, None).unwrap();
    }
    let later = eventually("node 2 audits both creations", || {
        let head = node2.audit.head();
        (head.seq >= 2).then_some(head)
    });
    let earlier = node2.audit.head_at(later.seq - 1).unwrap().unwrap();
    // Node 1's wire, to see it ask node 2 for the entry it recorded.
    let tap = std::sync::Arc::new(parking_lot::Mutex::new(Vec::<Vec<u8>>::new()));
    h.cluster.node(1).unwrap().faults.write().tap = Some(tap.clone());
    for head in [later.clone(), earlier] {
        let answer =
            h.rt.block_on(keyquorum::transport::call(
                &node2,
                1,
                &keyquorum::random_id(),
                &PeerRequest::AuditHead { head },
                None,
            ))
            .unwrap();
        assert!(
            matches!(answer, PeerResponse::AuditHead { .. }),
            "{answer:?}"
        );
    }
    // Node 1's check runs in the background: the tap holds its question once the answer is in,
    // and the comparison that follows is a few lines of code.
    eventually("node 1 asks node 2 for the recorded entry", || {
        let bodies = tap.lock();
        bodies
            .iter()
            .any(|b| String::from_utf8_lossy(b).contains("\"kind\":\"audit.head_at\""))
            .then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    let heads = h.rt.block_on(h.client(1).audit_heads()).unwrap();
    let recorded = heads.peers.iter().find(|r| r.head.node == 2).unwrap();
    assert!(recorded.head.seq >= later.seq);
    assert_eq!(recorded.conflict, None);
    let trail = h.rt.block_on(h.client(1).audit(None, 1000)).unwrap();
    assert!(trail
        .entries
        .iter()
        .all(|e| e.action != "audit.peer_conflict"));
}
