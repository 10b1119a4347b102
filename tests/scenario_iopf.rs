//! The I/O page fault worker as a thread of the schedule: a timeline that
//! names it (`iopf: resume until vma`) or stops a device access at its
//! `page-request` runs it only in the steps that name it, and `explore`
//! moves it like a CPU thread, so its handler interleaves with the kernel
//! paths it races with.

use shootdown::explore::fork::{decode, encode};
use shootdown::explore::play::{Move, Player, Rules, Tried};
use shootdown::explore::search::exhaustive;
use shootdown::mm::Policy;
use shootdown::scenario::{Scenario, ThreadRef};
use shootdown::sim::{run, RunError, RunOptions, RunReport};
use std::path::Path;

#[path = "support/bundled.rs"]
mod support;

const HEAD: &str = "name: iopf
about: the worker scheduled
params: { mem_latency: 40, ats_latency: 150, cpu_step_cycles: 10, pri: 4 }
pages:
  addrA: { va: 0x7f0000000010, value: 0xa0 }
  addrB: { va: 0x7f0000001010, value: 0xb0 }
";

const EXPECT: &str = "expect: { seed: clean }\n";

fn parse(body: &str) -> Result<Scenario, String> {
    let src = format!("{HEAD}{body}{EXPECT}");
    Scenario::parse(Path::new("iopf.yaml"), &src).map_err(|e| e.to_string())
}

fn timeline(steps: &[&str]) -> Scenario {
    let body: String = std::iter::once("timeline:\n".to_string())
        .chain(steps.iter().map(|s| format!("  - {{ {s} }}\n")))
        .collect();
    parse(&body).unwrap()
}

fn run_seed(s: &Scenario) -> Result<RunReport, RunError> {
    run(s, &RunOptions::policy(Policy::Seed))
}

fn lines(r: &RunReport) -> Vec<String> {
    r.slots
        .iter()
        .flat_map(|s| s.lines.iter().map(|l| format!("{}: {}", l.thread, l.text)))
        .collect()
}

/// The madvise that drops both pages, then a device read of addrA that
/// asks the kernel: the steps every test here starts with.
const DROPPED: [&str; 2] = [
    "cpu0: madv-dontneed addrA 2",
    "dev0: read addrA until page-request",
];

#[test]
fn a_handler_stopped_at_vma_finds_the_page_a_cpu_filled_meanwhile() {
    let s = Scenario::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/pri-fault-race.yaml"),
    )
    .unwrap();
    for p in Policy::ALL {
        let r = run(&s, &RunOptions::policy(p)).unwrap();
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        assert_eq!(r.dev.iter().find(|d| !d.write).unwrap().value, 0xa5, "{p}");
    }
    let r = run_seed(&s).unwrap();
    let l = lines(&r);
    // the handler classified an empty PTE at `vma`, then found it filled:
    // nothing to fault in
    assert!(
        l.iter().any(|t| t
            == "dev0: page request (read addrA), the kernel's I/O page fault handler: vma, respond, responded -> Success"),
        "{l:#?}"
    );
    assert!(
        l.contains(&"iopf: resume until vma: vma ... stopped".to_string()),
        "{l:#?}"
    );
    assert!(
        l.iter()
            .any(|t| t.starts_with("dev0: read addrA: page request @")),
        "{l:#?}"
    );
    let read = r.dev.iter().find(|d| !d.write).unwrap();
    assert_eq!(read.value, 0xa5, "the device reads what the CPU wrote");
    assert!(r.verdict.is_empty(), "{:?}", r.findings);

    // Unscheduled, the handler runs inside the device's step: it faults the
    // zero page in first, and the CPU's write comes after.
    let s = timeline(&[DROPPED[0], "dev0: read addrA", "cpu1: write addrA 0xa5"]);
    let r = run_seed(&s).unwrap();
    let l = lines(&r);
    assert!(
        l.iter()
            .any(|t| t.contains("handler: vma, anonymous, respond, responded -> Success")),
        "{l:#?}"
    );
    assert_eq!(r.dev.iter().find(|d| !d.write).unwrap().value, 0);
}

#[test]
fn a_parked_worker_holds_its_mmap_lock_and_answers_no_one() {
    // munmap wants the mmap_lock for write; the worker holds it for read
    let s = timeline(&[
        DROPPED[0],
        DROPPED[1],
        "iopf: resume until vma",
        "cpu0: munmap addrA",
    ]);
    let e = run_seed(&s).unwrap_err().to_string();
    assert!(
        e.contains("iopf.yaml:11:")
            && e.contains(
                "cpu0 waits for its process's mmap_lock held by the I/O page fault worker"
            )
            && e.contains("(it stopped after 'vma')")
            && e.contains("add 'iopf: resume' to this step"),
        "{e}"
    );
    // ... and the same munmap beside the worker's resume waits, then runs
    let s = timeline(&[
        DROPPED[0],
        DROPPED[1],
        "iopf: resume until vma",
        "cpu0: munmap addrA, iopf: resume",
    ]);
    assert!(run_seed(&s).is_ok());

    // a device waiting for the answer the parked worker owes
    let s = timeline(&[
        DROPPED[0],
        DROPPED[1],
        "iopf: resume until vma",
        "dev0: resume",
    ]);
    let e = run_seed(&s).unwrap_err().to_string();
    assert!(
        e.contains("iopf.yaml:11:")
            && e.contains("dev0 waits for the answer to its Page Request")
            && e.contains("add 'iopf: resume' to this step"),
        "{e}"
    );
}

#[test]
fn a_worker_or_a_device_that_cannot_get_to_its_stop_is_an_error_naming_the_line() {
    // nothing asked the kernel yet
    let s = timeline(&["iopf: resume until vma"]);
    let e = run_seed(&s).unwrap_err().to_string();
    assert!(
        e.contains("iopf.yaml:8:") && e.contains("no Page Request is left to handle"),
        "{e}"
    );
    // the page is mapped: no Page Request
    let s = timeline(&["dev0: read addrA until page-request"]);
    let e = run_seed(&s).unwrap_err().to_string();
    assert!(
        e.contains("iopf.yaml:8:")
            && e.contains("without reaching checkpoint 'page-request'")
            && e.contains("drop 'until'"),
        "{e}"
    );
    // a second Page Request of one access: resume until the next one
    let s = timeline(&[DROPPED[0], DROPPED[1], "dev0: resume until page-request"]);
    let e = run_seed(&s).unwrap_err().to_string();
    assert!(
        e.contains("dev0 waits for the answer to its Page Request"),
        "{e}"
    );
}

#[test]
fn the_parser_refuses_what_the_worker_cannot_do() {
    let bad = |step: &str| parse(&format!("timeline:\n  - {{ {step} }}\n")).unwrap_err();
    let e = bad("iopf: write addrA 1");
    assert!(
        e.contains("iopf.yaml:8:") && e.contains("takes no action of its own"),
        "{e}"
    );
    // from its PRG Response to its fence it owns the queue
    let e = bad("iopf: resume until respond");
    assert!(
        e.contains("unknown checkpoint 'respond'") && e.contains("responded"),
        "{e}"
    );
    let e = bad("iopf: resume until nowhere");
    assert!(
        e.contains("unknown checkpoint 'nowhere'") && e.contains("vma"),
        "{e}"
    );
    let e = bad("dev0: resume until translated");
    assert!(e.contains("write 'until page-request'"), "{e}");
    let e = parse("programs:\n  iopf: [read addrA]\n").unwrap_err();
    assert!(e.contains("has no program"), "{e}");
    // no PRI: no Page Request to stop at
    let src =
        format!("{HEAD}timeline:\n  - {{ iopf: resume }}\n{EXPECT}").replace("pri: 4", "pri: 0");
    let e = Scenario::parse(Path::new("iopf.yaml"), &src)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("iopf.yaml:8:") && e.contains("params.pri = 0"),
        "{e}"
    );
}

fn programs() -> Scenario {
    parse(
        "programs:
  cpu0: [madv-dontneed addrA 2]
  cpu1: [write addrA 0xa5]
  dev0: [read addrA]
",
    )
    .unwrap()
}

/// Move `m` until the thread stops being the one that could go on.
fn run_out(p: &mut Player, m: Move) {
    assert!(matches!(p.try_move(m, 0), Tried::Moved));
    while p.running() == Some(m) {
        assert!(matches!(p.try_move(m, 0), Tried::Moved));
    }
}

#[test]
fn explore_moves_the_worker_between_the_kernel_paths_it_races() {
    let s = programs();
    let mut p = Player::new(&s, Policy::Seed, Rules::default()).unwrap();
    run_out(&mut p, Move::Cpu(0));
    // the access stops at its Page Request; the worker can move, the
    // device cannot resume before the worker answers
    assert!(matches!(p.try_move(Move::Dev(0), 0), Tried::Moved));
    assert_eq!(
        p.steps.last().unwrap().text,
        "read addrA until page-request"
    );
    let enabled = p.enabled();
    assert!(enabled.contains(&Move::Iopf), "{enabled:?}");
    assert!(!enabled.contains(&Move::DevResume(0)), "{enabled:?}");
    assert!(matches!(p.try_move(Move::Iopf, 0), Tried::Moved));
    assert_eq!(p.steps.last().unwrap().text, "resume until vma");
    // the worker is inside its handler: moving cpu1 is a preemption
    assert_eq!(p.running(), Some(Move::Iopf));
    assert!(matches!(p.try_move(Move::Cpu(1), 1), Tried::Moved));
    run_out(&mut p, Move::Cpu(1));
    run_out(&mut p, Move::Iopf);
    assert!(p.enabled().contains(&Move::DevResume(0)));
    assert!(matches!(p.try_move(Move::DevResume(0), 0), Tried::Moved));
    let texts: Vec<String> = p
        .steps
        .iter()
        .map(|e| format!("{}: {}", e.thread, e.text))
        .collect();
    assert!(
        texts.contains(&"iopf: resume until responded".to_string()),
        "{texts:#?}"
    );
    assert_eq!(
        encode(&p.moves).matches(" i").count(),
        2,
        "{}",
        encode(&p.moves)
    );
    assert_eq!(decode(&encode(&p.moves)).unwrap(), p.moves);
    let shootdown::explore::play::End::Done(r) = p.finish() else {
        panic!("the schedule ran to its end");
    };
    assert_eq!(r.dev.iter().find(|d| !d.write).unwrap().value, 0xa5);
}

#[test]
fn every_schedule_of_the_worker_and_the_paths_is_judged() {
    let s = programs();
    for policy in [Policy::EndOnly, Policy::Arch] {
        let r = exhaustive(&s, policy, Rules::default(), 1, 100_000, 2).unwrap();
        assert_eq!(r.unmodelled, 0, "{policy}: {:?}", r.unmodelled_first);
        assert!(r.verdict.is_empty(), "{policy}: {:?}", r.findings);
        // the device read the zero page, or what cpu1 wrote, or faulted in
        // a new page cpu1 then wrote
        assert!(r.distinct > 3, "{policy}: {}", r.distinct);
    }
    // Without the worker's moves (no PRI) the same programs are fewer
    // schedules: the access faults, nothing to interleave.
    let nopri = parse(
        "programs:
  cpu0: [madv-dontneed addrA 2]
  cpu1: [write addrA 0xa5]
  dev0: [read addrA]
",
    )
    .map(|mut s| {
        s.params.pri = 0;
        s
    })
    .unwrap();
    let with = exhaustive(&s, Policy::Seed, Rules::default(), 1, 100_000, 2).unwrap();
    let without = exhaustive(&nopri, Policy::Seed, Rules::default(), 1, 100_000, 2).unwrap();
    assert!(
        with.schedules > without.schedules,
        "{} / {}",
        with.schedules,
        without.schedules
    );
}

/// A blocked move changes nothing, even where the thread ran part of its
/// path before it found the lock held: here the worker, past `vma`, has
/// decided on a write fault and walks to the PTE lock cpu1 holds inside its
/// own COW. The stateless search went on from that half-run handler, so its
/// schedules differed from the fork engine's (which drops the process) and
/// did not replay; now the player is put back as it was. (The digest cannot
/// tell: it is comparable only within one model instance.)
#[test]
fn a_blocked_worker_move_leaves_the_machine_as_it_was() {
    let s =
        Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/pri-dontneed.yaml"))
            .unwrap();
    let prefix = decode("c0 c0 c0 c0 c0 c0 c0 c0 c0 d0 i i i c1 c1 c1 c1 c1 r0 d0 d0 i").unwrap();
    let play = |try_worker: bool| {
        let mut p = Player::new(&s, Policy::Always, Rules::default()).unwrap();
        for &m in &prefix {
            assert!(matches!(p.try_move(m, 0), Tried::Moved), "{m:?}");
        }
        assert_eq!(p.steps.last().unwrap().text, "resume until vma");
        if try_worker {
            assert!(matches!(p.try_move(Move::Iopf, 0), Tried::Blocked));
        }
        // cpu1 finishes its COW; the handler then finds the PTE writable
        // and answers in one move
        run_out(&mut p, Move::Cpu(1));
        assert!(matches!(p.try_move(Move::Iopf, 0), Tried::Moved));
        assert_eq!(p.steps.last().unwrap().text, "resume until responded");
        assert!(matches!(p.try_move(Move::DevResume(0), 0), Tried::Moved));
        let moves = encode(&p.moves);
        let shootdown::explore::play::End::Done(r) = p.finish() else {
            panic!("the schedule ran to its end");
        };
        (moves, r.cycles, r.verdict, format!("{:?}", r.dev))
    };
    assert_eq!(play(true), play(false));
}

/// A Page Request whose PTE a CPU's own fault fixed first: the handler
/// runs handle_pte_fault's tail (paths/ptep_set_access_flags.yaml) under
/// the PTE lock, writes nothing back (the copy's PTE is young and dirty
/// already) and flushes nothing; the retry finds the copy.
#[test]
fn a_spurious_page_request_takes_the_pte_lock_and_flushes_nothing() {
    let s =
        Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/pri-spurious.yaml"))
            .unwrap();
    for p in Policy::ALL {
        let r = run(&s, &RunOptions::policy(p)).unwrap();
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        let handler = r.slots[4]
            .lines
            .iter()
            .find(|l| l.thread == ThreadRef::Dev(0))
            .unwrap();
        assert!(
            handler
                .text
                .ends_with("vma, lock, set_access_flags, unlock, respond, responded -> Success"),
            "{p}: {}",
            handler.text
        );
        assert_eq!((r.dev[1].value, r.dev[2].value), (0xd1, 0xd1), "{p}");
        assert_eq!(r.dev[1].pa, r.dev[2].pa, "{p}");
        assert_ne!(
            r.dev[1].pa, r.dev[0].pa,
            "{p}: the copy, not the shared page"
        );
        // cpu1's COW flushed; the handler added no flush of its own
        let cow_only = Scenario::parse(
            Path::new("c.yaml"),
            "name: c\nabout: c\npages:\n  addrA: { va: 0x7f0000000010, value: 0xa0, cow: true }\ntimeline:\n  - { dev0: read addrA }\n  - { cpu1: write addrA 0xc1 }\nexpect: { seed: clean }\n",
        )
        .unwrap();
        let cow_only = run(&cow_only, &RunOptions::policy(p)).unwrap();
        assert!(cow_only.stats.flushes > 0, "{p}");
        assert_eq!(r.stats.flushes, cow_only.stats.flushes, "{p}");
    }
}

/// The same for a THP: the PMD a CPU's NUMA hinting fault made present
/// again grants the device's write, and the handler runs
/// huge_pmd_set_accessed (paths/huge_pmd_set_accessed.yaml) under the PMD
/// lock: the PMD young and dirty, no flush beyond the NUMA scan's own.
/// Before, a huge leaf's spurious request was answered at once.
#[test]
fn a_spurious_page_request_on_a_thp_takes_the_pmd_lock_and_flushes_nothing() {
    let s = support::bundled("pri-huge-spurious.yaml");
    let scan_only = Scenario::parse(
        Path::new("n.yaml"),
        "name: n\nabout: n\npages:\n  addrT: { va: 0x7f0000201010, value: 0x40, thp: true }\ntimeline:\n  - { cpu0: numa-hint addrT }\n  - { cpu1: read addrT }\nexpect: { seed: clean }\n",
    )
    .unwrap();
    const A: u64 = 1 << 5;
    const D: u64 = 1 << 6;
    for p in Policy::ALL {
        let r = run(&s, &RunOptions::policy(p)).unwrap();
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        let handler = support::handler_line(&r, 0);
        assert!(
            handler.ends_with("vma, lock, set_access_flags, unlock, respond, responded -> Success"),
            "{p}: {handler}"
        );
        assert_eq!(r.dev.last().unwrap().value, 0xd1, "{p}");
        let v = r.view_of("addrT").unwrap();
        assert_eq!(v.entry & (A | D), A | D, "{p}: young and dirty");
        let scan = run(&scan_only, &RunOptions::policy(p)).unwrap();
        assert_eq!(r.stats.flushes, scan.stats.flushes, "{p}");
    }
}

/// The PTE changed between the handler's look and its lock (KSM
/// write-protected it): the path finds the entry no longer grants the
/// write and does nothing; the device's retry asks again, and the next
/// handler reuses the page.
#[test]
fn a_spurious_fault_whose_pte_changed_does_nothing_and_the_retry_asks_again() {
    let s = Scenario::parse(
        Path::new("k.yaml"),
        "name: k\nabout: k\nparams: { mem_latency: 40, ats_latency: 150, cpu_step_cycles: 10, pri: 4 }
pages:
  addrA: { va: 0x7f0000000010, value: 0xa0, cow: true }
timeline:
  - { dev0: write addrA 0xd1 until page-request }
  - { cpu1: write addrA 0xc1 }
  - { iopf: resume until vma }
  - { cpu0: ksm-wrprotect addrA }
  - { iopf: resume until responded }
  - { dev0: resume until page-request }
  - { iopf: resume }
  - { dev0: resume }
  - { dev1: read addrA }
expect: { seed: clean }
",
    )
    .unwrap();
    for p in Policy::ALL {
        let r = run(&s, &RunOptions::policy(p)).unwrap();
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        let texts = lines(&r);
        assert!(
            texts
                .contains(&"iopf: resume until responded: changed, respond, responded".to_string()),
            "{p}: {texts:#?}"
        );
        assert!(
            texts.contains(&"iopf: resume: vma, reuse, respond, responded".to_string()),
            "{p}: {texts:#?}"
        );
        assert_eq!(r.dev.last().unwrap().value, 0xd1, "{p}");
    }
}

/// scenarios/pri-spurious.yaml, and the same file with `paths` (a
/// scenario's own version of a bundled path) added.
fn pri_spurious_with(paths: &str) -> (Scenario, Scenario) {
    let bundled = support::bundled("pri-spurious.yaml");
    let src = std::fs::read_to_string(&bundled.path)
        .unwrap()
        .replace("params:", &format!("paths:\n{paths}params:"));
    let patched = Scenario::parse(Path::new("p.yaml"), &src).unwrap();
    (bundled, patched)
}

/// The path is the scenario's to change: a patch that flushes the
/// secondary TLBs on a spurious fault (mmu_notifier_invalidate_range before
/// 6.6, the CPU flush's hook from 6.6: one of the two under each policy
/// but end-only, which waits for an E the path does not have) costs one
/// more flush, and changes no verdict.
#[test]
fn a_scenario_can_give_the_spurious_fault_a_flush() {
    let (bundled, patched) = pri_spurious_with(
        "  ptep_set_access_flags:
    follows: a patch
    steps:
      - lock: lock pte
      - set_access_flags:
          - invalidate_range va, va + 4096
          - flush_tlb_range va, va + 4096
      - unlock: unlock pte
",
    );
    for p in Policy::ALL {
        let a = run(&bundled, &RunOptions::policy(p)).unwrap();
        let b = run(&patched, &RunOptions::policy(p)).unwrap();
        assert!(b.verdict.is_empty(), "{p}: {:?}", b.findings);
        // end-only defers every secondary flush to an E, and this path has none
        let more = u64::from(p != Policy::EndOnly);
        assert_eq!(b.stats.flushes, a.stats.flushes + more, "{p}");
    }
}

/// A patch that forgets its unlock: the handler returns holding the PTE
/// lock, an error at the line of the step that ran it (in Linux, the next
/// fault on the table would spin forever).
#[test]
fn a_handler_that_returns_holding_a_lock_is_an_error() {
    let (_, patched) = pri_spurious_with(
        "  ptep_set_access_flags:
    follows: a patch that forgets its unlock
    steps:
      - lock: lock pte
      - set_access_flags: x = read(pte)
",
    );
    let e = run(&patched, &RunOptions::policy(Policy::Seed))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("the I/O page fault handler returned holding a page-table lock")
            && e.contains("lock, set_access_flags"),
        "{e}"
    );
}
