//! A run driven step by step from outside: what `explore` uses to play a
//! schedule, one move (one timeline step) at a time, looking at the
//! threads between moves. A session ends like a timeline: the drain, the
//! settle, the verdict.

use super::{label, RunError, RunOptions, Sim};
use crate::mm::Policy;
use crate::scenario::{Entry, Scenario};
use crate::sim::outcome::{RunReport, SlotReport};
use std::time::Instant;

/// A scenario's machine, run one step at a time.
pub struct Session<'s> {
    sim: Sim<'s>,
    slots: Vec<SlotReport>,
    t0: Instant,
    policy: Policy,
}

impl<'s> Session<'s> {
    /// Set up the machine for `s` (its pages mapped, the RTL out of reset),
    /// without running any step. Waves are not written.
    pub fn new(s: &'s Scenario, policy: Policy) -> Result<Session<'s>, RunError> {
        let opts = RunOptions::policy(policy);
        Ok(Session {
            sim: Sim::new(s, &opts)?,
            slots: Vec::new(),
            t0: Instant::now(),
            policy,
        })
    }

    /// Run one step with these entries (as a timeline step on `line`; 0 for
    /// a step no file holds). A step whose only thread would spin on a
    /// lock held by a thread it does not run gives the `Timeline` error
    /// with `blocked_by` set. Like any error, it ends this session: the
    /// thread may have run part of its path before it found the lock held
    /// (explore's player replays its moves into a new session and chooses
    /// another).
    pub fn step(&mut self, entries: &[Entry], line: usize) -> Result<&SlotReport, RunError> {
        let n = self.slots.len();
        let slot = self.sim.run_slot(&label(n), n as u64, line, entries)?;
        self.slots.push(slot);
        Ok(&self.slots[n])
    }

    /// CPU thread `i` is inside a kernel path (stopped at a checkpoint).
    pub fn cpu_busy(&self, i: usize) -> bool {
        self.sim.cpus.get(i).is_some_and(|c| c.op.is_some())
    }

    /// The checkpoint CPU thread `i` reached last (in its current path, or
    /// the last one of the path it finished).
    pub fn cpu_reached(&self, i: usize) -> Option<&'static str> {
        self.sim.reached.get(i).copied().flatten()
    }

    /// Device `d` has an access in flight (started with `until translated`).
    pub fn dev_busy(&self, d: u8) -> bool {
        self.sim.devs.get(d as usize).is_some_and(|p| p.is_some())
    }

    /// The device's ATC holds a translation of named page `page` now.
    pub fn atc_holds(&self, page: usize) -> bool {
        page < self.sim.s.pages.len() && self.sim.m.probe(page)[1].is_some()
    }

    /// A thread other than `i` holds a lock that could block CPU thread `i`
    /// (a page-table or rmap lock, or its process's mmap_lock).
    pub fn others_hold_locks(&self, i: usize) -> bool {
        let process = self.sim.cpus.get(i).map_or(0, |c| c.process);
        let mmap = crate::mm::mmap_lock_of(usize::from(process));
        self.sim.k.ptl.held_by_others(i, mmap)
    }

    /// Schedule the I/O page fault worker (when the device has PRI): it
    /// moves only in steps that name it, and device accesses may stop at
    /// their Page Requests (what `explore` plays).
    pub fn schedule_iopf(&mut self) {
        self.sim.iopf.scheduled = self.sim.iopf.pq.is_some();
    }

    /// The worker is scheduled.
    pub fn iopf_scheduled(&self) -> bool {
        self.sim.iopf.scheduled
    }

    /// The worker has work: a handler in progress, or a record queued.
    pub fn iopf_busy(&self) -> bool {
        self.sim.iopf.busy(self.sim.m.pq_tail())
    }

    /// The worker is inside a handler.
    pub fn iopf_in_handler(&self) -> bool {
        self.sim.iopf.in_handler()
    }

    /// The checkpoint the worker reached last.
    pub fn iopf_reached(&self) -> Option<&'static str> {
        self.sim.iopf.reached
    }

    /// Device `d`'s access stopped at its Page Request.
    pub fn dev_at_page_request(&self, d: u8) -> bool {
        self.sim
            .iopf
            .stopped
            .get(d as usize)
            .copied()
            .unwrap_or(false)
    }

    /// A thread other than the worker holds a lock that could block it (a
    /// page-table or rmap lock, or the mmap_lock of its request's process).
    pub fn others_hold_worker_locks(&self) -> bool {
        let process = self.sim.iopf_process().unwrap_or(0);
        let mmap = crate::mm::mmap_lock_of(usize::from(process));
        self.sim.k.ptl.held_by_others(super::iopf::IOPF_TID, mmap)
    }

    /// Feed the state the run's future depends on into `h` (for
    /// `explore`'s pruning); None when the RTL's state cannot be digested.
    pub fn digest(&self, h: &mut crate::sim::digest::StateHasher) -> Option<()> {
        self.sim.digest(h)
    }

    /// What the RTL's cover points have counted so far.
    pub fn coverage(&self) -> crate::coverage::Coverage {
        self.sim.m.coverage()
    }

    /// The current cycle.
    pub fn cycle(&self) -> u64 {
        self.sim.m.cycle()
    }

    /// The steps run so far.
    pub fn slots(&self) -> &[SlotReport] {
        &self.slots
    }

    /// End the run as a timeline ends: every thread still inside a path or
    /// an access runs to its end, the hardware settles, the checker judges.
    pub fn finish(mut self) -> Result<RunReport, RunError> {
        let n = self.slots.len();
        let drained = self.sim.drain_and_settle(n)?;
        self.slots.extend(drained);
        let opts = RunOptions::policy(self.policy);
        self.sim.finish(self.slots, self.t0, &opts)
    }
}
