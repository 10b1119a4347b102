//! The path language end to end: the bundled `wp_page_copy` keeps the COW
//! path's checkpoints, a scenario overrides it or calls a path of its own,
//! every scenario under scenarios/paths/ gives its `expect` under each
//! policy, and a mistake in a path is an error naming its file and line.

use shootdown::checker::Violation;
use shootdown::mm::lang::{OpKind, Paths};
use shootdown::mm::{
    Policy, CHECKPOINTS_COLLAPSE, CHECKPOINTS_DISCARD, CHECKPOINTS_EXIT, CHECKPOINTS_HUGETLB,
    CHECKPOINTS_KSM, CHECKPOINTS_MADV_FREE, CHECKPOINTS_MIGRATE, CHECKPOINTS_MKCLEAN,
    CHECKPOINTS_RECLAIM, CHECKPOINTS_THP_FALLBACK, CHECKPOINTS_UNBIND, CHECKPOINTS_UNMAP_HUGETLB,
    CHECKPOINTS_WP_PAGE_COPY, CHECKPOINTS_ZAP, CHECKPOINTS_ZERO_SPLIT,
};
use shootdown::scenario::Scenario;
use shootdown::sim::{run, RunOptions, RunReport};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn load(rel: &str) -> Scenario {
    Scenario::load(&root().join(rel)).unwrap_or_else(|e| panic!("{e}"))
}

fn run_under(s: &Scenario, policy: Policy) -> RunReport {
    run(s, &RunOptions::policy(policy)).unwrap_or_else(|e| panic!("{}: {e}", s.name))
}

#[test]
fn the_bundled_wp_page_copy_keeps_the_cow_checkpoints() {
    let d = Paths::bundled().wp_page_copy();
    let mut want: Vec<&str> = CHECKPOINTS_WP_PAGE_COPY
        .iter()
        .copied()
        .filter(|c| *c != "store") // the store's own, after the handler
        .collect();
    want.push("reuse");
    assert_eq!(d.0.checkpoints(), want);
    assert_eq!(d.0.file, "paths/wp_page_copy.yaml");
    assert!(d.0.follows.contains("wp_page_copy"));
    // The bundled file is the one in the repository, compiled in.
    let on_disk = std::fs::read_to_string(root().join(&d.0.file)).unwrap();
    let again = shootdown::mm::lang::parse_file(&d.0.file, &on_disk).unwrap();
    assert_eq!(again[0], *d.0);
}

#[test]
fn the_bundled_paths_keep_the_checkpoints_of_the_rust_paths_they_replaced() {
    let b = Paths::bundled();
    assert_eq!(b.sva_unbind().0.checkpoints(), CHECKPOINTS_UNBIND);
    assert_eq!(b.madvise_free().0.checkpoints(), CHECKPOINTS_MADV_FREE);
    assert_eq!(b.mkclean().0.checkpoints(), CHECKPOINTS_MKCLEAN);
    assert_eq!(b.migrate().0.checkpoints(), CHECKPOINTS_MIGRATE);
    assert_eq!(b.ksm().0.checkpoints(), CHECKPOINTS_KSM);
    assert_eq!(b.zero_split().0.checkpoints(), CHECKPOINTS_ZERO_SPLIT);
    assert_eq!(b.thp_fallback().0.checkpoints(), CHECKPOINTS_THP_FALLBACK);
    assert_eq!(b.collapse().0.checkpoints(), CHECKPOINTS_COLLAPSE);
    assert_eq!(
        b.unmap_hugepage_range().0.checkpoints(),
        CHECKPOINTS_UNMAP_HUGETLB
    );
    assert_eq!(b.exit_mmap().0.checkpoints(), CHECKPOINTS_EXIT);
    // Reclaim's one path has the swap, file and MADV_FREE branches.
    let mut r = b.reclaim().0.checkpoints();
    let mut want = [CHECKPOINTS_RECLAIM, CHECKPOINTS_DISCARD].concat();
    r.sort_unstable();
    want.sort_unstable();
    want.dedup();
    assert_eq!(r, want);
    // The two hugetlb paths shared one list in Rust: each keeps its share.
    for d in [b.hugetlb_mprotect(), b.hugetlb_fork()] {
        let c = d.0.checkpoints();
        assert!(c.iter().all(|c| CHECKPOINTS_HUGETLB.contains(c)), "{c:?}");
        assert_eq!(c.len(), if d.0.name.starts_with("copy") { 8 } else { 7 });
    }
}

#[test]
fn the_bundled_zap_pte_range_keeps_the_munmap_checkpoints() {
    // the zap's own and those of the split it calls (split_huge_pmd)
    let b = Paths::bundled();
    let d = b.zap_pte_range();
    let mut c = d.0.checkpoints();
    c.extend(b.thp_split().0.checkpoints());
    let mut want = CHECKPOINTS_ZAP.to_vec();
    c.sort_unstable();
    want.sort_unstable();
    assert_eq!(c, want);
    assert!(d.0.follows.contains("zap_pte_range"));
}

/// A munmap from a table's last entry into the next region: the loop stops
/// at the table's end. (The Rust path it replaced computed the end again
/// on each step and, started at the boundary, read entry 0 of the old
/// table as the next region's first: it cleared addrP, outside the range.)
#[test]
fn munmap_across_a_table_boundary_leaves_the_table_s_first_page_alone() {
    let src = "name: t\nabout: t\npages:\n  addrP: { va: 0x7f0000000000, value: 0x50 }\n  addrQ: { va: 0x7f00001ff000, value: 0x51 }\ntimeline:\n  - { dev0: read addrQ }\n  - { cpu0: munmap addrQ 2 }\n  - { dev0: read addrP }\n  - { dev1: read addrQ }\nexpect: { seed: clean }\n";
    let s = Scenario::parse(Path::new("t.yaml"), src).unwrap();
    let r = run_under(&s, Policy::Seed);
    assert!(r.verdict.is_empty(), "{:?}", r.findings);
    assert!(r.view_of("addrP").unwrap().leaf.is_some());
    assert_eq!(r.view_of("addrQ").unwrap().leaf, None);
    let p = r.dev.iter().rfind(|d| d.page == "addrP").unwrap();
    assert!(!p.fault);
    assert_eq!(p.value, 0x50);
    assert!(r.dev.iter().rfind(|d| d.page == "addrQ").unwrap().fault);
}

#[test]
fn every_path_scenario_gives_its_expect_under_every_policy() {
    let mut n = 0;
    for e in std::fs::read_dir(root().join("scenarios/paths")).unwrap() {
        let p = e.unwrap().path();
        let s = Scenario::load(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.expect.len(), 4, "{}: expect under every policy", s.name);
        for policy in Policy::ALL {
            let r = run_under(&s, policy);
            assert!(
                r.as_expected(),
                "{} under {policy}: {:?}, expected {:?}",
                s.name,
                r.verdict,
                r.expected
            );
        }
        n += 1;
    }
    assert!(n >= 3);
}

/// Moving the flush out from under the PTL is what breaks case B: the
/// same timeline with the bundled path is clean under seed.
#[test]
fn moving_the_flush_after_unlock_breaks_case_b_under_seed() {
    let moved = load("scenarios/paths/cow-flush-after-unlock.yaml");
    assert!(moved.paths.from_scenario == ["wp_page_copy"]);
    let r = run_under(&moved, Policy::Seed);
    assert!(
        r.verdict.contains(&Violation::OrderViolation),
        "{:?}",
        r.findings
    );
    // What the device read: A's value from before cpu2's store.
    let a = r.dev.iter().rev().find(|d| d.page == "addrA").unwrap();
    assert_eq!(a.value, 0xa0);

    let mut bundled = moved.clone();
    bundled.paths = Paths::default();
    let r = run_under(&bundled, Policy::Seed);
    assert!(r.verdict.is_empty(), "{:?}", r.findings);
    let a = r.dev.iter().rev().find(|d| d.page == "addrA").unwrap();
    assert_eq!(a.value, 0xa2);
}

/// Freeing before the flush is a use-after-free whatever the policy; in
/// Linux's order only end-only (every flush deferred to E) is.
#[test]
fn the_order_of_free_and_flush_decides() {
    let first = load("scenarios/paths/zap-free-first.yaml");
    let in_order = load("scenarios/paths/zap-in-order.yaml");
    for p in [Policy::Always, Policy::Seed, Policy::Arch] {
        assert!(run_under(&first, p)
            .verdict
            .contains(&Violation::UseAfterFree));
        assert!(run_under(&in_order, p).verdict.is_empty());
    }
}

#[test]
fn a_scenario_with_paths_reads_back_as_itself() {
    let s = load("scenarios/paths/cow-flush-after-unlock.yaml");
    let back = Scenario::parse(&s.path, &s.to_yaml()).unwrap_or_else(|e| panic!("{e}"));
    let a = s.paths.get("wp_page_copy").unwrap();
    let b = back.paths.get("wp_page_copy").unwrap();
    assert_eq!(a.0.checkpoints(), b.0.checkpoints());
    let ops = |d: &shootdown::mm::lang::PathDef| -> Vec<(String, OpKind)> {
        d.steps
            .iter()
            .flat_map(|s| s.ops.iter().map(|o| (o.text.clone(), o.kind.clone())))
            .collect()
    };
    assert_eq!(ops(&a.0), ops(&b.0));
    assert_eq!(back.timeline.len(), s.timeline.len());
}

/// A path with `until` at one of its own checkpoints, and a broken path,
/// give an error with the scenario file and line.
fn scenario_with(path_steps: &str, timeline: &str) -> String {
    format!(
        "name: t\nabout: t\npages:\n  addrA: {{ va: 0x7f0000000000, value: 0xa0 }}\npaths:\n  p:\n    follows: test\n    steps:\n{path_steps}timeline:\n{timeline}expect: {{ seed: clean }}\n"
    )
}

#[test]
fn mistakes_in_a_path_name_the_file_and_line() {
    let parse = |src: &str| Scenario::parse(Path::new("my.yaml"), src);
    // A typo in a primitive: the line of the primitive.
    let src = scenario_with(
        "      - a: lock pte\n      - b: unlcok pte\n",
        "  - { cpu0: call p addrA }\n",
    );
    let e = parse(&src).unwrap_err();
    assert_eq!(e.line, 10, "{e}");
    assert!(e.to_string().contains("unknown primitive 'unlcok'"), "{e}");
    // `until` a checkpoint the path does not have.
    let src = scenario_with(
        "      - a: lock pte\n",
        "  - { cpu0: call p addrA until b }\n",
    );
    let e = parse(&src).unwrap_err();
    assert!(e.to_string().contains("unknown checkpoint 'b'"), "{e}");
    // `until` one of the path's own checkpoints is fine.
    let src = scenario_with(
        "      - a: lock pte\n      - b: unlock pte\n",
        "  - { cpu0: call p addrA until a }\n  - { cpu0: resume }\n",
    );
    parse(&src).unwrap_or_else(|e| panic!("{e}"));
    // Calling a path nobody defined.
    let src = scenario_with("      - a: lock pte\n", "  - { cpu0: call q addrA }\n");
    let e = parse(&src).unwrap_err();
    assert!(e.to_string().contains("no path 'q'"), "{e}");
    // A fault handler cannot be called.
    let src = scenario_with(
        "      - a: lock pte\n",
        "  - { cpu0: call wp_page_copy addrA }\n",
    );
    let e = parse(&src).unwrap_err();
    assert!(e.to_string().contains("is a fault handler"), "{e}");
    // A device thread does not run kernel paths.
    let src = scenario_with("      - a: lock pte\n", "  - { dev0: call p addrA }\n");
    assert!(parse(&src).is_err());
}

fn run_err(path_steps: &str) -> String {
    let src = scenario_with(path_steps, "  - { cpu0: call p addrA }\n");
    let s = Scenario::parse(Path::new("my.yaml"), &src).unwrap_or_else(|e| panic!("{e}"));
    match run(&s, &RunOptions::policy(Policy::Seed)) {
        Ok(_) => panic!("ran: {path_steps}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_path_that_fails_at_run_time_names_its_line() {
    // A variable read on a way that never set it.
    let e = run_err("      - a:\n          - if 1 goto b\n          - x = 1\n      - b: put x\n");
    assert!(e.contains("my.yaml:12"), "{e}");
    assert!(e.contains("'x' is read before it is set"), "{e}");
    // A read outside memory.
    let e = run_err("      - a: x = read(0xfffffffffffff000)\n");
    assert!(e.contains("my.yaml:9") && e.contains("step 'a'"), "{e}");
    // select evaluates the side it chooses only: the failing read on the
    // other side is never made, and the path runs on to its next error.
    let e = run_err("      - a:\n          - x = select(1, 0 - 0, read(0xfffffffffffff000))\n          - y = select(0, read(0xfffffffffffff000), 0 - 1)\n");
    assert!(
        e.contains("my.yaml:11") && e.contains("does not fit in 64 bits"),
        "{e}"
    );
    // Arithmetic that wraps.
    let e = run_err("      - a: x = 0 - 1\n");
    assert!(e.contains("does not fit in 64 bits"), "{e}");
    // A loop that never reaches a checkpoint.
    let e = run_err("      - a: goto a\n");
    assert!(e.contains("the path loops"), "{e}");
    // A range that ends before it starts.
    let e = run_err("      - a: invalidate_range end, start\n");
    assert!(e.contains("ends") && e.contains("before it starts"), "{e}");
    // An array element read before it is set, and an index past the end.
    let e = run_err("      - a:\n          - x[3] = 1\n          - y = x[3] + x[4]\n");
    assert!(
        e.contains("my.yaml:11") && e.contains("'x[4]' is read before it is set"),
        "{e}"
    );
    let e = run_err("      - a: x[4096] = 1\n");
    assert!(e.contains("'x[4096]': an index is 0 to 4095"), "{e}");
    // A kernel mutex taken twice by one thread, or released unheld.
    let e =
        run_err("      - a: mutex_lock ksm_thread_mutex\n      - b: mutex_lock ksm_thread_mutex\n");
    assert!(
        e.contains("my.yaml:10") && e.contains("a mutex is not recursive"),
        "{e}"
    );
    // A path that returns still holding a lock: the action's line.
    let e = run_err("      - a: lock pte\n");
    assert!(
        e.contains("my.yaml:11: cpu0: 'call p addrA' returned holding a page-table lock"),
        "{e}"
    );
    let e = run_err("      - a: mutex_unlock ksm_thread_mutex\n");
    assert!(
        e.contains("my.yaml:9") && e.contains("which this thread does not hold"),
        "{e}"
    );
}

/// mremap moves the entry: the old address unmapped, the new one mapping
/// the same frame, and the device's read of the new address reads it.
#[test]
fn mremap_moves_the_page_to_the_absent_address() {
    let src = "name: t\nabout: t\npages:\n  addrA: { va: 0x7f0000000000, value: 0xa0 }\n  addrN: { va: 0x7f0000400008, absent: true }\ntimeline:\n  - { dev0: read addrN }\n  - { cpu0: mremap addrA addrN }\n  - { dev1: read addrN }\n  - { dev2: read addrA }\nexpect: { seed: clean }\n";
    let s = Scenario::parse(Path::new("t.yaml"), src).unwrap();
    for p in Policy::ALL {
        let r = run_under(&s, p);
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        assert_eq!(r.view_of("addrA").unwrap().leaf, None, "{p}");
        assert!(r.view_of("addrN").unwrap().leaf.is_some(), "{p}");
        let reads: Vec<_> = r.dev.iter().map(|d| (d.page.as_str(), d.fault)).collect();
        // Before the move the new address faults, after it the old one does.
        assert_eq!(
            reads,
            [("addrN", true), ("addrN", false), ("addrA", true)],
            "{p}"
        );
        // The word at the page's offset 8 was never written: the frame's 0.
        assert_eq!(r.dev[1].value, 0, "{p}");
    }
}

#[test]
fn mremap_is_refused_where_it_is_not_modelled() {
    let parse = |pages: &str, step: &str| {
        let src = format!("name: t\nabout: t\npages:\n{pages}timeline:\n  - {{ {step} }}\nexpect: {{ seed: clean }}\n");
        Scenario::parse(Path::new("t.yaml"), &src).map(|_| ())
    };
    let a = "  addrA: { va: 0x7f0000000000, value: 0xa0 }\n";
    let b = "  addrB: { va: 0x7f0000001000, value: 0xb0 }\n";
    let n = "  addrN: { va: 0x7f0000400000, absent: true }\n";
    let t = "  addrT: { va: 0x7f0000600000, thp: true }\n";
    let e = parse(&format!("{a}{b}"), "cpu0: mremap addrA addrB").unwrap_err();
    assert!(e.msg.contains("'addrB' is mapped"), "{e}");
    let e = parse(&format!("{t}{n}"), "cpu0: mremap addrT addrN").unwrap_err();
    assert!(
        e.msg
            .contains("mremap moves it whole, 'mremap addrT addrN 512'"),
        "{e}"
    );
    let h = "  addrH: { va: 0x7f0000600000, hugetlb: true }\n";
    let e = parse(&format!("{h}{n}"), "cpu0: mremap addrH addrN").unwrap_err();
    assert!(
        e.msg
            .contains("mremap moves it whole, 'mremap addrH addrN 512' (move_hugetlb_page_tables, Linux 5.16)"),
        "{e}"
    );
    let e = parse(&format!("{a}{n}"), "dev0: mremap addrA addrN").unwrap_err();
    assert!(e.msg.contains("only CPU threads"), "{e}");
    let e = parse(
        "  addrN: { va: 0x7f0000400000, absent: true, value: 1 }\n",
        "cpu0: read addrN",
    )
    .unwrap_err();
    assert!(e.msg.contains("an absent page"), "{e}");
    // Twice: the second finds the destination mapped, at run time.
    let src = format!("name: t\nabout: t\npages:\n{a}{n}timeline:\n  - {{ cpu0: mremap addrA addrN }}\n  - {{ cpu0: mremap addrA addrN }}\nexpect: {{ seed: clean }}\n");
    let s = Scenario::parse(Path::new("t.yaml"), &src).unwrap();
    let e = run(&s, &RunOptions::policy(Policy::Seed))
        .unwrap_err()
        .to_string();
    assert!(e.contains("mremap of a page that is not mapped"), "{e}");
}

/// 4.15's tlb_finish_mmu flushes the caller's whole range when another
/// thread's mmu_gather is in progress (mm_tlb_flush_nested): cpu1's
/// madvise finds the page already cleaned by cpu0 (nothing gathered) and
/// still flushes before it returns. The same path without the check (as
/// before 99baac21e458) returns with nothing flushed. Under arch only the
/// gather's flush reaches the IOMMU, so the count shows it.
#[test]
fn a_nested_gather_forces_the_flush_of_the_whole_range() {
    let src = "name: t\nabout: t\npages:\n  addrA: { va: 0x7f0000000000, value: 0xa0 }\ntimeline:\n  - { dev0: write addrA 0xd0 }\n  - { cpu0: madv-free addrA until unlock }\n  - { cpu1: madv-free addrA }\n  - { cpu0: resume }\nexpect: { arch: clean }\n";
    let with = Scenario::parse(Path::new("t.yaml"), src).unwrap();
    let r = run_under(&with, Policy::Arch);
    assert!(r.verdict.is_empty(), "{:?}", r.findings);
    assert_eq!(r.stats.flushes, 2, "cpu1's forced flush, then cpu0's own");

    // The bundled path without its nested check, as a scenario's own.
    let bundled = Paths::bundled().madvise_free();
    let mut own = bundled.0.to_yaml(2);
    let check = "          - \"if tlb_flush_nested() then tlb_adjust_range start, end\"\n";
    assert!(own.contains(check), "{own}");
    own = own.replace(check, "");
    let src = src.replace("timeline:", &format!("paths:\n{own}timeline:"));
    let without = Scenario::parse(Path::new("t.yaml"), &src).unwrap_or_else(|e| panic!("{e}"));
    assert!(!without
        .paths
        .get("madvise_free_pte_range")
        .unwrap()
        .0
        .steps
        .iter()
        .any(|s| s.ops.iter().any(|o| o.text.contains("nested"))));
    let r = run_under(&without, Policy::Arch);
    assert_eq!(r.stats.flushes, 1, "cpu0's alone");
}

/// 6.6's architecture code counts a CPU flush in entries of its stride:
/// x86 (the Intel driver's CPU) widens more than 33 to the whole address
/// space, `(0, -1UL)`, which Intel 6.6's driver turns into no command at
/// all. 40 pages at 4 KiB are widened; the same range at PMD_SIZE is one
/// entry and is not; `flush_tlb_mm` is the whole space on every CPU.
#[test]
fn a_cpu_flush_is_widened_by_its_stride_under_arch() {
    let with = |flush: &str, driver: &str| {
        let src = scenario_with(
            &format!("      - a: {flush}\n"),
            "  - { cpu0: call p addrA }\n",
        )
        .replace("pages:", &format!("driver: {driver}\npages:"));
        let s = Scenario::parse(Path::new("t.yaml"), &src).unwrap_or_else(|e| panic!("{e}"));
        let r = run_under(&s, Policy::Arch);
        (r.stats.flushes, r.stats.silent, r.stats.whole_pasid)
    };
    // 40 pages (the language has no `*`)
    let forty = "flush_tlb_range start, start + 0x28000";
    assert_eq!(with(forty, "intel@6.6"), (1, 1, 0), "widened: nothing sent");
    assert_eq!(with(&format!("{forty}, PAGE_SIZE"), "intel@6.6"), (1, 1, 0));
    assert_eq!(
        with(&format!("{forty}, PMD_SIZE"), "intel@6.6"),
        (1, 0, 0),
        "one entry"
    );
    assert_eq!(
        with("flush_tlb_range start, start + 0x21000", "intel@6.6"),
        (1, 0, 0)
    );
    assert_eq!(with(forty, "intel@6.7"), (1, 0, 1), "6.7: the whole PASID");
    assert_eq!(with("flush_tlb_mm", "intel@6.6"), (1, 1, 0));
    assert_eq!(with("flush_tlb_mm", "generic"), (1, 0, 1));
    // the generic driver stands for no CPU: its ranges stay as given
    assert_eq!(with(forty, "generic"), (1, 0, 0));
    // arm64 flushes the whole ASID from 512 entries
    assert_eq!(with(forty, "arm"), (1, 0, 0));
    assert_eq!(
        with("flush_tlb_range start, start + PMD_SIZE", "arm"),
        (1, 0, 1)
    );
    // a stride of 0 has no entries to count
    let e = run_err("      - a: flush_tlb_range start, end, 0\n");
    assert!(
        e.contains("my.yaml:9") && e.contains("a stride of 0"),
        "{e}"
    );
    // flush_tlb_mm takes no range
    let src = scenario_with(
        "      - a: flush_tlb_mm start, end\n",
        "  - { cpu0: call p addrA }\n",
    );
    let e = Scenario::parse(Path::new("my.yaml"), &src).unwrap_err();
    assert_eq!(e.line, 9, "{e}");
}

/// change_protection_range raises `mm->tlb_flush_pending` until its CPU
/// flush: a MADV_FREE that runs meanwhile and gathers nothing (the page is
/// already clean) still flushes its range at tlb_finish_mmu, as 4.15's
/// nested check does (99baac21e458). Without the inc/dec it returns with
/// nothing flushed. The change_protection is NUMA balancing's (of another
/// page of the process): it holds the mmap_lock for read, as MADV_FREE
/// does, so the two can run at once (an mprotect's write lock would keep
/// them apart).
#[test]
fn a_pending_change_protection_makes_a_madv_free_flush() {
    let src = "name: t\nabout: t\npages:\n  addrA: { va: 0x7f0000000000, value: 0xa0 }\n  addrB: { va: 0x7f0000200000, value: 0xb0 }\ntimeline:\n  - { dev0: write addrA 0xd0 }\n  - { cpu1: madv-free addrA }\n  - { cpu0: numa-hint addrB until unlock }\n  - { cpu1: madv-free addrA }\n  - { cpu0: resume }\nexpect: { arch: clean }\n";
    let with = Scenario::parse(Path::new("t.yaml"), src).unwrap();
    let flushes = |s: &Scenario| {
        let r = run_under(s, Policy::Arch);
        assert!(r.verdict.is_empty(), "{:?}", r.findings);
        r.stats.flushes
    };
    let bundled = Paths::bundled().mprotect();
    let mut own = bundled.0.to_yaml(2);
    for line in ["inc_tlb_flush_pending", "dec_tlb_flush_pending"] {
        let l = format!("          - \"{line}\"\n");
        assert!(own.contains(&l), "{own}");
        own = own.replace(&l, "");
    }
    let src2 = src.replace("timeline:", &format!("paths:\n{own}timeline:"));
    let without = Scenario::parse(Path::new("t.yaml"), &src2).unwrap_or_else(|e| panic!("{e}"));
    // cpu1's first madv-free and mprotect's own flush in both; the second
    // madv-free's forced flush only with the pending count
    assert_eq!(flushes(&with), flushes(&without) + 1);
}

/// An mmu_gather's flush counts entries of what it cleared
/// (`tlb_get_unmap_shift`): a THP's zap alone is one 2 MiB entry, which x86
/// does not widen, so Intel 6.6's driver gets the range; with one PTE
/// cleared too the same flush is 513 entries of 4 KiB, widened to
/// `(0, -1UL)`, which 6.6 drops (a use-after-free once the gather frees).
#[test]
fn a_huge_zap_flushes_2_mib_entries_unless_a_pte_was_cleared_too() {
    let with = |pages: u64, hugetlb: bool| {
        let kind = if hugetlb { "hugetlb" } else { "thp" };
        let src = format!("name: t\nabout: t\ndriver: intel@6.6\npages:\n  addrA: {{ va: 0x7f0000000000, value: 0xa0, {kind}: true }}\n  addrB: {{ va: 0x7f0000200000, value: 0xb0 }}\ntimeline:\n  - {{ dev0: read addrA }}\n  - {{ cpu0: munmap addrA {pages} }}\n  - {{ dev0: read addrA }}\nexpect: {{ arch: clean }}\n");
        let s = Scenario::parse(Path::new("t.yaml"), &src).unwrap_or_else(|e| panic!("{e}"));
        let r = run_under(&s, Policy::Arch);
        let last = r.dev.iter().rfind(|d| d.page == "addrA").unwrap();
        (r.stats.silent, last.fault, r.verdict.is_empty())
    };
    assert_eq!(with(512, false), (0, true, true), "one 2 MiB entry");
    assert_eq!(with(512, true), (0, true, true), "hugetlb: the same");
    assert_eq!(
        with(513, false),
        (1, false, false),
        "widened, dropped: the device still reads the freed THP"
    );
}

/// exit_mmap's release is the one flush of an exit: it reaches the driver
/// under every policy (the unmap after it reaches none), a process already
/// unbound releases nothing, and a second release is an error naming its
/// line.
#[test]
fn exit_flushes_once_at_its_release_and_never_after_an_unbind() {
    let src = "name: t\nabout: t\npages:\n  addrA: { va: 0x3f00000000, value: 0xa0 }\ntimeline:\n  - { dev0: read addrA }\n  - { cpu0: exit }\n  - { dev0: read addrA }\nexpect: { seed: clean }\n";
    for policy in Policy::ALL {
        let s = Scenario::parse(Path::new("t.yaml"), src).unwrap();
        let r = run_under(&s, policy);
        assert!(r.verdict.is_empty(), "{policy}: {:?}", r.findings);
        assert_eq!(r.stats.flushes, 1, "{policy}: the release alone");
        assert!(r.dev.last().unwrap().fault, "{policy}");
    }
    // unbind is the RISC-V socket's (a build without its design skips it)
    if shootdown::riscv::model::present() {
        let on_riscv = src.replace("pages:", "arch: riscv-sv39\npages:");
        let after_unbind = on_riscv.replace(
            "  - { cpu0: exit }",
            "  - { cpu0: unbind }\n  - { cpu0: exit }",
        );
        let commands = |src: &str| {
            let s = Scenario::parse(Path::new("t.yaml"), src).unwrap();
            run_under(&s, Policy::Seed).stats.commands
        };
        let unbind_alone = after_unbind.replace("  - { cpu0: exit }\n", "");
        assert!(commands(&unbind_alone) > 0);
        assert_eq!(
            commands(&after_unbind),
            commands(&unbind_alone),
            "the exit after an unbind sends nothing"
        );
    }
    let e = run_err("      - a: mmu_notifier_release\n      - b: mmu_notifier_release\n");
    assert!(
        e.contains("my.yaml:10") && e.contains("no notifier left"),
        "{e}"
    );
}

/// free_pgtables frees a region's page table only when the munmap empties
/// the region of the scenario's pages (its floor and ceiling): with addrB
/// left, the table stays and the device still reads addrB through it.
#[test]
fn munmap_frees_a_page_table_only_when_it_empties_the_region() {
    let src = |pages: u64| {
        format!("name: t\nabout: t\npages:\n  addrA: {{ va: 0x7f0000000000, value: 0xa0 }}\n  addrB: {{ va: 0x7f0000001000, value: 0xb0 }}\ntimeline:\n  - {{ cpu0: munmap addrA {pages} }}\n  - {{ dev0: read addrB }}\nexpect: {{ seed: clean }}\n")
    };
    let steps = |pages: u64| {
        let s = Scenario::parse(Path::new("t.yaml"), &src(pages)).unwrap();
        let r = run_under(&s, Policy::Seed);
        assert!(r.verdict.is_empty(), "{:?}", r.findings);
        let path: Vec<String> = (r.slots.iter())
            .flat_map(|s| s.lines.iter())
            .filter(|l| l.text.starts_with("munmap"))
            .map(|l| l.text.clone())
            .collect();
        (path.join(" "), r.dev.last().unwrap().fault)
    };
    let (one, fault) = steps(1);
    assert!(!one.contains("free_pgtables"), "{one}");
    assert!(!fault, "addrB is read through the table munmap kept");
    let (two, fault) = steps(2);
    assert!(two.contains("free_pgtables"), "{two}");
    assert!(fault);
}
