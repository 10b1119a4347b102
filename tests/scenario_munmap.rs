//! Case A end to end: `scenarios/munmap.yaml`, an mmu_gather batch that
//! fills and frees a page before E, under all four notify policies.

use shootdown::checker::Violation;
use shootdown::mm::Policy;
use shootdown::scenario::Scenario;
use shootdown::sim::{run, RunOptions, RunReport};
use std::path::Path;

fn run_munmap(policy: Policy) -> RunReport {
    let s = Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/munmap.yaml"))
        .unwrap();
    run(&s, &RunOptions::policy(policy)).unwrap()
}

#[test]
fn end_only_lets_the_device_read_the_frames_next_owner() {
    let r = run_munmap(Policy::EndOnly);
    assert_eq!(
        r.verdict.iter().copied().collect::<Vec<_>>(),
        vec![Violation::UseAfterFree],
        "{:?}",
        r.findings
    );
    // The second read of addrA returned what cpu1 stored in C's COW copy.
    let reads: Vec<_> = r.dev.iter().filter(|d| d.page == "addrA").collect();
    assert_eq!(reads.len(), 2);
    assert_eq!(reads[0].value, 0xa0);
    assert!(!reads[1].fault);
    assert_eq!(reads[1].value, 0xc1, "the freed frame now holds C's data");
    assert_eq!(
        reads[0].pa >> 12,
        reads[1].pa >> 12,
        "through the stale ATC entry, the same frame"
    );
    assert!(r
        .findings
        .iter()
        .any(|f| f.detail.contains("reused by another owner")));
}

#[test]
fn a_flush_before_the_free_leaves_the_device_no_translation() {
    for p in [Policy::Always, Policy::Seed, Policy::Arch] {
        let r = run_munmap(p);
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        let last = r.dev.iter().rfind(|d| d.page == "addrA").unwrap();
        assert!(last.fault, "{p}: the unmapped page must fault, not be read");
        // the flush at the full batch, the one at E (4.x) or none (arch), and tlb_finish_mmu's
        // has nothing left to flush; plus cpu1's COW of C.
        assert!(r.stats.flushes >= 2, "{p}: {:?}", r.stats);
    }
}
