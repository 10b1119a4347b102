//! 1 GiB hugetlb pages (`hugetlb: 1G`): one PUD leaf in the CPU's page
//! table, one 1 GiB entry in the IOTLB and the ATC, and the hugetlb paths
//! (`unmap_hugepage_range`, `hugetlb_change_protection`,
//! `copy_hugetlb_page_range`, `exit_mmap`) over the PUD.

use shootdown::checker::Violation;
use shootdown::iommu::DriverKind;
use shootdown::mem::PageSize;
use shootdown::mm::Policy;
use shootdown::scenario::Scenario;
use std::path::Path;

#[path = "support/bundled.rs"]
mod support;
use support::{bundled, run_one};

/// A scenario of two words of one 1 GiB page and `timeline`.
fn two_words(timeline: &str) -> Scenario {
    let src = format!(
        "name: g\nabout: t\nparams: {{ mem_latency: 40, ats_latency: 150, cpu_step_cycles: 10 }}\npages:\n  addrA: {{ va: 0x7f0040000000, value: 0xa0, hugetlb: 1G }}\n  addrB: {{ va: 0x7f0064216008, value: 0xb0, hugetlb: 1G }}\ntimeline:\n{timeline}expect: {{ seed: clean }}\n"
    );
    Scenario::parse(Path::new("g.yaml"), &src).unwrap()
}

#[test]
fn one_translation_covers_two_words_578_mib_apart() {
    let s = bundled("hugetlb-1g-munmap.yaml");
    for p in Policy::ALL {
        let r = run_one(&s, p).unwrap();
        let (a, b) = (&r.dev[0], &r.dev[1]);
        assert!(!a.fault && !b.fault, "{p}: {:?}", r.dev);
        assert_eq!((a.value, b.value), (0xa0, 0xb0), "{p}");
        // The page's first byte and one 0x24216008 bytes on: one page,
        // aligned to 1 GiB.
        assert_eq!(a.pa & 0x3fff_ffff, 0, "{p}: {:#x}", a.pa);
        assert_eq!(b.pa - a.pa, 0x2421_6008, "{p}");
    }
}

#[test]
fn munmap_of_a_1g_page_frees_it_after_the_flush_that_names_the_gigabyte() {
    let s = bundled("hugetlb-1g-munmap.yaml");
    for p in Policy::ALL {
        let r = run_one(&s, p).unwrap();
        assert!(r.as_expected(), "{p}: {:?}", r.findings);
        let last = r.dev.last().unwrap();
        if p == Policy::EndOnly {
            assert_eq!(
                r.verdict.iter().copied().collect::<Vec<_>>(),
                vec![Violation::UseAfterFree],
                "{:?}",
                r.findings
            );
            assert!(!last.fault, "the stale 1 GiB entry answered");
            assert_eq!(last.pa, r.dev[1].pa, "the freed page's word");
        } else {
            assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
            assert!(last.fault, "{p}: the flush dropped the 1 GiB entry");
        }
        assert!(r.view_of("addrB").unwrap().leaf.is_none(), "{p}: unmapped");
    }
}

#[test]
fn every_driver_invalidates_the_whole_gigabyte() {
    let mut s = bundled("hugetlb-1g-munmap.yaml");
    for d in DriverKind::ALL {
        s.driver = d;
        for p in [Policy::Seed, Policy::Arch] {
            let r = run_one(&s, p).unwrap();
            assert!(r.verdict.is_empty(), "{d} {p}: {:?}", r.findings);
            assert!(r.dev.last().unwrap().fault, "{d} {p}");
        }
    }
}

#[test]
fn mprotect_write_protects_the_pud_and_the_device_write_faults() {
    let s = two_words(
        "  - { dev0: write addrB 0xb1 }\n  - { cpu0: mprotect addrA ro }\n  - { dev0: write addrB 0xb2 }\n",
    );
    for p in Policy::ALL {
        let r = run_one(&s, p).unwrap();
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        let v = r.view_of("addrB").unwrap();
        let leaf = v.leaf.unwrap();
        assert_eq!(leaf.size, PageSize::Huge1G, "{p}");
        assert!(!leaf.writable, "{p}: the PUD is read-only");
        assert_eq!(v.value, Some(0xb1), "{p}: the write after mprotect faulted");
        assert!(r.dev.last().unwrap().fault, "{p}");
    }
}

#[test]
fn fork_shares_the_1g_page_read_only_and_exit_unmaps_it() {
    let s = two_words("  - { dev0: read addrB }\n  - { cpu0: fork addrA }\n  - { cpu0: exit }\n  - { dev0: read addrA }\n");
    for p in Policy::ALL {
        let r = run_one(&s, p).unwrap();
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        assert!(
            r.view_of("addrA").unwrap().leaf.is_none(),
            "{p}: exit unmapped it"
        );
        assert!(r.dev.last().unwrap().fault, "{p}: released before");
        let l: Vec<String> = (r.slots.iter())
            .flat_map(|s| s.lines.iter().map(|l| l.text.clone()))
            .collect();
        assert!(
            l.iter()
                .any(|t| t.contains("fork addrA") && t.contains("wrprotect")),
            "{p}: {l:#?}"
        );
    }
}

#[test]
fn what_4_15_cannot_do_with_a_1g_page_is_refused_by_name() {
    // migration (hugepage_migration_supported), part of the page
    for (timeline, says) in [
        ("  - { cpu0: migrate addrA }\n", "9b553bf5eb99"),
        (
            "  - { cpu0: munmap addrA 512 }\n",
            "part of a 1 GiB hugetlb page",
        ),
    ] {
        let s = two_words(timeline);
        let e = run_one(&s, Policy::Seed).unwrap_err().to_string();
        assert!(e.contains(says) && e.contains("g.yaml:"), "{e}");
    }
}

#[test]
fn a_1g_page_is_written_in_the_scenario_as_it_was_read() {
    let src = "name: g\nabout: t\npages:\n  addrA: { va: 0x7f0040000000, hugetlb: 1G }\n  addrB: { va: 0x7f0000000000, hugetlb: true }\ntimeline:\n  - { dev0: read addrA }\nexpect: { seed: clean }\n";
    let s = Scenario::parse(Path::new("g.yaml"), src).unwrap();
    assert!(s.pages[0].gigantic && s.pages[0].hugetlb);
    assert!(!s.pages[1].gigantic && s.pages[1].hugetlb);
    let again = Scenario::parse(Path::new("g.yaml"), &s.to_yaml()).unwrap();
    assert_eq!(again.pages, s.pages);
}

#[test]
fn bad_1g_pages_are_errors_that_say_what_to_write() {
    let page = |extra: &str| {
        format!("name: g\nabout: t\npages:\n  addrA: {{ va: 0x7f0040000000, hugetlb: 1G }}\n{extra}timeline:\n  - {{ dev0: read addrA }}\nexpect: {{ seed: clean }}\n")
    };
    for (extra, line, says) in [
        (
            "  addrB: { va: 0x7f0080000000, hugetlb: 3M }\n",
            5,
            "hugetlb '3M' is not a hugetlbfs page size",
        ),
        (
            "  addrB: { va: 0x7f0040200000 }\n",
            5,
            "share a 1 GiB region and one is a 1 GiB hugetlb page",
        ),
        (
            "  addrB: { va: 0x7f0040200000, hugetlb: 1G, cow: true }\n",
            5,
            "the same cow and file",
        ),
        (
            "  addrB: { va: 0x40000000, hugetlb: 1G, file: true }\n  addrC: { va: 0x7f0080000000, hugetlb: 1G, file: true, process: 1, shares: addrB }\n",
            6,
            "huge_pmd_share is for 2 MiB pages",
        ),
        (
            "  addrB: { va: 0x3fff0000, hugetlb: 1G }\n",
            5,
            "with its 1 GiB page, at or above mmap_min_addr",
        ),
    ] {
        let e = Scenario::parse(Path::new("g.yaml"), &page(extra))
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("g.yaml:{line}:")) && e.contains(says), "{e}");
    }
}
