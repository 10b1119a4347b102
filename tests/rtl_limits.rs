//! Cache sizes at run time: `cfg_atc_entries_i` (ATC entries in use),
//! `cfg_iotlb_ways_i` (IOTLB ways in use per set; the entries in use of the
//! fully-associative variant) and `cfg_iotlb_sets_i` (IOTLB sets in use),
//! docs/socket.md. Fills take only the entries in use; 0 means all of them,
//! today's behaviour. Observed through the probes. And the ITags in use,
//! `cfg_ats_itags_i` (the device's Invalidate Queue Depth as software
//! programmed it), observed through the queue head.
//!
//! The IOTLB ways tests use pages whose VPNs are 16 apart: one set of the
//! bundled 16-set IOTLB (4 KiB set index VPN[3:0]). The assertions hold for
//! any design that honours the limit: with 1 way (1 entry in a fully
//! associative IOTLB) only the last page filled stays. The IOTLB sets tests
//! use consecutive pages (different sets of the whole bundled IOTLB); with
//! s sets in use the IOTLB holds s * IotlbWays of them (the
//! fully-associative variant: s * IotlbWays entries in use, with the ways at
//! all).

mod common;
use common::*;
use shootdown::rtl::{cmd_ats_inval, cmd_iofence_c, cmd_iotinval_range, cmd_iotinval_vma, Inject};

const PASID: u32 = 6;
const MAX: u64 = 3_000;
/// `IotlbWays` of `rtl/shootdown_top.sv`: the ways per set the build has.
const IOTLB_WAYS: usize = 4;

/// `n` pages, 16 pages apart (one set of the bundled IOTLB), each mapped to
/// its own frame.
fn pages(s: &mut Sim, base: u64, n: u64) -> Vec<u64> {
    let vas: Vec<u64> = (0..n).map(|i| base + i * 16 * 0x1000).collect();
    for (i, va) in vas.iter().enumerate() {
        s.map_4k(PASID, *va, 0x60_0000_0000 + (i as u64) * 0x1000, true);
    }
    vas
}

/// Read each page through the device, in order.
fn read_all(s: &mut Sim, vas: &[u64], id0: u8) {
    for (i, va) in vas.iter().enumerate() {
        let r = s.read_wait(id0 + i as u8, PASID, *va, MAX);
        assert_eq!(r.status, 0, "read of {va:#x}");
    }
}

/// Which of `vas` (IOTLB, ATC) hold, probed one after the other.
fn held(s: &mut Sim, vas: &[u64]) -> (Vec<bool>, Vec<bool>) {
    let mut iotlb = Vec::new();
    let mut atc = Vec::new();
    for va in vas {
        s.set_probe(0, PASID, *va);
        s.step();
        let [i, a, _] = s.probe(0);
        iotlb.push(i.is_some());
        atc.push(a.is_some());
    }
    (iotlb, atc)
}

fn with_limits(atc_entries: u8, iotlb_ways: u8) -> Sim {
    Sim::with_cfg(2, 3, |p| {
        p.cfg_atc_entries = atc_entries;
        p.cfg_iotlb_ways = iotlb_ways;
    })
}

// ---------------------------------------------------------------------------
// ATC
// ---------------------------------------------------------------------------

#[test]
fn atc_with_one_entry_keeps_only_the_last_page() {
    let mut s = with_limits(1, 0);
    let vas = pages(&mut s, 0x4000_0000, 2);
    read_all(&mut s, &vas, 1);
    let (_, atc) = held(&mut s, &vas);
    assert_eq!(atc, [false, true], "the second page replaced the first");
}

#[test]
fn atc_with_all_entries_keeps_both_pages() {
    for n in [0, 8, 200] {
        let mut s = with_limits(n, 0);
        let vas = pages(&mut s, 0x4000_0000, 2);
        read_all(&mut s, &vas, 1);
        let (_, atc) = held(&mut s, &vas);
        assert_eq!(atc, [true, true], "atc_entries {n}");
    }
}

#[test]
fn atc_with_two_entries_replaces_round_robin_over_those() {
    let mut s = with_limits(2, 0);
    let vas = pages(&mut s, 0x4000_0000, 5);
    read_all(&mut s, &vas[..2], 1);
    for k in 2..5 {
        read_all(&mut s, &vas[k..=k], k as u8 + 1);
        let (_, atc) = held(&mut s, &vas);
        let want: Vec<bool> = (0..5).map(|i| i + 1 == k || i == k).collect();
        assert_eq!(atc, want, "after page {k}: the last two pages");
    }
}

#[test]
fn atc_setter_limits_entries_after_reset() {
    let mut s = Sim::new(2, 3);
    s.set_atc_entries(1);
    let vas = pages(&mut s, 0x4000_0000, 3);
    read_all(&mut s, &vas, 1);
    let (_, atc) = held(&mut s, &vas);
    assert_eq!(atc, [false, false, true]);
}

// ---------------------------------------------------------------------------
// IOTLB
// ---------------------------------------------------------------------------

#[test]
fn iotlb_with_one_way_keeps_only_the_last_page_of_a_set() {
    let mut s = with_limits(0, 1);
    let vas = pages(&mut s, 0x7000_0000, 3);
    read_all(&mut s, &vas, 1);
    let (iotlb, atc) = held(&mut s, &vas);
    assert_eq!(
        iotlb,
        [false, false, true],
        "each fill evicts the one before"
    );
    assert_eq!(atc, [true, true, true], "the ATC is not limited");

    // the evicted page walks again, the kept one hits
    s.submit_cmds(&[cmd_ats_inval(PASID, 0, u64::MAX), cmd_iofence_c(None, 0)]);
    s.wait_cq_empty(MAX);
    let walks = s.walk_reads();
    s.read_wait(10, PASID, vas[2], MAX);
    assert_eq!(s.walk_reads(), walks, "the last page hits");
    s.read_wait(11, PASID, vas[0], MAX);
    assert!(s.walk_reads() > walks, "the first page walks again");
}

#[test]
fn iotlb_with_all_ways_keeps_pages_of_one_set() {
    for n in [0, 4, 255] {
        let mut s = with_limits(0, n);
        let vas = pages(&mut s, 0x7000_0000, 3);
        read_all(&mut s, &vas, 1);
        let (iotlb, _) = held(&mut s, &vas);
        assert_eq!(iotlb, [true, true, true], "iotlb_ways {n}");
    }
}

#[test]
fn iotlb_setter_limits_ways_after_reset() {
    let mut s = Sim::new(2, 3);
    s.set_iotlb_ways(1);
    let vas = pages(&mut s, 0x7000_0000, 2);
    read_all(&mut s, &vas, 1);
    let (iotlb, _) = held(&mut s, &vas);
    assert_eq!(iotlb, [false, true]);
}

#[test]
fn iotlb_with_two_ways_replaces_round_robin_within_the_set_only() {
    if skip_on_variant(
        "iotlb_with_two_ways_replaces_round_robin_within_the_set_only",
        "the bundled IOTLB's set indexing and per-set round robin",
    ) {
        return;
    }
    let mut s = with_limits(0, 2);
    let set: Vec<u64> = pages(&mut s, 0x7000_0000, 4);
    // a page of another set (VPN + 1)
    let other = 0x7000_0000 + 0x1000;
    s.map_4k(PASID, other, 0x61_0000_0000, true);
    read_all(&mut s, &set[..2], 1);
    read_all(&mut s, &[other], 3);
    read_all(&mut s, &set[2..], 4);
    let mut all = set.clone();
    all.push(other);
    let (iotlb, _) = held(&mut s, &all);
    // ways 0, 1: pages 0, 1; page 2 takes way 0, page 3 way 1
    assert_eq!(iotlb, [false, false, true, true, true]);
}

#[test]
fn fa_iotlb_ways_limits_the_entries_in_use() {
    // the fully-associative variant has no sets: cfg_iotlb_ways_i is the
    // number of its entries in use, so pages of different sets compete too
    let variant = rtl_overlay().is_some_and(|(dir, files)| {
        dir.ends_with("rtl-variants/fa-iotlb") && files.split(' ').any(|f| f == "iotlb.sv")
    });
    if !variant {
        eprintln!("skipped: this build's IOTLB is not rtl-variants/fa-iotlb/iotlb.sv");
        return;
    }
    let mut s = with_limits(0, 2);
    // consecutive pages: four different sets of the bundled IOTLB
    let vas: Vec<u64> = (0..4).map(|i| 0x7100_0000 + i * 0x1000).collect();
    for (i, va) in vas.iter().enumerate() {
        s.map_4k(PASID, *va, 0x62_0000_0000 + (i as u64) * 0x1000, true);
    }
    read_all(&mut s, &vas[..3], 1);
    let (iotlb, _) = held(&mut s, &vas[..3]);
    // entries 0, 1: pages 0, 1; page 2 takes entry 0
    assert_eq!(iotlb, [false, true, true]);
    read_all(&mut s, &vas[3..], 4);
    let (iotlb, _) = held(&mut s, &vas);
    assert_eq!(iotlb, [false, false, true, true], "page 3 takes entry 1");
}

// ---------------------------------------------------------------------------
// IOTLB sets
// ---------------------------------------------------------------------------

/// `n` consecutive pages from `base` (consecutive VPNs: different sets of
/// the whole bundled IOTLB), each mapped to its own frame.
fn consecutive_pages(s: &mut Sim, base: u64, n: u64) -> Vec<u64> {
    let vas: Vec<u64> = (0..n).map(|i| base + i * 0x1000).collect();
    for (i, va) in vas.iter().enumerate() {
        s.map_4k(PASID, *va, 0x63_0000_0000 + (i as u64) * 0x1000, true);
    }
    vas
}

fn with_sets(sets: u8) -> Sim {
    Sim::with_cfg(2, 3, |p| p.cfg_iotlb_sets = sets)
}

/// Read `n` consecutive pages once each; how many the IOTLB holds, and
/// whether it holds the last one.
fn iotlb_after_consecutive_reads(mut s: Sim, n: u64) -> (usize, bool) {
    let vas = consecutive_pages(&mut s, 0x7200_0000, n);
    read_all(&mut s, &vas, 1);
    let (iotlb, _) = held(&mut s, &vas);
    (iotlb.iter().filter(|h| **h).count(), iotlb[iotlb.len() - 1])
}

#[test]
fn iotlb_with_one_set_keeps_only_one_set_of_pages() {
    // six pages of six different sets compete in one set of IOTLB_WAYS ways
    let (n, last) = iotlb_after_consecutive_reads(with_sets(1), 6);
    assert_eq!(n, IOTLB_WAYS, "one set: IotlbWays of the six pages stay");
    assert!(last, "the page filled last stays");
}

#[test]
fn iotlb_with_all_sets_keeps_pages_of_different_sets() {
    for sets in [0, 16, 255] {
        let (n, _) = iotlb_after_consecutive_reads(with_sets(sets), 6);
        assert_eq!(n, 6, "iotlb_sets {sets}");
    }
}

#[test]
fn iotlb_sets_round_down_to_a_power_of_two() {
    // ten pages, five per set of two (sets 2 and 3 both mean two sets):
    // two sets of IOTLB_WAYS ways hold eight
    for sets in [2, 3] {
        let (n, last) = iotlb_after_consecutive_reads(with_sets(sets), 10);
        assert_eq!(n, 2 * IOTLB_WAYS, "iotlb_sets {sets}");
        assert!(last, "iotlb_sets {sets}: the page filled last stays");
    }
}

#[test]
fn iotlb_sets_setter_limits_sets_after_reset() {
    let mut s = Sim::new(2, 3);
    s.set_iotlb_sets(1);
    let (n, _) = iotlb_after_consecutive_reads(s, 6);
    assert_eq!(n, IOTLB_WAYS);
}

#[test]
fn iotlb_with_one_set_replaces_round_robin_over_its_ways() {
    if skip_on_variant(
        "iotlb_with_one_set_replaces_round_robin_over_its_ways",
        "the bundled IOTLB's set indexing and per-set round robin",
    ) {
        return;
    }
    // ways 0..3: pages 0..3; page 4 takes way 0, page 5 way 1
    let mut s = with_sets(1);
    let vas = consecutive_pages(&mut s, 0x7200_0000, 6);
    read_all(&mut s, &vas, 1);
    let (iotlb, _) = held(&mut s, &vas);
    assert_eq!(iotlb, [false, false, true, true, true, true]);
}

/// Each IOTINVAL.VMA form with `sets` sets in use: what stays of a 4 KiB
/// page A, the next page B, a 2 MiB page H (probed at a page inside it) and
/// a page O of another PASID. The cycle after each, the IOTLB's
/// InvalComplete_A / InvalOnlyNamed_A check it too (Sim panics on them).
#[test]
fn every_invalidation_form_works_with_fewer_sets() {
    const OTHER: u32 = 7;
    let a = 0x7300_0000;
    let b = a + 0x1000;
    let h = 0x4000_0000;
    let h_page = h + 0x5000;
    let o = 0x7300_2000;
    let forms: [(&str, [u64; 2], [bool; 4]); 6] = [
        (
            "page A",
            cmd_iotinval_vma(Some(PASID), Some(a)),
            [false, true, true, true],
        ),
        (
            "page B",
            cmd_iotinval_vma(Some(PASID), Some(b)),
            [true, false, true, true],
        ),
        (
            "a page of H",
            cmd_iotinval_vma(Some(PASID), Some(h_page)),
            [true, true, false, true],
        ),
        (
            "range A..B",
            cmd_iotinval_range(PASID, a, 0x2000),
            [false, false, true, true],
        ),
        (
            "the PASID",
            cmd_iotinval_vma(Some(PASID), None),
            [false, false, false, true],
        ),
        (
            "everything",
            cmd_iotinval_vma(None, None),
            [false, false, false, false],
        ),
    ];
    for sets in [1u8, 2] {
        for (what, cmd, want) in forms {
            let mut s = with_sets(sets);
            s.map_4k(PASID, a, 0x64_0000_0000, true);
            s.map_4k(PASID, b, 0x64_0000_1000, true);
            s.map_2m(PASID, h, 0x64_0020_0000, true);
            s.map_4k(OTHER, o, 0x64_0000_2000, true);
            for (i, va) in [a, b, h_page].iter().enumerate() {
                assert_eq!(s.read_wait(1 + i as u8, PASID, *va, MAX).status, 0);
            }
            assert_eq!(s.read_wait(4, OTHER, o, MAX).status, 0);
            let probe = |s: &mut Sim| -> [bool; 4] {
                let mut r = [false; 4];
                for (i, (pasid, va)) in [(PASID, a), (PASID, b), (PASID, h_page), (OTHER, o)]
                    .into_iter()
                    .enumerate()
                {
                    s.set_probe(0, pasid, va);
                    s.step();
                    r[i] = s.probe(0)[0].is_some();
                }
                r
            };
            assert_eq!(probe(&mut s), [true; 4], "sets {sets}: all four cached");
            s.submit_cmds(&[cmd]);
            s.wait_cq_empty(MAX);
            assert_eq!(probe(&mut s), want, "sets {sets}: IOTINVAL.VMA of {what}");
        }
    }
}

#[test]
fn fa_iotlb_sets_scale_the_entries_in_use() {
    // the fully-associative variant: entries in use = sets_in_use *
    // (the entries cfg_ways_i gives) / Sets, at least one
    // (rtl-variants/README.md)
    let variant = rtl_overlay().is_some_and(|(dir, files)| {
        dir.ends_with("rtl-variants/fa-iotlb") && files.split(' ').any(|f| f == "iotlb.sv")
    });
    if !variant {
        eprintln!("skipped: this build's IOTLB is not rtl-variants/fa-iotlb/iotlb.sv");
        return;
    }
    // (sets, ways) -> entries: (1, all) 4, (8, 8) 4, (2, 4) 1, (1, 2) 1
    for (sets, ways, entries) in [(1u8, 0u8, 4usize), (8, 8, 4), (2, 4, 1), (1, 2, 1)] {
        let s = Sim::with_cfg(2, 3, |p| {
            p.cfg_iotlb_sets = sets;
            p.cfg_iotlb_ways = ways;
        });
        let (n, last) = iotlb_after_consecutive_reads(s, 6);
        assert_eq!(n, entries, "iotlb_sets {sets}, iotlb_ways {ways}");
        assert!(last);
    }
}

// ---------------------------------------------------------------------------
// ITags in use (the device's Invalidate Queue Depth)
// ---------------------------------------------------------------------------

/// A device that never sends Invalidate Completions and no timeout: every
/// ITag allocated stays busy. Submit three ATS.INVALs; where the head stops.
fn head_after_three_invals(itags: u8) -> u32 {
    let mut s = Sim::with_cfg(1, 20, |p| {
        p.cfg_inject = Inject::DROP_INV_CPL;
        p.cfg_ats_itags = itags;
    });
    let cmds: Vec<[u64; 2]> = (0..3u64).map(|i| cmd_ats_inval(1, i << 12, 4096)).collect();
    s.submit_cmds(&cmds);
    s.run(2_000);
    assert_eq!(s.out.cq_err, 0, "a stall, not an error");
    s.out.cq_head
}

#[test]
fn ats_inval_stalls_when_the_itags_in_use_are_busy() {
    assert_eq!(
        head_after_three_invals(1),
        1,
        "the second waits for an ITag"
    );
    assert_eq!(head_after_three_invals(2), 2, "the third waits for an ITag");
    for itags in [0, 8, 255] {
        assert_eq!(head_after_three_invals(itags), 3, "ats_itags {itags}");
    }
}

#[test]
fn ats_itags_setter_limits_itags_after_reset() {
    let mut s = Sim::with_inject(1, 20, Inject::DROP_INV_CPL);
    s.set_ats_itags(1);
    s.submit_cmds(&[cmd_ats_inval(1, 0, 4096), cmd_ats_inval(1, 0x1000, 4096)]);
    s.run(2_000);
    assert_eq!(s.out.cq_head, 1);
}

#[test]
fn one_itag_serialises_the_invalidations() {
    // A device that answers: with one ITag each ATS.INVAL is sent only
    // after the Invalidate Completion of the one before (a round trip of
    // two link latencies), and all complete.
    let lat: u16 = 100;
    let sent = |itags: u8| -> Vec<u64> {
        let mut s = Sim::with_cfg(1, lat, |p| p.cfg_ats_itags = itags);
        let cmds: Vec<[u64; 2]> = (0..3u64)
            .map(|i| cmd_ats_inval(1, i << 12, 4096))
            .chain([cmd_iofence_c(Some(FENCE_ADDR), 5)])
            .collect();
        s.submit_cmds(&cmds);
        let mut at = Vec::new();
        for head in 1..=3 {
            s.run_until("ATS.INVAL sent", MAX, |s| s.out.cq_head == head);
            at.push(s.cycle());
        }
        s.wait_cq_empty(MAX);
        assert_eq!(
            s.read64(FENCE_ADDR),
            5,
            "ats_itags {itags}: the fence completed"
        );
        at
    };
    let one = sent(1);
    for w in one.windows(2) {
        assert!(
            w[1] - w[0] >= 2 * u64::from(lat),
            "one ITag: sent at {one:?}, a round trip apart"
        );
    }
    let all = sent(0);
    assert!(
        all[2] - all[0] < u64::from(lat),
        "every ITag: sent at {all:?}, back to back"
    );
}
