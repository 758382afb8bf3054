//! No cluster runs here, so the Kubernetes manifests under `infra/kubernetes/` are checked by
//! reading them: every one is valid against the Kubernetes API schemas (PyPI
//! `kubernetes-validate`, which `scripts/test.sh` installs), each role runs with the probes,
//! resources, disruption budget, autoscaler and scrape annotations a deployment needs, and the
//! settings they give are ones Sluice takes: the real binary checks them (`sluice config`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

use crate::support::service;

/// The Kubernetes version the manifests are validated against: the oldest still supported
/// upstream when they were written.
const KUBERNETES_VERSION: &str = "1.32.0";

/// The long-running roles: the manifest, the Deployment's name and the command it runs.
const ROLES: [(&str, &str, &str); 3] = [
    ("ingest.yaml", "sluice-ingest", "ingest"),
    ("processor.yaml", "sluice-processor", "process"),
    ("api.yaml", "sluice-api", "api"),
];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/kubernetes")
}

/// The resources `kustomization.yaml` lists, which are what `kubectl apply -k` applies.
fn manifests() -> Vec<PathBuf> {
    let kustomization = documents(&dir().join("kustomization.yaml"));
    kustomization[0]["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|name| dir().join(name.as_str().expect("a file name")))
        .collect()
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|document| {
            Value::deserialize(document)
                .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
        })
        .filter(|document| !document.is_null())
        .collect()
}

/// Every object of the manifests, by kind and name.
fn objects() -> BTreeMap<(String, String), Value> {
    manifests()
        .iter()
        .flat_map(|path| documents(path))
        .map(|object| {
            let kind = object["kind"].as_str().expect("kind").to_owned();
            let name = object["metadata"]["name"]
                .as_str()
                .expect("name")
                .to_owned();
            ((kind, name), object)
        })
        .collect()
}

fn object<'a>(objects: &'a BTreeMap<(String, String), Value>, kind: &str, name: &str) -> &'a Value {
    objects
        .get(&(kind.to_owned(), name.to_owned()))
        .unwrap_or_else(|| panic!("no {kind} {name} in infra/kubernetes"))
}

#[test]
fn every_manifest_is_valid_against_the_kubernetes_schemas() {
    let python = PathBuf::from(service("TEST_PYTHON"));
    let validate = python.with_file_name("kubernetes-validate");
    let manifests = manifests();
    assert!(manifests.len() >= 6, "{manifests:?}");
    let output = Command::new(&validate)
        .args(["--strict", "--kubernetes-version", KUBERNETES_VERSION])
        .args(&manifests)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", validate.display()));
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "kubernetes-validate refused:\n{printed}"
    );
    for manifest in &manifests {
        let name = manifest.file_name().expect("name").to_string_lossy();
        assert!(
            printed.contains(name.as_ref()),
            "{name} was not validated:\n{printed}"
        );
    }
}

#[test]
fn each_role_is_probed_bounded_budgeted_scaled_and_scraped() {
    let objects = objects();
    let partitions: u32 =
        object(&objects, "ConfigMap", "sluice-config")["data"]["SLUICE_QUEUE__KAFKA__PARTITIONS"]
            .as_str()
            .expect("the partition count is set")
            .parse()
            .expect("a number");
    let mut images = Vec::new();
    for (_, name, command) in ROLES {
        let deployment = object(&objects, "Deployment", name);
        let pod = &deployment["spec"]["template"];
        let container = &pod["spec"]["containers"][0];
        assert_eq!(container["args"], serde_json::json!([command]), "{name}");
        images.push(container["image"].as_str().expect("image").to_owned());
        assert_eq!(
            container["livenessProbe"]["httpGet"]["path"], "/health",
            "{name}"
        );
        assert_eq!(
            container["readinessProbe"]["httpGet"]["path"], "/ready",
            "{name}"
        );
        assert_eq!(container["ports"][0]["containerPort"], 8080, "{name}");
        for bound in ["requests", "limits"] {
            for resource in ["cpu", "memory"] {
                assert!(
                    !container["resources"][bound][resource].is_null(),
                    "{name}: no {bound}.{resource}"
                );
            }
        }
        let sources: Vec<&str> = container["envFrom"]
            .as_array()
            .expect("envFrom")
            .iter()
            .filter_map(|source| {
                source["configMapRef"]["name"]
                    .as_str()
                    .or(source["secretRef"]["name"].as_str())
            })
            .collect();
        assert_eq!(sources, ["sluice-config", "sluice-secrets"], "{name}");
        let annotations = &pod["metadata"]["annotations"];
        assert_eq!(annotations["prometheus.io/scrape"], "true", "{name}");
        assert_eq!(annotations["prometheus.io/port"], "8080", "{name}");
        assert_eq!(annotations["prometheus.io/path"], "/metrics", "{name}");
        assert_eq!(
            pod["spec"]["securityContext"]["runAsNonRoot"], true,
            "{name}"
        );

        let budget = object(&objects, "PodDisruptionBudget", name);
        assert_eq!(
            budget["spec"]["selector"]["matchLabels"],
            deployment["spec"]["selector"]["matchLabels"],
            "{name}: the budget covers the role's pods"
        );
        let autoscaler = object(&objects, "HorizontalPodAutoscaler", name);
        assert_eq!(autoscaler["spec"]["scaleTargetRef"]["name"], name);
        let metric = &autoscaler["spec"]["metrics"][0];
        if command == "process" {
            assert_eq!(
                metric["pods"]["metric"]["name"], "sluice_queue_partition_lag_records",
                "processors scale on consumer lag"
            );
            let most = autoscaler["spec"]["maxReplicas"].as_u64().expect("max");
            assert!(
                most <= u64::from(partitions),
                "more processors ({most}) than partitions ({partitions}) sit idle"
            );
            assert!(
                !objects.contains_key(&("Service".to_owned(), name.to_owned())),
                "the processor serves nothing but its ops endpoints"
            );
        } else {
            assert_eq!(metric["resource"]["name"], "cpu", "{name} scales on CPU");
            let service = object(&objects, "Service", name);
            assert_eq!(
                service["spec"]["selector"], deployment["spec"]["selector"]["matchLabels"],
                "{name}: the Service reaches the role's pods"
            );
        }
    }
    let job = object(&objects, "Job", "sluice-setup");
    let setup = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(setup["args"], serde_json::json!(["setup"]));
    images.push(setup["image"].as_str().expect("image").to_owned());
    images.dedup();
    assert_eq!(images.len(), 1, "one image for every role: {images:?}");
    assert!(
        images[0]
            .rsplit_once(':')
            .is_some_and(|(_, tag)| tag != "latest"),
        "{} is not pinned to a version",
        images[0]
    );
}

/// What the pods get: the image's own environment (the Dockerfile's `ENV`), then the ConfigMap
/// and the Secret, the placeholder key replaced as the Secret's comment asks.
fn pod_environment(objects: &BTreeMap<(String, String), Value>) -> Vec<(String, String)> {
    let dockerfile =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile"))
            .expect("Dockerfile");
    let mut environment: Vec<(String, String)> = dockerfile
        .split("ENV ")
        .skip(1)
        .flat_map(|block| {
            block
                .lines()
                .map_while(|line| {
                    let (key, value) = line.trim().trim_end_matches('\\').trim().split_once('=')?;
                    Some((key.to_owned(), value.to_owned()))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        environment.iter().any(|(key, _)| key == "SLUICE_LISTEN"),
        "the Dockerfile's ENV was read: {environment:?}"
    );
    let config = object(objects, "ConfigMap", "sluice-config");
    let secret = object(objects, "Secret", "sluice-secrets");
    for values in [&config["data"], &secret["stringData"]] {
        for (key, value) in values.as_object().expect("key-value pairs") {
            environment.push((key.clone(), value.as_str().expect("a string").to_owned()));
        }
    }
    environment
}

#[test]
fn every_setting_the_manifests_give_is_one_sluice_takes() {
    let objects = objects();
    let environment = pod_environment(&objects);
    let check = |extra: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        command.arg("config").env_clear();
        for (key, value) in &environment {
            command.env(key, value);
        }
        command.env(
            "SLUICE_AUTH__JWT_SECRET",
            "a-key-an-operator-generated-with-openssl-0123",
        );
        for (key, value) in extra {
            command.env(key, value);
        }
        command.output().expect("sluice runs")
    };
    let checked = check(&[]);
    assert!(
        checked.status.success(),
        "sluice refuses the manifests' settings: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let shown: Value = serde_json::from_slice(&checked.stdout).expect("JSON");
    assert_eq!(shown["queue"]["url"], "kafka://kafka:9092");
    assert_eq!(shown["queue"]["kafka"]["partitions"], 6);
    assert_eq!(shown["store"]["url"], "http://elasticsearch:9200");
    assert_eq!(shown["listen"], "0.0.0.0:8080");
    assert_eq!(shown["auth"]["jwt_secret"], "(set, hidden)");

    // The check can fail: a key Sluice does not read is refused, as a role refuses it.
    let misspelt = check(&[("SLUICE_STORE__RETENTION_DAY", "7")]);
    assert!(!misspelt.status.success());
    assert!(
        String::from_utf8_lossy(&misspelt.stderr).contains("retention_day"),
        "{}",
        String::from_utf8_lossy(&misspelt.stderr)
    );
}
