//! The completion delay (`cfg_ats_cpl_delay_i`, docs/socket.md): a PCIe
//! switch between the IOMMU and the device holds Translation Completions
//! while Invalidate Requests, posted Messages, pass them. With the delay off
//! the link is one ordered stream: a Completion sent before an Invalidate
//! Request arrives first. With it on, the Invalidate Request overtakes the
//! Completion and the device must discard it and ask again (PCIe ATS device
//! rule 3); with `cache-racing-cpl` injected it caches the stale one.
//!
//! Unlike `rtl_inject::cache_racing_cpl_run`, no walk is raced: the walk
//! finishes through the old leaf, its Completion is on the link, and only
//! then does the CPU change the leaf and invalidate.

mod common;
use common::*;
use shootdown::rtl::{cmd_ats_inval, cmd_iofence_c, cmd_iotinval_vma, Inject};

const MAX: u64 = 5_000;
const PASID: u32 = 4;
const LAT: u16 = 30;
const DELAY: u16 = 200;
const DATA: u32 = 0xc0de;
const VA: u64 = 0x2222_0000;
const OLD_PA: u64 = 0x1_0000_0000;
const NEW_PA: u64 = 0x2_0000_0000;

/// What a run saw.
#[derive(Debug)]
struct Race {
    /// The PA the device read used.
    pa: u64,
    /// The PPN the ATC holds for the page at the end.
    atc: Option<u64>,
    /// Walks of the page (reads of its leaf PTE).
    walks: usize,
    /// Cycle of the read's response.
    done: u64,
    /// Cycle of the fence's completion write (it waits for the device's
    /// Invalidate Completion).
    fence: u64,
}

/// A device read misses the ATC; once its walk is done and the Completion
/// (old translation) is on its way, the CPU changes the leaf PTE to a new
/// frame and invalidates (IOTINVAL.VMA, ATS.INVAL, IOFENCE.C). The RTL
/// assertions are off with a bug injected (the run goes on past it); the
/// correct design's run fires none.
fn run(delay: u16, inject: u16) -> Race {
    let (race, fired) = run_checked(delay, inject, inject == 0);
    assert_eq!(fired, None, "the correct design fires no assertion");
    race
}

/// [`run`] with the assertions on (recorded, not fatal) if `checks`: also
/// the first that fired.
fn run_checked(delay: u16, inject: u16, checks: bool) -> (Race, Option<Fired>) {
    let mut s = Sim::with_cfg(2, LAT, |p| {
        p.cfg_ats_cpl_delay = delay;
        p.cfg_inject = inject;
    });
    if checks {
        s.record_assertions();
    } else {
        s.set_assertions(false);
    }
    s.map_4k(PASID, VA, OLD_PA, true);
    let pte = s.leaf_addr(PASID, VA, 0);
    s.set_probe(0, PASID, VA);
    s.submit(1, false, PASID, VA, 0);
    s.run_until("the Completion leaves the IOMMU", MAX, |s| {
        s.probe(0)[2].is_some()
    });
    s.run(2);
    let [_, atc, xlat] = s.probe(0);
    assert_eq!(atc, None, "the Completion has not arrived");
    assert_eq!(
        xlat.map(|e| e.ppn),
        Some(OLD_PA >> 12),
        "the old translation is in the link"
    );
    s.write64(pte, NEW_PA | P | RW | US | A | D);
    s.submit_cmds(&[
        cmd_iotinval_vma(Some(PASID), Some(VA)),
        cmd_ats_inval(PASID, VA, 4096),
        cmd_iofence_c(Some(FENCE_ADDR), DATA),
    ]);
    let r = s.wait_response(1, MAX);
    assert_eq!(r.status, 0);
    s.wait_cq_empty(MAX);
    s.run_until("the fence completion word", MAX, |s| {
        s.read64(FENCE_ADDR) == u64::from(DATA)
    });
    s.step();
    let fence = s
        .iommu_log
        .iter()
        .find(|a| a.write && a.addr == FENCE_ADDR)
        .map(|a| a.cycle)
        .expect("fence write logged");
    let walks = s
        .iommu_log
        .iter()
        .filter(|a| a.addr == pte && !a.write && !a.cas)
        .count();
    let race = Race {
        pa: r.pa,
        atc: s.probe(0)[1].map(|e| e.ppn),
        walks,
        done: r.cycle,
        fence,
    };
    (race, s.fired())
}

#[test]
fn delay_off_the_completion_sent_first_arrives_first() {
    let r = run(0, 0);
    assert_eq!(r.walks, 1, "installed and used: {r:?}");
    assert_eq!(r.pa, OLD_PA, "the read uses the translation of its time");
    assert_eq!(r.atc, None, "the Invalidate Request, behind it, drops it");
}

#[test]
fn delay_on_the_invalidate_request_overtakes_and_the_completion_is_discarded() {
    let r = run(DELAY, 0);
    assert!(
        r.fence < r.done,
        "the Invalidate Completion (fence {}) came back before the read finished ({})",
        r.fence,
        r.done
    );
    assert_eq!(r.walks, 2, "discarded, requested and walked again: {r:?}");
    assert_eq!(r.pa, NEW_PA, "the read uses the new translation");
    assert_eq!(r.atc, Some(NEW_PA >> 12), "the ATC holds the new one");
}

#[test]
fn delay_on_with_cache_racing_cpl_the_atc_keeps_the_stale_translation() {
    let r = run(DELAY, Inject::CACHE_RACING_CPL);
    assert!(r.fence < r.done, "overtaken: {r:?}");
    assert_eq!(r.walks, 1, "installed, no second request: {r:?}");
    assert_eq!(r.pa, OLD_PA, "the read uses the old translation");
    assert_eq!(r.atc, Some(OLD_PA >> 12), "the ATC holds the stale one");
}

#[test]
fn delay_on_with_cache_racing_cpl_racing_cpl_discarded_fires() {
    let (r, fired) = run_checked(DELAY, Inject::CACHE_RACING_CPL, true);
    let f = fired.expect("RacingCplDiscarded_A fired");
    eprintln!("cache-racing-cpl (delay {DELAY}): {f:?}, {r:?}");
    assert!(f.names("u_dma.RacingCplDiscarded_A"), "{f:?}");
    assert!(
        r.fence < f.cycle && f.cycle < r.done,
        "the overtaken Completion arrives after the fence: {f:?} {r:?}"
    );
    for (delay, inject) in [(DELAY, 0), (0, 0), (0, Inject::CACHE_RACING_CPL)] {
        // the correct design, and the bug without a race: nothing fires
        let (_, fired) = run_checked(delay, inject, true);
        assert_eq!(fired, None, "delay {delay} inject {inject:#x}");
    }
}

/// Cycles from submitting a read of a fresh page to its response.
fn read_latency(delay: u16) -> u64 {
    let mut s = Sim::with_cfg(2, LAT, |p| p.cfg_ats_cpl_delay = delay);
    s.map_4k(PASID, VA, OLD_PA, true);
    let t0 = s.cycle();
    let r = s.read_wait(1, PASID, VA, MAX);
    assert_eq!((r.status, r.pa), (0, OLD_PA));
    r.cycle - t0
}

#[test]
fn the_delay_adds_its_cycles_to_each_completion_and_nothing_else() {
    let base = read_latency(0);
    assert_eq!(read_latency(1), base + 1);
    assert_eq!(read_latency(DELAY), base + u64::from(DELAY));
}

#[test]
fn an_invalidation_alone_is_not_delayed() {
    // ATS.INVAL + IOFENCE.C: the round trip is the same with the delay on
    let fence_cycles = |delay: u16| {
        let mut s = Sim::with_cfg(2, LAT, |p| p.cfg_ats_cpl_delay = delay);
        let t0 = s.cycle();
        s.submit_cmds(&[
            cmd_ats_inval(PASID, VA, 4096),
            cmd_iofence_c(Some(FENCE_ADDR), DATA),
        ]);
        s.wait_cq_empty(MAX);
        s.iommu_log
            .iter()
            .find(|a| a.write && a.addr == FENCE_ADDR)
            .map(|a| a.cycle)
            .expect("fence write logged")
            - t0
    };
    assert_eq!(fence_cycles(DELAY), fence_cycles(0));
}

#[test]
fn the_setter_turns_the_delay_on_after_reset() {
    let mut s = Sim::new(2, LAT);
    s.set_ats_cpl_delay(DELAY);
    s.map_4k(PASID, VA, OLD_PA, true);
    let t0 = s.cycle();
    let r = s.read_wait(1, PASID, VA, MAX);
    assert_eq!(r.cycle - t0, read_latency(DELAY));
}
