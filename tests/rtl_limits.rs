//! Cache sizes at run time: `cfg_atc_entries_i` (ATC entries in use) and
//! `cfg_iotlb_ways_i` (IOTLB ways in use per set; the entries in use of the
//! fully-associative variant), docs/socket.md. Fills take only the entries
//! in use; 0 means all of them, today's behaviour. Observed through the
//! probes.
//!
//! The IOTLB tests use pages whose VPNs are 16 apart: one set of the bundled
//! 16-set IOTLB (4 KiB set index VPN[3:0]). The assertions hold for any
//! design that honours the limit: with 1 way (1 entry in a fully
//! associative IOTLB) only the last page filled stays.

mod common;
use common::*;
use shootdown::rtl::{cmd_ats_inval, cmd_iofence_c};

const PASID: u32 = 6;
const MAX: u64 = 3_000;

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
