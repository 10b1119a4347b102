//! The IOTLB: filled by walks, hit by later Translation Requests (no walk
//! traffic), and emptied by IOTINVAL.VMA by address, by PASID, globally,
//! by an address inside a 2 MiB or 1 GiB entry and by a range (S=1).
//! Observed through the probes and through the walker's memory reads.

mod common;
use common::*;
use shootdown::rtl::{
    cmd_ats_inval, cmd_iofence_c, cmd_iotinval_range, cmd_iotinval_vma, iotinval_range, Inject,
    ProbeEntry,
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
        is_1g: false,
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

// ---------------------------------------------------------------------------
// 1 GiB entries
// ---------------------------------------------------------------------------

/// A 1 GiB page (1 GiB aligned VA and PA) of [`PASID`].
const VA_1G: u64 = 0x80_4000_0000;
const PA_1G: u64 = 0x7_c000_0000;

/// Map [`VA_1G`] read-only, read a page of its first 2 MiB and check the
/// IOTLB holds one 1 GiB entry: probes 0 and 1 on a page of its first 2 MiB
/// and on one in its last 2 MiB (at offsets `0x5000` and `0x3fe1_2000`).
fn cache_1g(s: &mut Sim) {
    s.map_1g(PASID, VA_1G, PA_1G, false);
    let r = s.read_wait(1, PASID, VA_1G + 0x5008, MAX);
    assert_eq!((r.status, r.pa), (0, PA_1G + 0x5008), "{r:?}");
    s.set_probe(0, PASID, VA_1G + 0x5000);
    s.set_probe(1, PASID, VA_1G + 0x3fe1_2000);
    s.step();
    for (slot, off) in [(0, 0x5000), (1, 0x3fe1_2000)] {
        let e = s.probe(slot)[0].expect("1 GiB entry cached");
        assert_eq!(
            e,
            ProbeEntry {
                ppn: (PA_1G + off) >> 12,
                w: false,
                r: true,
                is_2m: false,
                is_1g: true,
            },
            "the probe reports the 1 GiB entry and this 4 KiB page's PPN"
        );
    }
}

#[test]
fn a_1g_walk_fills_one_entry_for_the_whole_page() {
    let mut s = Sim::new(2, 3);
    cache_1g(&mut s);
    // PASID table entry + PML4 + PDPT
    assert_eq!(s.walk_reads(), 3);
    // a page 700 MiB further on hits the same entry: no walk
    flush_atc(&mut s, PASID);
    let r = s.read_wait(2, PASID, VA_1G + 0x2bcd_e010, MAX);
    assert_eq!((r.status, r.pa), (0, PA_1G + 0x2bcd_e010), "{r:?}");
    assert_eq!(s.walk_reads(), 3, "an IOTLB hit needs no walk");
    // the neighbouring 1 GiB pages are not covered
    s.set_probe(2, PASID, VA_1G - 0x1000);
    s.set_probe(3, PASID, VA_1G + 0x4000_0000);
    s.step();
    assert_eq!((s.probe(2)[0], s.probe(3)[0]), (None, None));
}

#[test]
fn iotinval_of_a_page_in_the_last_2m_of_a_1g_entry_drops_it() {
    let mut s = Sim::new(2, 3);
    cache_1g(&mut s);

    // ranges in the 1 GiB regions around it keep it: the page just above,
    // the whole 1 GiB just below, and another PASID's page inside it
    s.submit_cmds(&[
        cmd_iotinval_vma(Some(PASID), Some(VA_1G + 0x4000_0000)),
        cmd_iotinval_range(PASID, VA_1G - 0x4000_0000, 0x4000_0000),
        cmd_iotinval_vma(Some(PASID + 1), Some(VA_1G + 0x3fe0_7000)),
    ]);
    s.wait_cq_empty(MAX);
    s.step();
    assert!(
        s.probe(0)[0].is_some() && s.probe(1)[0].is_some(),
        "ranges outside the 1 GiB page keep its entry"
    );

    // one 4 KiB page in its last 2 MiB (not the probed pages) drops it
    s.submit_cmds(&[cmd_iotinval_vma(Some(PASID), Some(VA_1G + 0x3fe0_7000))]);
    s.wait_cq_empty(MAX);
    s.step();
    assert_eq!((s.probe(0)[0], s.probe(1)[0]), (None, None));

    // and the next request walks again
    flush_atc(&mut s, PASID);
    let walks = s.walk_reads();
    s.read_wait(2, PASID, VA_1G + 0x5000, MAX);
    assert_eq!(s.walk_reads(), walks + 3);
}

#[test]
fn a_2m_range_inside_a_1g_entry_drops_it() {
    let mut s = Sim::new(2, 3);
    cache_1g(&mut s);
    s.submit_cmds(&[cmd_iotinval_range(PASID, VA_1G + 0x2000_0000, 0x20_0000)]);
    s.wait_cq_empty(MAX);
    s.step();
    assert_eq!((s.probe(0)[0], s.probe(1)[0]), (None, None));
}

/// With `inv-misses-2m` a one-page IOTINVAL.VMA leaves a 1 GiB entry as it
/// leaves a 2 MiB one (the assertions off, so the run goes on past
/// `InvalComplete_A`); with the assertions on that assertion stops it.
#[test]
fn inv_misses_2m_leaves_a_1g_entry_after_a_one_page_invalidation() {
    for checks in [false, true] {
        let mut s = Sim::with_inject(2, 3, Inject::INV_MISSES_2M);
        if checks {
            s.record_assertions();
        } else {
            s.set_assertions(false);
        }
        cache_1g(&mut s);
        s.submit_cmds(&[cmd_iotinval_vma(Some(PASID), Some(VA_1G + 0x3fe0_7000))]);
        s.wait_cq_empty(MAX);
        s.step();
        if checks {
            let f = s.fired().expect("an assertion fired");
            assert!(f.names("u_iotlb.InvalComplete_A"), "{f:?}");
        } else {
            assert!(
                s.probe(0)[0].is_some_and(|e| e.is_1g),
                "the 1 GiB entry survives the one-page invalidation"
            );
            // a range of two pages is not what the bug skips
            s.submit_cmds(&[cmd_iotinval_range(PASID, VA_1G + 0x3fe0_6000, 0x2000)]);
            s.wait_cq_empty(MAX);
            s.step();
            assert_eq!(s.probe(0)[0], None);
        }
    }
}

/// A 4 KiB, a 2 MiB and a 1 GiB entry cover some of the same pages (the
/// CPU turned the region into a 1 GiB page without invalidating): the
/// lookup answers from the smallest page that holds the address.
#[test]
fn the_smallest_page_that_hits_wins() {
    let mut s = Sim::new(2, 3);
    let (va_4k, pa_4k) = (VA_1G + 0x1000, 0x9_0000_1000);
    let (va_2m, pa_2m) = (VA_1G + 0x40_0000, 0x9_0040_0000);
    s.map_4k(PASID, va_4k, pa_4k, false);
    s.map_2m(PASID, va_2m, pa_2m, false);
    s.read_wait(1, PASID, va_4k, MAX);
    s.read_wait(2, PASID, va_2m, MAX);
    // the PDPT entry becomes a 1 GiB leaf; a page outside the two entries
    // walks and fills a 1 GiB entry
    s.map_1g(PASID, VA_1G, PA_1G, false);
    let r = s.read_wait(3, PASID, VA_1G + 0x1000_0000, MAX);
    assert_eq!(r.pa, PA_1G + 0x1000_0000, "{r:?}");
    let probes = [
        (va_4k, Some((pa_4k, false, false))),
        (va_4k + 0x1000, Some((PA_1G + 0x2000, false, true))),
        (va_2m + 0x3000, Some((pa_2m + 0x3000, true, false))),
        (
            VA_1G + 0x1000_0000,
            Some((PA_1G + 0x1000_0000, false, true)),
        ),
    ];
    for (slot, (va, _)) in probes.iter().enumerate() {
        s.set_probe(slot, PASID, *va);
    }
    s.step();
    for (slot, (va, want)) in probes.iter().enumerate() {
        let got = s.probe(slot)[0].map(|e| (e.ppn << 12, e.is_2m, e.is_1g));
        assert_eq!(got, *want, "IOTLB at {va:#x}");
    }
    // the device's new requests are answered from the same entries
    flush_atc(&mut s, PASID);
    let walks = s.walk_reads();
    assert_eq!(s.read_wait(4, PASID, va_4k + 8, MAX).pa, pa_4k + 8);
    assert_eq!(
        s.read_wait(5, PASID, va_2m + 0x3008, MAX).pa,
        pa_2m + 0x3008
    );
    assert_eq!(
        s.read_wait(6, PASID, va_4k + 0x1008, MAX).pa,
        PA_1G + 0x2008
    );
    assert_eq!(s.walk_reads(), walks, "IOTLB hits");
}

/// An IOTINVAL.VMA during a walk that ends on a 1 GiB leaf, of a page in
/// another 2 MiB region of that 1 GiB page: the result is not cached.
#[test]
fn an_iotinval_in_the_1g_page_during_its_walk_keeps_the_result_out_of_the_iotlb() {
    for (inval, cached) in [(VA_1G + 0x3000_0000, false), (VA_1G + 0x4000_0000, true)] {
        let mut s = Sim::new(30, 3);
        s.map_1g(PASID, VA_1G, PA_1G, true);
        s.set_probe(0, PASID, VA_1G);
        s.submit(1, false, PASID, VA_1G, 0);
        let root = PASID_TABLE + u64::from(PASID) * 8;
        s.run_until("walk start", MAX, |s| {
            s.iommu_log.iter().any(|a| a.addr == root)
        });
        s.submit_cmds(&[cmd_iotinval_vma(Some(PASID), Some(inval))]);
        let r = s.wait_response(1, MAX);
        assert_eq!((r.status, r.pa), (0, PA_1G), "{r:?}");
        let fetched = s
            .iommu_log
            .iter()
            .filter(|a| a.addr >= CQ_BASE && a.addr < CQ_BASE + 0x1000)
            .count();
        assert_eq!(fetched, 2, "the command was fetched during the walk");
        s.step();
        assert_eq!(
            s.probe(0)[0].is_some(),
            cached,
            "invalidation of {inval:#x} during the walk"
        );
    }
}
