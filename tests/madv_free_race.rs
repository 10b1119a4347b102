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

/// Reclaim holds the page lock from before it adds the page to the swap
/// cache until it frees it; madvise(MADV_FREE) meanwhile finds the page in
/// the swap cache, its trylock_page fails and it skips the page: the page
/// is not made lazily freeable, so reclaim swaps it out (the I/O) where,
/// after a madvise that ran first, it discards it without one.
#[test]
fn madv_free_skips_a_page_reclaim_has_locked() {
    let during = "  - { dev0: write addrL 0x41 }
  - { cpu1: reclaim addrL until start }
  - { cpu0: madv-free addrL }
  - { cpu1: resume }
";
    let before = "  - { dev0: write addrL 0x41 }
  - { cpu0: madv-free addrL }
  - { cpu1: reclaim addrL }
";
    for p in Policy::ALL {
        let r = run_timeline(during, p);
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        let io: Vec<u64> = r.io.iter().map(|i| i.value).collect();
        assert_eq!(io, [0x41], "{p}: swapped out");
        let r = run_timeline(before, p);
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        assert!(r.io.is_empty(), "{p}: discarded: {:?}", r.io);
    }
}

/// madvise(MADV_FREE) of a swapped-out page drops the swap entry
/// (free_swap_and_cache): the data is gone, and the next access faults in
/// a zero page. Before, the madvise was refused as not modelled, and
/// `explore madv-free` left 790 schedules not judged.
#[test]
fn madv_free_of_a_swapped_out_page_drops_the_entry() {
    let timeline = "  - { dev0: write addrL 0x41 }
  - { cpu1: reclaim addrL }
  - { cpu0: madv-free addrL }
  - { cpu0: read addrL }
";
    for p in Policy::ALL {
        let r = run_timeline(timeline, p);
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        let io: Vec<u64> = r.io.iter().map(|i| i.value).collect();
        assert_eq!(io, [0x41], "{p}: swapped out first");
        assert_eq!(r.view_of("addrL").unwrap().value, Some(0), "{p}");
    }
    let s = Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/madv-free.yaml"))
        .unwrap();
    let r = exhaustive(&s, Policy::Seed, Rules::default(), 1, 100_000, 2).unwrap();
    assert_eq!(r.unmodelled, 0, "{:?}", r.unmodelled_first);
    assert!(r.verdict.is_empty(), "{:?}", r.findings.first());
}

/// madvise of an address no VMA covers is ENOMEM in Linux: an error at
/// the action's line, not a madvise that did nothing.
#[test]
fn madv_free_after_munmap_is_an_error_naming_the_line() {
    let s = Scenario::parse(
        Path::new("madv-free-race.yaml"),
        &format!(
            "{HEAD}timeline:\n  - {{ cpu0: munmap addrL }}\n  - {{ cpu0: madv-free addrL }}\nexpect: {{ seed: clean }}\n"
        ),
    )
    .unwrap();
    let e = run(&s, &RunOptions::policy(Policy::Seed))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("madv-free-race.yaml:8") && e.contains("no VMA covers (madvise returns ENOMEM)"),
        "{e}"
    );
}
