//! Functional coverage of whole runs (docs/socket.md, "Coverage"): the
//! bundled sweep's summed coverage and its holes as of today, the same
//! counts for the same run (with the assertions on or off: two model
//! evaluations per cycle or one), and `scenario --coverage` / `sweep
//! --coverage` through the CLI, byte-identical whatever --jobs is, carried
//! by the JSON through --merge.

use shootdown::coverage::{Coverage, BINS};
use shootdown::mm::Policy;
use shootdown::scenario::Scenario;
use shootdown::sim::{run, RunOptions};
use shootdown::sweep::{expand, run_cells, SweepOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scenario(name: &str) -> Scenario {
    Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("scenarios/{name}.yaml")))
        .unwrap()
}

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shootdown"))
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Is the bin's module replaced by this build's RTL overlay?
fn replaced(label: &str) -> bool {
    let file = BINS.iter().find(|b| b.label == label).unwrap().file;
    shootdown_model_sys::RTL_OVERLAY_FILES
        .split_whitespace()
        .any(|f| f == file)
}

/// The bundled sweep (every scenario, every policy), summed.
fn bundled() -> Coverage {
    let files = expand(&[]).unwrap();
    let cells = run_cells(
        &files,
        &Policy::ALL,
        &SweepOptions {
            coverage: true,
            ..SweepOptions::default()
        },
    );
    assert!(cells.iter().all(|c| c.result.is_ok()));
    Coverage::sum(
        cells
            .iter()
            .map(|c| c.result.as_ref().unwrap().coverage.as_ref().unwrap()),
    )
}

/// What the bundled scenarios and drivers reach today, and what they leave
/// to exploration. When a scenario or a driver reaches one of these holes
/// (a batching driver: several ATS invalidations before one fence), move
/// it to the hits.
#[test]
fn the_bundled_sweep_hits_these_bins_and_leaves_these_holes() {
    let c = bundled();
    assert_eq!(c.runs, 220);
    let holes = [
        // one ATS.INVAL per fence: never 2 or more outstanding
        "CmdIofenceOut2_C",
        "CmdIofenceOut3_C",
        "CmdAtsInvalOut1_C",
        "CmdAtsInvalOut2_C",
        // ranges: the drivers name one page, a whole PASID or everything
        "IotlbInvSmallStart_C",
        // no CPU write lands inside a walk
        "WalkReadInval_C",
        "WalkCasInval_C",
        "WalkFillInval_C",
        "WalkSendInval_C",
        "WalkCasLost_C",
        // ITags to spare, and a ring never full
        "CqFull_C",
        "ItagsExhausted_C",
        // the device only reads while a Translation Request races
        "CplOvertakenWrite_C",
        "InvAheadOfCpl_C",
        // PRI: the kernel answers every Page Request, and fixes each fault
        // (a full queue and a device that gives up need a bug or a flood)
        "PqFullRsp_C",
        "PriGaveUp_C",
    ];
    let hits = [
        // intel-unaligned: Intel's IOTLB part is fenced before its ATS.INVAL
        "CmdIofenceOut0_C",
        "CmdIotinvalOut0_C",
        // intel-unaligned: an 8-page device-TLB block with cached pages
        // inside it
        "AtcInvSmallMiddle_C",
        "CmdAtsInvalOut0_C",
        "CmdIofenceOut1_C",
        "FenceDoneOut0_C",
        // intel-full-flush: the 64-page block of 40 pages, pages 0 and 39
        // cached
        "IotlbInvMediumMiddle_C",
        "AtcInvMediumStart_C",
        // intel-fork: Intel's 2 MiB IOTLB descriptor of a cached 2 MiB entry
        "IotlbInvLargeEnd_C",
        // timeout-race: fences completed while the device held requests
        "FenceDoneOut1_C",
        "FenceDoneOut2_C",
        "IotlbInvPageHeld_C",
        "IotlbInvPasidHeld_C",
        "AtcInvPageHeld_C",
        // the whole address space (AtcAll) with pages cached
        "AtcInvLargeStart_C",
        "AtcInvLargeMiddle_C",
        "AtcInvLargeEnd_C",
        // tr-race
        "InvPassesCpl_C",
        "CplOvertakenRead_C",
        // thp-split-munmap: the munmap of 511 pages, 64 flushes, wraps the
        // command ring
        "CqWrap_C",
        // drain-race
        "InvDrainsAccess_C",
        "CmdToSet_C",
        "FenceHeldCmdTo_C",
        "CmdToCleared_C",
        "LateCpl_C",
        // pri-cow, pri-reuse: Page Requests queued and answered Success;
        // pri-munmap: Invalid Request
        "PqWrite_C",
        "PrgRspSuccess_C",
        "PrgRspFail_C",
        // hugetlb-1g-munmap: the munmap's flush names the cached 1 GiB
        // entry in the IOTLB and the ATC
        "IotlbInv1gHeld_C",
        "AtcInv1gHeld_C",
    ];
    for l in holes {
        let expected = (!replaced(l)).then_some(0);
        assert_eq!(c.hits(l), expected, "{l} is a hole");
    }
    for l in hits {
        if !replaced(l) {
            assert!(c.hits(l) > Some(0), "{l} is hit: {:?}", c.hits(l));
        }
    }
    let text = c.render();
    assert!(
        text.contains("holes (")
            && text.contains(
                "  cmd_issue: IOTINVAL.VMA x 1, 2, 3+; ATS.INVAL x 1, 2, 3+; IOFENCE.C x 2, 3+\n"
            )
            && text.contains(
                "  walk_race: IOTINVAL.VMA of the page x read, CAS, fill, send; A/D CAS found another value x CAS\n"
            )
            && text.contains(
                "  queue: ring full; ATS.INVAL waits for an ITag (all busy)\n"
            ),
        "{text}"
    );
}

#[test]
fn the_same_run_counts_the_same_with_or_without_assertions() {
    for name in ["cow", "timeout-race", "tr-race"] {
        let mut s = scenario(name);
        for p in [Policy::Always, Policy::EndOnly] {
            let opts = RunOptions::policy(p);
            let a = run(&s, &opts).unwrap().coverage;
            let b = run(&s, &opts).unwrap().coverage;
            assert_eq!(a, b, "{name} {p}");
            assert!(a.bins_hit().1 > 0, "{name} {p}");
            s.params.assertions = false;
            let one_eval = run(&s, &opts).unwrap().coverage;
            s.params.assertions = true;
            assert_eq!(a, one_eval, "{name} {p}: assertions off");
        }
    }
}

#[test]
fn scenario_coverage_prints_each_run_and_the_sum() {
    let one = cli(&[
        "scenario",
        "cow",
        "--no-waves",
        "--notify",
        "seed",
        "--coverage",
    ]);
    assert!(one.status.success(), "{}", text(&one.stderr));
    let out = text(&one.stdout);
    assert!(
        out.contains("cow --notify seed: coverage (1 run): 6 of 70 bins hit, 64 holes\n")
            || !shootdown_model_sys::RTL_OVERLAY_FILES.is_empty(),
        "{out}"
    );
    assert!(out.contains("\ncmd_issue: a command starts x ATS invalidations outstanding (ITags busy) [cmdq.sv]\n"), "{out}");
    assert!(out.contains("\nholes ("), "{out}");
    let all = cli(&["scenario", "cow", "--no-waves", "-q", "--coverage"]);
    let out = text(&all.stdout);
    for p in Policy::ALL {
        assert!(
            out.contains(&format!("cow --notify {p}: coverage: ")),
            "{out}"
        );
    }
    assert!(out.contains("cow, summed: coverage (4 runs): "), "{out}");
    assert_eq!(
        all.stdout,
        cli(&["scenario", "cow", "--no-waves", "-q", "--coverage"]).stdout
    );
}

/// A fresh directory for one test.
fn tmp(test: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("coverage-{test}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn sweep_coverage_is_the_same_whatever_the_jobs_and_through_merge() {
    let d = tmp("sweep");
    let args = ["sweep", "cow", "tr-race", "timeout-race", "--coverage"];
    let one = cli(&[&args[..], &["--jobs", "1"]].concat());
    let two = cli(&[&args[..], &["--jobs", "2"]].concat());
    assert!(one.status.success(), "{}", text(&one.stderr));
    assert_eq!(one.stdout, two.stdout);
    let out = text(&one.stdout);
    assert!(out.contains("\nbins hit (of "), "{out}");
    assert!(out.contains("\nsummed coverage (12 runs): "), "{out}");
    let summed = &out[out.find("\nsummed coverage").unwrap()..];

    // the shards' JSON carries each cell's counts; --merge sums them again
    let mut files = Vec::new();
    for k in 1..=2 {
        let f = d.join(format!("s{k}.json"));
        let shard = format!("{k}/2");
        let o = cli(&[
            &args[..],
            &["--shard", &shard, "--json", f.to_str().unwrap()],
        ]
        .concat());
        assert!(o.status.success(), "{}", text(&o.stderr));
        let json = std::fs::read_to_string(&f).unwrap();
        assert!(json.contains("\"coverage\": {"), "{json}");
        assert!(json.contains("\"CmdIofenceOut1_C\": "), "{json}");
        files.push(f.to_str().unwrap().to_string());
    }
    let merged = cli(&["sweep", "--coverage", "--merge", &files[0], &files[1]]);
    assert!(merged.status.success(), "{}", text(&merged.stderr));
    let m = text(&merged.stdout);
    assert!(m.ends_with(summed), "{m}");

    // a design-space sweep sums its points' cells
    let space = cli(&[
        "sweep",
        "cow",
        "--param",
        "ats_latency=50,400",
        "--coverage",
    ]);
    assert!(
        text(&space.stdout).contains("\n\nsummed coverage (8 runs): "),
        "{}",
        text(&space.stdout)
    );

    // without --coverage: no counts in the JSON, and none to print
    let f = d.join("plain.json");
    cli(&["sweep", "cow", "--json", f.to_str().unwrap()]);
    let json = std::fs::read_to_string(&f).unwrap();
    assert!(!json.contains("coverage"), "{json}");
    let o = cli(&["sweep", "--coverage", "--merge", f.to_str().unwrap()]);
    assert!(
        text(&o.stdout).contains(
            "coverage: no cell carries coverage counts (run the sweep with --coverage)\n"
        ),
        "{}",
        text(&o.stdout)
    );
}

/// docs/socket.md's table of the cover groups names every group of the
/// model with its number of bins.
#[test]
fn the_socket_doc_lists_every_group_with_its_bins() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/socket.md"))
        .unwrap();
    let section = &doc[doc.find("\n## Coverage\n").unwrap()..];
    let section = &section[..section[1..].find("\n## ").unwrap()];
    let rows: Vec<Vec<&str>> = section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| l.split('|').map(str::trim).collect())
        .collect();
    assert_eq!(rows.len(), shootdown::coverage::GROUPS.len());
    for (g, (group, row)) in shootdown::coverage::GROUPS.iter().zip(&rows).enumerate() {
        assert_eq!(row[1], format!("`{}`", group.name));
        let bins = BINS.iter().filter(|b| b.group == g).count();
        assert_eq!(row[3], bins.to_string(), "{}", group.name);
    }
    assert!(section.contains(&format!("carries\n{} cover points", BINS.len())));
}
