//! Playing one schedule: a sequence of moves, each one timeline step of
//! one thread, on a fresh machine ([`Session`]), recording at every point
//! which moves were enabled, so the search can branch there.
//!
//! A move is what one thread does between two points where another may
//! run:
//! - `Cpu(i)`: CPU thread `i` goes to its next checkpoint (starting its next
//!   program action if it is idle); a timeline step `cpuI: <action> until
//!   <checkpoint>` or `cpuI: resume until <checkpoint>`;
//! - `Dev(d)`: device `d` makes its next access, to the response;
//! - `DevStart(d)` / `DevResume(d)` (with overlap): the access stops at
//!   `translated` and finishes later, while other threads move.
//!
//! A preemption is a move away from a CPU thread that is inside a kernel
//! path and could go on; switching at the end of an action, or away from a
//! thread that spins on a lock held by a preempted one, is free.

use crate::mm::Policy;
use crate::scenario::{Action, Entry, Scenario, ThreadRef, Until, MAX_CPUS, MAX_DEVS};
use crate::sim::{RunError, RunReport, Session};

/// One thread's move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Move {
    Cpu(usize),
    Dev(u8),
    DevStart(u8),
    DevResume(u8),
}

impl Move {
    pub fn thread(self) -> ThreadRef {
        match self {
            Move::Cpu(i) => ThreadRef::Cpu(i),
            Move::Dev(d) | Move::DevStart(d) | Move::DevResume(d) => ThreadRef::Dev(d),
        }
    }
}

/// A point of a played schedule where the search may branch.
#[derive(Clone, Debug)]
pub struct Branch {
    /// The moves enabled here (by the programs; a CPU move found blocked
    /// here is left out).
    pub enabled: Vec<Move>,
    /// The move taken.
    pub taken: Move,
    /// Preemptions before this point.
    pub preemptions: u32,
    /// The CPU thread that moved last and could go on, if any: moving
    /// another thread here is a preemption.
    pub running: Option<usize>,
}

impl Branch {
    /// What taking `m` here costs in preemptions.
    pub fn cost(&self, m: Move) -> u32 {
        match self.running {
            Some(i) if m != Move::Cpu(i) => 1,
            _ => 0,
        }
    }
}

/// How a played schedule ended.
#[derive(Debug)]
pub enum End {
    /// It ran to the end: the report (verdict, windows).
    Done(Box<RunReport>),
    /// The hardware or the run failed (an assertion, the watchdog): a
    /// finding too.
    Failed(RunError),
    /// A move the prefix forced turned out blocked: not a schedule.
    Infeasible,
}

/// A played schedule.
#[derive(Debug)]
pub struct Played {
    pub moves: Vec<Move>,
    /// The timeline step each move was (its `until` names the checkpoint
    /// reached), for the replayable scenario.
    pub steps: Vec<Entry>,
    pub branches: Vec<Branch>,
    pub preemptions: u32,
    pub end: End,
}

/// What the search allows.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    /// Device accesses may stop at `translated` and finish later.
    pub overlap: bool,
}

/// Where each thread is in its program.
#[derive(Clone)]
struct Cursor {
    /// Next action of each CPU thread's program.
    cpu: Vec<usize>,
    /// Next access of each device's program.
    dev: Vec<usize>,
    /// Per device: the access it stopped at `translated` (its entry).
    started: Vec<Option<Entry>>,
}

/// Play `forced`, then go on by the default rule (the thread that moved
/// last if it can, else the first enabled move) until no move is enabled.
pub fn play(s: &Scenario, policy: Policy, rules: Rules, forced: &[Move]) -> Played {
    let mut out = Played {
        moves: Vec::new(),
        steps: Vec::new(),
        branches: Vec::new(),
        preemptions: 0,
        end: End::Infeasible,
    };
    let mut session = match Session::new(s, policy) {
        Ok(x) => x,
        Err(e) => {
            out.end = End::Failed(e);
            return out;
        }
    };
    let programs = |t: ThreadRef| s.programs.iter().find(|p| p.thread == t);
    let mut cur = Cursor {
        cpu: vec![0; MAX_CPUS],
        dev: vec![0; MAX_DEVS as usize],
        started: vec![None; MAX_DEVS as usize],
    };
    let mut last: Option<Move> = None;
    loop {
        let mut enabled = enabled(s, &session, &cur, rules);
        if enabled.is_empty() {
            break;
        }
        let k = out.moves.len();
        // The CPU thread that moved last and can go on.
        let running = match last {
            Some(Move::Cpu(i)) if session.cpu_busy(i) => Some(i),
            _ => None,
        };
        // Try moves until one is not blocked.
        let (taken, step) = loop {
            if enabled.is_empty() {
                // Every enabled move is blocked: cannot happen with one
                // lock holder that is itself enabled; treat as the end.
                break (None, None);
            }
            let m = if k < forced.len() {
                forced[k]
            } else {
                match running.map(Move::Cpu).filter(|m| enabled.contains(m)) {
                    Some(m) => m,
                    None => enabled[0],
                }
            };
            if !enabled.contains(&m) {
                out.end = End::Infeasible;
                return out;
            }
            let busy = matches!(m, Move::Cpu(i) if session.cpu_busy(i));
            let entry = entry_for(m, &cur, &programs, busy);
            match session.step(std::slice::from_ref(&entry), 0) {
                Ok(_) => break (Some(m), Some(entry)),
                Err(RunError::Timeline {
                    blocked_by: Some(_),
                    ..
                }) => {
                    if k < forced.len() {
                        out.end = End::Infeasible;
                        return out;
                    }
                    enabled.retain(|x| *x != m);
                }
                Err(e) => {
                    out.end = End::Failed(e);
                    return out;
                }
            }
        };
        let (Some(m), Some(mut entry)) = (taken, step) else {
            break;
        };
        // Still the running thread if it stays enabled after the block
        // retries: the branch keeps what was enabled at this point.
        let running = running.filter(|i| enabled.contains(&Move::Cpu(*i)));
        let branch = Branch {
            enabled: enabled.clone(),
            taken: m,
            preemptions: out.preemptions,
            running,
        };
        out.preemptions += branch.cost(m);
        out.branches.push(branch);
        // Name the step as a timeline would write it, and advance the cursor.
        match m {
            Move::Cpu(i) => {
                // The checkpoint this move stopped at; none when the step
                // ran the rest of the path without one.
                entry.until = match session.cpu_reached(i) {
                    Some(cp) => Until::At(cp.to_string()),
                    None => Until::End,
                };
                if entry.action != Action::Resume {
                    cur.cpu[i] += 1;
                }
            }
            Move::Dev(d) => cur.dev[d as usize] += 1,
            Move::DevStart(d) => {
                cur.started[d as usize] = Some(entry.clone());
                cur.dev[d as usize] += 1;
            }
            Move::DevResume(d) => cur.started[d as usize] = None,
        }
        entry.text = step_text(&entry);
        out.moves.push(m);
        out.steps.push(entry);
        last = Some(m);
    }
    if forced.len() > out.moves.len() {
        out.end = End::Infeasible;
        return out;
    }
    out.end = match session.finish() {
        Ok(r) => End::Done(Box::new(r)),
        Err(e) => End::Failed(e),
    };
    out
}

/// The moves enabled now, in a fixed order (CPU threads, then devices).
fn enabled(s: &Scenario, session: &Session, cur: &Cursor, rules: Rules) -> Vec<Move> {
    let mut out = Vec::new();
    for p in &s.programs {
        match p.thread {
            ThreadRef::Cpu(i) => {
                if session.cpu_busy(i) || cur.cpu[i] < p.actions.len() {
                    out.push(Move::Cpu(i));
                }
            }
            ThreadRef::Dev(d) => {
                let di = d as usize;
                if cur.started[di].is_some() {
                    out.push(Move::DevResume(d));
                } else if cur.dev[di] < p.actions.len() {
                    out.push(Move::Dev(d));
                    if rules.overlap && !atc_hit(s, session, &p.actions[cur.dev[di]]) {
                        out.push(Move::DevStart(d));
                    }
                }
            }
        }
    }
    out.sort();
    out
}

/// The access will hit the ATC (no Translation Request, so it cannot stop
/// at `translated`).
fn atc_hit(s: &Scenario, session: &Session, e: &Entry) -> bool {
    let page = match e.action {
        Action::Read { page } | Action::Write { page, .. } => page,
        _ => return true,
    };
    page >= s.pages.len() || session.atc_holds(page)
}

/// The timeline entry of move `m` from where the threads are.
fn entry_for<'a>(
    m: Move,
    cur: &Cursor,
    programs: &dyn Fn(ThreadRef) -> Option<&'a crate::scenario::Program>,
    busy: bool,
) -> Entry {
    let resume = |thread| Entry {
        thread,
        action: Action::Resume,
        until: Until::End,
        text: "resume".into(),
    };
    let next = |thread: ThreadRef, n: usize, until: Until| {
        let mut e = programs(thread)
            .and_then(|p| p.actions.get(n))
            .cloned()
            .unwrap_or_else(|| resume(thread));
        e.until = until;
        e
    };
    match m {
        Move::Cpu(i) => {
            // A busy thread resumes; an idle one starts its next action.
            let t = ThreadRef::Cpu(i);
            let mut e = if busy {
                resume(t)
            } else {
                next(t, cur.cpu[i], Until::Next)
            };
            e.until = Until::Next;
            e
        }
        Move::Dev(d) => next(ThreadRef::Dev(d), cur.dev[d as usize], Until::End),
        Move::DevStart(d) => next(
            ThreadRef::Dev(d),
            cur.dev[d as usize],
            Until::At("translated".into()),
        ),
        Move::DevResume(d) => resume(ThreadRef::Dev(d)),
    }
}

/// The text of a step as a timeline writes it.
pub fn step_text(e: &Entry) -> String {
    let action = e
        .text
        .split(" until ")
        .next()
        .unwrap_or(&e.text)
        .to_string();
    match &e.until {
        Until::At(cp) => format!("{action} until {cp}"),
        Until::End | Until::Next => action,
    }
}
