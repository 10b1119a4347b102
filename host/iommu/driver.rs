//! The SVA driver: turns one secondary-TLB flush of `[start, end)` into
//! IOTINVAL.VMA, ATS.INVAL and IOFENCE.C commands in the order of the
//! chosen [`DriverKind`], and spins on each fence's completion word while the
//! RTL runs.
//!
//! A flush is a list of *parts* (see [`DriverKind::plan`]). The driver writes
//! a part's commands, then an IOFENCE.C (AV=1) that writes a fresh DATA to
//! the completion word, publishes the tail, and spins until the word holds
//! that DATA; only then does it write the next part, as Linux's
//! `qi_submit_sync` (VT-d), `iommu_completion_wait` (AMD) and
//! `arm_smmu_cmdq_issue_cmdlist` with a CMD_SYNC (SMMUv3) do. A part larger
//! than the free room of the ring is written as the IOMMU consumes it (the
//! Linux drivers also wait for queue space).
//!
//! The queue is a ring in [`PhysMem`](crate::mem::PhysMem); the tail is the
//! register the RTL reads (`cq_tail_i`). Like `qi_submit_sync` (Intel) or the
//! AMD driver's `iommu->lock`, one CPU at a time owns the queue from the
//! first command to the last fence's completion: the owner is recorded here
//! and other CPUs spin until it is released.

use super::{Cmd, DriverKind};
use crate::mem::{MemError, PAGE_SIZE};
use crate::rtl::{
    cmd_ats_inval, cmd_ats_inval_no_pasid, cmd_ats_prgr, cmd_iofence_c, cmd_iotinval_range,
    cmd_iotinval_vma, CQ_ERR_CMD_TO,
};
use crate::sim::machine::{IommuLayout, Machine};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DriverError {
    #[error("[driver] command queue write failed: {source}")]
    Queue { source: MemError },
    #[error("[driver] {0}")]
    Command(String),
}

/// Counters for the cost rows of a report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Secondary-TLB flushes requested (one per notify that reached the driver).
    pub flushes: u64,
    /// Commands written to the queue by the driver (IOTINVAL.VMA, ATS.INVAL
    /// and IOFENCE.C; not the `btm_snoops`).
    pub commands: u64,
    pub iotinval: u64,
    pub ats_inval: u64,
    /// IOFENCE.C commands; each one is a wait of the flushing CPU.
    pub fences: u64,
    /// Flushes that invalidated a whole PASID (IOTLB or ATC) instead of a
    /// range.
    pub whole_pasid: u64,
    /// `arm-btm` only: IOTINVAL.VMA commands standing for the SMMU's snoop
    /// of the CPU's broadcast TLBI (not driver commands, not in `commands`).
    pub btm_snoops: u64,
    /// ATS invalidation timeouts (`cq_err` bit 1, `cmd_to`) seen and
    /// cleared while spinning on a fence.
    pub ats_timeouts: u64,
    /// Parts submitted again after a timeout (Intel's `qi_submit_sync`
    /// restarts after an Invalidation Time-out Error).
    pub restarts: u64,
    /// The most ATS.INVALs one IOFENCE.C waited for (written between two
    /// fences): 1 for every model but `batched`, which sends one per page
    /// of a flush. Up to `ats_itags` of them are outstanding at once (the
    /// IOMMU's queue stalls on the rest until Invalidate Completions free
    /// ITags).
    pub max_ats_per_fence: u64,
    /// Flushes for which the driver model sent nothing at all (Intel 6.6
    /// with the `(0, -1UL)` range: its page count wraps to 0).
    pub silent: u64,
    /// PRG Responses (ATS.PRGR) sent for the device's Page Requests; each
    /// waits for its own fence. Neither is counted in `commands` or
    /// `fences`: those are the invalidations' cost.
    pub page_responses: u64,
}

/// A flush in progress: the owner, and the DATA of the flush's last fence
/// (0 for a flush that sent nothing: it is done at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlushTicket {
    pub data: u32,
    pub owner: usize,
}

/// The flush that owns the queue.
#[derive(Debug)]
struct Active {
    owner: usize,
    pasid: u32,
    parts: Vec<Vec<Cmd>>,
    /// DATA of each part's fence.
    data: Vec<u32>,
    /// The part being written or waited for.
    part: usize,
    /// Commands of `part` already in the ring.
    written: usize,
    /// The fence of `part` is in the ring.
    fenced: bool,
    /// An ATS invalidation of `part` timed out.
    timed_out: bool,
}

#[derive(Debug)]
pub struct SvaDriver {
    layout: IommuLayout,
    format: QueueFormat,
    tail: u32,
    next_data: u32,
    kind: DriverKind,
    active: Option<Active>,
    /// Generic and batched drivers only: ranges of more pages than this
    /// invalidate the whole PASID (and one ATS.INVAL covers the range).
    pub max_pages: u64,
    pub stats: DriverStats,
    /// Cycle of the last `cq_err` clear this driver asked for.
    cleared_at: Option<u64>,
}

/// The socket's queue: how commands are encoded and how a fence is known
/// to have completed. One per socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueFormat {
    /// The bundled IOMMU (docs/socket.md): its encoding, the plan of the
    /// driver's [`DriverKind`]; each fence (AV=1) writes a fresh DATA to
    /// the completion word at `completion_pa`, which the CPU spins on.
    Bundled { completion_pa: u64 },
    /// A RISC-V IOMMU specification design (docs/socket-riscv.md):
    /// Linux [`crate::riscv::linux::RELEASE`]'s `riscv_iommu_iotlb_inval`
    /// (one IOTINVAL.VMA per page below 2 MiB, else the whole PSCID, the
    /// PASID standing for the PSCID) and `riscv_iommu_cmd_sync` (IOFENCE.C,
    /// PR and PW, no write), in the specification's encoding; a fence is
    /// done when the queue head has passed it. `did` is the device's ID
    /// (for IODIR.INVAL_PDT).
    RiscvSpec { did: u32 },
}

impl QueueFormat {
    /// The parts of a flush of `[start, end)`.
    fn plan(self, kind: DriverKind, start: u64, end: u64, max_pages: u64) -> Vec<Vec<Cmd>> {
        match self {
            QueueFormat::Bundled { .. } => kind.plan(start, end, max_pages),
            QueueFormat::RiscvSpec { .. } => vec![riscv_plan(start, end)],
        }
    }

    /// A model command for `pasid` in the queue's encoding.
    fn encode(self, pasid: u32, c: Cmd) -> Result<[u64; 2], DriverError> {
        match self {
            QueueFormat::Bundled { .. } => encode(pasid, c),
            QueueFormat::RiscvSpec { did } => riscv_encode(did, pasid, c),
        }
    }

    /// The fence closing a part whose completion writes `data`.
    fn fence(self, data: u32) -> Result<[u64; 2], DriverError> {
        match self {
            QueueFormat::Bundled { completion_pa } => Ok(cmd_iofence_c(Some(completion_pa), data)),
            QueueFormat::RiscvSpec { .. } => encode_rv(crate::riscv::linux::sync()),
        }
    }

    /// Before a part's first command: the completion word must not
    /// already hold its DATA.
    fn arm(self, m: &mut Machine) -> Result<(), DriverError> {
        match self {
            QueueFormat::Bundled { completion_pa } => m
                .mem
                .write(completion_pa, 0, 0)
                .map_err(|source| DriverError::Queue { source }),
            QueueFormat::RiscvSpec { .. } => Ok(()),
        }
    }

    /// The fence writing `data` has completed; `tail` is the queue's tail
    /// (nothing follows the fence while its flush owns the queue).
    fn done(self, m: &Machine, tail: u32, data: u32) -> bool {
        match self {
            QueueFormat::Bundled { completion_pa } => m
                .mem
                .read(completion_pa)
                .is_ok_and(|w| w.value == u64::from(data)),
            QueueFormat::RiscvSpec { .. } => m.cq_head() == tail,
        }
    }
}

/// The naturally aligned power-of-two range that covers `[start, end)`,
/// as one ATS Invalidate Request can carry it: (base, size in bytes).
pub fn ats_range(start: u64, end: u64) -> (u64, u64) {
    let start = start & !(PAGE_SIZE - 1);
    let end = end.max(start + 1);
    // 2^63 is every address an Invalidate Request can name (bit 63 clear,
    // bits 62:12 set): the widest range, and where the doubling stops
    const ALL: u64 = 1 << 63;
    let mut size = (end - start)
        .checked_next_power_of_two()
        .map_or(ALL, |s| s.clamp(PAGE_SIZE, ALL));
    loop {
        let base = start & !(size - 1);
        if size == ALL || base + size >= end {
            return (base, size);
        }
        size <<= 1;
    }
}

/// The bundled queue's encoding of a model command for `pasid`.
fn encode(pasid: u32, c: Cmd) -> Result<[u64; 2], DriverError> {
    Ok(match c {
        Cmd::IotlbPage { va } => cmd_iotinval_vma(Some(pasid), Some(va)),
        Cmd::IotlbRange { base, size } => cmd_iotinval_range(pasid, base, size),
        Cmd::IotlbPasid | Cmd::Snoop { size: 0, .. } => cmd_iotinval_vma(Some(pasid), None),
        Cmd::Snoop { base, size } => cmd_iotinval_range(pasid, base, size),
        Cmd::Atc { base, size } => cmd_ats_inval(pasid, base, size),
        Cmd::AtcAll => cmd_ats_inval(pasid, 0, u64::MAX),
        Cmd::AtcAllNoPasid => cmd_ats_inval_no_pasid(0, u64::MAX),
        Cmd::PageResponse { prgi, code } => cmd_ats_prgr(pasid, prgi, code),
        Cmd::ProcessContext => {
            return Err(DriverError::Command(
                "the bundled IOMMU caches no process context: unbind is a RISC-V socket action"
                    .into(),
            ))
        }
    })
}

/// Linux's RISC-V driver's invalidations of `[start, end)` as model
/// commands ([`crate::riscv::linux::iotlb_inval`], end inclusive there).
fn riscv_plan(start: u64, end: u64) -> Vec<Cmd> {
    use crate::riscv::cmd::Command;
    // (the PSCID is filled in by the encoding)
    crate::riscv::linux::iotlb_inval(0, start, end.wrapping_sub(1))
        .into_iter()
        .map(|c| match c {
            Command::IotinvalVma { addr: Some(va), .. } => Cmd::IotlbPage { va },
            _ => Cmd::IotlbPasid,
        })
        .collect()
}

/// A model command in the RISC-V specification's encoding for device
/// `did`, the PASID as the process ID and the PSCID; ATS commands have
/// none (the design has no ATS).
fn riscv_encode(did: u32, pasid: u32, c: Cmd) -> Result<[u64; 2], DriverError> {
    use crate::riscv::cmd::Command;
    let addr = match c {
        Cmd::IotlbPage { va } => Some(va & !(PAGE_SIZE - 1)),
        Cmd::IotlbPasid => None,
        Cmd::ProcessContext => return encode_rv(Command::IodirInvalPdt { did, pid: pasid }),
        other => {
            return Err(DriverError::Command(format!(
                "{other:?} has no RISC-V IOMMU command here (no ATS, no range invalidation)"
            )))
        }
    };
    encode_rv(Command::IotinvalVma {
        pscid: Some(pasid),
        addr,
        gscid: None,
    })
}

fn encode_rv(c: crate::riscv::cmd::Command) -> Result<[u64; 2], DriverError> {
    c.encode()
        .map_err(|e| DriverError::Command(format!("{c:?} does not encode: {e:?}")))
}

impl SvaDriver {
    /// The generic driver (the seed's behaviour).
    pub fn new(layout: IommuLayout, completion_pa: u64) -> Self {
        Self::with_kind(layout, completion_pa, DriverKind::Generic)
    }

    /// A driver following `kind`'s command sequence.
    pub fn with_kind(layout: IommuLayout, completion_pa: u64, kind: DriverKind) -> Self {
        Self::with_format(layout, QueueFormat::Bundled { completion_pa }, kind)
    }

    fn with_format(layout: IommuLayout, format: QueueFormat, kind: DriverKind) -> Self {
        SvaDriver {
            layout,
            format,
            tail: 0,
            next_data: 1,
            kind,
            active: None,
            max_pages: 64,
            stats: DriverStats::default(),
            cleared_at: None,
        }
    }

    /// The driver of a RISC-V IOMMU specification design for device `did`
    /// ([`QueueFormat::RiscvSpec`]). The ring starts at `tail` (after the
    /// bring-up's commands).
    pub fn riscv(layout: IommuLayout, tail: u32, did: u32) -> Self {
        let mut d = Self::with_format(layout, QueueFormat::RiscvSpec { did }, DriverKind::Generic);
        d.tail = tail;
        d
    }

    pub fn kind(&self) -> DriverKind {
        self.kind
    }

    fn entries(&self) -> u32 {
        1 << self.layout.cq_log2n
    }

    /// Which CPU thread owns the queue now.
    pub fn owner(&self) -> Option<usize> {
        self.active.as_ref().map(|a| a.owner)
    }

    /// Start a flush for CPU thread `owner`: `None` while another thread owns
    /// the queue (the caller spins and retries). Otherwise the thread owns
    /// the queue, the first part is written (as much of it as the ring has
    /// room for) and the caller polls the ticket until the flush is done.
    pub fn try_begin(
        &mut self,
        m: &mut Machine,
        owner: usize,
        pasid: u32,
        start: u64,
        end: u64,
    ) -> Result<Option<FlushTicket>, DriverError> {
        let parts = self.format.plan(self.kind, start, end, self.max_pages);
        if parts.is_empty() {
            // Nothing to send: the callback returns without taking the
            // queue or waiting (a ticket no flush has, done at once).
            self.stats.flushes += 1;
            self.stats.silent += 1;
            return Ok(Some(FlushTicket { data: 0, owner }));
        }
        if self.active.is_some() {
            return Ok(None);
        }
        let whole = parts
            .iter()
            .flatten()
            .any(|c| matches!(c, Cmd::IotlbPasid | Cmd::AtcAll | Cmd::AtcAllNoPasid));
        self.stats.flushes += 1;
        self.stats.whole_pasid += u64::from(whole);
        self.begin_parts(m, owner, pasid, parts)
    }

    /// [`SvaDriver::try_begin`] for an unbind of `pasid`: the device's
    /// cached context of it and the whole PASID's IOTLB entries, then the
    /// fence (the specification's order for a process context made
    /// invalid; the bundled queue refuses it).
    pub fn try_begin_unbind(
        &mut self,
        m: &mut Machine,
        owner: usize,
        pasid: u32,
    ) -> Result<Option<FlushTicket>, DriverError> {
        let part = vec![Cmd::ProcessContext, Cmd::IotlbPasid];
        self.begin_whole_pasid(m, owner, pasid, part, false)
    }

    /// [`SvaDriver::try_begin`] for the release callback of `pasid`'s mm
    /// (`mmu_notifier_release`, from exit_mmap), after the caller cleared
    /// the PASID's entry: everything cached of the PASID, then the fence.
    /// 4.14's `intel_mm_release` flushes `(0, -1)` as the whole PASID and
    /// its device TLB; on the RISC-V socket, as an unbind: the device's
    /// cached context of the PASID and its IOTLB entries (no ATS there).
    pub fn try_begin_release(
        &mut self,
        m: &mut Machine,
        owner: usize,
        pasid: u32,
    ) -> Result<Option<FlushTicket>, DriverError> {
        let part = match self.format {
            QueueFormat::Bundled { .. } => vec![Cmd::IotlbPasid, Cmd::AtcAll],
            QueueFormat::RiscvSpec { .. } => vec![Cmd::ProcessContext, Cmd::IotlbPasid],
        };
        self.begin_whole_pasid(m, owner, pasid, part, true)
    }

    /// The PRG Response to Page Request `prgi` of `pasid` (`code`: 0
    /// Success, 1 Invalid Request), then a fence the caller waits for, as
    /// intel-svm's `prq_event_thread` submits its page group response with
    /// `qi_submit_sync` (Linux 4.14). `None` while another thread owns the
    /// queue; no secondary-TLB flush. The RISC-V socket has no PRI.
    pub fn try_begin_page_response(
        &mut self,
        m: &mut Machine,
        owner: usize,
        pasid: u32,
        prgi: u8,
        code: u8,
    ) -> Result<Option<FlushTicket>, DriverError> {
        let part = vec![Cmd::PageResponse { prgi, code }];
        self.begin_whole_pasid(m, owner, pasid, part, false)
    }

    /// One part of whole-PASID commands and its fence (`None` while another
    /// thread owns the queue); `flush`: counted as a secondary-TLB flush.
    fn begin_whole_pasid(
        &mut self,
        m: &mut Machine,
        owner: usize,
        pasid: u32,
        part: Vec<Cmd>,
        flush: bool,
    ) -> Result<Option<FlushTicket>, DriverError> {
        if self.active.is_some() {
            return Ok(None);
        }
        if flush {
            self.stats.flushes += 1;
            self.stats.whole_pasid += 1;
        }
        self.begin_parts(m, owner, pasid, vec![part])
    }

    /// The physical address of the word that makes `pasid` translate: the
    /// bundled IOMMU's PASID-table entry, or the RISC-V socket's process
    /// context (`None` when the socket has none for it).
    pub fn pasid_entry(&self, m: &Machine, pasid: u32) -> Option<u64> {
        match self.format {
            QueueFormat::Bundled { .. } => Some(self.layout.pasid_entry(pasid)),
            QueueFormat::RiscvSpec { .. } => m.process_context(pasid),
        }
    }

    fn begin_parts(
        &mut self,
        m: &mut Machine,
        owner: usize,
        pasid: u32,
        parts: Vec<Vec<Cmd>>,
    ) -> Result<Option<FlushTicket>, DriverError> {
        let data: Vec<u32> = parts
            .iter()
            .map(|_| {
                let d = self.next_data;
                self.next_data = self.next_data.wrapping_add(1).max(1);
                d
            })
            .collect();
        let ticket = FlushTicket {
            data: *data.last().expect("a flush has at least one part"),
            owner,
        };
        self.active = Some(Active {
            owner,
            pasid,
            parts,
            data,
            part: 0,
            written: 0,
            fenced: false,
            timed_out: false,
        });
        self.advance(m)?;
        Ok(Some(ticket))
    }

    /// One spin of the owner: true (and the queue released) once the
    /// flush's last fence has written its DATA. Between parts this writes
    /// the next part as soon as the previous fence completed.
    ///
    /// # Panics
    /// If the ring or the completion word is not writable memory (a setup
    /// error: both are allocated before any flush); [`SvaDriver::try_poll`]
    /// returns that as an error instead.
    pub fn poll(&mut self, m: &mut Machine, t: FlushTicket) -> bool {
        self.try_poll(m, t).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`SvaDriver::poll`], with queue write errors returned.
    pub fn try_poll(&mut self, m: &mut Machine, t: FlushTicket) -> Result<bool, DriverError> {
        match &self.active {
            Some(a) if a.owner == t.owner && a.data.last() == Some(&t.data) => self.advance(m),
            // Not the flush in progress: that one finished earlier.
            _ => Ok(true),
        }
    }

    /// Free entries of the ring (one slot stays empty: head == tail means
    /// empty).
    fn room(&self, m: &Machine) -> u32 {
        let n = self.entries();
        let used = self.tail.wrapping_sub(m.cq_head()) & (n - 1);
        n - 1 - used
    }

    fn push(&mut self, m: &mut Machine, c: [u64; 2]) -> Result<(), DriverError> {
        let pa = self.layout.cq_base + u64::from(self.tail) * 16;
        for (i, dw) in c.iter().enumerate() {
            m.mem
                .write(pa + 8 * i as u64, *dw, 0)
                .map_err(|source| DriverError::Queue { source })?;
        }
        self.tail = (self.tail + 1) & (self.entries() - 1);
        Ok(())
    }

    /// An ATS invalidation timed out (`cq_err` bit 1, RISC-V `cqcsr.cmd_to`):
    /// the IOMMU holds the fence until software clears the error. Linux's
    /// RISC-V IOMMU driver (drivers/iommu/riscv/iommu.c,
    /// `riscv_iommu_cmdq_process`) reads `cqcsr`, and on `CMD_TO` (or
    /// `CMD_ILL`, `CQMF`) writes the value back to clear the flags and warns
    /// ("Command queue error: ... tout: %d"); nothing else is recovered, so
    /// the fence then completes. Here: count it, clear it, keep spinning.
    /// AMD (an IOTLB_INV_TIMEOUT event; the completion wait finishes) and
    /// ARM SMMUv3 (`arm_smmu_cmdq_skip_err` on CERROR_ATC_INV_SYNC acks
    /// the error and the SMMU repeats the CMD_SYNC, which then completes)
    /// go on the same way. Intel differs: `qi_check_fault` on ITE clears it,
    /// marks the pending wait descriptors aborted and returns -EAGAIN, and
    /// `qi_submit_sync` restarts, submitting the same descriptors again
    /// (drivers/iommu/intel/dmar.c): see [`SvaDriver::advance_active`].
    fn check_cmd_to(&mut self, m: &mut Machine, a: &mut Active) {
        if m.cq_err() & CQ_ERR_CMD_TO != 0 && self.cleared_at != Some(m.cycle()) {
            self.stats.ats_timeouts += 1;
            a.timed_out = true;
            m.clear_cq_err();
            // the clear takes effect at the next tick: count once per cycle
            self.cleared_at = Some(m.cycle());
        }
    }

    /// Write what the current part still needs, or check its fence and move
    /// on; true once the last part's fence completed.
    fn advance(&mut self, m: &mut Machine) -> Result<bool, DriverError> {
        let Some(mut a) = self.active.take() else {
            return Ok(true);
        };
        let r = self.advance_active(m, &mut a);
        if !matches!(r, Ok(true)) {
            self.active = Some(a);
        }
        r
    }

    fn advance_active(&mut self, m: &mut Machine, a: &mut Active) -> Result<bool, DriverError> {
        loop {
            let cmds = &a.parts[a.part];
            if !a.fenced {
                if a.written == 0 {
                    self.format.arm(m)?;
                }
                let mut room = self.room(m);
                let before = self.tail;
                while room > 0 && a.written < cmds.len() {
                    let c = cmds[a.written];
                    let words = self.format.encode(a.pasid, c)?;
                    self.push(m, words)?;
                    match c {
                        Cmd::Snoop { .. } => self.stats.btm_snoops += 1,
                        Cmd::ProcessContext => self.stats.commands += 1,
                        Cmd::PageResponse { .. } => self.stats.page_responses += 1,
                        Cmd::Atc { .. } | Cmd::AtcAll | Cmd::AtcAllNoPasid => {
                            self.stats.ats_inval += 1;
                            self.stats.commands += 1;
                        }
                        _ => {
                            self.stats.iotinval += 1;
                            self.stats.commands += 1;
                        }
                    }
                    a.written += 1;
                    room -= 1;
                }
                if room > 0 && a.written == cmds.len() {
                    let fence = self.format.fence(a.data[a.part])?;
                    self.push(m, fence)?;
                    // A PRG Response's fence is no invalidation's cost.
                    if !matches!(cmds.first(), Some(Cmd::PageResponse { .. })) {
                        self.stats.fences += 1;
                        self.stats.commands += 1;
                    }
                    let ats = cmds
                        .iter()
                        .filter(|c| matches!(c, Cmd::Atc { .. } | Cmd::AtcAll | Cmd::AtcAllNoPasid))
                        .count() as u64;
                    self.stats.max_ats_per_fence = self.stats.max_ats_per_fence.max(ats);
                    a.fenced = true;
                }
                if self.tail != before {
                    m.set_cq_tail(self.tail);
                }
                return Ok(false);
            }
            if !self.format.done(m, self.tail, a.data[a.part]) {
                self.check_cmd_to(m, a);
                return Ok(false);
            }
            if a.timed_out && matches!(self.kind, DriverKind::Intel { .. }) {
                // -EAGAIN: submit this part again (same DATA; the word is
                // cleared before its commands are rewritten). A device that
                // never answers keeps the CPU here for good, as in Linux.
                self.stats.restarts += 1;
                a.timed_out = false;
                a.written = 0;
                a.fenced = false;
                continue;
            }
            a.timed_out = false;
            a.part += 1;
            a.written = 0;
            a.fenced = false;
            if a.part == a.parts.len() {
                return Ok(true);
            }
        }
    }
}

#[cfg(test)]
pub(super) mod testkit {
    //! Run a flush against memory alone: decode what the driver wrote to
    //! the ring, and play the IOMMU's part by writing each fence's DATA to
    //! the completion word, checking that nothing follows a fence before
    //! it completed.

    use super::*;
    use crate::mem::PAGE_SHIFT;
    use crate::rtl::{decode_command, Command};
    use crate::sim::machine::MachineParams;

    pub const PASID: u32 = 7;

    /// IOTINVAL.VMA of one 4 KiB page.
    pub fn page(va: u64) -> Command {
        Command::IotinvalVma {
            pasid: Some(PASID),
            range: Some((va, 12)),
        }
    }

    /// ATS.INVAL of the 2^log2-byte range at `base`.
    pub fn ats(base: u64, log2: u32) -> Command {
        Command::AtsInval {
            pasid: Some(PASID),
            range: (base, log2),
        }
    }

    /// What a flush wrote, part by part (each part ends with its fence).
    pub struct Flush {
        pub parts: Vec<Vec<Command>>,
        pub stats: DriverStats,
    }

    /// The commands of part `i` without the fence.
    impl Flush {
        pub fn body(&self, i: usize) -> &[Command] {
            let p = &self.parts[i];
            &p[..p.len() - 1]
        }
    }

    pub fn run(kind: DriverKind, start: u64, end: u64) -> Flush {
        let mut m = Machine::new(MachineParams {
            frames: 64,
            ..MachineParams::default()
        });
        // a 1024-entry ring (host side only: the RTL is not clocked, so
        // its head stays at 0 and every command must fit)
        let cq = m.mem.alloc_contiguous(4).unwrap();
        let completion = m.mem.alloc().unwrap() << PAGE_SHIFT;
        let layout = IommuLayout {
            cq_base: cq << PAGE_SHIFT,
            cq_log2n: 10,
            pasid_table: 0,
            pq_base: 0,
            pq_log2n: 0,
        };
        let mut d = SvaDriver::with_kind(layout, completion, kind);
        let t = d.try_begin(&mut m, 3, PASID, start, end).unwrap().unwrap();
        let mut read = 0u32;
        let mut parts = Vec::new();
        if d.stats.silent > 0 {
            // nothing to send: the queue was not taken, the flush is done
            assert_eq!((d.owner(), d.tail), (None, 0));
            assert!(d.poll(&mut m, t));
            return Flush {
                parts,
                stats: d.stats,
            };
        }
        assert_eq!(d.owner(), Some(3));
        loop {
            let mut part = Vec::new();
            while read != d.tail {
                let pa = layout.cq_base + u64::from(read) * 16;
                let c = [
                    m.mem.read(pa).unwrap().value,
                    m.mem.read(pa + 8).unwrap().value,
                ];
                part.push(decode_command(c));
                read += 1;
            }
            let Some(&Command::IofenceC {
                addr: Some(addr),
                data,
            }) = part.last()
            else {
                panic!("a part must end with a fence with AV=1: {part:?}");
            };
            assert_eq!(addr, completion);
            assert!(
                part[..part.len() - 1]
                    .iter()
                    .all(|c| !matches!(c, Command::IofenceC { .. })),
                "one fence per part: {part:?}"
            );
            parts.push(part);
            // the fence has not completed: spinning writes nothing
            for _ in 0..3 {
                assert!(!d.poll(&mut m, t));
                assert_eq!(d.tail, read, "nothing written before the fence completed");
            }
            m.mem.write(completion, u64::from(data), 0).unwrap();
            if d.poll(&mut m, t) {
                assert_eq!(data, t.data, "the last fence carries the ticket's DATA");
                assert_eq!(d.tail, read, "nothing after the last fence");
                assert_eq!(d.owner(), None, "the queue is released");
                break;
            }
            assert!(parts.len() < 8, "runaway flush");
        }
        Flush {
            parts,
            stats: d.stats,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::*;
    use super::*;
    use crate::rtl::Command;

    #[test]
    fn ats_range_covers_and_aligns() {
        assert_eq!(
            ats_range(0x7f00_0000_1000, 0x7f00_0000_2000),
            (0x7f00_0000_1000, 0x1000)
        );
        // two pages straddling an 8K boundary need 16K
        assert_eq!(ats_range(0x3000, 0x5000), (0x0, 0x8000));
        assert_eq!(ats_range(0x20_0000, 0x40_0000), (0x20_0000, 0x20_0000));
        // the whole address space (6.6's flush_tlb_mm): every address an
        // Invalidate Request can name, not a doubling that never ends
        assert_eq!(ats_range(0, u64::MAX), (0, 1 << 63));
        assert_eq!(ats_range(0x7f00_0000_0000, u64::MAX), (0, 1 << 63));
        for (s, e) in [
            (0x1000u64, 0x9000u64),
            (0x5000, 0x6000),
            (0x1f_f000, 0x20_1000),
        ] {
            let (b, sz) = ats_range(s, e);
            assert!(
                sz.is_power_of_two() && b % sz == 0 && b <= s && b + sz >= e,
                "{s:#x}..{e:#x}"
            );
        }
    }

    #[test]
    fn generic_one_page_is_one_fenced_batch() {
        let f = run(DriverKind::Generic, 0x7f00_0000_1000, 0x7f00_0000_2000);
        assert_eq!(f.parts.len(), 1);
        assert_eq!(
            f.body(0),
            [page(0x7f00_0000_1000), ats(0x7f00_0000_1000, 12)]
        );
        assert_eq!(
            (f.stats.flushes, f.stats.commands, f.stats.fences),
            (1, 3, 1)
        );
    }

    #[test]
    fn generic_three_pages_unaligned() {
        let f = run(DriverKind::Generic, 0x7f00_0000_3000, 0x7f00_0000_6000);
        assert_eq!(f.parts.len(), 1);
        assert_eq!(
            f.body(0),
            [
                page(0x7f00_0000_3000),
                page(0x7f00_0000_4000),
                page(0x7f00_0000_5000),
                ats(0x7f00_0000_0000, 15),
            ]
        );
        assert_eq!(f.stats.whole_pasid, 0);
    }

    #[test]
    fn generic_2m_goes_whole_pasid_above_max_pages() {
        let f = run(DriverKind::Generic, 0x7f00_0020_0000, 0x7f00_0040_0000);
        assert_eq!(
            f.body(0),
            [
                Command::IotinvalVma {
                    pasid: Some(PASID),
                    range: None
                },
                ats(0x7f00_0020_0000, 21),
            ]
        );
        assert_eq!(f.stats.whole_pasid, 1);
        // 64 pages is still per page
        let f = run(DriverKind::Generic, 0x40_0000, 0x44_0000);
        assert_eq!(f.body(0).len(), 65);
        assert_eq!(f.stats.iotinval, 64);
    }

    #[test]
    fn stats_count_what_was_written() {
        for k in DriverKind::ALL {
            let f = run(k, 0x7f00_0000_3000, 0x7f00_0000_6000);
            let all: Vec<&Command> = f.parts.iter().flatten().collect();
            let n = |p: fn(&Command) -> bool| all.iter().filter(|c| p(c)).count() as u64;
            let fences = n(|c| matches!(c, Command::IofenceC { .. }));
            let iot = n(|c| matches!(c, Command::IotinvalVma { .. }));
            let ats = n(|c| matches!(c, Command::AtsInval { .. }));
            assert_eq!(f.stats.fences, fences, "{k}");
            assert_eq!(f.stats.iotinval + f.stats.btm_snoops, iot, "{k}");
            assert_eq!(f.stats.ats_inval, ats, "{k}");
            assert_eq!(f.stats.commands, fences + ats + f.stats.iotinval, "{k}");
            assert_eq!(f.stats.flushes, 1);
            assert_eq!(f.stats.fences, f.parts.len() as u64);
            let most = f
                .parts
                .iter()
                .map(|p| {
                    p.iter()
                        .filter(|c| matches!(c, Command::AtsInval { .. }))
                        .count()
                })
                .max()
                .unwrap() as u64;
            assert_eq!(f.stats.max_ats_per_fence, most, "{k}");
            assert_eq!(most, if k == DriverKind::Batched { 3 } else { 1 }, "{k}");
        }
    }
}
