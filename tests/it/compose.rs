//! `docker-compose.yml` and the `Dockerfile` checked against the binary (Docker cannot run on the
//! build machines): every eventmill command, flag and `EVENTMILL_*` variable they use exists,
//! migrations run before the api and worker start, and the worker can be scaled.

use std::{collections::BTreeSet, path::Path, process::Command};

use yaml_rust2::{Yaml, YamlLoader};

fn repo_file(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

fn eventmill(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_eventmill")).args(args).env_clear().output().unwrap()
}

/// Every `EVENTMILL_*` name in `text`.
fn setting_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("EVENTMILL_") {
        let tail = &rest[at..];
        let end =
            tail.find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')).unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// Checks `eventmill <args>` is a real command line: the subcommand exists and each `--flag` is
/// in its help.
fn assert_command_exists(args: &[String], origin: &str) {
    let subcommand = args.first().unwrap_or_else(|| panic!("{origin}: empty command"));
    let help = eventmill(&[subcommand, "--help"]);
    assert!(help.status.success(), "{origin}: `eventmill {subcommand}` is not a subcommand");
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in args.iter().skip(1).filter(|a| a.starts_with("--")) {
        let name = flag.split('=').next().unwrap();
        assert!(text.contains(name), "{origin}: `eventmill {subcommand}` has no {name}");
    }
}

fn strings(yaml: &Yaml) -> Vec<String> {
    match yaml {
        Yaml::Array(items) => items.iter().map(|i| i.as_str().expect("string items").to_owned()).collect(),
        Yaml::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn every_eventmill_setting_in_compose_and_the_dockerfile_exists() {
    let config = eventmill(&["config"]);
    assert!(config.status.success());
    let known: BTreeSet<String> = String::from_utf8_lossy(&config.stdout)
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_owned()))
        .collect();
    for file in ["docker-compose.yml", "Dockerfile"] {
        let used = setting_names(&repo_file(file));
        assert!(!used.is_empty(), "{file} sets no EVENTMILL_* variable");
        let unknown: Vec<&String> = used.difference(&known).collect();
        assert!(unknown.is_empty(), "{file} uses settings eventmill does not have: {unknown:?}");
    }
}

#[test]
fn compose_runs_real_commands_migrates_first_and_lets_the_worker_scale() {
    let docs = YamlLoader::load_from_str(&repo_file("docker-compose.yml")).expect("docker-compose.yml is YAML");
    let services = docs[0]["services"].as_hash().expect("a services map");
    let name_of = |key: &Yaml| key.as_str().unwrap().to_owned();
    let eventmill_services: Vec<(String, &Yaml)> = services
        .iter()
        .filter(|(_, s)| s["image"].as_str().is_some_and(|i| i.starts_with("eventmill")) || !s["build"].is_badvalue())
        .map(|(k, s)| (name_of(k), s))
        .collect();
    let names: Vec<&str> = eventmill_services.iter().map(|(n, _)| n.as_str()).collect();
    for wanted in ["migrate", "api", "worker"] {
        assert!(names.contains(&wanted), "no {wanted} service in {names:?}");
    }
    for (name, service) in &eventmill_services {
        assert_command_exists(&strings(&service["command"]), &format!("service {name}"));
    }
    let command = |name: &str| strings(&services[&Yaml::String(name.into())]["command"]);
    assert_eq!(command("migrate"), ["migrate"]);
    assert_eq!(command("api"), ["serve"]);
    assert_eq!(command("worker"), ["worker"]);
    for name in ["api", "worker"] {
        let service = &services[&Yaml::String(name.into())];
        let condition = service["depends_on"]["migrate"]["condition"].as_str();
        assert_eq!(condition, Some("service_completed_successfully"), "{name} must wait for migrate");
    }
    let worker = &services[&Yaml::String("worker".into())];
    assert!(worker["container_name"].is_badvalue(), "a fixed container_name stops `--scale worker=N`");
    assert!(worker["ports"].is_badvalue(), "published ports stop `--scale worker=N`");
    let redis = strings(&services[&Yaml::String("redis".into())]["command"]);
    assert!(redis.windows(2).any(|w| w == ["--appendonly", "yes"]), "redis needs AOF on: {redis:?}");
}

#[test]
fn the_dockerfile_builds_the_binary_and_runs_a_real_command() {
    let dockerfile = repo_file("Dockerfile");
    let instruction = |name: &str| -> Vec<String> {
        let line = dockerfile.lines().rfind(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name}"));
        serde_json::from_str(line[name.len()..].trim()).unwrap_or_else(|_| panic!("{name} in exec (JSON) form"))
    };
    assert_eq!(instruction("ENTRYPOINT"), ["eventmill"]);
    assert!(dockerfile.contains("/usr/local/bin/eventmill"), "the binary is installed on PATH");
    assert_command_exists(&instruction("CMD"), "Dockerfile CMD");
    for line in dockerfile.lines().filter(|l| l.starts_with("COPY ") && !l.contains("--from")) {
        let sources: Vec<&str> = line.split_whitespace().skip(1).collect();
        for source in &sources[..sources.len() - 1] {
            assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join(source).exists(), "Dockerfile copies missing {source}");
        }
    }
    // The build image's Rust is at least the crate's rust-version.
    let rust = dockerfile.split("FROM rust:").nth(1).and_then(|r| r.split('-').next()).expect("FROM rust:<version>");
    let manifest = repo_file("Cargo.toml");
    let wanted = manifest.lines().find_map(|l| l.strip_prefix("rust-version = ")).unwrap().trim_matches('"');
    let version = |v: &str| v.split('.').map(|p| p.parse::<u32>().unwrap()).collect::<Vec<_>>();
    assert!(version(rust) >= version(wanted), "Dockerfile's rust:{rust} is older than rust-version {wanted}");
}
