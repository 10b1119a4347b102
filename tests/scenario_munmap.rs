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
            cpu_lines(&m, 0).contains("free_pgtables"),
            "{p}: {}",
            cpu_lines(&m, 0)
        );
        assert!(
            !cpu_lines(&d, 0).contains("free_pgtables"),
            "{p}: {}",
            cpu_lines(&d, 0)
        );
        assert!(
            cpu_lines(&d, 0).contains("end, finish"),
            "{p}: {}",
            cpu_lines(&d, 0)
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

#[test]
fn after_madv_dontneed_a_cpu_access_faults_zeros_in() {
    // The VMA stays: a load maps the zero page, a store a new zeroed page
    // (do_anonymous_page); the zeros are stores in the global order, so the
    // device's read of them afterwards is judged clean.
    let src = "name: t\nabout: t\npages:\n  addrA: { va: 0x7f0000000010, value: 0xa0 }\n  addrB: { va: 0x7f0000001010, value: 0xb0 }\ntimeline:\n  - { dev0: read addrA }\n  - { cpu0: madv-dontneed addrA 2 }\n  - { cpu1: read addrA }\n  - { cpu1: write addrB 0xb2 }\n  - { dev0: read addrB }\n  - { dev1: read addrA }\nexpect: { seed: clean }\n";
    let s = Scenario::parse(Path::new("t.yaml"), src).unwrap();
    for p in Policy::ALL {
        let r = run(&s, &RunOptions::policy(p)).unwrap();
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        let path = cpu_lines(&r, 1);
        assert!(path.contains("read addrA: anonymous, load"), "{p}: {path}");
        assert!(
            path.contains("write addrB 0xb2: anonymous, store"),
            "{p}: {path}"
        );
        let d: Vec<_> = r
            .dev
            .iter()
            .map(|d| (d.page.as_str(), d.value, d.fault))
            .collect();
        assert_eq!(
            d,
            [
                ("addrA", 0xa0, false),
                ("addrB", 0xb2, false),
                ("addrA", 0, false)
            ],
            "{p}"
        );
        assert_eq!(r.view_of("addrA").unwrap().value, Some(0), "{p}");
        let b = r.view_of("addrB").unwrap().leaf.unwrap();
        assert!(b.writable, "{p}: a write fault maps a writable page");
        assert!(
            !r.view_of("addrA").unwrap().leaf.unwrap().writable,
            "{p}: the zero page"
        );
    }
}

/// A CPU thread's lines through the run, in order.
fn cpu_lines(r: &RunReport, cpu: usize) -> String {
    r.slots
        .iter()
        .flat_map(|s| s.lines.iter())
        .filter(|l| l.thread == shootdown::scenario::ThreadRef::Cpu(cpu))
        .map(|l| l.text.clone())
        .collect::<Vec<_>>()
        .join(" | ")
}
