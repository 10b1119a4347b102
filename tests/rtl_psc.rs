//! The walker's paging-structure cache (PSC, rtl/ptw.sv): it caches the PD
//! entry's table pointer per (PASID, VA bits 47:21), so a walk of another
//! 4 KiB page of the same 2 MiB region reads only the PTE; every
//! IOTINVAL.VMA of the PASID drops it; a walk restarted after a lost A/D
//! compare-and-swap bypasses it; with `psc-not-invalidated` a replaced PD
//! table pointer stays cached and the device reads the old frame (the RTL
//! assertions off), or, assertions on, `u_ptw.PscInvalidated_A` fires.

mod common;
use common::*;
use shootdown::rtl::{cmd_ats_inval, cmd_iofence_c, cmd_iotinval_vma, inject_bits};

const PASID: u32 = 6;
const MAX: u64 = 5_000;
const DATA: u32 = 0x95c0;
/// PASID-table entry + PML4 + PDPT + PD + PT.
const FULL_WALK: usize = 5;

fn psc_not_invalidated() -> u16 {
    inject_bits(&["psc-not-invalidated"]).expect("bug name")
}

/// A device read of `va` that must succeed; returns the walk reads it cost.
fn read_cost(s: &mut Sim, id: u8, pasid: u32, va: u64) -> (DevRsp, usize) {
    let before = s.walk_reads();
    let r = s.read_wait(id, pasid, va, MAX);
    assert_eq!(r.status, 0, "{r:?}");
    (r, s.walk_reads() - before)
}

/// Invalidate as the CPU does after changing `pasid`'s tables at `va`:
/// IOTINVAL.VMA, ATS.INVAL, IOFENCE.C; wait for the fence.
fn shootdown(s: &mut Sim, pasid: u32, va: u64) {
    s.submit_cmds(&[
        cmd_iotinval_vma(Some(pasid), Some(va)),
        cmd_ats_inval(pasid, va, 4096),
        cmd_iofence_c(Some(FENCE_ADDR), DATA),
    ]);
    s.wait_cq_empty(MAX);
    assert_eq!(s.read64(FENCE_ADDR), u64::from(DATA));
}

#[test]
fn a_second_page_of_the_same_2m_region_reads_only_the_pte() {
    let mut s = Sim::new(3, 4);
    let va = 0x0000_7f12_3440_0000; // 2 MiB aligned
    let pa = 0x8_0000_0000;
    for i in 0..4 {
        s.map_4k(PASID, va + i * 0x1000, pa + i * 0x1000, true);
    }
    let (_, cost) = read_cost(&mut s, 1, PASID, va);
    assert_eq!(cost, FULL_WALK, "cold PSC: the full walk");
    let n = s.iommu_log.len();
    let (r, cost) = read_cost(&mut s, 2, PASID, va + 0x3008);
    assert_eq!(cost, 1, "PSC hit: the PTE only");
    assert_eq!(r.pa, pa + 0x3008);
    let pte = s.leaf_addr(PASID, va + 0x3000, 0);
    let reads: Vec<u64> = s.iommu_log[n..]
        .iter()
        .filter(|a| !a.write && !a.cas)
        .map(|a| a.addr)
        .collect();
    assert_eq!(reads, vec![pte], "the one read is the PTE");
}

#[test]
fn another_2m_region_or_another_pasid_walks_in_full() {
    let mut s = Sim::new(3, 4);
    let va = 0x1000_0000;
    let other = va + 0x20_0000; // the next 2 MiB region, same PD page
    s.map_4k(PASID, va, 0x5000_0000, true);
    s.map_4k(PASID, other, 0x5100_0000, true);
    s.map_4k(PASID + 1, va + 0x1000, 0x5200_0000, true);
    assert_eq!(read_cost(&mut s, 1, PASID, va).1, FULL_WALK);
    assert_eq!(read_cost(&mut s, 2, PASID, other).1, FULL_WALK);
    assert_eq!(
        read_cost(&mut s, 3, PASID + 1, va + 0x1000).1,
        FULL_WALK,
        "the same region of another PASID"
    );
}

#[test]
fn a_2m_leaf_is_not_cached() {
    // with IOTINVAL.VMA leaving the PSC alone, so that a cached 2 MiB leaf
    // would survive the shootdown below
    let mut s = Sim::with_inject(3, 4, psc_not_invalidated());
    let va = 0x40_0000_0000;
    s.map_2m(PASID, va, 0x1_4000_0000, true);
    assert_eq!(
        read_cost(&mut s, 1, PASID, va).1,
        4,
        "PASID + PML4 + PDPT + PD"
    );
    // drop the IOTLB / ATC 2 MiB entry, then turn the region into 4 KiB pages
    shootdown(&mut s, PASID, va);
    let pd = s.leaf_addr(PASID, va, 1);
    s.write64(pd, 0);
    s.map_4k(PASID, va + 0x1000, 0x1_5000_1000, true);
    s.submit_cmds(&[cmd_iotinval_vma(Some(PASID), None)]);
    s.wait_cq_empty(MAX);
    let (r, cost) = read_cost(&mut s, 2, PASID, va + 0x1000);
    assert_eq!(cost, FULL_WALK, "nothing cached from the 2 MiB leaf");
    assert_eq!(r.pa, 0x1_5000_1000);
}

/// Warm the PSC for the region of `va`, send `cmds`, then read a new page
/// of that region: the walk reads it cost. An injected bug's run has the
/// RTL assertions off, to go on past the invariant it breaks.
fn cost_after(inject: u16, cmds: &[[u64; 2]]) -> usize {
    let mut s = Sim::with_inject(3, 4, inject);
    s.set_assertions(inject == 0);
    let va = 0x2000_0000;
    for i in 0..3 {
        s.map_4k(PASID, va + i * 0x1000, 0x6000_0000 + i * 0x1000, true);
    }
    assert_eq!(read_cost(&mut s, 1, PASID, va).1, FULL_WALK);
    assert_eq!(read_cost(&mut s, 2, PASID, va + 0x1000).1, 1, "warm");
    s.submit_cmds(cmds);
    s.wait_cq_empty(MAX);
    s.run(10);
    read_cost(&mut s, 3, PASID, va + 0x2000).1
}

#[test]
fn iotinval_vma_of_the_pasid_drops_the_psc() {
    // by address (another page, even another region), by PASID, all
    for cmd in [
        cmd_iotinval_vma(Some(PASID), Some(0x7000_0000)),
        cmd_iotinval_vma(Some(PASID), None),
        cmd_iotinval_vma(None, None),
    ] {
        assert_eq!(cost_after(0, &[cmd]), FULL_WALK, "{cmd:x?}");
    }
}

#[test]
fn iotinval_vma_of_another_pasid_keeps_the_psc() {
    let cmd = cmd_iotinval_vma(Some(PASID + 1), None);
    assert_eq!(cost_after(0, &[cmd]), 1);
}

#[test]
fn psc_not_invalidated_iotinval_vma_keeps_the_psc() {
    let cmd = cmd_iotinval_vma(Some(PASID), None);
    assert_eq!(cost_after(psc_not_invalidated(), &[cmd]), 1);
}

/// Warm the PSC with `va`'s region (old PT page), then the CPU points the
/// PD entry at a new PT page mapping `va` to a new frame and shoots down
/// (IOTINVAL.VMA, ATS.INVAL, IOFENCE.C). Returns the device's next read of
/// `va` and the walk reads it cost, with the RTL assertions off.
fn replaced_pd_run(inject: u16) -> (DevRsp, usize) {
    let (r, cost, _) = replaced_pd_run_checked(inject, false);
    (r, cost)
}

/// [`replaced_pd_run`] with the assertions on if `checks` (the first failure
/// recorded: returned with the cycles the shootdown was submitted and the
/// queue drained).
fn replaced_pd_run_checked(
    inject: u16,
    checks: bool,
) -> (DevRsp, usize, Option<(Fired, u64, u64)>) {
    let va = 0x3000_0000;
    let (old_pa, new_pa) = (0x1_0000_0000u64, 0x2_0000_0000u64);
    let mut s = Sim::with_inject(3, 6, inject);
    if checks {
        s.record_assertions();
    } else {
        s.set_assertions(false);
    }
    s.map_4k(PASID, va, old_pa, true);
    s.write64(old_pa, 0x01d);
    s.write64(new_pa, 0x2e3);
    let (r, cost) = read_cost(&mut s, 1, PASID, va);
    assert_eq!((r.rdata, cost), (0x01d, FULL_WALK));
    // a new PT page, away from the harness's table pool
    let new_pt = 0x80_0000u64;
    s.write64(
        new_pt + ((va >> 12) & 0x1ff) * 8,
        new_pa | P | RW | US | A | D,
    );
    let pd = s.leaf_addr(PASID, va, 1);
    s.write64(pd, new_pt | P | RW | US);
    let t0 = s.cycle();
    shootdown(&mut s, PASID, va);
    let t1 = s.cycle();
    let (r, cost) = read_cost(&mut s, 2, PASID, va);
    (r, cost, s.fired().map(|f| (f, t0, t1)))
}

#[test]
fn a_replaced_pd_table_pointer_is_walked_after_the_shootdown() {
    let (r, cost, fired) = replaced_pd_run_checked(0, true);
    assert_eq!(cost, FULL_WALK, "the PSC was dropped");
    assert_eq!((r.pa, r.rdata), (0x2_0000_0000, 0x2e3), "the new frame");
    assert_eq!(fired, None, "no assertion fires");
}

#[test]
fn psc_not_invalidated_the_device_reads_the_old_frame_through_the_old_table() {
    let (r, cost) = replaced_pd_run(psc_not_invalidated());
    assert_eq!(cost, 1, "stale PSC hit: the old PT's PTE only");
    assert_eq!((r.pa, r.rdata), (0x1_0000_0000, 0x01d), "the old frame");
}

#[test]
fn psc_not_invalidated_fires_psc_invalidated_after_the_iotinval_vma() {
    let (_, _, fired) = replaced_pd_run_checked(psc_not_invalidated(), true);
    let (f, t0, t1) = fired.expect("PscInvalidated_A fired");
    eprintln!("psc-not-invalidated: {f:?}, shootdown {t0}..{t1}");
    assert!(f.names("u_ptw.PscInvalidated_A"), "{f:?}");
    assert!(
        t0 < f.cycle && f.cycle < t1,
        "in the shootdown, before the stale walk: {f:?}"
    );
    let (_, _, fired) = replaced_pd_run_checked(0, true);
    assert_eq!(fired, None, "the correct design: none");
}

/// A walk that hits the PSC loses its A/D compare-and-swap because the CPU
/// cleared the old PTE and pointed the PD entry at a new PT page: the
/// restarted walk must not trust the PSC (it would find the cleared PTE and
/// fault) but walk from the PASID table and find the new mapping.
#[test]
fn a_restart_after_a_lost_cas_bypasses_the_psc() {
    let mut s = Sim::new(3, 4);
    let va = 0x5000_0000;
    let page = va + 0x1000;
    let (old_pa, new_pa) = (0x3_0000_0000u64, 0x3_1000_0000u64);
    s.map_4k(PASID, va, 0x3_2000_0000, true);
    assert_eq!(read_cost(&mut s, 1, PASID, va).1, FULL_WALK);
    // the PTE without A: the walker must CAS it
    let pte = s.map_flags(PASID, page, old_pa, 0, P | RW | US);
    let new_pt = 0x90_0000u64;
    s.write64(
        new_pt + ((page >> 12) & 0x1ff) * 8,
        new_pa | P | RW | US | A | D,
    );
    let pd = s.leaf_addr(PASID, page, 1);
    let before = s.walk_reads();
    s.submit(2, false, PASID, page, 0);
    s.run_until("walker reads the PTE", MAX, |s| {
        s.iommu_log
            .iter()
            .any(|a| a.addr == pte && !a.write && !a.cas)
    });
    assert_eq!(s.walk_reads() - before, 1, "PSC hit: straight to the PTE");
    s.write64(pd, new_pt | P | RW | US);
    s.before_cas.push_back((pte, 0)); // cleared before the CAS is served
    let r = s.wait_response(2, MAX);
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(r.pa, new_pa, "the restarted walk found the new table");
    assert_eq!(s.walk_reads() - before, 1 + FULL_WALK);
    let cas = s.cas_log();
    assert_eq!(cas.len(), 1, "{cas:?}");
    assert!(!cas[0].cas_won());
    // the restarted walk refreshed the PSC with the new table pointer
    // (the harness walks the CPU tables: this lands in the new PT page)
    s.map_4k(PASID, va + 0x2000, new_pa + 0x2000, false);
    assert_eq!(
        s.leaf_addr(PASID, va + 0x2000, 0),
        new_pt + (((va + 0x2000) >> 12) & 0x1ff) * 8
    );
    let (r, cost) = read_cost(&mut s, 3, PASID, va + 0x2000);
    assert_eq!(cost, 1, "PSC hit on the refreshed entry");
    assert_eq!(r.pa, new_pa + 0x2000);
}

/// A walk through a supervisor-only upper level (the kernel half of a
/// process's page tables, x86 `_KERNPG_TABLE`: no US) caches the PD's table
/// pointer as any walk does, with the upper levels' US: a user-mode request
/// through the entry still faults at the leaf, after reading only the PTE.
/// (A freed kernel page table under such an entry is
/// scenarios/kernel-pgtable-free.yaml.)
#[test]
fn a_supervisor_only_level_is_cached_and_still_faults() {
    const US: u64 = 1 << 2;
    let mut s = Sim::new(3, 4);
    let va = 0x3000_0000;
    for i in 0..2 {
        s.map_4k(PASID, va + i * 0x1000, 0x7000_0000 + i * 0x1000, true);
    }
    let pml4e = s.leaf_addr(PASID, va, 3);
    let e = s.read64(pml4e);
    assert_ne!(e & US, 0, "map_4k's tables are user tables");
    s.write64(pml4e, e & !US);
    let before = s.walk_reads();
    let r = s.read_wait(1, PASID, va, MAX);
    assert_ne!(r.status, 0, "no US at the PML4: a user-mode request faults");
    assert_eq!(s.walk_reads() - before, FULL_WALK);
    let before = s.walk_reads();
    let r = s.read_wait(2, PASID, va + 0x1008, MAX);
    assert_ne!(r.status, 0, "the PSC entry kept the PML4's missing US");
    assert_eq!(
        s.walk_reads() - before,
        1,
        "PSC hit: the PTE only, though the walk faulted"
    );
}

/// A PASID entry with SRE (bit 1) makes the PASID's requests supervisor
/// ones: a supervisor-only leaf (no US) is readable through it, and not
/// through a PASID without SRE over the same tables; the PSC keeps the
/// SRE with the entry, so a hit of another page reads it too.
#[test]
fn sre_in_the_pasid_entry_reads_a_supervisor_page() {
    const P: u64 = 1;
    const RW: u64 = 1 << 1;
    const A: u64 = 1 << 5;
    const D: u64 = 1 << 6;
    let mut s = Sim::new(3, 4);
    let va = 0x3000_0000;
    for i in 0..2 {
        s.map_flags(
            PASID,
            va + i * 0x1000,
            0x7100_0000 + i * 0x1000,
            0,
            P | RW | A | D,
        );
    }
    // PASID + 1: the same tables, supervisor requests
    let root = s.root(PASID);
    s.write64(PASID_TABLE + u64::from(PASID + 1) * 8, root | 0b11);
    let user = s.read_wait(1, PASID, va, MAX);
    assert_ne!(user.status, 0, "a user-mode request: no US at the leaf");
    let (r, cost) = read_cost(&mut s, 2, PASID + 1, va + 0x10);
    assert_eq!(
        (r.pa, cost),
        (0x7100_0010, FULL_WALK),
        "SRE: the leaf is readable"
    );
    let (r, cost) = read_cost(&mut s, 3, PASID + 1, va + 0x1010);
    assert_eq!((r.pa, cost), (0x7100_1010, 1), "a PSC hit keeps the SRE");
    let user = s.read_wait(4, PASID, va + 0x1010, MAX);
    assert_ne!(user.status, 0, "the user PASID's PSC entry has no SRE");
}
