//! PCIe PRI end to end: the device's Page Request reaches the IOMMU's
//! page-request queue, the kernel's I/O page fault handler fixes the fault
//! (or refuses it) and answers with ATS.PRGR, and the device asks again;
//! a device that keeps faulting after Success responses gives up, and the
//! checker calls it `no-progress`.

use shootdown::checker::Violation;
use shootdown::mm::Policy;
use shootdown::rtl::inject_bits;
use shootdown::scenario::Scenario;
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

/// Every report line of the run, in order.
fn lines(r: &RunReport) -> Vec<String> {
    r.slots
        .iter()
        .flat_map(|s| s.lines.iter().map(|l| format!("{}: {}", l.thread, l.text)))
        .collect()
}

#[test]
fn a_cow_write_fault_is_fixed_by_the_kernel_and_the_retried_write_lands() {
    let s = scenario("pri-cow.yaml");
    for p in Policy::ALL {
        let r = run_one(&s, p);
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        let read = r.dev.first().unwrap();
        let write = r.dev.iter().find(|d| d.write).unwrap();
        assert!(!write.fault, "{p}: the retried write was granted");
        assert_ne!(write.pa >> 12, read.pa >> 12, "{p}: into the copy");
        assert_eq!(r.view_of("addrA").unwrap().value, Some(0xa1), "{p}");
        assert_eq!(r.stats.page_responses, 1, "{p}: one Page Request");
        let l = lines(&r);
        assert!(
            l.iter()
                .any(|t| t.starts_with("dev0: page request (write addrA)")
                    && t.contains("copy")
                    && t.ends_with("-> Success")),
            "{p}: {l:#?}"
        );
    }
}

#[test]
fn without_pri_the_same_write_faults_and_nothing_asks_the_kernel() {
    let mut s = scenario("pri-cow.yaml");
    s.params.pri = 0;
    let r = run_one(&s, Policy::Seed);
    let write = r.dev.iter().find(|d| d.write).unwrap();
    assert!(write.fault);
    assert_eq!(r.stats.page_responses, 0);
    assert_eq!(r.view_of("addrA").unwrap().value, Some(0xa0));
    assert!(!lines(&r).iter().any(|t| t.contains("page request")));
}

#[test]
fn a_permission_upgrade_without_flush_is_fine_for_an_iommu_that_walks_again() {
    let s = scenario("pri-reuse.yaml");
    for p in Policy::ALL {
        let r = run_one(&s, p);
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        assert_eq!(r.view_of("addrF").unwrap().value, Some(0xf1), "{p}");
        let l = lines(&r);
        assert!(
            l.iter()
                .any(|t| t.contains("reuse") && t.ends_with("-> Success")),
            "{p}: wp_page_reuse fixed it: {l:#?}"
        );
    }
}

#[test]
fn an_iommu_that_answers_writes_from_read_only_entries_never_lets_the_device_progress() {
    let mut s = scenario("pri-reuse.yaml");
    s.inject = inject_bits(&["write-hits-ro"]).unwrap();
    s.params.assertions = false; // WriteHitRoWalks_A would stop it first
    for p in Policy::ALL {
        let r = run_one(&s, p);
        assert_eq!(
            r.verdict.iter().copied().collect::<Vec<_>>(),
            vec![Violation::NoProgress],
            "{p}: {:?}",
            r.findings
        );
        let f = &r.findings[0];
        assert!(f.detail.contains("4 Page Requests"), "{}", f.detail);
        // The first request was fixed by wp_page_reuse; the other three
        // found the PTE writable already (spurious: nothing to do).
        assert_eq!(r.stats.page_responses, 4, "{p}");
        assert_eq!(
            r.view_of("addrF").unwrap().value,
            Some(0xf0),
            "{p}: no write"
        );
    }
    // The bound is the parameter: two requests, then it gives up.
    s.params.pri = 2;
    let r = run_one(&s, Policy::Always);
    assert!(r.verdict.contains(&Violation::NoProgress));
    assert_eq!(r.stats.page_responses, 2);
}

#[test]
fn a_page_request_after_munmap_is_refused_and_the_access_faults() {
    let s = scenario("pri-munmap.yaml");
    for p in Policy::ALL {
        let r = run_one(&s, p);
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        assert!(r.dev.last().unwrap().fault, "{p}");
        let l = lines(&r);
        assert!(
            l.iter()
                .any(|t| t.contains("page request (read addrA)")
                    && t.ends_with("-> Invalid Request")),
            "{p}: {l:#?}"
        );
        assert!(
            l.iter().any(|t| t.contains("Invalid Request)")),
            "{p}: the device's line says why it faulted: {l:#?}"
        );
    }
}

#[test]
fn the_riscv_socket_refuses_pri() {
    let mut s = scenario("pri-cow.yaml");
    s.arch = shootdown::scenario::Arch::RiscvSv39;
    let e = run(&s, &RunOptions::policy(Policy::Seed)).unwrap_err();
    assert!(
        e.to_string()
            .contains("params.pri is a parameter of the bundled IOMMU's ATS, PRI"),
        "{e}"
    );
    // and when the file says so, at its arch line
    let src = "name: t\nabout: t\narch: riscv-sv39\nparams: { pri: 4 }\npages:\n  addrA: { va: 0x10000, value: 1 }\ntimeline:\n  - { dev0: read addrA }\nexpect: { seed: clean }\n";
    let e = Scenario::parse(Path::new("t.yaml"), src).unwrap_err();
    assert_eq!(e.line, 3, "{e}");
    assert!(e.msg.contains("params.pri"), "{e}");
}

#[test]
fn a_prg_response_that_never_comes_is_no_progress_and_its_assertion_names_it() {
    let mut s = scenario("pri-cow.yaml");
    s.inject = inject_bits(&["prgr-dropped"]).unwrap();
    s.params.watchdog_cycles = 20_000;
    let e = run(&s, &RunOptions::policy(Policy::Seed)).unwrap_err();
    assert!(e.to_string().contains("PrgrSent_A"), "{e}");
    s.params.assertions = false;
    let r = run_one(&s, Policy::Seed);
    assert_eq!(
        r.verdict.iter().copied().collect::<Vec<_>>(),
        vec![Violation::NoProgress]
    );
    assert!(r.findings[0].detail.contains("had no response"));
    // the handler answered; the response never reached the device
    assert_eq!(r.stats.page_responses, 1);
    let l = lines(&r);
    assert!(
        l.iter().any(|t| t.ends_with("the run stops here")),
        "{l:#?}"
    );
}

#[test]
fn after_madv_dontneed_the_kernel_faults_zeros_in_for_the_device() {
    let s = scenario("pri-dontneed.yaml");
    for p in Policy::ALL {
        let r = run_one(&s, p);
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        let a: Vec<_> = r.dev.iter().filter(|d| d.page == "addrA").collect();
        assert_eq!((a[0].value, a[0].fault), (0xa0, false), "{p}");
        assert_eq!(
            (a[1].value, a[1].fault),
            (0, false),
            "{p}: zeros after MADV_DONTNEED"
        );
        let w = r.dev.iter().find(|d| d.write).unwrap();
        assert!(!w.fault, "{p}");
        assert_ne!(
            w.pa >> 12,
            a[1].pa >> 12,
            "{p}: a new page, not the zero page"
        );
        assert_eq!(r.view_of("addrB").unwrap().value, Some(0xb2), "{p}");
        let l = lines(&r);
        assert_eq!(
            l.iter()
                .filter(|t| t.contains("vma, anonymous, respond, responded -> Success"))
                .count(),
            2,
            "{p}: {l:#?}"
        );
        // the zeros are stores in the global order, before the device reads them
        assert!(
            r.stores
                .iter()
                .any(|st| st.page == "addrA" && st.value == 0 && st.zero_fill),
            "{p}"
        );
        // the report says who wrote them: the fault, not the device
        let text = shootdown::report::render(&s, &r);
        assert!(
            text.contains("dev0's page fault fills addrA with zeros"),
            "{p}: {text}"
        );
        assert!(!text.contains("dev0 stores 0x0"), "{p}");
    }
}

#[test]
fn a_page_request_the_model_cannot_serve_is_an_error_naming_the_device() {
    // hugetlb_cow (a device write after fork) and do_swap_page (a read
    // after reclaim) are not modelled: refused, never a silent Success.
    for (name, what) in [
        (
            "hugetlb-fork.yaml",
            "the write fault a device's Page Request takes on a read-only hugetlb page",
        ),
        (
            "reclaim.yaml",
            "a device's Page Request for a swapped-out page",
        ),
    ] {
        let mut s = scenario(name);
        s.params.pri = 4;
        let e = run(&s, &RunOptions::policy(Policy::Seed))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("iopf: [mm]") && e.contains(what) && e.contains("not modelled"),
            "{e}"
        );
    }
}

#[test]
fn mremap_moves_the_vma_the_kernel_checks_a_page_request_against() {
    // Before the move no VMA covers the destination; after it, none covers
    // the source: both Page Requests are refused (Invalid Request), and the
    // read at the new address finds the moved page.
    let src = "name: t\nabout: t\nparams: { pri: 4 }\npages:\n  addrA: { va: 0x7f0000000000, value: 0xa0 }\n  addrN: { va: 0x7f0000400000, absent: true }\ntimeline:\n  - { dev0: read addrN }\n  - { cpu0: mremap addrA addrN }\n  - { dev0: read addrA }\n  - { dev1: read addrN }\nexpect: { seed: clean }\n";
    let s = Scenario::parse(Path::new("t.yaml"), src).unwrap();
    let r = run_one(&s, Policy::Seed);
    assert!(r.verdict.is_empty(), "{:?}", r.findings);
    let d: Vec<_> = r
        .dev
        .iter()
        .map(|d| (d.page.as_str(), d.fault, d.value))
        .collect();
    assert_eq!(
        d,
        [
            ("addrN", true, 0),
            ("addrA", true, 0),
            ("addrN", false, 0xa0)
        ]
    );
    let refused = lines(&r)
        .iter()
        .filter(|t| t.ends_with("-> Invalid Request"))
        .count();
    assert_eq!(refused, 2, "{:#?}", lines(&r));
}
