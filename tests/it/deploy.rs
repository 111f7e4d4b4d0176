//! The deployment files: the Kubernetes manifests have the settings the
//! README promises (there is no cluster here to apply them to), and the
//! Slurm script is valid bash (`slurm.rs` runs it on a real cluster).

use std::process::Command;

use serde_yaml::Value;

use crate::common::*;

fn yaml(name: &str) -> Value {
    let path = root().join("deploy/kubernetes").join(name);
    serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn exit_rule<'a>(spec: &'a Value, action: &str) -> Option<&'a Value> {
    spec["podFailurePolicy"]["rules"]
        .as_sequence()?
        .iter()
        .find(|r| r["action"] == action)
}

#[test]
fn the_kubernetes_jobs_stop_gracefully_fail_fast_and_merge_once() {
    let render = yaml("letterpress-job.yaml");
    let spec = &render["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["completions"], spec["parallelism"]);
    assert!(spec["backoffLimitPerIndex"].as_u64().unwrap() >= 1);
    let fail = exit_rule(spec, "FailIndex").expect("a rule for exit 2");
    assert_eq!(fail["onExitCodes"]["values"][0], 2);
    assert_eq!(fail["onExitCodes"]["containerName"], "render");
    let ignore = exit_rule(spec, "Ignore").expect("evictions do not count");
    assert_eq!(ignore["onPodConditions"][0]["type"], "DisruptionTarget");
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never", "podFailurePolicy needs it");
    // The graceful stop: at most 5 s for a record in hand, then the sync.
    assert!(pod["terminationGracePeriodSeconds"].as_u64().unwrap() >= 15);
    let container = &pod["containers"][0];
    let env: Vec<&str> = container["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    for name in [
        "RUN",
        "DATA",
        "LAYOUT",
        "AS_OF",
        "LETTERPRESS_HOSTNAME",
        "SHARDS",
    ] {
        assert!(env.contains(&name), "{name} in {env:?}");
    }
    let args = container["args"][0].as_str().unwrap();
    assert!(
        args.contains("--resume") && args.contains("JOB_COMPLETION_INDEX + 1"),
        "{args}"
    );

    let merge = yaml("letterpress-merge.yaml");
    let spec = &merge["spec"];
    assert_eq!(spec["backoffLimit"], 0);
    assert_eq!(spec["completions"], 1);
    assert_eq!(spec["parallelism"], 1);
    let fail = exit_rule(spec, "FailJob").expect("a rule for exit 1 and 2");
    let codes = fail["onExitCodes"]["values"].as_sequence().unwrap();
    assert!(codes.contains(&Value::from(2)));
    assert!(spec["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"].is_string());
}

#[test]
fn the_sbatch_script_is_valid_bash() {
    let out = Command::new("bash")
        .args([
            "-n",
            root()
                .join("deploy/slurm/letterpress.sbatch")
                .to_str()
                .unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
}

/// The service's Deployment: probes on /healthz and /readyz, a drain
/// shorter than the grace period, one pod per state volume, and arguments
/// the binary takes.
#[test]
fn the_service_deployment_probes_drains_and_takes_its_arguments() {
    let path = root().join("deploy/kubernetes/letterpress-serve.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let deploy = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    assert!(docs.iter().any(|d| d["kind"] == "Service"));
    assert_eq!(deploy["spec"]["replicas"], 1);
    assert_eq!(deploy["spec"]["strategy"]["type"], "Recreate");
    let pod = &deploy["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    let args: Vec<String> = c["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let drain: u64 = args
        .iter()
        .find_map(|a| a.strip_prefix("--drain-seconds="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(drain + 20 <= pod["terminationGracePeriodSeconds"].as_u64().unwrap());
    // The binary takes every argument: it gets as far as the token file.
    let mut args = args.clone();
    for a in args.iter_mut() {
        if a.starts_with("--tokens=") {
            *a = "--tokens=/nonexistent/tokens".into();
        }
    }
    let out = std::process::Command::new(bin())
        .args(&args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("/nonexistent/tokens"), "{err}");
}
