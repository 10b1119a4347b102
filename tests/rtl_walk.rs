//! The page-table walker: 4 KiB, 2 MiB and 1 GiB mappings translate to the
//! right PA; a non-present PTE, an invalid PASID and a write to a read-only
//! page give a fault response without a memory access.

mod common;
use common::*;

const PASID: u32 = 5;
const MAX: u64 = 2_000;

#[test]
fn walk_4k_mapping_gives_the_mapped_pa() {
    let mut s = Sim::new(3, 4);
    let va = 0x0000_7f12_3456_7000;
    let pa = 0x0000_0000_8765_4000;
    s.map_4k(PASID, va, pa, true);
    s.write64(pa + 0x38, 0x1122_3344_5566_7788);
    let r = s.read_wait(1, PASID, va + 0x38, MAX);
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(r.pa, pa + 0x38);
    assert_eq!(r.rdata, 0x1122_3344_5566_7788);
    // PASID table entry + 4 levels
    assert_eq!(s.walk_reads(), 5);
    assert_eq!(s.dev_log.len(), 1);
    assert_eq!(s.dev_log[0].addr, pa + 0x38);
    assert_eq!(s.dev_log[0].id, 1);
}

#[test]
fn walk_2m_mapping_gives_the_mapped_pa() {
    let mut s = Sim::new(3, 4);
    let va = 0x0000_0040_0020_0000; // 2 MiB aligned
    let pa = 0x0000_0001_4060_0000;
    s.map_2m(PASID, va, pa, true);
    let off = 0x1_2345 & !7;
    s.write64(pa + off, 42);
    let r = s.read_wait(2, PASID, va + off, MAX);
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(r.pa, pa + off);
    assert_eq!(r.rdata, 42);
    // PASID table entry + PML4 + PDPT + PD
    assert_eq!(s.walk_reads(), 4);
}

#[test]
fn walk_1g_mapping_gives_the_mapped_pa_and_sets_a_and_d() {
    let mut s = Sim::new(3, 4);
    let va = 0x0000_0040_4000_0000; // 1 GiB aligned
    let pa = 0x0000_0008_c000_0000; // 1 GiB aligned
    let leaf = P | RW | US | PS;
    let pdpte = s.map_flags(PASID, va, pa, 2, leaf);

    // a read in the first 2 MiB
    let first = 0x1_2348;
    s.write64(pa + first, 0x1111);
    let r = s.read_wait(1, PASID, va + first, MAX);
    assert_eq!((r.status, r.pa, r.rdata), (0, pa + first, 0x1111), "{r:?}");
    // PASID table entry + PML4 + PDPT: the PDPT entry is the leaf
    assert_eq!(s.walk_reads(), 3);
    let e = s.read64(pdpte);
    assert_eq!(e & (A | D), A, "a read sets A, not D: {e:#x}");
    let cas = s.cas_log();
    assert_eq!(cas.len(), 1, "{cas:?}");
    assert!(cas[0].cas_won() && cas[0].addr == pdpte, "{cas:?}");
    assert_eq!((cas[0].cmp, cas[0].data), (pa | leaf, pa | leaf | A));

    // a write in the last 2 MiB: the cached translation has no W (a read
    // asked with No-Write), so the device asks again with NW=0 and the walk
    // sets D; it starts from the PASID table again (nothing of the 1 GiB
    // walk is in the paging-structure cache)
    let last = 0x3fff_fff8;
    let w = s.access_wait(2, true, PASID, va + last, 0x2222, MAX);
    assert_eq!((w.status, w.pa), (0, pa + last), "{w:?}");
    assert_eq!(s.read64(pa + last), 0x2222);
    assert_eq!(s.walk_reads(), 6);
    let e = s.read64(pdpte);
    assert_eq!(e & (A | D), A | D, "a write sets D: {e:#x}");
    let cas = s.cas_log();
    assert_eq!(cas.len(), 2, "{cas:?}");
    assert!(cas[1].cas_won() && cas[1].addr == pdpte, "{cas:?}");
    assert_eq!(cas[1].data, pa | leaf | A | D);
    assert_eq!(s.dev_log.len(), 2);
    assert_eq!(s.dev_log[1].addr, pa + last);
}

#[test]
fn write_through_translation_updates_memory() {
    let mut s = Sim::new(3, 4);
    let va = 0x1000_0000;
    let pa = 0x5000_0000;
    s.map_4k(PASID, va, pa, true);
    let r = s.access_wait(3, true, PASID, va + 8, 0xabcd, MAX);
    assert_eq!(r.status, 0);
    assert_eq!(s.read64(pa + 8), 0xabcd);
}

#[test]
fn non_present_pte_gives_a_fault_and_no_access() {
    let mut s = Sim::new(3, 4);
    let va = 0x2000_0000;
    s.map_4k(PASID, va, 0x6000_0000, true);
    s.unmap_4k(PASID, va);
    let r = s.read_wait(4, PASID, va, MAX);
    assert_eq!(r.status, 1, "{r:?}");
    assert!(s.dev_log.is_empty());
    // a no-translation result is not cached: a second read walks again
    // (the PD entry's table pointer is in the paging-structure cache: only
    // the PTE is read)
    let before = s.walk_reads();
    let r = s.read_wait(5, PASID, va, MAX);
    assert_eq!(r.status, 1);
    assert_eq!(s.walk_reads(), before + 1);
}

#[test]
fn invalid_pasid_gives_a_fault() {
    let mut s = Sim::new(3, 4);
    let r = s.read_wait(6, 77, 0x1000, MAX);
    assert_eq!(r.status, 1);
    assert_eq!(s.walk_reads(), 1); // only the PASID table entry
    assert!(s.dev_log.is_empty());
}

#[test]
fn write_to_read_only_page_faults() {
    let mut s = Sim::new(3, 4);
    let va = 0x3000_0000;
    let pa = 0x7000_0000;
    s.map_4k(PASID, va, pa, false);
    s.write64(pa, 9);
    let w = s.access_wait(7, true, PASID, va, 1, MAX);
    assert_eq!(w.status, 1, "{w:?}");
    assert_eq!(s.read64(pa), 9);
    let r = s.read_wait(8, PASID, va, MAX);
    assert_eq!(r.status, 0);
    assert_eq!(r.rdata, 9);
}
