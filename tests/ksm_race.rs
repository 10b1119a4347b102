//! A device write racing a KSM merge (`explore scenarios/ksm.yaml
//! --overlap`, docs/explore-seed.md): the device's access to addrY is
//! translated (writable) just before `ksm-merge` write-protects Y, and its
//! write lands in Y's old page after the PTE is cleared, before the
//! flush completes. KSM compares the pages after its flush
//! (`pages_identical`), so it merges only when the write left Y identical
//! to the KSM page: the data the device wrote is what the CPU sees after
//! the merge. A write whose value the CPU then sees is not lost, as a read
//! of an older version holding the latest value is not stale.

use shootdown::mm::Policy;
use shootdown::scenario::Scenario;
use shootdown::sim::{run, RunOptions, RunReport};
use std::path::Path;

fn run_timeline(pages: &str, timeline: &str, policy: Policy) -> RunReport {
    let s = Scenario::parse(
        Path::new("ksm-race.yaml"),
        &format!(
            "name: ksm-race\nabout: a device write racing a KSM merge\nparams: {{ mem_latency: 1, ats_latency: 37 }}\npages:\n{pages}timeline:\n{timeline}expect: {{ seed: clean }}\n"
        ),
    )
    .unwrap();
    run(&s, &RunOptions::policy(policy)).unwrap()
}

const TIMELINE: &str = "  - { cpu0: ksm-wrprotect addrX until put_old }
  - { dev0: write addrY 0x55 until translated }
  - { cpu1: ksm-merge addrY addrX until start }
";

#[test]
fn a_write_of_the_merged_value_is_not_lost() {
    let pages = "  addrX: { va: 0x7f0000000000, value: 0x55 }
  addrY: { va: 0x7f0000001000, value: 0x55 }
";
    for p in [Policy::Always, Policy::Arch] {
        let r = run_timeline(pages, TIMELINE, p);
        // The write landed in Y's old page, which the merge then dropped ...
        let w = r.dev.iter().find(|d| d.write).unwrap();
        assert!(!w.fault && w.value == 0x55, "{p}: {w:?}");
        assert_eq!(r.final_view[1].value, Some(0x55), "{p}");
        // ... and the CPU sees the value it wrote: nothing was lost.
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
    }
}

#[test]
fn a_write_that_makes_the_pages_differ_stops_the_merge() {
    // The same race with another value: pages_identical fails, Y keeps its
    // own page with the device's write in it.
    let pages = "  addrX: { va: 0x7f0000000000, value: 0x55 }
  addrY: { va: 0x7f0000001000, value: 0x55 }
";
    let timeline = TIMELINE.replace("write addrY 0x55", "write addrY 0x66");
    for p in [Policy::Always, Policy::Arch] {
        let r = run_timeline(pages, &timeline, p);
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        assert_eq!(r.final_view[1].value, Some(0x66), "{p}");
    }
}

/// The bundled scenario with overlapping device accesses, every schedule
/// within one preemption: the merge loses nothing under any policy.
#[test]
fn ksm_with_overlapping_accesses_is_clean_within_one_preemption() {
    use shootdown::explore::play::Rules;
    use shootdown::explore::search::exhaustive;
    let s =
        Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/ksm.yaml")).unwrap();
    for p in [Policy::Always, Policy::Seed] {
        let r = exhaustive(
            &s,
            p,
            Rules {
                overlap: true,
                requested: false,
                prune: false,
            },
            1,
            100_000,
            2,
        )
        .unwrap();
        assert!(r.schedules > 1000, "{p}: {}", r.schedules);
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings.first());
    }
}

/// ksmd runs a scan pass under `ksm_thread_mutex`, so two KSM actions never
/// interleave: a merge whose KSM page another KSM action has unmapped for
/// the moment waits for it (explore judged 31 such schedules per policy
/// "not modelled" before). The only schedules left unjudged merge into the
/// KSM page before it is write-protected, which ksmd would do as a merge
/// the other way round.
#[test]
fn ksm_actions_are_serialised_by_the_ksm_thread_mutex() {
    use shootdown::explore::play::Rules;
    use shootdown::explore::search::exhaustive;
    let s =
        Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/ksm.yaml")).unwrap();
    for p in [Policy::Always, Policy::Seed] {
        let r = exhaustive(&s, p, Rules::default(), 1, 100_000, 2).unwrap();
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings.first());
        assert_eq!(r.unmodelled, 4, "{p}: {:?}", r.unmodelled_first);
        let first = r.unmodelled_first.as_deref().unwrap_or_default();
        assert!(first.contains("into a writable page"), "{p}: {first}");
        assert!(r.schedules > 80, "{p}: {}", r.schedules);
    }
}

/// A KSM action started while another is stopped inside its pass waits for
/// the mutex: with nothing in the step to end the wait, the timeline's
/// error names the line and the holder.
#[test]
fn a_ksm_action_inside_another_is_an_error_naming_the_line() {
    let pages = "  addrX: { va: 0x7f0000000000, value: 0x55 }
  addrY: { va: 0x7f0000001000, value: 0x55 }
";
    let s = Scenario::parse(
        Path::new("ksm-race.yaml"),
        &format!(
            "name: ksm-race\nabout: two KSM actions\npages:\n{pages}timeline:
  - {{ cpu0: ksm-wrprotect addrX until lock }}
  - {{ cpu1: ksm-merge addrY addrX }}
expect: {{ seed: clean }}\n"
        ),
    )
    .unwrap();
    let e = run(&s, &RunOptions::policy(Policy::Seed))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ksm-race.yaml:8: cpu1 waits for ksm_thread_mutex held by cpu0")
            && e.contains("resume cpu0 in this step"),
        "{e}"
    );
}
