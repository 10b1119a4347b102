//! The mmap_lock (host/mm/mmap.rs): a page fault, a CPU's or the I/O page
//! fault handler's for a device, cannot run inside a call that holds its
//! process's mmap_lock for write (mprotect, mremap, fork, collapse); it
//! can beside one that holds it for read (madvise, munmap's zap from 4.20),
//! and beside anything of another process. A timeline that asks for what
//! Linux cannot run is an error that names the lock and the holder;
//! `explore` leaves such schedules out.

use shootdown::explore::play::Rules;
use shootdown::explore::search::exhaustive;
use shootdown::mm::Policy;
use shootdown::scenario::Scenario;
use shootdown::sim::{run, RunError, RunOptions, RunReport};
use std::path::Path;

/// addrA: a private page; addrC: a COW page of process `c_process`.
fn scenario(c_process: u8, params: &str, body: &str) -> Scenario {
    let expect = if body.contains("expect:") {
        ""
    } else {
        "expect: { seed: clean }\n"
    };
    let text = format!(
        "name: mmap-lock\nabout: the mmap_lock\nparams: {{ mem_latency: 40, ats_latency: 150, cpu_step_cycles: 10{params} }}\npages:\n  addrA: {{ va: 0x7f0000000000, value: 0xa0 }}\n  addrB: {{ va: 0x7f0000400000, value: 0xb0 }}\n  addrC: {{ va: 0x7f0000200000, value: 0xc0, cow: true, process: {c_process} }}\n{body}{expect}"
    );
    Scenario::parse(Path::new("mmap-lock.yaml"), &text).unwrap()
}

fn run_seed(s: &Scenario) -> Result<RunReport, RunError> {
    run(s, &RunOptions::policy(Policy::Seed))
}

/// The error of a step whose thread waits for a lock held by a thread the
/// step does not run: its line, its text, the holder.
fn blocked(r: Result<RunReport, RunError>) -> (usize, String, Option<usize>) {
    match r {
        Err(RunError::Timeline {
            line,
            msg,
            blocked_by,
            ..
        }) => (line, msg, blocked_by),
        other => panic!("expected a blocked step, got {other:?}"),
    }
}

const STOPPED_MPROTECT: &str = "timeline:
  - { cpu0: mprotect addrA ro until lock }
  - { cpu1: write addrC 0xc1 }
  - { cpu0: resume }
";

#[test]
fn a_cow_fault_waits_for_mprotect_of_its_process() {
    let (line, msg, holder) = blocked(run_seed(&scenario(0, "", STOPPED_MPROTECT)));
    assert_eq!(line, 10, "the write's step: {msg}");
    assert_eq!(holder, Some(0), "{msg}");
    assert!(
        msg.contains("cpu1 waits for its process's mmap_lock held by cpu0")
            && msg.contains("stopped after 'lock'"),
        "{msg}"
    );
}

#[test]
fn a_cow_fault_of_another_process_runs_inside_mprotect() {
    let r = run_seed(&scenario(1, "", STOPPED_MPROTECT)).unwrap();
    assert!(r.verdict.is_empty(), "{:?}", r.findings);
    // the COW copy holds the store
    assert_eq!(r.final_view[2].value, Some(0xc1));
}

#[test]
fn a_fault_runs_beside_madvise_which_holds_it_for_read() {
    let s = scenario(
        0,
        ", gather_batch: 1",
        "timeline:
  - { cpu0: madv-dontneed addrA until free }
  - { cpu1: write addrC 0xc1 }
  - { cpu0: resume }
",
    );
    let r = run_seed(&s).unwrap();
    assert!(r.verdict.is_empty(), "{:?}", r.findings);
    assert_eq!(r.final_view[2].value, Some(0xc1));
}

#[test]
fn the_writer_resumed_in_the_same_step_lets_the_fault_go_after_it() {
    let body = "timeline:
  - { cpu0: mprotect addrA ro until lock }
  - { cpu1: write addrC 0xc1, cpu0: resume }
";
    let store = |c_process| {
        let r = run_seed(&scenario(c_process, "", body)).unwrap();
        assert!(r.verdict.is_empty(), "{:?}", r.findings);
        assert_eq!(r.final_view[2].value, Some(0xc1));
        r.stores.iter().find(|w| w.page == "addrC").unwrap().cycle
    };
    // In one process the COW fault waits for the rest of mprotect (change,
    // unlock, end, flush); in another it runs beside it.
    let (same, other) = (store(0), store(1));
    assert!(
        same > other,
        "the store at cycle {same} in one process, {other} in two"
    );
}

#[test]
fn the_page_fault_handler_waits_for_mprotect_too() {
    // A device write to the COW page: its Page Request's handler takes the
    // process's mmap_lock for read, which the stopped mprotect holds.
    let s = scenario(
        0,
        ", pri: 4",
        "timeline:
  - { dev0: read addrC }
  - { cpu0: mprotect addrB ro until lock }
  - { dev0: write addrC 0xc2 }
  - { cpu0: resume }
",
    );
    let e = run_seed(&s).unwrap_err().to_string();
    assert!(
        e.contains("mmap-lock.yaml:11")
            && e.contains("I/O page fault handler")
            && e.contains("waits for its process's mmap_lock held by cpu0"),
        "{e}"
    );
    // resumed in the same step: the handler's COW runs after mprotect
    let s = scenario(
        0,
        ", pri: 4",
        "timeline:
  - { dev0: read addrC }
  - { cpu0: mprotect addrB ro until lock }
  - { dev0: write addrC 0xc2, cpu0: resume }
  - { cpu0: read addrC }
",
    );
    let r = run_seed(&s).unwrap();
    assert!(r.verdict.is_empty(), "{:?}", r.findings);
    let w = r.dev.iter().find(|d| d.write).unwrap();
    assert!(!w.fault, "{w:?}");
    assert_eq!(r.final_view[2].value, Some(0xc2));
}

#[test]
fn explore_leaves_out_the_fault_inside_mprotect() {
    // The same two programs, with the COW page in the same process and in
    // another: the same process's schedules are fewer, by those that would
    // run the fault between mprotect's checkpoints.
    let programs = "programs:
  cpu0: [ mprotect addrA ro ]
  cpu1: [ write addrC 0xc1 ]
expect: { seed: clean }
";
    let rules = Rules::default();
    let same = exhaustive(
        &scenario(0, "", programs),
        Policy::Seed,
        rules,
        1,
        10_000,
        1,
    )
    .unwrap();
    let other = exhaustive(
        &scenario(1, "", programs),
        Policy::Seed,
        rules,
        1,
        10_000,
        1,
    )
    .unwrap();
    assert!(same.verdict.is_empty() && other.verdict.is_empty());
    assert!(
        same.schedules < other.schedules,
        "{} schedules in one process, {} in two",
        same.schedules,
        other.schedules
    );
}

/// A path of the scenario's own, `call`ed by cpu0 and stopped after its
/// first step, with `mmap_lock: <hold>` (empty: no such line).
fn called(hold: &str) -> Scenario {
    let key = match hold {
        "" => String::new(),
        h => format!("\n    mmap_lock: {h}"),
    };
    scenario(
        0,
        "",
        &format!(
            "paths:
  hold_it:
    follows: a test{key}
    steps:
      - first: x = 1
      - second: x = 2
timeline:
  - {{ cpu0: call hold_it addrA until first }}
  - {{ cpu1: write addrC 0xc1 }}
  - {{ cpu0: resume }}
"
        ),
    )
}

#[test]
fn call_takes_the_lock_its_path_declares() {
    // none given (call takes none), none, read, and downgrade (for read
    // once the VMAs changed): the COW fault runs beside the stopped call
    for hold in ["", "none", "read", "downgrade"] {
        let r = run_seed(&called(hold)).unwrap();
        assert_eq!(r.final_view[2].value, Some(0xc1), "{hold:?}");
    }
    // write: the fault waits for it
    let (line, msg, holder) = blocked(run_seed(&called("write")));
    assert_eq!((line, holder), (17, Some(0)), "{msg}");
    assert!(msg.contains("mmap_lock held by cpu0"), "{msg}");
}

#[test]
fn an_override_can_drop_mprotect_to_a_read_lock() {
    // The bundled change_protection with `mmap_lock: read`: "what if
    // mprotect took the lock for read?" The COW fault then runs inside it.
    let def = shootdown::mm::lang::Paths::bundled()
        .get("change_protection")
        .unwrap();
    let yaml = def
        .0
        .to_yaml(2)
        .replacen("\n    steps:", "\n    mmap_lock: read\n    steps:", 1);
    let body = format!("paths:\n{yaml}{STOPPED_MPROTECT}");
    let r = run_seed(&scenario(0, "", &body)).unwrap();
    assert!(r.verdict.is_empty(), "{:?}", r.findings);
    assert_eq!(r.final_view[2].value, Some(0xc1));
}

#[test]
fn a_wrong_mmap_lock_word_is_an_error_at_its_line() {
    let text = "name: x\nabout: x\npages:\n  addrA: { va: 0x7f0000000000 }\npaths:\n  p:\n    follows: t\n    mmap_lock: sideways\n    steps:\n      - a: x = 1\ntimeline:\n  - { cpu0: call p addrA }\nexpect: { seed: clean }\n";
    let e = Scenario::parse(Path::new("bad.yaml"), text)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bad.yaml:8") && e.contains("mmap_lock 'sideways'") && e.contains("downgrade"),
        "{e}"
    );
}

#[test]
fn a_fault_found_blocked_keeps_no_mmap_lock() {
    // cpu1's COW fault takes the mmap_lock for read, then finds the page
    // table's lock held by cpu0 (stopped inside its own COW fault): the
    // move is blocked, and must leave nothing held. Else cpu2's mprotect
    // (the lock for write) would wait for a reader that never runs.
    use shootdown::explore::play::{Move, Player, Tried};
    let text = "name: mmap-lock\nabout: a blocked fault\npages:\n  addrA: { va: 0x7f0000000000, value: 0xa0, cow: true }\n  addrB: { va: 0x7f0000001000, value: 0xb0, cow: true }\n  addrC: { va: 0x7f0000400000, value: 0xc0 }\nprograms:\n  cpu0: [write addrA 1]\n  cpu1: [write addrB 2]\n  cpu2: [mprotect addrC ro]\nexpect: { seed: clean }\n";
    let s = Scenario::parse(Path::new("blocked.yaml"), text).unwrap();
    let mut p = Player::new(&s, Policy::Seed, Rules::default()).unwrap();
    // cpu0 to its `lock` (the PTL held, and its fault's mmap_lock)
    while p
        .steps
        .last()
        .is_none_or(|e| !e.text.ends_with("until lock"))
    {
        assert!(matches!(p.try_move(Move::Cpu(0), 0), Tried::Moved));
    }
    assert!(matches!(p.try_move(Move::Cpu(1), 1), Tried::Blocked));
    // cpu0 to its end: it lets go of the PTL and its mmap_lock
    while p.running() == Some(Move::Cpu(0)) {
        assert!(matches!(p.try_move(Move::Cpu(0), 0), Tried::Moved));
    }
    // mprotect takes the mmap_lock for write: no one holds it now
    assert!(matches!(p.try_move(Move::Cpu(2), 0), Tried::Moved));
}
