//! NUMA balancing's hinting entries: `numa-hint` (change_prot_numa, the
//! `prot_numa` input of paths/change_protection.yaml) and do_numa_page, for
//! a CPU access and for a device's Page Request.

use shootdown::mm::Policy;
use shootdown::scenario::{Arch, Scenario, ThreadRef};
use shootdown::sim::{run, RunOptions, RunReport};
use std::path::Path;

fn bundled() -> Scenario {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/numa-hint.yaml");
    Scenario::load(&p).unwrap()
}

fn parse(timeline: &str) -> Scenario {
    let src = format!(
        "name: t
about: numa
pages:
  addrA: {{ va: 0x7f0000000000, value: 0xa0 }}
timeline:
{timeline}expect: {{ always: clean, seed: clean, arch: clean, end-only: clean }}
"
    );
    Scenario::parse(Path::new("n.yaml"), &src).unwrap_or_else(|e| panic!("{e}"))
}

fn lines(r: &RunReport, t: ThreadRef) -> Vec<String> {
    (r.slots.iter())
        .flat_map(|s| &s.lines)
        .filter(|l| l.thread == t)
        .map(|l| l.text.clone())
        .collect()
}

#[test]
fn a_hinting_fault_makes_the_page_present_again_for_the_cpu_and_the_device() {
    for p in Policy::ALL {
        let r = run(&bundled(), &RunOptions::policy(p)).unwrap();
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        let dev0 = lines(&r, ThreadRef::Dev(0)).join("; ");
        assert!(
            dev0.contains("page request (write addrA), the kernel's I/O page fault handler: vma, numa, respond, responded -> Success"),
            "{p}: {dev0}"
        );
        assert_eq!(
            lines(&r, ThreadRef::Cpu(2)),
            ["read addrB: numa, start, lock, clear_flush, set_entry, remove_rmap, notify, unlock, end, copy, remap, free, load"],
            "{p}"
        );
        let b: Vec<_> = r.dev.iter().filter(|d| d.page == "addrB").collect();
        assert_eq!(b[0].value, 0xb0, "{p}: the migrated page keeps its value");
        assert_eq!(
            r.view_of("addrB").unwrap().leaf.map(|l| l.pfn),
            Some(b[0].pa >> 12)
        );
        // the page never moved: every access is to its first frame
        let a: Vec<_> = r.dev.iter().filter(|d| d.page == "addrA").collect();
        assert!(
            a.iter().all(|d| !d.fault && d.pa >> 12 == a[0].pa >> 12),
            "{p}: {a:?}"
        );
        assert_eq!(a.last().unwrap().value, 0xa1, "{p}");
        for v in &r.final_view {
            let l = v.leaf.expect("present again");
            assert!(l.writable, "{p}: {v:?}");
        }
    }
}

#[test]
fn a_hinting_entry_is_the_pte_without_p_and_the_kernel_still_counts_it_present() {
    let s = parse("  - { dev0: read addrA }\n  - { cpu0: numa-hint addrA }\n");
    for p in Policy::ALL {
        let r = run(&s, &RunOptions::policy(p)).unwrap();
        let v = &r.final_view[0];
        assert!(v.leaf.is_none(), "{p}: no walker sees it");
        assert_eq!(
            v.entry & 0x101,
            0x100,
            "{p}: P clear, PROTNONE set: {:#x}",
            v.entry
        );
        assert_eq!(v.entry >> 12, r.dev[0].pa >> 12, "{p}: the frame is kept");
    }
    // the kernel's paths see a present page: migration moves it
    let s = parse("  - { dev0: read addrA }\n  - { cpu0: numa-hint addrA }\n  - { cpu0: migrate addrA }\n  - { dev0: read addrA }\n");
    let r = run(&s, &RunOptions::policy(Policy::Seed)).unwrap();
    assert!(r.verdict.is_empty(), "{:?}", r.findings);
    let l = r.final_view[0]
        .leaf
        .expect("remove_migration_ptes maps the new page");
    assert_ne!(l.pfn, r.dev[0].pa >> 12);
    assert_eq!((r.dev[1].value, r.dev[1].pa >> 12), (0xa0, l.pfn));
}

#[test]
fn what_change_pte_range_would_skip_is_refused() {
    let refused = |t: &str, what: &str| {
        let e = shootdown::sim::run(&parse(t), &RunOptions::policy(Policy::Seed)).unwrap_err();
        assert!(e.to_string().contains(what), "{e}");
    };
    refused(
        "  - { cpu0: numa-hint addrA }\n  - { cpu0: numa-hint addrA }\n",
        "PROT_NONE already",
    );
    refused(
        "  - { cpu0: numa-hint addrA }\n  - { cpu0: mprotect addrA ro }\n",
        "made PROT_NONE",
    );
    // without PRI the device's access faults; the page stays hinted
    let r = run(
        &parse("  - { cpu0: numa-hint addrA }\n  - { dev0: read addrA }\n"),
        &RunOptions::policy(Policy::Seed),
    )
    .unwrap();
    assert!(r.dev[0].fault && r.final_view[0].leaf.is_none());
    // a hugetlb page, a COW-shared THP and the huge zero page are refused
    // by the parser
    for kind in [
        "hugetlb: true",
        "thp: true, cow: true",
        "thp: true, zero: true",
    ] {
        let src = format!("name: t\nabout: t\npages:\n  addrA: {{ va: 0x7f0000000000, value: 0, {kind} }}\ntimeline:\n  - {{ cpu0: numa-hint addrA }}\nexpect: {{ seed: clean }}\n");
        let e = Scenario::parse(Path::new("n.yaml"), &src).unwrap_err();
        assert_eq!(e.line, 6, "{e}");
    }
}

#[test]
fn a_hinting_entry_on_the_risc_v_socket() {
    if !shootdown::riscv::model::present() {
        return;
    }
    let s = parse("  - { dev0: read addrA }\n  - { cpu0: numa-hint addrA }\n  - { dev0: read addrA }\n  - { cpu1: read addrA }\n  - { dev0: read addrA }\n");
    let (s, _) = s.with_arch(Arch::RiscvSv39).unwrap();
    for p in Policy::ALL {
        let r = run(&s, &RunOptions::policy(p)).unwrap();
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        // V clear: the IOMMU's walk faults until do_numa_page
        assert!(r.dev[1].fault, "{p}: {:?}", r.dev);
        assert!(
            !r.dev[2].fault && r.dev[2].value == 0xa0,
            "{p}: {:?}",
            r.dev
        );
    }
}

#[test]
fn a_misplaced_page_is_migrated_by_its_hinting_fault() {
    let src = "name: t
about: numa
params: { pri: 4 }
pages:
  addrA: { va: 0x7f0000000000, value: 0xa0 }
  addrB: { va: 0x7f0000001000, value: 0xb0 }
timeline:
  - { dev0: read addrA, dev1: read addrB }
  - { cpu0: numa-hint addrA misplaced, cpu1: numa-hint addrB misplaced }
  - { dev0: write addrA 0xa1 }
  - { cpu2: read addrB }
  - { dev0: read addrA, dev1: read addrB }
expect: { always: clean, seed: clean, arch: clean, end-only: clean }
";
    let s = Scenario::parse(Path::new("n.yaml"), src).unwrap();
    let migration = "numa, start, lock, clear_flush, set_entry, remove_rmap, notify, unlock, end, copy, remap, free";
    for p in Policy::ALL {
        let r = run(&s, &RunOptions::policy(p)).unwrap();
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        // the device's Page Request: do_numa_page, then migrate_misplaced_page
        let dev0 = lines(&r, ThreadRef::Dev(0)).join("; ");
        assert!(
            dev0.contains(&format!("vma, {migration}, respond, responded -> Success")),
            "{p}: {dev0}"
        );
        // the CPU's fault: the same, then the load
        assert_eq!(
            lines(&r, ThreadRef::Cpu(2)),
            [format!("read addrB: {migration}, load")],
            "{p}"
        );
        // both pages moved, their values with them
        for (page, value) in [("addrA", 0xa1), ("addrB", 0xb0)] {
            let d: Vec<_> = r.dev.iter().filter(|d| d.page == page).collect();
            let last = d.last().unwrap();
            assert_ne!(d[0].pa >> 12, last.pa >> 12, "{p}: {page} did not move");
            assert_eq!(last.value, value, "{p}: {page}");
            assert_eq!(
                r.view_of(page).unwrap().leaf.map(|l| l.pfn),
                Some(last.pa >> 12)
            );
        }
    }
    let bad = src.replace("addrA misplaced", "addrA elsewhere");
    let e = Scenario::parse(Path::new("n.yaml"), &bad).unwrap_err();
    assert_eq!(e.line, 9, "{e}");
}

/// A THP's hinting PMD (change_huge_pmd with prot_numa): its fault,
/// do_huge_pmd_numa_page, makes it present again in place, or, misplaced,
/// migrates the whole THP (migrate_misplaced_transhuge_page), for the CPU
/// and for a device's Page Request.
#[test]
fn a_thps_hinting_fault_restores_or_migrates_the_whole_page() {
    let src = "name: t
about: numa
params: { pri: 4 }
pages:
  addrT: { va: 0x7f0000201000, value: 0x70, thp: true }
  addrU: { va: 0x7f0000601000, value: 0x60, thp: true }
timeline:
  - { dev0: read addrT, dev1: read addrU }
  - { cpu0: numa-hint addrT, cpu1: numa-hint addrU misplaced }
  - { cpu2: read addrT, dev1: write addrU 0x61 }
  - { dev0: read addrT, dev1: read addrU }
expect: { always: clean, seed: clean, arch: clean, end-only: clean }
";
    let s = Scenario::parse(Path::new("n.yaml"), src).unwrap();
    // the hinting PMD keeps the frame, P clear, PROT_NONE and PS set
    let hinted =
        src.split("  - { cpu2").next().unwrap().to_string() + "expect: { always: clean }\n";
    let r = run(
        &Scenario::parse(Path::new("n.yaml"), &hinted).unwrap(),
        &RunOptions::policy(Policy::Seed),
    )
    .unwrap();
    let t = r.view_of("addrT").unwrap();
    assert!(
        t.leaf.is_none() && t.entry & 0x181 == 0x180,
        "{:#x}",
        t.entry
    );
    assert_eq!(t.entry >> 12, r.dev[0].pa >> 21 << 9);
    for p in Policy::ALL {
        let r = run(&s, &RunOptions::policy(p)).unwrap();
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        // not misplaced: present again in place
        assert_eq!(
            lines(&r, ThreadRef::Cpu(2)),
            ["read addrT: clear_pmdnuma, done, load"],
            "{p}"
        );
        let t: Vec<_> = r.dev.iter().filter(|d| d.page == "addrT").collect();
        assert_eq!(t[1].pa, t[0].pa, "{p}");
        // misplaced, through the device's Page Request: the THP moved
        let dev1 = lines(&r, ThreadRef::Dev(1)).join("; ");
        assert!(
            dev1.contains("numa, flush_pending, copy, start, lock, clear_flush, unlock, end, free"),
            "{p}: {dev1}"
        );
        let u: Vec<_> = r.dev.iter().filter(|d| d.page == "addrU").collect();
        let last = u.last().unwrap();
        assert_ne!(u[0].pa >> 21, last.pa >> 21, "{p}: the THP did not move");
        assert_eq!(last.value, 0x61, "{p}");
        let leaf = r.view_of("addrU").unwrap().leaf.unwrap();
        assert_eq!((leaf.pfn, leaf.writable), (last.pa >> 12, true), "{p}");
    }
}

/// 4.15's migration of a misplaced THP copies before its first secondary
/// flush: a device write in between is lost (scenarios/thp-numa-migrate.yaml);
/// 4.20's invalidate_range before the copy (paths/thp-numa-migrate-4.20.yaml)
/// makes it fault, except under end-only, where nothing is flushed before E.
#[test]
fn a_thp_migrated_by_numa_balancing_loses_a_device_write_until_4_20() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let bug = Scenario::load(&root.join("thp-numa-migrate.yaml")).unwrap();
    let fix = Scenario::load(&root.join("paths/thp-numa-migrate-4.20.yaml")).unwrap();
    for p in Policy::ALL {
        let r = run(&bug, &RunOptions::policy(p)).unwrap();
        assert_eq!(
            r.expected.as_ref(),
            Some(&r.verdict),
            "{p}: {:?}",
            r.findings
        );
        let landed = !r.dev[1].fault;
        assert_eq!(landed, p != Policy::Arch, "{p}: {:?}", r.dev);
        if landed {
            assert_eq!(r.dev[1].pa >> 21, r.dev[0].pa >> 21, "{p}: the old THP");
        }
        assert_eq!(r.dev[2].value, 0x41, "{p}: the new THP has the copy only");
        let r = run(&fix, &RunOptions::policy(p)).unwrap();
        assert_eq!(
            r.expected.as_ref(),
            Some(&r.verdict),
            "{p}: {:?}",
            r.findings
        );
        assert_eq!(r.dev[1].fault, p != Policy::EndOnly, "{p}: {:?}", r.dev);
        let cpu1 = lines(&r, ThreadRef::Cpu(1)).join("; ");
        assert!(cpu1.contains("lock, set_pmd, unlock, free"), "{p}: {cpu1}");
    }
}

/// What the model does not do with a THP's hinting PMD is an error naming
/// it, never a silent skip (exit_mmap used to leave the PMD and its page).
#[test]
fn a_thps_hinting_pmd_is_refused_where_it_is_not_modelled() {
    for a in [
        "munmap addrT 512",
        "madv-dontneed addrT 512",
        "exit",
        "mprotect addrT ro",
        "numa-hint addrT",
    ] {
        let src = format!(
            "name: t\nabout: t\npages:\n  addrT: {{ va: 0x7f0000201000, value: 0x70, thp: true }}\ntimeline:\n  - {{ cpu0: numa-hint addrT }}\n  - {{ cpu0: {a} }}\nexpect: {{ seed: clean }}\n"
        );
        let s = Scenario::parse(Path::new("n.yaml"), &src).unwrap();
        let e = run(&s, &RunOptions::policy(Policy::Seed)).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("n.yaml:7") && e.contains("NUMA balancing made PROT_NONE"),
            "{a}: {e}"
        );
    }
}
