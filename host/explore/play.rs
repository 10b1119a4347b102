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
//! - `DevStart(d)` / `DevRequest(d)` / `DevResume(d)` (with overlap): the
//!   access stops at `translated` (or at `requested`, its request taken by
//!   the device) and finishes later, while other threads move;
//! - `Iopf`: with PRI, the kernel's I/O page fault worker goes to its next
//!   checkpoint (`iopf: resume until <checkpoint>`). Explore schedules it:
//!   a device access then stops at each of its Page Requests
//!   (`until page-request`), and its resume waits until the worker has
//!   answered.
//!
//! A preemption is a move away from a CPU thread, or the worker, that is
//! inside a kernel path and could go on; switching at the end of an action,
//! or away from a thread that spins on a lock held by a preempted one, is
//! free.

use crate::mm::Policy;
use crate::scenario::{
    Action, Entry, Scenario, ThreadRef, Until, MAX_CPUS, MAX_DEVS, PAGE_REQUEST,
};
use crate::sim::{RunError, RunReport, Session};

/// One thread's move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Move {
    Cpu(usize),
    Dev(u8),
    DevStart(u8),
    DevResume(u8),
    /// With overlap: the access stops at `requested` (its request taken by
    /// the device) and finishes later, while others move.
    DevRequest(u8),
    /// The I/O page fault worker to its next checkpoint.
    Iopf,
}

impl Move {
    pub fn thread(self) -> ThreadRef {
        match self {
            Move::Cpu(i) => ThreadRef::Cpu(i),
            Move::Dev(d) | Move::DevStart(d) | Move::DevResume(d) | Move::DevRequest(d) => {
                ThreadRef::Dev(d)
            }
            Move::Iopf => ThreadRef::Iopf,
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
    /// The move of the thread (a CPU thread or the worker) that moved last
    /// and could go on, if any: moving another thread here is a preemption.
    pub running: Option<Move>,
}

impl Branch {
    /// What taking `m` here costs in preemptions.
    pub fn cost(&self, m: Move) -> u32 {
        match self.running {
            Some(r) if m != r => 1,
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

/// The moves a schedule starts with, forced, and the preemptions they
/// made (counted where they were first chosen: replaying them does not
/// know which thread was blocked then).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Prefix {
    pub moves: Vec<Move>,
    pub preemptions: u32,
}

/// What the search allows (default: accesses run to their end).
#[derive(Clone, Copy, Debug, Default)]
pub struct Rules {
    /// Device accesses may stop at `translated` and finish later.
    pub overlap: bool,
    /// Device accesses may stop at `requested` (taken by the device, its
    /// Translation Request not yet answered) and finish later.
    pub requested: bool,
    /// Cut a schedule where it reaches a state its subtree has already
    /// explored with no more preemptions spent (the fork engine only;
    /// [`crate::explore::visited`]).
    pub prune: bool,
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

/// A schedule being played: the machine, where each thread is in its
/// program, and the moves so far.
pub struct Player<'s> {
    s: &'s Scenario,
    policy: Policy,
    rules: Rules,
    session: Session<'s>,
    cur: Cursor,
    last: Option<Move>,
    pub moves: Vec<Move>,
    /// The timeline step each move was (its `until` names the checkpoint
    /// reached).
    pub steps: Vec<Entry>,
    pub preemptions: u32,
}

/// What trying a move did.
pub enum Tried {
    Moved,
    /// The thread would spin on a lock held by a thread that does not
    /// move: nothing changed ([`Player::try_move`]; after
    /// [`Player::attempt`], the player must be dropped).
    Blocked,
    /// The run failed (the error that stopped it).
    Failed(RunError),
}

impl<'s> Player<'s> {
    pub fn new(s: &'s Scenario, policy: Policy, rules: Rules) -> Result<Player<'s>, RunError> {
        let mut session = Session::new(s, policy)?;
        session.schedule_iopf();
        Ok(Player {
            s,
            policy,
            rules,
            session,
            cur: Cursor {
                cpu: vec![0; MAX_CPUS],
                dev: vec![0; MAX_DEVS as usize],
                started: vec![None; MAX_DEVS as usize],
            },
            last: None,
            moves: Vec::new(),
            steps: Vec::new(),
            preemptions: 0,
        })
    }

    /// The moves the programs allow now, in a fixed order.
    pub fn enabled(&self) -> Vec<Move> {
        enabled(self.s, &self.session, &self.cur, self.rules)
    }

    /// Another thread than the one `m` moves holds a lock that could
    /// block it.
    pub fn may_be_blocked(&self, m: Move) -> bool {
        match m {
            Move::Cpu(i) => self.session.others_hold_locks(i),
            Move::Iopf => self.session.others_hold_worker_locks(),
            _ => false,
        }
    }

    /// A digest of the state the schedule's future depends on (the
    /// machine, where each thread is in its program, the CPU thread that a
    /// move away from is a preemption); equal digests, equal futures. None
    /// when the RTL's state cannot be digested.
    pub fn digest(&self) -> Option<u128> {
        let mut h = crate::sim::digest::StateHasher::default();
        self.session.digest(&mut h)?;
        h.debug(&(
            &self.cur.cpu,
            &self.cur.dev,
            &self.cur.started,
            self.running(),
        ));
        Some(h.finish128())
    }

    /// What the RTL's cover points have counted so far.
    pub fn coverage(&self) -> crate::coverage::Coverage {
        self.session.coverage()
    }

    /// The move of the thread that moved last and is inside a kernel
    /// path: a CPU thread, or the worker inside a handler.
    pub fn running(&self) -> Option<Move> {
        match self.last {
            Some(Move::Cpu(i)) if self.session.cpu_busy(i) => self.last,
            Some(Move::Iopf) if self.session.iopf_in_handler() => self.last,
            _ => None,
        }
    }

    /// Try `m`, which costs `cost` preemptions if it moves. A blocked move
    /// changes nothing: the machine is put back as it was by replaying the
    /// moves so far (the thread may have run its path up to the lock it
    /// found held: reads, decisions, a Page Request taken off the queue).
    pub fn try_move(&mut self, m: Move, cost: u32) -> Tried {
        match self.attempt(m, cost) {
            Tried::Blocked => match self.replayed() {
                Ok(p) => {
                    *self = p;
                    Tried::Blocked
                }
                Err(e) => Tried::Failed(e),
            },
            t => t,
        }
    }

    /// A new player that has made this one's moves.
    fn replayed(&self) -> Result<Player<'s>, RunError> {
        let mut p = Player::new(self.s, self.policy, self.rules)?;
        for (k, &m) in self.moves.iter().enumerate() {
            match p.attempt(m, 0) {
                Tried::Moved => {}
                Tried::Failed(e) => return Err(e),
                Tried::Blocked => {
                    return Err(RunError::Timeline {
                        file: self.s.path.clone(),
                        line: 0,
                        msg: format!("explore: replaying a schedule, its move {k} ({m:?}) was blocked where it had moved: the run is not deterministic; report this"),
                        blocked_by: None,
                    })
                }
            }
        }
        p.preemptions = self.preemptions;
        Ok(p)
    }

    /// [`Player::try_move`] without the replay: after `Blocked`, the
    /// machine may differ from before the attempt, and the caller must drop
    /// the player (the fork engine, whose attempts are made in processes
    /// that end there).
    pub fn attempt(&mut self, m: Move, cost: u32) -> Tried {
        let busy = matches!(m, Move::Cpu(i) if self.session.cpu_busy(i));
        let programs = |t: ThreadRef| self.s.programs.iter().find(|p| p.thread == t);
        let mut entry = entry_for(m, &self.cur, &programs, busy);
        // A scheduled worker: a device access stops at its Page Request.
        let scheduled = self.session.iopf_scheduled();
        if scheduled && matches!(m, Move::Dev(_) | Move::DevResume(_)) {
            entry.until = Until::Next;
        }
        match self.session.step(std::slice::from_ref(&entry), 0) {
            Ok(_) => {}
            Err(RunError::Timeline {
                blocked_by: Some(_),
                ..
            }) => return Tried::Blocked,
            Err(e) => return Tried::Failed(e),
        }
        // Name the step as a timeline would write it, and advance the cursor.
        match m {
            Move::Cpu(i) => {
                // The checkpoint this move stopped at; none when the step
                // ran the rest of the path without one.
                entry.until = match self.session.cpu_reached(i) {
                    Some(cp) => Until::At(cp.to_string()),
                    None => Until::End,
                };
                if entry.action != Action::Resume {
                    self.cur.cpu[i] += 1;
                }
            }
            Move::Dev(d) | Move::DevResume(d) if scheduled => {
                // Stopped at its Page Request, or finished.
                let stopped = self.session.dev_busy(d) && self.session.dev_at_page_request(d);
                entry.until = if stopped {
                    Until::At(PAGE_REQUEST.into())
                } else {
                    Until::End
                };
                if m == Move::Dev(d) {
                    self.cur.dev[d as usize] += 1;
                }
                self.cur.started[d as usize] = stopped.then(|| entry.clone());
            }
            Move::Dev(d) => self.cur.dev[d as usize] += 1,
            Move::DevStart(d) | Move::DevRequest(d) => {
                self.cur.started[d as usize] = Some(entry.clone());
                self.cur.dev[d as usize] += 1;
            }
            Move::DevResume(d) => self.cur.started[d as usize] = None,
            Move::Iopf => {
                entry.until = match self.session.iopf_reached() {
                    Some(cp) => Until::At(cp.to_string()),
                    None => Until::End,
                };
            }
        }
        entry.text = step_text(&entry);
        self.moves.push(m);
        self.steps.push(entry);
        self.preemptions += cost;
        self.last = Some(m);
        Tried::Moved
    }

    /// End the schedule as a timeline ends (drain, settle, judge).
    pub fn finish(self) -> End {
        match self.session.finish() {
            Ok(r) => End::Done(Box::new(r)),
            Err(e) => End::Failed(e),
        }
    }
}

/// The branch at the current point of `p`: the enabled moves, and which
/// thread moving away from costs a preemption.
pub fn branch_here(p: &Player, enabled: Vec<Move>, taken: Move) -> Branch {
    let running = p.running().filter(|m| enabled.contains(m));
    Branch {
        enabled,
        taken,
        preemptions: p.preemptions,
        running,
    }
}

/// The default rule: the thread that moved last if it can go on, else the
/// first enabled move.
pub fn default_move(p: &Player, enabled: &[Move]) -> Option<Move> {
    p.running()
        .filter(|m| enabled.contains(m))
        .or_else(|| enabled.first().copied())
}

/// Play `forced`, then go on by the default rule (the thread that moved
/// last if it can, else the first enabled move) until no move is enabled.
pub fn play(s: &Scenario, policy: Policy, rules: Rules, prefix: &Prefix) -> Played {
    play_with(s, policy, rules, prefix, default_move)
}

/// [`play`], choosing each move past the prefix with `choose` (among the
/// enabled moves not found blocked at this point; None: stop).
pub fn play_with(
    s: &Scenario,
    policy: Policy,
    rules: Rules,
    prefix: &Prefix,
    mut choose: impl FnMut(&Player, &[Move]) -> Option<Move>,
) -> Played {
    let forced = &prefix.moves;
    let mut player = match Player::new(s, policy, rules) {
        Ok(p) => p,
        Err(e) => {
            return Played {
                moves: Vec::new(),
                steps: Vec::new(),
                branches: Vec::new(),
                preemptions: 0,
                end: End::Failed(e),
            }
        }
    };
    let mut branches = Vec::new();
    let stop = |player: Player, branches, end| Played {
        moves: player.moves,
        steps: player.steps,
        branches,
        preemptions: player.preemptions,
        end,
    };
    loop {
        let mut enabled = player.enabled();
        let k = player.moves.len();
        // Try moves until one is not blocked.
        loop {
            let m = if k < forced.len() {
                Some(forced[k])
            } else {
                choose(&player, &enabled)
            };
            let Some(m) = m else {
                // Nothing (left) to move: the end, or every move blocked.
                if k < forced.len() {
                    return stop(player, branches, End::Infeasible);
                }
                let end = player.finish_played();
                return Played { branches, ..end };
            };
            if !enabled.contains(&m) {
                return stop(player, branches, End::Infeasible);
            }
            let b = branch_here(&player, enabled.clone(), m);
            // A forced move's cost was counted when it was chosen.
            let cost = if k < forced.len() { 0 } else { b.cost(m) };
            match player.try_move(m, cost) {
                Tried::Moved => {
                    branches.push(b);
                    if k + 1 == forced.len() {
                        player.preemptions = prefix.preemptions;
                    }
                    break;
                }
                Tried::Blocked if k >= forced.len() => enabled.retain(|x| *x != m),
                Tried::Blocked => return stop(player, branches, End::Infeasible),
                Tried::Failed(e) => {
                    // The other moves at this point are schedules too.
                    if k >= forced.len() {
                        branches.push(b);
                    }
                    return stop(player, branches, End::Failed(e));
                }
            }
        }
    }
}

impl Player<'_> {
    /// Finish, as a [`Played`] without branches.
    fn finish_played(self) -> Played {
        let (moves, steps, preemptions) =
            (self.moves.clone(), self.steps.clone(), self.preemptions);
        Played {
            moves,
            steps,
            branches: Vec::new(),
            preemptions,
            end: self.finish(),
        }
    }
}

/// The moves enabled now, in a fixed order (CPU threads, then devices).
fn enabled(s: &Scenario, session: &Session, cur: &Cursor, rules: Rules) -> Vec<Move> {
    let mut out = Vec::new();
    // While the scheduled worker owes a PRG Response, the device's access
    // that asked holds its DMA engine (the bundled device serves one access
    // at a time): no device moves until the worker answers; the worker's
    // move then is the one enabled.
    let held = session.iopf_scheduled() && session.iopf_busy();
    for p in &s.programs {
        if held && matches!(p.thread, ThreadRef::Dev(_)) {
            continue;
        }
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
                    if rules.requested {
                        // in flight from its request: the Translation
                        // Request, the walk, the memory access overlap
                        // what others do
                        out.push(Move::DevRequest(d));
                    }
                }
            }
            // its moves are not a program's
            ThreadRef::Iopf => {}
        }
    }
    if held {
        out.push(Move::Iopf);
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
        Move::DevRequest(d) => next(
            ThreadRef::Dev(d),
            cur.dev[d as usize],
            Until::At("requested".into()),
        ),
        Move::DevResume(d) => resume(ThreadRef::Dev(d)),
        Move::Iopf => Entry {
            until: Until::Next,
            ..resume(ThreadRef::Iopf)
        },
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
