//! ATS invalidation timeout (`cfg_ats_timeout_i`, RISC-V `cqcsr.cmd_to`):
//! an ITag whose Invalidate Completion does not come back in time is freed
//! and sets `cq_err` bit 1; an IOFENCE.C then holds (no completion word, head
//! on the fence) until software clears the error with `cq_err_clear_i`.

mod common;
use common::*;
use shootdown::rtl::{cmd_ats_inval, cmd_iofence_c, Inject, CQ_ERR_CMD_TO};

const MAX: u64 = 20_000;

/// ATS.INVAL then IOFENCE.C (AV, DATA `data`); returns the cycle the
/// Invalidate Request was issued (the head moved past the ATS.INVAL).
fn inval_and_fence(s: &mut Sim, data: u32) -> u64 {
    let head = s.out.cq_head;
    s.submit_cmds(&[
        cmd_ats_inval(1, 0x4000, 4096),
        cmd_iofence_c(Some(FENCE_ADDR), data),
    ]);
    s.run_until("ATS.INVAL issued", MAX, |s| s.out.cq_head != head);
    s.cycle()
}

#[test]
fn a_timed_out_invalidation_holds_the_fence_until_the_error_is_cleared() {
    const T: u32 = 500;
    let mut s = Sim::with_timeout(1, 20, Inject::DROP_INV_CPL, T);
    let t_req = inval_and_fence(&mut s, 7);
    s.run_until("cmd_to", MAX, |s| s.out.cq_err & CQ_ERR_CMD_TO != 0);
    let t_to = s.cycle();
    assert!(
        t_to.abs_diff(t_req + u64::from(T)) <= 4,
        "cmd_to at {t_to}, request at {t_req}, timeout {T}"
    );
    assert_eq!(s.out.cq_err, CQ_ERR_CMD_TO, "only cmd_to, not cmd_ill");
    s.run(2 * u64::from(T));
    assert_eq!(s.read64(FENCE_ADDR), 0, "the fence did not complete");
    assert_eq!(s.out.cq_head, 1, "the head stays on the fence");
    assert_eq!(s.out.cq_err, CQ_ERR_CMD_TO, "the error is sticky");
    s.clear_cq_err();
    s.wait_cq_empty(MAX);
    assert_eq!(
        s.read64(FENCE_ADDR),
        7,
        "the fence completes after the clear"
    );
    assert_eq!(s.out.cq_err, 0);
}

#[test]
fn completions_in_time_never_time_out() {
    let mut s = Sim::with_timeout(1, 20, 0, 500);
    for round in 1..=3u32 {
        inval_and_fence(&mut s, round);
        s.wait_cq_empty(MAX);
        assert_eq!(s.read64(FENCE_ADDR), u64::from(round));
    }
    s.run(1_000);
    assert_eq!(s.out.cq_err, 0);
}

#[test]
fn timeout_zero_never_times_out() {
    // correct device: the fence completes normally
    let mut s = Sim::with_timeout(1, 20, 0, 0);
    inval_and_fence(&mut s, 3);
    s.wait_cq_empty(MAX);
    assert_eq!(s.read64(FENCE_ADDR), 3);
    assert_eq!(s.out.cq_err, 0);
    // no completions and no timeout: the fence waits for ever, no error
    let mut s = Sim::with_timeout(1, 20, Inject::DROP_INV_CPL, 0);
    inval_and_fence(&mut s, 4);
    s.run(5_000);
    assert_eq!(s.read64(FENCE_ADDR), 0);
    assert_eq!(s.out.cq_head, 1);
    assert_eq!(s.out.cq_err, 0);
}

#[test]
fn a_late_completion_after_a_timeout_is_dropped_silently() {
    // round trip ~ 2 * 100 cycles > the 30-cycle timeout: every completion
    // arrives after its ITag timed out (Sim::step panics on an assertion).
    let mut s = Sim::with_timeout(1, 100, 0, 30);
    for round in 1..=3u32 {
        inval_and_fence(&mut s, round);
        s.run_until("cmd_to", MAX, |s| s.out.cq_err & CQ_ERR_CMD_TO != 0);
        s.clear_cq_err();
        s.wait_cq_empty(MAX);
        assert_eq!(s.read64(FENCE_ADDR), u64::from(round));
        // the late completion comes back now
        s.run(500);
        assert_eq!(s.out.cq_err, 0, "a late completion raises nothing");
    }
}

#[test]
fn timed_out_itags_stay_reserved_until_their_late_completion() {
    // A device that never answers: each of the 8 ITags (the Invalidate
    // Queue Depth) times out and stays reserved, since its completion may
    // still come and must not be taken for a newer request's. The ninth
    // ATS.INVAL waits for good (the device must be reset).
    let mut s = Sim::with_timeout(1, 20, Inject::DROP_INV_CPL, 200);
    let cmds: Vec<[u64; 2]> = (0..12u64)
        .map(|i| cmd_ats_inval(1, i << 12, 4096))
        .chain([cmd_iofence_c(Some(FENCE_ADDR), 9)])
        .collect();
    s.submit_cmds(&cmds);
    s.run_until("8 ATS.INVAL sent", MAX, |s| s.out.cq_head == 8);
    s.run_until("cmd_to", MAX, |s| s.out.cq_err & CQ_ERR_CMD_TO != 0);
    s.clear_cq_err();
    s.run(5_000);
    assert_eq!(
        s.out.cq_head, 8,
        "no ITag is reused while its completion may come"
    );
    assert_eq!(s.read64(FENCE_ADDR), 0);

    // A slow device: its late completions free the reserved ITags, so ten
    // invalidations, all timing out, still get through 8 ITags.
    let mut s = Sim::with_timeout(1, 100, 0, 30);
    let cmds: Vec<[u64; 2]> = (0..10u64)
        .map(|i| cmd_ats_inval(1, i << 12, 4096))
        .chain([cmd_iofence_c(Some(FENCE_ADDR), 7)])
        .collect();
    s.submit_cmds(&cmds);
    let start = s.cycle();
    while s.out.cq_head != 11 {
        assert!(s.cycle() - start < MAX, "the queue went through");
        if s.out.cq_err & CQ_ERR_CMD_TO != 0 {
            s.clear_cq_err();
        } else {
            s.step();
        }
    }
    s.run(10);
    assert_eq!(s.read64(FENCE_ADDR), 7);
}
