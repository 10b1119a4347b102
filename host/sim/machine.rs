//! The machine: physical memory, the Verilated RTL, and the host side of
//! every RTL port (memory, device requests, register writes, probes),
//! advanced one clock cycle at a time by [`Machine::tick`].
//!
//! The RTL is the first socket's (`shootdown_top`, docs/socket.md) or, in a
//! machine made by [`Machine::new_riscv`], the second's: a RISC-V IOMMU
//! specification design behind AXI4 ports (docs/socket-riscv.md,
//! [`RvSide`]). The rest of the simulator sees one machine either way: the
//! same memory and store order, device requests and responses, the device's
//! memory accesses, the command queue's tail and head.

use crate::mem::{MemError, Pfn, PhysMem, Word, PAGE_SHIFT};
use crate::riscv::axi::{AxiConfig, Reorder, Sample};
use crate::riscv::ctx::SatpMode;
use crate::riscv::driver::RvDriver;
use crate::riscv::machine::{DmaRequest, RvBus, RvError, RvHw, RvParams, RESP_OKAY};
use crate::riscv::regs as rv_regs;
use crate::rtl::{decode_probe, Model, PortsIn, PortsOut, ProbeEntry};
use std::collections::VecDeque;
use std::path::Path;

/// Number of probe slots the socket offers (docs/socket.md).
pub const PROBE_SLOTS: usize = 4;

/// Timing of the host side of the ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MachineParams {
    /// Frames of physical memory.
    pub frames: u64,
    /// Cycles from a memory request to its response, both ports.
    pub mem_latency: u64,
    /// The device memory port's latency (0: `mem_latency`).
    pub dev_mem_latency: u64,
    /// The IOMMU memory port's latency: page-table walks, command fetches,
    /// fence writes (0: `mem_latency`).
    pub iommu_mem_latency: u64,
    /// One-way latency of the ATS link, in cycles.
    pub ats_latency: u64,
    /// Bug-injection bits driven on `cfg_inject_i` (docs/socket.md "Bug
    /// injection", [`crate::rtl::INJECT_NAMES`]); 0 is the correct design.
    pub inject: u16,
    /// Check the RTL's SystemVerilog assertions (off: a run goes on past a
    /// broken invariant, for the checker to judge).
    pub assertions: bool,
    /// ATS invalidation timeout in cycles driven on `cfg_ats_timeout_i`
    /// (saturated to 32 bits); 0 = never time out.
    pub ats_timeout: u64,
    /// Extra cycles a switch between the IOMMU and the device holds each
    /// Translation Completion while Invalidate Requests pass it, driven on
    /// `cfg_ats_cpl_delay_i` (saturated to 16 bits); 0 = none, one ordered
    /// stream.
    pub ats_cpl_delay: u64,
    /// ATC entries in use, driven on `cfg_atc_entries_i` (saturated to 8
    /// bits); 0, or at least the ATC's size, = all.
    pub atc_entries: u64,
    /// IOTLB ways in use per set, driven on `cfg_iotlb_ways_i` (saturated to
    /// 8 bits); 0, or at least the IOTLB's ways, = all.
    pub iotlb_ways: u64,
    /// IOTLB sets in use, driven on `cfg_iotlb_sets_i` (saturated to 8
    /// bits; the RTL rounds it down to a power of two); 0, or at least the
    /// IOTLB's sets, = all.
    pub iotlb_sets: u64,
    /// ITags in use (the device's Invalidate Queue Depth as software
    /// programmed it), driven on `cfg_ats_itags_i` (saturated to 8 bits); 0,
    /// or at least the build's depth, = all.
    pub ats_itags: u64,
    /// The device's PCIe PRI, driven on `cfg_pri_limit_i`: the Page
    /// Requests it sends at most for one access (into the page-request
    /// queue of [`IommuLayout::pq_base`]); 0 = no PRI, a translation that
    /// does not grant the access ends it with a fault.
    pub pri_limit: u8,
}

impl Default for MachineParams {
    fn default() -> Self {
        MachineParams {
            frames: 4096,
            mem_latency: 40,
            dev_mem_latency: 0,
            iommu_mem_latency: 0,
            ats_latency: 150,
            inject: 0,
            assertions: true,
            ats_timeout: 0,
            ats_cpl_delay: 0,
            atc_entries: 0,
            iotlb_ways: 0,
            iotlb_sets: 0,
            ats_itags: 0,
            pri_limit: 0,
        }
    }
}

/// Where the host keeps the IOMMU's in-memory structures.
#[derive(Clone, Copy, Debug)]
pub struct IommuLayout {
    pub cq_base: u64,
    pub cq_log2n: u8,
    pub pasid_table: u64,
    /// The page-request queue (PRI, docs/socket.md): its ring's PA (4 KiB
    /// aligned, 16-byte records), 0 without PRI.
    pub pq_base: u64,
    /// log2 of the page-request queue's records (<= 8: one 4 KiB frame).
    pub pq_log2n: u8,
}

impl IommuLayout {
    /// Bind `pasid` to the address space whose top-level table is frame
    /// `pgd`: its PASID-table entry (docs/socket.md) is that table's
    /// address with the valid bit.
    pub fn bind(&self, mem: &mut PhysMem, pasid: u32, pgd: Pfn) -> Result<(), MemError> {
        mem.write(self.pasid_entry(pasid), (pgd << PAGE_SHIFT) | 1, 0)
    }

    /// Bind `pasid` to the kernel's page tables (root `pgd`) for
    /// supervisor requests: the entry's SRE bit (bit 1) set, as a
    /// supervisor-mode SVA binding (`SVM_FLAG_SUPERVISOR_MODE`) sets VT-d's.
    pub fn bind_supervisor(&self, mem: &mut PhysMem, pasid: u32, pgd: Pfn) -> Result<(), MemError> {
        mem.write(self.pasid_entry(pasid), (pgd << PAGE_SHIFT) | 0b11, 0)
    }

    /// The physical address of `pasid`'s PASID-table entry.
    pub fn pasid_entry(&self, pasid: u32) -> u64 {
        self.pasid_table + 8 * u64::from(pasid)
    }
}

/// A request from a device thread to the device's DMA engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevRequest {
    pub id: u8,
    pub pasid: u32,
    pub va: u64,
    pub write: bool,
    pub wdata: u64,
}

/// What the device answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevResponse {
    pub id: u8,
    pub cycle: u64,
    /// The access was not made (`dev_rsp_status_o` != 0).
    pub fault: bool,
    /// Of those, the device gave up (status 2): with PRI, each of its Page
    /// Requests was answered Success and the translation still did not
    /// grant the access.
    pub gave_up: bool,
    pub rdata: u64,
    pub pa: u64,
}

/// One access the device made to memory through its memory port: the
/// ground truth the checker judges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevMemAccess {
    pub cycle: u64,
    pub id: u8,
    pub pa: u64,
    pub write: bool,
    /// For a read, the word read; for a write, the word written.
    pub word: Word,
}

/// An access the RTL made outside memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusError {
    pub cycle: u64,
    pub port: &'static str,
    pub pa: u64,
}

#[derive(Default, Debug)]
struct MemPort {
    /// (cycle the response is due, read data)
    pending: VecDeque<(u64, u64)>,
}

impl MemPort {
    fn respond(&mut self, cycle: u64) -> Option<u64> {
        match self.pending.front() {
            Some(&(due, data)) if due <= cycle => {
                self.pending.pop_front();
                Some(data)
            }
            _ => None,
        }
    }
}

pub struct Machine {
    pub mem: PhysMem,
    /// The second socket, when it is the one in use (the first socket's
    /// model is then never stepped).
    rv: Option<Box<RvSide>>,
    model: Model,
    params: MachineParams,
    inp: PortsIn,
    out: PortsOut,
    cycle: u64,
    iommu_port: MemPort,
    dev_port: MemPort,
    dev_queue: VecDeque<DevRequest>,
    /// Skip cycles in which nothing happens ([`Machine::tick_upto`]); off
    /// with `SHOOTDOWN_EVAL_EVERY_CYCLE=1`, to check that skipping changes
    /// nothing (tests/idle_skip.rs).
    skip_idle: bool,
    probes: [Option<(u32, u64)>; PROBE_SLOTS],
    /// Global store order: the version the next store gets.
    next_version: u64,
    /// Filled by `tick`, drained by the caller.
    pub dev_responses: Vec<DevResponse>,
    pub dev_accesses: Vec<DevMemAccess>,
    pub bus_errors: Vec<BusError>,
}

impl Machine {
    /// Feed the machine's state into `h` (memory, the model, the ports'
    /// pending responses, the cycle); None when the model's state cannot
    /// be digested (its build keeps some on the heap).
    pub fn digest(&self, h: &mut crate::sim::digest::StateHasher) -> Option<()> {
        if let Some(rv) = &self.rv {
            rv.hw.digest(h)?;
            h.word(self.cycle);
            self.mem.digest(h);
            h.debug(&(
                &rv.writes,
                rv.on_port,
                rv.poll_csr,
                rv.head,
                rv.csr,
                rv.last_pa,
                &rv.contexts,
                rv.dc_at,
                self.next_version,
            ));
            return Some(());
        }
        let [a, b] = self.model.state_digest()?;
        h.word(a);
        h.word(b);
        h.word(self.cycle);
        self.mem.digest(h);
        h.debug(&(
            &self.inp,
            &self.out,
            &self.iommu_port,
            &self.dev_port,
            &self.dev_queue,
            &self.probes,
            self.next_version,
        ));
        h.debug(&(&self.dev_responses, &self.dev_accesses, &self.bus_errors));
        Some(())
    }

    pub fn new(params: MachineParams) -> Self {
        Machine {
            mem: PhysMem::new(params.frames),
            model: Model::new(),
            params,
            inp: PortsIn::default(),
            out: PortsOut::default(),
            cycle: 0,
            iommu_port: MemPort::default(),
            dev_port: MemPort::default(),
            dev_queue: VecDeque::new(),
            skip_idle: std::env::var_os("SHOOTDOWN_EVAL_EVERY_CYCLE").is_none_or(|v| v != "1"),
            probes: [None; PROBE_SLOTS],
            next_version: 1,
            dev_responses: Vec::new(),
            dev_accesses: Vec::new(),
            bus_errors: Vec::new(),
            rv: None,
        }
    }

    /// A machine whose RTL is the second socket's design; its memory ports
    /// answer after the same latencies as the first socket's, reads sampled
    /// as `mem` says, `mem.slow` on the IOMMU's port only (its answers then
    /// come when due, whatever the ID).
    pub fn new_riscv(params: MachineParams, mem: RvMemory) -> Result<Self, RvError> {
        let lat = |l: u64| if l == 0 { params.mem_latency } else { l };
        let sample = if mem.sample_on_request {
            Sample::OnRequest
        } else {
            Sample::OnResponse
        };
        let port = |latency| AxiConfig {
            latency,
            sample,
            ..AxiConfig::default()
        };
        let mut iommu = port(lat(params.iommu_mem_latency));
        if let Some(slow) = mem.slow {
            iommu.slow = Some(slow);
            iommu.reorder = Reorder::WhenDue;
        }
        let hw = RvHw::new(RvParams {
            frames: params.frames,
            mem: iommu,
            tx: port(lat(params.dev_mem_latency)),
            ..RvParams::default()
        })?;
        let mut m = Machine::new(params);
        m.rv = Some(Box::new(RvSide::new(hw)));
        Ok(m)
    }

    /// Where the host's driver starts writing the command queue after
    /// [`Machine::reset`]: 0, or past the second socket's bring-up commands.
    pub fn cq_start(&self) -> u32 {
        self.rv.as_ref().map_or(0, |rv| rv.start_tail)
    }

    /// Whether the RTL is the second socket's.
    pub fn is_riscv(&self) -> bool {
        self.rv.is_some()
    }

    /// The second socket: the physical address of `pasid`'s process
    /// context (in the process directory the bring-up wrote).
    pub fn process_context(&self, pasid: u32) -> Option<u64> {
        let rv = self.rv.as_ref()?;
        rv.contexts.iter().find(|c| c.0 == pasid).map(|c| c.1)
    }

    /// The second socket: whether the design's directory caches
    /// ([`crate::checker::ContextCache::ALL`] order) hold a context of the
    /// device, or of the bound PASID, that the directory no longer has
    /// (`tc.V`, `ta.V` clear in memory), as the probes showed them after
    /// the last cycle; `None` on the first socket.
    pub fn stale_context(&self) -> Option<[bool; 2]> {
        use crate::riscv::model::{DdtcProbe, PdtcProbe};
        let rv = self.rv.as_ref()?;
        let invalid = |at: u64| self.mem.read(at).is_ok_and(|w| w.value & 1 == 0);
        let ddtc = DdtcProbe::decode(rv.hw.ddtc_word).is_some() && rv.dc_at.is_some_and(invalid);
        let pdtc = PdtcProbe::decode(rv.hw.pdtc_word).is_some()
            && rv.contexts.first().is_some_and(|c| invalid(c.1));
        Some([ddtc, pdtc])
    }

    /// Bind `pasid` to the address space rooted at `pgd`, its tables in
    /// `format`: the first socket's PASID table entry; the second's process
    /// context (translating in `format`'s `iosatp` mode), written when
    /// [`Machine::reset`] brings the design up.
    pub fn bind(
        &mut self,
        layout: &IommuLayout,
        pasid: u32,
        pgd: Pfn,
        format: crate::mem::PtFormat,
    ) -> Result<(), MemError> {
        match &mut self.rv {
            Some(rv) => {
                rv.binds.push((pasid, pgd, format));
                Ok(())
            }
            None => layout.bind(&mut self.mem, pasid, pgd),
        }
    }

    /// Start the RTL's VCD; call before [`Machine::reset`] to see reset.
    pub fn trace_open(&mut self, path: &Path) -> Result<(), crate::rtl::RtlError> {
        match &mut self.rv {
            Some(rv) => {
                rv.hw
                    .model()
                    .trace_open(path)
                    .map_err(|_| crate::rtl::RtlError::TraceOpen {
                        path: path.to_path_buf(),
                    })
            }
            None => self.model.trace_open(path),
        }
    }

    pub fn trace_close(&mut self) {
        match &mut self.rv {
            Some(rv) => rv.hw.model().trace_close(),
            None => self.model.trace_close(),
        }
    }

    /// Program the configuration ports and hold reset for a few cycles.
    pub fn reset(&mut self, layout: IommuLayout) {
        if self.rv.is_some() {
            self.rv_reset(layout);
            return;
        }
        self.model.set_assertions(self.params.assertions);
        self.inp.cfg_cq_base = layout.cq_base;
        self.inp.cfg_cq_log2n = layout.cq_log2n;
        self.inp.cfg_pasid_table = layout.pasid_table;
        self.inp.cfg_ats_latency = self.params.ats_latency.clamp(1, u16::MAX as u64) as u16;
        self.inp.cfg_inject = self.params.inject;
        self.inp.cfg_ats_timeout = self.params.ats_timeout.min(u32::MAX as u64) as u32;
        self.inp.cfg_ats_cpl_delay = self.params.ats_cpl_delay.min(u16::MAX as u64) as u16;
        self.inp.cfg_atc_entries = self.params.atc_entries.min(u8::MAX as u64) as u8;
        self.inp.cfg_iotlb_ways = self.params.iotlb_ways.min(u8::MAX as u64) as u8;
        self.inp.cfg_iotlb_sets = self.params.iotlb_sets.min(u8::MAX as u64) as u8;
        self.inp.cfg_ats_itags = self.params.ats_itags.min(u8::MAX as u64) as u8;
        self.inp.cfg_pri_limit = self.params.pri_limit;
        self.inp.cfg_pq_base = layout.pq_base;
        self.inp.cfg_pq_log2n = layout.pq_log2n;
        self.inp.pq_head = 0;
        self.inp.cq_err_clear = 0;
        self.inp.iommu_mem_req_ready = 1;
        self.inp.dev_mem_req_ready = 1;
        self.inp.rst_ni = 0;
        for _ in 0..4 {
            self.tick();
        }
        self.inp.rst_ni = 1;
        self.tick();
    }

    /// An assertion the RTL reported, or the first access of a memory port
    /// outside physical memory (the run must stop: no frame answers it,
    /// and a design that sends one followed an address no table gave it).
    pub fn rtl_error(&self) -> Option<crate::rtl::RtlError> {
        match &self.rv {
            Some(rv) => rv.error.clone(),
            None => self.model.error().or_else(|| {
                self.bus_errors
                    .first()
                    .map(|b| crate::rtl::RtlError::Assertion {
                        cycle: b.cycle,
                        message: format!(
                            "bus error: the {} memory port accessed {:#x}, outside the machine's physical memory: no page table or queue the host wrote points there (a corrupt walk or a wrong PASID-table entry)",
                            b.port, b.pa
                        ),
                    })
            }),
        }
    }

    /// What the RTL's cover points counted so far (docs/socket.md, "Coverage").
    pub fn coverage(&self) -> crate::coverage::Coverage {
        match &self.rv {
            // the second socket's designs have no cover points here
            Some(_) => crate::coverage::Coverage::default(),
            None => crate::coverage::Coverage::of_model(&self.model),
        }
    }

    /// The cycle of the last rising edge.
    pub fn cycle(&self) -> u64 {
        self.cycle
    }

    pub fn outputs(&self) -> &PortsOut {
        &self.out
    }

    /// The software-owned command-queue tail register.
    /// (The second socket: a write of `cqt` on the register port, sent
    /// when the port is free.)
    pub fn set_cq_tail(&mut self, tail: u32) {
        match &mut self.rv {
            Some(rv) => rv.writes.push_back((rv_regs::CQT, tail)),
            None => self.inp.cq_tail = tail,
        }
    }

    /// (The second socket: `cqh` as the register port last read it; it
    /// reads `cqh` and `cqcsr` in turn whenever it has nothing to write,
    /// as a CPU spinning on the queue does.)
    pub fn cq_head(&self) -> u32 {
        match &self.rv {
            Some(rv) => rv.head,
            None => self.out.cq_head,
        }
    }

    /// The command queue's error flags (`cq_err_o`): bit 0 illegal command,
    /// bit 1 `cmd_to` (an ATS invalidation timed out; an IOFENCE.C waits on
    /// it), see [`crate::rtl::CQ_ERR_ILL`] / [`crate::rtl::CQ_ERR_CMD_TO`].
    pub fn cq_err(&self) -> u8 {
        match &self.rv {
            // cqcsr.cmd_ill: the bundled socket's illegal-command bit
            Some(rv) => u8::from(rv.csr & rv_regs::csr::CMD_ILL != 0),
            None => self.out.cq_err,
        }
    }

    /// The page-request queue's tail (`pq_tail_o`, RISC-V `pqt`): the
    /// IOMMU moves it on past each record it wrote. (The second socket: 0;
    /// the host refuses PRI there, its design has no page-request queue
    /// wired to the device.)
    pub fn pq_tail(&self) -> u32 {
        match &self.rv {
            Some(_) => 0,
            None => self.out.pq_tail,
        }
    }

    /// The software-owned page-request queue head (`pq_head_i`, RISC-V
    /// `pqh`): the records before it were read. (The second socket:
    /// nothing, as [`Machine::pq_tail`].)
    pub fn set_pq_head(&mut self, head: u32) {
        if self.rv.is_none() {
            self.inp.pq_head = head;
        }
    }

    /// A Page Request found the page-request queue full (`pq_ovf_o`,
    /// sticky until reset): the IOMMU answered it Success without a record.
    /// (The second socket: false, as [`Machine::pq_tail`].)
    pub fn pq_overflowed(&self) -> bool {
        match &self.rv {
            Some(_) => false,
            None => self.out.pq_ovf != 0,
        }
    }

    /// Write 1 to clear the error flags: drives `cq_err_clear_i` for one
    /// cycle, at the next [`Machine::tick`]; the flags read clear after it.
    pub fn clear_cq_err(&mut self) {
        self.inp.cq_err_clear = 1;
    }

    pub fn set_probe(&mut self, slot: usize, pasid: u32, vpn: u64) {
        if let Some(rv) = &mut self.rv {
            // the second socket's probes: its IOTLB, tagged by PSCID (the
            // bring-up gives each PASID its own value as PSCID)
            rv.hw.set_probe(slot, pasid, vpn);
            return;
        }
        self.probes[slot] = Some((pasid, vpn));
        let p = &mut self.inp.probes[slot];
        p.pasid = pasid;
        p.vpn = vpn;
    }

    /// What (IOTLB, ATC, in flight) hold for probe `slot` after this cycle.
    pub fn probe(&self, slot: usize) -> [Option<ProbeEntry>; 3] {
        if let Some(rv) = &self.rv {
            // the IOTLB only: no ATC, and no probe of a translation in flight
            let word = rv.hw.probe_words.get(slot).copied().unwrap_or(0);
            return [decode_probe(word), None, None];
        }
        let p = &self.out.probes[slot];
        [
            decode_probe(p.iotlb),
            decode_probe(p.atc),
            decode_probe(p.xlat),
        ]
    }

    /// Device `id` has a request queued that the device has not taken yet.
    pub fn dev_waiting(&self, id: u8) -> bool {
        match &self.rv {
            Some(rv) => rv.hw.dev.waiting(id),
            None => self.dev_queue.iter().any(|r| r.id == id),
        }
    }

    /// Queue a device request; it enters the device when its port is ready.
    /// (The second socket: an AXI read or write on `tr_` with the AXI ID
    /// `id`, the device's ID and the PASID as its process ID.)
    pub fn dev_submit(&mut self, req: DevRequest) {
        match &mut self.rv {
            Some(rv) => rv.hw.dma(DmaRequest {
                id: req.id,
                sid: RV_DEVICE_ID,
                ssid: Some(req.pasid),
                va: req.va,
                write: req.write.then_some(req.wdata),
            }),
            None => self.dev_queue.push_back(req),
        }
    }

    /// A store in the global store order; returns its version.
    pub fn store(&mut self, pa: u64, value: u64) -> Result<u64, MemError> {
        let v = self.next_version;
        self.mem.write(pa, value, v)?;
        self.next_version += 1;
        Ok(v)
    }

    /// One clock cycle: drive the inputs, step the RTL, serve what it asked.
    pub fn tick(&mut self) {
        if self.rv.is_some() {
            self.rv_tick();
            return;
        }
        let next = self.cycle + 1;
        // Responses due at this edge.
        match self.iommu_port.respond(next) {
            Some(d) => {
                self.inp.iommu_mem_rsp_valid = 1;
                self.inp.iommu_mem_rsp_rdata = d;
            }
            None => self.inp.iommu_mem_rsp_valid = 0,
        }
        match self.dev_port.respond(next) {
            Some(d) => {
                self.inp.dev_mem_rsp_valid = 1;
                self.inp.dev_mem_rsp_rdata = d;
            }
            None => self.inp.dev_mem_rsp_valid = 0,
        }
        // Device request: `ready` is a Moore output, so a request driven now
        // is taken at this edge.
        self.inp.dev_req_valid = 0;
        if self.out.dev_req_ready != 0 && self.inp.rst_ni != 0 {
            if let Some(r) = self.dev_queue.pop_front() {
                self.inp.dev_req_valid = 1;
                self.inp.dev_req_id = r.id;
                self.inp.dev_req_write = r.write as u8;
                self.inp.dev_req_pasid = r.pasid;
                self.inp.dev_req_va = r.va;
                self.inp.dev_req_wdata = r.wdata;
            }
        }
        self.out = *self.model.step(&self.inp);
        self.after_step(1);
    }

    /// Up to `max` clock cycles (at least 1), as many calls of
    /// [`Machine::tick`] would do them, in one evaluation when nothing
    /// happens in them: no memory response falls due, no device request is
    /// waiting, and the RTL's state comes out of the first cycle unchanged
    /// with nothing asked of the host ([`crate::rtl::Model::step_idle`]).
    /// Returns the cycles done; what the host sees after them is what it
    /// would see after as many ticks.
    pub fn tick_upto(&mut self, max: u64) -> u64 {
        if self.rv.is_some() {
            // no idle skipping for the second socket
            self.rv_tick();
            return 1;
        }
        let next = self.cycle + 1;
        let due = [&self.iommu_port, &self.dev_port]
            .into_iter()
            .filter_map(|p| p.pending.front().map(|&(d, _)| d))
            .min();
        let held = self.dev_queue.is_empty()
            && self.inp.cq_err_clear == 0
            && self.inp.rst_ni != 0
            && due.is_none_or(|d| d > next);
        if max <= 1 || !held || !self.skip_idle {
            self.tick();
            return 1;
        }
        // No response until `due`: cycles next .. due - 1 see none.
        let limit = due.map_or(max, |d| max.min(d - next));
        self.inp.iommu_mem_rsp_valid = 0;
        self.inp.dev_mem_rsp_valid = 0;
        self.inp.dev_req_valid = 0;
        let (out, n) = self.model.step_idle(&self.inp, limit);
        self.out = *out;
        self.after_step(n);
        n
    }

    /// After `n` cycles of which only the first could change anything:
    /// the one-cycle inputs drop, what the RTL asked is served.
    fn after_step(&mut self, n: u64) {
        self.inp.cq_err_clear = 0;
        self.cycle += n;
        self.serve_memory();
        if self.out.dev_rsp_valid != 0 {
            self.dev_responses.push(DevResponse {
                id: self.out.dev_rsp_id,
                cycle: self.cycle,
                fault: self.out.dev_rsp_status != 0,
                gave_up: self.out.dev_rsp_status == 2,
                rdata: self.out.dev_rsp_rdata,
                pa: self.out.dev_rsp_pa,
            });
        }
    }

    /// Requests seen after this edge are taken at the next one (ready is
    /// held high); the access is performed now and answered after the
    /// memory latency.
    fn serve_memory(&mut self) {
        let latency = |l: u64| match l {
            0 => self.params.mem_latency,
            l => l,
        };
        let due = self.cycle + 1 + latency(self.params.iommu_mem_latency);
        let dev_due = self.cycle + 1 + latency(self.params.dev_mem_latency);
        let o = self.out;
        if o.iommu_mem_req_valid != 0 && self.iommu_port.pending.is_empty() {
            let data = if o.iommu_mem_req_cas != 0 {
                // The walker's compare-and-swap of a leaf PTE (Accessed /
                // Dirty): one host action, so atomic against every CPU store;
                // answers the old value. Like every IOMMU write it is not
                // part of the program's store order (version 0).
                let addr = o.iommu_mem_req_addr;
                match self.mem.iommu_read(addr) {
                    Ok(w) => {
                        if w.value == o.iommu_mem_req_cmp
                            && self.mem.write(addr, o.iommu_mem_req_wdata, 0).is_err()
                        {
                            self.bus_error("iommu", addr);
                        }
                        w.value
                    }
                    Err(_) => {
                        self.bus_error("iommu", addr);
                        0
                    }
                }
            } else if o.iommu_mem_req_write != 0 {
                // The IOMMU writes fence completion words and page-request
                // records: not part of the program's store order.
                if self
                    .mem
                    .write(o.iommu_mem_req_addr, o.iommu_mem_req_wdata, 0)
                    .is_err()
                {
                    self.bus_error("iommu", o.iommu_mem_req_addr);
                }
                0
            } else {
                match self.mem.iommu_read(o.iommu_mem_req_addr) {
                    Ok(w) => w.value,
                    Err(_) => {
                        self.bus_error("iommu", o.iommu_mem_req_addr);
                        0
                    }
                }
            };
            self.iommu_port.pending.push_back((due, data));
        }
        if o.dev_mem_req_valid != 0 && self.dev_port.pending.is_empty() {
            let pa = o.dev_mem_req_addr;
            let write = o.dev_mem_req_write != 0;
            let result = if write {
                let v = self.next_version;
                self.mem.write(pa, o.dev_mem_req_wdata, v).map(|_| {
                    self.next_version += 1;
                    Word {
                        value: o.dev_mem_req_wdata,
                        version: v,
                    }
                })
            } else {
                self.mem.read(pa)
            };
            let data = match result {
                Ok(word) => {
                    self.dev_accesses.push(DevMemAccess {
                        cycle: self.cycle,
                        id: o.dev_mem_req_id,
                        pa,
                        write,
                        word,
                    });
                    if write {
                        0
                    } else {
                        word.value
                    }
                }
                Err(_) => {
                    self.bus_error("device", pa);
                    0
                }
            };
            self.dev_port.pending.push_back((dev_due, data));
        }
    }

    fn bus_error(&mut self, port: &'static str, pa: u64) {
        self.bus_errors.push(BusError {
            cycle: self.cycle,
            port,
            pa,
        });
    }
}

/// How the second socket's memory answers, beyond latency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RvMemory {
    /// Reads take their value when their address is accepted.
    pub sample_on_request: bool,
    /// (AXI ID, extra cycles) of the IOMMU port's slow requests.
    pub slow: Option<(u32, u64)>,
}

/// The device ID the second socket's device has (its device context's
/// index in the one-level device directory).
pub const RV_DEVICE_ID: u32 = 1;

/// The second socket in a [`Machine`]: the design, its register agent, and
/// the bindings to program at reset.
pub struct RvSide {
    hw: RvHw,
    /// (PASID, top-level table, its format) of each bound address space.
    binds: Vec<(u32, Pfn, crate::mem::PtFormat)>,
    /// (PASID, physical address of its process context) once brought up.
    contexts: Vec<(u32, u64)>,
    /// The physical address of the device's context once brought up.
    dc_at: Option<u64>,
    /// Register writes to send (offset, value), in order; when there are
    /// none the agent reads `cqh` and `cqcsr` in turn.
    writes: VecDeque<(u32, u32)>,
    /// The access on the register port: (offset, a write).
    on_port: Option<(u32, bool)>,
    /// Read `cqcsr` next (else `cqh`).
    poll_csr: bool,
    head: u32,
    csr: u32,
    /// The command queue's tail after bring-up (its own commands).
    start_tail: u32,
    /// The PA each AXI ID's last translated access went to (a response's
    /// frame).
    last_pa: [u64; 16],
    error: Option<crate::rtl::RtlError>,
}

impl RvSide {
    fn new(hw: RvHw) -> RvSide {
        RvSide {
            hw,
            binds: Vec::new(),
            contexts: Vec::new(),
            dc_at: None,
            writes: VecDeque::new(),
            on_port: None,
            poll_csr: false,
            head: 0,
            csr: 0,
            start_tail: 0,
            last_pa: [0; 16],
            error: None,
        }
    }
}

/// The machine's memory and the second socket, for the blocking register
/// accesses of bring-up.
struct RvBring<'a> {
    mem: &'a mut PhysMem,
    next_version: &'a mut u64,
    hw: &'a mut RvHw,
}

impl RvBus for RvBring<'_> {
    fn hw(&mut self) -> &mut RvHw {
        self.hw
    }

    fn hw_ref(&self) -> &RvHw {
        self.hw
    }

    fn mem(&mut self) -> &mut PhysMem {
        self.mem
    }

    fn tick(&mut self) -> Result<(), RvError> {
        self.hw.tick(self.mem, self.next_version)
    }

    fn store(&mut self, pa: u64, value: u64) -> Result<(), RvError> {
        let v = *self.next_version;
        *self.next_version += 1;
        self.mem.write(pa, value, v)?;
        Ok(())
    }
}

impl Machine {
    /// The second socket's reset and bring-up, as Linux's driver does it
    /// (host/riscv/driver.rs): reset held, the queues on (the command
    /// queue is `layout`'s ring, which the host's driver writes), a device
    /// directory, and the device attached with a process context per bound
    /// PASID (tagged with the PASID as its PSCID). A failure is the run's
    /// RTL error.
    fn rv_reset(&mut self, layout: IommuLayout) {
        let Some(rv) = self.rv.as_mut() else { return };
        let mut bus = RvBring {
            mem: &mut self.mem,
            next_version: &mut self.next_version,
            hw: &mut rv.hw,
        };
        let result = (|| {
            for _ in 0..8 {
                bus.tick()?;
            }
            bus.hw.release();
            bus.tick()?;
            let mut d =
                RvDriver::init_with(&mut bus, layout.cq_base >> PAGE_SHIFT, 1 << layout.cq_log2n)?;
            rv.contexts.clear();
            rv.dc_at = Some(d.dc_address(RV_DEVICE_ID)?);
            for &(pasid, pgd, format) in &rv.binds {
                let mode = SatpMode::of(format).ok_or_else(|| {
                    RvError::Setup(format!(
                        "{format:?} page tables on the RISC-V socket: use arch riscv-sv39 or riscv-sv48"
                    ))
                })?;
                let at = d.attach_sva(&mut bus, RV_DEVICE_ID, pasid, pasid, mode, pgd)?;
                rv.contexts.push((pasid, at));
            }
            if let Some(&(pasid, _, _)) = rv.binds.first() {
                bus.hw.set_pdtc_probe(RV_DEVICE_ID, pasid);
            }
            // the host's driver goes on from the bring-up's tail
            Ok::<u32, RvError>(d.tail as u32)
        })();
        self.cycle = rv.hw.cycle();
        match result {
            Ok(tail) => {
                rv.head = tail;
                rv.start_tail = tail;
            }
            Err(e) => {
                rv.error = Some(crate::rtl::RtlError::Assertion {
                    cycle: rv.hw.cycle(),
                    message: format!("bring-up of the RISC-V IOMMU failed: {e}"),
                })
            }
        }
    }

    /// One cycle of the second socket: the register agent, the design and
    /// its ports, then what the device did in the shapes the simulator reads.
    fn rv_tick(&mut self) {
        let Some(rv) = self.rv.as_mut() else { return };
        if rv.on_port.is_none() {
            if let Some((off, v)) = rv.writes.pop_front() {
                rv.hw.reg.start(off, Some(v));
                rv.on_port = Some((off, true));
            } else {
                let off = if rv.poll_csr {
                    rv_regs::CQCSR
                } else {
                    rv_regs::CQH
                };
                rv.poll_csr = !rv.poll_csr;
                rv.hw.reg.start(off, None);
                rv.on_port = Some((off, false));
            }
        }
        if let Err(e) = rv.hw.tick(&mut self.mem, &mut self.next_version) {
            if rv.error.is_none() {
                rv.error = Some(crate::rtl::RtlError::Assertion {
                    cycle: rv.hw.cycle(),
                    message: e.to_string(),
                });
            }
        }
        self.cycle = rv.hw.cycle();
        if let Some((data, resp)) = rv.hw.reg.take() {
            match rv.on_port.take() {
                Some((off, false)) if resp == RESP_OKAY && off == rv_regs::CQH => rv.head = data,
                Some((off, false)) if resp == RESP_OKAY && off == rv_regs::CQCSR => rv.csr = data,
                Some((off, w)) if resp != RESP_OKAY && rv.error.is_none() => {
                    rv.error = Some(crate::rtl::RtlError::Assertion {
                        cycle: self.cycle,
                        message: format!(
                            "the {} of register {off:#x} answered {resp} (not OKAY)",
                            if w { "write" } else { "read" }
                        ),
                    });
                }
                _ => {}
            }
        }
        for a in rv.hw.dev_accesses.drain(..) {
            rv.last_pa[(a.id & 0xf) as usize] = a.pa;
            self.dev_accesses.push(DevMemAccess {
                cycle: a.cycle,
                id: a.id as u8,
                pa: a.pa,
                write: a.write,
                word: a.word,
            });
        }
        for r in rv.hw.dev.responses.drain(..) {
            let fault = r.resp != RESP_OKAY;
            self.dev_responses.push(DevResponse {
                id: r.id,
                cycle: r.cycle,
                fault,
                gave_up: false,
                rdata: r.rdata,
                pa: if fault {
                    0
                } else {
                    rv.last_pa[usize::from(r.id & 0xf)]
                },
            });
        }
        for (port, v) in rv.hw.violations.drain(..) {
            if rv.error.is_none() {
                rv.error = Some(crate::rtl::RtlError::Assertion {
                    cycle: self.cycle,
                    message: format!("AXI4 protocol on {port}_: {v:?}"),
                });
            }
        }
    }
}
