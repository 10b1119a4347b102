//! Bad input gets an error naming the file, the line and what to do; an
//! impossible timeline or a hung wait is an error, never a panic or a hang.

use shootdown::mm::Policy;
use shootdown::scenario::Scenario;
use shootdown::sim::{run, RunError, RunOptions};
use std::path::Path;
use std::process::Command;

const BASE: &str = "name: t
about: test
pages:
  addrA: { va: 0x7f0000000000, value: 0xa0, cow: true }
  addrB: { va: 0x7f0000001000, value: 0xb0, cow: true }
timeline:
";

fn scenario(timeline: &str) -> Scenario {
    let src = format!("{BASE}{timeline}expect: {{ seed: clean }}\n");
    Scenario::parse(Path::new("t.yaml"), &src).unwrap()
}

fn run_err(s: &Scenario) -> (usize, String) {
    match run(s, &RunOptions::policy(Policy::Seed)) {
        Err(RunError::Timeline { line, msg, .. }) => (line, msg),
        Err(e) => panic!("expected a timeline error, got {e}"),
        Ok(_) => panic!("expected a timeline error"),
    }
}

#[test]
fn a_lock_held_by_a_preempted_thread_is_named() {
    // cpu0 stops holding addrA's PTL; cpu1 needs the same PTL (same page table).
    let s = scenario("  - { cpu0: write addrA 1 until lock }\n  - { cpu1: write addrB 2 }\n");
    let (line, msg) = run_err(&s);
    assert_eq!(line, 8);
    assert!(
        msg.contains("cpu1 spins on a page-table lock held by cpu0"),
        "{msg}"
    );
    assert!(msg.contains("resume cpu0"), "{msg}");
}

#[test]
fn a_cpu_access_no_vma_covers_is_sigsegv_not_a_missing_page_table() {
    // after munmap (its page table stays until free_pgtables; here the
    // VMA is gone first)
    let s = scenario("  - { cpu0: munmap addrA }\n  - { cpu1: read addrA }\n");
    let (line, msg) = run_err(&s);
    assert_eq!(line, 8);
    assert!(
        msg.contains("a CPU read of an address no VMA covers (the page fault it takes: SIGSEGV)")
            && msg.contains("not after munmap or exit"),
        "{msg}"
    );
}

#[test]
fn a_checkpoint_never_reached_is_named() {
    // A second write to a page already copied does not fault.
    let s = scenario("  - { cpu0: write addrA 1 }\n  - { cpu0: write addrA 2 until start }\n");
    let (line, msg) = run_err(&s);
    assert_eq!(line, 8);
    assert!(msg.contains("without reaching checkpoint 'start'"), "{msg}");
}

#[test]
fn resume_without_work_and_work_while_busy_are_errors() {
    let (line, msg) = run_err(&scenario("  - { cpu0: resume }\n"));
    assert_eq!(line, 7);
    assert!(msg.contains("nothing to resume"), "{msg}");
    let (line, msg) = run_err(&scenario(
        "  - { cpu0: write addrA 1 until copy }\n  - { cpu0: write addrB 2 }\n",
    ));
    assert_eq!(line, 8);
    assert!(msg.contains("write 'resume'"), "{msg}");
}

#[test]
fn a_command_queue_size_that_is_not_a_power_of_two_is_named() {
    let src = format!("{BASE}  - {{ dev0: read addrA }}\nexpect: {{ seed: clean }}\n")
        .replace("pages:", "params: { cq_entries: 3 }\npages:");
    let e = Scenario::parse(Path::new("t.yaml"), &src).unwrap_err();
    assert_eq!(e.line, 3, "{e}");
    assert!(e.msg.contains("power of two from 2 to 256"), "{e}");
}

#[test]
fn device_checkpoints_are_checked() {
    // The second read hits the ATC: no Translation Request, no 'translated'.
    let s = scenario("  - { dev0: read addrA }\n  - { dev0: read addrA until translated }\n");
    let (line, msg) = run_err(&s);
    assert_eq!(line, 8);
    assert!(
        msg.contains("without reaching checkpoint 'translated'"),
        "{msg}"
    );
    // A new access while the stopped one is still in flight: the parser
    // knows, whatever the timing.
    let src = format!(
        "{BASE}  - {{ dev0: read addrA until translated }}\n  - {{ dev0: read addrB }}\nexpect: {{ seed: clean }}\n"
    );
    let e = Scenario::parse(Path::new("t.yaml"), &src).unwrap_err();
    assert_eq!(e.line, 8);
    assert!(
        e.msg.contains("dev0 is still inside its access of line 7"),
        "{e}"
    );
    assert!(e.msg.contains("dev0: resume"), "{e}");
    // A resume with nothing to wait for.
    let src = format!(
        "{BASE}  - {{ dev0: read addrA }}\n  - {{ dev0: resume }}\nexpect: {{ seed: clean }}\n"
    );
    let e = Scenario::parse(Path::new("t.yaml"), &src).unwrap_err();
    assert_eq!(e.line, 8);
    assert!(e.msg.contains("no access stopped at a checkpoint"), "{e}");
    // Stopped, resumed, and read again: fine.
    let s = scenario(
        "  - { dev0: read addrA until translated }\n  - { dev0: resume }\n  - { dev0: read addrB }\n",
    );
    let r = run(&s, &RunOptions::policy(Policy::Seed)).unwrap();
    assert_eq!(r.dev.len(), 2);
}

#[test]
fn the_watchdog_bounds_every_wait_on_the_hardware() {
    // An ATS link this slow cannot answer within the watchdog: a CPU
    // thread that spins on its flush's fence stops the run.
    let src = format!(
        "{BASE}  - {{ cpu0: write addrA 0xa1 }}\nparams: {{ ats_latency: 60000, watchdog_cycles: 5000 }}\nexpect: {{ seed: clean }}\n"
    );
    let s = Scenario::parse(Path::new("t.yaml"), &src).unwrap();
    let (line, msg) = run_err(&s);
    assert_eq!(line, 7);
    assert!(msg.contains("watchdog_cycles = 5000"), "{msg}");
    assert!(msg.contains("cpu0 waits on Fence"), "{msg}");
}

#[test]
fn a_device_access_without_response_within_the_watchdog_is_no_progress() {
    // Only the device waits: the hardware made no progress within the
    // bound. A verdict, and the run stops at that step.
    let src = format!(
        "{BASE}  - {{ dev0: read addrA }}\n  - {{ cpu0: write addrA 0xa1 }}\nparams: {{ ats_latency: 60000, watchdog_cycles: 5000 }}\nexpect: {{ seed: clean }}\n"
    );
    let s = Scenario::parse(Path::new("t.yaml"), &src).unwrap();
    let r = run(&s, &RunOptions::policy(Policy::Seed)).unwrap();
    assert_eq!(
        r.verdict.iter().copied().collect::<Vec<_>>(),
        vec![shootdown::checker::Violation::NoProgress]
    );
    let f = &r.findings[0];
    assert!(f.detail.contains("watchdog_cycles = 5000"), "{}", f.detail);
    assert!(f.detail.starts_with("dev0's read of addrA"), "{}", f.detail);
    // the second step never ran: no store, and no step after the stall
    assert!(r.stores.iter().all(|st| st.value != 0xa1));
    assert_eq!(r.slots.len(), 1, "the run stopped in its first step");
}

#[test]
fn the_cli_reports_a_malformed_scenario_with_file_and_line() {
    let dir = std::env::temp_dir().join(format!("shootdown_cli_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bad.yaml");
    std::fs::write(
        &f,
        format!("{BASE}  - {{ cpu0: write addrA 1 until nowhere }}\nexpect: {{ seed: clean }}\n"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_shootdown"))
        .args(["scenario", f.to_str().unwrap(), "--no-waves"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("bad.yaml:7:"), "{err}");
    assert!(err.contains("unknown checkpoint 'nowhere'"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_cli_exit_status_follows_expect() {
    let dir = std::env::temp_dir().join(format!("shootdown_cli_exp_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cow =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/cow.yaml"))
            .unwrap();
    // Claim end-only is clean: the run must disagree and exit 1.
    let wrong = cow.replace("end-only: [order-violation, stale-read]", "end-only: clean");
    let f = dir.join("wrong.yaml");
    std::fs::write(&f, wrong).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_shootdown"))
        .args([
            "scenario",
            f.to_str().unwrap(),
            "--no-waves",
            "--notify",
            "end-only",
            "-q",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("MISMATCH"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_cli_driver_option_overrides_the_scenario() {
    let bin = env!("CARGO_BIN_EXE_shootdown");
    let out = Command::new(bin)
        .args(["scenario", "cow", "--no-waves", "--driver", "nonsense"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("amd"),
        "the error lists the drivers"
    );
    // AMD's whole-PASID flush of addrB's 2 MiB range hides thp-cow's violation: a mismatch.
    let out = Command::new(bin)
        .args([
            "sweep", "thp-cow", "--notify", "end-only", "--driver", "amd",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Whatever the scenario's file is called, its waves land in --waves-dir
/// under a plain name (characters other than letters, digits, '.', '_', '-'
/// become '_'), and nothing is written anywhere else.
#[test]
fn the_waves_stay_in_the_waves_dir_whatever_the_file_name() {
    let dir = std::env::temp_dir().join(format!("shootdown_stem_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let src_dir = dir.join("src");
    let waves = dir.join("waves");
    std::fs::create_dir_all(&src_dir).unwrap();
    let cow =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/cow.yaml"))
            .unwrap();
    for (file, stem) in [
        ("a b;c\u{1b}[1m.yaml", "a_b_c__1m"),
        ("..yaml", "cow"),
        ("-x.yaml", "-x"),
    ] {
        let f = src_dir.join(file);
        std::fs::write(&f, &cow).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_shootdown"))
            .args(["scenario", f.to_str().unwrap(), "--notify", "seed", "-q"])
            .arg("--waves-dir")
            .arg(&waves)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{file:?}: {out:?}");
        let mut got: Vec<String> = std::fs::read_dir(&waves)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        got.sort();
        assert_eq!(
            got,
            [format!("{stem}-seed.gtkw"), format!("{stem}-seed.vcd")],
            "{file:?}"
        );
        std::fs::remove_dir_all(&waves).unwrap();
        let left: Vec<_> = std::fs::read_dir(&src_dir).unwrap().collect();
        assert_eq!(left.len(), 1, "nothing written beside the scenario");
        std::fs::remove_file(&f).unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
