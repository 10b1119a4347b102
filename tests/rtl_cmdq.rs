//! The command queue itself: the ring wraps, an illegal command stops the
//! queue with cq_err bit 0, and ATS.INVAL stalls when all 32 ITags are busy.

mod common;
use common::*;
use shootdown::rtl::{cmd_ats_inval, cmd_iofence_c, cmd_iotinval_vma};

const MAX: u64 = 20_000;

#[test]
fn the_ring_wraps_around() {
    let mut s = Sim::new(1, 2);
    let n = 1u32 << CQ_LOG2N;
    for round in 0..3u32 {
        let cmds: Vec<[u64; 2]> = (0..n / 2 + 3)
            .map(|_| cmd_iotinval_vma(None, None))
            .collect();
        // keep one slot free: at most n - 1 commands outstanding
        for chunk in cmds.chunks((n - 1) as usize) {
            s.submit_cmds(chunk);
            s.wait_cq_empty(MAX);
        }
        s.submit_cmds(&[cmd_iofence_c(Some(FENCE_ADDR), round + 1)]);
        s.wait_cq_empty(MAX);
        assert_eq!(s.read64(FENCE_ADDR), u64::from(round + 1));
    }
    assert_eq!(s.out.cq_err, 0);
}

#[test]
fn an_illegal_command_sets_the_error_flag_and_stops_the_head() {
    let mut s = Sim::new(1, 2);
    s.submit_cmds(&[
        cmd_iotinval_vma(None, None),
        [0x3, 0],
        cmd_iofence_c(Some(FENCE_ADDR), 5),
    ]);
    s.run_until("cq_err", 200, |s| s.out.cq_err != 0);
    assert_eq!(s.out.cq_err & 1, 1);
    s.run(200);
    assert_eq!(s.out.cq_head, 1, "head stays on the illegal command");
    assert_eq!(s.read64(FENCE_ADDR), 0, "nothing after it executes");
}

#[test]
fn func3_other_than_zero_is_illegal() {
    let mut s = Sim::new(1, 2);
    let mut c = cmd_iotinval_vma(None, None);
    c[0] |= 1 << 7;
    s.submit_cmds(&[c]);
    s.run_until("cq_err", 200, |s| s.out.cq_err != 0);
    assert_eq!(s.out.cq_head, 0);
}

#[test]
fn ats_inval_stalls_when_every_itag_is_busy() {
    // The ITag pool is the device's Invalidate Queue Depth (AtsInvQDepth in
    // rtl/shootdown_top.sv).
    const DEPTH: u32 = 8;
    let lat: u16 = 300;
    let mut s = Sim::new(1, lat);
    let cmds: Vec<[u64; 2]> = (0..u64::from(DEPTH) + 2)
        .map(|i| cmd_ats_inval(1, i << 12, 4096))
        .collect();
    let t0 = s.cycle();
    s.submit_cmds(&cmds);
    s.run_until("DEPTH ATS.INVAL sent", u64::from(lat), |s| {
        s.out.cq_head == DEPTH
    });
    // the next one waits for the first Invalidate Completion (one round trip)
    for _ in 0..u64::from(lat) {
        s.step();
    }
    assert_eq!(
        s.out.cq_head, DEPTH,
        "no ITag is free before a completion returns"
    );
    s.run_until("one more ATS.INVAL sent", MAX, |s| {
        s.out.cq_head == DEPTH + 1
    });
    assert!(
        s.cycle() - t0 >= 2 * u64::from(lat),
        "stalled until an ITag came back"
    );
    s.submit_cmds(&[cmd_iofence_c(Some(FENCE_ADDR), 9)]);
    s.wait_cq_empty(MAX);
    assert_eq!(s.read64(FENCE_ADDR), 9);
}
