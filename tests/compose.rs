//! No Docker engine runs here, so the distributed stack is checked by reading it: the compose
//! file has every service the deployment needs, each pinned, health-checked and started in
//! order; what it mounts from `infra/` exists; Prometheus scrapes every Sluice role; the Grafana
//! dashboard asks for metrics Sluice exports; `.env.example` names every variable compose needs.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn yaml(path: &str) -> Value {
    serde_yaml_ng::from_str(&read(path)).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

fn compose() -> Value {
    yaml("docker-compose.yml")
}

fn services(compose: &Value) -> &serde_json::Map<String, Value> {
    compose["services"].as_object().expect("services")
}

const SLUICE_ROLES: [&str; 3] = ["sluice-ingest", "sluice-processor", "sluice-api"];

#[test]
fn every_part_of_the_stack_is_there() {
    let compose = compose();
    let names: BTreeSet<&str> = services(&compose).keys().map(String::as_str).collect();
    for expected in [
        "kafka",
        "elasticsearch",
        "kibana",
        "mongodb",
        "redis",
        "prometheus",
        "grafana",
        "sluice-setup",
    ]
    .iter()
    .chain(&SLUICE_ROLES)
    {
        assert!(
            names.contains(expected),
            "no {expected} service in {names:?}"
        );
    }
    let major = |service: &str, prefix: &str| {
        let image = compose["services"][service]["image"]
            .as_str()
            .expect("image");
        assert!(
            image.contains(prefix),
            "{service} runs {image}, not {prefix}"
        );
    };
    major("elasticsearch", "elasticsearch:8.");
    major("kibana", "kibana:8.");
    major("mongodb", "mongo:7.");
    major("redis", "redis:7.");
    let kafka = &compose["services"]["kafka"]["environment"];
    assert_eq!(
        kafka["KAFKA_PROCESS_ROLES"], "broker,controller",
        "KRaft, no ZooKeeper"
    );
}

#[test]
fn images_are_pinned_and_services_health_checked() {
    let compose = compose();
    for (name, service) in services(&compose) {
        let image = service["image"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has no image"));
        let tag = image.rsplit_once(':').map(|(_, tag)| tag);
        assert!(
            tag.is_some_and(|t| t != "latest" && !t.is_empty()),
            "{name}: {image} is not pinned to a version"
        );
        if name != "sluice-setup" {
            assert!(
                service["healthcheck"]["test"].is_array(),
                "{name} has no healthcheck"
            );
        }
    }
    for sluice in SLUICE_ROLES.iter().chain(&["sluice-setup"]) {
        assert_eq!(
            compose["services"][sluice]["build"], ".",
            "{sluice} is built from this repository, never pulled"
        );
    }
}

#[test]
fn start_order_follows_health() {
    let compose = compose();
    let services = services(&compose);
    for (name, service) in services {
        let Some(depends) = service.get("depends_on") else {
            continue;
        };
        let depends = depends
            .as_object()
            .unwrap_or_else(|| panic!("{name}: depends_on must name conditions"));
        for (dependency, condition) in depends {
            assert!(
                services.contains_key(dependency),
                "{name} depends on unknown {dependency}"
            );
            let condition = condition["condition"].as_str().expect("condition");
            assert!(
                matches!(
                    condition,
                    "service_healthy" | "service_completed_successfully" | "service_started"
                ),
                "{name} → {dependency}: {condition}"
            );
        }
    }
    for role in SLUICE_ROLES {
        assert_eq!(
            compose["services"][role]["depends_on"]["sluice-setup"]["condition"],
            "service_completed_successfully",
            "{role} starts once topics and templates exist"
        );
        let environment = &compose["services"][role]["environment"];
        assert!(
            environment["SLUICE_QUEUE__URL"]
                .as_str()
                .expect("queue")
                .starts_with("kafka://")
        );
        assert!(
            environment["SLUICE_STORE__URL"]
                .as_str()
                .expect("store")
                .starts_with("http")
        );
        assert!(
            environment["SLUICE_META__URL"]
                .as_str()
                .expect("meta")
                .starts_with("mongodb://")
        );
        assert!(
            environment["SLUICE_CACHE__URL"]
                .as_str()
                .expect("cache")
                .starts_with("redis://")
        );
    }
}

#[test]
fn ports_are_local_and_distinct() {
    let compose = compose();
    let mut published = BTreeSet::new();
    for (name, service) in services(&compose) {
        for port in service["ports"].as_array().into_iter().flatten() {
            let port = port.as_str().expect("short port syntax");
            assert!(
                port.starts_with("127.0.0.1:"),
                "{name} publishes {port} beyond this host"
            );
            let host_port = port.split(':').nth(1).expect("host port");
            assert!(
                published.insert(host_port.to_owned()),
                "{name}: port {host_port} twice"
            );
        }
    }
    for expected in ["8080", "8081", "9200", "5601", "9090", "3000"] {
        assert!(
            published.contains(expected),
            "nothing on {expected}: {published:?}"
        );
    }
}

#[test]
fn mounted_infra_files_exist() {
    let compose = compose();
    let mut mounted = 0;
    for (name, service) in services(&compose) {
        for volume in service["volumes"].as_array().into_iter().flatten() {
            let source = volume
                .as_str()
                .expect("short volume syntax")
                .split(':')
                .next()
                .expect("source");
            if let Some(path) = source.strip_prefix("./infra/") {
                assert!(
                    repo(&format!("infra/{path}")).exists(),
                    "{name} mounts missing {source}"
                );
                mounted += 1;
            }
        }
    }
    assert!(
        mounted >= 3,
        "Prometheus config and Grafana provisioning are mounted"
    );
    for file in [
        "infra/elasticsearch/index-template.json",
        "infra/kibana/saved-objects.ndjson",
        "infra/grafana/provisioning/datasources/prometheus.yml",
        "infra/grafana/provisioning/dashboards/sluice.yml",
    ] {
        assert!(repo(file).is_file(), "{file} is missing");
    }
    let dockerfile = read("Dockerfile");
    let stages = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert!(
        stages >= 2,
        "the Dockerfile builds in one stage and runs in another"
    );
}

#[test]
fn prometheus_scrapes_every_role() {
    let prometheus = yaml("infra/prometheus/prometheus.yml");
    let targets: BTreeSet<String> = prometheus["scrape_configs"]
        .as_array()
        .expect("scrape_configs")
        .iter()
        .flat_map(|job| {
            job["static_configs"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|config| config["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    for role in SLUICE_ROLES {
        assert!(
            targets.contains(&format!("{role}:8080")),
            "{role} is not scraped: {targets:?}"
        );
    }
}

#[test]
fn grafana_dashboard_asks_for_metrics_sluice_exports() {
    let dashboard: Value =
        serde_json::from_str(&read("infra/grafana/dashboards/sluice.json")).expect("JSON");
    let exported = read("common/telemetry/src/events.rs");
    let mut asked = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if let Some(metric) = word.strip_prefix("sluice_") {
                    let base = ["_bucket", "_count", "_sum"]
                        .iter()
                        .find_map(|suffix| metric.strip_suffix(suffix))
                        .unwrap_or(metric);
                    assert!(
                        exported.contains(&format!("\"sluice_{base}\"")),
                        "the dashboard asks for sluice_{base}, which Sluice does not export"
                    );
                    asked += 1;
                }
            }
        }
    }
    assert!(asked >= 10);
}

#[test]
fn env_example_names_every_variable_compose_needs() {
    let compose = read("docker-compose.yml");
    let example = read(".env.example");
    let defined: BTreeSet<&str> = example
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
        .collect();
    let mut rest = compose.as_str();
    while let Some(start) = rest.find("${") {
        let variable: String = rest[start + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        assert!(
            defined.contains(variable.as_str()),
            "{variable} is not in .env.example"
        );
        rest = &rest[start + 2..];
    }
}
