//! The machine: physical memory, the Verilated RTL, and the host side of
//! every RTL port (memory, device requests, register writes, probes),
//! advanced one clock cycle at a time by [`Machine::tick`].

use crate::mem::{MemError, Pfn, PhysMem, Word, PAGE_SHIFT};
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
        }
    }
}

/// Where the host keeps the IOMMU's in-memory structures.
#[derive(Clone, Copy, Debug)]
pub struct IommuLayout {
    pub cq_base: u64,
    pub cq_log2n: u8,
    pub pasid_table: u64,
}

impl IommuLayout {
    /// Bind `pasid` to the address space whose top-level table is frame
    /// `pgd`: its PASID-table entry (docs/socket.md) is that table's
    /// address with the valid bit.
    pub fn bind(&self, mem: &mut PhysMem, pasid: u32, pgd: Pfn) -> Result<(), MemError> {
        mem.write(
            self.pasid_table + 8 * u64::from(pasid),
            (pgd << PAGE_SHIFT) | 1,
            0,
        )
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
    pub fault: bool,
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
        }
    }

    /// Start the RTL's VCD; call before [`Machine::reset`] to see reset.
    pub fn trace_open(&mut self, path: &Path) -> Result<(), crate::rtl::RtlError> {
        self.model.trace_open(path)
    }

    pub fn trace_close(&mut self) {
        self.model.trace_close();
    }

    /// Program the configuration ports and hold reset for a few cycles.
    pub fn reset(&mut self, layout: IommuLayout) {
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

    /// An assertion the RTL reported (the run must stop).
    pub fn rtl_error(&self) -> Option<crate::rtl::RtlError> {
        self.model.error()
    }

    /// What the RTL's cover points counted so far (docs/socket.md, "Coverage").
    pub fn coverage(&self) -> crate::coverage::Coverage {
        crate::coverage::Coverage::of_model(&self.model)
    }

    /// The cycle of the last rising edge.
    pub fn cycle(&self) -> u64 {
        self.cycle
    }

    pub fn outputs(&self) -> &PortsOut {
        &self.out
    }

    /// The software-owned command-queue tail register.
    pub fn set_cq_tail(&mut self, tail: u32) {
        self.inp.cq_tail = tail;
    }

    pub fn cq_head(&self) -> u32 {
        self.out.cq_head
    }

    /// The command queue's error flags (`cq_err_o`): bit 0 illegal command,
    /// bit 1 `cmd_to` (an ATS invalidation timed out; an IOFENCE.C waits on
    /// it), see [`crate::rtl::CQ_ERR_ILL`] / [`crate::rtl::CQ_ERR_CMD_TO`].
    pub fn cq_err(&self) -> u8 {
        self.out.cq_err
    }

    /// Write 1 to clear the error flags: drives `cq_err_clear_i` for one
    /// cycle, at the next [`Machine::tick`]; the flags read clear after it.
    pub fn clear_cq_err(&mut self) {
        self.inp.cq_err_clear = 1;
    }

    pub fn set_probe(&mut self, slot: usize, pasid: u32, vpn: u64) {
        self.probes[slot] = Some((pasid, vpn));
        let p = &mut self.inp.probes[slot];
        p.pasid = pasid;
        p.vpn = vpn;
    }

    /// What (IOTLB, ATC, in flight) hold for probe `slot` after this cycle.
    pub fn probe(&self, slot: usize) -> [Option<ProbeEntry>; 3] {
        let p = &self.out.probes[slot];
        [
            decode_probe(p.iotlb),
            decode_probe(p.atc),
            decode_probe(p.xlat),
        ]
    }

    /// Device `id` has a request queued that the device has not taken yet.
    pub fn dev_waiting(&self, id: u8) -> bool {
        self.dev_queue.iter().any(|r| r.id == id)
    }

    /// Queue a device request; it enters the device when its port is ready.
    pub fn dev_submit(&mut self, req: DevRequest) {
        self.dev_queue.push_back(req);
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
                match self.mem.read(addr) {
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
                // The IOMMU writes fence completion words: not part of the
                // program's store order.
                if self
                    .mem
                    .write(o.iommu_mem_req_addr, o.iommu_mem_req_wdata, 0)
                    .is_err()
                {
                    self.bus_error("iommu", o.iommu_mem_req_addr);
                }
                0
            } else {
                match self.mem.read(o.iommu_mem_req_addr) {
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
