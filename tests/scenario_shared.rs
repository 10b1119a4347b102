//! A page-cache page two processes map (`shares:`), each bound to the
//! device with its own PASID: reclaim's and writeback's rmap walks visit
//! both mappings, each in its own address space
//! (`scenarios/shared-file.yaml`), and the format's refusals.

use shootdown::mm::Policy;
use shootdown::scenario::Scenario;
use shootdown::sim::{run, RunOptions, RunReport};
use std::path::Path;

fn bundled() -> Scenario {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/shared-file.yaml");
    Scenario::load(&p).unwrap()
}

fn parse(src: &str) -> Result<Scenario, String> {
    Scenario::parse(Path::new("p.yaml"), src).map_err(|e| e.to_string())
}

/// The CPU line of the scenario's step `slot`.
fn cpu_line(r: &RunReport, slot: usize) -> &str {
    let l = r.slots[slot].lines.iter().find(|l| l.text.contains(':'));
    l.map_or("", |l| l.text.as_str())
}

const F: &str = "  addrF: { va: 0x7f0000000000, value: 0x60, file: true }\n";
const G: &str = "  addrG: { va: 0x7f0000400000, file: true, process: 1, shares: addrF }\n";

/// A scenario of `pages` (lines under `pages:`), then `rest` (the
/// timeline, `paths:`), expected clean.
fn scenario(pages: &str, rest: &str) -> String {
    format!("name: t\nabout: t\npages:\n{pages}{rest}expect: {{ always: clean, seed: clean, arch: clean, end-only: clean }}\n")
}

#[test]
fn reclaim_unmaps_the_page_from_every_process_before_the_free() {
    for p in Policy::ALL {
        let r = run(&bundled(), &RunOptions::policy(p)).unwrap();
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        assert_eq!(r.expected.as_ref(), Some(&r.verdict), "{p}");
        let dev: Vec<_> = r
            .dev
            .iter()
            .map(|d| (d.page.as_str(), d.write, d.fault))
            .collect();
        assert_eq!(
            dev,
            [
                ("addrF", false, false),
                ("addrG", false, false),
                ("addrF", false, true), // process 0's mapping is gone
                ("addrG", true, false), // process 1's is still there
                ("addrG", false, true), // and then gone too
            ],
            "{p}"
        );
        // one frame through both PASIDs
        assert_eq!(r.dev[0].pa >> 12, r.dev[1].pa >> 12, "{p}");
        assert_eq!(r.dev[3].pa >> 12, r.dev[0].pa >> 12, "{p}");
        // the write through process 1 reached the disk
        assert_eq!(
            r.io.iter().map(|i| i.value).collect::<Vec<_>>(),
            [0x61],
            "{p}"
        );
        // the walk went to process 1 and back before the pageout
        let resume = cpu_line(&r, 3);
        assert!(
            resume.contains("(process 1), lock") && resume.contains("(process 0), pageout, free"),
            "{p}: {resume}"
        );
        // both mappings gone; the frame freed
        for page in ["addrF", "addrG"] {
            assert!(r.view_of(page).unwrap().leaf.is_none(), "{p}: {page}");
        }
        if p != Policy::EndOnly {
            // a notify per mapping (each its own PASID) before the free
            assert!(r.stats.flushes >= 2, "{p}: {:?}", r.stats);
        }
    }
}

/// Reclaim started from the second mapping walks to the first.
#[test]
fn the_walk_starts_wherever_reclaim_found_the_page() {
    let src = scenario(
        &format!("{F}{G}"),
        "timeline:\n  - { dev0: read addrF }\n  - { cpu0: reclaim addrG }\n  - { dev0: read addrF, dev1: read addrG }\n",
    );
    let r = run(&parse(&src).unwrap(), &RunOptions::policy(Policy::Seed)).unwrap();
    assert!(r.verdict.is_empty(), "{:?}", r.findings);
    let line = cpu_line(&r, 1);
    assert!(line.contains("end, (process 0), lock"), "{line}");
    assert!(line.contains("(process 1), pageout, free"), "{line}");
    assert!(r.dev[1..].iter().all(|d| d.fault), "{:?}", r.dev);
}

/// Without the rmap walk (a path override that drops `rmap_next`),
/// reclaim unmaps only the mapping it found: process 1 keeps its PTE and
/// its reference, so the frame stays allocated and dev1 keeps reading it.
#[test]
fn a_walk_that_stops_at_one_mapping_leaves_the_other() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bundled = std::fs::read_to_string(root.join("paths/try_to_unmap_one.yaml")).unwrap();
    assert!(bundled.contains("        - rmap_next _vma\n"));
    let path: String = (bundled.replace("        - rmap_next _vma\n", "").lines())
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("  {l}\n"))
        .collect();
    let src = scenario(
        &format!("{F}{G}"),
        &format!(
            "paths:\n{path}timeline:\n  - {{ cpu0: reclaim addrF }}\n  - {{ dev1: read addrG }}\n"
        ),
    );
    let r = run(&parse(&src).unwrap(), &RunOptions::policy(Policy::Seed)).unwrap();
    assert!(r.verdict.is_empty(), "{:?}", r.findings);
    assert!(!cpu_line(&r, 0).contains("(process 1)"));
    let g = r.view_of("addrG").unwrap();
    assert!(g.leaf.is_some(), "process 1 still maps the page");
    assert!(r.view_of("addrF").unwrap().leaf.is_none());
    assert!(!r.dev[0].fault && r.dev[0].value == 0x60, "{:?}", r.dev);
}

/// Writeback cleans and write-protects the page in both processes before
/// the I/O: a store made through either name is on the disk.
#[test]
fn writeback_cleans_every_mapping() {
    let src = scenario(
        &format!("{F}{G}"),
        "timeline:\n  - { dev1: write addrG 0x61 }\n  - { cpu0: writeback addrF }\n  - { dev0: write addrF 0x62 }\n",
    );
    for p in Policy::ALL {
        let r = run(&parse(&src).unwrap(), &RunOptions::policy(p)).unwrap();
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        assert_eq!(
            r.io.iter().map(|i| i.value).collect::<Vec<_>>(),
            [0x61],
            "{p}"
        );
        for page in ["addrF", "addrG"] {
            let l = r.view_of(page).unwrap().leaf.unwrap();
            assert!(!l.writable, "{p}: {page} write-protected");
        }
        // a write after writeback returned faults (the device has no PRI)
        assert!(r.dev[1].fault, "{p}: {:?}", r.dev);
        assert!(cpu_line(&r, 1).contains("(process 1), lock"), "{p}");
    }
}

#[test]
fn a_shared_page_is_refused_where_the_model_has_no_meaning_for_it() {
    let cases = [
        (
            "addrG: { va: 0x7f0000400000, file: true, process: 1, shares: addrX }",
            "not a page declared before it",
        ),
        (
            "addrG: { va: 0x7f0000400000, process: 1, shares: addrF }",
            "give both 'addrG' and 'addrF' 'file: true'",
        ),
        (
            "addrG: { va: 0x7f0000400000, file: true, shares: addrF }",
            "both in process 0",
        ),
        (
            "addrG: { va: 0x7f0000400008, file: true, process: 1, shares: addrF }",
            "same offset",
        ),
        (
            "addrG: { va: 0x7f0000400000, value: 0x61, file: true, process: 1, shares: addrF }",
            "one page holds one value",
        ),
    ];
    let reclaim = "timeline:\n  - { cpu0: reclaim addrF }\n";
    for (page, want) in cases {
        let e = parse(&scenario(&format!("{F}  {page}\n"), reclaim)).unwrap_err();
        assert!(e.contains(want) && e.contains("p.yaml:5"), "{page}: {e}");
    }
    // a second mapping in the same process, and a chain
    let h = "  addrH: { va: 0x7f0000800000, file: true, process: 1, shares: addrF }\n";
    let e = parse(&scenario(&format!("{F}{G}{h}"), reclaim)).unwrap_err();
    assert!(e.contains("one mapping per process"), "{e}");
    let h = "  addrH: { va: 0x7f0000800000, file: true, process: 2, shares: addrG }\n";
    let e = parse(&scenario(&format!("{F}{G}{h}"), reclaim)).unwrap_err();
    assert!(e.contains("share the first one"), "{e}");
    // an equal value is the same page's
    let g = "  addrG: { va: 0x7f0000400000, value: 0x60, file: true, process: 1, shares: addrF }\n";
    let src = scenario(&format!("{F}{g}"), "timeline:\n  - { dev0: read addrG }\n");
    let r = run(&parse(&src).unwrap(), &RunOptions::policy(Policy::Seed)).unwrap();
    assert_eq!(r.dev[0].value, 0x60);
}

const H: &str = "  addrH: { va: 0x7f0000200000, value: 0x70, hugetlb: true, file: true }\n";
const I: &str =
    "  addrI: { va: 0x7f0040200000, hugetlb: true, file: true, process: 1, shares: addrH }\n";

fn load(name: &str) -> Scenario {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name);
    Scenario::load(&p).unwrap()
}

/// A hugetlb page that shares another's shares its page table: one huge
/// entry, reached through both processes' PUD entries.
#[test]
fn a_shared_hugetlb_page_shares_its_page_table() {
    let src = scenario(&format!("{H}{I}"), "timeline:\n  - { dev0: read addrI }\n");
    let r = run(&parse(&src).unwrap(), &RunOptions::policy(Policy::Seed)).unwrap();
    let (h, i) = (r.view_of("addrH").unwrap(), r.view_of("addrI").unwrap());
    let (h, i) = (h.leaf.unwrap(), i.leaf.unwrap());
    assert_eq!(h.entry_pa, i.entry_pa, "one PMD entry for both");
    assert_eq!(h.pfn, i.pfn);
    assert_eq!((r.dev[0].value, r.dev[0].pa >> 12), (0x70, h.pfn));
}

/// 4.15's migration of a PMD-shared hugetlb page: the walk stops after the
/// first VMA (the one shared entry counted once), process 0 is never
/// notified, and its device's write after the copy is lost; 4.19's
/// huge_pmd_unshare lets the walk reach process 0.
#[test]
fn migration_of_a_pmd_shared_page_misses_a_process_until_4_19() {
    for p in Policy::ALL {
        let r = run(&load("hugetlb-share-migrate.yaml"), &RunOptions::policy(p)).unwrap();
        assert_eq!(
            r.expected.as_ref(),
            Some(&r.verdict),
            "{p}: {:?}",
            r.findings
        );
        let line = cpu_line(&r, 1);
        assert!(
            !line.contains("(process 0)"),
            "{p}: the walk stopped: {line}"
        );
        // dev0's write after the copy landed in the old page, which is freed
        let w = &r.dev[2];
        assert!(
            w.write && !w.fault && w.pa >> 12 == r.dev[0].pa >> 12,
            "{p}: {:?}",
            r.dev
        );
        assert_eq!(
            r.dev[3].value, 0x72,
            "{p}: dev0 reads its own lost write back"
        );
        assert_eq!(r.dev[4].value, 0x71, "{p}: the new page never got it");
        assert_ne!(
            r.dev[4].pa >> 21,
            r.dev[0].pa >> 21,
            "{p}: dev1 reads the new page"
        );

        let r = run(
            &load("paths/hugetlb-share-migrate-4.19.yaml"),
            &RunOptions::policy(p),
        )
        .unwrap();
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        let line = cpu_line(&r, 1);
        assert!(
            line.contains("lock, unshare_flush, unlock, end, (process 0), unmap_start"),
            "{p}: {line}"
        );
        assert!(r.dev[2].fault, "{p}: dev0's write after the copy faults");
        assert_eq!(r.dev[3].value, 0x71, "{p}");
        assert!(r.dev[4].fault, "{p}: process 1's PUD entry is gone");
    }
}

/// munmap unshares: process 1 loses its PUD entry, process 0 keeps the
/// page; under arch 4.15's path flushes nothing for process 1 (the
/// use-after-free once process 0 frees the page), 5.16's does.
#[test]
fn munmap_unshares_and_5_16_flushes_the_unshared_range() {
    let src = scenario(
        &format!("{H}{I}"),
        "timeline:\n  - { cpu0: munmap addrI 512 }\n",
    );
    let r = run(&parse(&src).unwrap(), &RunOptions::policy(Policy::Seed)).unwrap();
    assert!(r.view_of("addrI").unwrap().leaf.is_none());
    let h = r.view_of("addrH").unwrap();
    assert!(h.leaf.is_some_and(|l| l.writable) && h.value == Some(0x70));
    for p in Policy::ALL {
        let r = run(&load("hugetlb-share-munmap.yaml"), &RunOptions::policy(p)).unwrap();
        assert_eq!(
            r.expected.as_ref(),
            Some(&r.verdict),
            "{p}: {:?}",
            r.findings
        );
        assert_eq!(r.dev[2].fault, p != Policy::Arch, "{p}: {:?}", r.dev);
        let r = run(
            &load("paths/hugetlb-share-munmap-5.16.yaml"),
            &RunOptions::policy(p),
        )
        .unwrap();
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        assert!(r.dev[2].fault && r.dev[3].fault, "{p}: {:?}", r.dev);
    }
}

/// mprotect and exit of one process unshare the table too: the other
/// process's entry keeps its page and its write permission.
#[test]
fn mprotect_and_exit_leave_the_other_process_its_entry() {
    for step in ["cpu0: mprotect addrI ro", "cpu0: exit 1"] {
        let src = scenario(
            &format!("{H}{I}"),
            &format!("timeline:\n  - {{ {step} }}\n  - {{ dev0: write addrH 0x71 }}\n"),
        );
        for p in Policy::ALL {
            let r = run(&parse(&src).unwrap(), &RunOptions::policy(p)).unwrap();
            assert!(r.verdict.is_empty(), "{step} {p}: {:?}", r.findings);
            assert!(r.view_of("addrI").unwrap().leaf.is_none(), "{step} {p}");
            let h = r.view_of("addrH").unwrap();
            assert!(h.leaf.is_some_and(|l| l.writable), "{step} {p}");
            assert!(!r.dev[0].fault && h.value == Some(0x71), "{step} {p}");
        }
    }
}

#[test]
fn a_shared_hugetlb_page_is_refused_where_no_table_could_be_shared() {
    let reclaim = "timeline:\n  - { cpu0: migrate addrH }\n";
    let cases = [
        (
            "  addrI: { va: 0x7f0040400000, hugetlb: true, file: true, process: 1, shares: addrH }\n",
            "same offset in the 1 GiB region",
        ),
        (
            "  addrI: { va: 0x7f0040200000, file: true, process: 1, shares: addrH }\n",
            "one is a hugetlb page and one is not",
        ),
    ];
    for (i, want) in cases {
        let e = parse(&scenario(&format!("{H}{i}"), reclaim)).unwrap_err();
        assert!(e.contains(want) && e.contains("p.yaml:5"), "{e}");
    }
    // another page of process 0 in the shared 1 GiB
    let x = "  addrX: { va: 0x7f0000600000, value: 0x1 }\n";
    let e = parse(&scenario(&format!("{H}{I}{x}"), reclaim)).unwrap_err();
    assert!(
        e.contains("'addrX' lies in the 1 GiB region") && e.contains("p.yaml:6"),
        "{e}"
    );
    // fork of a shared hugetlb mapping
    let fork = "timeline:\n  - { cpu0: fork addrH }\n";
    let e = parse(&scenario(&format!("{H}{I}"), fork)).unwrap_err();
    assert!(e.contains("fork of a shared hugetlb mapping"), "{e}");
}

/// Migration of a small page-cache page other processes map is refused by
/// name (its walk is modelled for reclaim, writeback and hugetlb pages).
#[test]
fn migration_of_a_shared_small_page_is_refused() {
    let src = scenario(
        &format!("{F}{G}"),
        "timeline:\n  - { cpu0: migrate addrF }\n",
    );
    let e = run(&parse(&src).unwrap(), &RunOptions::policy(Policy::Seed)).unwrap_err();
    assert!(e.to_string().contains("or a shared file page"), "{e}");
}

/// 4.15's hugetlb unmap holds the file's i_mmap_rwsem for write around
/// __unmap_hugepage_range_final, and migration's rmap walk takes it for
/// read: a migration of the page cannot start while the munmap that
/// unshares its table is stopped inside, and starts once it is done.
#[test]
fn a_hugetlb_munmap_holds_i_mmap_rwsem_against_migrations_walk() {
    let inside = "timeline:\n  - { cpu0: munmap addrI 512 until lock }\n  - { cpu1: migrate addrH }\n  - { cpu0: resume }\n";
    let s = parse(&scenario(&format!("{H}{I}"), inside)).unwrap();
    let e = run(&s, &RunOptions::policy(Policy::Seed))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cpu1 waits for an rmap lock held by cpu0"),
        "{e}"
    );
    // The munmap resumed in the same step: the walk waits, then migrates
    // the page process 0 still maps.
    let after = "timeline:\n  - { cpu0: munmap addrI 512 until lock }\n  - { cpu0: resume, cpu1: migrate addrH }\n  - { dev0: read addrH }\n";
    let s = parse(&scenario(&format!("{H}{I}"), after)).unwrap();
    for p in Policy::ALL {
        let r = run(&s, &RunOptions::policy(p)).unwrap();
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        let migrate = (r.slots[1].lines.iter()).find(|l| l.text.starts_with("migrate addrH"));
        assert!(
            migrate.is_some_and(|l| l.text.contains("free")),
            "{p}: {:?}",
            r.slots[1].lines
        );
        let (moved, read) = (r.view_of("addrH").unwrap(), &r.dev[0]);
        assert_eq!(read.pa >> 12, moved.leaf.unwrap().pfn, "{p}: the new page");
        assert_eq!(read.value, 0x70, "{p}");
    }
}
