//! The host's driver of a RISC-V IOMMU specification design, in the order
//! Linux's driver (`drivers/iommu/riscv/iommu.c`, [`linux::RELEASE`])
//! does it: read `capabilities`, enable the command and fault queues
//! (`riscv_iommu_queue_enable`: base, tail, then `csr.EN`, polled until on),
//! set the device directory (`riscv_iommu_iodir_set_mode`: `ddtp`, polled
//! until not busy), attach a device (`riscv_iommu_iodir_update`: the
//! context's fields, `tc` with V last, then IODIR.INVAL_DDT and a sync),
//! and flush (`riscv_iommu_iotlb_inval` and `riscv_iommu_cmd_sync`:
//! commands written at the tail, `cqt` written, `cqh` polled until it has
//! passed the fence).
//!
//! The structures sit in the machine's memory, written as CPU stores (each
//! with its store version); the design reads them on `mem_`.

use super::cmd::Command;
use super::ctx::{self, DeviceContext, PdtMode, ProcessContext, SatpMode};
use super::linux;
use super::machine::{RvBus, RvError};
use super::regs::{self, caps, csr, DdtMode};
use crate::mem::{Pfn, PAGE_SHIFT};

/// Command-queue entries (one 4 KiB page of 16-byte commands).
pub const CQ_ENTRIES: u64 = 256;
/// Fault-queue entries (one page of 32-byte records).
pub const FQ_ENTRIES: u64 = 128;
const CMD_BYTES: u64 = 16;

/// The driver's state: where its structures are, and the queue's tail.
#[derive(Clone, Debug)]
pub struct RvDriver {
    pub capabilities: u64,
    pub cq: Pfn,
    pub cq_entries: u64,
    pub fq: Pfn,
    pub ddt: Pfn,
    /// Device contexts are 64 bytes (`capabilities.MSI_FLAT`), else 32.
    pub extended: bool,
    /// The next command's index.
    pub tail: u64,
    /// (device ID, its process directory's page) of each device attached.
    pdts: Vec<(u32, Pfn)>,
}

impl RvDriver {
    /// Bring the IOMMU up: queues on, a one-level device directory; the
    /// command queue a page of [`CQ_ENTRIES`].
    pub fn init<B: RvBus>(m: &mut B) -> Result<RvDriver, RvError> {
        let cq = m.mem().alloc()?;
        Self::init_with(m, cq, CQ_ENTRIES)
    }

    /// [`RvDriver::init`] with the command queue at page `cq`, `cq_entries`
    /// long (a power of two of at most a page's 256).
    pub fn init_with<B: RvBus>(m: &mut B, cq: Pfn, cq_entries: u64) -> Result<RvDriver, RvError> {
        let capabilities = m.read64(regs::CAPABILITIES)?;
        if !(2..=CQ_ENTRIES).contains(&cq_entries) || !cq_entries.is_power_of_two() {
            return Err(RvError::Setup(format!(
                "a command queue of {cq_entries} entries: use a power of two from 2 to {CQ_ENTRIES}"
            )));
        }
        let fq = m.mem().alloc()?;
        let ddt = m.mem().alloc()?;
        let d = RvDriver {
            capabilities,
            cq,
            cq_entries,
            fq,
            ddt,
            extended: capabilities & caps::MSI_FLAT != 0,
            tail: 0,
            pdts: Vec::new(),
        };
        // wired interrupts (the design signals no MSIs)
        m.write32(regs::FCTL, regs::FCTL_WSI)?;
        for (base, entries, ppn, tail, csr_off, name) in [
            (regs::CQB, cq_entries, cq, regs::CQT, regs::CQCSR, "cqcsr"),
            (regs::FQB, FQ_ENTRIES, fq, regs::FQH, regs::FQCSR, "fqcsr"),
        ] {
            let qb = regs::queue_base(entries, ppn)
                .ok_or_else(|| RvError::Setup(format!("queue page {ppn:#x} does not fit")))?;
            m.write64(base, qb)?;
            // the producer's index: the command queue's tail, the fault
            // queue's head
            m.write32(tail, 0)?;
            m.write32(csr_off, csr::EN | csr::IE)?;
            d.poll(m, csr_off, name, |v| v & csr::BUSY == 0)?;
            let v = m.read32(csr_off)?;
            if v & csr::ON == 0 {
                return Err(RvError::Setup(format!(
                    "{name} is {v:#x} after enabling: the queue did not come on"
                )));
            }
        }
        let ddtp = regs::ddtp(DdtMode::OneLevel, ddt)
            .ok_or_else(|| RvError::Setup(format!("DDT page {ddt:#x} does not fit")))?;
        m.write64(regs::DDTP, ddtp)?;
        d.poll(m, regs::DDTP, "ddtp", |v| {
            u64::from(v) & regs::DDTP_BUSY == 0
        })?;
        Ok(d)
    }

    /// The design translates by `mode` (its `capabilities` say so), else
    /// a setup error naming what is missing.
    fn offers(&self, mode: SatpMode) -> Result<(), RvError> {
        let (bit, name) = match mode {
            SatpMode::Sv39 => (caps::SV39, "Sv39"),
            SatpMode::Sv48 => (caps::SV48, "Sv48"),
            SatpMode::Bare => return Ok(()),
        };
        if self.capabilities & bit == 0 {
            return Err(RvError::Setup(format!(
                "capabilities {:#x} has no {name}: the design cannot walk the host's {name} page tables (run arch riscv-sv39, or a design with {name})",
                self.capabilities
            )));
        }
        Ok(())
    }

    /// Read the 32-bit register at `offset` until `ok` holds (each read
    /// takes bus cycles; the watchdog bounds the whole wait).
    fn poll<B: RvBus>(
        &self,
        m: &mut B,
        offset: u32,
        name: &str,
        ok: impl Fn(u32) -> bool,
    ) -> Result<u32, RvError> {
        let start = m.cycle();
        loop {
            let v = m.read32(offset)?;
            if ok(v) {
                return Ok(v);
            }
            let limit = m.hw_ref().params().watchdog;
            if m.cycle() - start > limit {
                return Err(RvError::Timeout {
                    cycle: m.cycle(),
                    what: format!("{name} ({v:#x} read last) to change"),
                    limit,
                });
            }
        }
    }

    /// Attach device `did` as Linux 6.13 attaches a paging domain: its
    /// context translates by the table at `root` in `mode`, tagged
    /// `pscid`. Then IODIR.INVAL_DDT of the device and a sync.
    pub fn attach_paging<B: RvBus>(
        &mut self,
        m: &mut B,
        did: u32,
        pscid: u32,
        mode: SatpMode,
        root: Pfn,
    ) -> Result<(), RvError> {
        self.offers(mode)?;
        let dc = DeviceContext::paging(pscid, mode, root).ok_or_else(|| {
            RvError::Setup(format!("PSCID {pscid:#x} or root {root:#x} does not fit"))
        })?;
        self.write_dc(m, did, dc)
    }

    /// Attach device `did` for shared virtual addressing: its context
    /// points at a one-level process directory (PD8) whose entry for
    /// process `pid` translates by the table at `root` in `mode`, tagged
    /// `pscid`. Linux 6.13 has no SVA; this is the specification's way
    /// (and the later releases'), written in the order of
    /// `riscv_iommu_iodir_update`: the process context, the device
    /// context with V last, IODIR.INVAL_DDT, a sync. Returns the physical
    /// address of the process context (for [`RvDriver::detach_process`]).
    /// A second process of the same device joins its directory.
    pub fn attach_sva<B: RvBus>(
        &mut self,
        m: &mut B,
        did: u32,
        pid: u32,
        pscid: u32,
        mode: SatpMode,
        root: Pfn,
    ) -> Result<u64, RvError> {
        if self.capabilities & caps::PD8 == 0 {
            return Err(RvError::Setup(format!(
                "capabilities {:#x} has no PD8: the design takes no process IDs",
                self.capabilities
            )));
        }
        self.offers(mode)?;
        let bad = |what: String| RvError::Setup(what);
        // one process directory per device: a second process of an
        // attached device joins the first's
        let (pdt, new_dc) = match self.pdts.iter().find(|p| p.0 == did) {
            Some(&(_, pdt)) => (pdt, false),
            None => (m.mem().alloc()?, true),
        };
        let pc = ProcessContext::user(pscid, mode, root)
            .ok_or_else(|| bad(format!("PSCID {pscid:#x} or root {root:#x} does not fit")))?;
        let pi = ctx::pdt_indices(pid, PdtMode::Pd8)
            .ok_or_else(|| bad(format!("process ID {pid:#x} does not fit a PD8 directory")))?[0];
        let [ta, fsc] = pc.words();
        let at = (pdt << PAGE_SHIFT) + pi * 16;
        m.store(at + 8, fsc)?;
        m.store(at, ta)?;
        if new_dc {
            let dc = DeviceContext::with_pdt(PdtMode::Pd8, pdt, false)
                .ok_or_else(|| bad(format!("PDT page {pdt:#x} does not fit")))?;
            self.write_dc(m, did, dc)?;
            self.pdts.push((did, pdt));
        }
        Ok(at)
    }

    /// Take process `pid` of device `did` away from the IOMMU (the process
    /// context at `pc_at`, tagged `pscid`), as the specification orders it
    /// for a process context that goes invalid (the SVA unbind, or the
    /// mm's release): the context's `ta` with V clear, then IODIR.INVAL_PDT
    /// of the process, IOTINVAL.VMA of the whole PSCID, and a sync, waited
    /// for. After the wait the IOMMU must fault that process's requests.
    pub fn detach_process<B: RvBus>(
        &mut self,
        m: &mut B,
        did: u32,
        pid: u32,
        pscid: u32,
        pc_at: u64,
    ) -> Result<(), RvError> {
        m.store(pc_at, 0)?;
        self.submit(
            m,
            &[
                Command::IodirInvalPdt { did, pid },
                Command::IotinvalVma {
                    pscid: Some(pscid),
                    addr: None,
                    gscid: None,
                },
                linux::sync(),
            ],
        )?;
        self.wait(m)
    }

    /// Device `did`'s context in the DDT, `tc` (with V) last, then
    /// IODIR.INVAL_DDT of the device and a sync, waited for.
    fn write_dc<B: RvBus>(
        &mut self,
        m: &mut B,
        did: u32,
        dc: DeviceContext,
    ) -> Result<(), RvError> {
        let at = self.dc_address(did)?;
        let words = dc.words(self.extended);
        for (i, w) in words.iter().enumerate().skip(1) {
            m.store(at + 8 * i as u64, *w)?;
        }
        m.store(at, words[0])?;
        self.submit(
            m,
            &[Command::IodirInvalDdt { did: Some(did) }, linux::sync()],
        )?;
        self.wait(m)
    }

    /// The physical address of device `did`'s context (its `tc` first).
    pub fn dc_address(&self, did: u32) -> Result<u64, RvError> {
        let index = ctx::ddt_indices(did, 1, self.extended).ok_or_else(|| {
            RvError::Setup(format!(
                "device ID {did:#x} does not fit a one-level directory"
            ))
        })?[0];
        let size = if self.extended { 64 } else { 32 };
        Ok((self.ddt << PAGE_SHIFT) + index * size)
    }

    /// Take device `did`'s context away, as Linux 6.13's
    /// `riscv_iommu_iodir_update` does before it writes a new one (a
    /// detach, or an attach to another domain): `tc` with V clear, then
    /// IODIR.INVAL_DDT of the device and a sync, waited for. After the wait
    /// the IOMMU must fault the device's requests.
    pub fn detach_device<B: RvBus>(&mut self, m: &mut B, did: u32) -> Result<(), RvError> {
        let at = self.dc_address(did)?;
        let tc = m.mem().read(at)?.value;
        m.store(at, tc & !1)?;
        self.submit(
            m,
            &[Command::IodirInvalDdt { did: Some(did) }, linux::sync()],
        )?;
        self.wait(m)
    }

    /// Write `cmds` at the tail and publish the new tail (`cqt`).
    pub fn submit<B: RvBus>(&mut self, m: &mut B, cmds: &[Command]) -> Result<(), RvError> {
        for c in cmds {
            let [w0, w1] = c
                .encode()
                .map_err(|e| RvError::Setup(format!("command {c:?}: {e:?}")))?;
            let at = (self.cq << PAGE_SHIFT) + self.tail * CMD_BYTES;
            m.store(at, w0)?;
            m.store(at + 8, w1)?;
            self.tail = (self.tail + 1) % self.cq_entries;
        }
        m.write32(regs::CQT, self.tail as u32)
    }

    /// Linux's wait after a sync: poll `cqh` until the queue has consumed
    /// every command written (the head has passed the fence).
    pub fn wait<B: RvBus>(&mut self, m: &mut B) -> Result<(), RvError> {
        let tail = self.tail as u32;
        self.poll(m, regs::CQH, "cqh", |h| h == tail)?;
        let csr_now = m.read32(regs::CQCSR)?;
        if csr_now & (csr::CMD_ILL | csr::MF | csr::CMD_TO) != 0 {
            return Err(RvError::Setup(format!(
                "cqcsr {csr_now:#x}: the design refused a command (CMD_ILL/MF/CMD_TO)"
            )));
        }
        Ok(())
    }

    /// Linux's flush of `[start, end]` (inclusive) for `pscid`: the
    /// invalidations and the fence, then the wait.
    pub fn flush<B: RvBus>(
        &mut self,
        m: &mut B,
        pscid: u32,
        start: u64,
        end: u64,
    ) -> Result<(), RvError> {
        self.submit(m, &linux::flush(pscid, start, end))?;
        self.wait(m)
    }
}
