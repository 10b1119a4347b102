//! Bug injection (`cfg_inject_i`, docs/socket.md "Bug injection"): for each
//! bit, a directed run that shows the bug's observable effect with the bit
//! set, and the correct behaviour with it clear.

mod common;
use common::*;
use shootdown::rtl::{cmd_ats_inval, cmd_iofence_c, cmd_iotinval_vma, Inject};

const MAX: u64 = 5_000;
const DATA: u32 = 0x600d;

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

/// ATS.INVAL then IOFENCE.C over a link of `LAT` cycles each way: cycles
/// from the submission to the fence's completion write.
fn early_fence_run(inject: u16) -> u64 {
    const LAT: u16 = 100;
    let mut s = Sim::with_inject(2, LAT, inject);
    let t0 = s.cycle();
    s.submit_cmds(&[
        cmd_ats_inval(1, 0x1000, 4096),
        cmd_iofence_c(Some(FENCE_ADDR), DATA),
    ]);
    s.wait_cq_empty(MAX);
    assert_eq!(s.read64(FENCE_ADDR), u64::from(DATA));
    fence_write_cycle(&s) - t0
}

#[test]
fn early_fence_clear_the_fence_waits_for_the_invalidate_completion() {
    let c = early_fence_run(0);
    assert!(c >= 200, "completion word after the round trip: {c}");
}

#[test]
fn early_fence_set_the_completion_word_comes_before_the_invalidate_completion() {
    let c = early_fence_run(Inject::EARLY_FENCE);
    // the Invalidate Completion cannot be back before 2 * 100 cycles; the
    // request has not even reached the device
    assert!(c < 100, "completion word without waiting: {c}");
}

// ---------------------------------------------------------------------------
// early-inv-cpl
// ---------------------------------------------------------------------------

const PASID: u32 = 4;

/// A slow device read (memory latency 400) of a page whose translation is
/// then invalidated (IOTINVAL.VMA, ATS.INVAL, IOFENCE.C): (cycle the read's
/// response came, cycle of the fence completion write, cycle the read was
/// issued to memory).
fn early_inv_cpl_run(inject: u16) -> (u64, u64, u64) {
    let va = 0x1000_0000;
    let mut s = Sim::with_inject(2, 5, inject);
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
    let done = s.wait_response(2, MAX).cycle;
    (done, fence_write_cycle(&s), issued)
}

#[test]
fn early_inv_cpl_clear_the_fence_waits_for_the_read_using_the_old_translation() {
    let (done, fence, _) = early_inv_cpl_run(0);
    assert!(fence > done, "fence {fence} after the read {done}");
}

#[test]
fn early_inv_cpl_set_the_fence_completes_while_the_old_read_is_outstanding() {
    let (done, fence, issued) = early_inv_cpl_run(Inject::EARLY_INV_CPL);
    assert!(
        issued < fence && fence < done,
        "fence {fence} between the read's issue {issued} and its response {done}"
    );
}

// ---------------------------------------------------------------------------
// inv-misses-2m
// ---------------------------------------------------------------------------

/// Warm the IOTLB and the ATC with a 2 MiB entry, invalidate one 4 KiB page
/// inside it (IOTINVAL.VMA and ATS.INVAL of that page), fence: what (IOTLB,
/// ATC) then hold for that page.
fn inv_misses_2m_run(inject: u16) -> (Option<bool>, Option<bool>) {
    let (va, pa) = (0x40_0000_0000, 0x8_0000_0000);
    let page = va + 0x3000;
    let mut s = Sim::with_inject(2, 10, inject);
    s.map_2m(PASID, va, pa, true);
    s.read_wait(1, PASID, va + 0x10_0000, MAX);
    s.set_probe(0, PASID, page);
    s.step();
    let [iotlb, atc, _] = s.probe(0);
    assert!(iotlb.is_some_and(|e| e.is_2m), "IOTLB warm: {iotlb:?}");
    assert!(atc.is_some_and(|e| e.is_2m), "ATC warm: {atc:?}");
    s.submit_cmds(&[
        cmd_iotinval_vma(Some(PASID), Some(page)),
        cmd_ats_inval(PASID, page, 4096),
        cmd_iofence_c(Some(FENCE_ADDR), DATA),
    ]);
    s.wait_cq_empty(MAX);
    s.step();
    let [iotlb, atc, _] = s.probe(0);
    (iotlb.map(|e| e.is_2m), atc.map(|e| e.is_2m))
}

#[test]
fn inv_misses_2m_clear_a_4k_invalidation_drops_the_2m_entry() {
    assert_eq!(inv_misses_2m_run(0), (None, None));
}

#[test]
fn inv_misses_2m_set_the_2m_entry_survives_in_the_iotlb_and_the_atc() {
    assert_eq!(
        inv_misses_2m_run(Inject::INV_MISSES_2M),
        (Some(true), Some(true))
    );
}

// ---------------------------------------------------------------------------
// inv-wrong-pasid
// ---------------------------------------------------------------------------

/// Warm the IOTLB and ATC for a page of PASID 7, invalidate it by PASID
/// (IOTINVAL.VMA with PV, ATS.INVAL), fence: whether (IOTLB, ATC) still
/// hold it.
fn inv_wrong_pasid_run(inject: u16) -> (bool, bool) {
    const P7: u32 = 7;
    let va = 0x1234_5000;
    let mut s = Sim::with_inject(2, 10, inject);
    s.map_4k(P7, va, 0x5_0000_0000, true);
    s.read_wait(1, P7, va, MAX);
    s.set_probe(0, P7, va);
    s.step();
    assert!(s.probe(0)[0].is_some() && s.probe(0)[1].is_some(), "warm");
    s.submit_cmds(&[
        cmd_iotinval_vma(Some(P7), Some(va)),
        cmd_ats_inval(P7, va, 4096),
        cmd_iofence_c(Some(FENCE_ADDR), DATA),
    ]);
    s.wait_cq_empty(MAX);
    s.step();
    let [iotlb, atc, _] = s.probe(0);
    (iotlb.is_some(), atc.is_some())
}

#[test]
fn inv_wrong_pasid_clear_the_pasid_entries_are_dropped() {
    assert_eq!(inv_wrong_pasid_run(0), (false, false));
}

#[test]
fn inv_wrong_pasid_set_the_pasid_entries_survive() {
    assert_eq!(inv_wrong_pasid_run(Inject::INV_WRONG_PASID), (true, true));
}

// ---------------------------------------------------------------------------
// cache-racing-cpl
// ---------------------------------------------------------------------------

/// A device read misses the ATC and its Translation Request walks. Right
/// after the walker read the PDPT entry, the CPU points that entry at new
/// tables (new frame) and invalidates (IOTINVAL.VMA, ATS.INVAL, IOFENCE.C).
/// The command fetches win the memory port, so the walker finishes through
/// the old tables after the ATS.INVAL was sent: its (stale) Completion
/// reaches the device after the Invalidate Request. Returns the PA the read
/// used, the PPN the ATC holds afterwards and the number of walks (reads of
/// the PDPT entry).
fn cache_racing_cpl_run(inject: u16) -> (u64, Option<u64>, usize) {
    const LAT: u16 = 30;
    let va = 0x2222_0000;
    let (old_pa, new_pa) = (0x1_0000_0000u64, 0x2_0000_0000u64);
    let mut s = Sim::with_inject(2, LAT, inject);
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
    s.submit_cmds(&[
        cmd_iotinval_vma(Some(PASID), Some(va)),
        cmd_ats_inval(PASID, va, 4096),
        cmd_iofence_c(Some(FENCE_ADDR), DATA),
    ]);
    let r = s.wait_response(1, MAX);
    assert_eq!(r.status, 0);
    s.wait_cq_empty(MAX);
    s.step();
    let walks = s
        .iommu_log
        .iter()
        .filter(|a| a.addr == pdpte && !a.write && !a.cas)
        .count();
    (r.pa, s.probe(0)[1].map(|e| e.ppn), walks)
}

#[test]
fn cache_racing_cpl_clear_the_overtaken_completion_is_discarded() {
    let (pa, atc, walks) = cache_racing_cpl_run(0);
    assert_eq!(walks, 2, "discarded, requested and walked again");
    assert_eq!(pa, 0x2_0000_0000, "the read uses the new translation");
    assert_eq!(atc, Some(0x2_0000_0000 >> 12), "the ATC holds the new one");
}

#[test]
fn cache_racing_cpl_set_the_atc_holds_the_stale_translation_after_the_race() {
    let (pa, atc, walks) = cache_racing_cpl_run(Inject::CACHE_RACING_CPL);
    assert_eq!(walks, 1, "installed, no second request");
    assert_eq!(pa, 0x1_0000_0000, "the read uses the old translation");
    assert_eq!(
        atc,
        Some(0x1_0000_0000 >> 12),
        "the ATC holds the stale one"
    );
}
