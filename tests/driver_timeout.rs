//! The driver survives ATS invalidation timeouts: `scenarios/cow.yaml` with a
//! device that never sends Invalidate Completions (`drop-inv-cpl`) and an
//! IOMMU timeout finishes (no watchdog): the driver sees `cmd_to` while
//! spinning on a fence, counts and clears it, and the fence then completes.

use shootdown::mm::Policy;
use shootdown::rtl::inject_bits;
use shootdown::scenario::Scenario;
use shootdown::sim::{run, RunOptions};
use std::path::Path;

fn cow() -> Scenario {
    Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/cow.yaml")).unwrap()
}

#[test]
fn cow_with_dropped_completions_finishes_through_the_timeout() {
    let mut s = cow();
    s.inject = inject_bits(&["drop-inv-cpl"]).unwrap();
    s.params.ats_timeout = 2000;
    let r = run(
        &s,
        &RunOptions {
            policy: Policy::Seed,
            waves: None,
        },
    )
    .unwrap_or_else(|e| panic!("the run must finish: {e}"));
    assert!(r.stats.fences > 0);
    assert!(
        r.stats.ats_timeouts > 0,
        "the driver saw and cleared cmd_to: {:?}",
        r.stats
    );
}

#[test]
fn cow_without_the_bug_sees_no_timeout() {
    let mut s = cow();
    s.params.ats_timeout = 2000;
    let r = run(
        &s,
        &RunOptions {
            policy: Policy::Seed,
            waves: None,
        },
    )
    .unwrap();
    assert_eq!(r.stats.ats_timeouts, 0);
    assert!(r.as_expected(), "{:?} vs {:?}", r.verdict, r.expected);
}
