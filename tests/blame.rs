//! Evidence-based blame in key ceremonies (DESIGN.md §11): a node is named only on proof it
//! signed, or together with its accuser when nothing can be checked; never by a count of
//! accusers.

mod common;

use api::Algorithm;
use common::{culprit_ids, Harness};
use keyquorum::peer::PeerErrorCode;

fn failed_ceremony(
    h: &Harness,
    set: impl Fn(&mut keyquorum::node::Faults),
    liar: u16,
    algorithm: Algorithm,
) -> (u16, api::ErrorBody) {
    set(&mut h.cluster.node(liar).unwrap().faults.write());
    let outcome = Harness::expect_api_error(h.create(1, "victim", algorithm, 2, None));
    *h.cluster.node(liar).unwrap().faults.write() = Default::default();
    for id in h.cluster.ids() {
        let keys = h.rt.block_on(h.client(id).list_keys()).unwrap().keys;
        assert!(keys.is_empty(), "node {id} kept a half key");
    }
    outcome
}

/// Node 4 quotes node 2's round-1 message wrongly to nodes 1 and 3: with bare digests the
/// honest majority would accuse node 2 of equivocation. The quote carries node 2's signature,
/// which does not cover the misquoted digest, so node 4 is named by its own signed echo.
#[test]
fn an_echoer_that_misquotes_a_node_is_named_and_the_node_is_not() {
    let h = Harness::start(4);
    for algorithm in [Algorithm::FrostEd25519, Algorithm::EciesSecp256k1] {
        let (status, body) = failed_ceremony(&h, |f| f.frame_in_echo = Some(2), 4, algorithm);
        assert_eq!(status, 502, "{body:?}");
        assert_eq!(culprit_ids(&body), vec![4], "{body:?}");
    }
    h.create(1, "after", Algorithm::FrostEd25519, 2, None)
        .unwrap();
}

/// A bare complaint about node 2's share cannot be checked: accuser and accused are both
/// named, and the reason says so.
#[test]
fn a_complaint_without_evidence_names_accuser_and_accused() {
    let h = Harness::start(3);
    let (status, body) = failed_ceremony(
        &h,
        |f| f.false_complaint_against = Some(2),
        3,
        Algorithm::FrostSecp256k1,
    );
    assert_eq!(status, 502, "{body:?}");
    assert_eq!(culprit_ids(&body), vec![2, 3], "{body:?}");
    assert!(
        body.culprits
            .iter()
            .all(|c| c.reason.contains("both named")),
        "{body:?}"
    );
}

/// A complaint that reveals the key of node 2's sealed share is checked (GJKR): the share
/// matches node 2's signed commitment, so the accuser alone is named.
#[test]
fn a_checkable_false_complaint_names_the_accuser_alone() {
    let h = Harness::start(3);
    for algorithm in [Algorithm::HpkeX25519, Algorithm::FrostSecp256k1] {
        let (status, body) = failed_ceremony(
            &h,
            |f| f.false_share_complaint_against = Some(2),
            3,
            algorithm,
        );
        assert_eq!(status, 502, "{body:?}");
        assert_eq!(culprit_ids(&body), vec![3], "{body:?}");
    }
}

/// A participant that aborts a ceremony with a refusal naming nobody is named itself; the
/// answer keeps the refusal's status.
#[test]
fn a_refusal_without_a_culprit_names_the_node_that_refused() {
    let h = Harness::start(3);
    for (code, status) in [
        (PeerErrorCode::Invalid, 400),
        (PeerErrorCode::Conflict, 409),
    ] {
        let (got, body) = failed_ceremony(
            &h,
            |f| f.refuse = Some(("dkg.round1", code)),
            3,
            Algorithm::FrostEd25519,
        );
        assert_eq!(got, status, "{body:?}");
        assert_eq!(culprit_ids(&body), vec![3], "{body:?}");
    }
}

/// Members whose signed confirmations report another key than the signed round-1 messages
/// make are named on that evidence — even two of three agreeing on the same false key, which
/// a count of who agrees with whom would have turned against the honest node.
#[test]
fn members_that_confirm_another_key_are_named_even_as_a_majority() {
    let h = Harness::start(3);
    let lie = |node: u16, on: bool| {
        h.cluster
            .node(node)
            .unwrap()
            .faults
            .write()
            .confirm_other_key = on;
    };
    lie(2, true);
    lie(3, true);
    let (status, body) =
        Harness::expect_api_error(h.create(1, "majority", Algorithm::FrostEd25519, 2, None));
    assert_eq!(status, 502, "{}", body.message);
    assert_eq!(culprit_ids(&body), vec![2, 3], "{}", body.message);
    lie(3, false);
    let (status, body) =
        Harness::expect_api_error(h.create(1, "single", Algorithm::FrostSecp256k1, 2, None));
    assert_eq!(status, 502, "{}", body.message);
    assert_eq!(culprit_ids(&body), vec![2], "{}", body.message);
    // Nothing of either ceremony is left anywhere, and honest nodes create the key.
    lie(2, false);
    h.create(1, "majority", Algorithm::FrostEd25519, 2, None)
        .unwrap();
}
