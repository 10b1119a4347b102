//! Accessed / Dirty bits and ATS No-Write: the walker sets the leaf's A bit
//! when it uses it and its D bit when it grants W, with a compare-and-swap
//! on the IOMMU memory port; a lost CAS restarts the walk; reads ask with
//! NW=1 (no W, no D); a write that hits a read-only ATC entry asks again
//! with NW=0.

mod common;
use common::*;

const PASID: u32 = 4;
const MAX: u64 = 3_000;

/// Walks the IOMMU started: reads of the PASID-table entry (IOTLB hits make
/// no memory traffic).
fn walks(s: &Sim) -> usize {
    let root = PASID_TABLE + u64::from(PASID) * 8;
    s.iommu_log
        .iter()
        .filter(|a| !a.write && !a.cas && a.addr == root)
        .count()
}

#[test]
fn a_device_read_sets_a_but_not_d() {
    let mut s = Sim::new(2, 3);
    let va = 0x1000_0000;
    let pa = 0x5000_0000;
    let pte = s.map_flags(PASID, va, pa, 0, P | RW | US);
    s.write64(pa, 0x77);
    let r = s.read_wait(1, PASID, va, MAX);
    assert_eq!((r.status, r.rdata), (0, 0x77), "{r:?}");
    let e = s.read64(pte);
    assert_ne!(e & A, 0, "A set: {e:#x}");
    assert_eq!(e & D, 0, "a read does not set D: {e:#x}");
    let cas = s.cas_log();
    assert_eq!(cas.len(), 1, "{cas:?}");
    assert!(cas[0].cas_won() && cas[0].addr == pte);
    assert_eq!(cas[0].cmp, P | RW | US | pa);
    assert_eq!(cas[0].data, P | RW | US | A | pa);
    // the translation the device got for a read has no W
    s.set_probe(0, PASID, va);
    s.step();
    let atc = s.probe(0)[1].expect("ATC entry");
    assert!(atc.r && !atc.w, "{atc:?}");
}

#[test]
fn a_device_write_sets_a_and_d() {
    let mut s = Sim::new(2, 3);
    let va = 0x1100_0000;
    let pa = 0x5100_0000;
    let pte = s.map_flags(PASID, va, pa, 0, P | RW | US);
    let r = s.access_wait(1, true, PASID, va + 8, 0xabc, MAX);
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(s.read64(pa + 8), 0xabc);
    let e = s.read64(pte);
    assert_eq!(e & (A | D), A | D, "{e:#x}");
    assert_eq!(s.cas_log().len(), 1, "one CAS sets both");
    // A and D already set: a second walk needs no CAS
    s.map_flags(PASID, va + 0x1000, pa + 0x1000, 0, P | RW | US | A | D);
    let r = s.access_wait(2, true, PASID, va + 0x1000, 1, MAX);
    assert_eq!(r.status, 0);
    assert_eq!(s.cas_log().len(), 1, "nothing to set, no CAS");
}

#[test]
fn a_write_to_a_read_only_page_sets_a_only_and_faults() {
    let mut s = Sim::new(2, 3);
    let va = 0x1200_0000;
    let pa = 0x5200_0000;
    let pte = s.map_flags(PASID, va, pa, 0, P | US);
    let r = s.access_wait(1, true, PASID, va, 1, MAX);
    assert_eq!(r.status, 1, "{r:?}");
    assert!(s.dev_log.is_empty());
    assert_eq!(s.read64(pte) & (A | D), A, "no W granted, no D");
}

#[test]
fn a_read_then_a_write_requests_again_and_sets_d() {
    let lat = 20;
    let mut s = Sim::new(2, lat);
    let va = 0x1300_0000;
    let pa = 0x5300_0000;
    let pte = s.map_flags(PASID, va, pa, 0, P | RW | US);
    let r = s.read_wait(1, PASID, va, MAX);
    assert_eq!(r.status, 0);
    assert_eq!(s.read64(pte) & (A | D), A);
    assert_eq!(walks(&s), 1);

    let t = s.cycle();
    let w = s.access_wait(2, true, PASID, va + 0x10, 0x5a, MAX);
    assert_eq!((w.status, w.pa), (0, pa + 0x10), "{w:?}");
    assert_eq!(s.read64(pa + 0x10), 0x5a);
    assert!(
        w.cycle - t > 2 * u64::from(lat),
        "the write hit a read-only ATC entry and crossed the link: {}",
        w.cycle - t
    );
    // the IOTLB entry of the read has no W either: the write walks again
    // (through the paging-structure cache: the PTE is read, the PASID-table
    // entry is not)
    let pte_reads = |s: &Sim| {
        s.iommu_log
            .iter()
            .filter(|a| a.addr == pte && !a.write && !a.cas)
            .count()
    };
    assert_eq!(
        pte_reads(&s),
        2,
        "a write Translation Request misses an R-only entry"
    );
    assert_eq!(s.read64(pte) & (A | D), A | D, "D set by the second walk");
    let cas = s.cas_log();
    assert_eq!(cas.len(), 2, "{cas:?}");
    assert_eq!(cas[1].cmp & (A | D), A);
    assert!(cas[1].cas_won());
    // the ATC now holds W: the next write is a hit, no walk, no link trip
    s.set_probe(0, PASID, va);
    s.step();
    assert!(s.probe(0)[1].expect("ATC entry").w);
    let t = s.cycle();
    let w = s.access_wait(3, true, PASID, va + 0x18, 1, MAX);
    assert_eq!(w.status, 0);
    assert!(w.cycle - t < u64::from(lat), "ATC hit: {}", w.cycle - t);
    assert_eq!(pte_reads(&s), 2);
    assert_eq!(
        walks(&s),
        1,
        "the second walk hit the paging-structure cache"
    );
}

#[test]
fn a_read_after_a_write_hits_the_iotlb_without_w() {
    let mut s = Sim::new(2, 3);
    let va = 0x1400_0000;
    let pa = 0x5400_0000;
    s.map_flags(PASID, va, pa, 0, P | RW | US);
    let w = s.access_wait(1, true, PASID, va, 1, MAX);
    assert_eq!(w.status, 0);
    s.set_probe(0, PASID, va);
    s.step();
    assert!(s.probe(0)[0].expect("IOTLB").w, "the write walk cached W");
    // drop the ATC only; the read is served from the IOTLB without W
    s.submit_cmds(&[
        shootdown::rtl::cmd_ats_inval(PASID, va, 4096),
        shootdown::rtl::cmd_iofence_c(None, 0),
    ]);
    s.wait_cq_empty(MAX);
    let r = s.read_wait(2, PASID, va, MAX);
    assert_eq!(r.status, 0);
    assert_eq!(walks(&s), 1, "IOTLB hit");
    s.step();
    let atc = s.probe(0)[1].expect("ATC entry");
    assert!(atc.r && !atc.w, "NW=1 completion has no W: {atc:?}");
}

#[test]
fn a_lost_cas_restarts_the_walk_and_uses_the_new_pte() {
    let mut s = Sim::new(2, 3);
    let va = 0x1500_0000;
    let (old_pa, new_pa) = (0x5500_0000, 0x5600_0000);
    let pte = s.map_flags(PASID, va, old_pa, 0, P | RW | US);
    s.write64(old_pa, 0x01d);
    s.write64(new_pa, 0x2e3);
    // the CPU remaps the page between the walker's read and its CAS
    let remapped = new_pa | P | RW | US;
    s.before_cas.push_back((pte, remapped));
    let r = s.read_wait(1, PASID, va, MAX);
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(r.pa, new_pa, "the restarted walk read the new PTE");
    assert_eq!(r.rdata, 0x2e3);
    let cas = s.cas_log();
    assert_eq!(cas.len(), 2, "{cas:?}");
    assert!(!cas[0].cas_won(), "the first CAS lost");
    assert_eq!(cas[0].old, remapped);
    assert_eq!(s.read64(old_pa), 0x01d);
    assert!(cas[1].cas_won());
    assert_eq!(cas[1].cmp, remapped);
    assert_eq!(walks(&s), 2, "the walk restarted from the PASID table");
    assert_eq!(s.read64(pte), remapped | A, "A set on the new PTE");
    s.set_probe(0, PASID, va);
    s.step();
    assert_eq!(s.probe(0)[0].map(|e| e.ppn), Some(new_pa >> 12), "IOTLB");
}

#[test]
fn a_lost_cas_on_a_pte_made_non_present_gives_a_fault() {
    let mut s = Sim::new(2, 3);
    let va = 0x1600_0000;
    let pa = 0x5700_0000;
    let pte = s.map_flags(PASID, va, pa, 0, P | RW | US);
    s.before_cas.push_back((pte, pa | RW | US)); // P cleared
    let r = s.read_wait(1, PASID, va, MAX);
    assert_eq!(r.status, 1, "{r:?}");
    assert!(s.dev_log.is_empty());
    assert_eq!(s.cas_log().len(), 1, "no CAS on a non-present entry");
    assert_eq!(s.read64(pte), pa | RW | US, "the CPU's value stays");
}

#[test]
fn a_2m_leaf_gets_a_and_d_on_the_pde() {
    let mut s = Sim::new(2, 3);
    let va = 0x40_0000_0000 + 0x20_0000;
    let pa = 0x2_0000_0000;
    let pde = s.map_flags(PASID, va, pa, 1, P | RW | US | PS);
    let r = s.read_wait(1, PASID, va + 0x1_2340, MAX);
    assert_eq!((r.status, r.pa), (0, pa + 0x1_2340), "{r:?}");
    assert_eq!(s.read64(pde) & (A | D | PS), A | PS, "read: A on the PDE");
    let w = s.access_wait(2, true, PASID, va + 0x5_0000, 3, MAX);
    assert_eq!(w.status, 0, "{w:?}");
    assert_eq!(
        s.read64(pde) & (A | D | PS),
        A | D | PS,
        "write: D on the PDE"
    );
    assert!(s.cas_log().iter().all(|c| c.addr == pde && c.cas_won()));
    assert_eq!(s.cas_log().len(), 2);
}
