//! The deterministic scheduler: one `[Time N+k]` step in rounds, its
//! watchdog, and what each thread did in it.

use super::iopf::{Worker, IOPF_TID};
use super::{RunError, Sim};
use crate::mm::{Cx, HostEvent, Progress, WaitOn};
use crate::scenario::{Entry, ThreadRef, Until, MAX_CPUS, PAGE_REQUEST};
use crate::sim::outcome::{SlotReport, ThreadLine};

/// A CPU thread the step runs: where it stops, whether it got there, and
/// the checkpoints it went through in this step.
struct Running<'e> {
    cpu: usize,
    until: &'e Until,
    done: bool,
    did: Vec<&'static str>,
    /// The process the line last showed the thread in (an rmap walk moves
    /// it).
    process: u8,
}

/// What a CPU line shows where an rmap walk moved the thread to another
/// process.
const IN_PROCESS: [&str; crate::scenario::MAX_PROCESSES] =
    ["(process 0)", "(process 1)", "(process 2)", "(process 3)"];

impl Sim<'_> {
    /// One step of CPU thread `i`.
    pub(super) fn step_cpu(&mut self, i: usize, line: usize) -> Result<Progress, RunError> {
        // switch to its process (`current->mm`)
        self.k.cur = usize::from(self.cpus[i].process);
        let s = self.s;
        let mut cx = Cx::new(&mut self.m, &mut self.k, i, &mut self.events, &s.paths);
        let had = self.cpus[i].op.is_some();
        let r = match self.cpus[i].op.as_mut() {
            Some(op) => op.step(&mut cx).map(|p| (p, op.finished())),
            None => Ok((Progress::Done, true)),
        };
        // the events' addresses as the checker knows them; an rmap walk may
        // have moved the thread to another process
        cx.key_events();
        self.cpus[i].process = self.k.cur as u8;
        let (p, finished) = r.map_err(|e| self.err(line, format!("cpu{i}: {e}")))?;
        if let Progress::Reached(cp) = p {
            self.cpus[i].path.push(cp);
        }
        if finished && had {
            let who = format!("cpu{i}: '{}'", self.cpus[i].text);
            self.released(i, line, &who, &self.cpus[i].path)?;
            self.cpus[i].op = None;
            // after the step's own events: its PTE changes come first
            self.events.push(HostEvent::Returned { tid: i });
        } else if finished {
            self.cpus[i].op = None;
        }
        Ok(p)
    }

    /// Run one step of the timeline (`entries`, written on `line`; 0 for
    /// the final drain): start what each entry asks, then rounds until every
    /// named CPU thread reached its stop and every device access its end or
    /// its checkpoint, under the watchdog.
    pub(super) fn run_slot(
        &mut self,
        label: &str,
        index: u64,
        line: usize,
        entries: &[Entry],
    ) -> Result<SlotReport, RunError> {
        let start = self.m.cycle();
        self.line = line;
        self.lines.clear();
        if let Some(at) = self.stalled {
            // A device made no progress: the run is over, nothing runs.
            return Ok(SlotReport {
                preempted: Vec::new(),
                label: label.to_string(),
                line,
                start,
                end: start,
                lines: vec![ThreadLine {
                    thread: entries.first().map_or(ThreadRef::Cpu(0), |e| e.thread),
                    text: format!("not run: the run stopped at cycle {at}, when a device access made no progress"),
                }],
            });
        }
        if let Some(sig) = &mut self.sig {
            sig.slot(start, index);
        }
        for e in entries {
            if let ThreadRef::Cpu(i) = e.thread {
                self.reached[i] = None;
            }
            self.start(e, line)?;
        }
        let mut running: Vec<Running> = entries
            .iter()
            .filter_map(|e| match e.thread {
                ThreadRef::Cpu(i) => Some(Running {
                    cpu: i,
                    until: &e.until,
                    done: false,
                    did: Vec::new(),
                    process: self.cpus[i].process,
                }),
                ThreadRef::Dev(_) | ThreadRef::Iopf => None,
            })
            .collect();
        // The worker: where a step that names it stops it (a scheduled
        // worker runs only in the steps that name it).
        let named = entries.iter().find(|e| e.thread == ThreadRef::Iopf);
        let mut worker_done = false;
        let mut worker_did: Vec<&'static str> = Vec::new();
        let step = self.s.params.cpu_step_cycles.max(1);
        loop {
            let (progressed, waits) = self.round(&mut running, line)?;
            let worker_live = !self.iopf.scheduled || (named.is_some() && !worker_done);
            let worker = if worker_live {
                self.iopf_round(line)?
            } else {
                Worker::Idle
            };
            if let (Worker::Ran(Some(cp)), Some(e)) = (&worker, named) {
                worker_did.push(cp);
                // From its PRG Response to the fence's completion it owns
                // the IOMMU's queue, interrupts off (qi_submit_sync): no
                // stop between.
                worker_done = e.until.name() == Some(*cp)
                    || (e.until == Until::Next && *cp != crate::mm::IOPF_RESPOND);
            }
            self.absorb_events();
            let cpus_done = running.iter().all(|r| r.done);
            let worker_ran = matches!(worker, Worker::Ran(_));
            let busy = self.iopf.busy(self.m.pq_tail());
            // The worker is where the step leaves it: idle, or parked.
            let worker_settled = match named.map(|e| &e.until) {
                _ if !self.iopf.scheduled => !busy,
                None => true,
                Some(Until::End) => !busy,
                Some(_) => worker_done,
            };
            let devices_done = cpus_done && self.devices_done(entries, line)?;
            if devices_done && worker_settled {
                if progressed || worker_ran {
                    self.tick_n(step)?;
                }
                break;
            }
            if devices_done && !busy {
                if let Some(e) = named {
                    return Err(self.err(
                        line,
                        format!(
                            "iopf: '{}': the worker did not get there, and no Page Request is left to handle (it went through: {}): stop a device access at 'page-request' in this step or an earlier one first",
                            e.text,
                            if worker_did.is_empty() { "nothing".into() } else { worker_did.join(", ") }
                        ),
                    ));
                }
            }
            if !progressed {
                self.check_deadlock(&running, &waits, worker_live, line)?;
            }
            if let Worker::Waits(WaitOn::Lock { id, holder }, _) = worker {
                self.check_worker_lock(&running, (id, holder), line)?;
            }
            if cpus_done && !worker_live {
                self.check_owed(entries, line)?;
            }
            // The spin is the invalidations' cost; the worker's wait for its
            // PRG Response's fence is not.
            let worker_spins = match worker {
                Worker::Waits(WaitOn::Fence | WaitOn::Queue, response) => Some(response),
                _ => None,
            };
            let spinning = waits
                .iter()
                .filter(|(_, w)| matches!(w, WaitOn::Fence | WaitOn::Queue))
                .count() as u64;
            self.spin_cycles += step * (spinning + u64::from(worker_spins == Some(false)));
            let spinning = spinning + u64::from(worker_spins.is_some());
            // A round in which CPU threads (or the I/O page fault worker)
            // ran costs a step; waiting only for the device advances one
            // cycle at a time, or, while nothing happens, up to the
            // watchdog's limit at once: no round between would have done
            // anything (no thread moves or spins).
            if (running.is_empty() || (cpus_done && !progressed)) && !worker_ran {
                let limit =
                    (start + self.s.params.watchdog_cycles + 1).saturating_sub(self.m.cycle());
                self.tick_upto(if spinning == 0 { limit } else { 1 })?;
            } else {
                self.tick_n(step)?;
            }
            if self.m.cycle() - start > self.s.params.watchdog_cycles {
                if cpus_done && worker_settled && self.iopf.scheduled && busy {
                    // The timeline parked the worker with a Page Request
                    // unanswered: the device waits behind it, no verdict.
                    return Err(self.err(
                        line,
                        format!(
                            "a device access of this step made no progress in {} cycles while the I/O page fault worker, which this step does not run (it stopped after '{}'), owes a PRG Response (the bundled device serves one access at a time: the others wait behind the one that asked): add 'iopf: resume' to this step",
                            self.m.cycle() - start,
                            self.iopf.reached.unwrap_or("nothing yet")
                        ),
                    ));
                }
                if cpus_done && worker_settled {
                    // Only device accesses are left: no progress.
                    self.device_stalled(start, entries);
                    break;
                }
                return Err(self.watchdog(start, entries, &waits, line));
            }
        }
        let mut lines: Vec<ThreadLine> = running
            .iter()
            .map(|r| {
                let stop = if self.cpus[r.cpu].op.is_some() {
                    " ... preempted"
                } else {
                    ""
                };
                ThreadLine {
                    thread: ThreadRef::Cpu(r.cpu),
                    text: format!(
                        "{}: {}{stop}",
                        self.cpus_text(r.cpu, entries),
                        r.did.join(", ")
                    ),
                }
            })
            .collect();
        if let Some(e) = named {
            let stop = if self.iopf.in_handler() {
                " ... stopped"
            } else {
                ""
            };
            lines.push(ThreadLine {
                thread: ThreadRef::Iopf,
                text: format!("{}: {}{stop}", e.text, worker_did.join(", ")),
            });
        }
        lines.append(&mut self.lines);
        let preempted = (0..MAX_CPUS)
            .filter(|i| self.cpus[*i].op.is_some() && !running.iter().any(|r| r.cpu == *i))
            .collect();
        Ok(SlotReport {
            preempted,
            label: label.to_string(),
            line,
            start,
            end: self.m.cycle(),
            lines,
        })
    }

    /// One round: every running CPU thread that has not reached its stop
    /// takes one kernel-path step. Whether any reached a checkpoint, and
    /// who waits on what.
    fn round(
        &mut self,
        running: &mut [Running],
        line: usize,
    ) -> Result<(bool, Vec<(usize, WaitOn)>), RunError> {
        let mut waits = Vec::new();
        let mut progressed = false;
        for r in running.iter_mut().filter(|r| !r.done) {
            let i = r.cpu;
            match self.step_cpu(i, line)? {
                Progress::Reached(cp) => {
                    progressed = true;
                    let now = self.cpus[i].process;
                    if now != r.process {
                        r.did.push(IN_PROCESS[usize::from(now)]);
                        r.process = now;
                    }
                    r.did.push(cp);
                    self.reached[i] = Some(cp);
                    if let Some(sig) = &mut self.sig {
                        sig.cpu(self.m.cycle(), i, &format!("{}: {cp}", self.cpus[i].text));
                    }
                    if r.until.name() == Some(cp) || *r.until == Until::Next {
                        r.done = true;
                    } else if self.cpus[i].op.is_none() {
                        if let Some(u) = r.until.name() {
                            return Err(self.err(
                                line,
                                format!(
                                    "cpu{i} finished '{}' without reaching checkpoint '{u}' (it went through: {}); the page may not have been write-protected, or the checkpoint was already passed",
                                    self.cpus[i].text,
                                    self.cpus[i].path.join(", ")
                                ),
                            ));
                        }
                        r.done = true;
                    }
                }
                Progress::Wait(w) => {
                    waits.push((i, w));
                    if let Some(sig) = &mut self.sig {
                        let what = match w {
                            WaitOn::Lock { id, .. } => &lock_wait(id),
                            WaitOn::Queue => "spins on the IOMMU queue",
                            WaitOn::Fence => "spins on the fence",
                        };
                        sig.cpu(self.m.cycle(), i, &format!("{}: {what}", self.cpus[i].text));
                    }
                }
                Progress::Done => r.done = true,
            }
            if self.cpus[i].op.is_none() {
                self.cpus[i].path.clear();
            }
        }
        Ok((progressed, waits))
    }

    /// Every device access of the step has its response, or reached the
    /// checkpoint it stops at; an access that ended without reaching it is
    /// an error naming the line.
    fn devices_done(&self, entries: &[Entry], line: usize) -> Result<bool, RunError> {
        let mut done = true;
        for e in entries {
            let ThreadRef::Dev(d) = e.thread else {
                continue;
            };
            if self.iopf.stop_at[d as usize].is_some() {
                // `until page-request` (or explore's next stop)
                let (stopped, finished) = (
                    self.iopf.stopped[d as usize],
                    self.devs[d as usize].is_none(),
                );
                if finished && !stopped && e.until.name() == Some(PAGE_REQUEST) {
                    return Err(self.err(
                        line,
                        format!(
                            "dev{d} finished '{}' without reaching checkpoint 'page-request': it sent no Page Request (its translation granted the access, or the IOMMU answered it at once); drop 'until'",
                            e.action_text()
                        ),
                    ));
                }
                done &= stopped || finished;
                continue;
            }
            let d = d as usize;
            if e.until.name() == Some("requested") {
                // taken by the device (or already answered)
                done &= self.devs[d].is_none() || !self.m.dev_waiting(d as u8);
                continue;
            }
            done &= match (e.until.stops(), self.dev_translated[d]) {
                (false, _) => self.devs[d].is_none(),
                (true, Some(_)) => true,
                (true, None) if self.devs[d].is_none() => {
                    return Err(self.err(
                        line,
                        format!(
                            "dev{d} finished '{}' without reaching checkpoint 'translated': no translation was sent for it (its ATC held one, or the walk faulted); drop 'until', or let the ATC lose the page first",
                            e.action_text()
                        ),
                    ));
                }
                (true, None) => false,
            };
        }
        Ok(done)
    }

    /// Every CPU thread still running waits for a lock held by a
    /// thread this step does not run: it can never finish.
    fn check_deadlock(
        &self,
        running: &[Running],
        waits: &[(usize, WaitOn)],
        worker_live: bool,
        line: usize,
    ) -> Result<(), RunError> {
        let live: Vec<usize> = running.iter().filter(|r| !r.done).map(|r| r.cpu).collect();
        let stuck = !waits.is_empty()
            && waits.len() == live.len()
            && waits.iter().all(|(_, w)| {
                matches!(w, WaitOn::Lock { holder, .. }
                    if !live.contains(holder) && (*holder != IOPF_TID || !worker_live))
            });
        match waits.first() {
            Some(&(i, WaitOn::Lock { id, holder })) if stuck => {
                let msg = if holder == IOPF_TID {
                    format!(
                        "cpu{i} {} held by the I/O page fault worker, which this step does not run (it stopped after '{}'): add 'iopf: resume' to this step, or stop the worker before it takes the lock",
                        lock_wait(id),
                        self.iopf.reached.unwrap_or("?")
                    )
                } else {
                    format!(
                        "cpu{i} {} held by cpu{holder}, which this step does not run (cpu{holder} stopped after '{}'): resume cpu{holder} in this step, or stop it before it takes the lock",
                        lock_wait(id),
                        self.cpus[holder].path.last().unwrap_or(&"?")
                    )
                };
                Err(self.blocked(line, msg, Some(holder)))
            }
            _ => Ok(()),
        }
    }

    /// The I/O page fault worker waits for lock `id`, which `holder`
    /// holds: an error when `holder` is a CPU thread this step does not
    /// run (it can never let go).
    fn check_worker_lock(
        &self,
        running: &[Running],
        (id, holder): (u64, usize),
        line: usize,
    ) -> Result<(), RunError> {
        let live = running.iter().any(|r| r.cpu == holder && !r.done);
        if live || holder >= MAX_CPUS {
            return Ok(());
        }
        let msg = format!(
            "the kernel's I/O page fault handler (answering a device's Page Request) {} held by cpu{holder}, which this step does not run (cpu{holder} stopped after '{}'): resume cpu{holder} in this step, or stop it before it takes the lock",
            lock_wait(id),
            self.cpus[holder].path.last().unwrap_or(&"?")
        );
        // A scheduled worker's move is blocked: explore puts the machine
        // back and moves another thread.
        Err(self.blocked(line, msg, self.iopf.scheduled.then_some(holder)))
    }

    /// The worker does not run in this step (scheduled, and not named or
    /// already at its stop) while a device access of the step waits for
    /// the PRG Response it owes: it can never come.
    fn check_owed(&self, entries: &[Entry], line: usize) -> Result<(), RunError> {
        for e in entries {
            let ThreadRef::Dev(d) = e.thread else {
                continue;
            };
            let waiting = self.devs[d as usize].is_some() && !self.iopf.stopped[d as usize];
            if waiting && self.owes(d) {
                return Err(self.err(
                    line,
                    format!(
                        "dev{d} waits for the answer to its Page Request, and the I/O page fault worker does not run in this step (it stopped after '{}'): add 'iopf: resume' to this step, or stop dev{d} 'until page-request'",
                        self.iopf.reached.unwrap_or("nothing yet")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The step ran past the watchdog with every CPU thread done and the
    /// I/O page fault worker idle: each device access of `entries` still
    /// without a response made no progress within the bound. The checker
    /// judges it, and the run stops (`self.stalled`).
    fn device_stalled(&mut self, start: u64, entries: &[Entry]) {
        let now = self.m.cycle();
        let bound = self.s.params.watchdog_cycles;
        for e in entries {
            let ThreadRef::Dev(d) = e.thread else {
                continue;
            };
            let Some(p) = &self.devs[d as usize] else {
                continue;
            };
            let (va, write, issued) = (p.va, p.write, p.issued);
            let before = self.chk.findings.len();
            self.chk.no_response(d, va, write, issued, now, bound);
            self.mark_findings(now, before);
            self.lines.push(ThreadLine {
                thread: e.thread,
                text: format!(
                    "{}: no response in {} cycles (watchdog_cycles = {bound}): no progress; the run stops here",
                    e.action_text(),
                    now - start
                ),
            });
        }
        self.stalled = Some(now);
    }

    /// The watchdog's error: the cycles the step ran, and what each thread
    /// still waits on.
    fn watchdog(
        &self,
        start: u64,
        entries: &[Entry],
        waits: &[(usize, WaitOn)],
        line: usize,
    ) -> RunError {
        let mut why = Vec::new();
        for (i, w) in waits {
            why.push(format!("cpu{i} waits on {w:?}"));
        }
        for e in entries {
            if let ThreadRef::Dev(d) = e.thread {
                if self.devs[d as usize].is_some() {
                    why.push(format!("dev{d} has no response to '{}'", e.text));
                }
            }
        }
        if self.iopf.busy(self.m.pq_tail()) {
            why.push(
                "the kernel's I/O page fault handler has not answered every Page Request".into(),
            );
        }
        let st = self.k.driver.stats;
        if st.ats_timeouts > 0 {
            why.push(format!(
                "the IOMMU driver saw {} ATS invalidation timeouts and submitted {} parts again",
                st.ats_timeouts, st.restarts
            ));
        }
        let now = self.m.cycle();
        self.err(
            line,
            format!(
                "watchdog: this step ran {} cycles, from cycle {start} to cycle {now}, without finishing (watchdog_cycles = {}): {}; the RTL may hang, or raise params.watchdog_cycles",
                now - start,
                self.s.params.watchdog_cycles,
                why.join("; ")
            ),
        )
    }

    pub(super) fn cpus_text(&self, i: usize, entries: &[Entry]) -> String {
        entries
            .iter()
            .find(|e| e.thread == ThreadRef::Cpu(i))
            .map_or(String::new(), |e| e.text.clone())
    }
}

impl Sim<'_> {
    /// Thread `tid`'s kernel path returned (`who`, after the checkpoints
    /// `went`): an error at `line` if it still holds a lock other than its
    /// mmap_lock, which its caller lets go.
    pub(super) fn released(
        &self,
        tid: usize,
        line: usize,
        who: &str,
        went: &[&str],
    ) -> Result<(), RunError> {
        match self.k.ptl.kept_by(tid) {
            Some(id) => Err(self.err(line, format!(
                "{who} returned holding {} (it went through: {}): a path must release every lock it takes before it returns",
                crate::mm::lock_kind(id).0,
                went.join(", ")
            ))),
            None => Ok(()),
        }
    }
}

/// What a thread waiting for lock `id` does, for an error.
fn lock_wait(id: u64) -> String {
    match crate::mm::lock_kind(id) {
        (what, true) => format!("spins on {what}"),
        (what, false) => format!("waits for {what}"),
    }
}
