//! MADV_FREE's contract: a write made before madvise(MADV_FREE) returns may
//! be discarded with the page (the caller said it no longer needs the
//! data); a write made after it returns must survive. `explore
//! scenarios/madv-free.yaml --bound 2` (docs/explore-seed.md) found
//! schedules where a device, writing through a writable ATC entry cached
//! before the madvise, wrote while the madvise was preempted between its
//! unlock and its deferred flush, and reclaim discarded the page meanwhile:
//! the write is one MADV_FREE may drop, not a lost write. These tests hold
//! the checker to the contract on both sides.

use shootdown::checker::Violation;
use shootdown::explore::play::Rules;
use shootdown::explore::search::exhaustive;
use shootdown::mm::Policy;
use shootdown::scenario::Scenario;
use shootdown::sim::{run, RunOptions, RunReport};
use std::path::Path;

const HEAD: &str = "name: madv-free-race
about: MADV_FREE and a device write racing reclaim's discard.
params: { mem_latency: 1, ats_latency: 1 }
pages:
  addrL: { va: 0x7f0000000000, value: 0x40 }
";

fn run_timeline(timeline: &str, policy: Policy) -> RunReport {
    let s = Scenario::parse(
        Path::new("madv-free-race.yaml"),
        &format!("{HEAD}timeline:\n{timeline}expect: {{ seed: clean }}\n"),
    )
    .unwrap();
    run(&s, &RunOptions::policy(policy)).unwrap()
}

/// The device writes after reclaim discarded the page and before the
/// madvise that made it lazily freeable returned (its flush still to
/// come): MADV_FREE may drop that write.
#[test]
fn a_write_before_madvise_returns_may_be_discarded() {
    let timeline = "  - { dev0: write addrL 0x41 }
  - { cpu0: madv-free addrL until unlock }
  - { cpu1: reclaim addrL until remove_rmap }
  - { dev0: write addrL 0x42 }
";
    for p in [Policy::Always, Policy::Seed, Policy::EndOnly] {
        let r = run_timeline(timeline, p);
        // The write did land in the discarded frame (the race is real) ...
        assert!(
            r.dev.iter().any(|d| d.write && d.value == 0x42 && !d.fault),
            "{p}: {:?}",
            r.dev
        );
        // ... and it is not a lost write.
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
    }
}

/// Once the madvise returned, a write must survive: here the device's
/// translation was flushed by the madvise, its next write asks the IOMMU
/// again, which sets the dirty bit, and reclaim keeps the page.
#[test]
fn a_write_after_madvise_returns_survives() {
    let timeline = "  - { dev0: write addrL 0x41 }
  - { cpu0: madv-free addrL }
  - { dev0: write addrL 0x42 }
  - { cpu1: reclaim addrL }
  - { dev0: read addrL }
";
    for p in Policy::ALL {
        let r = run_timeline(timeline, p);
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        let last = r.dev.last().unwrap();
        assert!(!last.write && !last.fault, "{last:?}");
        assert_eq!(last.value, 0x42, "{p}");
    }
}

/// The whole bundled scenario, every schedule within two preemptions:
/// no lost write under the seed's policy.
#[test]
fn madv_free_is_clean_within_two_preemptions_under_seed() {
    let s = Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/madv-free.yaml"))
        .unwrap();
    let r = exhaustive(&s, Policy::Seed, Rules::default(), 2, 100_000, 2).unwrap();
    assert!(r.schedules > 5000, "{}", r.schedules);
    assert!(
        !r.verdict.contains(&Violation::LostWrite),
        "{:?}",
        r.findings.first()
    );
}
