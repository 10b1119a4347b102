//! The machine of the second socket: physical memory, the Verilated RISC-V
//! IOMMU design, and the host side of its four AXI4 ports, advanced one
//! clock cycle at a time by [`RvMachine::tick`].
//!
//! - `mem_` (the IOMMU's own reads and writes: directories, page tables,
//!   queues) and `tx_` (the device's requests after translation) are
//!   answered by an [`AxiSubordinate`] each over [`PhysMem`]; what `tx_`
//!   reads and writes is the device's ground truth ([`DevAccess`]).
//! - `reg_` is driven by [`RegPort`], one register access at a time at the
//!   specification's offsets, 32 bits wide (the width the design's
//!   register file has; a 64-bit register is two accesses, low word first).
//! - `tr_` is driven by [`DmaDevice`]: a device without ATS whose reads and
//!   writes carry its device ID and process ID beside the address.
//!
//! Every wait on the hardware is bounded ([`RvMachine::run_until`]): a
//! design that never answers is an error naming what it did not do.

use super::axi::{
    AxiConfig, AxiEvent, AxiMemory, AxiSubordinate, ManagerSignals, SubordinateSignals,
};
use super::model::{AxiM, AxiS, RvIn, RvModel, RvModelError, RvOut};
use crate::mem::{MemError, PhysMem, Word};
use std::collections::VecDeque;
use thiserror::Error;

/// AXI4 BRESP/RRESP: OKAY.
pub const RESP_OKAY: u8 = 0;

/// What went wrong driving the design.
#[derive(Debug, Error)]
pub enum RvError {
    #[error(transparent)]
    Model(#[from] RvModelError),
    #[error(transparent)]
    Mem(#[from] MemError),
    #[error(
        "[rtl-riscv] cycle {cycle}: {what} did not happen within {limit} cycles (the design is \
         stuck, or the watchdog is too short for its latency: raise it)"
    )]
    Timeout {
        cycle: u64,
        what: String,
        limit: u64,
    },
    #[error("[rtl-riscv] cycle {cycle}: register {offset:#x} {dir} answered {resp} (not OKAY)")]
    Register {
        cycle: u64,
        offset: u32,
        dir: &'static str,
        resp: u8,
    },
    #[error("[rtl-riscv] cycle {cycle}: the design ran $error/$fatal/$stop")]
    DesignError { cycle: u64 },
    #[error("[rtl-riscv] {0}")]
    Setup(String),
}

impl From<&AxiM> for ManagerSignals {
    fn from(m: &AxiM) -> Self {
        ManagerSignals {
            awvalid: m.awvalid != 0,
            awid: u32::from(m.awid),
            awaddr: m.awaddr,
            awlen: m.awlen,
            awsize: m.awsize,
            awburst: m.awburst,
            awprot: m.awprot,
            wvalid: m.wvalid != 0,
            wdata: m.wdata,
            wstrb: m.wstrb,
            wlast: m.wlast != 0,
            bready: m.bready != 0,
            arvalid: m.arvalid != 0,
            arid: u32::from(m.arid),
            araddr: m.araddr,
            arlen: m.arlen,
            arsize: m.arsize,
            arburst: m.arburst,
            arprot: m.arprot,
            rready: m.rready != 0,
        }
    }
}

impl From<SubordinateSignals> for AxiS {
    fn from(s: SubordinateSignals) -> Self {
        AxiS {
            rdata: s.rdata,
            awready: u8::from(s.awready),
            wready: u8::from(s.wready),
            bid: s.bid as u8,
            bresp: s.bresp,
            bvalid: u8::from(s.bvalid),
            arready: u8::from(s.arready),
            rid: s.rid as u8,
            rresp: s.rresp,
            rlast: u8::from(s.rlast),
            rvalid: u8::from(s.rvalid),
            pad: [0; 6],
        }
    }
}

/// Physical memory as an AXI subordinate sees it: a read's tag is the
/// word's store version; a store on `tx_` (the device's) takes the next
/// version of the global store order, one on `mem_` (the IOMMU's own: fault
/// records, fence data) version 0, outside the program's order (as in the
/// first socket).
struct Backed<'a, 'b> {
    mem: &'a mut PhysMem,
    /// None: the IOMMU's own port.
    next_version: Option<&'b mut u64>,
}

impl AxiMemory for Backed<'_, '_> {
    fn read(&mut self, addr: u64) -> Result<(u64, u64), ()> {
        let w = match self.next_version {
            None => self.mem.iommu_read(addr & !7),
            Some(_) => self.mem.read(addr & !7),
        };
        let w = w.map_err(|_| ())?;
        Ok((w.value, w.version))
    }

    fn write(&mut self, addr: u64, data: u64, strb: u8) -> Result<(), ()> {
        let pa = addr & !7;
        let old = self.mem.read(pa).map_err(|_| ())?.value;
        let mut mask = 0u64;
        for lane in 0..8 {
            if strb & (1 << lane) != 0 {
                mask |= 0xff << (8 * lane);
            }
        }
        let version = match self.next_version.as_mut() {
            Some(next) => {
                let v = **next;
                **next += 1;
                v
            }
            None => 0,
        };
        self.mem
            .write(pa, (old & !mask) | (data & mask), version)
            .map_err(|_| ())
    }
}

/// One register access on `reg_`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RegAccess {
    offset: u32,
    /// Some(value): a write.
    write: Option<u32>,
    addr_done: bool,
    data_done: bool,
}

/// The host's register manager on `reg_`: one 32-bit access at a time.
#[derive(Debug, Default)]
pub struct RegPort {
    base: u64,
    access: Option<RegAccess>,
    /// The finished access: (read data or 0, response).
    done: Option<(u32, u8)>,
}

impl RegPort {
    /// Start a 32-bit access of the register at `offset` (a write of `write`,
    /// or a read); its answer is [`RegPort::take`]n when done.
    pub fn start(&mut self, offset: u32, write: Option<u32>) {
        self.access = Some(RegAccess {
            offset,
            write,
            addr_done: false,
            data_done: write.is_none(),
        });
        self.done = None;
    }

    /// The finished access, once: (read data or 0, AXI response).
    pub fn take(&mut self) -> Option<(u32, u8)> {
        self.done.take()
    }

    fn signals(&self) -> AxiM {
        let mut m = AxiM {
            bready: 1,
            rready: 1,
            ..AxiM::default()
        };
        let Some(a) = self.access else { return m };
        let addr = self.base + u64::from(a.offset);
        // the 32-bit register's byte lanes of the 64-bit bus
        let lane = (addr & 4) * 8;
        match a.write {
            Some(v) => {
                m.awaddr = addr;
                m.awsize = 2;
                m.awburst = 1;
                m.awvalid = u8::from(!a.addr_done);
                m.wdata = u64::from(v) << lane;
                m.wstrb = 0x0f << (addr & 4);
                m.wlast = 1;
                m.wvalid = u8::from(!a.data_done);
            }
            None => {
                m.araddr = addr;
                m.arsize = 2;
                m.arburst = 1;
                m.arvalid = u8::from(!a.addr_done);
            }
        }
        m
    }

    fn clock(&mut self, sent: &AxiM, got: &AxiS) {
        let Some(a) = self.access.as_mut() else {
            return;
        };
        if sent.awvalid != 0 && got.awready != 0 || sent.arvalid != 0 && got.arready != 0 {
            a.addr_done = true;
        }
        if sent.wvalid != 0 && got.wready != 0 {
            a.data_done = true;
        }
        let lane = ((self.base + u64::from(a.offset)) & 4) * 8;
        if a.write.is_some() && got.bvalid != 0 {
            self.done = Some((0, got.bresp));
            self.access = None;
        } else if a.write.is_none() && got.rvalid != 0 {
            self.done = Some(((got.rdata >> lane) as u32, got.rresp));
            self.access = None;
        }
    }
}

/// A device request: a 64-bit read or write of `va` by device `sid`, in
/// process `ssid` (None: without a process ID), on AXI ID `id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaRequest {
    pub id: u8,
    pub sid: u32,
    pub ssid: Option<u32>,
    pub va: u64,
    pub write: Option<u64>,
}

/// What the device got back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaResponse {
    pub id: u8,
    pub cycle: u64,
    /// RRESP/BRESP: 0 OKAY; a translation fault is an error response.
    pub resp: u8,
    /// The word read (0 for a write or an error).
    pub rdata: u64,
}

/// The DMA device on `tr_`: requests leave in order, one per AXI ID in
/// flight; reads and writes travel on their own channels.
#[derive(Debug, Default)]
pub struct DmaDevice {
    queue: VecDeque<DmaRequest>,
    /// The request on AR, or on AW and W (with which of the two are done).
    ar: Option<DmaRequest>,
    aw: Option<(DmaRequest, bool, bool)>,
    in_flight: Vec<DmaRequest>,
    pub responses: Vec<DmaResponse>,
}

impl DmaDevice {
    /// Whether AXI ID `id` has a request the design has not taken yet
    /// (queued, or on AR/AW without its handshake).
    pub fn waiting(&self, id: u8) -> bool {
        self.queue.iter().any(|r| r.id == id)
            || self.ar.is_some_and(|r| r.id == id)
            || self
                .aw
                .is_some_and(|(r, aw_done, _)| r.id == id && !aw_done)
    }

    /// Move the next queued requests onto the free channels (an ID in
    /// flight waits: one request per ID keeps its responses unambiguous).
    fn issue(&mut self) {
        while let Some(r) = self.queue.front().copied() {
            let id_busy = self.in_flight.iter().any(|f| f.id == r.id)
                || self.ar.is_some_and(|a| a.id == r.id)
                || self.aw.is_some_and(|(a, ..)| a.id == r.id);
            let channel_free = if r.write.is_some() {
                self.aw.is_none()
            } else {
                self.ar.is_none()
            };
            if id_busy || !channel_free {
                break;
            }
            self.queue.pop_front();
            if r.write.is_some() {
                self.aw = Some((r, false, false));
            } else {
                self.ar = Some(r);
            }
        }
    }

    fn signals(&self, inp: &mut RvIn) {
        let mut m = AxiM {
            bready: 1,
            rready: 1,
            ..AxiM::default()
        };
        if let Some(r) = self.ar {
            m.arvalid = 1;
            m.arid = r.id;
            m.araddr = r.va;
            m.arsize = 3;
            m.arburst = 1;
            // unprivileged data access
            m.arprot = 0;
            inp.tr_arsid = r.sid;
            inp.tr_arssidv = u8::from(r.ssid.is_some());
            inp.tr_arssid = r.ssid.unwrap_or(0);
        }
        if let Some((r, aw_done, w_done)) = self.aw {
            m.awvalid = u8::from(!aw_done);
            m.awid = r.id;
            m.awaddr = r.va;
            m.awsize = 3;
            m.awburst = 1;
            m.wvalid = u8::from(!w_done);
            m.wdata = r.write.unwrap_or(0);
            m.wstrb = 0xff;
            m.wlast = 1;
            inp.tr_awsid = r.sid;
            inp.tr_awssidv = u8::from(r.ssid.is_some());
            inp.tr_awssid = r.ssid.unwrap_or(0);
        }
        inp.tr = m;
    }

    fn clock(&mut self, cycle: u64, sent: &AxiM, got: &AxiS) {
        if sent.arvalid != 0 && got.arready != 0 {
            if let Some(r) = self.ar.take() {
                self.in_flight.push(r);
            }
        }
        if let Some((r, aw_done, w_done)) = self.aw.as_mut() {
            *aw_done |= sent.awvalid != 0 && got.awready != 0;
            *w_done |= sent.wvalid != 0 && got.wready != 0;
            if *aw_done && *w_done {
                self.in_flight.push(*r);
                self.aw = None;
            }
        }
        let mut finish = |id: u8, resp: u8, rdata: u64, write: bool| {
            if let Some(i) = self
                .in_flight
                .iter()
                .position(|r| r.id == id && r.write.is_some() == write)
            {
                self.in_flight.remove(i);
                self.responses.push(DmaResponse {
                    id,
                    cycle,
                    resp,
                    rdata: if write || resp != RESP_OKAY { 0 } else { rdata },
                });
            }
        };
        if got.rvalid != 0 && got.rlast != 0 {
            finish(got.rid, got.rresp, got.rdata, false);
        }
        if got.bvalid != 0 {
            finish(got.bid, got.bresp, 0, true);
        }
        self.issue();
    }
}

/// An access the design made to memory on `tx_` (the device's, translated)
/// or `mem_` (its own): the ground truth the checker judges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevAccess {
    pub cycle: u64,
    pub id: u32,
    pub pa: u64,
    pub write: bool,
    /// The word read, or the word as the write left it.
    pub word: Word,
}

/// Timing of the host side of the ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RvParams {
    pub frames: u64,
    /// `mem_` (the IOMMU's memory): latency and ordering.
    pub mem: AxiConfig,
    /// `tx_` (translated requests): latency and ordering.
    pub tx: AxiConfig,
    /// Base address of the register file on `reg_`.
    pub reg_base: u64,
    /// Cycles any wait on the design may take.
    pub watchdog: u64,
}

impl Default for RvParams {
    fn default() -> Self {
        RvParams {
            frames: 1024,
            mem: AxiConfig::default(),
            tx: AxiConfig::default(),
            reg_base: 0,
            watchdog: 100_000,
        }
    }
}

/// The design and the host's side of its ports, without memory: advanced
/// by [`RvHw::tick`] over the memory and store order of whoever owns it
/// ([`RvMachine`] here, the simulator's machine in a run).
pub struct RvHw {
    model: RvModel,
    params: RvParams,
    inp: RvIn,
    mem_port: AxiSubordinate,
    tx_port: AxiSubordinate,
    pub reg: RegPort,
    pub dev: DmaDevice,
    /// The design's own memory accesses (`mem_`) and the device's (`tx_`),
    /// drained by the caller.
    pub iommu_accesses: Vec<DevAccess>,
    pub dev_accesses: Vec<DevAccess>,
    /// Requests the ports accepted, as (port, cycle, AXI ID, address,
    /// write): when each read or write started.
    pub requests: Vec<(&'static str, u64, u32, u64, bool)>,
    /// AXI protocol violations seen on `mem_` and `tx_` (the design's
    /// manager ports), as (port, event).
    pub violations: Vec<(&'static str, AxiEvent)>,
    /// `wsi_o` after the last cycle.
    pub wsi: u8,
    /// The probe words (`probeN_iotlb_o`) as the last cycle settled them:
    /// the IOTLB after the edge before it.
    pub probe_words: [u64; 4],
    /// `probe_pdtc_o` as the last cycle settled it ([`RvHw::set_pdtc_probe`]).
    pub pdtc_word: u64,
    /// `probe_ddtc_o` as the last cycle settled it (the device of
    /// [`RvHw::set_pdtc_probe`]).
    pub ddtc_word: u64,
    /// Record every access of the design on `mem_` in
    /// [`RvHw::iommu_accesses`] and every accepted request in
    /// [`RvHw::requests`]: for direct tests ([`RvMachine`] sets it); the
    /// simulator does not read them.
    pub log_all: bool,
}

impl RvHw {
    /// The design, held in reset until [`RvHw::release`].
    pub fn new(params: RvParams) -> Result<RvHw, RvError> {
        Ok(RvHw {
            model: RvModel::new()?,
            params,
            inp: RvIn::default(),
            mem_port: AxiSubordinate::new(params.mem),
            tx_port: AxiSubordinate::new(params.tx),
            reg: RegPort {
                base: params.reg_base,
                ..RegPort::default()
            },
            dev: DmaDevice::default(),
            iommu_accesses: Vec::new(),
            dev_accesses: Vec::new(),
            requests: Vec::new(),
            violations: Vec::new(),
            wsi: 0,
            probe_words: [0; 4],
            pdtc_word: 0,
            ddtc_word: 0,
            log_all: false,
        })
    }

    /// Point probe `slot` (0..4) at PSCID `pscid` and the Sv39 VPN `vpn`;
    /// its word is in [`RvHw::probe_words`] from the next tick on.
    pub fn set_probe(&mut self, slot: usize, pscid: u32, vpn: u64) {
        if let (Some(v), Some(p)) = (
            self.inp.probe_vpn.get_mut(slot),
            self.inp.probe_pscid.get_mut(slot),
        ) {
            *v = vpn;
            *p = pscid;
        }
    }

    /// Point the directory-cache probes at device `did`, process `pid`;
    /// their words are in [`RvHw::pdtc_word`] and [`RvHw::ddtc_word`] from
    /// the next tick on.
    pub fn set_pdtc_probe(&mut self, did: u32, pid: u32) {
        self.inp.probe_did = did;
        self.inp.probe_pid = pid;
    }

    /// Feed the design's state and the host's side of its ports into `h`
    /// (explore's cuts); None when the design's state cannot be digested.
    /// The logs a caller drains ([`RvHw::dev_accesses`], the device's
    /// responses) are the past's, left out.
    pub fn digest(&self, h: &mut crate::sim::digest::StateHasher) -> Option<()> {
        let [a, b] = self.model.state_digest()?;
        h.word(a);
        h.word(b);
        h.debug(&(
            &self.inp,
            &self.mem_port,
            &self.tx_port,
            &self.reg,
            // the device's unfinished requests (its responses are drained)
            (
                &self.dev.queue,
                &self.dev.ar,
                &self.dev.aw,
                &self.dev.in_flight,
            ),
            self.wsi,
            self.probe_words,
            self.pdtc_word,
            self.ddtc_word,
        ));
        Some(())
    }

    /// Deassert reset (after at least 4 ticks held).
    pub fn release(&mut self) {
        self.inp.rst_n = 1;
    }

    pub fn cycle(&self) -> u64 {
        self.model.cycle()
    }

    pub fn params(&self) -> &RvParams {
        &self.params
    }

    pub fn model(&mut self) -> &mut RvModel {
        &mut self.model
    }

    /// One clock cycle: drive the host's signals, settle, see which
    /// handshakes the settled signals make, take the rising edge. Device
    /// stores take versions from `next_version`.
    pub fn tick(&mut self, mem: &mut PhysMem, next_version: &mut u64) -> Result<(), RvError> {
        self.inp.mem = self.mem_port.signals().into();
        self.inp.tx = self.tx_port.signals().into();
        self.inp.reg = self.reg.signals();
        self.dev.signals(&mut self.inp);
        let out: RvOut = self.model.settle(&self.inp);
        let cycle = self.model.cycle() + 1;
        self.port(cycle, mem, None, &out.mem);
        self.port(cycle, mem, Some(next_version), &out.tx);
        let (reg_in, tr_in) = (self.inp.reg, self.inp.tr);
        self.reg.clock(&reg_in, &out.reg);
        self.dev.clock(cycle, &tr_in, &out.tr);
        self.wsi = out.wsi;
        self.probe_words = out.probe_iotlb;
        self.pdtc_word = out.probe_pdtc;
        self.ddtc_word = out.probe_ddtc;
        self.model.edge();
        if self.model.got_error() {
            return Err(RvError::DesignError { cycle });
        }
        Ok(())
    }

    /// Clock one of the memory subordinates with what the design drove:
    /// `tx_` when `next_version` is given (device stores are in the
    /// program's store order), else `mem_`.
    fn port(&mut self, cycle: u64, mem: &mut PhysMem, next_version: Option<&mut u64>, m: &AxiM) {
        let signals = ManagerSignals::from(m);
        let tx = next_version.is_some();
        let port = if tx {
            &mut self.tx_port
        } else {
            &mut self.mem_port
        };
        let mut backed = Backed { mem, next_version };
        let events = port.clock(cycle, &signals, &mut backed);
        let mem = backed.mem;
        let name = if tx { "tx" } else { "mem" };
        let (log, all) = if tx {
            (&mut self.dev_accesses, true)
        } else {
            (&mut self.iommu_accesses, self.log_all)
        };
        for e in events {
            match e {
                AxiEvent::Read {
                    id,
                    addr,
                    data,
                    tag,
                    resp: RESP_OKAY,
                    ..
                } if all => log.push(DevAccess {
                    cycle,
                    id,
                    pa: addr & !7,
                    write: false,
                    word: Word {
                        value: data,
                        version: tag,
                    },
                }),
                AxiEvent::Write { id, addr, .. } if all => {
                    let pa = addr & !7;
                    let word = mem.read(pa).unwrap_or_default();
                    log.push(DevAccess {
                        cycle,
                        id,
                        pa,
                        write: true,
                        word,
                    });
                }
                AxiEvent::Accepted {
                    id, addr, write, ..
                } if self.log_all => self.requests.push((name, cycle, id, addr, write)),
                v @ AxiEvent::Violation { .. } => self.violations.push((name, v)),
                _ => {}
            }
        }
    }

    /// Queue a device request.
    pub fn dma(&mut self, r: DmaRequest) {
        self.dev.queue.push_back(r);
        self.dev.issue();
    }
}

/// Whoever owns an [`RvHw`] and its memory: register accesses that wait,
/// cycle by cycle, for the design's answer (a CPU's MMIO load or store),
/// each bounded by the watchdog.
pub trait RvBus {
    fn hw(&mut self) -> &mut RvHw;
    fn hw_ref(&self) -> &RvHw;
    fn mem(&mut self) -> &mut PhysMem;
    /// One clock cycle of everything the owner runs.
    fn tick(&mut self) -> Result<(), RvError>;
    /// A CPU store of `value` at `pa`, in the global store order.
    fn store(&mut self, pa: u64, value: u64) -> Result<(), RvError>;

    fn cycle(&self) -> u64 {
        self.hw_ref().cycle()
    }

    /// Tick until `done` holds, at most the watchdog's cycles; `what` names
    /// the wait in the error.
    fn run_until(&mut self, what: &str, mut done: impl FnMut(&Self) -> bool) -> Result<(), RvError>
    where
        Self: Sized,
    {
        let limit = self.hw_ref().params.watchdog;
        for _ in 0..limit {
            if done(self) {
                return Ok(());
            }
            self.tick()?;
        }
        if done(self) {
            return Ok(());
        }
        Err(RvError::Timeout {
            cycle: self.cycle(),
            what: what.to_string(),
            limit,
        })
    }

    /// One 32-bit register access, waited for.
    fn reg_access(&mut self, offset: u32, write: Option<u32>) -> Result<u32, RvError>
    where
        Self: Sized,
    {
        self.hw().reg.start(offset, write);
        let dir = if write.is_some() { "write" } else { "read" };
        self.run_until(&format!("the {dir} of register {offset:#x}"), |m| {
            m.hw_ref().reg.done.is_some()
        })?;
        let (data, resp) = self.hw().reg.done.take().unwrap_or((0, RESP_OKAY));
        if resp != RESP_OKAY {
            return Err(RvError::Register {
                cycle: self.cycle(),
                offset,
                dir,
                resp,
            });
        }
        Ok(data)
    }

    /// Read the 32-bit register at `offset`.
    fn read32(&mut self, offset: u32) -> Result<u32, RvError>
    where
        Self: Sized,
    {
        self.reg_access(offset, None)
    }

    /// Write the 32-bit register at `offset`.
    fn write32(&mut self, offset: u32, value: u32) -> Result<(), RvError>
    where
        Self: Sized,
    {
        self.reg_access(offset, Some(value)).map(|_| ())
    }

    /// Read a 64-bit register: low word, then high.
    fn read64(&mut self, offset: u32) -> Result<u64, RvError>
    where
        Self: Sized,
    {
        let lo = self.read32(offset)?;
        let hi = self.read32(offset + 4)?;
        Ok(u64::from(hi) << 32 | u64::from(lo))
    }

    /// Write a 64-bit register: low word, then high.
    fn write64(&mut self, offset: u32, value: u64) -> Result<(), RvError>
    where
        Self: Sized,
    {
        self.write32(offset, value as u32)?;
        self.write32(offset + 4, (value >> 32) as u32)
    }
}

/// Memory and the design, on their own (the second socket without the
/// simulator: bring-up, tests, single findings).
pub struct RvMachine {
    pub mem: PhysMem,
    pub hw: RvHw,
    next_version: u64,
}

impl RvMachine {
    /// A machine with the design held in reset for 8 cycles, then released.
    pub fn new(params: RvParams) -> Result<RvMachine, RvError> {
        let mut m = RvMachine {
            mem: PhysMem::new(params.frames),
            hw: RvHw::new(params)?,
            next_version: 1,
        };
        m.hw.log_all = true;
        for _ in 0..8 {
            m.tick()?;
        }
        m.hw.release();
        m.tick()?;
        Ok(m)
    }

    /// The version the next store (CPU or device) gets, and count it.
    pub fn next_version(&mut self) -> u64 {
        let v = self.next_version;
        self.next_version += 1;
        v
    }
}

impl RvBus for RvMachine {
    fn hw(&mut self) -> &mut RvHw {
        &mut self.hw
    }

    fn hw_ref(&self) -> &RvHw {
        &self.hw
    }

    fn mem(&mut self) -> &mut PhysMem {
        &mut self.mem
    }

    fn tick(&mut self) -> Result<(), RvError> {
        self.hw.tick(&mut self.mem, &mut self.next_version)
    }

    fn store(&mut self, pa: u64, value: u64) -> Result<(), RvError> {
        let v = self.next_version();
        self.mem.write(pa, value, v)?;
        Ok(())
    }
}
