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
    let r = run(&s, &RunOptions::policy(Policy::Seed))
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
    let r = run(&s, &RunOptions::policy(Policy::Seed)).unwrap();
    assert_eq!(r.stats.ats_timeouts, 0);
    assert!(r.as_expected(), "{:?} vs {:?}", r.verdict, r.expected);
}

/// Intel's qi_submit_sync restarts after an Invalidation Time-out Error: a
/// device that never answers keeps the CPU in the flush for good (a soft
/// lockup in Linux); the watchdog names it.
#[test]
fn intel_resubmits_after_a_timeout_and_spins_on_a_dead_device() {
    let mut s = cow();
    s.inject = inject_bits(&["drop-inv-cpl"]).unwrap();
    s.params.ats_timeout = 2000;
    s.params.watchdog_cycles = 30_000;
    s.driver = shootdown::iommu::DriverKind::INTEL;
    let e = run(&s, &RunOptions::policy(Policy::Seed)).expect_err("the flush never finishes");
    let msg = e.to_string();
    assert!(msg.contains("watchdog_cycles = 30000"), "{msg}");
    assert!(msg.contains("ATS invalidation timeouts"), "{msg}");
    assert!(!msg.contains("submitted 0 parts again"), "{msg}");
}

/// `scenarios/timeout-race.yaml`: a device read in flight past the ATS
/// invalidation timeout. The generic (RISC-V), AMD and ARM drivers go on
/// after the timeout and munmap frees the page under the read; Intel submits
/// the device-TLB part again and waits for the real Invalidate Completion.
#[test]
fn a_slow_device_past_the_timeout_intel_waits_the_others_free_under_the_read() {
    let load = || {
        Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/timeout-race.yaml"))
            .unwrap()
    };
    use shootdown::checker::Violation;
    use shootdown::iommu::DriverKind;
    for d in DriverKind::ALL {
        let mut s = load();
        s.driver = d;
        let r = run(&s, &RunOptions::policy(Policy::Seed)).unwrap_or_else(|e| panic!("{d:?}: {e}"));
        assert!(r.stats.ats_timeouts > 0, "{d:?}: {:?}", r.stats);
        if d == DriverKind::INTEL {
            assert!(r.stats.restarts > 0, "{:?}", r.stats);
            assert!(r.verdict.is_empty(), "intel: {:?}", r.findings);
        } else {
            assert_eq!(r.stats.restarts, 0, "{d:?}");
            assert_eq!(
                r.verdict.iter().copied().collect::<Vec<_>>(),
                vec![Violation::UseAfterFree],
                "{d:?}: {:?}",
                r.findings
            );
        }
    }
}
