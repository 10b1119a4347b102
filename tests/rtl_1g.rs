//! 1 GiB translations at the device: the ATC caches a 1 GiB Translation
//! Completion as one entry and the DMA engine forms the PA from the 30-bit
//! page offset; an Invalidate Request of any one page inside the 1 GiB page
//! drops the entry, holds its Invalidate Completion while an access uses the
//! translation, and makes the device discard a 1 GiB Completion it overtook
//! (PCIe ATS device rules 2 and 3). The IOTLB's side is in
//! `tests/rtl_iotlb.rs`, the walker's in `tests/rtl_walk.rs`.

mod common;
use common::*;
use shootdown::rtl::{cmd_ats_inval, cmd_iofence_c, cmd_iotinval_vma, Inject, ProbeEntry};

const PASID: u32 = 6;
const MAX: u64 = 5_000;
const DATA: u32 = 0x1ee7;
/// A 1 GiB page: VA and PA 1 GiB aligned.
const VA: u64 = 0x7f80_0000_0000;
const PA: u64 = 0xa_4000_0000;
/// An offset deep in the page (its 701st MiB), 8-byte aligned.
const DEEP: u64 = 0x2bcd_e5f8;
/// A page in the last 2 MiB of the 1 GiB page.
const LAST_2M_PAGE: u64 = VA + 0x3ff0_3000;

/// What a probe shows for the page at `offset` of the 1 GiB page, cached
/// read-only.
fn entry_1g(offset: u64) -> Option<ProbeEntry> {
    Some(ProbeEntry {
        ppn: (PA + offset) >> 12,
        w: false,
        r: true,
        is_2m: false,
        is_1g: true,
    })
}

/// Run until the IOFENCE.C's completion word is written; the cycle of that
/// write.
fn fence_write(s: &mut Sim) -> u64 {
    s.run_until("the fence completion word", MAX, |s| {
        s.read64(FENCE_ADDR) == u64::from(DATA)
    });
    s.iommu_log
        .iter()
        .find(|a| a.write && a.addr == FENCE_ADDR)
        .map(|a| a.cycle)
        .expect("fence write logged")
}

#[test]
fn the_atc_caches_a_1g_completion_and_one_invalidated_page_drops_it() {
    let mut s = Sim::new(2, 10);
    s.record_assertions();
    s.map_1g(PASID, VA, PA, true);
    s.write64(PA + DEEP, 0xfeed_f00d);
    s.set_probe(0, PASID, VA + DEEP);
    s.set_probe(1, PASID, VA);

    // the Translation Completion for the first page carries the 1 GiB
    // translation: the in-flight probe of a page deep inside sees it
    s.submit(1, false, PASID, VA + 0x10, 0);
    s.run_until("the Completion in flight", MAX, |s| s.probe(0)[2].is_some());
    assert_eq!(s.probe(0)[2], entry_1g(DEEP & !0xfff));
    let r = s.wait_response(1, MAX);
    assert_eq!((r.status, r.pa), (0, PA + 0x10), "{r:?}");
    s.step();
    assert_eq!(s.probe(0)[1], entry_1g(DEEP & !0xfff), "one ATC entry");
    assert_eq!(s.probe(1)[1], entry_1g(0));

    // a read deep in the page hits the ATC: no Translation Request (its
    // round trip alone is 20 cycles), the PA formed from VA bits 29:0
    let t = s.cycle();
    let r = s.read_wait(2, PASID, VA + DEEP, MAX);
    assert_eq!(
        (r.status, r.pa, r.rdata),
        (0, PA + DEEP, 0xfeed_f00d),
        "{r:?}"
    );
    assert!(r.cycle - t < 20, "an ATC hit: {} cycles", r.cycle - t);
    assert_eq!(s.dev_log.last().map(|a| a.addr), Some(PA + DEEP));

    // an Invalidate Request of one page of the next 1 GiB keeps it
    s.submit_cmds(&[
        cmd_ats_inval(PASID, VA + 0x4000_0000, 4096),
        cmd_iofence_c(None, 0),
    ]);
    s.wait_cq_empty(MAX);
    s.step();
    assert_eq!(s.probe(0)[1], entry_1g(DEEP & !0xfff), "another 1 GiB page");

    // one of a page in its last 2 MiB drops it
    s.submit_cmds(&[
        cmd_ats_inval(PASID, LAST_2M_PAGE, 4096),
        cmd_iofence_c(Some(FENCE_ADDR), DATA),
    ]);
    fence_write(&mut s);
    s.step();
    assert_eq!(
        (s.probe(0)[1], s.probe(1)[1]),
        (None, None),
        "ATC entry dropped"
    );
    assert!(s.probe(0)[0].is_some(), "ATS.INVAL leaves the IOTLB alone");
    assert_eq!(s.fired(), None);
}

/// With `inv-misses-2m` a one-page Invalidate Request leaves the 1 GiB ATC
/// entry (the assertions off); with the assertions on the ATC's
/// `InvalComplete_A` stops the run.
#[test]
fn inv_misses_2m_leaves_a_1g_atc_entry_after_a_one_page_invalidate_request() {
    for checks in [false, true] {
        let mut s = Sim::with_inject(2, 10, Inject::INV_MISSES_2M);
        if checks {
            s.record_assertions();
        } else {
            s.set_assertions(false);
        }
        s.map_1g(PASID, VA, PA, true);
        s.read_wait(1, PASID, VA, MAX);
        s.set_probe(0, PASID, VA);
        s.submit_cmds(&[
            cmd_ats_inval(PASID, LAST_2M_PAGE, 4096),
            cmd_iofence_c(None, 0),
        ]);
        s.wait_cq_empty(MAX);
        s.step();
        if checks {
            let f = s.fired().expect("an assertion fired");
            assert!(f.names("u_atc.InvalComplete_A"), "{f:?}");
        } else {
            assert_eq!(s.probe(0)[1], entry_1g(0), "the 1 GiB ATC entry survives");
        }
    }
}

/// Warm the ATC with the 1 GiB translation, start a slow read deep in the
/// page (device memory latency 400), then send an Invalidate Request of the
/// page at `va_inval` and a fence: the cycles the read finished and the
/// fence completed.
fn drain(va_inval: u64) -> (u64, u64) {
    let mut s = Sim::new(2, 5);
    s.record_assertions();
    s.map_1g(PASID, VA, PA, true);
    s.read_wait(1, PASID, VA, MAX);
    s.dev_latency = 400;
    s.submit(2, false, PASID, VA + DEEP, 0);
    s.run_until("slow access issued", 50, |s| s.out.dev_mem_req_valid != 0);
    s.submit_cmds(&[
        cmd_ats_inval(PASID, va_inval, 4096),
        cmd_iofence_c(Some(FENCE_ADDR), DATA),
    ]);
    let fence = fence_write(&mut s);
    let r = s.wait_response(2, MAX);
    assert_eq!((r.status, r.pa), (0, PA + DEEP), "{r:?}");
    assert_eq!(s.fired(), None);
    (r.cycle, fence)
}

#[test]
fn an_invalidate_request_of_any_page_of_a_1g_translation_waits_for_its_access() {
    // a page 256 MiB away from the one read, in the same 1 GiB page
    let (done, fence) = drain(VA + 0x1000_0000);
    assert!(
        fence > done,
        "the fence ({fence}) completes after the access ({done})"
    );
    // a page of the next 1 GiB does not hold it
    let (done, fence) = drain(VA + 0x4000_0000);
    assert!(
        fence < done,
        "the fence ({fence}) need not wait for the access ({done})"
    );
}

/// A device read misses the ATC; once the 1 GiB Completion is held in the
/// switch (completion delay on), the CPU moves the page to `NEW_PA` and
/// invalidates the page at `va_inval` (IOTINVAL.VMA, ATS.INVAL, IOFENCE.C),
/// whose Invalidate Request overtakes the Completion: the PA the read used
/// and the walks of the page (reads of its PDPT entry).
fn overtaken(va_inval: u64) -> (u64, usize) {
    const NEW_PA: u64 = 0xb_0000_0000;
    let mut s = Sim::with_cfg(2, 30, |p| p.cfg_ats_cpl_delay = 200);
    s.record_assertions();
    s.map_1g(PASID, VA, PA, true);
    let pdpte = s.leaf_addr(PASID, VA, 2);
    s.set_probe(0, PASID, VA);
    s.submit(1, false, PASID, VA, 0);
    s.run_until("the Completion leaves the IOMMU", MAX, |s| {
        s.probe(0)[2].is_some()
    });
    s.run(2);
    assert_eq!(s.probe(0)[1], None, "the Completion has not arrived");
    s.map_1g(PASID, VA, NEW_PA, true);
    s.submit_cmds(&[
        cmd_iotinval_vma(Some(PASID), Some(va_inval)),
        cmd_ats_inval(PASID, va_inval, 4096),
        cmd_iofence_c(Some(FENCE_ADDR), DATA),
    ]);
    let r = s.wait_response(1, MAX);
    assert_eq!(r.status, 0, "{r:?}");
    s.wait_cq_empty(MAX);
    assert_eq!(s.fired(), None);
    let walks = s
        .iommu_log
        .iter()
        .filter(|a| a.addr == pdpte && !a.write && !a.cas)
        .count();
    (r.pa, walks)
}

#[test]
fn a_1g_completion_overtaken_by_an_invalidation_of_another_of_its_pages_is_discarded() {
    // a page in the last 2 MiB: outside the 2 MiB region of the page
    // requested, inside the 1 GiB the Completion covers
    assert_eq!(
        overtaken(LAST_2M_PAGE),
        (0xb_0000_0000, 2),
        "discarded, requested and walked again: the new page"
    );
    // a page of the next 1 GiB: the Completion is used
    assert_eq!(overtaken(VA + 0x4000_0000), (PA, 1), "installed and used");
}
