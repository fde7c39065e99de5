//! Deployment files (issue #6), checked without Docker or Kubernetes: the YAML parses and has
//! the promised shape (PyYAML, installed by `.ci/run`), and the Dockerfile keeps its
//! properties.

use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn deployment_yaml_parses_and_has_the_promised_shape() {
    let out = Command::new("python3")
        .arg(format!("{ROOT}/tests/interop/check_deploy.py"))
        .arg(format!("{ROOT}/deploy"))
        .output()
        .expect("python3 must be installed (see .ci/run)");
    assert!(
        out.status.success(),
        "deploy/ check failed (install tests/interop/requirements.txt):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn dockerfile_is_multi_stage_non_root_with_healthcheck_and_volume() {
    let text = std::fs::read_to_string(format!("{ROOT}/Dockerfile")).unwrap();
    let instructions: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    let count = |prefix: &str| {
        instructions
            .iter()
            .filter(|l| l.starts_with(prefix))
            .count()
    };
    assert!(count("FROM ") >= 2, "multi-stage build");
    let user = instructions
        .iter()
        .rev()
        .find(|l| l.starts_with("USER "))
        .expect("a USER");
    assert!(!user.contains("root") && !user.ends_with(" 0"), "{user}");
    assert_eq!(count("HEALTHCHECK "), 1);
    assert_eq!(count("VOLUME "), 1);
    // The health check is the binary itself, whose subcommand must exist.
    assert!(text.contains("\"keyquorum\", \"health\""));
}
