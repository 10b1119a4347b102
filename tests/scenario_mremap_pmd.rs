//! mremap of a whole 2 MiB region (paths/move_normal_pmd.yaml): the page
//! table moves, an rmap walk can come between the new PMD and the flush
//! (CVE-2022-41222's race, fixed in 5.14 with the rmap lock), and a
//! paging-structure cache must not keep translating the old region. And
//! mremap of a THP (paths/move_huge_pmd.yaml): the huge PMD moves with its
//! deposited table.

use shootdown::checker::Violation;
use shootdown::mm::Policy;
use shootdown::rtl::inject_bits;
use shootdown::scenario::Scenario;
use shootdown::sim::{run, RunOptions, RunReport};
use shootdown::sweep::parse_driver;
use std::collections::BTreeSet;
use std::path::Path;

fn uaf() -> BTreeSet<Violation> {
    BTreeSet::from([Violation::UseAfterFree])
}

fn load(rel: &str) -> Scenario {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(rel);
    Scenario::load(&p).unwrap()
}

fn parse(src: &str) -> Result<Scenario, String> {
    Scenario::parse(Path::new("s.yaml"), src).map_err(|e| e.to_string())
}

/// With the rmap lock (5.14) the CPU is safe, and the device until 6.6's
/// notifying flush only: a use-after-free under every policy but arch.
fn only_arch_is_clean(fixed: &Scenario) {
    for p in Policy::ALL {
        let r = run(fixed, &RunOptions::policy(p)).unwrap();
        let want = if p == Policy::Arch {
            BTreeSet::new()
        } else {
            uaf()
        };
        assert_eq!(r.verdict, want, "{p}: {:?}", r.findings);
    }
}

fn run_seed(s: &Scenario) -> RunReport {
    run(s, &RunOptions::policy(Policy::Seed)).unwrap()
}

const PAGES: &str = "pages:
  addrA: { va: 0x7f0000000000, value: 0xa0 }
  addrN: { va: 0x7f0000400000, absent: true }
";

fn scenario(pages: &str, timeline: &str) -> Scenario {
    parse(&format!(
        "name: t\nabout: t\n{pages}timeline:\n{timeline}expect: {{ seed: clean }}\n"
    ))
    .unwrap()
}

/// The 2 MiB move leaves the page's entry where it was, in the same page
/// table, now hooked under the new address; a one-page mremap copies the
/// entry into a new table instead.
#[test]
fn a_2m_mremap_moves_the_page_table_itself() {
    let before = run_seed(&scenario(PAGES, "  - { dev0: read addrA }\n"));
    let old = before.view_of("addrA").unwrap().leaf.unwrap();
    let moved = "  - { cpu0: mremap addrA addrN 512 }\n  - { dev0: read addrN }\n  - { dev1: read addrA }\n";
    for p in Policy::ALL {
        let r = run(&scenario(PAGES, moved), &RunOptions::policy(p)).unwrap();
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        assert_eq!(r.view_of("addrA").unwrap().leaf, None, "{p}");
        let new = r.view_of("addrN").unwrap().leaf.unwrap();
        assert_eq!((new.pfn, new.entry_pa), (old.pfn, old.entry_pa), "{p}");
        // the device reads the page at its new address, and faults at the old
        assert_eq!((r.dev[0].value, r.dev[0].fault), (0xa0, false), "{p}");
        assert!(r.dev[1].fault, "{p}");
    }
    let one = "  - { cpu0: mremap addrA addrN }\n";
    let r = run_seed(&scenario(PAGES, one));
    let new = r.view_of("addrN").unwrap().leaf.unwrap();
    assert_eq!(new.pfn, old.pfn);
    assert_ne!(
        new.entry_pa >> 12,
        old.entry_pa >> 12,
        "move_ptes: a new table"
    );
}

/// The bundled path (4.20 to 5.13, no rmap lock for a move to a fresh
/// address) lets reclaim free the page between the new PMD and the flush:
/// a use-after-free under every policy. 5.14's rmap lock makes that
/// timeline impossible (the walk waits for mremap) and leaves the device
/// exposed until E, which only 6.6's arch closes.
#[test]
fn the_rmap_race_and_its_fix() {
    let race = load("mremap-pmd-rmap-race.yaml");
    let fixed = load("paths/mremap-pmd-rmap-race-5.14.yaml");
    for p in Policy::ALL {
        let r = run(&race, &RunOptions::policy(p)).unwrap();
        assert_eq!(r.verdict, uaf(), "{p}");
    }
    only_arch_is_clean(&fixed);
    // the fixed path on the race's timeline: reclaim waits for the lock
    // mremap holds while it is stopped
    let mut s = fixed.clone();
    s.timeline = race.timeline.clone();
    let e = run(&s, &RunOptions::policy(Policy::Seed))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cpu1 waits for an rmap lock held by cpu0")
            && e.contains("stopped after 'move'"),
        "{e}"
    );
    // under arch the driver's CPU decides: x86's batched reclaim flush is
    // the whole address space (the device escapes), arm64's is the page
    let arch = |driver: &str| {
        let mut s = race.clone();
        s.driver = parse_driver(driver).unwrap();
        run(&s, &RunOptions::policy(Policy::Arch)).unwrap().verdict
    };
    assert_eq!(arch("intel@6.7"), BTreeSet::new());
    assert_eq!(arch("arm"), uaf());
}

/// A paging-structure cache that an IOTINVAL.VMA leaves alone keeps the
/// old region's PD entry, which points at the moved (live) table: the
/// device's walk of the old address succeeds after mremap returned, and
/// once reclaim frees the page it reads the frame's next owner.
#[test]
fn a_psc_the_flush_leaves_translates_the_moved_table() {
    let s = load("mremap-pmd.yaml");
    for p in Policy::ALL {
        let r = run(&s, &RunOptions::policy(p)).unwrap();
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        assert!(r.dev[1].fault && r.dev[3].fault, "{p}");
    }
    let mut bug = s.clone();
    bug.inject = inject_bits(&["psc-not-invalidated"]).unwrap();
    let e = run(&bug, &RunOptions::policy(Policy::Seed))
        .unwrap_err()
        .to_string();
    assert!(e.contains("PscInvalidated_A"), "{e}");
    bug.params.assertions = false;
    let r = run_seed(&bug);
    assert!(
        !r.dev[1].fault,
        "the old address translates through the PSC"
    );
    assert_eq!(r.verdict, uaf(), "{:?}", r.findings);
}

/// A page-cache page keeps being one at its new address: reclaim there
/// only drops the PTE (the page cache keeps the page), where an anonymous
/// page gets a swap entry.
#[test]
fn mremap_moves_a_file_page_s_mapping_with_it() {
    let reclaim = "  - { cpu0: mremap addrA addrN }\n  - { cpu1: reclaim addrN }\n";
    let anon = run_seed(&scenario(PAGES, reclaim));
    assert_ne!(anon.view_of("addrN").unwrap().entry, 0, "a swap entry");
    let file = PAGES.replace("value: 0xa0 }", "value: 0xa0, file: true }");
    let r = run_seed(&scenario(&file, reclaim));
    assert!(r.verdict.is_empty(), "{:?}", r.findings);
    assert_eq!(r.view_of("addrN").unwrap().entry, 0, "a file page: none");
}

#[test]
fn mremap_of_512_pages_is_refused_where_it_is_not_modelled() {
    let err = |pages: &str, step: &str| {
        parse(&format!(
            "name: t\nabout: t\n{pages}timeline:\n  - {{ {step} }}\nexpect: {{ seed: clean }}\n"
        ))
        .unwrap_err()
    };
    let e = err(PAGES, "cpu0: mremap addrA addrN 7");
    assert!(
        e.contains("moves one page, 512") && e.contains("262144"),
        "{e}"
    );
    let off = PAGES.replace("0x7f0000400000", "0x7f0000401000");
    let e = err(&off, "cpu0: mremap addrA addrN 512");
    assert!(
        e.contains("'addrN' is not in the first page of a 2 MiB region"),
        "{e}"
    );
    let crowded = format!("{PAGES}  addrB: {{ va: 0x7f0000001000, value: 0xb0 }}\n");
    let e = err(&crowded, "cpu0: mremap addrA addrN 512");
    assert!(e.contains("'addrB' lies in the 2 MiB region"), "{e}");
    let shared = "pages:
  addrF: { va: 0x7f0000000000, value: 0xf0, file: true }
  addrG: { va: 0x7f0000000000, file: true, shares: addrF, process: 1 }
  addrN: { va: 0x7f0000400000, absent: true }
";
    let e = err(shared, "cpu0: mremap addrF addrN");
    assert!(e.contains("another process maps too"), "{e}");
    // a 512-page mremap of a region no page table covers any more
    let twice = "  - { cpu0: mremap addrA addrN 512 }\n  - { cpu0: mremap addrA addrN 512 }\n";
    let e = run(&scenario(PAGES, twice), &RunOptions::policy(Policy::Seed))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no page table covers"), "{e}");
}

/// mremap of a whole 1 GiB region moves the PMD table (move_normal_pud,
/// 5.11): the page keeps its PTE in the same page table, and
/// CVE-2022-41222's race is the PMD one's. The bundled path with the rmap
/// lock taken (5.14) and the walk waiting for it is clean under arch only.
#[test]
fn a_1g_mremap_moves_the_pmd_table_and_races_as_the_cve_says() {
    let pages = "pages:
  addrA: { va: 0x7f0000000000, value: 0xa0 }
  addrN: { va: 0x7f0040000000, absent: true }
";
    let before = run_seed(&scenario(pages, "  - { dev0: read addrA }\n"));
    let old = before.view_of("addrA").unwrap().leaf.unwrap();
    let r = run_seed(&scenario(
        pages,
        "  - { cpu0: mremap addrA addrN 262144 }\n  - { dev0: read addrN }\n",
    ));
    let new = r.view_of("addrN").unwrap().leaf.unwrap();
    assert_eq!((new.pfn, new.entry_pa), (old.pfn, old.entry_pa));
    assert_eq!((r.dev[0].value, r.dev[0].fault), (0xa0, false));
    assert_eq!(r.view_of("addrA").unwrap().leaf, None);

    let race = load("mremap-pud-rmap-race.yaml");
    for p in Policy::ALL {
        let r = run(&race, &RunOptions::policy(p)).unwrap();
        assert_eq!(r.verdict, uaf(), "{p}");
    }
    // 97113eb39fa7 for the PUD move: the rmap lock around it
    let bundled = shootdown::mm::lang::BUNDLED
        .iter()
        .find(|(f, _)| f.ends_with("move_normal_pud.yaml"))
        .unwrap()
        .1;
    let body: String = bundled
        .lines()
        .skip_while(|l| !l.starts_with("move_normal_pud:"))
        .map(|l| {
            let l = match l.trim() {
                "- lock pud" => "        - rmap_lock va\n        - lock pud".to_string(),
                "- unlock: unlock pud" => {
                    "    - unlock:\n        - unlock pud\n        - rmap_unlock va".to_string()
                }
                _ => l.to_string(),
            };
            format!("  {}\n", l.replace('\n', "\n  "))
        })
        .collect();
    assert_eq!(body.matches("rmap_lock va").count(), 1, "{body}");
    assert_eq!(body.matches("rmap_unlock va").count(), 1, "{body}");
    let timeline = "timeline:
  - { dev0: read addrA }
  - { cpu0: mremap addrA addrN 262144 until move }
  - { cpu0: resume until unlock, cpu1: reclaim addrN }
  - { cpu2: write addrC 0xc1 }
  - { dev0: read addrA }
  - { cpu0: resume }
";
    let src = format!(
        "name: t\nabout: t\npages:\n  addrA: {{ va: 0x7f0000000000, value: 0xa0 }}\n  addrN: {{ va: 0x7f0040000000, absent: true }}\n  addrC: {{ va: 0x7f0080000000, value: 0xc0, cow: true, process: 1 }}\npaths:\n{body}{timeline}expect: {{ seed: use-after-free }}\n"
    );
    only_arch_is_clean(&parse(&src).unwrap());
    // both addresses at a 1 GiB boundary
    let off = pages.replace("0x7f0040000000", "0x7f0040200000");
    let e = parse(&format!(
        "name: t\nabout: t\n{off}timeline:\n  - {{ cpu0: mremap addrA addrN 262144 }}\nexpect: {{ seed: clean }}\n"
    ))
    .unwrap_err();
    assert!(e.contains("not in the first page of a 1 GiB region"), "{e}");
}

/// Every schedule within one preemption, under arch (6.6's notifying CPU
/// flush): the union of the verdicts.
fn explored_under_arch(s: &Scenario) -> BTreeSet<Violation> {
    let rules = shootdown::explore::play::Rules {
        overlap: false,
        requested: false,
        prune: true,
    };
    let bin = Path::new(env!("CARGO_BIN_EXE_shootdown"));
    shootdown::explore::fork::exhaustive(s, Policy::Arch, rules, 1, 100_000, 2, bin, None)
        .unwrap()
        .verdict
}

/// The timelines are clean under arch, their schedules are not: 4.15's
/// move_ptes drops the new PTL before its flush, so reclaim's walk can
/// free the page in between (what eb66ae030829 fixed in 4.19: both locks
/// held over the flush), and 4.20's move_normal_pmd holds no lock the walk
/// takes (97113eb39fa7 in 5.14). Each fix explores clean.
#[test]
fn exploring_under_arch_finds_the_races_the_fixes_close() {
    let reclaim = load("paths/mremap-reclaim-race.yaml");
    assert!(run(&reclaim, &RunOptions::policy(Policy::Arch))
        .unwrap()
        .verdict
        .is_empty());
    assert_eq!(explored_under_arch(&reclaim), uaf());
    assert!(explored_under_arch(&load("paths/mremap-clean-race-4.19.yaml")).is_empty());
    assert!(explored_under_arch(&load("paths/mremap-pmd-rmap-race-5.14.yaml")).is_empty());
}

/// scenarios/thp-mremap.yaml: a dirty THP's move flushes the CPU under the
/// old PMD lock, which reaches the IOMMU under arch only; under the others
/// the device reads through the old address until E, the frames the CPU
/// writes at the new one. Clean everywhere; the deposit moved with the
/// PMD, so the munmap at the new address finds it.
#[test]
fn a_thp_mremap_moves_the_huge_pmd_and_its_deposit() {
    let s = load("thp-mremap.yaml");
    for p in Policy::ALL {
        let r = run(&s, &RunOptions::policy(p)).unwrap();
        assert!(
            r.as_expected() && r.verdict.is_empty(),
            "{p}: {:?}",
            r.findings
        );
        let a: Vec<_> = (r.dev.iter())
            .filter(|d| d.page == "addrA")
            .map(|d| (d.fault, d.value))
            .collect();
        let want = if p == Policy::Arch {
            vec![(false, 0xa0), (true, 0), (true, 0), (true, 0)]
        } else {
            vec![(false, 0xa0), (false, 0xa0), (false, 0xa1), (true, 0)]
        };
        assert_eq!(a, want, "{p}");
        // one frame throughout: the device read the CPU's store through
        // the old address, and reads it at the new one
        let n = r.dev.iter().find(|d| d.page == "addrN").unwrap();
        assert_eq!(
            (n.fault, n.value, n.pa >> 12),
            (false, 0xa1, r.dev[0].pa >> 12),
            "{p}"
        );
        // the old address's window closes at E (arch: at the flush under
        // the lock), with no finding
        assert!(r.windows.iter().any(|w| w.page == 0), "{p}");
    }
}

/// Without the deposit's move (an override that drops it), the zap at the
/// new address finds no deposited table: the run stops there.
#[test]
fn a_thp_mremap_that_leaves_the_deposit_behind_breaks_the_zap() {
    use shootdown::mm::lang::Paths;
    let def = Paths::bundled().get("move_huge_pmd").unwrap();
    let own = def.0.to_yaml(2);
    let line = "          - \"if pt != 0 then deposit new_pmd, pt\"\n";
    assert!(own.contains(line), "{own}");
    let own = own.replace(line, "");
    let src = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/thp-mremap.yaml"),
    )
    .unwrap()
    .replace("timeline:", &format!("paths:\n{own}timeline:"));
    let s = Scenario::parse(Path::new("t.yaml"), &src).unwrap();
    let e = run(&s, &RunOptions::policy(Policy::Seed))
        .unwrap_err()
        .to_string();
    assert!(e.contains("munmap") && e.contains("0x7f0000600000"), "{e}");
}
