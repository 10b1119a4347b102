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

/// The CPU thread's checkpoints through the run, in order.
fn cpu0_path(r: &RunReport) -> String {
    r.slots
        .iter()
        .flat_map(|s| s.lines.iter())
        .filter(|l| l.thread == shootdown::scenario::ThreadRef::Cpu(0))
        .map(|l| l.text.clone())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[test]
fn madv_dontneed_is_munmaps_zap_without_free_pgtables() {
    let s =
        Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/madv-dontneed.yaml"))
            .unwrap();
    for p in Policy::ALL {
        let d = run(&s, &RunOptions::policy(p)).unwrap();
        let m = run_munmap(p);
        // the same verdict and the same device reads: case A either way
        assert_eq!(d.verdict, m.verdict, "{p}");
        let vals = |r: &RunReport| r.dev.iter().map(|x| (x.value, x.fault)).collect::<Vec<_>>();
        assert_eq!(vals(&d), vals(&m), "{p}");
        // munmap frees A's page table (its region is left empty); madvise keeps it
        assert!(
            cpu0_path(&m).contains("free_pgtables"),
            "{p}: {}",
            cpu0_path(&m)
        );
        assert!(
            !cpu0_path(&d).contains("free_pgtables"),
            "{p}: {}",
            cpu0_path(&d)
        );
        assert!(
            cpu0_path(&d).contains("end, finish"),
            "{p}: {}",
            cpu0_path(&d)
        );
    }
}

#[test]
fn madv_dontneed_of_a_hugetlb_page_is_refused_as_linux_does() {
    let src = "name: t\nabout: t\npages:\n  addrH: { va: 0x7f0000200000, value: 1, hugetlb: true }\ntimeline:\n  - { cpu0: madv-dontneed addrH }\nexpect: { seed: clean }\n";
    let e = Scenario::parse(Path::new("t.yaml"), src).unwrap_err();
    assert_eq!(e.line, 6);
    assert!(e.msg.contains("EINVAL"), "{e}");
}
