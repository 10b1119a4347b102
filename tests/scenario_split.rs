//! `split <page>` of a THP (paths/split_huge_pmd.yaml) and a path's `call`
//! of another path, which munmap's zap uses for the same split.

use shootdown::checker::Violation;
use shootdown::mm::Policy;
use shootdown::rtl::inject_bits;
use shootdown::scenario::{Scenario, ThreadRef};
use shootdown::sim::{run, RunOptions, RunReport};
use std::path::Path;

fn bundled() -> Scenario {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/thp-split.yaml");
    Scenario::load(&p).unwrap()
}

fn parse(src: &str) -> Result<Scenario, String> {
    Scenario::parse(Path::new("s.yaml"), src).map_err(|e| e.to_string())
}

fn cpu0(r: &RunReport) -> Vec<String> {
    (r.slots.iter())
        .flat_map(|s| &s.lines)
        .filter(|l| l.thread == ThreadRef::Cpu(0) && l.text.contains(':'))
        .map(|l| l.text.clone())
        .collect()
}

#[test]
fn a_split_thp_keeps_its_frames_and_a_4k_flush_drops_the_2m_entry() {
    for p in Policy::ALL {
        let r = run(&bundled(), &RunOptions::policy(p)).unwrap();
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        assert_eq!(
            cpu0(&r)[0],
            "split addrT: split_start, split_lock, split_fill, split_populate, split_unlock, split_end"
        );
        // the same frame before and after the split, with the value
        assert_eq!((r.dev[1].pa, r.dev[1].value), (r.dev[0].pa, 0x71), "{p}");
        assert!(r.dev[2].fault, "{p}: the write after the 4 KiB munmap");
    }
    // an IOTLB and ATC that keep a 2 MiB entry through a 4 KiB
    // invalidation: the write after the munmap lands, and is lost
    let mut s = bundled();
    s.inject = inject_bits(&["inv-misses-2m"]).unwrap();
    s.params.assertions = false;
    let r = run(&s, &RunOptions::policy(Policy::Seed)).unwrap();
    assert!(
        r.verdict.contains(&Violation::LostWrite),
        "{:?}",
        r.findings
    );
    assert!(!r.dev[2].fault);
}

/// munmap of part of a THP calls split_huge_pmd: a scenario's override of
/// it is what the zap runs.
#[test]
fn the_zap_calls_the_split_the_scenario_gives() {
    let src = "name: t
about: t
pages:
  addrT: { va: 0x7f0000200000, value: 0x70, thp: true }
paths:
  split_huge_pmd:
    follows: a test
    steps:
      - split_start: refuse \"{caller} with my split\", \"nothing\"
timeline:
  - { cpu0: munmap addrT }
expect: { seed: clean }
";
    let e = run(&parse(src).unwrap(), &RunOptions::policy(Policy::Seed)).unwrap_err();
    assert!(e.to_string().contains("munmap with my split"), "{e}");
}

#[test]
fn a_called_paths_checkpoints_are_the_threads() {
    let src = "name: t
about: t
pages:
  addrA: { va: 0x7f0000000000, value: 0xa0 }
paths:
  outer:
    follows: a test
    steps:
      - before: x = 1
      - _go:
          - call inner va, start, end
      - after: return
  inner:
    follows: a test
    steps:
      - a: y = va
      - b: return
timeline:
  - { cpu0: call outer addrA until a }
  - { cpu0: resume }
expect: { seed: clean }
";
    let r = run(&parse(src).unwrap(), &RunOptions::policy(Policy::Seed)).unwrap();
    assert_eq!(
        cpu0(&r),
        [
            "call outer addrA until a: before, a ... preempted",
            "resume: b, after"
        ]
    );
}

#[test]
fn a_call_to_what_cannot_be_called_is_an_error() {
    let with = |body: &str| {
        format!(
            "name: t
about: t
pages:
  addrA: {{ va: 0x7f0000000000, value: 0xa0 }}
paths:
  outer:
    follows: a test
    steps:
      - go: {body}
timeline:
  - {{ cpu0: call outer addrA }}
expect: {{ seed: clean }}
"
        )
    };
    let e = parse(&with("call nosuch va, start, end")).unwrap_err();
    assert!(
        e.contains("s.yaml:9") && e.contains("no path 'nosuch'"),
        "{e}"
    );
    let e = parse(&with("call wp_page_copy va, start, end")).unwrap_err();
    assert!(e.contains("s.yaml:9") && e.contains("fault handler"), "{e}");
    let e = parse(&with("if 1 then call outer va, start, end")).unwrap_err();
    assert!(e.contains("s.yaml:9"), "{e}");
    // a path that calls itself stops at the depth bound, with an error
    let s = parse(&with("call outer va, start, end")).unwrap();
    let e = run(&s, &RunOptions::policy(Policy::Seed)).unwrap_err();
    assert!(e.to_string().contains("calls deep"), "{e}");
}
