//! `explore`: the seed's case B, written as programs with no timeline, is
//! found under end-only and under no other policy in every schedule with at
//! most one preemption; what it finds is a scenario that replays; the
//! result does not depend on the number of workers.

use shootdown::explore::play::Rules;
use shootdown::explore::search::{exhaustive, Found, Searched};
use shootdown::explore::{explore_one, fork, shrink, Engine};
use shootdown::mm::Policy;
use shootdown::scenario::Scenario;
use shootdown::sim::{run, RunOptions};
use std::collections::BTreeSet;
use std::path::Path;

fn cow_programs() -> Scenario {
    Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/programs/cow.yaml"))
        .unwrap()
}

const RULES: Rules = Rules {
    overlap: false,
    requested: false,
    prune: false,
};

/// Worker processes that share prefixes by forking: this test's binary is
/// not `shootdown`, so they are started from it.
fn engine() -> Engine {
    Engine::Fork {
        exe: env!("CARGO_BIN_EXE_shootdown").into(),
    }
}

fn forked(
    s: &Scenario,
    p: Policy,
    rules: Rules,
    bound: u32,
) -> shootdown::explore::search::Searched {
    fork::exhaustive(
        s,
        p,
        rules,
        bound,
        100_000,
        2,
        std::path::Path::new(env!("CARGO_BIN_EXE_shootdown")),
        None,
    )
    .unwrap()
}

#[test]
fn case_b_is_found_under_end_only_and_nowhere_else_within_one_preemption() {
    let s = cow_programs();
    assert!(s.timeline.is_empty(), "programs only");
    let out = std::env::temp_dir().join(format!("shootdown_explore_{}", std::process::id()));
    let mut counts = Vec::new();
    for p in Policy::ALL {
        let e = explore_one(&s, p, RULES, 1, 100_000, 2, &engine(), &out, None);
        let r = e.searched.as_ref().unwrap();
        counts.push(r.schedules);
        assert_eq!(Some(&r.verdict), s.expected(p), "{p}");
        if p != Policy::EndOnly {
            assert!(r.findings.is_empty(), "{p}");
            continue;
        }
        // Every finding needs the one preemption (cpu0 between its PTE
        // change and E); the shrunk scenario replays to the same verdict.
        assert!(r.findings.iter().all(|f| f.preemptions == 1));
        let order = r
            .findings
            .iter()
            .find(|f| matches!(&f.what, Found::Verdict(v) if v.len() == 2))
            .expect("an order violation");
        let (_, file) = e
            .written
            .iter()
            .find(|(n, _)| *n == order.what.name())
            .unwrap();
        let file = file.as_ref().unwrap();
        let replay = Scenario::load(file).unwrap();
        assert!(!replay.timeline.is_empty());
        assert!(replay.timeline.len() <= 8, "shrunk: {}", replay.to_yaml());
        let rep = run(&replay, &RunOptions::policy(p)).unwrap();
        assert_eq!(Some(&rep.verdict), s.expected(p));
        assert!(rep.as_expected());
    }
    // One tree of schedules, whatever the policy decides at its flushes.
    assert!(
        counts.iter().all(|&c| c == counts[0] && c > 1000),
        "{counts:?}"
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn no_preemption_no_case_b() {
    let s = cow_programs();
    let r = exhaustive(&s, Policy::EndOnly, RULES, 0, 10_000, 2).unwrap();
    assert!(r.schedules > 50);
    assert!(r.verdict.is_empty(), "{:?}", r.verdict);
}

#[test]
fn the_result_is_the_same_with_one_or_two_workers() {
    let s = cow_programs();
    let one = exhaustive(&s, Policy::EndOnly, RULES, 0, 10_000, 1).unwrap();
    let two = exhaustive(&s, Policy::EndOnly, RULES, 0, 10_000, 2).unwrap();
    assert_eq!(one.schedules, two.schedules);
    assert_eq!(one.distinct, two.distinct);
    assert_eq!(one.infeasible, two.infeasible);
    assert_eq!(one.worst_window, two.worst_window);
    let moves = |r: &shootdown::explore::search::Searched| -> Vec<_> {
        r.findings.iter().map(|f| f.moves.clone()).collect()
    };
    assert_eq!(moves(&one), moves(&two));
}

#[test]
fn overlapping_accesses_add_schedules_and_keep_seed_clean() {
    let s = cow_programs();
    let plain = exhaustive(&s, Policy::Seed, RULES, 0, 10_000, 2).unwrap();
    let overlap = exhaustive(
        &s,
        Policy::Seed,
        Rules {
            overlap: true,
            requested: false,
            prune: false,
        },
        0,
        100_000,
        2,
    )
    .unwrap();
    assert!(overlap.schedules > plain.schedules);
    assert!(overlap.verdict.is_empty(), "{:?}", overlap.verdict);
}

#[test]
fn a_finding_shrinks_to_a_scenario_that_replays() {
    let s = cow_programs();
    let r = forked(&s, Policy::EndOnly, RULES, 1);
    let f = r.findings.first().expect("case B");
    let dir = std::env::temp_dir().join(format!("shootdown_shrink_{}", std::process::id()));
    let file = dir.join("found.yaml");
    let sh = shrink::shrink(&s, Policy::EndOnly, f, "found", "test", &file).unwrap();
    assert!(
        sh.steps_after < sh.steps_before,
        "{} -> {}",
        sh.steps_before,
        sh.steps_after
    );
    let back = Scenario::parse(&file, &sh.yaml).unwrap();
    let rep = run(&back, &RunOptions::policy(Policy::EndOnly)).unwrap();
    assert_eq!(Found::Verdict(rep.verdict), f.what);
}

/// The injected bug that needs several ATS invalidations outstanding at one
/// fence (`fence-one-itag`, with the batched driver) is caught by no bundled
/// timeline (tests/drivers.rs, tests/mutants.rs) but by explore: the protocol
/// assertion with assertions on, a use-after-free the checker sees with them
/// off, in a schedule that replays. The correct design is clean in every
/// schedule.
#[test]
fn explore_catches_the_bug_no_bundled_timeline_reaches() {
    let mut s = Scenario::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/programs/batch-fence.yaml"),
    )
    .unwrap();
    for p in [Policy::Always, Policy::Seed, Policy::Arch] {
        let r = forked(&s, p, RULES, 1);
        assert!(r.findings.is_empty(), "{p}: {:?}", r.findings[0].what);
    }
    s.inject = shootdown::rtl::inject_bits(&["fence-one-itag"]).unwrap();
    let r = forked(&s, Policy::Seed, RULES, 1);
    assert!(!r.findings.is_empty());
    assert!(r
        .findings
        .iter()
        .all(|f| f.what.name() == "assertion FenceAfterInvCpl_A"));
    s.params.assertions = false;
    let out = std::env::temp_dir().join(format!("shootdown_explore_bug_{}", std::process::id()));
    let e = explore_one(&s, Policy::Seed, RULES, 1, 10_000, 2, &engine(), &out, None);
    let r = e.searched.as_ref().unwrap();
    assert_eq!(
        r.verdict,
        [shootdown::checker::Violation::UseAfterFree].into()
    );
    let (_, file) = &e.written[0];
    let mut replay = Scenario::load(file.as_ref().unwrap()).unwrap();
    assert_eq!(replay.inject, s.inject, "the bug is in the scenario");
    assert!(!replay.params.assertions, "and the assertions are off");
    let opts = RunOptions::policy(Policy::Seed);
    let rep = run(&replay, &opts).unwrap();
    assert_eq!(rep.verdict, r.verdict);
    // With the assertions on, the same schedule stops on the protocol
    // assertion that names the broken invariant.
    replay.params.assertions = true;
    let err = run(&replay, &opts).expect_err("the assertion fires");
    assert!(err.to_string().contains("FenceAfterInvCpl_A"), "{err}");
    let _ = std::fs::remove_dir_all(&out);
}

/// The two engines, replaying every schedule from the start here or
/// sharing prefixes in forked worker processes, play the same schedules and
/// find the same things, including where a move is blocked on a lock held
/// by a preempted thread and where the model refuses a state.
#[test]
fn forked_workers_and_the_stateless_search_agree() {
    let cow = cow_programs();
    let mut batch = Scenario::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/programs/batch-fence.yaml"),
    )
    .unwrap();
    batch.inject = shootdown::rtl::inject_bits(&["fence-one-itag"]).unwrap();
    batch.params.assertions = false;
    for (s, p, rules, bound) in [
        (&cow, Policy::EndOnly, RULES, 0),
        (
            &cow,
            Policy::Seed,
            Rules {
                overlap: true,
                requested: false,
                prune: false,
            },
            0,
        ),
        (&batch, Policy::Seed, RULES, 2),
    ] {
        let a = exhaustive(s, p, rules, bound, 100_000, 2).unwrap();
        let b = forked(s, p, rules, bound);
        assert_eq!(
            (
                a.schedules,
                a.distinct,
                a.infeasible,
                a.unmodelled,
                a.worst_window
            ),
            (
                b.schedules,
                b.distinct,
                b.infeasible,
                b.unmodelled,
                b.worst_window
            ),
            "{} {p} bound {bound}",
            s.name
        );
        assert_eq!(a.verdict, b.verdict);
        assert_eq!(a.findings, b.findings);
        // The cover points summed over the schedules that ran: the same
        // counts whether each schedule replays its prefix or inherits it.
        assert_eq!(a.coverage.runs as usize, a.schedules);
        assert_eq!(a.coverage, b.coverage);
        let (present, hit) = a.coverage.bins_hit();
        assert!(present > 0 && hit > 0, "{present} {hit}");
    }
    // The batched munmap with every schedule: several ATS invalidations
    // outstanding before the fence, as no generic-driver schedule has.
    let a = exhaustive(&batch, Policy::Seed, RULES, 0, 100_000, 2).unwrap();
    assert!(a.coverage.hits("CmdAtsInvalOut2_C").unwrap_or(0) > 0);
}

/// With PRI the I/O page fault worker is a thread that can find a lock
/// held after it has run part of its handler (decided on a write fault,
/// walked to the PTE lock): the stateless search replays the schedule
/// after such a blocked move, the fork engine drops the process, and both
/// end in the same states, schedule for schedule. (The stateless search
/// once went on from the half-run handler: one end state more, and
/// schedules that did not replay.)
#[test]
fn the_engines_agree_where_the_worker_is_blocked_inside_its_handler() {
    let s =
        Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/pri-dontneed.yaml"))
            .unwrap();
    let a = exhaustive(&s, Policy::Always, RULES, 1, 100_000, 2).unwrap();
    let b = forked(&s, Policy::Always, RULES, 1);
    assert_eq!((a.schedules, a.infeasible), (b.schedules, b.infeasible));
    assert!(a.schedules > 3_000, "{}", a.schedules);
    assert_eq!(a.states, b.states);
    assert!(a.verdict.is_empty() && b.verdict.is_empty());
}

/// Shards split the space without overlap: the shards' results summed are
/// the whole space's, schedule for schedule, under either engine.
#[test]
fn shards_sum_to_the_whole_space() {
    use shootdown::explore::search::exhaustive_shard;
    use shootdown::explore::shard::sum;
    use shootdown::sweep::Shard;
    let s = cow_programs();
    let whole = exhaustive(&s, Policy::EndOnly, RULES, 1, 100_000, 2).unwrap();
    let n = 3;
    let parts: Vec<_> = (1..=n)
        .map(|k| {
            let shard = Some(Shard { k, n });
            if k % 2 == 0 {
                exhaustive_shard(&s, Policy::EndOnly, RULES, 1, 100_000, 1, shard).unwrap()
            } else {
                fork::exhaustive(
                    &s,
                    Policy::EndOnly,
                    RULES,
                    1,
                    100_000,
                    2,
                    Path::new(env!("CARGO_BIN_EXE_shootdown")),
                    shard,
                )
                .unwrap()
            }
        })
        .collect();
    // Every shard has a share (the cut deals the big subtrees round).
    let sizes: Vec<usize> = parts.iter().map(|p| p.schedules).collect();
    assert!(
        sizes.iter().all(|&c| c * n * 3 > whole.schedules),
        "{n} shards: {sizes:?} of {}",
        whole.schedules
    );
    let merged = sum(parts);
    assert_eq!(merged.schedules, whole.schedules, "{n} shards");
    assert_eq!(merged.infeasible, whole.infeasible);
    assert_eq!(merged.states, whole.states);
    assert_eq!(merged.distinct, whole.distinct);
    assert_eq!(merged.verdict, whole.verdict);
    assert_eq!(merged.worst_window, whole.worst_window);
    assert_eq!(merged.findings, whole.findings);
    assert_eq!(merged.coverage, whole.coverage);
}

/// The command line: the shards' JSON files merge into the unsharded
/// run's JSON, byte for byte, and its printout; an incomplete set of
/// shards, or a sweep's JSON, is refused with the reason.
#[test]
fn sharded_json_merges_into_the_unsharded_result() {
    use std::process::Command;
    let dir = std::env::temp_dir().join(format!("shootdown_explore_shard_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let batch = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/programs/batch-fence.yaml");
    let out = dir.join("found");
    let run = |extra: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_shootdown"))
            .arg("explore")
            .args(extra)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let path = |n: &str| dir.join(n).display().to_string();
    let batch = batch.display().to_string();
    let common = [
        batch.as_str(),
        "--notify",
        "seed,end-only",
        "--inject",
        "fence-one-itag",
        "--no-assert",
        "--bound",
        "2",
        "-j",
        "2",
        "--no-prune",
    ];
    let (code, whole, _) = run(&[&common[..], &["--json", &path("whole.json")]].concat());
    // The bug is found (exit 1: not what the scenario expects of the
    // correct design) and shrunk.
    assert_eq!(code, Some(1), "{whole}");
    assert!(whole.contains("use-after-free"), "{whole}");
    for k in 1..=3 {
        let (code, text, err) = run(&[
            &common[..],
            &[
                "--shard",
                &format!("{k}/3"),
                "--json",
                &path(&format!("s{k}.json")),
            ],
        ]
        .concat());
        assert_eq!(code, Some(0), "{text}{err}");
        assert!(
            text.contains(&format!("schedules of shard {k}/3")),
            "{text}"
        );
    }
    let (code, merged, err) = run(&[
        "--merge",
        &path("s1.json"),
        &path("s3.json"),
        &path("s2.json"),
        "--json",
        &path("merged.json"),
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(merged, whole);
    assert!(whole.contains("in all 66 schedules"), "{whole}");
    // Pruned (the default), the unsharded search cuts schedules its shards
    // do not (a cut's scope is one subtree, and shards cut the tree
    // deeper): the same verdicts and mismatches, fewer schedules played.
    let (code, pruned, _) = run(&common[..common.len() - 1]);
    assert_eq!(code, Some(1), "{pruned}");
    assert!(
        pruned.contains("cut where they reached a state already explored"),
        "{pruned}"
    );
    let mismatches = |t: &str| t.split("Mismatches").nth(1).unwrap_or_default().to_string();
    assert_eq!(mismatches(&pruned), mismatches(&whole));
    assert_eq!(
        std::fs::read(dir.join("merged.json")).unwrap(),
        std::fs::read(dir.join("whole.json")).unwrap()
    );
    let (code, _, err) = run(&["--merge", &path("s1.json"), &path("s3.json")]);
    assert_eq!(code, Some(2));
    assert!(err.contains("shard 2 of 3 not given"), "{err}");
    let (code, _, err) = run(&["--merge", &path("s1.json"), &path("s1.json")]);
    assert_eq!(code, Some(2));
    assert!(err.contains("give each shard once"), "{err}");
    // a pruned shard is not a shard of an unpruned exploration
    let p1 = path("p1.json");
    let pruned_shard = [
        &common[..common.len() - 1],
        &["--shard", "1/3", "--json", &p1],
    ]
    .concat();
    run(&pruned_shard);
    let (code, _, err) = run(&[
        "--merge",
        &path("p1.json"),
        &path("s2.json"),
        &path("s3.json"),
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("(pruned)"), "{err}");
    let sweep = Command::new(env!("CARGO_BIN_EXE_shootdown"))
        .args(["sweep", "cow", "--notify", "seed", "--json"])
        .arg(dir.join("sweep.json"))
        .output()
        .unwrap();
    assert!(sweep.status.success());
    let (code, _, err) = run(&["--merge", &path("sweep.json")]);
    assert_eq!(code, Some(2));
    assert!(err.contains("sweep --merge"), "{err}");
    let o = Command::new(env!("CARGO_BIN_EXE_shootdown"))
        .args(["sweep", "--merge"])
        .arg(dir.join("s1.json"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("explore --merge"));
    // Where device accesses may stop is part of the space: the shards carry
    // it, and the merge says it as the unsharded run does.
    let ov = [
        batch.as_str(),
        "--notify",
        "seed",
        "--overlap",
        "-j",
        "2",
        "--no-prune",
    ];
    let (_, whole, _) = run(&[&ov[..], &["--json", &path("ov.json")]].concat());
    assert!(
        whole.contains("preemption, device accesses also stopped at translated"),
        "{whole}"
    );
    for k in 1..=2 {
        let shard = format!("{k}/2");
        let json = path(&format!("ov{k}.json"));
        run(&[&ov[..], &["--shard", &shard, "--json", &json]].concat());
    }
    let (_, merged, err) = run(&[
        "--merge",
        &path("ov1.json"),
        &path("ov2.json"),
        "--json",
        &path("ov-merged.json"),
    ]);
    assert_eq!(merged, whole, "{err}");
    assert_eq!(
        std::fs::read(dir.join("ov-merged.json")).unwrap(),
        std::fs::read(dir.join("ov.json")).unwrap()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// PCT: random schedules that reach case B (a bug of depth 3: the device's
/// first read before cpu0's fault, cpu0 dropped between its PTE change and
/// the flush, the device above it) under end-only only; the runs are the
/// same whatever the workers and the shards.
#[test]
fn pct_finds_case_b_the_same_with_any_jobs_and_shards() {
    use shootdown::explore::pct;
    use shootdown::explore::shard::sum;
    use shootdown::sweep::Shard;
    let s = cow_programs();
    let (info, one) = pct::search(&s, Policy::EndOnly, RULES, 500, 3, 2, 1, None);
    assert_eq!((info.threads, info.runs, info.depth), (3, 500, 3));
    assert_eq!(one.schedules, 500);
    assert!(!one.findings.is_empty());
    assert!(one
        .verdict
        .contains(&shootdown::checker::Violation::StaleRead));
    let (_, two) = pct::search(&s, Policy::EndOnly, RULES, 500, 3, 2, 2, None);
    assert_eq!(one.findings, two.findings);
    assert_eq!(one.states, two.states);
    let parts = (1..=2)
        .map(|k| {
            let shard = Some(Shard { k, n: 2 });
            pct::search(&s, Policy::EndOnly, RULES, 500, 3, 2, 2, shard).1
        })
        .collect();
    let merged = sum(parts);
    assert_eq!(merged.findings, one.findings);
    assert_eq!(merged.states, one.states);
    assert_eq!(merged.coverage, one.coverage);
    // Another seed: other schedules.
    let (_, other) = pct::search(&s, Policy::EndOnly, RULES, 500, 3, 3, 2, None);
    assert_ne!(other.states, one.states);
    // The same runs under seed: the flush under the PTL, nothing found.
    let (_, seed) = pct::search(&s, Policy::Seed, RULES, 500, 3, 2, 2, None);
    assert!(seed.findings.is_empty() && seed.verdict.is_empty());
}

/// `scenario` on a scenario with programs and no timeline: a clear error
/// naming explore, and no waves of a run that never started.
#[test]
fn scenario_refuses_programs_only_and_names_explore() {
    let waves = std::env::temp_dir().join(format!("shootdown_progwaves_{}", std::process::id()));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_shootdown"))
        .arg("scenario")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/programs/cow.yaml"))
        .arg("--waves-dir")
        .arg(&waves)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("programs/cow.yaml: this scenario gives programs and no timeline"));
    assert!(err.contains("shootdown explore"), "{err}");
    let files = std::fs::read_dir(&waves).map_or(0, |d| d.count());
    assert_eq!(files, 0, "no waves written");
    let _ = std::fs::remove_dir_all(&waves);
}

/// `--param`: a cell per point of the runtime parameters, named after its
/// values, explored at them (the merge loads them again).
#[test]
fn explore_at_every_parameter_point() {
    use std::process::Command;
    let dir = std::env::temp_dir().join(format!("shootdown_explore_param_{}", std::process::id()));
    let batch = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/programs/batch-fence.yaml");
    let run = |extra: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_shootdown"))
            .arg("explore")
            .arg(&batch)
            .args([
                "--notify",
                "seed",
                "--bound",
                "0",
                "--param",
                "ats_latency=1,400",
            ])
            .args(["--out"])
            .arg(dir.join("found"))
            .args(extra)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let text = run(&[]);
    for name in ["batch-fence-atslatency1 ", "batch-fence-atslatency400 "] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(name) && l.contains("seed")),
            "{name}: {text}"
        );
    }
    // The points differ: a latency the explorer sets, not the scenario's
    // file's, in the worker processes too (the same as the stateless
    // search, which runs it in this process).
    let window = |name: &str| -> String {
        text.lines()
            .find(|l| l.starts_with(name) && l.contains("clean"))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or_default()
            .to_string()
    };
    assert_ne!(
        window("batch-fence-atslatency1 "),
        window("batch-fence-atslatency400 "),
        "{text}"
    );
    assert_eq!(run(&["--stateless"]), text);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Range invalidations with the device caching pages at the start, the
/// middle and the end of the range: every schedule of ranges.yaml (no
/// preemption) together hits the range bins the bundled sweep leaves as
/// holes, and is clean.
#[test]
fn explore_reaches_the_range_bins() {
    let s = Scenario::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/programs/ranges.yaml"),
    )
    .unwrap();
    let r = forked(&s, Policy::Seed, RULES, 0);
    assert!(r.schedules > 10 && r.verdict.is_empty(), "{:?}", r.verdict);
    assert_eq!(r.coverage.runs as usize, r.schedules);
    assert!(r.coverage.hits("AtcInvMediumStart_C").unwrap_or(0) > 0);
    for bin in [
        "IotlbInvMediumStart_C",
        "IotlbInvMediumMiddle_C",
        "IotlbInvMediumEnd_C",
        "IotlbInvSmallStart_C",
        "AtcInvMediumStart_C",
        "AtcInvMediumMiddle_C",
        "AtcInvMediumEnd_C",
        "AtcInvSmallStart_C",
    ] {
        // A bin the RTL in the socket lacks (fa-iotlb has no IOTLB cover
        // points) is not a hole; every one it has must be hit.
        if let Some(n) = r.coverage.hits(bin) {
            assert!(n > 0, "{bin}");
        }
    }
}

/// Page-table walks raced by the kernel: with device accesses stopped at
/// `requested`, CPU paths run while the IOMMU walks, and every schedule of
/// walk-race.yaml within one preemption together lands an IOTINVAL.VMA in
/// the walker's read and its A/D compare-and-swap, and a CPU store between
/// the two (the CAS finds another value). Stopping only at `translated`
/// (after the walk) reaches none of the three. Clean.
#[test]
fn explore_with_requested_reaches_the_walk_race_bins() {
    let s = Scenario::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/programs/walk-race.yaml"),
    )
    .unwrap();
    let bins = ["WalkReadInval_C", "WalkCasInval_C", "WalkCasLost_C"];
    let requested = Rules {
        overlap: false,
        requested: true,
        prune: false,
    };
    let r = forked(&s, Policy::Seed, requested, 1);
    assert!(
        r.schedules > 1000 && r.verdict.is_empty(),
        "{:?}",
        r.verdict
    );
    for bin in bins {
        assert!(r.coverage.hits(bin).unwrap_or(0) > 0, "{bin}");
    }
    let overlap = Rules {
        overlap: true,
        requested: false,
        prune: false,
    };
    let r = forked(&s, Policy::Seed, overlap, 1);
    assert!(r.verdict.is_empty(), "{:?}", r.verdict);
    for bin in bins {
        assert_eq!(r.coverage.hits(bin).unwrap_or(0), 0, "{bin}");
    }
}

/// The queue and timeout bins, at points of the RTL's runtime sizes and
/// timeout: every schedule of batch-fence.yaml with overlapping accesses,
/// with a 4-entry ring and one ITag, wraps the ring, fills it and makes an
/// ATS.INVAL wait for an ITag; with a timeout shorter than the ATS round
/// trip, an invalidation times out, holds the fence, is cleared by the
/// driver and its completion comes late.
#[test]
fn explore_at_param_points_reaches_the_queue_and_timeout_bins() {
    let s = Scenario::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/programs/batch-fence.yaml"),
    )
    .unwrap();
    let overlap = Rules {
        overlap: true,
        requested: false,
        prune: false,
    };
    let small =
        shootdown::explore::at_point(&s, &[("cq_entries".into(), 4), ("ats_itags".into(), 1)]);
    let r = forked(&small, Policy::Seed, overlap, 1);
    assert!(r.verdict.is_empty(), "{:?}", r.verdict);
    for bin in ["CqWrap_C", "CqFull_C", "ItagsExhausted_C"] {
        assert!(r.coverage.hits(bin).unwrap_or(0) > 0, "{bin}");
    }
    let r = forked(&s, Policy::Seed, overlap, 1);
    for bin in ["CqWrap_C", "CqFull_C", "ItagsExhausted_C", "CmdToSet_C"] {
        assert_eq!(
            r.coverage.hits(bin).unwrap_or(0),
            0,
            "{bin} without the point"
        );
    }
    let short = shootdown::explore::at_point(&s, &[("ats_timeout".into(), 300)]);
    let r = forked(&short, Policy::Seed, overlap, 1);
    for bin in [
        "CmdToSet_C",
        "FenceHeldCmdTo_C",
        "CmdToCleared_C",
        "LateCpl_C",
    ] {
        assert!(r.coverage.hits(bin).unwrap_or(0) > 0, "{bin}");
    }
}

/// Cutting a schedule where it reaches a state already explored keeps
/// every verdict, every kind of finding, the worst stale window and every
/// cover bin hit, and plays
/// fewer schedules: on cow's program under end-only (case B) and seed, on
/// batch-fence with the injected fence bug (bound 2) and on walk-race with
/// `requested` stops. The same with one worker or two.
#[test]
fn pruning_keeps_the_verdicts_findings_and_bins_and_plays_fewer() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/programs");
    let cow = cow_programs();
    let mut batch = Scenario::load(&dir.join("batch-fence.yaml")).unwrap();
    batch.inject = shootdown::rtl::inject_bits(&["fence-one-itag"]).unwrap();
    batch.params.assertions = false;
    let walk = Scenario::load(&dir.join("walk-race.yaml")).unwrap();
    let requested = Rules {
        requested: true,
        ..RULES
    };
    let kinds =
        |r: &Searched| -> BTreeSet<String> { r.findings.iter().map(|f| f.what.name()).collect() };
    let holes = |r: &Searched| -> Vec<&'static str> {
        r.coverage.holes().iter().map(|b| b.label).collect()
    };
    for (s, p, rules, bound) in [
        (&cow, Policy::EndOnly, RULES, 1),
        (&cow, Policy::Seed, RULES, 1),
        (&batch, Policy::Seed, RULES, 2),
        (&walk, Policy::Seed, requested, 1),
    ] {
        let all = forked(s, p, rules, bound);
        let pruned = Rules {
            prune: true,
            ..rules
        };
        let cut = forked(s, p, pruned, bound);
        let what = format!("{} {p} bound {bound}", s.name);
        assert!(
            cut.pruned > 0 && cut.schedules < all.schedules,
            "{what}: {} played, {} cut, of {}",
            cut.schedules,
            cut.pruned,
            all.schedules
        );
        if s.name == cow.name {
            assert!(cut.schedules * 3 < all.schedules, "{what}");
        }
        assert_eq!(cut.verdict, all.verdict, "{what}");
        assert_eq!(cut.worst_window, all.worst_window, "{what}");
        assert_eq!(kinds(&cut), kinds(&all), "{what}");
        assert_eq!(holes(&cut), holes(&all), "{what}: the holes");
        // a cut schedule's counts are summed, but it is not a run
        assert_eq!(cut.coverage.runs as usize, cut.schedules, "{what}");
        assert_eq!(cut.unmodelled > 0, all.unmodelled > 0, "{what}");
        if p != Policy::EndOnly {
            continue;
        }
        let one = fork::exhaustive(
            s,
            p,
            pruned,
            bound,
            100_000,
            1,
            Path::new(env!("CARGO_BIN_EXE_shootdown")),
            None,
        )
        .unwrap();
        assert_eq!(
            (one.schedules, one.pruned, one.distinct, one.worst_window),
            (cut.schedules, cut.pruned, cut.distinct, cut.worst_window),
            "{what}: one worker"
        );
        assert_eq!(one.findings, cut.findings, "{what}: one worker");
        assert_eq!(one.coverage, cut.coverage, "{what}: one worker");
    }
}
