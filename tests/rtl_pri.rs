//! PCIe PRI through the ports (docs/socket.md, "Page Request Interface").
//! With `cfg_pri_limit_i` = 0 a translation fault ends the access with
//! status 1 and nothing is written. With PRI on the device sends a Page
//! Request, the IOMMU writes it into the page-request queue and moves
//! `pq_tail_o` on, software answers with ATS.PRGR, and the device asks for
//! the translation again (Success), faults (another code) or gives up after
//! `cfg_pri_limit_i` Page Requests answered Success (status 2). A full
//! queue is answered Success by the IOMMU itself and sets `pq_ovf_o`; the
//! injected bug `write-hits-ro` makes a permission upgrade a livelock.

mod common;
use common::*;
use shootdown::coverage::Coverage;
use shootdown::rtl::{
    cmd_ats_prgr, decode_page_request, inject_bits, PageRequest, PortsIn, PQ_RECORD_BYTES,
    PRG_FAILURE, PRG_INVALID, PRG_SUCCESS,
};

const PASID: u32 = 6;
const MAX: u64 = 20_000;
/// The page-request queue ring (4 KiB aligned, apart from the CQ, the
/// PASID table, the fence word and the page-table frames).
const PQ_BASE: u64 = 0x40_0000;
const LAT: u16 = 20;

/// A model with PRI `limit` (0: off) and a ring of 2^`log2n` records.
fn pri_sim(limit: u8, log2n: u8) -> Sim {
    pri_sim_with(limit, log2n, |_| {})
}

fn pri_sim_with(limit: u8, log2n: u8, more: impl FnOnce(&mut PortsIn)) -> Sim {
    Sim::with_cfg(2, LAT, |p| {
        p.cfg_pri_limit = limit;
        p.cfg_pq_base = PQ_BASE;
        p.cfg_pq_log2n = log2n;
        more(p);
    })
}

/// Record `i` of the ring as memory holds it.
fn record(s: &Sim, i: u64) -> Option<PageRequest> {
    let at = PQ_BASE + i * PQ_RECORD_BYTES;
    decode_page_request(s.read64(at), s.read64(at + 8))
}

/// The IOMMU's writes into the page-request queue's frame.
fn pq_writes(s: &Sim) -> Vec<u64> {
    s.iommu_log
        .iter()
        .filter(|a| a.write && (PQ_BASE..PQ_BASE + 0x1000).contains(&a.addr))
        .map(|a| a.addr)
        .collect()
}

/// Did the run hit cover point `label`? (true when the build has no such
/// point: a variant RTL that replaced its module)
fn hit(s: &Sim, label: &str) -> bool {
    Coverage::of_model(&s.model)
        .hits(label)
        .is_none_or(|n| n > 0)
}

fn hits(s: &Sim, label: &str) -> Option<u64> {
    Coverage::of_model(&s.model).hits(label)
}

/// Answer record `tail - 1`: software reads it, moves the head past it and
/// writes ATS.PRGR with `code` for it.
fn answer(s: &mut Sim, code: u8) -> PageRequest {
    let tail = s.out.pq_tail;
    let r = record(s, u64::from(tail) - 1).expect("a page-request record");
    s.inp.pq_head = tail;
    s.submit_cmds(&[cmd_ats_prgr(r.pasid, r.prgi, code)]);
    r
}

#[test]
fn pri_off_a_fault_ends_the_access_and_nothing_is_written() {
    let mut s = pri_sim(0, 4);
    let va = 0x5555_0000;
    // the page table exists, the page does not
    s.map_4k(PASID, va + 0x1000, 0x9_0000_0000, true);
    let r = s.read_wait(1, PASID, va + 0x18, MAX);
    assert_eq!(r.status, 1, "translation fault");
    s.run(200);
    assert_eq!(s.out.pq_tail, 0);
    assert_eq!(s.out.pq_ovf, 0);
    assert!(pq_writes(&s).is_empty(), "{:?}", pq_writes(&s));
    assert!(
        s.iommu_log.iter().all(|a| !a.write),
        "no IOMMU write at all"
    );
    assert_eq!(record(&s, 0), None);
    assert_eq!(hits(&s, "PqWrite_C").unwrap_or(0), 0);
}

#[test]
fn pri_on_one_page_request_then_the_fixed_page_is_read() {
    let mut s = pri_sim(4, 4);
    let va = 0x5555_3000;
    let pa = 0x7_1234_5000;
    s.map_4k(PASID, va + 0x1000, 0x9_0000_0000, true);
    s.submit(7, false, PASID, va + 0x28, 0);
    s.run_until("the Page Request's record", MAX, |s| s.out.pq_tail == 1);
    assert_eq!(
        record(&s, 0),
        Some(PageRequest {
            prgi: 7,
            pasid: PASID,
            va,
            write: false
        })
    );
    let writes = pq_writes(&s);
    assert_eq!(writes, [PQ_BASE, PQ_BASE + 8], "one 16-byte record");
    // the device waits for its PRG Response: no second request, no response
    s.run(500);
    assert_eq!(s.out.pq_tail, 1, "exactly one Page Request");
    assert!(s.responses.is_empty(), "{:?}", s.responses);
    // the kernel's fault handler makes the page present and answers
    s.map_4k(PASID, va, pa, true);
    s.write64(pa + 0x28, 0xfeed_f00d);
    let r = answer(&mut s, PRG_SUCCESS);
    assert_eq!((r.prgi, r.va), (7, va));
    let rsp = s.wait_response(7, MAX);
    assert_eq!(
        (rsp.status, rsp.rdata, rsp.pa),
        (0, 0xfeed_f00d, pa + 0x28),
        "the access completes through the new translation"
    );
    assert_eq!(s.out.pq_tail, 1, "no further Page Request");
    assert_eq!(pq_writes(&s).len(), 2);
    assert_eq!(s.out.pq_ovf, 0);
    assert!(hit(&s, "PqWrite_C") && hit(&s, "PrgRspSuccess_C"));
    assert_eq!(hits(&s, "PriGaveUp_C").unwrap_or(0), 0);
}

#[test]
fn a_prg_response_invalid_request_ends_the_access_with_a_fault() {
    let mut s = pri_sim(4, 4);
    let va = 0x6000_0000;
    s.map_4k(PASID, va + 0x1000, 0x9_0000_0000, true);
    s.submit(3, true, PASID, va, 0x77);
    s.run_until("the Page Request's record", MAX, |s| s.out.pq_tail == 1);
    let r = record(&s, 0).unwrap();
    assert_eq!((r.prgi, r.pasid, r.va, r.write), (3, PASID, va, true));
    // a response for another PRG Index, and one for another PASID, are
    // dropped: the device still waits
    s.submit_cmds(&[
        cmd_ats_prgr(PASID, 4, PRG_SUCCESS),
        cmd_ats_prgr(PASID + 1, 3, PRG_SUCCESS),
    ]);
    s.wait_cq_empty(MAX);
    s.run(3 * u64::from(LAT));
    assert!(s.responses.is_empty(), "{:?}", s.responses);
    assert_eq!(
        s.out.pq_tail, 1,
        "the dropped responses asked nothing again"
    );
    assert_eq!(hits(&s, "PrgRspSuccess_C").unwrap_or(0), 0);
    answer(&mut s, PRG_INVALID);
    let rsp = s.wait_response(3, MAX);
    assert_eq!(rsp.status, 1, "Invalid Request: a fault");
    assert!(s.dev_log.is_empty(), "no access was made");
    assert_eq!(s.out.pq_tail, 1);
    assert!(hit(&s, "PrgRspFail_C"));
}

#[test]
fn a_prg_response_failure_is_a_fault_too() {
    let mut s = pri_sim(2, 4);
    let va = 0x6100_0000;
    s.map_4k(PASID, va + 0x1000, 0x9_0000_0000, true);
    s.submit(5, false, PASID, va, 0);
    s.run_until("the Page Request's record", MAX, |s| s.out.pq_tail == 1);
    answer(&mut s, PRG_FAILURE);
    assert_eq!(s.wait_response(5, MAX).status, 1);
}

#[test]
fn never_fixed_the_device_gives_up_after_the_limit() {
    let limit = 3u8;
    let mut s = pri_sim(limit, 4);
    let va = 0x6200_0000;
    s.map_4k(PASID, va + 0x1000, 0x9_0000_0000, true);
    s.submit(9, false, PASID, va + 8, 0);
    let start = s.cycle();
    let mut answered = 0;
    while !s.responses.iter().any(|r| r.id == 9) {
        assert!(s.cycle() - start < MAX, "watchdog");
        if s.out.pq_tail != s.inp.pq_head {
            // a spurious fix: the page stays unmapped, the answer Success
            let r = answer(&mut s, PRG_SUCCESS);
            assert_eq!((r.prgi, r.va, r.write), (9, va, false));
            answered += 1;
        }
        s.step();
    }
    let rsp = s.wait_response(9, 1);
    assert_eq!(rsp.status, 2, "gave up: no progress");
    assert_eq!(answered, u32::from(limit));
    assert_eq!(
        s.out.pq_tail,
        u32::from(limit),
        "exactly the limit's records"
    );
    assert_eq!(pq_writes(&s).len(), 2 * usize::from(limit));
    for i in 0..u64::from(limit) {
        assert_eq!(record(&s, i).map(|r| r.prgi), Some(9), "record {i}");
    }
    assert!(s.dev_log.is_empty());
    // the count starts again for the next access
    s.submit(10, false, PASID, va + 8, 0);
    s.run_until("the next access's Page Request", MAX, |s| {
        s.out.pq_tail == u32::from(limit) + 1
    });
    // (a cover point counts at the edge after its event: the response's)
    assert_eq!(hits(&s, "PriGaveUp_C").unwrap_or(1), 1);
    assert_eq!(hits(&s, "PrgRspSuccess_C").unwrap_or(3), 3);
}

#[test]
fn a_full_queue_is_answered_by_the_iommu_and_the_retries_stay_bounded() {
    // two records: one holds a Page Request, then the ring is full
    let limit = 4u8;
    let mut s = pri_sim(limit, 1);
    let va = 0x6300_0000;
    s.map_4k(PASID, va + 0x1000, 0x9_0000_0000, true);
    s.submit(2, false, PASID, va, 0);
    s.run_until("the first record", MAX, |s| s.out.pq_tail == 1);
    assert_eq!(s.out.pq_ovf, 0);
    // software answers Success (a spurious fix) but does not move the head
    // on: every later Page Request finds the ring full
    s.submit_cmds(&[cmd_ats_prgr(PASID, 2, PRG_SUCCESS)]);
    let rsp = s.wait_response(2, MAX);
    assert_eq!(rsp.status, 2, "the IOMMU's Success answers count: gave up");
    assert_eq!(s.out.pq_ovf, 1, "overflow flagged");
    assert_eq!(s.out.pq_tail, 1, "the tail never reaches the head");
    assert_eq!(
        pq_writes(&s),
        [PQ_BASE, PQ_BASE + 8],
        "nothing written beyond the ring's capacity"
    );
    assert_eq!(hits(&s, "PqFullRsp_C").unwrap_or(3), 3);
    assert_eq!(hits(&s, "PqWrite_C").unwrap_or(1), 1);
    // sticky
    s.run(100);
    assert_eq!(s.out.pq_ovf, 1);
}

#[test]
fn a_one_record_ring_is_always_full() {
    let mut s = pri_sim(2, 0);
    let va = 0x6400_0000;
    s.map_4k(PASID, va + 0x1000, 0x9_0000_0000, true);
    let rsp = s.read_wait(4, PASID, va, MAX);
    assert_eq!(rsp.status, 2);
    assert_eq!((s.out.pq_tail, s.out.pq_ovf), (0, 1));
    assert!(pq_writes(&s).is_empty());
}

/// A page read while its PTE was read-only (the IOTLB and the ATC cache it
/// without W), then made writable by the CPU with no invalidation (a
/// permission upgrade needs none), then written by the device. Returns the
/// write's status and the Page Requests it sent.
fn write_after_upgrade(inject: u16, pri: u8) -> (DevRsp, u32, Sim) {
    let mut s = pri_sim_with(pri, 4, |p| p.cfg_inject = inject);
    s.record_assertions();
    let va = 0x6500_0000;
    let pa = 0x7_4444_4000;
    s.map_4k(PASID, va, pa, false);
    let r = s.read_wait(1, PASID, va, MAX);
    assert_eq!(r.status, 0);
    s.set_probe(0, PASID, va);
    s.step();
    let cached = s.probe(0);
    assert!(
        cached[0].is_some_and(|e| e.r && !e.w) && cached[1].is_some_and(|e| e.r && !e.w),
        "read-only in the IOTLB and the ATC: {cached:?}"
    );
    s.map_4k(PASID, va, pa, true);
    s.submit(2, true, PASID, va + 0x10, 0xabcd);
    let start = s.cycle();
    let mut answered = 0;
    while !s.responses.iter().any(|r| r.id == 2) {
        assert!(s.cycle() - start < MAX, "watchdog");
        if s.out.pq_tail != s.inp.pq_head {
            // the kernel finds the PTE writable already: Success
            let r = answer(&mut s, PRG_SUCCESS);
            assert!(r.write, "a write's Page Request asks for W");
            answered += 1;
        }
        s.step();
    }
    (s.wait_response(2, 1), answered, s)
}

#[test]
fn write_hits_ro_clear_the_write_walks_again_and_completes() {
    for pri in [0, 3] {
        let (rsp, prs, s) = write_after_upgrade(0, pri);
        assert_eq!((rsp.status, rsp.pa), (0, 0x7_4444_4010), "pri {pri}");
        assert_eq!(prs, 0, "no Page Request needed");
        assert_eq!(s.read64(0x7_4444_4010), 0xabcd);
        assert_eq!(s.fired(), None);
    }
}

#[test]
fn write_hits_ro_set_the_write_faults_or_gives_up() {
    let bug = inject_bits(&["write-hits-ro"]).unwrap();
    // PRI off: a fault
    let (rsp, prs, s) = write_after_upgrade(bug, 0);
    assert_eq!((rsp.status, prs), (1, 0));
    assert_eq!(s.read64(0x7_4444_4010), 0, "nothing written");
    let f = s.fired().expect("the request server's assertion");
    assert!(f.names("WriteHitRoWalks_A"), "{f:?}");
    // PRI on: each Page Request answered Success, each new Translation
    // Request answered from the stale IOTLB entry: no progress
    let (rsp, prs, s) = write_after_upgrade(bug, 3);
    assert_eq!((rsp.status, prs), (2, 3));
    assert_eq!(s.out.pq_tail, 3);
    assert_eq!(s.read64(0x7_4444_4010), 0, "nothing written");
    assert!(s.fired().is_some_and(|f| f.names("WriteHitRoWalks_A")));
}

#[test]
fn the_prg_response_passes_a_delayed_completion_path_unharmed() {
    // With the completion delay on, PRG Responses (posted, like Invalidate
    // Requests) go straight to the device, never through the delay link
    // (CplLinkOnlyCpl_A); the flow is the same, each Translation
    // Completion 150 cycles later.
    let mut s = pri_sim_with(2, 4, |p| p.cfg_ats_cpl_delay = 150);
    let va = 0x6600_0000;
    let pa = 0x7_5555_5000;
    s.map_4k(PASID, va + 0x1000, 0x9_0000_0000, true);
    s.submit(8, false, PASID, va, 0);
    s.run_until("the Page Request's record", MAX, |s| s.out.pq_tail == 1);
    s.map_4k(PASID, va, pa, true);
    let t = s.cycle();
    answer(&mut s, PRG_SUCCESS);
    let rsp = s.wait_response(8, MAX);
    assert_eq!((rsp.status, rsp.pa), (0, pa));
    assert!(
        rsp.cycle - t > 150,
        "the second Translation Completion was delayed: {}",
        rsp.cycle - t
    );
}
