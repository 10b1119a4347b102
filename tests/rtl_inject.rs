//! Bug injection (`cfg_inject_i`, docs/socket.md "Bug injection"): for each
//! bit, a directed run that shows the bug's observable effect with the bit
//! set (the RTL assertions off, so that the run goes on past the invariant
//! the bug breaks), and the correct behaviour with it clear (assertions on:
//! none fires). Then the same runs with the bit set and the assertions on:
//! each stops on the assertion that states the invariant the bug breaks
//! (docs/socket.md "Assertions"); `psc-not-invalidated` is in
//! `tests/rtl_psc.rs`, `cache-racing-cpl` behind a switch delay in
//! `tests/rtl_cpl_delay.rs`. `fence-one-itag` needs two ATS.INVALs before
//! one fence (what the `batched` driver sends; tests/drivers.rs runs it
//! end to end).

mod common;
use common::*;
use shootdown::rtl::{cmd_ats_inval, cmd_iofence_c, cmd_iotinval_vma, Inject};

const MAX: u64 = 5_000;
const DATA: u32 = 0x600d;
const PASID: u32 = 4;

/// What a run does with the RTL assertions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Checks {
    /// Off: an injected bug's run goes on past the invariant it breaks.
    Off,
    /// On, the first failure recorded ([`Sim::record_assertions`]).
    On,
}

/// A reset model with `inject` and the assertions as `checks` says.
fn sim(mem_latency: u64, ats_latency: u16, inject: u16, checks: Checks) -> Sim {
    let mut s = Sim::with_inject(mem_latency, ats_latency, inject);
    match checks {
        Checks::Off => s.set_assertions(false),
        Checks::On => s.record_assertions(),
    }
    s
}

/// What a run saw (`seen`), the first assertion that failed in it (with
/// [`Checks::On`]) and the cycles of the commands' submission and of the
/// queue's drain.
#[derive(Debug)]
struct Run<T> {
    seen: T,
    fired: Option<Fired>,
    cmds: (u64, u64),
}

impl<T> Run<T> {
    /// The first failure must be `assertion`'s and come while the commands
    /// run (after their submission, before the queue drained).
    fn fired(&self, assertion: &str) -> &Fired {
        let f = self
            .fired
            .as_ref()
            .unwrap_or_else(|| panic!("{assertion} did not fire"));
        assert!(f.names(assertion), "expected {assertion}: {f:?}");
        let (t0, t1) = self.cmds;
        assert!(
            t0 < f.cycle && f.cycle <= t1,
            "{assertion} in cycle {} outside the commands' {t0}..{t1}",
            f.cycle
        );
        f
    }
}

fn fence_write_cycle(s: &Sim) -> u64 {
    s.iommu_log
        .iter()
        .find(|a| a.write && a.addr == FENCE_ADDR)
        .map(|a| a.cycle)
        .expect("fence write logged")
}

// ---------------------------------------------------------------------------
// early-fence
// ---------------------------------------------------------------------------

/// ATS.INVAL then IOFENCE.C over a link of `LAT` cycles each way: the cycle
/// of the fence's completion write.
fn early_fence_run(inject: u16, checks: Checks) -> Run<u64> {
    const LAT: u16 = 100;
    let mut s = sim(2, LAT, inject, checks);
    let t0 = s.cycle();
    s.submit_cmds(&[
        cmd_ats_inval(1, 0x1000, 4096),
        cmd_iofence_c(Some(FENCE_ADDR), DATA),
    ]);
    s.wait_cq_empty(MAX);
    assert_eq!(s.read64(FENCE_ADDR), u64::from(DATA));
    Run {
        seen: fence_write_cycle(&s),
        fired: s.fired(),
        cmds: (t0, s.cycle()),
    }
}

#[test]
fn early_fence_clear_the_fence_waits_for_the_invalidate_completion() {
    let r = early_fence_run(0, Checks::On);
    let c = r.seen - r.cmds.0;
    assert!(c >= 200, "completion word after the round trip: {c}");
    assert_eq!(r.fired, None);
}

#[test]
fn early_fence_set_the_completion_word_comes_before_the_invalidate_completion() {
    let r = early_fence_run(Inject::EARLY_FENCE, Checks::Off);
    let c = r.seen - r.cmds.0;
    // the Invalidate Completion cannot be back before 2 * 100 cycles; the
    // request has not even reached the device
    assert!(c < 100, "completion word without waiting: {c}");
}

// ---------------------------------------------------------------------------
// early-inv-cpl
// ---------------------------------------------------------------------------

/// The cycles a run of [`early_inv_cpl_run`] saw.
#[derive(Debug)]
struct Drain {
    /// The slow read was issued to memory.
    issued: u64,
    /// The fence's completion write.
    fence: u64,
    /// The read's response.
    done: u64,
}

/// A slow device read (memory latency 400) of a page whose translation is
/// then invalidated (IOTINVAL.VMA, ATS.INVAL, IOFENCE.C).
fn early_inv_cpl_run(inject: u16, checks: Checks) -> Run<Drain> {
    let va = 0x1000_0000;
    let mut s = sim(2, 5, inject, checks);
    s.map_4k(PASID, va, 0x4_0000_0000, true);
    s.read_wait(1, PASID, va, MAX);
    s.dev_latency = 400;
    s.submit(2, false, PASID, va, 0);
    s.run_until("slow access issued", 50, |s| s.out.dev_mem_req_valid != 0);
    let issued = s.cycle();
    s.submit_cmds(&[
        cmd_iotinval_vma(Some(PASID), Some(va)),
        cmd_ats_inval(PASID, va, 4096),
        cmd_iofence_c(Some(FENCE_ADDR), DATA),
    ]);
    s.wait_cq_empty(MAX);
    let drained = s.cycle();
    let done = s.wait_response(2, MAX).cycle;
    Run {
        seen: Drain {
            issued,
            fence: fence_write_cycle(&s),
            done,
        },
        fired: s.fired(),
        cmds: (issued, drained),
    }
}

#[test]
fn early_inv_cpl_clear_the_fence_waits_for_the_read_using_the_old_translation() {
    let r = early_inv_cpl_run(0, Checks::On);
    let Drain { fence, done, .. } = r.seen;
    assert!(fence > done, "fence {fence} after the read {done}");
    assert_eq!(r.fired, None);
}

#[test]
fn early_inv_cpl_set_the_fence_completes_while_the_old_read_is_outstanding() {
    let r = early_inv_cpl_run(Inject::EARLY_INV_CPL, Checks::Off);
    let Drain {
        issued,
        fence,
        done,
    } = r.seen;
    assert!(
        issued < fence && fence < done,
        "fence {fence} between the read's issue {issued} and its response {done}"
    );
}

// ---------------------------------------------------------------------------
// inv-misses-2m
// ---------------------------------------------------------------------------

/// Warm the IOTLB and the ATC with a 2 MiB entry, invalidate one 4 KiB page
/// inside it (IOTINVAL.VMA, unless `iotinval` is false, and ATS.INVAL of
/// that page), fence: what (IOTLB, ATC) then hold for that page (2 MiB or
/// not). Without the IOTINVAL.VMA the IOTLB keeps the entry.
fn inv_misses_2m_run(inject: u16, checks: Checks, iotinval: bool) -> Run<[Option<bool>; 2]> {
    let (va, pa) = (0x40_0000_0000, 0x8_0000_0000);
    let page = va + 0x3000;
    let mut s = sim(2, 10, inject, checks);
    s.map_2m(PASID, va, pa, true);
    s.read_wait(1, PASID, va + 0x10_0000, MAX);
    s.set_probe(0, PASID, page);
    s.step();
    let [iotlb, atc, _] = s.probe(0);
    assert!(iotlb.is_some_and(|e| e.is_2m), "IOTLB warm: {iotlb:?}");
    assert!(atc.is_some_and(|e| e.is_2m), "ATC warm: {atc:?}");
    let t0 = s.cycle();
    if iotinval {
        s.submit_cmds(&[cmd_iotinval_vma(Some(PASID), Some(page))]);
    }
    s.submit_cmds(&[
        cmd_ats_inval(PASID, page, 4096),
        cmd_iofence_c(Some(FENCE_ADDR), DATA),
    ]);
    s.wait_cq_empty(MAX);
    let t1 = s.cycle();
    s.step();
    let [iotlb, atc, _] = s.probe(0);
    Run {
        seen: [iotlb.map(|e| e.is_2m), atc.map(|e| e.is_2m)],
        fired: s.fired(),
        cmds: (t0, t1),
    }
}

#[test]
fn inv_misses_2m_clear_a_4k_invalidation_drops_the_2m_entry() {
    let r = inv_misses_2m_run(0, Checks::On, true);
    assert_eq!(r.seen, [None, None]);
    assert_eq!(r.fired, None);
}

#[test]
fn inv_misses_2m_set_the_2m_entry_survives_in_the_iotlb_and_the_atc() {
    let r = inv_misses_2m_run(Inject::INV_MISSES_2M, Checks::Off, true);
    assert_eq!(r.seen, [Some(true), Some(true)]);
}

// ---------------------------------------------------------------------------
// inv-wrong-pasid
// ---------------------------------------------------------------------------

const P7: u32 = 7;

/// Warm the IOTLB and ATC for a page of PASID `warm` (7, or 0: the PASID the
/// bug compares against), invalidate that page for PASID 7 (IOTINVAL.VMA
/// with PV, unless `iotinval` is false, and ATS.INVAL), fence: whether
/// (IOTLB, ATC) still hold it.
fn inv_wrong_pasid_run(inject: u16, checks: Checks, warm: u32, iotinval: bool) -> Run<[bool; 2]> {
    let va = 0x1234_5000;
    let mut s = sim(2, 10, inject, checks);
    s.map_4k(warm, va, 0x5_0000_0000, true);
    s.read_wait(1, warm, va, MAX);
    s.set_probe(0, warm, va);
    s.step();
    assert!(s.probe(0)[0].is_some() && s.probe(0)[1].is_some(), "warm");
    let t0 = s.cycle();
    if iotinval {
        s.submit_cmds(&[cmd_iotinval_vma(Some(P7), Some(va))]);
    }
    s.submit_cmds(&[
        cmd_ats_inval(P7, va, 4096),
        cmd_iofence_c(Some(FENCE_ADDR), DATA),
    ]);
    s.wait_cq_empty(MAX);
    let t1 = s.cycle();
    s.step();
    let [iotlb, atc, _] = s.probe(0);
    Run {
        seen: [iotlb.is_some(), atc.is_some()],
        fired: s.fired(),
        cmds: (t0, t1),
    }
}

#[test]
fn inv_wrong_pasid_clear_the_pasid_entries_are_dropped() {
    let r = inv_wrong_pasid_run(0, Checks::On, P7, true);
    assert_eq!(r.seen, [false, false]);
    assert_eq!(r.fired, None);
}

#[test]
fn inv_wrong_pasid_set_the_pasid_entries_survive() {
    let r = inv_wrong_pasid_run(Inject::INV_WRONG_PASID, Checks::Off, P7, true);
    assert_eq!(r.seen, [true, true]);
}

#[test]
fn inv_wrong_pasid_clear_pasid_0_entries_survive_an_invalidation_of_pasid_7() {
    let r = inv_wrong_pasid_run(0, Checks::On, 0, true);
    assert_eq!(r.seen, [true, true]);
    assert_eq!(r.fired, None);
}

#[test]
fn inv_wrong_pasid_set_an_invalidation_of_pasid_7_drops_pasid_0_entries() {
    let r = inv_wrong_pasid_run(Inject::INV_WRONG_PASID, Checks::Off, 0, true);
    assert_eq!(r.seen, [false, false]);
}

// ---------------------------------------------------------------------------
// cache-racing-cpl
// ---------------------------------------------------------------------------

/// What a run of [`cache_racing_cpl_run`] saw.
#[derive(Debug)]
struct Race {
    /// The PA the read used.
    pa: u64,
    /// The PPN the ATC holds afterwards.
    atc: Option<u64>,
    /// Walks: reads of the PDPT entry.
    walks: usize,
    /// The cycle of the read's response.
    done: u64,
}

/// A device read misses the ATC and its Translation Request walks. Right
/// after the walker read the PDPT entry, the CPU points that entry at new
/// tables (new frame) and invalidates (IOTINVAL.VMA, ATS.INVAL, IOFENCE.C).
/// The command fetches win the memory port, so the walker finishes through
/// the old tables after the ATS.INVAL was sent: its (stale) Completion
/// reaches the device after the Invalidate Request.
fn cache_racing_cpl_run(inject: u16, checks: Checks) -> Run<Race> {
    const LAT: u16 = 30;
    let va = 0x2222_0000;
    let (old_pa, new_pa) = (0x1_0000_0000u64, 0x2_0000_0000u64);
    let mut s = sim(2, LAT, inject, checks);
    s.iommu_latency = 20;
    s.map_4k(PASID, va, old_pa, true);
    let pdpte = s.leaf_addr(PASID, va, 2);
    s.set_probe(0, PASID, va);
    s.submit(1, false, PASID, va, 0);
    s.run_until("walker reads the PDPT entry", MAX, |s| {
        s.iommu_log.iter().any(|a| a.addr == pdpte && !a.write)
    });
    // new PD and PT, away from the harness's table pool
    let (new_pd, new_pt) = (0x80_0000u64, 0x80_1000u64);
    s.write64(new_pd + ((va >> 21) & 0x1ff) * 8, new_pt | P | RW | US);
    s.write64(
        new_pt + ((va >> 12) & 0x1ff) * 8,
        new_pa | P | RW | US | A | D,
    );
    s.write64(pdpte, new_pd | P | RW | US);
    let t0 = s.cycle();
    s.submit_cmds(&[
        cmd_iotinval_vma(Some(PASID), Some(va)),
        cmd_ats_inval(PASID, va, 4096),
        cmd_iofence_c(Some(FENCE_ADDR), DATA),
    ]);
    let r = s.wait_response(1, MAX);
    assert_eq!(r.status, 0);
    s.wait_cq_empty(MAX);
    let t1 = s.cycle();
    s.step();
    let walks = s
        .iommu_log
        .iter()
        .filter(|a| a.addr == pdpte && !a.write && !a.cas)
        .count();
    Run {
        seen: Race {
            pa: r.pa,
            atc: s.probe(0)[1].map(|e| e.ppn),
            walks,
            done: r.cycle,
        },
        fired: s.fired(),
        cmds: (t0, t1),
    }
}

#[test]
fn cache_racing_cpl_clear_the_overtaken_completion_is_discarded() {
    let r = cache_racing_cpl_run(0, Checks::On);
    assert_eq!(r.fired, None);
    let Race { pa, atc, walks, .. } = r.seen;
    assert_eq!(walks, 2, "discarded, requested and walked again");
    assert_eq!(pa, 0x2_0000_0000, "the read uses the new translation");
    assert_eq!(atc, Some(0x2_0000_0000 >> 12), "the ATC holds the new one");
}

#[test]
fn cache_racing_cpl_set_the_atc_holds_the_stale_translation_after_the_race() {
    let r = cache_racing_cpl_run(Inject::CACHE_RACING_CPL, Checks::Off);
    let Race { pa, atc, walks, .. } = r.seen;
    assert_eq!(walks, 1, "installed, no second request");
    assert_eq!(pa, 0x1_0000_0000, "the read uses the old translation");
    assert_eq!(
        atc,
        Some(0x1_0000_0000 >> 12),
        "the ATC holds the stale one"
    );
}

// ---------------------------------------------------------------------------
// fence-one-itag
// ---------------------------------------------------------------------------

/// Two pages cached in the ATC; a slow device read (memory latency 400) of
/// the second in flight; then ATS.INVAL of the first (unless `both` is
/// false), ATS.INVAL of the second and one IOFENCE.C: two Invalidate
/// Requests outstanding before one fence, as a batching driver sends them.
/// The device completes the first at once and holds the second's
/// Invalidate Completion until the read is back (the drain rule).
fn fence_one_itag_run(inject: u16, checks: Checks, both: bool) -> Run<Drain> {
    let (va1, va2) = (0x1000_0000, 0x1000_1000);
    let mut s = sim(2, 5, inject, checks);
    s.map_4k(PASID, va1, 0x4_0000_0000, true);
    s.map_4k(PASID, va2, 0x4_0000_1000, true);
    s.read_wait(1, PASID, va1, MAX);
    s.read_wait(2, PASID, va2, MAX);
    s.dev_latency = 400;
    s.submit(3, false, PASID, va2, 0);
    s.run_until("slow access issued", 50, |s| s.out.dev_mem_req_valid != 0);
    let issued = s.cycle();
    let mut cmds = Vec::new();
    if both {
        cmds.push(cmd_ats_inval(PASID, va1, 4096));
    }
    cmds.push(cmd_ats_inval(PASID, va2, 4096));
    cmds.push(cmd_iofence_c(Some(FENCE_ADDR), DATA));
    s.submit_cmds(&cmds);
    s.wait_cq_empty(MAX);
    let drained = s.cycle();
    let done = s.wait_response(3, MAX).cycle;
    Run {
        seen: Drain {
            issued,
            fence: fence_write_cycle(&s),
            done,
        },
        fired: s.fired(),
        cmds: (issued, drained),
    }
}

#[test]
fn fence_one_itag_clear_the_fence_waits_for_both_invalidate_completions() {
    let r = fence_one_itag_run(0, Checks::On, true);
    let Drain { fence, done, .. } = r.seen;
    assert!(
        fence > done,
        "fence {fence} after the read {done}, which holds the second completion"
    );
    assert_eq!(r.fired, None);
}

#[test]
fn fence_one_itag_set_the_fence_completes_at_the_first_invalidate_completion() {
    let r = fence_one_itag_run(Inject::FENCE_ONE_ITAG, Checks::Off, true);
    let Drain {
        issued,
        fence,
        done,
    } = r.seen;
    assert!(
        issued < fence && fence < done,
        "fence {fence} while the read issued at {issued} still uses the second page's \
         translation (done {done})"
    );
    // the first Invalidate Completion's round trip over a 5-cycle link, and
    // the two commands before the fence: nowhere near the read's 400 cycles
    assert!(fence - issued < 100, "{:?}", r.seen);
}

#[test]
fn fence_one_itag_set_one_ats_inval_before_the_fence_is_waited_for() {
    // the bug needs two: with one ATS.INVAL the fence is the correct one's
    let bug = fence_one_itag_run(Inject::FENCE_ONE_ITAG, Checks::On, false);
    let ok = fence_one_itag_run(0, Checks::On, false);
    assert_eq!(bug.fired, None);
    assert_eq!(ok.fired, None);
    assert!(ok.seen.fence > ok.seen.done, "{:?}", ok.seen);
    assert_eq!(
        (bug.seen.fence, bug.seen.done),
        (ok.seen.fence, ok.seen.done),
        "the same cycles"
    );
}

// ---------------------------------------------------------------------------
// The assertions: each bug's run, assertions on, fails the one that states
// the invariant it breaks; the correct design's same run fails none.
// ---------------------------------------------------------------------------

#[test]
fn early_fence_fires_fence_after_inv_cpl_as_the_fence_completes() {
    let r = early_fence_run(Inject::EARLY_FENCE, Checks::On);
    let f = r.fired("u_cmdq.FenceAfterInvCpl_A");
    eprintln!("early-fence: cycle {}, {:?}", f.cycle, r.cmds);
    assert_eq!(f.cycle, r.seen, "the edge that starts the completion write");
    assert_eq!(early_fence_run(0, Checks::On).fired, None);
}

#[test]
fn fence_one_itag_fires_fence_after_inv_cpl_as_the_fence_completes() {
    let r = fence_one_itag_run(Inject::FENCE_ONE_ITAG, Checks::On, true);
    let f = r.fired("u_cmdq.FenceAfterInvCpl_A");
    eprintln!("fence-one-itag: cycle {}, {:?}", f.cycle, r.seen);
    assert_eq!(
        f.cycle, r.seen.fence,
        "the edge that starts the completion write, the read still in flight"
    );
    assert!(f.cycle < r.seen.done);
    assert_eq!(fence_one_itag_run(0, Checks::On, true).fired, None);
}

#[test]
fn early_inv_cpl_fires_inv_cpl_after_drain_while_the_read_is_in_flight() {
    let r = early_inv_cpl_run(Inject::EARLY_INV_CPL, Checks::On);
    let f = r.fired("u_dev.InvCplAfterDrain_A");
    eprintln!("early-inv-cpl: cycle {}, {:?}", f.cycle, r.seen);
    assert!(
        f.cycle < r.seen.fence && r.seen.fence < r.seen.done,
        "the Invalidate Completion leaves before the fence and the read: {f:?}"
    );
    assert_eq!(early_inv_cpl_run(0, Checks::On).fired, None);
}

#[test]
fn inv_misses_2m_fires_inval_complete_in_the_iotlb() {
    let r = inv_misses_2m_run(Inject::INV_MISSES_2M, Checks::On, true);
    let f = r.fired("u_iotlb.InvalComplete_A");
    eprintln!("inv-misses-2m (IOTLB): cycle {}, {:?}", f.cycle, r.cmds);
    assert_eq!(inv_misses_2m_run(0, Checks::On, true).fired, None);
}

#[test]
fn inv_misses_2m_fires_inval_complete_in_the_atc() {
    // ATS.INVAL alone: the ATC's assertion is the first
    let r = inv_misses_2m_run(Inject::INV_MISSES_2M, Checks::On, false);
    let f = r.fired("u_atc.InvalComplete_A");
    eprintln!("inv-misses-2m (ATC): cycle {}, {:?}", f.cycle, r.cmds);
    assert_eq!(r.seen, [Some(true), Some(true)]);
    let ok = inv_misses_2m_run(0, Checks::On, false);
    assert_eq!(ok.fired, None);
    assert_eq!(ok.seen, [Some(true), None], "the IOTLB was not invalidated");
}

#[test]
fn inv_wrong_pasid_fires_inval_complete_in_the_iotlb() {
    let r = inv_wrong_pasid_run(Inject::INV_WRONG_PASID, Checks::On, P7, true);
    let f = r.fired("u_iotlb.InvalComplete_A");
    eprintln!(
        "inv-wrong-pasid (IOTLB, PASID 7 kept): cycle {}, {:?}",
        f.cycle, r.cmds
    );
    assert_eq!(inv_wrong_pasid_run(0, Checks::On, P7, true).fired, None);
}

#[test]
fn inv_wrong_pasid_fires_inval_only_named_in_the_iotlb_for_pasid_0() {
    let r = inv_wrong_pasid_run(Inject::INV_WRONG_PASID, Checks::On, 0, true);
    let f = r.fired("u_iotlb.InvalOnlyNamed_A");
    eprintln!(
        "inv-wrong-pasid (IOTLB, PASID 0 dropped): cycle {}, {:?}",
        f.cycle, r.cmds
    );
    assert_eq!(inv_wrong_pasid_run(0, Checks::On, 0, true).fired, None);
}

#[test]
fn inv_wrong_pasid_fires_inval_complete_and_inval_only_named_in_the_atc() {
    // ATS.INVAL alone: the ATC's assertions are the first
    let r = inv_wrong_pasid_run(Inject::INV_WRONG_PASID, Checks::On, P7, false);
    let f = r.fired("u_atc.InvalComplete_A");
    eprintln!(
        "inv-wrong-pasid (ATC, PASID 7 kept): cycle {}, {:?}",
        f.cycle, r.cmds
    );
    let r = inv_wrong_pasid_run(Inject::INV_WRONG_PASID, Checks::On, 0, false);
    let f = r.fired("u_atc.InvalOnlyNamed_A");
    eprintln!(
        "inv-wrong-pasid (ATC, PASID 0 dropped): cycle {}, {:?}",
        f.cycle, r.cmds
    );
    for warm in [P7, 0] {
        assert_eq!(inv_wrong_pasid_run(0, Checks::On, warm, false).fired, None);
    }
}

#[test]
fn cache_racing_cpl_fires_racing_cpl_discarded_as_the_completion_arrives() {
    let r = cache_racing_cpl_run(Inject::CACHE_RACING_CPL, Checks::On);
    let f = r.fired("u_dma.RacingCplDiscarded_A");
    eprintln!("cache-racing-cpl: cycle {}, {:?}", f.cycle, r.seen);
    assert!(f.cycle < r.seen.done, "before the read used it: {f:?}");
    assert_eq!(cache_racing_cpl_run(0, Checks::On).fired, None);
}
