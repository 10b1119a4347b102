//! The IOTLB: filled by walks, hit by later Translation Requests (no walk
//! traffic), and emptied by IOTINVAL.VMA by address, by PASID, globally,
//! by an address inside a 2 MiB entry and by a range (S=1). Observed through
//! the probes and through the walker's memory reads.

mod common;
use common::*;
use shootdown::rtl::{
    cmd_ats_inval, cmd_iofence_c, cmd_iotinval_range, cmd_iotinval_vma, iotinval_range, ProbeEntry,
};

const PASID: u32 = 3;
const MAX: u64 = 3_000;

/// Drop every ATC entry of `pasid` (ATS.INVAL of the whole space, fenced),
/// so the next device access asks the IOMMU again.
fn flush_atc(s: &mut Sim, pasid: u32) {
    s.submit_cmds(&[cmd_ats_inval(pasid, 0, u64::MAX), cmd_iofence_c(None, 0)]);
    s.wait_cq_empty(MAX);
}

#[test]
fn a_walk_fills_the_iotlb_and_a_later_request_hits_it() {
    let mut s = Sim::new(2, 3);
    let va = 0x4000_1000;
    let pa = 0x9_0000_3000;
    s.map_4k(PASID, va, pa, true);
    s.set_probe(0, PASID, va);
    s.step();
    assert_eq!(s.probe(0)[0], None, "IOTLB empty after reset");

    let r = s.read_wait(1, PASID, va, MAX);
    assert_eq!(r.status, 0);
    let walks = s.walk_reads();
    assert_eq!(walks, 5);
    // a read walk (No-Write) grants no W, so the IOTLB caches none
    let want = ProbeEntry {
        ppn: pa >> 12,
        w: false,
        r: true,
        is_2m: false,
    };
    assert_eq!(s.probe(0)[0], Some(want), "IOTLB holds the walk result");

    flush_atc(&mut s, PASID);
    assert_eq!(s.probe(0)[1], None, "ATC flushed");
    assert_eq!(
        s.probe(0)[0],
        Some(want),
        "ATS.INVAL leaves the IOTLB alone"
    );
    let r = s.read_wait(2, PASID, va, MAX);
    assert_eq!((r.status, r.pa), (0, pa));
    assert_eq!(s.walk_reads(), walks, "an IOTLB hit needs no walk");
}

#[test]
fn iotinval_by_address_drops_only_that_page() {
    let mut s = Sim::new(2, 3);
    let (va_a, va_b) = (0x5000_0000, 0x5000_1000);
    s.map_4k(PASID, va_a, 0x10_0000_0000, true);
    s.map_4k(PASID, va_b, 0x10_0000_1000, true);
    s.read_wait(1, PASID, va_a, MAX);
    s.read_wait(2, PASID, va_b, MAX);
    s.set_probe(0, PASID, va_a);
    s.set_probe(1, PASID, va_b);
    s.step();
    assert!(s.probe(0)[0].is_some() && s.probe(1)[0].is_some());

    s.submit_cmds(&[cmd_iotinval_vma(Some(PASID), Some(va_a + 0x123))]);
    s.wait_cq_empty(MAX);
    s.step();
    assert_eq!(s.probe(0)[0], None, "page A invalidated");
    assert!(s.probe(1)[0].is_some(), "page B kept");

    flush_atc(&mut s, PASID);
    let walks = s.walk_reads();
    s.read_wait(3, PASID, va_a, MAX);
    assert_eq!(s.walk_reads(), walks + 5, "page A walks again");
    s.read_wait(4, PASID, va_b, MAX);
    assert_eq!(s.walk_reads(), walks + 5, "page B still hits");
}

#[test]
fn iotinval_by_pasid_drops_that_pasid_only() {
    let mut s = Sim::new(2, 3);
    let va = 0x6000_0000;
    s.map_4k(1, va, 0x20_0000_0000, true);
    s.map_4k(1, va + 0x20_0000, 0x20_0000_1000, true);
    s.map_4k(2, va, 0x30_0000_0000, true);
    s.read_wait(1, 1, va, MAX);
    s.read_wait(2, 1, va + 0x20_0000, MAX);
    s.read_wait(3, 2, va, MAX);
    s.set_probe(0, 1, va);
    s.set_probe(1, 1, va + 0x20_0000);
    s.set_probe(2, 2, va);
    s.submit_cmds(&[cmd_iotinval_vma(Some(1), None)]);
    s.wait_cq_empty(MAX);
    s.step();
    assert_eq!(s.probe(0)[0], None);
    assert_eq!(s.probe(1)[0], None);
    assert_eq!(
        s.probe(2)[0].map(|e| e.ppn),
        Some(0x30_0000_0000 >> 12),
        "other PASID kept"
    );

    s.submit_cmds(&[cmd_iotinval_vma(None, None)]);
    s.wait_cq_empty(MAX);
    s.step();
    assert_eq!(s.probe(2)[0], None, "global invalidation");
}

#[test]
fn iotinval_of_a_4k_address_inside_a_2m_entry_drops_it() {
    let mut s = Sim::new(2, 3);
    let va = 0x80_0000_0000 + 0x40_0000; // 2 MiB aligned
    let pa = 0x4_0000_0000;
    s.map_2m(PASID, va, pa, false);
    s.read_wait(1, PASID, va + 0x5008, MAX);
    s.set_probe(0, PASID, va + 0x5000);
    s.set_probe(1, PASID, va + 0x1f_f000);
    s.step();
    let e = s.probe(0)[0].expect("2 MiB entry cached");
    assert!(e.is_2m && e.r && !e.w);
    assert_eq!(e.ppn, (pa >> 12) + 5, "probe reports this 4 KiB page's PPN");
    assert_eq!(s.probe(1)[0].map(|e| e.ppn), Some((pa >> 12) + 0x1ff));

    // an address in another 2 MiB region leaves it
    s.submit_cmds(&[cmd_iotinval_vma(Some(PASID), Some(va + 0x20_0000))]);
    s.wait_cq_empty(MAX);
    s.step();
    assert!(s.probe(0)[0].is_some());

    s.submit_cmds(&[cmd_iotinval_vma(Some(PASID), Some(va + 0x12_3000))]);
    s.wait_cq_empty(MAX);
    s.step();
    assert_eq!(s.probe(0)[0], None);
    assert_eq!(s.probe(1)[0], None);
}

#[test]
fn a_full_set_replaces_round_robin() {
    if skip_on_variant(
        "a_full_set_replaces_round_robin",
        "set indexing and per-set round-robin replacement are rtl/iotlb.sv's own choices",
    ) {
        return;
    }
    let mut s = Sim::new(2, 3);
    // VPNs 16 apart share a set of the 16-set IOTLB; 4 ways.
    let vas: Vec<u64> = (0..6).map(|i| 0x7000_0000 + i * 16 * 0x1000).collect();
    for (i, va) in vas.iter().enumerate() {
        s.map_4k(PASID, *va, 0x50_0000_0000 + (i as u64) * 0x1000, true);
        s.read_wait(i as u8, PASID, *va, MAX);
    }
    let held: Vec<bool> = vas
        .iter()
        .map(|va| {
            s.set_probe(0, PASID, *va);
            s.step();
            s.probe(0)[0].is_some()
        })
        .collect();
    // fills 0..3 take ways 0..3; fill 4 evicts way 0 (page 0), fill 5 way 1
    assert_eq!(held, vec![false, false, true, true, true, true]);
}

#[test]
fn an_iotinval_during_a_walk_keeps_its_result_out_of_the_iotlb() {
    let mut s = Sim::new(30, 3);
    let va = 0x9000_0000;
    let pa = 0x60_0000_0000;
    s.map_4k(PASID, va, pa, true);
    s.set_probe(0, PASID, va);
    s.submit(1, false, PASID, va, 0);
    let root = PASID_TABLE + u64::from(PASID) * 8;
    s.run_until("walk start", MAX, |s| {
        s.iommu_log.iter().any(|a| a.addr == root)
    });
    s.submit_cmds(&[cmd_iotinval_vma(Some(PASID), Some(va))]);
    let r = s.wait_response(1, MAX);
    assert_eq!(
        (r.status, r.pa),
        (0, pa),
        "the walk result is still delivered"
    );
    let inval_done = s
        .iommu_log
        .iter()
        .filter(|a| a.addr >= CQ_BASE && a.addr < CQ_BASE + 0x1000)
        .count();
    assert_eq!(inval_done, 2, "the command was fetched during the walk");
    s.step();
    assert_eq!(
        s.probe(0)[0],
        None,
        "not cached: an invalidation overlapped the walk"
    );
    assert!(
        s.probe(0)[1].is_some(),
        "the device still caches it (the ATS.INVAL would follow)"
    );
}

#[test]
fn a_range_iotinval_drops_the_entries_inside_and_keeps_the_rest() {
    let mut s = Sim::new(2, 3);
    // 4 KiB pages around the 16 KiB block [0x5100_4000, 0x5100_8000)
    let base = 0x5100_0000;
    let pages = [0x3000u64, 0x4000, 0x7000, 0x8000];
    for (i, off) in pages.iter().enumerate() {
        s.map_4k(
            PASID,
            base + off,
            0x70_0000_0000 + (i as u64) * 0x1000,
            true,
        );
        s.read_wait(i as u8, PASID, base + off, MAX);
        s.set_probe(i, PASID, base + off);
    }
    s.step();
    assert!(
        (0..4).all(|i| s.probe(i)[0].is_some()),
        "all four cached before the invalidation"
    );
    let cmd = cmd_iotinval_range(PASID, base + 0x4000, 0x4000);
    assert_eq!(iotinval_range(cmd[1]), (base + 0x4000, 14), "S=1, 16 KiB");
    s.submit_cmds(&[cmd]);
    s.wait_cq_empty(MAX);
    s.step();
    let held: Vec<bool> = (0..4).map(|i| s.probe(i)[0].is_some()).collect();
    assert_eq!(
        held,
        vec![true, false, false, true],
        "0x4000 and 0x7000 are inside the range, 0x3000 and 0x8000 outside"
    );

    // The pages inside walk again, the ones outside still hit.
    flush_atc(&mut s, PASID);
    let walks = s.walk_reads();
    s.read_wait(10, PASID, base + 0x3000, MAX);
    s.read_wait(11, PASID, base + 0x8000, MAX);
    assert_eq!(s.walk_reads(), walks, "outside the range: IOTLB hits");
    s.read_wait(12, PASID, base + 0x7000, MAX);
    assert_eq!(s.walk_reads(), walks + 5, "inside the range: a walk");
}

#[test]
fn a_range_iotinval_overlapping_a_2m_entry_drops_it_and_a_disjoint_one_keeps_it() {
    let mut s = Sim::new(2, 3);
    let va = 0x80_0000_0000 + 0x60_0000; // 2 MiB aligned
    s.map_2m(PASID, va, 0x6_0000_0000, true);
    s.read_wait(1, PASID, va + 0x8, MAX);
    s.set_probe(0, PASID, va + 0x1f_f000);
    s.step();
    assert!(s.probe(0)[0].is_some_and(|e| e.is_2m));

    // 1 MiB just below the entry and 2 MiB just above: disjoint, kept
    s.submit_cmds(&[
        cmd_iotinval_range(PASID, va - 0x10_0000, 0x10_0000),
        cmd_iotinval_range(PASID, va + 0x20_0000, 0x20_0000),
    ]);
    s.wait_cq_empty(MAX);
    s.step();
    assert!(
        s.probe(0)[0].is_some(),
        "disjoint ranges keep the 2 MiB entry"
    );

    // another PASID's range over the same addresses: kept
    s.submit_cmds(&[cmd_iotinval_range(PASID + 1, va, 0x20_0000)]);
    s.wait_cq_empty(MAX);
    s.step();
    assert!(s.probe(0)[0].is_some(), "another PASID keeps it");

    // 8 KiB inside the entry (not holding the probed page): dropped
    s.submit_cmds(&[cmd_iotinval_range(PASID, va + 0x4_0000, 0x2000)]);
    s.wait_cq_empty(MAX);
    s.step();
    assert_eq!(s.probe(0)[0], None, "a range inside a 2 MiB entry drops it");
}

#[test]
fn a_range_iotinval_during_a_walk_keeps_its_result_out_of_the_iotlb() {
    let mut s = Sim::new(30, 3);
    // in the second 2 MiB region of a 4 MiB block: the block's dword1
    // (base | ones in bits 12..20) names an address of the first region
    let va = 0x9130_5000;
    s.map_4k(PASID, va, 0x61_0000_0000, true);
    s.set_probe(0, PASID, va);
    s.submit(1, false, PASID, va, 0);
    let root = PASID_TABLE + u64::from(PASID) * 8;
    s.run_until("walk start", MAX, |s| {
        s.iommu_log.iter().any(|a| a.addr == root)
    });
    let cmd = cmd_iotinval_range(PASID, 0x9100_0000, 0x40_0000);
    assert_eq!(cmd[1] >> 21, 0x9100_0000 >> 21);
    s.submit_cmds(&[cmd]);
    let r = s.wait_response(1, MAX);
    assert_eq!(r.status, 0);
    s.step();
    assert_eq!(s.probe(0)[0], None, "the walk result is not cached");
}
