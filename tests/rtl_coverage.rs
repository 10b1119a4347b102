//! Functional coverage through the ports (docs/socket.md, "Coverage"): a
//! directed sequence hits the bins it drives and no others, each model
//! counts its own, and `cover_zero` clears them. On an RTL variant the bins of a replaced module
//! are not in the build: `hits` is None for them (the fully-associative
//! IOTLB has no cover points).

mod common;
use common::*;
use shootdown::coverage::{Coverage, BINS};
use shootdown::rtl::{
    cmd_ats_inval, cmd_iofence_c, cmd_iotinval_range, cmd_iotinval_vma, cover_points, CQ_ERR_CMD_TO,
};
use std::collections::BTreeMap;

const MAX: u64 = 20_000;
const PASID: u32 = 4;

fn coverage(s: &Sim) -> Coverage {
    Coverage::of_model(&s.model)
}

/// The bins hit, with their counts.
fn hit(c: &Coverage) -> BTreeMap<&'static str, u64> {
    BINS.iter()
        .filter_map(|b| Some((b.label, c.hits(b.label).filter(|&n| n > 0)?)))
        .collect()
}

/// Is `file` replaced by the RTL overlay of this build?
fn replaced(file: &str) -> bool {
    shootdown_model_sys::RTL_OVERLAY_FILES
        .split_whitespace()
        .any(|f| f == file)
}

/// `expected` with the bins of replaced modules left out (not in the build).
fn present(expected: &[(&'static str, u64)]) -> BTreeMap<&'static str, u64> {
    expected
        .iter()
        .filter(|(l, _)| !BINS.iter().any(|b| b.label == *l && replaced(b.file)))
        .copied()
        .collect()
}

#[test]
fn the_model_names_every_cover_point_of_the_build() {
    let points = cover_points();
    for b in BINS {
        let n = points.iter().filter(|p| p.name == b.label).count();
        let expected = usize::from(!replaced(b.file));
        assert_eq!(n, expected, "{} in {}", b.label, b.file);
    }
    for p in points {
        assert!(BINS.iter().any(|b| b.label == p.name), "{p:?}");
        assert!(p.hier.starts_with("shootdown_top."), "{p:?}");
        assert!(p.file.ends_with(".sv") && p.line > 0, "{p:?}");
    }
}

#[test]
fn a_wrapping_queue_hits_the_wrap_bin_and_nothing_else_of_the_queue() {
    let mut s = Sim::new(2, 5);
    // 100 fences without a write, 25 at a time: the 64-entry ring wraps once
    // and is never full
    for _ in 0..4 {
        s.submit_cmds(&[cmd_iofence_c(None, 0); 25]);
        s.wait_cq_empty(MAX);
    }
    assert_eq!(
        hit(&coverage(&s)),
        present(&[("CmdIofenceOut0_C", 100), ("CqWrap_C", 1)])
    );
}

#[test]
fn a_full_ring_hits_the_full_bin() {
    let mut s = Sim::new(2, 5);
    // 63 commands in a 64-entry ring: tail + 1 == head
    s.submit_cmds(&[cmd_iofence_c(None, 0); 63]);
    s.wait_cq_empty(MAX);
    let c = coverage(&s);
    assert_eq!(c.hits("CqFull_C"), Some(1));
    assert_eq!(c.hits("CqWrap_C"), Some(0));
    assert_eq!(c.hits("CmdIofenceOut0_C"), Some(63));
}

#[test]
fn two_ats_invalidations_before_a_fence_hit_outstanding_two() {
    let mut s = Sim::new(2, 100);
    s.submit_cmds(&[
        cmd_ats_inval(PASID, 0x1000, 4096),
        cmd_ats_inval(PASID, 0x2000, 4096),
        cmd_iofence_c(Some(FENCE_ADDR), 1),
    ]);
    s.wait_cq_empty(MAX);
    assert_eq!(s.read64(FENCE_ADDR), 1);
    assert_eq!(
        hit(&coverage(&s)),
        present(&[
            ("CmdAtsInvalOut0_C", 1),
            ("CmdAtsInvalOut1_C", 1),
            ("CmdIofenceOut2_C", 1),
            ("FenceDoneOut0_C", 1),
            ("AtcInvPageEmpty_C", 2),
        ])
    );
}

#[test]
fn a_second_invalidation_with_one_itag_in_use_finds_them_exhausted() {
    let mut s = Sim::with_cfg(2, 100, |p| p.cfg_ats_itags = 1);
    s.submit_cmds(&[
        cmd_ats_inval(PASID, 0x1000, 4096),
        cmd_ats_inval(PASID, 0x2000, 4096),
        cmd_iofence_c(None, 0),
    ]);
    s.wait_cq_empty(MAX);
    assert_eq!(
        hit(&coverage(&s)),
        present(&[
            ("CmdAtsInvalOut0_C", 1),
            ("CmdAtsInvalOut1_C", 1),
            ("ItagsExhausted_C", 1),
            ("CmdIofenceOut1_C", 1),
            ("AtcInvPageEmpty_C", 2),
        ])
    );
}

/// Cache pages `pages` (indices) of the 8-page range at 0x1000_0000 in the
/// IOTLB and the ATC, then invalidate the range (IOTINVAL.VMA, ATS.INVAL,
/// IOFENCE.C) and return the new coverage.
fn cache_then_invalidate_8(s: &mut Sim, pages: &[u64]) -> Coverage {
    const BASE: u64 = 0x1000_0000;
    let before = coverage(s);
    for (id, &p) in pages.iter().enumerate() {
        let r = s.read_wait(id as u8, PASID, BASE + p * 4096, MAX);
        assert_eq!(r.status, 0, "{r:?}");
    }
    s.submit_cmds(&[
        cmd_iotinval_range(PASID, BASE, 8 * 4096),
        cmd_ats_inval(PASID, BASE, 8 * 4096),
        cmd_iofence_c(None, 0),
    ]);
    s.wait_cq_empty(MAX);
    let mut after = coverage(s);
    for (k, n) in &mut after.counts {
        *n -= before.counts[k];
    }
    after
}

#[test]
fn a_range_invalidation_sees_where_the_caches_held_pages() {
    let mut s = Sim::new(2, 5);
    for p in 0..8 {
        s.map_4k(
            PASID,
            0x1000_0000 + p * 4096,
            0x4_0000_0000 + p * 4096,
            true,
        );
    }
    // the first, a middle and the last page cached
    let c = cache_then_invalidate_8(&mut s, &[0, 3, 7]);
    let range = |c: &Coverage| {
        let mut h = hit(c);
        h.retain(|l, _| l.starts_with("IotlbInv") || l.starts_with("AtcInv"));
        h
    };
    assert_eq!(
        range(&c),
        present(&[
            ("AtcInvSmallStart_C", 1),
            ("AtcInvSmallMiddle_C", 1),
            ("AtcInvSmallEnd_C", 1),
            ("IotlbInvSmallStart_C", 1),
            ("IotlbInvSmallMiddle_C", 1),
            ("IotlbInvSmallEnd_C", 1),
        ])
    );
    // only a middle page
    let c = cache_then_invalidate_8(&mut s, &[5]);
    assert_eq!(
        range(&c),
        present(&[("AtcInvSmallMiddle_C", 1), ("IotlbInvSmallMiddle_C", 1)])
    );
    // nothing
    let c = cache_then_invalidate_8(&mut s, &[]);
    assert_eq!(
        range(&c),
        present(&[("AtcInvSmallEmpty_C", 1), ("IotlbInvSmallEmpty_C", 1)])
    );
    // a 2 MiB entry holds every page of a 16-page range inside it
    s.map_2m(PASID, 0x4000_0000, 0x8_0000_0000, true);
    s.read_wait(9, PASID, 0x4000_0000, MAX);
    let before = coverage(&s);
    s.submit_cmds(&[
        cmd_iotinval_range(PASID, 0x4001_0000, 16 * 4096),
        cmd_ats_inval(PASID, 0x4001_0000, 16 * 4096),
        cmd_iofence_c(None, 0),
    ]);
    s.wait_cq_empty(MAX);
    let mut c = coverage(&s);
    for (k, n) in &mut c.counts {
        *n -= before.counts[k];
    }
    assert_eq!(
        range(&c),
        present(&[
            ("AtcInvMediumStart_C", 1),
            ("AtcInvMediumMiddle_C", 1),
            ("AtcInvMediumEnd_C", 1),
            ("IotlbInvMediumStart_C", 1),
            ("IotlbInvMediumMiddle_C", 1),
            ("IotlbInvMediumEnd_C", 1),
        ])
    );
    // a whole-PASID IOTINVAL.VMA with nothing cached
    s.submit_cmds(&[cmd_iotinval_vma(Some(PASID), None)]);
    s.wait_cq_empty(MAX);
    let c = coverage(&s);
    assert_eq!(
        c.hits("IotlbInvPasidEmpty_C"),
        (!replaced("iotlb.sv")).then_some(1)
    );
}

#[test]
fn an_invalidation_naming_a_1g_entry_hits_the_inval_1g_bins() {
    let mut s = Sim::new(2, 5);
    let va = 0x40_0000_0000;
    s.map_1g(PASID, va, 0x8_0000_0000, true);
    s.read_wait(1, PASID, va, MAX);
    let inval = |s: &mut Sim, cmds: &[[u64; 2]]| {
        let before = coverage(s);
        s.submit_cmds(cmds);
        s.wait_cq_empty(MAX);
        let mut c = coverage(s);
        for (k, n) in &mut c.counts {
            *n -= before.counts[k];
        }
        let mut h = hit(&c);
        h.retain(|l, _| l.starts_with("IotlbInv") || l.starts_with("AtcInv"));
        h
    };
    // a page of the next 1 GiB: held by neither
    assert_eq!(
        inval(
            &mut s,
            &[
                cmd_iotinval_vma(Some(PASID), Some(va + 0x4000_0000)),
                cmd_ats_inval(PASID, va + 0x4000_0000, 4096),
                cmd_iofence_c(None, 0),
            ]
        ),
        present(&[("IotlbInvPageEmpty_C", 1), ("AtcInvPageEmpty_C", 1)])
    );
    // a page in its last 2 MiB: the 1 GiB entries of both caches
    assert_eq!(
        inval(
            &mut s,
            &[
                cmd_iotinval_vma(Some(PASID), Some(va + 0x3fff_f000)),
                cmd_ats_inval(PASID, va + 0x3fff_f000, 4096),
                cmd_iofence_c(None, 0),
            ]
        ),
        present(&[
            ("IotlbInvPageHeld_C", 1),
            ("IotlbInv1gHeld_C", 1),
            ("AtcInvPageHeld_C", 1),
            ("AtcInv1gHeld_C", 1),
        ])
    );
}

#[test]
fn a_late_completion_hits_the_timeout_bins() {
    // the round trip (2 x 400) is longer than the timeout (300)
    let mut s = Sim::with_timeout(1, 400, 0, 300);
    s.submit_cmds(&[
        cmd_ats_inval(PASID, 0x4000, 4096),
        cmd_iofence_c(Some(FENCE_ADDR), 7),
    ]);
    s.run_until("cmd_to", MAX, |s| s.out.cq_err & CQ_ERR_CMD_TO != 0);
    s.run(10);
    s.clear_cq_err();
    s.wait_cq_empty(MAX);
    assert_eq!(s.read64(FENCE_ADDR), 7);
    s.run(1_000); // the late completion
    assert_eq!(
        hit(&coverage(&s)),
        present(&[
            ("CmdAtsInvalOut0_C", 1),
            ("CmdIofenceOut1_C", 1),
            ("AtcInvPageEmpty_C", 1),
            ("CmdToSet_C", 1),
            ("FenceHeldCmdTo_C", 1),
            ("CmdToCleared_C", 1),
            // the fence completed while the device still had the request
            ("FenceDoneOut1_C", 1),
            ("LateCpl_C", 1),
        ])
    );
}

#[test]
fn a_pte_changed_between_the_walkers_read_and_its_cas_hits_cas_lost() {
    let mut s = Sim::new(2, 3);
    let (va, pa) = (0x1500_0000, 0x5500_0000);
    let pte = s.map_flags(PASID, va, pa, 0, P | RW | US);
    s.before_cas.push_back((pte, 0x5600_0000 | P | RW | US));
    let r = s.read_wait(1, PASID, va, MAX);
    assert_eq!(r.status, 0);
    assert_eq!(hit(&coverage(&s)), present(&[("WalkCasLost_C", 1)]));
}

#[test]
fn an_invalidation_during_a_walk_hits_the_walk_step_it_lands_in() {
    let mut s = Sim::new(2, 3);
    s.iommu_latency = 40;
    let va = 0x1700_0000;
    s.map_4k(PASID, va, 0x5800_0000, true);
    s.submit(1, false, PASID, va, 0);
    // the walk has read the PASID entry: the command's fetch and execution
    // land among its next reads
    s.run_until("the walk starts", MAX, |s| {
        s.iommu_log
            .iter()
            .any(|a| a.addr >= PASID_TABLE && a.addr < PASID_TABLE + 0x1000)
    });
    s.submit_cmds(&[cmd_iotinval_vma(Some(PASID), Some(va))]);
    s.wait_cq_empty(MAX);
    s.wait_response(1, MAX);
    assert_eq!(
        hit(&coverage(&s)),
        present(&[
            ("CmdIotinvalOut0_C", 1),
            ("IotlbInvPageEmpty_C", 1),
            ("WalkReadInval_C", 1),
        ])
    );
}

#[test]
fn an_invalidate_request_passing_a_delayed_completion_is_seen_at_the_socket() {
    const VA: u64 = 0x2222_0000;
    let mut s = Sim::with_cfg(2, 30, |p| p.cfg_ats_cpl_delay = 200);
    s.map_4k(PASID, VA, 0x1_0000_0000, true);
    s.set_probe(0, PASID, VA);
    s.submit(1, false, PASID, VA, 0);
    s.run_until("the Completion leaves the IOMMU", MAX, |s| {
        s.probe(0)[2].is_some()
    });
    s.submit_cmds(&[
        cmd_iotinval_vma(Some(PASID), Some(VA)),
        cmd_ats_inval(PASID, VA, 4096),
        cmd_iofence_c(None, 0),
    ]);
    assert_eq!(s.wait_response(1, MAX).status, 0);
    s.wait_cq_empty(MAX);
    assert_eq!(
        hit(&coverage(&s)),
        present(&[
            ("CmdIotinvalOut0_C", 1),
            ("CmdAtsInvalOut0_C", 1),
            ("CmdIofenceOut1_C", 1),
            ("IotlbInvPageHeld_C", 1),
            ("AtcInvPageEmpty_C", 1),
            ("InvPassesCpl_C", 1),
            ("CplOvertakenRead_C", 1),
        ])
    );
}

#[test]
fn each_model_counts_its_own_and_zero_clears_them() {
    let mut a = Sim::new(2, 100);
    let b = Sim::new(2, 100);
    a.submit_cmds(&[
        cmd_ats_inval(PASID, 0x1000, 4096),
        cmd_iofence_c(Some(FENCE_ADDR), 1),
    ]);
    a.wait_cq_empty(MAX);
    let counts = a.model.cover_counts();
    assert_eq!(counts.len(), cover_points().len());
    if !counts.is_empty() {
        assert!(counts.iter().any(|&n| n > 0));
    }
    assert!(
        b.model.cover_counts().iter().all(|&n| n == 0),
        "a fresh model counts nothing"
    );
    a.model.cover_zero();
    assert!(a.model.cover_counts().iter().all(|&n| n == 0));
    // counting goes on after a zero
    a.submit_cmds(&[cmd_iofence_c(None, 0)]);
    a.wait_cq_empty(MAX);
    assert_eq!(hit(&coverage(&a)), present(&[("CmdIofenceOut0_C", 1)]));
}
