//! IOFENCE.C: the head moves past an ATS.INVAL at once, but stops on the
//! fence until the Invalidate Completion is back; then DATA is written
//! (zero-extended, 64 bits) to ADDR and the head moves past the fence.

mod common;
use common::*;
use shootdown::rtl::{cmd_ats_inval, cmd_iofence_c};

const MAX: u64 = 5_000;

#[test]
fn fence_writes_data_only_after_the_earlier_ats_inval_completed() {
    let lat: u16 = 100;
    let mut s = Sim::new(2, lat);
    s.write64(FENCE_ADDR, u64::MAX);
    let t0 = s.cycle();
    s.submit_cmds(&[
        cmd_ats_inval(1, 0x1000, 4096),
        cmd_iofence_c(Some(FENCE_ADDR), 0xdead_beef),
    ]);

    s.run_until("head past ATS.INVAL", 100, |s| s.out.cq_head == 1);
    let passed_inval = s.cycle() - t0;
    assert!(
        passed_inval < u64::from(lat),
        "ATS.INVAL does not wait for its completion"
    );

    s.run_until("head past IOFENCE.C", MAX, |s| s.out.cq_head == 2);
    let write = *s
        .iommu_log
        .iter()
        .find(|a| a.write)
        .expect("the fence wrote its completion");
    assert_eq!(write.addr, FENCE_ADDR);
    assert_eq!(write.data, 0xdead_beef, "DATA zero-extended");
    assert_eq!(s.read64(FENCE_ADDR), 0xdead_beef);
    assert!(
        write.cycle - t0 >= 2 * u64::from(lat),
        "the write waits for the round trip of the invalidation: cycle {}",
        write.cycle - t0
    );
    assert!(s.cycle() > write.cycle, "the head moves after the write");
}

#[test]
fn fence_without_av_writes_nothing() {
    let mut s = Sim::new(2, 5);
    s.submit_cmds(&[cmd_ats_inval(1, 0x1000, 4096), cmd_iofence_c(None, 7)]);
    s.wait_cq_empty(MAX);
    assert!(s.iommu_log.iter().all(|a| !a.write));
}

#[test]
fn a_fence_with_nothing_outstanding_completes_at_once() {
    let mut s = Sim::new(2, 200);
    let t0 = s.cycle();
    s.submit_cmds(&[cmd_iofence_c(Some(FENCE_ADDR), 1)]);
    s.wait_cq_empty(MAX);
    assert_eq!(s.read64(FENCE_ADDR), 1);
    assert!(
        s.cycle() - t0 < 50,
        "no link round trip: {}",
        s.cycle() - t0
    );
}
