//! The I/O page fault worker: the kernel thread that takes the device's
//! Page Requests off the IOMMU's page-request queue (PQ) and runs the
//! fault handler of each ([`crate::mm::IopfOp`]). It is a thread of its own
//! (`IOPF_TID`, after the scenario's CPUs): it takes one step in every
//! round of every step of the timeline while it has work, after the CPU
//! threads the step names, so its interleaving is the timeline's too.
//!
//! A timeline that names it (`iopf: resume until vma`), or stops a device
//! access at its `page-request`, schedules it instead, as `explore` does:
//! it then runs only in the steps that name it, and the final drain.

use super::{RunError, Sim};
use crate::checker::key;
use crate::mem::MemError;
use crate::mm::{Cx, IopfOp, KernelPath, Progress, WaitOn};
use crate::rtl::{decode_page_request, PQ_RECORD_BYTES, PRG_SUCCESS};
use crate::scenario::{process_of, ThreadRef, MAX_CPUS, MAX_DEVS};
use crate::sim::outcome::ThreadLine;

/// The worker's thread id (page-table lock holder, queue owner).
pub(super) const IOPF_TID: usize = MAX_CPUS;

/// The worker's state.
#[derive(Debug)]
pub(super) struct Iopf {
    /// The PQ ring: base PA and log2 of its records; `None`: no PRI.
    pub pq: Option<(u64, u8)>,
    /// The next record to read (software's `pqh`).
    head: u32,
    op: Option<IopfOp>,
    /// The process bound to the handled request's PASID (None: none is).
    process: Option<u8>,
    /// The checkpoints the handler in progress went through.
    path: Vec<&'static str>,
    /// Per device: the Page Requests of its current access the worker
    /// took off the queue.
    pub requests: Vec<u32>,
    /// The timeline (or explore) schedules the worker: it runs only in the
    /// steps that name it.
    pub scheduled: bool,
    /// The checkpoint the worker reached last.
    pub reached: Option<&'static str>,
    /// Per device: its access stops once it has sent this many Page
    /// Requests (`until page-request`), and whether it got there.
    pub stop_at: Vec<Option<u32>>,
    pub stopped: Vec<bool>,
}

impl Iopf {
    pub fn new(pq: Option<(u64, u8)>) -> Self {
        Iopf {
            pq,
            head: 0,
            op: None,
            process: None,
            path: Vec::new(),
            requests: vec![0; MAX_DEVS as usize],
            scheduled: false,
            reached: None,
            stop_at: vec![None; MAX_DEVS as usize],
            stopped: vec![false; MAX_DEVS as usize],
        }
    }

    /// A handler is running (not only records queued).
    pub fn in_handler(&self) -> bool {
        self.op.is_some()
    }

    /// The device the running handler answers.
    pub fn handling(&self) -> Option<u8> {
        self.op.as_ref().map(|op| op.req.prgi)
    }

    /// A handler is running, or a record waits in the queue.
    pub fn busy(&self, tail: u32) -> bool {
        self.op.is_some() || (self.pq.is_some() && tail != self.head)
    }
}

/// What the worker did in a round.
pub(super) enum Worker {
    /// Nothing to do.
    Idle,
    /// It took a step; the checkpoint it reached, if any.
    Ran(Option<&'static str>),
    /// It spins on a lock, the queue or a fence; true: for its PRG
    /// Response (not an invalidation's cost).
    Waits(WaitOn, bool),
}

impl Sim<'_> {
    /// The two words of page-request queue record `index`.
    fn pq_record(&self, base: u64, index: u32) -> Result<(u64, u64), MemError> {
        let at = base + u64::from(index) * PQ_RECORD_BYTES;
        Ok((self.m.mem.read(at)?.value, self.m.mem.read(at + 8)?.value))
    }

    /// The Page Requests of device `d`'s current access so far: those the
    /// worker took, and those still in the queue.
    pub(super) fn page_requests(&self, d: u8) -> u32 {
        let taken = self.iopf.requests.get(d as usize).copied().unwrap_or(0);
        taken + self.queued_requests(d)
    }

    /// The records of device `d` in the page-request queue, not yet taken.
    pub(super) fn queued_requests(&self, d: u8) -> u32 {
        let Some((base, log2n)) = self.iopf.pq else {
            return 0;
        };
        let (tail, mask) = (self.m.pq_tail(), (1u32 << log2n) - 1);
        let mut head = self.iopf.head;
        let mut n = 0;
        while head != tail {
            if let Ok((a, b)) = self.pq_record(base, head) {
                if decode_page_request(a, b).is_some_and(|r| r.prgi == d) {
                    n += 1;
                }
            }
            head = (head + 1) & mask;
        }
        n
    }

    /// The process of the request the worker handles (or would take next).
    pub(super) fn iopf_process(&self) -> Option<u8> {
        if self.iopf.op.is_some() {
            return self.iopf.process;
        }
        let (base, _) = self.iopf.pq?;
        if self.m.pq_tail() == self.iopf.head {
            return None;
        }
        let (a, b) = self.pq_record(base, self.iopf.head).ok()?;
        let req = decode_page_request(a, b)?;
        process_of(req.pasid, self.k.procs.len())
    }

    /// The worker owes device `d` a PRG Response: a Page Request of its is
    /// queued or being handled.
    pub(super) fn owes(&self, d: u8) -> bool {
        self.iopf.handling() == Some(d) || self.queued_requests(d) > 0
    }

    /// One round of the worker: take the next record off the PQ when idle,
    /// then one step of its handler.
    pub(super) fn iopf_round(&mut self, line: usize) -> Result<Worker, RunError> {
        let Some((base, log2n)) = self.iopf.pq else {
            return Ok(Worker::Idle);
        };
        if self.iopf.op.is_none() {
            let tail = self.m.pq_tail();
            if tail == self.iopf.head {
                return Ok(Worker::Idle);
            }
            let (dw0, dw1) = match self.pq_record(base, self.iopf.head) {
                Ok(words) => words,
                Err(e) => return Err(self.err(line, format!("iopf: reading the PQ: {e}"))),
            };
            self.iopf.head = (self.iopf.head + 1) & ((1u32 << log2n) - 1);
            self.m.set_pq_head(self.iopf.head);
            let Some(req) = decode_page_request(dw0, dw1) else {
                return Err(self.err(
                    line,
                    format!("iopf: the IOMMU wrote a page-request record that does not decode ({dw0:#x}, {dw1:#x}): check the PQ writer against docs/socket.md"),
                ));
            };
            if let Some(n) = self.iopf.requests.get_mut(req.prgi as usize) {
                *n += 1;
            }
            self.iopf.path.clear();
            self.iopf.process = process_of(req.pasid, self.k.procs.len());
            self.iopf.op = Some(match self.iopf.process {
                Some(_) => IopfOp::new(req, &self.s.paths),
                None => IopfOp::unknown_pasid(req),
            });
        }
        let Some(op) = self.iopf.op.as_mut() else {
            return Ok(Worker::Idle);
        };
        // the handler runs in the process bound to the request's PASID (an
        // unknown PASID's answer touches no process)
        let process = self.iopf.process.unwrap_or(0);
        self.k.cur = usize::from(process);
        let s = self.s;
        let mut cx = Cx::new(
            &mut self.m,
            &mut self.k,
            IOPF_TID,
            &mut self.events,
            &s.paths,
        );
        let p = op.step(&mut cx);
        cx.key_events();
        let p = match p {
            Ok(p) => p,
            Err(e) => return Err(self.err(line, format!("iopf: {e}"))),
        };
        let cycle = self.m.cycle();
        let (req, responding, finished) = (op.req, op.responding(), op.finished());
        let code = op.code();
        let r = match p {
            Progress::Reached(cp) => {
                self.iopf.path.push(cp);
                self.iopf.reached = Some(cp);
                if let Some(sig) = &mut self.sig {
                    sig.iopf(cycle, cp);
                }
                Worker::Ran(Some(cp))
            }
            Progress::Wait(w) => Worker::Waits(w, responding),
            Progress::Done => Worker::Ran(None),
        };
        if finished {
            self.released(
                IOPF_TID,
                line,
                "iopf: the I/O page fault handler",
                &self.iopf.path,
            )?;
            self.iopf.op = None;
            let what = if req.write { "write" } else { "read" };
            let at = key(process, req.va);
            let page = match self.page_of(at) {
                Some(i) => self.s.pages[i].name.clone(),
                None => self.chk.describe_va(at),
            };
            let answer = if code == PRG_SUCCESS {
                "Success"
            } else {
                "Invalid Request"
            };
            self.lines.push(ThreadLine {
                thread: ThreadRef::Dev(req.prgi),
                text: format!(
                    "page request ({what} {page}), the kernel's I/O page fault handler: {} -> {answer}",
                    self.iopf.path.join(", ")
                ),
            });
            if let Some(sig) = &mut self.sig {
                sig.iopf(cycle, "");
            }
        }
        Ok(r)
    }
}
