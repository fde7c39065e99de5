//! `keyquorum demo`: a local 3-node cluster on loopback in a temporary directory that shows
//! the whole product once: two key ceremonies, a signed dataset manifest checked by an
//! independent verifier, sealed face/plate detections decrypted by a quorum, and signing with a
//! node down, then a refresh of the signing shares under the same public key. Exits 0 only if
//! every step checked out.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{ensure, Context};
use api::{Algorithm, CreateKeyRequest, OperationStats};
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::json;

use crate::cluster::LocalCluster;

struct Row {
    operation: String,
    stats: OperationStats,
}

fn print_summary(rows: &[Row]) {
    println!();
    println!(
        "  {:<44} {:>6} {:>8} {:>11} {:>10}",
        "operation", "rounds", "requests", "peer bytes", "time (ms)"
    );
    println!("  {}", "-".repeat(83));
    for r in rows {
        let s = &r.stats;
        println!(
            "  {:<44} {:>6} {:>8} {:>11} {:>10.1}",
            r.operation, s.rounds, s.peer_requests, s.peer_bytes, s.elapsed_ms
        );
    }
}

fn detections() -> Vec<serde_json::Value> {
    (0..4)
        .map(|i| {
            json!({
                "video": "city-walk-2026-11-24.mp4",
                "frame": 1200 + i * 25,
                "faces": [{"box": [412 + i * 3, 188, 64, 72], "crop_sha256": format!("{:064x}", 0xfa11 + i)}],
                "plates": [{"box": [90, 640 + i, 120, 32], "text": format!("B-KQ {}", 4711 + i)}],
            })
        })
        .collect()
}

pub fn run(keep: bool) -> anyhow::Result<ExitCode> {
    let dir = tempfile::Builder::new()
        .prefix("keyquorum-demo-")
        .tempdir()?;
    let cluster_dir = dir.path().join("cluster");
    let mut cluster = LocalCluster::create(&cluster_dir, 3)?;
    cluster.start_all()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let mut rows = Vec::new();
    println!(
        "keyquorum demo: 3 nodes on loopback, stores in {}",
        cluster_dir.display()
    );
    for id in cluster.ids() {
        println!("  node {id}: {}", cluster.client_url(id));
    }

    // 1. Two key ceremonies, coordinated by different nodes; no dealer, no key in one place.
    let signing = rt.block_on(cluster.client(1).create_key(&CreateKeyRequest {
        name: "dataset-manifests".into(),
        algorithm: Algorithm::FrostEd25519,
        threshold: 2,
        participants: None,
        policy: None,
    }))?;
    let decrypting = rt.block_on(cluster.client(2).create_key(&CreateKeyRequest {
        name: "reidentification".into(),
        algorithm: Algorithm::HpkeX25519,
        threshold: 2,
        participants: None,
        policy: None,
    }))?;
    println!("\n1. key ceremonies (DKG, 2-of-3)");
    for key in [&signing, &decrypting] {
        println!(
            "   {:<18} {:<14} public key {}",
            key.name,
            key.algorithm.as_str(),
            key.public_key
        );
        if let Some(c) = &key.ceremony {
            rows.push(Row {
                operation: format!("DKG {} ({})", key.name, key.algorithm.as_str()),
                stats: c.clone(),
            });
        }
    }

    // 2. Sign the anonymised dataset's manifest; check it with ed25519-dalek, not our code.
    let manifest = json!({
        "dataset": "city-walk-2026-11-24",
        "anonymiser": "blur-v3",
        "files": [
            {"path": "city-walk-2026-11-24.mp4", "sha256": format!("{:064x}", 0xc0ffee)},
            {"path": "detections.sealed.ndjson", "sha256": format!("{:064x}", 0xbeef)},
        ],
    })
    .to_string();
    let signed = rt.block_on(
        cluster
            .client(1)
            .sign("dataset-manifests", manifest.as_bytes()),
    )?;
    let vk = VerifyingKey::from_bytes(
        &hex::decode(&signing.public_key)?
            .try_into()
            .map_err(|_| anyhow::anyhow!("bad key"))?,
    )?;
    let sig = Signature::from_slice(&hex::decode(&signed.signature)?)?;
    vk.verify_strict(manifest.as_bytes(), &sig)
        .context("ed25519-dalek rejected the threshold signature")?;
    let tampered = manifest.replace("blur-v3", "none");
    ensure!(
        vk.verify_strict(tampered.as_bytes(), &sig).is_err(),
        "a tampered manifest verified"
    );
    println!("\n2. manifest signed by nodes {:?}; ed25519-dalek verify_strict: valid; tampered manifest: rejected", signed.signers);
    rows.push(Row {
        operation: "sign manifest (FROST, 2 of 3)".into(),
        stats: signed.stats.unwrap_or(zero()),
    });

    // 3. Seal face/plate detections offline with the public key, bound to video and frame, and
    //    decrypt them with a quorum.
    let records = detections();
    let public_key = hex::decode(&decrypting.public_key)?;
    let sealed = records
        .iter()
        .map(|r| {
            crate::records::seal(
                Algorithm::HpkeX25519,
                &public_key,
                r,
                keyshares::decrypt::HpkeAead::Aes128Gcm,
            )
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let client = cluster.client(3);
    let request = api::DecryptRequest {
        ciphertexts: sealed.iter().map(crate::records::ciphertext_item).collect(),
        ..Default::default()
    };
    let answer = rt.block_on(client.decrypt("reidentification", &request))?;
    for ((want, record), result) in records.iter().zip(&sealed).zip(&answer.results) {
        let plaintext = result
            .plaintext
            .as_deref()
            .with_context(|| format!("record not decrypted: {:?}", result.error))?;
        let got = crate::records::open(record, plaintext).map_err(anyhow::Error::msg)?;
        ensure!(&got == want, "record did not round-trip: {got}");
    }
    // A record moved to another frame no longer opens.
    let mut moved = sealed[0].clone();
    moved.frame += 1;
    let moved_result = rt.block_on(crate::records::decrypt_all(
        &client,
        "reidentification",
        &[moved],
        500,
        &[],
        false,
        |_| {},
    ))?;
    ensure!(
        moved_result[0].is_err(),
        "a record moved to another frame decrypted"
    );
    println!(
        "\n3. {} face/plate detection records sealed offline (HPKE, RFC 9180) and decrypted by nodes {:?}; a record moved to another frame: refused",
        records.len(),
        answer.contributors
    );
    rows.push(Row {
        operation: format!("threshold-decrypt {} records", records.len()),
        stats: answer.stats.unwrap_or(zero()),
    });

    // 4. One node down: any 2 of 3 still sign.
    cluster.stop(3);
    let again = rt.block_on(
        cluster
            .client(1)
            .sign("dataset-manifests", manifest.as_bytes()),
    )?;
    vk.verify_strict(
        manifest.as_bytes(),
        &Signature::from_slice(&hex::decode(&again.signature)?)?,
    )?;
    println!(
        "\n4. node 3 stopped: signed again by nodes {:?}, signature valid",
        again.signers
    );
    rows.push(Row {
        operation: "sign with node 3 down".into(),
        stats: again.stats.unwrap_or(zero()),
    });

    // 5. Rotate the shares without changing the public key: a stolen old share becomes useless.
    cluster.start(3)?;
    let refreshed = rt.block_on(cluster.client(2).refresh_key("dataset-manifests"))?;
    ensure!(
        refreshed.public_key == signing.public_key,
        "the refresh changed the public key"
    );
    let after = rt.block_on(
        cluster
            .client(3)
            .sign("dataset-manifests", manifest.as_bytes()),
    )?;
    vk.verify_strict(
        manifest.as_bytes(),
        &Signature::from_slice(&hex::decode(&after.signature)?)?,
    )?;
    println!(
        "\n5. node 3 back; shares refreshed (generation {}), same public key; signed by nodes {:?}, signature valid",
        refreshed.generation, after.signers
    );
    if let Some(c) = refreshed.ceremony {
        rows.push(Row {
            operation: "refresh dataset-manifests".into(),
            stats: c,
        });
    }

    print_summary(&rows);
    println!(
        "\nall steps checked out in {:.2} s",
        started.elapsed().as_secs_f64()
    );

    if keep {
        println!("\nthe cluster keeps running (Ctrl-C stops it). Talk to it with:");
        println!(
            "  export KEYQUORUM_URL={} KEYQUORUM_TOKEN_FILE={} KEYQUORUM_CLIENT_KEY={}",
            cluster.client_url(1),
            cluster_dir.join("admin.token").display(),
            cluster_dir.join("admin.key").display()
        );
        println!("  keyquorum status");
        println!("  keyquorum keys list");
        println!("  keyquorum audit list");
        println!("  keyquorum sign --key dataset-manifests --message hello");
        println!("  echo '{{\"video\":\"v\",\"frame\":1,\"plates\":[\"X\"]}}' | keyquorum encrypt --key reidentification | keyquorum decrypt --key reidentification");
        rt.block_on(tokio::signal::ctrl_c())?;
    }
    cluster.stop_all();
    println!("cluster stopped");
    Ok(ExitCode::SUCCESS)
}

fn zero() -> OperationStats {
    OperationStats {
        rounds: 0,
        peer_requests: 0,
        peer_bytes: 0,
        elapsed_ms: 0.0,
        nodes: Vec::new(),
    }
}
