//! Bundled scenarios on the second socket (`--arch riscv-sv39`,
//! docs/socket-riscv.md): the same mm paths on Sv39 tables against the
//! RISC-V IOMMU design, flushed by Linux's RISC-V driver sequence. Skipped,
//! with a line saying so, in a build without a design.

use shootdown::checker::{Cache, ContextCache, Violation};
use shootdown::mm::Policy;
use shootdown::report::render;
use shootdown::riscv::model;
use shootdown::scenario::{Arch, Scenario};
use shootdown::sim::{run, RunOptions, RunReport};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn present() -> bool {
    if !model::present() {
        eprintln!("skipped: this build has no RISC-V IOMMU design (SHOOTDOWN_RTL_RISCV)");
    }
    model::present()
}

fn bundled(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("scenarios/{name}.yaml"));
    Scenario::load(&path).unwrap()
}

fn on_riscv(name: &str) -> Scenario {
    bundled(name).with_arch(Arch::RiscvSv39).unwrap().0
}

fn run_policy(s: &Scenario, policy: Policy, waves: Option<PathBuf>) -> RunReport {
    run(s, &RunOptions { policy, waves }).unwrap_or_else(|e| panic!("{e}"))
}

fn verdict(r: &RunReport) -> BTreeSet<Violation> {
    r.verdict.iter().copied().collect()
}

/// The seed's case B holds on RISC-V as on x86: deferring every flush to
/// invalidate_range_end lets the device see addrB's new value and then
/// addrA's old one; flushing under the PTL (seed, always, arch) is clean.
#[test]
fn cow_on_sv39_gives_the_seeds_verdicts_under_every_policy() {
    if !present() {
        return;
    }
    let s = on_riscv("cow");
    assert_eq!(s.pages[0].va, 0x10_0000_0000, "moved into Sv39's user half");
    let mut worst = Vec::new();
    assert_eq!(Policy::ALL[3], Policy::EndOnly);
    for p in Policy::ALL {
        let r = run_policy(&s, p, None);
        let want: BTreeSet<Violation> = match p {
            Policy::EndOnly => [Violation::OrderViolation, Violation::StaleRead].into(),
            _ => BTreeSet::new(),
        };
        assert_eq!(verdict(&r), want, "{p}: {}", render(&s, &r));
        // the design walked the Sv39 table and answered from memory
        assert!(r.dev.iter().all(|d| !d.fault), "{p}");
        assert!(r.stats.iotinval > 0 && r.stats.ats_inval == 0, "{p}");
        worst.push(worst_iotlb_window(&r, 0));
    }
    // addrA's stale IOTLB entry, seen through the wrapper's probe: held from
    // the COW's PTE change to its deferred flush under end-only, far
    // longer than the flush under the PTL leaves it (seed, always, arch)
    let (end_only, others) = (worst[3], &worst[..3]);
    assert!(
        others.iter().all(|&w| w * 4 < end_only),
        "always, seed, arch, end-only: {worst:?}"
    );
}

/// The longest window of an IOTLB entry of page `page` (0: none); no ATC
/// window on this socket.
fn worst_iotlb_window(r: &RunReport, page: usize) -> u64 {
    assert!(
        r.windows.iter().all(|w| w.cache == Cache::Iotlb),
        "{:?}",
        r.windows
    );
    r.windows
        .iter()
        .filter(|w| w.page == page)
        .map(|w| w.len(r.cycles))
        .max()
        .unwrap_or(0)
}

/// Finding 1 through a bundled scenario: IOFENCE.C completes while the
/// device's translated read is still on its 600-cycle way to memory, so
/// munmap frees the page under it whatever the policy (the bundled design
/// holds its flush until the read is back: clean but for end-only).
#[test]
fn drain_race_is_a_use_after_free_under_every_policy_on_the_design() {
    if !present() {
        return;
    }
    let s = on_riscv("drain-race");
    for p in Policy::ALL {
        let r = run_policy(&s, p, None);
        assert_eq!(
            verdict(&r),
            [Violation::UseAfterFree].into(),
            "{p}: {}",
            render(&s, &r)
        );
    }
}

/// Finding 2 through a scenario written for the socket
/// (scenarios/riscv/walk-fill-race.yaml): the walk that read the old PTE
/// fills the IOTLB after the COW fault's flush, and the device reads the
/// old page after the store: a stale read under seed and arch; the flush at
/// invalidate_range_end (always, end-only) comes after the fill and
/// removes it.
#[test]
fn walk_fill_race_is_a_stale_read_where_the_flush_is_under_the_ptl_only() {
    if !present() {
        return;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/riscv/walk-fill-race.yaml");
    let s = Scenario::load(&path).unwrap();
    assert_eq!(s.arch, Arch::RiscvSv39);
    for p in Policy::ALL {
        let r = run_policy(&s, p, None);
        assert!(r.as_expected(), "{p}: {}", render(&s, &r));
        let want: BTreeSet<Violation> = match p {
            Policy::Seed | Policy::Arch => [Violation::StaleRead].into(),
            _ => BTreeSet::new(),
        };
        assert_eq!(verdict(&r), want, "{p}");
        // the second read went to the old frame (stale) or the new one
        let reads: Vec<u64> = r.dev.iter().filter(|d| !d.write).map(|d| d.value).collect();
        let second = if want.is_empty() { 0xa1 } else { 0xa0 };
        assert_eq!(reads, vec![0xa0, second], "{p}");
    }
}

/// Finding 3 through a scenario (scenarios/riscv/unbind-race.yaml): the
/// process-context walk in flight when the process is unbound fills the
/// PDTC after IODIR.INVAL_PDT and IOFENCE.C; the device then reads addrA's
/// freed page through it, under every policy. Without the slow context
/// walker the walk finishes first, the unbind empties the PDTC (the window
/// closes) and the read after it faults: clean.
#[test]
fn unbind_race_leaves_the_pdtc_holding_the_unbound_context() {
    if !present() {
        return;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/riscv/unbind-race.yaml");
    let s = Scenario::load(&path).unwrap();
    for p in Policy::ALL {
        let r = run_policy(&s, p, None);
        assert!(r.as_expected(), "{p}: {}", render(&s, &r));
        assert_eq!(verdict(&r), [Violation::UseAfterFree].into(), "{p}");
        // the cached context outlives the unbind to the end of the run
        assert_eq!(r.context_windows.len(), 1, "{p}: {:?}", r.context_windows);
        assert_eq!(r.context_windows[0].end, None, "{p}");
        assert_eq!(r.context_windows[0].cache, ContextCache::Pdtc, "{p}");
        // the munmap after the unbind reached no driver
        assert_eq!(r.stats.flushes, 0, "{p}");
        assert!(r.dev.iter().all(|d| !d.fault), "{p}: {:?}", r.dev);
    }
    let mut fixed = s.clone();
    fixed.params.iommu_slow_cycles = 0;
    let r = run_policy(&fixed, Policy::Seed, None);
    assert!(verdict(&r).is_empty(), "{}", render(&fixed, &r));
    let faults: Vec<bool> = r.dev.iter().map(|d| d.fault).collect();
    assert_eq!(
        faults,
        vec![false, true],
        "the read after the unbind faults"
    );
    assert_eq!(r.context_windows.len(), 1, "{:?}", r.context_windows);
    let w = r.context_windows[0];
    assert!(
        w.end.is_some_and(|e| e > w.start),
        "the context is stale from the clear until IODIR.INVAL_PDT: {w:?}"
    );
    let text = render(&fixed, &r);
    assert!(text.contains("PDTC"), "{text}");
}

/// Same scenario, options and design: the same report and the same waves,
/// byte for byte; the waves hold the design's own signals and the .gtkw
/// groups them.
#[test]
fn a_run_on_the_design_is_deterministic_and_its_waves_show_the_design() {
    if !present() {
        return;
    }
    let s = on_riscv("cow");
    let dir = tempdir("riscv-waves");
    let mut texts = Vec::new();
    let mut waves = Vec::new();
    for i in 0..2 {
        let vcd = dir.join(format!("run{i}.vcd"));
        let r = run_policy(&s, Policy::EndOnly, Some(vcd.clone()));
        let text = render(&s, &r);
        // wall-clock lines differ between runs
        texts.push(
            text.lines()
                .filter(|l| !l.starts_with("Simulated") && !l.starts_with("Waves:"))
                .collect::<Vec<_>>()
                .join("\n"),
        );
        waves.push(std::fs::read(&vcd).unwrap());
        let gtkw = std::fs::read_to_string(vcd.with_extension("gtkw")).unwrap();
        assert!(gtkw.contains("-IOTLB and walker (design)"), "{gtkw}");
        assert!(gtkw.contains("i_rv_iommu_pdtc.update_i"), "{gtkw}");
        assert!(gtkw.contains("host.checker.stale_pdtc"), "{gtkw}");
        assert!(gtkw.contains("i_rv_iommu_ddtc.update_i"), "{gtkw}");
        assert!(gtkw.contains("TOP.shootdown_rv_top.tx_arvalid"), "{gtkw}");
    }
    assert_eq!(texts[0], texts[1]);
    assert!(waves[0] == waves[1], "the two VCDs differ");
    let vcd = String::from_utf8_lossy(&waves[0]);
    assert!(
        vcd.contains("i_rv_iommu_cq_handler"),
        "the design's signals are traced"
    );
    assert!(texts[0].contains("the design's IOTLB, through the RISC-V socket's probes"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sv48 tables on a design without Sv48 (the bundled RISC-V design has
/// only Sv39) are an error at bring-up naming the missing mode, never a run
/// whose device accesses all fault and whose verdict says clean.
#[test]
fn sv48_on_a_design_without_it_is_an_error_not_a_clean_run() {
    if !present() {
        return;
    }
    let s = bundled("cow").with_arch(Arch::RiscvSv48).unwrap().0;
    match run(&s, &RunOptions::policy(Policy::Seed)) {
        Ok(r) => panic!("ran: {}", render(&s, &r)),
        Err(e) => {
            let e = e.to_string();
            assert!(e.contains("has no Sv48"), "{e}");
        }
    }
}

/// What the socket cannot do is refused, naming why: ATS parameters,
/// injected bugs of the bundled RTL, a vendor driver, pages that collide
/// once moved; a scenario that says `arch:` itself gets the line.
#[test]
fn what_the_riscv_socket_cannot_do_is_refused() {
    let e = bundled("timeout-race")
        .with_arch(Arch::RiscvSv39)
        .unwrap_err();
    assert!(
        e.contains("params.ats_timeout") && e.contains("without ATS"),
        "{e}"
    );
    let e = bundled("tr-race").with_arch(Arch::RiscvSv39).unwrap_err();
    assert!(e.contains("params.ats_cpl_delay"), "{e}");
    let mut s = bundled("cow");
    s.inject = 1;
    assert!(s.with_arch(Arch::RiscvSv39).unwrap_err().contains("inject"));
    let mut s = bundled("cow");
    s.driver = shootdown::iommu::DriverKind::Amd;
    assert!(s
        .with_arch(Arch::RiscvSv39)
        .unwrap_err()
        .contains("driver: amd"));
    let mut s = bundled("cow");
    s.pages[1].va = s.pages[0].va + (1 << 40);
    let e = s.with_arch(Arch::RiscvSv39).unwrap_err();
    assert!(e.contains("would share a page"), "{e}");

    let dir = tempdir("riscv-arch");
    let write = |name: &str, body: &str| {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    };
    let head = "name: t\nabout: x\n";
    let tail = "timeline:\n  - { dev0: read addrA }\nexpect: { seed: clean }\n";
    let p = write(
        "far.yaml",
        &format!(
            "{head}arch: riscv-sv39\npages:\n  addrA: {{ va: 0x7f0000000000, value: 1 }}\n{tail}"
        ),
    );
    let e = Scenario::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("far.yaml:3") && e.contains("outside its user half"),
        "{e}"
    );
    let p = write(
        "ats.yaml",
        &format!("{head}arch: riscv-sv39\nparams: {{ ats_timeout: 400 }}\npages:\n  addrA: {{ va: 0x1000000, value: 1 }}\n{tail}"),
    );
    let e = Scenario::load(&p).unwrap_err().to_string();
    assert!(e.contains("ats.yaml:3") && e.contains("ats_timeout"), "{e}");
    let p = write(
        "typo.yaml",
        &format!("{head}arch: riscv-sv57\npages:\n  addrA: {{ va: 0x1000000, value: 1 }}\n{tail}"),
    );
    let e = Scenario::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("typo.yaml:3") && e.contains("unknown arch"),
        "{e}"
    );
    // an unbind on x86-64: the bundled IOMMU has no process context
    let p = write(
        "unbind.yaml",
        &format!("{head}pages:\n  addrA: {{ va: 0x1000000, value: 1 }}\ntimeline:\n  - {{ dev0: read addrA }}\n  - {{ cpu0: unbind }}\nexpect: {{ seed: clean }}\n"),
    );
    let e = Scenario::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("unbind.yaml:7") && e.contains("no process context"),
        "{e}"
    );
    // a scenario written for the socket loads, and round-trips its arch
    let p = write(
        "ok.yaml",
        &format!("{head}arch: riscv-sv39\npages:\n  addrA: {{ va: 0x1000000, value: 1 }}\n{tail}"),
    );
    let s = Scenario::load(&p).unwrap();
    assert_eq!(s.arch, Arch::RiscvSv39);
    assert!(s.to_yaml().contains("arch: riscv-sv39"));
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("shootdown-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Explore on the design cuts a schedule where it reaches a state already
/// explored (the design's state digested as the bundled one's is), and the
/// verdicts, findings and worst window stay those of playing every
/// schedule: the seed's case B written as programs (smaller than
/// scenarios/programs/cow.yaml), end-only, bound 1.
#[test]
fn explore_on_the_design_cuts_and_keeps_the_verdicts() {
    use shootdown::explore::fork;
    use shootdown::explore::play::Rules;
    if !present() {
        return;
    }
    let dir = tempdir("riscv-explore");
    let path = dir.join("cow-race.yaml");
    std::fs::write(
        &path,
        "name: cow-race\nabout: x\narch: riscv-sv39\n\
         params: { mem_latency: 40, cpu_step_cycles: 10 }\n\
         pages:\n  addrA: { va: 0x1000000000, value: 0xa0, cow: true }\n  addrB: { va: 0x1000002000, value: 0xb0, cow: true }\n\
         programs:\n  cpu0: [write addrA 0xa1]\n  cpu2: [write addrA 0xa2, write addrB 0xb2]\n  dev0: [read addrA, read addrB, read addrA]\n\
         expect: { end-only: [order-violation, stale-read] }\n",
    )
    .unwrap();
    let s = Scenario::load(&path).unwrap();
    let exe = Path::new(env!("CARGO_BIN_EXE_shootdown"));
    let search = |prune: bool| {
        let rules = Rules {
            overlap: false,
            requested: false,
            prune,
        };
        fork::exhaustive(&s, Policy::EndOnly, rules, 1, 100_000, 2, exe, None).unwrap()
    };
    let (all, cut) = (search(false), search(true));
    assert!(
        cut.pruned > 0 && cut.schedules < all.schedules,
        "{} played, {} cut, of {}",
        cut.schedules,
        cut.pruned,
        all.schedules
    );
    assert!(
        all.verdict.contains(&Violation::OrderViolation),
        "{:?}",
        all.verdict
    );
    assert_eq!(cut.verdict, all.verdict);
    assert_eq!(cut.worst_window, all.worst_window);
    let kinds = |r: &shootdown::explore::search::Searched| -> BTreeSet<String> {
        r.findings.iter().map(|f| f.what.name()).collect()
    };
    assert_eq!(kinds(&cut), kinds(&all));
    eprintln!(
        "riscv explore: {} of {} played, {} cut; verdict {:?}",
        cut.schedules, all.schedules, cut.pruned, all.verdict
    );
    let _ = std::fs::remove_dir_all(&dir);
}
