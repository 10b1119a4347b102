//! Several processes bound to the device, each with its own PASID:
//! `scenarios/two-processes.yaml` (case A in the second process, the same
//! VA in both), an exit and a Page Request in the second process, the
//! `lookup-any-pasid` bug, and the format's refusals.

use shootdown::checker::Violation;
use shootdown::mm::Policy;
use shootdown::rtl::inject_bits;
use shootdown::scenario::{Arch, Scenario};
use shootdown::sim::{run, RunOptions, RunReport};
use std::path::Path;

fn bundled() -> Scenario {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/two-processes.yaml");
    Scenario::load(&p).unwrap()
}

fn parse(src: &str) -> Scenario {
    Scenario::parse(Path::new("p.yaml"), src).unwrap()
}

fn reads<'r>(r: &'r RunReport, page: &str) -> Vec<&'r shootdown::sim::DevRecord> {
    r.dev.iter().filter(|d| d.page == page).collect()
}

#[test]
fn each_pasid_translates_its_own_process_and_a_flush_names_one() {
    for p in Policy::ALL {
        let r = run(&bundled(), &RunOptions::policy(p)).unwrap();
        let (a, b) = (reads(&r, "addrA"), reads(&r, "addrB"));
        assert_eq!((a.len(), b.len()), (2, 2), "{p}");
        // one VA, two frames: each PASID's own page
        assert_eq!((a[0].value, b[0].value), (0xa0, 0xb0), "{p}");
        assert_ne!(a[0].pa >> 12, b[0].pa >> 12, "{p}");
        // process 1's munmap leaves process 0's page and translation alone
        assert!(
            !a[1].fault && a[1].value == 0xa0 && a[1].pa == a[0].pa,
            "{p}"
        );
        if p == Policy::EndOnly {
            assert_eq!(
                r.verdict.iter().copied().collect::<Vec<_>>(),
                vec![Violation::UseAfterFree]
            );
            assert_eq!(b[1].value, 0xc1, "the stale entry reaches C's COW copy");
            assert_eq!(b[1].pa >> 12, b[0].pa >> 12);
        } else {
            assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
            assert!(b[1].fault, "{p}: process 1's unmapped page faults");
        }
        assert_eq!(r.expected.as_ref(), Some(&r.verdict), "{p}");
        let text = shootdown::report::render(&bundled(), &r);
        assert!(text.contains("process 1 (PASID 2): addrB, addrC"), "{text}");
    }
}

#[test]
fn an_iotlb_that_ignores_the_pasid_is_an_isolation_breach() {
    let mut s = bundled();
    s.inject = inject_bits(&["lookup-any-pasid"]).unwrap();
    // the assertion stops it at the lookup
    let e = run(&s, &RunOptions::policy(Policy::Seed)).unwrap_err();
    assert!(e.to_string().contains("LookupOwnPasid_A"), "{e}");
    // the checker sees it in what the device read
    s.params.assertions = false;
    for p in Policy::ALL {
        let r = run(&s, &RunOptions::policy(p)).unwrap();
        assert!(
            r.verdict.contains(&Violation::Isolation),
            "{p}: {:?}",
            r.findings
        );
        let b = reads(&r, "addrB");
        // dev1 asked for process 1's page and got process 0's
        assert_eq!(b[0].value, 0xa0, "{p}");
        assert_eq!(b[0].pa, reads(&r, "addrA")[0].pa, "{p}");
        let f = r
            .findings
            .iter()
            .find(|f| f.kind == Violation::Isolation)
            .unwrap();
        assert!(
            f.detail.contains("process 1's page tables never mapped"),
            "{}",
            f.detail
        );
    }
}

const TWO: &str = "name: t
about: two processes
pages:
  addrA: { va: 0x7f0000000000, value: 0xa0 }
  addrB: { va: 0x7f0000000000, value: 0xb0, process: 1 }
";

#[test]
fn an_exit_releases_its_own_pasid_only() {
    let s = parse(&format!(
        "{TWO}timeline:
  - {{ dev0: read addrA, dev1: read addrB }}
  - {{ cpu0: exit 1 }}
  - {{ dev0: read addrA }}
  - {{ dev1: read addrB }}
expect: {{ end-only: clean, seed: clean, always: clean, arch: clean }}
"
    ));
    for p in Policy::ALL {
        let r = run(&s, &RunOptions::policy(p)).unwrap();
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        let (a, b) = (reads(&r, "addrA"), reads(&r, "addrB"));
        assert!(!a[1].fault && a[1].value == 0xa0, "{p}: process 0 lives on");
        assert!(b[1].fault, "{p}: the exited process's page faults");
        // process 0 still maps its page; process 1 maps nothing
        assert!(r.final_view[0].leaf.is_some(), "{p}: {:?}", r.final_view);
        assert!(r.final_view[1].leaf.is_none(), "{p}: {:?}", r.final_view);
    }
}

#[test]
fn a_page_request_is_handled_in_the_process_of_its_pasid() {
    // a COW page of process 1 at the VA process 0 maps privately
    let s = parse(
        "name: t
about: a page request of process 1
params: { pri: 4 }
pages:
  addrA: { va: 0x7f0000000000, value: 0xa0 }
  addrB: { va: 0x7f0000000000, value: 0xb0, cow: true, process: 1 }
timeline:
  - { dev1: write addrB 0xb1 }
  - { dev0: read addrA, dev1: read addrB }
expect: { end-only: clean, seed: clean, always: clean, arch: clean }
",
    );
    for p in Policy::ALL {
        let r = run(&s, &RunOptions::policy(p)).unwrap();
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        let b = reads(&r, "addrB");
        assert!(!b[0].fault && b[1].value == 0xb1, "{p}: {b:?}");
        assert_eq!(reads(&r, "addrA")[0].value, 0xa0, "{p}");
        // the handler copied process 1's page; process 0's is untouched
        let line = (r.slots[0].lines.iter())
            .find(|l| l.text.starts_with("page request (write addrB)"))
            .unwrap_or_else(|| panic!("{p}: {:?}", r.slots[0].lines));
        assert!(
            line.text.contains("copy") && line.text.ends_with("Success"),
            "{}",
            line.text
        );
        let (a, b) = (r.final_view[0].leaf.unwrap(), r.final_view[1].leaf.unwrap());
        assert!(b.writable && a.writable, "{p}");
        assert_ne!(a.pfn, b.pfn, "{p}");
        assert_eq!(
            (r.final_view[0].value, r.final_view[1].value),
            (Some(0xa0), Some(0xb1))
        );
    }
}

#[test]
fn the_format_refuses_what_a_process_cannot_do() {
    let bad = |extra: &str, timeline: &str| {
        let src = format!("{TWO}{extra}timeline:\n  - {{ {timeline} }}\nexpect: {{ end-only: clean, seed: clean, always: clean, arch: clean }}\n");
        Scenario::parse(Path::new("p.yaml"), &src).unwrap_err()
    };
    let e = bad("", "cpu0: exit 2");
    assert_eq!(e.line, 7, "{e}");
    assert!(
        e.msg.contains("'2' is not a process of this scenario"),
        "{e}"
    );
    let e = bad(
        "  addrC: { va: 0x7f0000000000, value: 1, process: 1 }\n",
        "dev0: read addrA",
    );
    assert!(e.msg.contains("shares its 4 KiB page with 'addrB'"), "{e}");
    let e = bad(
        "  addrC: { va: 0x7f0000100000, value: 1, process: 4 }\n",
        "dev0: read addrA",
    );
    assert_eq!(e.line, 6, "{e}");
    assert!(e.msg.contains("at most 4 processes"), "{e}");
    let e = bad(
        "  addrD: { va: 0x7f0000001000, absent: true }\n",
        "cpu0: mremap addrB addrD",
    );
    assert!(e.msg.contains("different processes"), "{e}");
    let e = bad("", "cpu0: ksm-merge addrA addrB");
    assert!(e.msg.contains("different processes"), "{e}");
}

#[test]
fn two_processes_share_the_risc_v_socket_too() {
    if !shootdown::riscv::model::present() {
        return;
    }
    let (s, _) = bundled().with_arch(Arch::RiscvSv39).unwrap();
    for p in [Policy::EndOnly, Policy::Seed] {
        let r = run(&s, &RunOptions::policy(p)).unwrap();
        let (a, b) = (reads(&r, "addrA"), reads(&r, "addrB"));
        assert_eq!((a[0].value, b[0].value), (0xa0, 0xb0), "{p}");
        assert!(!a[1].fault && a[1].value == 0xa0, "{p}");
        assert_eq!(
            r.expected.as_ref(),
            Some(&r.verdict),
            "{p}: {:?}",
            r.findings
        );
    }
}

#[test]
fn a_written_scenario_keeps_each_pages_process() {
    let s = bundled();
    let back = Scenario::parse(&s.path, &s.to_yaml()).unwrap_or_else(|e| panic!("{e}"));
    let procs = |s: &Scenario| {
        (s.pages.iter())
            .map(|p| (p.name.clone(), p.process))
            .collect::<Vec<_>>()
    };
    assert_eq!(procs(&back), procs(&s));
    assert_eq!(procs(&s)[1], ("addrB".to_string(), 1));
}
