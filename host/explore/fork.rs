//! Prefix sharing by `fork`: the machine at a branch point is the process
//! itself (the Verilated model, memory, page tables, kernel paths, checker,
//! driver), so a schedule that branches off at move k costs one `fork` and
//! its own moves from k on, not a replay of the first k.
//!
//! Workers are processes (`shootdown explore-worker`, one per job), each
//! single-threaded so that it may fork. The coordinator ([`exhaustive`])
//! plays the first schedule itself, hands the subtrees that branch off it
//! (disjoint sets of schedules) to the workers over their stdin, and reads
//! one line per schedule back; results are sorted, so they do not depend on
//! the number of workers, and they are the same as the stateless search's
//! (`search::exhaustive`, which a test compares).
//!
//! In a worker, at each branch point past its forced prefix the process
//! forks one child per alternative move (within the bound) and waits for
//! it; the child takes the alternative and goes on; the parent then takes
//! the default move itself. A move found blocked (its thread would spin on
//! a lock held by a thread that does not move) is not a schedule, and the
//! process that found it ends (the thread may have run part of its path:
//! [`Player::attempt`]); when the thread that moved last might be blocked
//! (another thread holds a lock), a child tries its move first, so that
//! switching away from a blocked thread is free, as in the stateless
//! search.

use super::play::{branch_here, default_move, End, Move, Played, Player, Prefix, Rules, Tried};
use super::search::{collect, fnv, kinds, names, Finding, Found, Searched, Summary};
use super::visited::Visited;
use crate::coverage::Coverage;
use crate::mm::Policy;
use crate::scenario::{checkpoint_names, parse_thread, Entry, Scenario};
use crate::sweep::Shard;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// A move as a word: `c0` (CPU 0), `d1` (device 1's access), `s1` (device
/// 1's access stopped at `translated`), `q1` (stopped at `requested`), `r1`
/// (its resume), `i` (the I/O page fault worker).
pub fn encode(moves: &[Move]) -> String {
    moves
        .iter()
        .map(|m| match m {
            Move::Cpu(i) => format!("c{i}"),
            Move::Dev(d) => format!("d{d}"),
            Move::DevStart(d) => format!("s{d}"),
            Move::DevRequest(d) => format!("q{d}"),
            Move::DevResume(d) => format!("r{d}"),
            Move::Iopf => "i".to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The moves of [`encode`]'s words.
pub fn decode(text: &str) -> Result<Vec<Move>, String> {
    text.split_whitespace()
        .map(|w| {
            let (k, n) = w.split_at(1);
            let bad = || format!("'{w}' is not a move");
            match k {
                "c" => n.parse().map(Move::Cpu).map_err(|_| bad()),
                "d" => n.parse().map(Move::Dev).map_err(|_| bad()),
                "s" => n.parse().map(Move::DevStart).map_err(|_| bad()),
                "q" => n.parse().map(Move::DevRequest).map_err(|_| bad()),
                "r" => n.parse().map(Move::DevResume).map_err(|_| bad()),
                "i" if n.is_empty() => Ok(Move::Iopf),
                _ => Err(bad()),
            }
        })
        .collect()
}

/// One schedule's line from a worker.
#[derive(Default, Serialize, Deserialize)]
struct Record {
    moves: String,
    /// `infeasible`, or what it ran to.
    #[serde(default)]
    infeasible: bool,
    /// Cut at a state already explored (`cover`: its counts to there).
    #[serde(default)]
    pruned: bool,
    #[serde(default)]
    unmodelled: Option<String>,
    #[serde(default)]
    verdict: Vec<String>,
    #[serde(default)]
    worst: u64,
    #[serde(default)]
    state: u64,
    #[serde(default)]
    finding: Option<FindingRecord>,
    /// The run's cover-point counts in the build's order (empty: none).
    #[serde(default)]
    cover: Vec<u64>,
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct FindingRecord {
    /// The verdict found, or (when `stopped` is set) nothing.
    verdict: Vec<String>,
    stopped: Option<String>,
    /// The timeline steps, `thread: text`.
    steps: Vec<String>,
    preemptions: u32,
}

impl FindingRecord {
    pub(crate) fn of(f: &Finding) -> FindingRecord {
        FindingRecord {
            verdict: match &f.what {
                Found::Verdict(v) => names(v),
                Found::Stopped(_) => Vec::new(),
            },
            stopped: match &f.what {
                Found::Stopped(e) => Some(e.clone()),
                Found::Verdict(_) => None,
            },
            steps: f
                .steps
                .iter()
                .map(|e| format!("{}: {}", e.thread, e.text))
                .collect(),
            preemptions: f.preemptions,
        }
    }

    /// The finding of schedule `moves` of `s` (its steps parsed again).
    pub(crate) fn finding(self, moves: Vec<Move>, s: &Scenario) -> Result<Finding, String> {
        let checkpoints = checkpoint_names(&s.paths);
        let steps = self
            .steps
            .iter()
            .map(|t| {
                let (th, text) = t.split_once(": ").ok_or("a step without a thread")?;
                let thread = parse_thread(th)?;
                crate::scenario::parse_step(thread, text, &s.pages, &checkpoints, &s.paths)
            })
            .collect::<Result<Vec<Entry>, String>>()?;
        Ok(Finding {
            moves,
            steps,
            preemptions: self.preemptions,
            what: match self.stopped {
                Some(e) => Found::Stopped(e),
                None => Found::Verdict(kinds(&self.verdict)?),
            },
        })
    }
}

impl Record {
    fn of(moves: &[Move], s: &Summary) -> Record {
        let counts = |c: &Coverage| {
            if c.runs == 0 {
                Vec::new()
            } else {
                c.to_counts()
            }
        };
        match s {
            Summary::Unmodelled(m) => Record {
                moves: encode(moves),
                unmodelled: Some(m.clone()),
                ..Record::default()
            },
            Summary::Infeasible => Record {
                moves: encode(moves),
                infeasible: true,
                ..Record::default()
            },
            Summary::Pruned(c) => Record {
                moves: encode(moves),
                pruned: true,
                cover: counts(c),
                ..Record::default()
            },
            Summary::Ran {
                verdict,
                worst,
                state,
                finding,
                coverage,
            } => Record {
                cover: counts(coverage),
                moves: encode(moves),
                verdict: names(verdict),
                worst: *worst,
                state: *state,
                finding: finding.as_ref().map(FindingRecord::of),
                ..Record::default()
            },
        }
    }

    fn summary(self, s: &Scenario) -> Result<(Vec<Move>, Summary), String> {
        let moves = decode(&self.moves)?;
        if self.infeasible {
            return Ok((moves, Summary::Infeasible));
        }
        let coverage = if self.cover.is_empty() {
            Coverage::default()
        } else {
            Coverage::from_counts(&self.cover)
        };
        if self.pruned {
            // its prefix's counts, not a run of its own
            let coverage = Coverage {
                runs: 0,
                ..coverage
            };
            return Ok((moves, Summary::Pruned(coverage)));
        }
        if let Some(m) = self.unmodelled {
            return Ok((moves, Summary::Unmodelled(m)));
        }
        let finding = match self.finding {
            None => None,
            Some(f) => Some(f.finding(moves.clone(), s)?),
        };
        Ok((
            moves,
            Summary::Ran {
                verdict: kinds(&self.verdict)?,
                worst: self.worst,
                state: self.state,
                finding,
                coverage,
            },
        ))
    }
}

/// Write all of `bytes` to the file descriptor (no buffer that a fork
/// could copy).
fn write_fd(fd: i32, bytes: &[u8]) {
    let mut done = 0;
    while done < bytes.len() {
        // SAFETY: writing from a valid buffer to a descriptor we own.
        let n = unsafe { libc::write(fd, bytes[done..].as_ptr().cast(), bytes.len() - done) };
        if n <= 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        done += n as usize;
    }
}

fn emit(moves: &[Move], s: &Summary) {
    let mut line = serde_json::to_string(&Record::of(moves, s)).unwrap_or_default();
    line.push('\n');
    write_fd(1, line.as_bytes());
}

fn emit_played(player: Player) {
    let played = Played {
        moves: player.moves.clone(),
        steps: player.steps.clone(),
        branches: Vec::new(),
        preemptions: player.preemptions,
        end: End::Infeasible,
    };
    let end = player.finish();
    let played = Played { end, ..played };
    emit(&played.moves, &Summary::of(&played));
}

/// Fork; the child runs `child` and exits; the parent waits for it. Its
/// exit status, or None if it died (a signal): a crash of the model.
fn fork_wait(child: impl FnOnce() -> i32) -> Option<i32> {
    // SAFETY: the worker process is single-threaded (explore-worker), so
    // the child may go on running Rust code; it ends with _exit, never
    // returning into the parent's stack.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let code = child();
        // SAFETY: end the child without running the parent's exit handlers.
        unsafe { libc::_exit(code) };
    }
    if pid < 0 {
        return None;
    }
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if r < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return None;
        }
    }
    if libc::WIFEXITED(status) {
        Some(libc::WEXITSTATUS(status))
    } else {
        None
    }
}

const BLOCKED: i32 = 3;

/// A prefix as a worker's input line: `<preemptions>|<moves>`.
pub fn encode_prefix(p: &Prefix) -> String {
    format!("{}|{}", p.preemptions, encode(&p.moves))
}

/// The prefix of [`encode_prefix`]'s line.
pub fn decode_prefix(line: &str) -> Result<Prefix, String> {
    let (n, moves) = line
        .split_once('|')
        .ok_or("a prefix line is <preemptions>|<moves>")?;
    Ok(Prefix {
        preemptions: n
            .trim()
            .parse()
            .map_err(|_| format!("'{n}' is not a count"))?,
        moves: decode(moves)?,
    })
}

/// Explore the subtree of `prefix` in this process: every schedule that
/// starts with it and branches only after it, within the bound; with
/// `visited`, a schedule is cut where it reaches a state the subtree
/// already explored (with no more preemptions spent).
pub fn subtree(
    s: &Scenario,
    policy: Policy,
    rules: Rules,
    bound: u32,
    start: &Prefix,
    visited: Option<&Visited>,
) {
    let prefix = &start.moves;
    let mut player = match Player::new(s, policy, rules) {
        Ok(p) => p,
        Err(e) => {
            let played = Played {
                moves: prefix.to_vec(),
                steps: Vec::new(),
                branches: Vec::new(),
                preemptions: 0,
                end: End::Failed(e),
            };
            emit(prefix, &Summary::of(&played));
            return;
        }
    };
    for &m in prefix {
        let enabled = player.enabled();
        if !enabled.contains(&m) {
            emit(prefix, &Summary::Infeasible);
            return;
        }
        // Its cost was counted when it was chosen.
        match player.attempt(m, 0) {
            Tried::Moved => {}
            Tried::Blocked => {
                emit(prefix, &Summary::Infeasible);
                return;
            }
            Tried::Failed(e) => {
                let played = Played {
                    moves: prefix.to_vec(),
                    steps: player.steps.clone(),
                    branches: Vec::new(),
                    preemptions: player.preemptions,
                    end: End::Failed(e),
                };
                emit(prefix, &Summary::of(&played));
                return;
            }
        }
    }
    player.preemptions = start.preemptions;
    dfs(player, bound, visited);
}

/// Go on from where `player` is, branching at every point.
fn dfs(mut player: Player, bound: u32, visited: Option<&Visited>) {
    loop {
        if let Some(v) = visited {
            if player
                .digest()
                .is_some_and(|d| v.seen(d, player.preemptions))
            {
                let moves = player.moves.clone();
                emit(&moves, &Summary::Pruned(player.coverage()));
                return;
            }
        }
        let mut enabled = player.enabled();
        if enabled.is_empty() {
            emit_played(player);
            return;
        }
        // Is the thread that moved last blocked? Only possible when another
        // thread holds a lock; then a child tries its move to tell.
        if let Some(m) = player.running() {
            if player.may_be_blocked(m) {
                let probe = fork_wait(|| match player.attempt(m, 0) {
                    Tried::Blocked => BLOCKED,
                    _ => 0,
                });
                if probe == Some(BLOCKED) {
                    enabled.retain(|x| *x != m);
                    if enabled.is_empty() {
                        emit_played(player);
                        return;
                    }
                }
            }
        }
        let Some(m0) = default_move(&player, &enabled) else {
            emit_played(player);
            return;
        };
        let b = branch_here(&player, enabled.clone(), m0);
        for &m in &enabled {
            if m == m0 || b.preemptions + b.cost(m) > bound {
                continue;
            }
            let crashed = fork_wait(|| {
                let mut p = player_take(&mut player);
                match p.attempt(m, b.cost(m)) {
                    Tried::Moved => dfs(p, bound, visited),
                    Tried::Blocked => emit(&with(&p.moves, m), &Summary::Infeasible),
                    Tried::Failed(e) => emit_failed(p, Some(m), e),
                }
                0
            })
            .is_none();
            if crashed {
                let moves = with(&player.moves, m);
                let f = Finding {
                    moves: moves.clone(),
                    steps: Vec::new(),
                    preemptions: b.preemptions + b.cost(m),
                    what: Found::Stopped("the worker process died (a crash of the model)".into()),
                };
                emit(
                    &moves,
                    &Summary::Ran {
                        verdict: BTreeSet::new(),
                        worst: 0,
                        state: fnv(b"crash"),
                        finding: Some(f),
                        coverage: Coverage::default(),
                    },
                );
            }
        }
        match player.attempt(m0, b.cost(m0)) {
            Tried::Moved => {}
            // The default turned out blocked: the alternatives forked
            // above cover this point's schedules (the stateless search
            // takes the next one as its default instead: the same ones).
            Tried::Blocked => return,
            Tried::Failed(e) => {
                emit_failed(player, Some(m0), e);
                return;
            }
        }
    }
}

/// The player, moved into a forked child (the parent keeps its own copy in
/// its own address space; this one is the child's).
fn player_take<'s>(p: &mut Player<'s>) -> Player<'s> {
    // SAFETY: called only in a freshly forked child, which owns a private
    // copy of the whole address space and never returns to the caller's
    // frame (fork_wait ends it with _exit): reading the value out and never
    // using or dropping the original is sound.
    unsafe { std::ptr::read(p) }
}

fn with(moves: &[Move], m: Move) -> Vec<Move> {
    let mut v = moves.to_vec();
    v.push(m);
    v
}

fn emit_failed(p: Player, m: Option<Move>, e: crate::sim::RunError) {
    let moves = match m {
        Some(m) if p.moves.last() != Some(&m) => with(&p.moves, m),
        _ => p.moves.clone(),
    };
    let played = Played {
        moves: moves.clone(),
        steps: p.steps.clone(),
        branches: Vec::new(),
        preemptions: p.preemptions,
        end: End::Failed(e),
    };
    emit(&moves, &Summary::of(&played));
}

/// `shootdown explore-worker`: read forced prefixes from stdin, one a line,
/// explore each one's subtree, write one line per schedule and `end` after
/// each prefix.
pub fn worker(s: &Scenario, policy: Policy, rules: Rules, bound: u32) {
    let mut visited = if rules.prune {
        Visited::new(super::visited::SLOTS)
    } else {
        None
    };
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { return };
        if let Some(v) = &mut visited {
            v.begin();
        }
        match decode_prefix(&line) {
            Ok(prefix) => subtree(s, policy, rules, bound, &prefix, visited.as_ref()),
            Err(e) => write_fd(2, format!("explore-worker: {e}\n").as_bytes()),
        }
        write_fd(1, b"end\n");
    }
}

/// The exhaustive search with prefix sharing: the schedules above the
/// shard's cut ([`super::shard::split`]) played here, the subtrees below it
/// explored by `jobs` worker processes. The same schedules and results as
/// [`super::search::exhaustive_shard`].
#[allow(clippy::too_many_arguments)]
pub fn exhaustive(
    s: &Scenario,
    policy: Policy,
    rules: Rules,
    bound: u32,
    max: usize,
    jobs: usize,
    exe: &Path,
    shard: Option<Shard>,
) -> Result<Searched, String> {
    // The worker loads the same file and applies what differs from it.
    let mut args: Vec<String> = vec![
        "explore-worker".into(),
        s.path.display().to_string(),
        "--policy".into(),
        policy.name().into(),
        "--bound".into(),
        bound.to_string(),
        "--driver".into(),
        s.driver.name().into(),
        "--inject-bits".into(),
        s.inject.to_string(),
        "--assertions".into(),
        s.params.assertions.to_string(),
        "--arch".into(),
        s.arch.name().into(),
    ];
    if let Some(k) = s.paths.kernel {
        args.push("--kernel".into());
        args.push(k.to_string());
    }
    if rules.overlap {
        args.push("--overlap".into());
    }
    if rules.requested {
        args.push("--requested".into());
    }
    if rules.prune {
        args.push("--prune".into());
    }
    // Every parameter as this scenario has it (`--param` points, a shrunk
    // candidate's latencies): the worker's file gives only its own.
    for p in crate::scenario::PARAMS {
        args.push("--set".into());
        args.push(format!("{}={}", p.name, (p.get)(&s.params)));
    }
    let split = super::shard::split(s, policy, rules, bound, shard);
    let mut results = split.above;
    let queue = Mutex::new(split.roots);
    let out = Mutex::new((
        results.len(),
        Vec::new(),
        None::<String>,
        Coverage::default(),
    ));
    std::thread::scope(|sc| {
        for _ in 0..jobs.max(1) {
            sc.spawn(|| {
                let spawned = Command::new(exe)
                    .args(&args)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn();
                let mut child = match spawned {
                    Ok(c) => c,
                    Err(e) => {
                        let mut g = out.lock().unwrap_or_else(|e| e.into_inner());
                        g.2.get_or_insert(format!("cannot start a worker: {e}"));
                        return;
                    }
                };
                let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take())
                else {
                    return;
                };
                let mut lines = BufReader::new(stdout).lines();
                'prefixes: loop {
                    let prefix = {
                        let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
                        let stop = out.lock().unwrap_or_else(|e| e.into_inner()).2.is_some();
                        match q.pop() {
                            Some(p) if !stop => p,
                            _ => break,
                        }
                    };
                    if writeln!(stdin, "{}", encode_prefix(&prefix)).is_err() {
                        break;
                    }
                    loop {
                        let Some(Ok(line)) = lines.next() else {
                            let mut g = out.lock().unwrap_or_else(|e| e.into_inner());
                            g.2.get_or_insert("a worker ended early".into());
                            break 'prefixes;
                        };
                        if line == "end" {
                            break;
                        }
                        let rec: Result<Record, _> = serde_json::from_str(&line);
                        let got = rec.map_err(|e| e.to_string()).and_then(|r| r.summary(s));
                        let mut g = out.lock().unwrap_or_else(|e| e.into_inner());
                        match got {
                            Ok(x) => {
                                g.0 += 1;
                                let x = super::search::absorb(&mut g.3, x);
                                g.1.push(x);
                                if g.0 > max {
                                    g.2.get_or_insert(super::search::too_many(max, bound));
                                }
                            }
                            Err(e) => {
                                g.2.get_or_insert(format!("a worker's line: {e}"));
                            }
                        }
                    }
                }
                drop(stdin);
                let _ = child.kill();
                let _ = child.wait();
            });
        }
    });
    let (_, rest, err, cover) = out.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Some(e) = err {
        return Err(e);
    }
    results.extend(rest);
    let mut out = collect(results);
    out.coverage.add(&cover);
    Ok(out)
}
