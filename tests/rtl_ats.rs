//! PCIe ATS between the device and the IOMMU: a read that misses the ATC
//! sends a Translation Request, the Completion fills the ATC, a second read
//! hits without a Translation Request; a Completion overtaken by an
//! Invalidate Request for its page is discarded and requested again.

mod common;
use common::*;
use shootdown::rtl::{cmd_ats_inval, cmd_iotinval_vma, ProbeEntry};

const PASID: u32 = 9;
const MAX: u64 = 5_000;

/// Step until response `id`, counting the cycles in which the xlat probe
/// (slot 0) showed a translation in flight, and its rising edges.
fn wait_counting_inflight(s: &mut Sim, id: u8) -> (DevRsp, u64, u64) {
    let (mut cycles, mut edges, mut prev) = (0, 0, false);
    let start = s.cycle();
    while !s.responses.iter().any(|r| r.id == id) {
        assert!(s.cycle() - start < MAX, "watchdog: response {id}");
        s.step();
        let now = s.probe(0)[2].is_some();
        cycles += u64::from(now);
        edges += u64::from(now && !prev);
        prev = now;
    }
    let rsp = s.wait_response(id, 1);
    (rsp, cycles, edges)
}

#[test]
fn a_miss_fills_the_atc_and_the_next_read_hits_without_a_request() {
    let lat = 40;
    let mut s = Sim::new(2, lat);
    let va = 0x1234_5000;
    let pa = 0x7_7777_7000;
    s.map_4k(PASID, va, pa, true);
    s.write64(pa + 0x10, 0x5555);
    s.set_probe(0, PASID, va);
    s.step();
    assert_eq!(s.probe(0)[1], None, "ATC empty");

    let t0 = s.cycle();
    s.submit(1, false, PASID, va + 0x10, 0);
    let (r, inflight, edges) = wait_counting_inflight(&mut s, 1);
    let miss_latency = r.cycle - t0;
    assert_eq!((r.status, r.rdata, r.pa), (0, 0x5555, pa + 0x10));
    assert!(
        miss_latency > 2 * u64::from(lat),
        "a miss crosses the link twice: {miss_latency}"
    );
    assert_eq!(edges, 1, "one Translation Completion in flight");
    assert!(
        inflight >= u64::from(lat),
        "the Completion travels {lat} cycles: seen {inflight}"
    );
    // a read asks with No-Write: the Completion (and the ATC) has no W
    let want = ProbeEntry {
        ppn: pa >> 12,
        w: false,
        r: true,
        is_2m: false,
        is_1g: false,
    };
    assert_eq!(s.probe(0)[1], Some(want), "ATC filled");

    let t1 = s.cycle();
    s.submit(2, false, PASID, va + 0x10, 0);
    let (r, inflight, _) = wait_counting_inflight(&mut s, 2);
    assert_eq!((r.status, r.pa), (0, pa + 0x10));
    assert_eq!(inflight, 0, "no Translation Request on a hit");
    assert!(
        r.cycle - t1 < u64::from(lat),
        "a hit does not cross the link: {}",
        r.cycle - t1
    );
}

#[test]
fn a_completion_overtaken_by_an_invalidation_is_discarded_and_requested_again() {
    let lat = 60;
    let mut s = Sim::new(2, lat);
    let va = 0x2222_0000;
    let (old_pa, new_pa) = (0x1_0000_0000, 0x2_0000_0000);
    s.map_4k(PASID, va, old_pa, true);
    s.set_probe(0, PASID, va);
    s.submit(1, false, PASID, va, 0);
    // The Translation Request is on its way up; the CPU side remaps the page
    // and invalidates (IOMMU first, then the device) before it arrives.
    s.run(10);
    s.map_4k(PASID, va, new_pa, true);
    s.submit_cmds(&[
        cmd_iotinval_vma(Some(PASID), Some(va)),
        cmd_ats_inval(PASID, va, 4096),
    ]);
    let (r, _, edges) = wait_counting_inflight(&mut s, 1);
    assert_eq!(r.status, 0);
    assert_eq!(
        r.pa, new_pa,
        "the access uses the translation requested after the invalidation"
    );
    assert_eq!(
        edges, 2,
        "the first Completion was discarded and a second one requested"
    );
}

#[test]
fn a_2m_completion_fills_one_atc_entry_for_the_whole_region() {
    let mut s = Sim::new(2, 10);
    let va = 0x40_0000_0000;
    let pa = 0x8_0000_0000;
    s.map_2m(PASID, va, pa, true);
    s.read_wait(1, PASID, va + 0x3000, MAX);
    s.set_probe(0, PASID, va + 0x1f_f000);
    s.step();
    let e = s.probe(0)[1].expect("2 MiB ATC entry");
    assert!(e.is_2m);
    assert_eq!(e.ppn, (pa >> 12) + 0x1ff);
    let t = s.cycle();
    let r = s.read_wait(2, PASID, va + 0x1f_f008, MAX);
    assert_eq!(r.pa, pa + 0x1f_f008);
    assert!(r.cycle - t < 20, "hit in the 2 MiB entry");
}
