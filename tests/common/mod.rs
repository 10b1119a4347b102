//! Small harness for the FFI tests: a word memory serving both memory ports
//! with a fixed latency, x86-64 page-table writers, the command queue, and
//! device requests with a watchdog.
#![allow(dead_code)]

use shootdown::rtl::{decode_probe, Model, PortsIn, PortsOut, ProbeEntry, RtlError};
use std::collections::{HashMap, VecDeque};

pub const CQ_BASE: u64 = 0x10_0000;
pub const CQ_LOG2N: u8 = 6;
pub const PASID_TABLE: u64 = 0x20_0000;
/// Page-table frames are allocated from here up.
pub const PT_POOL: u64 = 0x100_0000;
/// Where tests point IOFENCE.C completion writes.
pub const FENCE_ADDR: u64 = 0x30_0000;

pub const P: u64 = 1 << 0;
pub const RW: u64 = 1 << 1;
pub const US: u64 = 1 << 2;
pub const A: u64 = 1 << 5;
pub const D: u64 = 1 << 6;
pub const PS: u64 = 1 << 7;

/// One response of the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevRsp {
    pub cycle: u64,
    pub id: u8,
    pub status: u8,
    pub rdata: u64,
    pub pa: u64,
}

/// One access of a memory port, logged when the request is seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemAccess {
    pub cycle: u64,
    pub addr: u64,
    pub write: bool,
    /// Read: the word read; write: the word written; CAS: the new value.
    pub data: u64,
    pub id: u8,
    /// A compare-and-swap (IOMMU port only): `cmp` expected, `old` found
    /// (it won iff `old == cmp`).
    pub cas: bool,
    pub cmp: u64,
    pub old: u64,
}

impl MemAccess {
    /// A CAS that found the expected value and wrote `data`.
    pub fn cas_won(&self) -> bool {
        self.cas && self.old == self.cmp
    }
}

#[derive(Default)]
struct Port {
    /// (cycle of the edge the response is applied to, read data)
    pending: VecDeque<(u64, u64)>,
}

pub struct Sim {
    pub model: Model,
    pub inp: PortsIn,
    pub out: PortsOut,
    pub mem: HashMap<u64, u64>,
    /// Cycles from the edge that takes an IOMMU memory request to the edge
    /// its response is applied to (>= 1).
    pub iommu_latency: u64,
    /// The same for the device memory port.
    pub dev_latency: u64,
    iommu: Port,
    dev: Port,
    dev_queue: VecDeque<(u8, bool, u32, u64, u64)>,
    pub iommu_log: Vec<MemAccess>,
    pub dev_log: Vec<MemAccess>,
    pub responses: Vec<DevRsp>,
    /// CPU stores to perform just before the next IOMMU compare-and-swap is
    /// served, in order (address, value): a CPU changing the tables between
    /// the walker's read of a leaf and its CAS.
    pub before_cas: VecDeque<(u64, u64)>,
    next_frame: u64,
    tail: u32,
    /// Record a failed RTL assertion instead of panicking on it
    /// ([`Sim::record_assertions`]).
    record_assertions: bool,
}

/// A failed RTL assertion: the cycle it fired in and the runtime message,
/// which names it by instance path (`... Assertion failed in
/// TOP.shootdown_top.u_iommu.u_iotlb.InvalComplete_A: 'assert' failed.`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fired {
    pub cycle: u64,
    pub message: String,
}

impl Fired {
    /// Does the message name `assertion` (e.g. `"u_iotlb.InvalComplete_A"`)?
    pub fn names(&self, assertion: &str) -> bool {
        self.message.contains(&format!("{assertion}:"))
    }
}

impl Sim {
    /// A reset model: memory latency `mem_latency` (>= 1) cycles, ATS link
    /// latency `ats_latency` cycles each way.
    pub fn new(mem_latency: u64, ats_latency: u16) -> Sim {
        Sim::with_inject(mem_latency, ats_latency, 0)
    }

    /// [`Sim::new`] with `cfg_inject_i` = `inject` (bug-injection bits,
    /// `shootdown::rtl::Inject`), held from reset on.
    pub fn with_inject(mem_latency: u64, ats_latency: u16, inject: u16) -> Sim {
        Sim::with_timeout(mem_latency, ats_latency, inject, 0)
    }

    /// [`Sim::with_inject`] with `cfg_ats_timeout_i` = `ats_timeout` cycles
    /// (0: never time out), held from reset on.
    pub fn with_timeout(mem_latency: u64, ats_latency: u16, inject: u16, ats_timeout: u32) -> Sim {
        Sim::with_cfg(mem_latency, ats_latency, |p| {
            p.cfg_inject = inject;
            p.cfg_ats_timeout = ats_timeout;
        })
    }

    /// [`Sim::new`] with the configuration inputs `cfg` sets (on top of the
    /// queue, PASID table and link latency), held from reset on: e.g.
    /// `|p| p.cfg_ats_cpl_delay = 200`.
    pub fn with_cfg(mem_latency: u64, ats_latency: u16, cfg: impl FnOnce(&mut PortsIn)) -> Sim {
        let mut s = Sim {
            model: Model::new(),
            inp: PortsIn::default(),
            out: PortsOut::default(),
            mem: HashMap::new(),
            iommu_latency: mem_latency.max(1),
            dev_latency: mem_latency.max(1),
            iommu: Port::default(),
            dev: Port::default(),
            dev_queue: VecDeque::new(),
            iommu_log: Vec::new(),
            dev_log: Vec::new(),
            responses: Vec::new(),
            before_cas: VecDeque::new(),
            next_frame: PT_POOL,
            tail: 0,
            record_assertions: false,
        };
        s.inp.cfg_cq_base = CQ_BASE;
        s.inp.cfg_cq_log2n = CQ_LOG2N;
        s.inp.cfg_pasid_table = PASID_TABLE;
        s.inp.cfg_ats_latency = ats_latency;
        cfg(&mut s.inp);
        s.inp.iommu_mem_req_ready = 1;
        s.inp.dev_mem_req_ready = 1;
        s.inp.rst_ni = 0;
        for _ in 0..4 {
            s.step();
        }
        s.inp.rst_ni = 1;
        s.step();
        s
    }

    pub fn cycle(&self) -> u64 {
        self.model.cycle()
    }

    // Setters of the configuration inputs added after the reset ones. The
    // socket holds configuration constant after reset, so call them before
    // any traffic; the top registers them, so they apply from the next step
    // on (each setter takes that step).

    /// `cfg_ats_cpl_delay_i`: extra cycles the switch holds each Translation
    /// Completion while Invalidate Requests pass it (0: one ordered stream).
    pub fn set_ats_cpl_delay(&mut self, cycles: u16) {
        self.inp.cfg_ats_cpl_delay = cycles;
        self.step();
    }

    /// `cfg_atc_entries_i`: ATC entries in use (0: all).
    pub fn set_atc_entries(&mut self, n: u8) {
        self.inp.cfg_atc_entries = n;
        self.step();
    }

    /// `cfg_iotlb_ways_i`: IOTLB ways in use per set (0: all).
    pub fn set_iotlb_ways(&mut self, n: u8) {
        self.inp.cfg_iotlb_ways = n;
        self.step();
    }

    /// `cfg_iotlb_sets_i`: IOTLB sets in use, rounded down to a power of two
    /// (0: all).
    pub fn set_iotlb_sets(&mut self, n: u8) {
        self.inp.cfg_iotlb_sets = n;
        self.step();
    }

    /// `cfg_ats_itags_i`: ITags in use, the device's Invalidate Queue Depth
    /// as software programmed it (0: all).
    pub fn set_ats_itags(&mut self, n: u8) {
        self.inp.cfg_ats_itags = n;
        self.step();
    }

    /// Check the RTL's SystemVerilog assertions (on after [`Sim::new`]) or
    /// not: off, a run with an injected bug goes on past the invariant it
    /// breaks, so a test can look at what the bug does.
    pub fn set_assertions(&mut self, on: bool) {
        self.model.set_assertions(on);
    }

    /// Keep the assertions on but do not panic when one fails: the run goes
    /// on (the model's behaviour does not depend on them) and
    /// [`Sim::fired`] tells which failed first, and when.
    pub fn record_assertions(&mut self) {
        self.model.set_assertions(true);
        self.record_assertions = true;
    }

    /// The first assertion failure of the run (the failures of that cycle,
    /// if several), or None.
    pub fn fired(&self) -> Option<Fired> {
        match self.model.error()? {
            RtlError::Assertion { cycle, message } => Some(Fired { cycle, message }),
            e => panic!("not an assertion: {e}"),
        }
    }

    /// Software's write-1-to-clear of `cq_err` bits 1:0: drive
    /// `cq_err_clear_i` for one cycle.
    pub fn clear_cq_err(&mut self) {
        self.inp.cq_err_clear = 1;
        self.step();
        self.inp.cq_err_clear = 0;
    }

    /// One cycle: responses due, a queued device request if the port is
    /// ready, the RTL step, then serve requests seen after the edge.
    pub fn step(&mut self) {
        let next = self.model.cycle() + 1;
        let (v, d) = respond(&mut self.iommu, next);
        self.inp.iommu_mem_rsp_valid = v;
        self.inp.iommu_mem_rsp_rdata = d;
        let (v, d) = respond(&mut self.dev, next);
        self.inp.dev_mem_rsp_valid = v;
        self.inp.dev_mem_rsp_rdata = d;
        self.inp.dev_req_valid = 0;
        if self.out.dev_req_ready != 0 && self.inp.rst_ni != 0 {
            if let Some((id, write, pasid, va, wdata)) = self.dev_queue.pop_front() {
                self.inp.dev_req_valid = 1;
                self.inp.dev_req_id = id;
                self.inp.dev_req_write = u8::from(write);
                self.inp.dev_req_pasid = pasid;
                self.inp.dev_req_va = va;
                self.inp.dev_req_wdata = wdata;
            }
        }
        self.out = *self.model.step(&self.inp);
        if !self.record_assertions {
            if let Some(e) = self.model.error() {
                panic!("{e}");
            }
        }
        self.serve();
        if self.out.dev_rsp_valid != 0 {
            self.responses.push(DevRsp {
                cycle: self.cycle(),
                id: self.out.dev_rsp_id,
                status: self.out.dev_rsp_status,
                rdata: self.out.dev_rsp_rdata,
                pa: self.out.dev_rsp_pa,
            });
        }
    }

    /// A request seen now is taken at the next edge (ready is high) and
    /// answered the port's latency in edges after that.
    fn serve(&mut self) {
        let cycle = self.cycle();
        let o = self.out;
        if o.iommu_mem_req_valid != 0 && self.iommu.pending.is_empty() {
            let (addr, write, cas) = (
                o.iommu_mem_req_addr,
                o.iommu_mem_req_write != 0,
                o.iommu_mem_req_cas != 0,
            );
            let (data, logged, old) = if cas {
                if let Some((a, v)) = self.before_cas.pop_front() {
                    self.write64(a, v);
                }
                // atomic: one host action
                let old = self.read64(addr);
                if old == o.iommu_mem_req_cmp {
                    self.write64(addr, o.iommu_mem_req_wdata);
                }
                (old, o.iommu_mem_req_wdata, old)
            } else {
                let d = self.access(addr, write, o.iommu_mem_req_wdata);
                (d, if write { o.iommu_mem_req_wdata } else { d }, 0)
            };
            self.iommu_log.push(MemAccess {
                cycle,
                addr,
                write,
                data: logged,
                id: 0,
                cas,
                cmp: o.iommu_mem_req_cmp,
                old,
            });
            self.iommu
                .pending
                .push_back((cycle + 1 + self.iommu_latency.max(1), data));
        }
        if o.dev_mem_req_valid != 0 && self.dev.pending.is_empty() {
            let data = self.access(
                o.dev_mem_req_addr,
                o.dev_mem_req_write != 0,
                o.dev_mem_req_wdata,
            );
            self.dev_log.push(MemAccess {
                cycle,
                addr: o.dev_mem_req_addr,
                write: o.dev_mem_req_write != 0,
                data: if o.dev_mem_req_write != 0 {
                    o.dev_mem_req_wdata
                } else {
                    data
                },
                id: o.dev_mem_req_id,
                cas: false,
                cmp: 0,
                old: 0,
            });
            self.dev
                .pending
                .push_back((cycle + 1 + self.dev_latency.max(1), data));
        }
    }

    fn access(&mut self, addr: u64, write: bool, wdata: u64) -> u64 {
        if write {
            self.mem.insert(addr, wdata);
            0
        } else {
            self.mem.get(&addr).copied().unwrap_or(0)
        }
    }

    pub fn read64(&self, addr: u64) -> u64 {
        self.mem.get(&addr).copied().unwrap_or(0)
    }

    pub fn write64(&mut self, addr: u64, v: u64) {
        self.mem.insert(addr, v);
    }

    /// Step until `cond` holds; panic after `max` cycles.
    pub fn run_until(&mut self, what: &str, max: u64, mut cond: impl FnMut(&Sim) -> bool) {
        let start = self.cycle();
        while !cond(self) {
            if self.cycle() - start >= max {
                panic!(
                    "watchdog: {what} did not happen within {max} cycles (now cycle {})",
                    self.cycle()
                );
            }
            self.step();
        }
    }

    pub fn run(&mut self, cycles: u64) {
        for _ in 0..cycles {
            self.step();
        }
    }

    // -----------------------------------------------------------------
    // Page tables (x86-64, 4 levels)
    // -----------------------------------------------------------------

    fn alloc_frame(&mut self) -> u64 {
        let f = self.next_frame;
        self.next_frame += 0x1000;
        f
    }

    /// PML4 of `pasid`, created (and entered in the PASID table) on demand.
    pub fn root(&mut self, pasid: u32) -> u64 {
        let slot = PASID_TABLE + u64::from(pasid) * 8;
        let e = self.read64(slot);
        if e & 1 != 0 {
            return e & 0x000f_ffff_ffff_f000;
        }
        let f = self.alloc_frame();
        self.write64(slot, f | 1);
        f
    }

    /// Walk to the table at `level` (3 = PML4 .. 0 = PT) for `va`, creating
    /// missing tables; returns the address of the entry at `level`.
    fn entry_addr(&mut self, pasid: u32, va: u64, level: u32) -> u64 {
        let mut table = self.root(pasid);
        let mut l = 3;
        loop {
            let idx = (va >> (12 + 9 * l)) & 0x1ff;
            let slot = table + idx * 8;
            if l == level {
                return slot;
            }
            let e = self.read64(slot);
            table = if e & P != 0 {
                e & 0x000f_ffff_ffff_f000
            } else {
                let f = self.alloc_frame();
                self.write64(slot, f | P | RW | US);
                f
            };
            l -= 1;
        }
    }

    /// Map the 4 KiB page of `va` to `pa`.
    pub fn map_4k(&mut self, pasid: u32, va: u64, pa: u64, writable: bool) {
        let slot = self.entry_addr(pasid, va, 0);
        let rw = if writable { RW } else { 0 };
        self.write64(slot, (pa & !0xfff) | P | US | A | D | rw);
    }

    /// Map the 2 MiB page of `va` to `pa` (2 MiB aligned).
    pub fn map_2m(&mut self, pasid: u32, va: u64, pa: u64, writable: bool) {
        let slot = self.entry_addr(pasid, va, 1);
        let rw = if writable { RW } else { 0 };
        self.write64(slot, (pa & !0x1f_ffff) | P | US | A | D | PS | rw);
    }

    /// Map the 1 GiB page of `va` to `pa` (1 GiB aligned): a PDPT entry with
    /// PS.
    pub fn map_1g(&mut self, pasid: u32, va: u64, pa: u64, writable: bool) {
        let slot = self.entry_addr(pasid, va, 2);
        let rw = if writable { RW } else { 0 };
        self.write64(slot, (pa & !0x3fff_ffff) | P | US | A | D | PS | rw);
    }

    /// Clear the present bit of the 4 KiB leaf of `va`.
    pub fn unmap_4k(&mut self, pasid: u32, va: u64) {
        let slot = self.entry_addr(pasid, va, 0);
        let e = self.read64(slot);
        self.write64(slot, e & !P);
    }

    // -----------------------------------------------------------------
    // Command queue
    // -----------------------------------------------------------------

    /// Write commands at the tail and publish the new tail.
    pub fn submit_cmds(&mut self, cmds: &[[u64; 2]]) {
        let n = 1u32 << CQ_LOG2N;
        for c in cmds {
            let at = CQ_BASE + u64::from(self.tail) * 16;
            self.write64(at, c[0]);
            self.write64(at + 8, c[1]);
            self.tail = (self.tail + 1) % n;
        }
        self.inp.cq_tail = self.tail;
    }

    /// Wait until the IOMMU consumed every command.
    pub fn wait_cq_empty(&mut self, max: u64) {
        let tail = self.tail;
        self.run_until("command queue drain", max, |s| s.out.cq_head == tail);
    }

    // -----------------------------------------------------------------
    // Device requests and probes
    // -----------------------------------------------------------------

    pub fn submit(&mut self, id: u8, write: bool, pasid: u32, va: u64, wdata: u64) {
        self.dev_queue.push_back((id, write, pasid, va, wdata));
    }

    /// Submit and wait for the response of request `id`.
    pub fn access_wait(
        &mut self,
        id: u8,
        write: bool,
        pasid: u32,
        va: u64,
        wdata: u64,
        max: u64,
    ) -> DevRsp {
        self.submit(id, write, pasid, va, wdata);
        self.wait_response(id, max)
    }

    pub fn read_wait(&mut self, id: u8, pasid: u32, va: u64, max: u64) -> DevRsp {
        self.access_wait(id, false, pasid, va, 0, max)
    }

    /// Wait for (and remove) the response with tag `id`.
    pub fn wait_response(&mut self, id: u8, max: u64) -> DevRsp {
        self.run_until(&format!("device response {id}"), max, |s| {
            s.responses.iter().any(|r| r.id == id)
        });
        let i = self
            .responses
            .iter()
            .position(|r| r.id == id)
            .unwrap_or_default();
        self.responses.remove(i)
    }

    pub fn set_probe(&mut self, slot: usize, pasid: u32, va: u64) {
        self.inp.probes[slot].pasid = pasid;
        self.inp.probes[slot].vpn = va >> 12;
    }

    /// (IOTLB, ATC, in flight) for probe `slot`, as of the last step.
    pub fn probe(&self, slot: usize) -> [Option<ProbeEntry>; 3] {
        let p = self.out.probes[slot];
        [
            decode_probe(p.iotlb),
            decode_probe(p.atc),
            decode_probe(p.xlat),
        ]
    }

    /// Reads of the IOMMU outside the command queue: PASID-table and
    /// page-table reads (walk traffic).
    pub fn walk_reads(&self) -> usize {
        let cq = CQ_BASE..CQ_BASE + (16 << CQ_LOG2N);
        self.iommu_log
            .iter()
            .filter(|a| !a.write && !a.cas && !cq.contains(&a.addr))
            .count()
    }

    /// The walker's compare-and-swaps (Accessed / Dirty updates).
    pub fn cas_log(&self) -> Vec<MemAccess> {
        self.iommu_log.iter().filter(|a| a.cas).copied().collect()
    }

    /// Address of the leaf entry of `va` (4 KiB PTE: `level` 0; 2 MiB PDE:
    /// `level` 1; 1 GiB PDPTE: `level` 2), creating missing tables.
    pub fn leaf_addr(&mut self, pasid: u32, va: u64, level: u32) -> u64 {
        self.entry_addr(pasid, va, level)
    }

    /// Map like [`Sim::map_4k`] / [`Sim::map_2m`] / [`Sim::map_1g`] but with
    /// exactly `flags` (P, RW, US, A, D, PS ...) in the leaf at `level`
    /// (0 .. 2); returns the leaf's address.
    pub fn map_flags(&mut self, pasid: u32, va: u64, pa: u64, level: u32, flags: u64) -> u64 {
        let slot = self.entry_addr(pasid, va, level);
        // the page's offset bits: 12, 21 or 30
        let mask = !((1u64 << (12 + 9 * level)) - 1);
        self.write64(slot, (pa & mask & 0x000f_ffff_ffff_ffff) | flags);
        slot
    }
}

fn respond(port: &mut Port, edge: u64) -> (u8, u64) {
    match port.pending.front() {
        Some(&(due, data)) if due <= edge => {
            port.pending.pop_front();
            (1, data)
        }
        _ => (0, 0),
    }
}

/// The `SHOOTDOWN_RTL` overlay this build was verilated with (model/build.rs,
/// docs/socket.md "Bring your own RTL"): its absolute directory and the file
/// names it supplied, or None for the bundled `rtl/`.
pub fn rtl_overlay() -> Option<(&'static str, &'static str)> {
    let dir = shootdown_model_sys::RTL_OVERLAY;
    (!dir.is_empty()).then_some((dir, shootdown_model_sys::RTL_OVERLAY_FILES))
}

/// For a test of a detail of the bundled `rtl/` that another implementation
/// may legitimately do differently: true (and a printed reason) when this
/// build is a variant, so the test returns early.
pub fn skip_on_variant(test: &str, why: &str) -> bool {
    match rtl_overlay() {
        Some((dir, files)) => {
            eprintln!("{test}: skipped, RTL variant SHOOTDOWN_RTL={dir} ({files}): {why}");
            true
        }
        None => false,
    }
}
