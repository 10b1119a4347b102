//! What the whole-scenario tests share: a bundled scenario by its file
//! name under `scenarios/`, and one run of it under one policy.

use shootdown::mm::Policy;
use shootdown::scenario::Scenario;
use shootdown::sim::{run, RunError, RunOptions, RunReport};
use std::path::Path;

/// `scenarios/<name>`, loaded (a bundled file that does not load fails the
/// test that names it).
pub fn bundled(name: &str) -> Scenario {
    Scenario::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(name),
    )
    .unwrap()
}

/// One run of `s` under `policy`, default options otherwise.
pub fn run_one(s: &Scenario, policy: Policy) -> Result<RunReport, RunError> {
    run(s, &RunOptions::policy(policy))
}
