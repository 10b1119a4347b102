//! The package structure that keeps an RTL edit from recompiling the Rust
//! host code (Cargo.toml): cargo recompiles every dependent of a package
//! whose build script ran again, so the library (`shootdown-host`, crate
//! `shootdown`) must not depend on `shootdown-model-sys` (whose build script
//! verilates the RTL), not even through another package; only what links an
//! executable does. Read from `cargo metadata`.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const LIB: &str = "shootdown-host";
const MODEL: &str = "shootdown-model-sys";

/// The workspace members of `cargo metadata --no-deps`.
fn packages() -> Vec<Value> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    meta["packages"].as_array().expect("packages").clone()
}

fn package<'a>(pkgs: &'a [Value], name: &str) -> &'a Value {
    pkgs.iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no workspace package {name}"))
}

/// The names `pkg` depends on with this kind ("normal", "dev", "build").
fn deps(pkg: &Value, kind: &str) -> BTreeSet<String> {
    pkg["dependencies"]
        .as_array()
        .expect("dependencies")
        .iter()
        .filter(|d| d["kind"].as_str().unwrap_or("normal") == kind)
        .map(|d| d["name"].as_str().expect("name").to_string())
        .collect()
}

#[test]
fn the_library_does_not_depend_on_the_model() {
    let pkgs = packages();
    let lib = package(&pkgs, LIB);
    let targets: Vec<&Value> = lib["targets"].as_array().expect("targets").iter().collect();
    assert!(
        targets
            .iter()
            .any(|t| t["name"] == "shootdown" && t["kind"][0] == "lib"),
        "{LIB} builds the library `shootdown`"
    );
    assert!(
        !targets.iter().any(|t| t["kind"][0] == "custom-build"),
        "{LIB} has no build script (the model's is in {MODEL})"
    );
    // Every workspace package the library builds on (normal and build
    // dependencies, followed through the workspace): none is the model.
    let members: BTreeSet<String> = pkgs
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_string())
        .collect();
    let mut seen = BTreeSet::new();
    let mut todo = vec![LIB.to_string()];
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) || !members.contains(&name) {
            continue;
        }
        let p = package(&pkgs, &name);
        for d in deps(p, "normal").into_iter().chain(deps(p, "build")) {
            assert_ne!(
                d, MODEL,
                "{name} depends on {MODEL}: an RTL edit would recompile {LIB}"
            );
            todo.push(d);
        }
    }
    // ...but its unit tests link the model.
    assert!(
        deps(lib, "dev").contains(MODEL),
        "{LIB}'s unit tests link {MODEL}"
    );
}

#[test]
fn the_binary_tests_and_benches_link_the_model() {
    let pkgs = packages();
    let root = package(&pkgs, "shootdown");
    let normal = deps(root, "normal");
    assert!(normal.contains(LIB) && normal.contains(MODEL), "{normal:?}");
    let model = package(&pkgs, MODEL);
    assert_eq!(model["links"], "shootdown_model");
    // The library names what the model's build script makes, without
    // bundling it into its rlib (which would need the library at hand).
    let ffi =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("host/rtl/ffi.rs"))
            .expect("host/rtl/ffi.rs");
    assert!(
        ffi.contains(
            r#"#[link(name = "shootdown_model", kind = "static", modifiers = "-bundle")]"#
        ),
        "host/rtl/ffi.rs names the model library"
    );
}
