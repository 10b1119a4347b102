//! `scenarios/tr-race.yaml`: a Translation Completion held in the fabric
//! while munmap's Invalidate Request overtakes it. The device must discard
//! it (and ask again); mutant `cache-racing-cpl` caches it.

use shootdown::checker::Violation;
use shootdown::mm::Policy;
use shootdown::rtl::Inject;
use shootdown::scenario::Scenario;
use shootdown::sim::{run, RunOptions, RunReport};
use std::path::Path;

fn scenario() -> Scenario {
    Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/tr-race.yaml")).unwrap()
}

fn run_it(s: &Scenario, policy: Policy) -> RunReport {
    run(s, &RunOptions::policy(policy)).unwrap()
}

#[test]
fn the_overtaken_completion_is_discarded_and_the_read_faults() {
    let s = scenario();
    for p in Policy::ALL {
        let r = run_it(&s, p);
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        let reads: Vec<_> = r.dev.iter().filter(|d| d.page == "addrA").collect();
        assert_eq!(reads.len(), 1, "{p}");
        assert!(
            reads[0].fault,
            "{p}: asked again after munmap, the walk finds no PTE"
        );
        // The step stopped at the translation; the read finished later.
        assert!(r.slots[0]
            .lines
            .iter()
            .any(|l| l.text.contains("translated @")));
        assert!(
            reads[0].cycle > r.slots[2].start,
            "{p}: the Completion was held"
        );
    }
}

#[test]
fn a_device_that_caches_the_overtaken_completion_reads_a_freed_frame() {
    let mut s = scenario();
    s.inject = Inject::CACHE_RACING_CPL;
    s.params.assertions = false; // what the bug does, past its assertion
    for p in Policy::ALL {
        let r = run_it(&s, p);
        assert_eq!(
            r.verdict.iter().copied().collect::<Vec<_>>(),
            vec![Violation::UseAfterFree],
            "{p}: {:?}",
            r.findings
        );
        let read = r.dev.iter().find(|d| d.page == "addrA").unwrap();
        assert!(!read.fault, "{p}");
        assert!(
            [0xc0, 0xc1].contains(&read.value),
            "{p}: A's old frame now holds C's copy, read {:#x}",
            read.value
        );
    }
}

#[test]
fn with_assertions_on_the_racing_completion_assertion_stops_the_run() {
    let mut s = scenario();
    s.inject = Inject::CACHE_RACING_CPL;
    let e = run(&s, &RunOptions::policy(Policy::Seed)).expect_err("an assertion stops the run");
    let msg = e.to_string();
    assert!(msg.contains("RacingCplDiscarded_A"), "{msg}");
}

#[test]
fn without_the_switch_delay_the_race_does_not_happen() {
    // One ordered stream: the Completion arrives before the invalidation,
    // which then removes it; the same bug goes unseen.
    let mut s = scenario();
    s.params.ats_cpl_delay = 0;
    s.inject = Inject::CACHE_RACING_CPL;
    let r = run_it(&s, Policy::Seed);
    assert!(r.verdict.is_empty(), "{:?}", r.findings);
    let read = r.dev.iter().find(|d| d.page == "addrA").unwrap();
    assert_eq!(
        read.value, 0xa0,
        "read before the free, through A's mapping"
    );
}
