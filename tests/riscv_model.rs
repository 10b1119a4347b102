//! The second socket driven cycle by cycle: the third-party RISC-V IOMMU
//! (or the design `SHOOTDOWN_RTL_RISCV` named at build time) brought up
//! through its register port as Linux's driver does, translating a DMA
//! device's requests through the host's Sv39 tables in memory, and
//! invalidated with the driver's IOTINVAL.VMA and IOFENCE.C. Skipped (with
//! a line saying so) in a build without a design.

use shootdown::mem::PAGE_SHIFT;
use shootdown::riscv::axi::{AxiConfig, Reorder, Sample};
use shootdown::riscv::ctx::SatpMode;
use shootdown::riscv::driver::RvDriver;
use shootdown::riscv::machine::{DmaRequest, DmaResponse, RvBus, RvMachine, RvParams, RESP_OKAY};
use shootdown::riscv::model;
use shootdown::riscv::model::{DdtcProbe, PdtcProbe};
use shootdown::riscv::sv::{self, pte, Sv};
use shootdown::rtl::decode_probe;

const DID: u32 = 3;
const PSCID: u32 = 0x21;
const VA: u64 = 0x4000_2000;

fn present() -> bool {
    if !model::present() {
        eprintln!("skipped: this build has no RISC-V IOMMU design (SHOOTDOWN_RTL_RISCV)");
    }
    model::present()
}

/// A machine brought up, a page table with `VA` mapped to a frame holding
/// `0x1111` at offset 0x10, and device `DID` attached to it.
fn setup(params: RvParams) -> (RvMachine, RvDriver, u64, u64) {
    let mut m = RvMachine::new(params).expect("the design comes out of reset");
    let mut d = RvDriver::init(&mut m).expect("bring-up");
    let root = m.mem.alloc().unwrap();
    let frame = m.mem.alloc().unwrap();
    let v = m.next_version();
    m.mem
        .write((frame << PAGE_SHIFT) + 0x10, 0x1111, v)
        .unwrap();
    sv::map(&mut m.mem, root, Sv::Sv39, VA, frame, 0, pte::USER_RW).unwrap();
    d.attach_paging(&mut m, DID, PSCID, SatpMode::Sv39, root)
        .expect("attach");
    (m, d, root, frame)
}

/// Device `DID` (no process ID) sends a read, or a write of `write`.
fn dma(m: &mut RvMachine, id: u8, va: u64, write: Option<u64>) {
    m.hw.dma(DmaRequest {
        id,
        sid: DID,
        ssid: None,
        va,
        write,
    });
}

fn read(m: &mut RvMachine, id: u8, va: u64) -> (u8, u64) {
    let before = m.hw.dev.responses.len();
    dma(m, id, va, None);
    m.run_until("the device's read", |m| m.hw.dev.responses.len() > before)
        .unwrap();
    let r = m.hw.dev.responses[before];
    (r.resp, r.rdata)
}

#[test]
fn the_design_translates_a_device_read_through_the_hosts_sv39_table() {
    if !present() {
        return;
    }
    let (mut m, d, _, frame) = setup(RvParams::default());
    assert_ne!(d.capabilities & shootdown::riscv::regs::caps::SV39, 0);
    let (resp, data) = read(&mut m, 1, VA + 0x10);
    assert_eq!((resp, data), (RESP_OKAY, 0x1111));
    // the design read that word of that frame on tx_, nothing else
    let pa = (frame << PAGE_SHIFT) + 0x10;
    assert_eq!(m.hw.dev_accesses.len(), 1, "{:?}", m.hw.dev_accesses);
    assert_eq!(m.hw.dev_accesses[0].pa, pa);
    assert!(!m.hw.dev_accesses[0].write);
    // it walked the table on mem_: three levels of Sv39
    assert!(m.hw.iommu_accesses.len() >= 3, "{:?}", m.hw.iommu_accesses);
    assert!(m.hw.violations.is_empty(), "{:?}", m.hw.violations);
}

/// Shared virtual addressing: the device's context points at a process
/// directory, and a request carrying process ID 5 is translated by that
/// process's table; the same address without a process ID faults.
#[test]
fn a_process_id_selects_the_process_context() {
    if !present() {
        return;
    }
    let mut m = RvMachine::new(RvParams::default()).unwrap();
    let mut d = RvDriver::init(&mut m).unwrap();
    let root = m.mem.alloc().unwrap();
    let frame = m.mem.alloc().unwrap();
    m.store((frame << PAGE_SHIFT) + 0x10, 0x5555).unwrap();
    sv::map(&mut m.mem, root, Sv::Sv39, VA, frame, 0, pte::USER_RW).unwrap();
    d.attach_sva(&mut m, DID, 5, PSCID, SatpMode::Sv39, root)
        .expect("attach with a process directory");
    let mut req = DmaRequest {
        id: 4,
        sid: DID,
        ssid: Some(5),
        va: VA + 0x10,
        write: None,
    };
    for (ssid, want_ok) in [(Some(5), true), (None, false)] {
        req.ssid = ssid;
        let n = m.hw.dev.responses.len();
        m.hw.dma(req);
        m.run_until("the response", |m| m.hw.dev.responses.len() > n)
            .unwrap();
        let r = m.hw.dev.responses[n];
        assert_eq!(r.resp == RESP_OKAY, want_ok, "{ssid:?}: {r:?}");
        if want_ok {
            assert_eq!(r.rdata, 0x5555);
            // the translated request keeps the device's AXI ID
            assert_eq!(m.hw.dev_accesses.last().map(|a| a.id), Some(4));
        }
    }
}

/// The wrapper's probe shows what the design's IOTLB holds: nothing before
/// a read, the frame (writable, 4 KiB) after it, nothing for another PSCID,
/// nothing after Linux's flush.
#[test]
fn the_probe_shows_the_iotlb_entry_until_the_flush() {
    if !present() {
        return;
    }
    let (mut m, mut d, _, frame) = setup(RvParams::default());
    m.hw.set_probe(0, PSCID, VA >> 12);
    m.hw.set_probe(1, PSCID + 1, VA >> 12);
    m.tick().unwrap();
    m.tick().unwrap();
    assert_eq!(
        decode_probe(m.hw.probe_words[0]),
        None,
        "nothing cached yet"
    );
    assert_eq!(read(&mut m, 1, VA + 0x10).1, 0x1111);
    m.tick().unwrap();
    let e = decode_probe(m.hw.probe_words[0]).expect("the IOTLB holds VA");
    assert_eq!(e.ppn, frame);
    assert!(e.w && e.r && !e.is_2m, "{e:?}");
    assert_eq!(m.hw.probe_words[1], 0, "another PSCID's probe sees nothing");
    d.flush(&mut m, PSCID, VA, VA + 0xfff).unwrap();
    m.tick().unwrap();
    assert_eq!(m.hw.probe_words[0], 0, "flushed");
}

#[test]
fn a_device_write_lands_in_the_mapped_frame() {
    if !present() {
        return;
    }
    let (mut m, _, _, frame) = setup(RvParams::default());
    let before = m.hw.dev.responses.len();
    dma(&mut m, 2, VA + 0x18, Some(0xabcd));
    m.run_until("the write's response", |m| {
        m.hw.dev.responses.len() > before
    })
    .unwrap();
    assert_eq!(m.hw.dev.responses[before].resp, RESP_OKAY);
    let w = m.mem.read((frame << PAGE_SHIFT) + 0x18).unwrap();
    assert_eq!(w.value, 0xabcd);
    assert!(w.version > 0, "a device store gets a store version");
}

#[test]
fn the_iotlb_keeps_the_old_page_until_linux_flushes_it() {
    if !present() {
        return;
    }
    let (mut m, mut d, root, _) = setup(RvParams::default());
    assert_eq!(read(&mut m, 1, VA + 0x10).1, 0x1111);
    // the CPU moves VA to a new frame holding 0x2222
    let new = m.mem.alloc().unwrap();
    let v = m.next_version();
    m.mem.write((new << PAGE_SHIFT) + 0x10, 0x2222, v).unwrap();
    sv::map(&mut m.mem, root, Sv::Sv39, VA, new, 0, pte::USER_RW).unwrap();
    // not flushed: the IOTLB still translates to the old frame
    assert_eq!(read(&mut m, 1, VA + 0x10).1, 0x1111, "the IOTLB caches");
    d.flush(&mut m, PSCID, VA, VA + 0xfff).expect("flush");
    assert_eq!(read(&mut m, 1, VA + 0x10).1, 0x2222, "flushed");
    assert!(m.hw.violations.is_empty(), "{:?}", m.hw.violations);
}

#[test]
fn an_unmapped_address_is_an_error_response() {
    if !present() {
        return;
    }
    let (mut m, _, _, _) = setup(RvParams::default());
    let (resp, data) = read(&mut m, 1, VA + 0x10_0000);
    assert_ne!(resp, RESP_OKAY, "a translation fault is not OKAY");
    assert_eq!(data, 0);
    assert!(m.hw.dev_accesses.is_empty(), "nothing reached memory");
}

/// Move `VA` to a new frame holding 0x2222 at offset 0x10, as the CPU
/// does in a COW break or a migration; returns the new frame.
fn remap(m: &mut RvMachine, root: u64) -> u64 {
    let new = m.mem.alloc().unwrap();
    let v = m.next_version();
    m.mem.write((new << PAGE_SHIFT) + 0x10, 0x2222, v).unwrap();
    sv::map(&mut m.mem, root, Sv::Sv39, VA, new, 0, pte::USER_RW).unwrap();
    new
}

/// The kernel frees the old frame and its next owner writes 0xdead there.
fn reuse(m: &mut RvMachine, old: u64) {
    assert_eq!(m.mem.put(old), Ok(true), "the old frame is freed");
    assert_eq!(m.mem.alloc(), Ok(old), "and handed to the next owner");
    let v = m.next_version();
    m.mem.write((old << PAGE_SHIFT) + 0x10, 0xdead, v).unwrap();
}

/// Finding (docs/socket-riscv.md, "Findings"): IOFENCE.C with PR completes
/// -- the queue head passes it and Linux's wait returns -- while a read the
/// IOMMU already translated is still outstanding on `tx_`; the kernel then
/// frees the page and the read returns its next owner's data. The
/// specification: PR asks that "all previous read requests from devices
/// that have already been processed by the IOMMU be committed to a global
/// ordering point" before the fence completes. The design:
/// rv_iommu_cq_handler.sv decodes IOFENCE.C without looking at PR/PW
/// ("TODO: Check PR and PW bits") and advances cqh when the command's last
/// beat is fetched. The memory here performs a read when it answers it
/// (`Sample::OnResponse`, 400 cycles): the ordering point is the response.
#[test]
fn finding_iofence_c_completes_while_a_translated_read_is_outstanding() {
    if !present() {
        return;
    }
    let params = RvParams {
        tx: AxiConfig {
            latency: 400,
            ..AxiConfig::default()
        },
        ..RvParams::default()
    };
    let (mut m, mut d, root, old) = setup(params);
    // the translation cached (one read, 400 cycles on tx_)
    assert_eq!(read(&mut m, 1, VA + 0x10).1, 0x1111);
    let n = m.hw.dev.responses.len();
    dma(&mut m, 1, VA + 0x10, None);
    let tx_reads = |m: &RvMachine| m.hw.requests.iter().filter(|r| r.0 == "tx").count();
    m.run_until("the read's translated request on tx_", |m| tx_reads(m) == 2)
        .unwrap();
    let translated = m.cycle();
    remap(&mut m, root);
    d.flush(&mut m, PSCID, VA, VA + 0xfff)
        .expect("the flush completes");
    let fenced = m.cycle();
    assert_eq!(
        m.hw.dev.responses.len(),
        n,
        "the read translated at {translated} is still outstanding when the fence completed at {fenced}"
    );
    reuse(&mut m, old);
    m.run_until("the read's response", |m| m.hw.dev.responses.len() > n)
        .unwrap();
    let r = m.hw.dev.responses[n];
    assert_eq!(
        (r.resp, r.rdata),
        (RESP_OKAY, 0xdead),
        "the device read the freed page's next owner's data at {}",
        r.cycle
    );
    assert!(fenced - translated < 400, "the fence did not wait for it");
}

/// The IOMMU's memory where an invalidation can overtake a walk: a read
/// takes its value when its address is accepted, and the reads of AXI ID
/// `slow_id` (0: the page-table walker, 1: the context walker) are answered
/// 300 cycles after the others.
fn racing_memory(slow_id: u32) -> RvParams {
    RvParams {
        mem: AxiConfig {
            latency: 20,
            reorder: Reorder::WhenDue,
            sample: Sample::OnRequest,
            slow: Some((slow_id, 300)),
            ..AxiConfig::default()
        },
        ..RvParams::default()
    }
}

/// Finding: a page-table walk that read the old PTE fills the IOTLB after
/// IOTINVAL.VMA and IOFENCE.C completed, so the device keeps using the old
/// page after Linux's flush returned. The specification: after IOTINVAL.VMA
/// and a completed IOFENCE.C, no translation from the old PTE may be used.
/// The design: the walker has no flush input and the IOTLB drops a refill
/// only when a flush is in the same cycle (rv_iommu_iotlb_sv39x4.sv,
/// "only update if a flush operation is not ongoing"). The memory here
/// reads a word when it accepts the request and the walker's reads (AXI ID
/// 0) take 300 cycles more than the queue's: the invalidation overtakes
/// the walk.
#[test]
fn finding_a_walk_that_read_the_old_pte_fills_the_iotlb_after_the_flush() {
    if !present() {
        return;
    }
    let (mut m, mut d, root, old) = setup(racing_memory(0));
    let leaf = sv::walk(&m.mem, root, Sv::Sv39, VA).unwrap().entry_pa;
    let n = m.hw.dev.responses.len();
    dma(&mut m, 1, VA + 0x10, None);
    let leaf_read = |m: &RvMachine| m.hw.requests.iter().any(|r| r.0 == "mem" && r.3 == leaf);
    m.run_until("the walk's read of the leaf PTE", leaf_read)
        .unwrap();
    remap(&mut m, root);
    d.flush(&mut m, PSCID, VA, VA + 0xfff)
        .expect("the flush completes");
    // the first read was ordered before the flush: the old page is right
    m.run_until("the first read", |m| m.hw.dev.responses.len() > n)
        .unwrap();
    assert_eq!(m.hw.dev.responses[n].rdata, 0x1111);
    reuse(&mut m, old);
    let (resp, data) = read(&mut m, 1, VA + 0x10);
    assert_eq!(
        (resp, data),
        (RESP_OKAY, 0xdead),
        "after the flush the device still translates to the old (now reused) frame"
    );
}

/// A machine brought up with device `DID` attached for shared virtual
/// addressing, process 5 translating `VA` (0x5555 at offset 0x10) by its
/// table; returns the driver and the process context's address. The
/// process-directory probe watches (`DID`, 5).
fn setup_sva(params: RvParams) -> (RvMachine, RvDriver, u64) {
    let mut m = RvMachine::new(params).unwrap();
    let mut d = RvDriver::init(&mut m).unwrap();
    let root = m.mem.alloc().unwrap();
    let frame = m.mem.alloc().unwrap();
    m.store((frame << PAGE_SHIFT) + 0x10, 0x5555).unwrap();
    sv::map(&mut m.mem, root, Sv::Sv39, VA, frame, 0, pte::USER_RW).unwrap();
    let pc_at = d
        .attach_sva(&mut m, DID, 5, PSCID, SatpMode::Sv39, root)
        .expect("attach with a process directory");
    m.hw.set_pdtc_probe(DID, 5);
    (m, d, pc_at)
}

const SVA_READ: DmaRequest = DmaRequest {
    id: 4,
    sid: DID,
    ssid: Some(5),
    va: VA + 0x10,
    write: None,
};

fn sva_read(m: &mut RvMachine) -> DmaResponse {
    let n = m.hw.dev.responses.len();
    m.hw.dma(SVA_READ);
    m.run_until("the device's read", |m| m.hw.dev.responses.len() > n)
        .unwrap();
    m.hw.dev.responses[n]
}

/// Detaching a process (its context invalid, IODIR.INVAL_PDT, IOTINVAL.VMA
/// of the PSCID, IOFENCE.C) empties the process-directory cache's entry,
/// which the probe shows, and the process's next request faults.
#[test]
fn a_detached_process_faults_and_leaves_the_pdtc() {
    if !present() {
        return;
    }
    let (mut m, mut d, pc_at) = setup_sva(RvParams::default());
    assert_eq!(
        PdtcProbe::decode(m.hw.pdtc_word),
        None,
        "nothing cached yet"
    );
    let r = sva_read(&mut m);
    assert_eq!((r.resp, r.rdata), (RESP_OKAY, 0x5555));
    let cached = PdtcProbe::decode(m.hw.pdtc_word).expect("the walk cached the context");
    assert_eq!(cached.pscid, PSCID);
    d.detach_process(&mut m, DID, 5, PSCID, pc_at).unwrap();
    assert_eq!(
        PdtcProbe::decode(m.hw.pdtc_word),
        None,
        "IODIR.INVAL_PDT emptied it"
    );
    let r = sva_read(&mut m);
    assert_ne!(
        r.resp, RESP_OKAY,
        "a detached process's request faults: {r:?}"
    );
}

/// Finding: a process-context walk that read the context before the
/// driver cleared it fills the process-directory cache after
/// IODIR.INVAL_PDT and IOFENCE.C completed, so the detached process's
/// requests are still translated. The specification: IODIR.INVAL_PDT
/// "guarantees that any previous stores made by a RISC-V hart to the PDT
/// are observed before all subsequent implicit reads from IOMMU to PDT",
/// and IOFENCE.C that the invalidations before it are done. The design:
/// rv_iommu_pdtc.sv drops an update only when a flush is in the same cycle
/// (the `update_flush` block's else-if chain), and the context walker
/// (rv_iommu_cdw_pc.sv) has no input that tells it a flush happened. The
/// context walker's reads (AXI ID 1) take 300 cycles more here, and the
/// memory reads a word when it accepts the request.
#[test]
fn finding_a_context_walk_fills_the_pdtc_after_iodir_inval_pdt() {
    if !present() {
        return;
    }
    let (mut m, mut d, pc_at) = setup_sva(racing_memory(1));
    let n = m.hw.dev.responses.len();
    m.hw.dma(SVA_READ);
    let pc_read = |m: &RvMachine| m.hw.requests.iter().any(|r| r.0 == "mem" && r.3 == pc_at);
    m.run_until("the context walk's read of the process context", pc_read)
        .unwrap();
    d.detach_process(&mut m, DID, 5, PSCID, pc_at)
        .expect("the detach completes");
    let fenced = m.cycle();
    assert_eq!(
        PdtcProbe::decode(m.hw.pdtc_word),
        None,
        "empty when the fence completed"
    );
    m.run_until("the first read", |m| m.hw.dev.responses.len() > n)
        .unwrap();
    let filled = PdtcProbe::decode(m.hw.pdtc_word);
    assert_eq!(
        filled.map(|p| p.pscid),
        Some(PSCID),
        "the walk begun before the detach filled the cache after the fence ({fenced})"
    );
    let r = sva_read(&mut m);
    assert_eq!(
        (r.resp, r.rdata),
        (RESP_OKAY, 0x5555),
        "the detached process's request is still translated at {}",
        r.cycle
    );
}

/// Detaching a device (its context's V cleared, IODIR.INVAL_DDT, a sync:
/// the first half of Linux's `riscv_iommu_iodir_update`) empties the
/// device-directory cache's entry, which the probe shows, and the device's
/// next request faults.
#[test]
fn a_detached_device_faults_and_leaves_the_ddtc() {
    if !present() {
        return;
    }
    let (mut m, mut d, _) = setup_sva(RvParams::default());
    assert_eq!(
        DdtcProbe::decode(m.hw.ddtc_word),
        None,
        "nothing cached yet"
    );
    assert_eq!(sva_read(&mut m).resp, RESP_OKAY);
    let cached = DdtcProbe::decode(m.hw.ddtc_word).expect("the walk cached the context");
    assert!(cached.valid_context);
    d.detach_device(&mut m, DID).unwrap();
    assert_eq!(
        DdtcProbe::decode(m.hw.ddtc_word),
        None,
        "IODIR.INVAL_DDT emptied it"
    );
    let r = sva_read(&mut m);
    assert_ne!(
        r.resp, RESP_OKAY,
        "a detached device's request faults: {r:?}"
    );
}

/// Finding: the same race in the device-directory cache. A context walk
/// whose read of the device context was answered before the detach cleared
/// it fills the DDTC after IODIR.INVAL_DDT and IOFENCE.C, and the detached
/// device's requests are still translated. The design: rv_iommu_ddtc.sv
/// drops an update only when a flush is in the same cycle (`update_flush`:
/// the update is the `else if` of the flush); the context walker has no
/// input that tells it an IODIR ran.
#[test]
fn finding_a_context_walk_fills_the_ddtc_after_iodir_inval_ddt() {
    if !present() {
        return;
    }
    let (mut m, mut d, _) = setup_sva(racing_memory(1));
    let dc_at = d.dc_address(DID).unwrap();
    let n = m.hw.dev.responses.len();
    m.hw.dma(SVA_READ);
    let dc_read = |m: &RvMachine| m.hw.requests.iter().any(|r| r.0 == "mem" && r.3 == dc_at);
    m.run_until("the context walk's read of the device context", dc_read)
        .unwrap();
    d.detach_device(&mut m, DID).expect("the detach completes");
    let fenced = m.cycle();
    assert_eq!(
        DdtcProbe::decode(m.hw.ddtc_word),
        None,
        "empty when the fence completed"
    );
    m.run_until("the first read", |m| m.hw.dev.responses.len() > n)
        .unwrap();
    assert!(
        DdtcProbe::decode(m.hw.ddtc_word).is_some_and(|p| p.valid_context),
        "the walk begun before the detach filled the cache after the fence ({fenced})"
    );
    let r = sva_read(&mut m);
    assert_eq!(
        (r.resp, r.rdata),
        (RESP_OKAY, 0x5555),
        "the detached device's request is still translated at {}",
        r.cycle
    );
}
