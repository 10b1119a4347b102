//! What the whole-scenario tests share: a bundled scenario by its file
//! name under `scenarios/`, one run of it under one policy, and the line
//! the report gives a device's Page Request.
#![allow(dead_code)]

use shootdown::mm::Policy;
use shootdown::scenario::Scenario;
use shootdown::scenario::ThreadRef;
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

/// The report's line of the kernel's I/O page fault handler for device
/// `dev`'s first Page Request: "page request (...), the kernel's I/O page
/// fault handler: <checkpoints> -> <answer>".
pub fn handler_line(r: &RunReport, dev: u8) -> &str {
    (r.slots.iter().flat_map(|s| &s.lines))
        .find(|l| l.thread == ThreadRef::Dev(dev) && l.text.starts_with("page request"))
        .map_or("", |l| l.text.as_str())
}
