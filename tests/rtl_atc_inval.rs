//! The device's Invalidate Request handling: the ATC entry goes at once, but
//! the Invalidate Completion (and so the IOFENCE.C completion write) waits
//! for an in-flight access that used the invalidated translation. An access
//! to another page does not hold it.

mod common;
use common::*;
use shootdown::rtl::{cmd_ats_inval, cmd_iofence_c, cmd_iotinval_vma};

const PASID: u32 = 4;
const MAX: u64 = 5_000;
const DATA: u32 = 0x600d;

struct Outcome {
    /// Cycle the device answered the slow access.
    access_done: u64,
    /// Cycle the IOMMU issued the fence completion write.
    fence_write: u64,
    /// Cycle the ATC entry of the invalidated page disappeared.
    atc_dropped: u64,
}

/// Warm the ATC for `va_used`, start a slow read of it (device memory
/// latency 400), then invalidate `va_inval` and fence.
fn run(va_used: u64, va_inval: u64) -> Outcome {
    let mut s = Sim::new(2, 5);
    s.map_4k(PASID, 0x1000_0000, 0x4_0000_0000, true);
    s.map_4k(PASID, 0x1000_1000, 0x4_0000_1000, true);
    s.read_wait(1, PASID, va_used, MAX);
    s.read_wait(2, PASID, va_inval, MAX);
    s.set_probe(0, PASID, va_inval);
    s.step();
    assert!(s.probe(0)[1].is_some(), "ATC warm");

    s.dev_latency = 400;
    s.submit(3, false, PASID, va_used, 0);
    s.run_until("slow access issued", 50, |s| s.out.dev_mem_req_valid != 0);
    s.submit_cmds(&[
        cmd_iotinval_vma(Some(PASID), Some(va_inval)),
        cmd_ats_inval(PASID, va_inval, 4096),
        cmd_iofence_c(Some(FENCE_ADDR), DATA),
    ]);
    let mut atc_dropped = None;
    let mut access_done = None;
    let start = s.cycle();
    while s.read64(FENCE_ADDR) != u64::from(DATA) {
        assert!(s.cycle() - start < MAX, "watchdog: fence completion");
        s.step();
        if atc_dropped.is_none() && s.probe(0)[1].is_none() {
            atc_dropped = Some(s.cycle());
        }
        if let Some(r) = s.responses.iter().find(|r| r.id == 3) {
            access_done.get_or_insert(r.cycle);
        }
    }
    let fence_write = s
        .iommu_log
        .iter()
        .find(|a| a.write && a.addr == FENCE_ADDR)
        .map(|a| a.cycle)
        .expect("fence write logged");
    let access_done = match access_done {
        Some(c) => c,
        None => s.wait_response(3, MAX).cycle,
    };
    Outcome {
        access_done,
        fence_write,
        atc_dropped: atc_dropped.expect("ATC entry dropped"),
    }
}

#[test]
fn invalidate_completion_waits_for_the_access_using_the_translation() {
    let o = run(0x1000_0000, 0x1000_0000);
    assert!(
        o.atc_dropped < o.access_done,
        "the ATC entry goes when the request arrives ({}), before the access ends ({})",
        o.atc_dropped,
        o.access_done
    );
    assert!(
        o.fence_write > o.access_done,
        "fence completion ({}) only after the in-flight access ({})",
        o.fence_write,
        o.access_done
    );
}

#[test]
fn an_access_to_another_page_does_not_hold_the_completion() {
    let o = run(0x1000_0000, 0x1000_1000);
    assert!(
        o.fence_write < o.access_done,
        "fence completion ({}) need not wait for an unrelated access ({})",
        o.fence_write,
        o.access_done
    );
}
