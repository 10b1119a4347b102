//! munmap, madvise(MADV_DONTNEED) and exit throw a range's contents away: a
//! device write that lands there while the call runs is one the program
//! raced with its own munmap, and losing it is what the call does to it,
//! not a lost write. `explore scenarios/pri-dontneed.yaml --overlap` found
//! such a schedule (a write translated before the madvise, landing after
//! the PTE was cleared and before the flush ended) and called it
//! `lost-write`. A write that lands after the call returned must still be
//! judged: these tests hold the checker to both sides.

use shootdown::checker::Violation;
use shootdown::mm::Policy;
use shootdown::scenario::Scenario;
use shootdown::sim::{run, RunOptions, RunReport};
use std::path::Path;

fn run_timeline(params: &str, inject: &str, timeline: &str, policy: Policy) -> RunReport {
    let src = format!(
        "name: discard-race
about: a device write racing the call that discards its page
params: {{ {params} }}
{inject}pages:
  addrA: {{ va: 0x7f0000000010, value: 0xa0 }}
  addrB: {{ va: 0x7f0000001010, value: 0xb0 }}
timeline:
{timeline}expect: {{ seed: clean }}
"
    );
    let s = Scenario::parse(Path::new("discard-race.yaml"), &src).unwrap();
    run(&s, &RunOptions::policy(policy)).unwrap()
}

/// The write is translated before the call, the call stops after its
/// start, and the write lands while the call clears and flushes.
const RACE: &str = "  - { dev0: write addrB 0xb2 until translated }
  - { cpu0: CALL until start }
";

#[test]
fn a_write_racing_munmap_or_madv_dontneed_is_theirs_to_discard() {
    for call in ["munmap addrA 2", "madv-dontneed addrA 2"] {
        for policy in Policy::ALL {
            let r = run_timeline(
                "mem_latency: 1, ats_latency: 37",
                "",
                &RACE.replace("CALL", call),
                policy,
            );
            // it landed in the old frame, which the CPU no longer maps
            let w = r.dev.iter().find(|d| d.write).unwrap();
            assert!(!w.fault, "{call} {policy}: {w:?}");
            assert!(
                !r.verdict.contains(&Violation::LostWrite),
                "{call} {policy}: {:?}",
                r.findings
            );
        }
    }
}

#[test]
fn a_write_landing_after_munmap_returned_is_still_judged() {
    // The device's write reaches memory late (dev_mem_latency). With the
    // correct device, its Invalidate Completion waits for that write, so
    // munmap returns after it landed: the call's to discard. With
    // early-inv-cpl the completion leaves at once, munmap frees the page
    // and returns, and the write lands afterwards, into a freed frame: the
    // call's exemption is over (the checker's unit test holds lost-write
    // to the same window).
    let timeline = "  - { dev0: write addrA 0xa2 until translated }
  - { cpu0: munmap addrA }
  - { dev0: resume }
";
    let params = "mem_latency: 1, dev_mem_latency: 3000, ats_latency: 37";
    for policy in [Policy::Seed, Policy::Arch] {
        let ok = run_timeline(params, "", timeline, policy);
        assert!(ok.verdict.is_empty(), "{policy}: {:?}", ok.findings);
        // (the device's own assertion catches the early completion: off,
        // to see what it does to the data)
        let unchecked = format!("{params}, assertions: false");
        let bug = run_timeline(&unchecked, "inject: [early-inv-cpl]\n", timeline, policy);
        assert!(
            bug.verdict.contains(&Violation::UseAfterFree),
            "{policy}: {:?}",
            bug.findings
        );
        let w = bug.dev.iter().find(|d| d.write).unwrap();
        assert!(!w.fault, "{policy}: the write landed: {w:?}");
    }
}
