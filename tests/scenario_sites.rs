//! Every bundled scenario under every notify policy gives the verdict its
//! `expect` states (the seed's per-site claims), plus what each site's
//! scenario shows beyond the verdict.

use shootdown::mm::Policy;
use shootdown::scenario::{Scenario, ThreadRef};
use shootdown::sim::{run, RunOptions, RunReport};
use std::path::Path;

fn scenario(name: &str) -> Scenario {
    Scenario::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(name),
    )
    .unwrap()
}

fn run_one(s: &Scenario, policy: Policy) -> RunReport {
    run(s, &RunOptions::policy(policy)).unwrap()
}

#[test]
fn every_bundled_scenario_meets_its_expect_table() {
    // every bundled scenario, sorted, as `sweep` takes them
    let files = shootdown::sweep::expand(&[]).unwrap();
    assert!(files.len() >= 3);
    for f in files {
        let s = Scenario::load(&f).unwrap();
        assert_eq!(
            s.expect.len(),
            4,
            "{}: expect must state all four policies",
            f.display()
        );
        for p in Policy::ALL {
            let r = run_one(&s, p);
            assert!(
                r.as_expected(),
                "{} --notify {p}: verdict {:?}, expected {:?}: {:?}",
                f.display(),
                r.verdict,
                r.expected,
                r.findings
            );
        }
    }
}

#[test]
fn ksm_merge_lets_a_deferred_device_write_land_before_the_comparison() {
    let s = scenario("ksm.yaml");
    // Deferred (seed, end-only): the write lands through the stale entry,
    // pages_identical then fails and Y keeps its own page.
    for p in [Policy::Seed, Policy::EndOnly] {
        let r = run_one(&s, p);
        let w = r.dev.iter().find(|d| d.write && d.value == 0x66).unwrap();
        assert!(!w.fault, "{p}: the stale writable entry carries the write");
        let last = r.dev.last().unwrap();
        assert_eq!(
            (last.value, last.pa >> 12),
            (0x66, w.pa >> 12),
            "{p}: no merge"
        );
        let open = r.windows_of("addrY").iter().any(|x| x.contains(w.cycle));
        assert!(open, "{p}: the write happened inside addrY's window");
    }
    // Under the PTL (always, arch): the write faults and the merge happens.
    for p in [Policy::Always, Policy::Arch] {
        let r = run_one(&s, p);
        assert!(r.dev.iter().any(|d| d.write && d.fault), "{p}");
        let first = r.dev.first().unwrap();
        let last = r.dev.last().unwrap();
        assert_eq!(last.value, 0x55, "{p}");
        assert_ne!(
            last.pa >> 12,
            first.pa >> 12,
            "{p}: Y now maps X's KSM page"
        );
    }
}

#[test]
fn writeback_io_carries_a_write_made_through_the_deferred_window() {
    for f in ["writeback.yaml", "dax-writeback.yaml"] {
        writeback_case(&scenario(f));
    }
}

fn writeback_case(s: &Scenario) {
    for (p, landed) in [
        (Policy::Seed, true),
        (Policy::EndOnly, true),
        (Policy::Always, false),
        (Policy::Arch, false),
    ] {
        let r = run_one(s, p);
        let w = r.dev.iter().find(|d| d.write && d.value == 0x66).unwrap();
        assert_eq!(!w.fault, landed, "{} {p}", s.name);
        let io = r.io.last().expect("the I/O ran");
        assert_eq!(io.value, if landed { 0x66 } else { 0xf1 }, "{p}");
        assert!(io.cycle > w.cycle);
    }
}

#[test]
fn thp_cow_fallback_leaves_a_stale_2m_atc_entry_under_end_only() {
    let s = scenario("thp-cow.yaml");
    let r = run_one(&s, Policy::EndOnly);
    let a: Vec<_> = r.dev.iter().filter(|d| d.page == "addrA").collect();
    assert_eq!(a.len(), 2);
    assert_eq!(a[1].value, 0xa0, "A's old huge page");
    assert_eq!(a[0].pa, a[1].pa, "through the 2 MiB entry cached at N");
    let atc = r.windows_of("addrA");
    assert!(atc
        .iter()
        .any(|w| w.cache == shootdown::checker::Cache::Atc && w.contains(a[1].cycle)));
    // the 4 KiB page the device reads for B afterwards is one of the 512 copies
    let b = r.dev.iter().rfind(|d| d.page == "addrB").unwrap();
    assert_eq!(b.value, 0xb2);
    for p in [Policy::Seed, Policy::Always, Policy::Arch] {
        let r = run_one(&s, p);
        assert_eq!(
            r.dev.iter().rfind(|d| d.page == "addrA").unwrap().value,
            0xa2,
            "{p}"
        );
    }
}

/// The device writes of a scenario, in order: (value, faulted).
fn dev_writes(r: &RunReport) -> Vec<(u64, bool)> {
    r.dev
        .iter()
        .filter(|d| d.write)
        .map(|d| (d.value, d.fault))
        .collect()
}

#[test]
fn hugetlb_downgrades_stop_device_writes_once_the_call_returns() {
    let mprotect = scenario("hugetlb-mprotect.yaml");
    let fork = scenario("hugetlb-fork.yaml");
    for p in Policy::ALL {
        // mprotect: the CPU flush itself comes after the unlock, so the
        // write in the middle lands under every generation.
        let w = dev_writes(&run_one(&mprotect, p));
        assert_eq!(
            w,
            vec![(0x71, false), (0x72, false), (0x73, true)],
            "mprotect {p}"
        );
        // fork: 4.14's notify under the PTL stops the middle write.
        let w = dev_writes(&run_one(&fork, p));
        let middle_lands = p != Policy::Always;
        assert_eq!(
            w,
            vec![(0x71, false), (0x72, !middle_lands), (0x73, true)],
            "fork {p}"
        );
    }
}

/// mprotect of a small page (`paths/change_protection.yaml`): no notifier
/// call under the PTL, so the write racing the call lands under every
/// generation; the one after the call returned faults under every one, and
/// the checker calls neither a violation (the first races the call).
#[test]
fn small_page_mprotect_stops_device_writes_once_the_call_returns() {
    let s = scenario("mprotect.yaml");
    for p in Policy::ALL {
        let r = run_one(&s, p);
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        assert_eq!(
            dev_writes(&r),
            vec![(0xa1, false), (0xa2, false), (0xa3, true)],
            "{p}"
        );
        let last = r.dev.last().unwrap();
        assert_eq!((last.write, last.value), (false, 0xa2), "{p}");
        let cpu0: Vec<&str> = r
            .slots
            .iter()
            .flat_map(|s| &s.lines)
            .filter(|l| l.thread == ThreadRef::Cpu(0))
            .map(|l| l.text.as_str())
            .collect();
        assert_eq!(
            cpu0,
            [
                "mprotect addrA ro until unlock: start, lock, change, unlock ... preempted",
                "resume: end, flush",
            ],
            "{p}"
        );
    }
}

#[test]
fn zero_page_split_leaves_a_harmless_stale_2m_entry() {
    let s = scenario("zero-split.yaml");
    for p in Policy::ALL {
        let r = run_one(&s, p);
        let reads: Vec<_> = r.dev.iter().collect();
        assert_eq!(reads.len(), 3, "{p}");
        assert_eq!(
            (reads[0].value, reads[1].value, reads[2].value),
            (0, 0, 5),
            "{p}"
        );
        // 4.15 never flushes for the split itself (cf, then _only_end): the
        // middle read still goes through the 2 MiB entry of the huge zero
        // page, inside the window. end-only flushes at the split's E.
        let through_stale = reads[1].pa == reads[0].pa;
        let expect_stale = p == Policy::Seed;
        assert_eq!(through_stale, expect_stale, "{p}");
        if expect_stale {
            assert!(
                r.windows_of("addrZ")
                    .iter()
                    .any(|w| w.contains(reads[1].cycle)),
                "{p}"
            );
        }
    }
}

#[test]
fn reclaim_and_migration_carry_a_write_from_the_deferred_window() {
    for (p, landed) in [
        (Policy::Seed, true),
        (Policy::EndOnly, true),
        (Policy::Always, false),
        (Policy::Arch, false),
    ] {
        let r = run_one(&scenario("reclaim.yaml"), p);
        assert_eq!(
            dev_writes(&r),
            vec![(0x31, false), (0x66, !landed)],
            "reclaim {p}"
        );
        assert_eq!(
            r.io.last().unwrap().value,
            if landed { 0x66 } else { 0x31 },
            "reclaim {p}: swap-out"
        );
        assert!(
            r.dev.last().unwrap().fault,
            "reclaim {p}: a swap entry, no translation"
        );

        let r = run_one(&scenario("migrate.yaml"), p);
        assert_eq!(
            dev_writes(&r),
            vec![(0x31, false), (0x66, !landed)],
            "migrate {p}"
        );
        let first = r.dev.first().unwrap();
        let last = r.dev.last().unwrap();
        assert_eq!(last.value, if landed { 0x66 } else { 0x31 }, "migrate {p}");
        assert_ne!(last.pa >> 12, first.pa >> 12, "migrate {p}: the new page");
    }
}

#[test]
fn reclaim_of_a_file_page_keeps_the_seeds_notify() {
    let s = scenario("reclaim-file.yaml");
    for (p, landed) in [
        (Policy::Seed, false),
        (Policy::Always, false),
        (Policy::Arch, false),
        (Policy::EndOnly, true),
    ] {
        let r = run_one(&s, p);
        assert_eq!(dev_writes(&r), vec![(0x31, false), (0x66, !landed)], "{p}");
        assert_eq!(
            r.io.last().unwrap().value,
            if landed { 0x66 } else { 0x31 },
            "{p}"
        );
    }
}

#[test]
fn madv_free_discard_keeps_a_page_the_device_dirtied() {
    let s = scenario("madv-free.yaml");
    for p in Policy::ALL {
        let r = run_one(&s, p);
        // The IOMMU set D when it granted the writable translation, so
        // reclaim finds the PTE dirty and keeps the page mapped.
        let w = dev_writes(&r);
        assert_eq!(&w[..2], &[(0x41, false), (0x42, false)], "{p}");
        let last = r.dev.last().unwrap();
        assert!(!last.fault, "{p}: the page is still mapped");
        let expect = if w[2].1 { 0x42 } else { 0x43 };
        assert_eq!(last.value, expect, "{p}");
    }
}

#[test]
fn thp_mprotect_takes_the_2m_entry_at_pmdp_invalidate_under_arch_else_at_e() {
    let s = scenario("thp-mprotect.yaml");
    for p in Policy::ALL {
        let r = run_one(&s, p);
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        // the racing write lands through the stale writable 2 MiB entry
        // unless the CPU flush inside pmdp_invalidate took it (arch: 6.6+)
        let racing = p != Policy::Arch;
        assert_eq!(
            dev_writes(&r),
            vec![(0x11, false), (0x12, !racing), (0x13, true)],
            "{p}"
        );
        let last = r.dev.last().unwrap();
        assert_eq!(last.value, if racing { 0x12 } else { 0x11 }, "{p}");
        // the whole huge page is read-only, mapped by its PMD still
        let v = r.final_view[0].leaf.unwrap();
        assert!(
            !v.writable && v.size == shootdown::mem::PageSize::Huge2M,
            "{p}"
        );
    }
    // with the fence broken and its assertion off, E returns too early
    let mut s = s;
    s.inject = shootdown::rtl::inject_bits(&["early-fence"]).unwrap();
    s.params.assertions = false;
    let r = run_one(&s, Policy::Seed);
    assert!(
        r.verdict
            .contains(&shootdown::checker::Violation::WriteAfterProtect),
        "{:?}",
        r.findings
    );
}
