//! `shootdown sweep`: every (scenario, policy) cell, in parallel, as one
//! table; the same output whatever --jobs is; shards that merge back into
//! the whole sweep; bad scenarios as ERR cells; the JSON read back.

use shootdown::checker::Violation;
use shootdown::mm::Policy;
use shootdown::sweep::{
    self, expand, from_json, render_table, run_cells, to_json, totals, Cell, Shard, Status,
    SweepOptions,
};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cow_src() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/cow.yaml"))
        .unwrap()
}

/// A fresh directory for one test.
fn tmp(test: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sweep-{test}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Write `scenarios/cow.yaml` as `<dir>/<name>.yaml`, named `name`, with `edit` applied.
fn cow_copy(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let src = cow_src().replacen("name: cow\n", &format!("name: {name}\n"), 1);
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(&p, edit(src)).unwrap();
    p
}

fn sweep_bin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shootdown"))
        .arg("sweep")
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn opts(jobs: usize) -> SweepOptions {
    SweepOptions {
        jobs,
        ..SweepOptions::default()
    }
}

/// The line of `table` whose first word is `first`, split in words.
fn row<'a>(table: &'a str, first: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.first() == Some(&first))
        .unwrap_or_else(|| panic!("no row '{first}' in\n{table}"))
}

/// The numbers of a cost row (the words after its label).
fn cost_row(table: &str, label: &str) -> Vec<u64> {
    let line = table
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no cost row '{label}' in\n{table}"));
    line[line.find(label).unwrap() + label.len()..]
        .split_whitespace()
        .map(|w| w.parse().unwrap())
        .collect()
}

/// Check the seed's expect table of cow in `table`, a sweep of all four policies.
fn check_cow_table(table: &str, name: &str) {
    assert_eq!(
        row(table, "scenario"),
        ["scenario", "always", "seed", "arch", "end-only"]
    );
    let r = row(table, name);
    // name, then (verdict, window) per policy
    assert_eq!(r.len(), 9, "{table}");
    assert_eq!([r[1], r[3], r[5]], ["clean"; 3], "{table}");
    assert_eq!(r[7], "order-violation+stale-read", "{table}");
    for w in [r[2], r[4], r[6], r[8]] {
        let n: u64 = w.parse().unwrap_or_else(|_| panic!("'{w}' in\n{table}"));
        assert!(n > 0, "{table}");
    }
    let flushes = cost_row(table, "secondary-TLB flushes");
    assert!(
        flushes[0] > flushes[1],
        "always flushes more than seed:\n{table}"
    );
    assert!(table.contains("always pays over seed: 2.00x"), "{table}");
    assert!(
        table.ends_with("\n4 cells, 4 as expected, 0 mismatches, 0 errors\n"),
        "{table}"
    );
}

#[test]
fn cow_under_all_four_policies_gives_the_expect_table() {
    let d = tmp("cow");
    let f = cow_copy(&d, "cow", |s| s);
    let cells = run_cells(std::slice::from_ref(&f), &Policy::ALL, &opts(2));
    assert_eq!(
        cells.iter().map(|c| c.policy).collect::<Vec<_>>(),
        Policy::ALL
    );
    for (i, c) in cells.iter().enumerate() {
        assert_eq!(c.index, i);
        assert_eq!(c.scenario, "cow");
        assert_eq!(c.file, f.display().to_string());
        assert_eq!(c.status(), Status::AsExpected, "{c:?}");
        assert_eq!(c.wall_ms, None, "no wall time without --timing");
        let o = c.result.as_ref().unwrap();
        let want: BTreeSet<Violation> = if c.policy == Policy::EndOnly {
            [Violation::OrderViolation, Violation::StaleRead].into()
        } else {
            BTreeSet::new()
        };
        assert_eq!(o.verdict, want, "{:?}", c.policy);
        assert_eq!(c.expected.as_ref(), Some(&want));
        assert!(o.worst_window > 0, "{:?}", c.policy);
        assert!(o.cycles > o.worst_window);
        assert_eq!(o.commands, o.iotinval + o.ats_inval + o.fences);
    }
    let t = totals(&cells);
    assert_eq!(t[0].0, Policy::Always);
    assert_eq!(t[1].0, Policy::Seed);
    assert!(t[0].1.flushes > t[1].1.flushes);
    assert!(t[0].1.spin_cycles > t[1].1.spin_cycles);
    assert_eq!(sweep::exit_status(&cells), 0);
    check_cow_table(&render_table(&cells, false), "cow");
}

#[test]
fn cow_through_the_binary() {
    let d = tmp("bin");
    let f = cow_copy(&d, "cow", |s| s);
    let out = sweep_bin(&[f.to_str().unwrap()]);
    let table = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{table}{}", text(&out.stderr));
    check_cow_table(&table, "cow");
    // stderr is not a terminal here: no progress bar.
    assert_eq!(text(&out.stderr), "");

    // --notify restricts the columns, by name, in the usual order.
    let out = sweep_bin(&[f.to_str().unwrap(), "--notify", "end-only,seed"]);
    let table = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{table}");
    assert_eq!(row(&table, "scenario"), ["scenario", "seed", "end-only"]);
    assert!(!table.contains("always pays"), "{table}");
    assert!(table.contains("\n2 cells, 2 as expected"), "{table}");
}

#[test]
fn jobs_1_and_2_give_identical_output() {
    let d = tmp("jobs");
    let files: Vec<PathBuf> = ["c", "a", "b"]
        .iter()
        .map(|n| cow_copy(&d, n, |s| s))
        .collect();
    let sorted = expand(&[format!("{}/*", d.display())]).unwrap();
    assert_eq!(
        sorted,
        [files[1].clone(), files[2].clone(), files[0].clone()]
    );

    let one = run_cells(&sorted, &Policy::ALL, &opts(1));
    let two = run_cells(&sorted, &Policy::ALL, &opts(2));
    assert_eq!(one.len(), 12);
    assert_eq!(one, two);
    assert_eq!(render_table(&one, false), render_table(&two, false));

    let pat = format!("{}/*.yaml", d.display());
    let (j1, j2) = (d.join("j1.json"), d.join("j2.json"));
    let o1 = sweep_bin(&[&pat, "--jobs", "1", "--json", j1.to_str().unwrap()]);
    let o2 = sweep_bin(&[&pat, "--jobs", "2", "--json", j2.to_str().unwrap()]);
    assert_eq!(o1.status.code(), Some(0), "{}", text(&o1.stderr));
    assert_eq!(o1.stdout, o2.stdout);
    assert_eq!(std::fs::read(&j1).unwrap(), std::fs::read(&j2).unwrap());
    let t = text(&o1.stdout);
    let rows: Vec<&str> = t.lines().skip(1).take(3).collect();
    assert!(rows[0].starts_with("a ") && rows[1].starts_with("b ") && rows[2].starts_with("c "));
    assert!(t.contains("\n12 cells, 12 as expected, 0 mismatches, 0 errors\n"));
}

fn json_value(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn shards_merged_equal_the_unsharded_sweep() {
    let d = tmp("shard");
    for n in ["x", "y", "z"] {
        cow_copy(&d, n, |s| s);
    }
    let pat = format!("{}/*.yaml", d.display());
    let j = |n: &str| d.join(n).to_str().unwrap().to_string();
    let full = sweep_bin(&[&pat, "--json", &j("full.json")]);
    let s1 = sweep_bin(&[&pat, "--shard", "1/2", "--json", &j("s1.json")]);
    let s2 = sweep_bin(&[&pat, "--shard", "2/2", "--json", &j("s2.json")]);
    for o in [&full, &s1, &s2] {
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    }
    // Each shard covers its own cells only.
    assert!(text(&s1.stdout).contains("\n6 cells, 6 as expected"));
    let v1 = json_value(&d.join("s1.json"));
    assert_eq!(v1["shard"], serde_json::json!({"k": 1, "n": 2}));
    let idx: Vec<u64> = v1["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["index"].as_u64().unwrap())
        .collect();
    assert_eq!(idx, [0, 2, 4, 6, 8, 10]);
    assert_eq!(
        json_value(&d.join("s2.json"))["cells"][0]["index"],
        serde_json::json!(1)
    );

    // Merged (in either order) == unsharded, table and JSON cells.
    let merged = sweep_bin(&[
        "--merge",
        &j("s2.json"),
        &j("s1.json"),
        "--json",
        &j("m.json"),
    ]);
    assert_eq!(merged.status.code(), Some(0), "{}", text(&merged.stderr));
    assert_eq!(text(&merged.stdout), text(&full.stdout));
    let (vf, vm) = (
        json_value(&d.join("full.json")),
        json_value(&d.join("m.json")),
    );
    assert_eq!(vm["cells"], vf["cells"]);
    assert_eq!(vm["cells"].as_array().unwrap().len(), 12);
    assert_eq!(vm["shard"], serde_json::Value::Null);
    assert_eq!(vf["shard"], serde_json::Value::Null);
    assert_eq!(vm["version"], serde_json::json!(1));

    // A shard given twice overlaps; a missing shard is an error that names
    // it (a table of half the cells must not pass for the whole sweep).
    let twice = sweep_bin(&["--merge", &j("s1.json"), &j("s1.json")]);
    assert_eq!(twice.status.code(), Some(2));
    let e = text(&twice.stderr);
    assert!(e.contains("s1.json") && e.contains("is also in"), "{e}");
    let half = sweep_bin(&["--merge", &j("s1.json")]);
    assert_eq!(half.status.code(), Some(2));
    assert!(text(&half.stderr).contains("shard 2/2 of 2 not given"));
    assert!(half.stdout.is_empty(), "no table for an incomplete set");
    // Shards of different sweeps (different N) do not merge.
    let s3 = sweep_bin(&[&pat, "--shard", "2/3", "--json", &j("s3.json")]);
    assert_eq!(s3.status.code(), Some(0));
    let mixed = sweep_bin(&["--merge", &j("s1.json"), &j("s3.json")]);
    assert_eq!(mixed.status.code(), Some(2));
    assert!(text(&mixed.stderr).contains("merge the shards of one sweep"));
}

#[test]
fn a_broken_scenario_gives_err_cells_and_status_2() {
    let d = tmp("broken");
    cow_copy(&d, "a", |s| s);
    let bad_line = "  - { cpu2: write addrA 0xa2 }";
    let broken = cow_copy(&d, "broken", |s| {
        s.replace(bad_line, "  - { cpu2: write addrA 0xa2 until nowhere }")
    });
    let line = 1 + cow_src()
        .lines()
        .position(|l| l.starts_with(bad_line))
        .unwrap();
    // Loads, but fails when run: cpu0 has nothing to resume.
    let stuck = cow_copy(&d, "stuck", |s| {
        s.replace("{ cpu0: write addrA 0xa1 until start,", "{ cpu0: resume,")
    });
    cow_copy(&d, "z", |s| s);

    let out = sweep_bin(&[
        &format!("{}/*", d.display()),
        "--json",
        d.join("o.json").to_str().unwrap(),
    ]);
    let t = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert_eq!(row(&t, "broken"), ["broken", "ERR", "ERR", "ERR", "ERR"]);
    assert_eq!(row(&t, "stuck"), ["stuck", "ERR", "ERR", "ERR", "ERR"]);
    assert_eq!(row(&t, "a")[7], "order-violation+stale-read", "{t}");
    assert_eq!(row(&t, "z")[7], "order-violation+stale-read", "{t}");
    let load_err = format!("{}:{line}: ", broken.display());
    assert!(t.contains(&load_err), "the error names {load_err}:\n{t}");
    assert!(t.contains("unknown checkpoint 'nowhere'"), "{t}");
    // One error line per scenario and message, naming the policies.
    assert_eq!(t.matches(&load_err).count(), 1, "{t}");
    assert!(t.contains("--notify always,seed,arch,end-only: "), "{t}");
    assert!(t.contains(&format!("{}:", stuck.display())), "{t}");
    assert!(t.contains("nothing to resume"), "{t}");
    assert!(
        t.contains("\n16 cells, 8 as expected, 0 mismatches, 8 errors\n"),
        "{t}"
    );

    let v = json_value(&d.join("o.json"));
    let c = &v["cells"][4]; // broken --notify always
    assert_eq!(c["scenario"], "broken");
    assert!(c["error"].as_str().unwrap().starts_with(&load_err));
    assert_eq!(c["verdict"], serde_json::Value::Null);
    assert_eq!(c["as_expected"], false);
    assert_eq!(v["cells"][0]["error"], serde_json::Value::Null);
}

#[test]
fn a_mismatch_is_marked_and_exits_1() {
    let d = tmp("mismatch");
    let f = cow_copy(&d, "cow", |s| {
        s.replace("  seed: clean", "  seed: [stale-read]")
    });
    let out = sweep_bin(&[f.to_str().unwrap()]);
    let t = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{t}");
    let r = row(&t, "cow");
    assert_eq!(r[3], "clean");
    assert!(r[4].ends_with('!') && !r[2].ends_with('!'), "{t}");
    assert!(
        t.contains("cow --notify seed: clean, expected stale-read"),
        "{t}"
    );
    assert!(
        t.contains("\n4 cells, 3 as expected, 1 mismatches, 0 errors\n"),
        "{t}"
    );
}

#[test]
fn json_round_trip() {
    let d = tmp("json");
    let f = cow_copy(&d, "cow", |s| s);
    let cells = run_cells(std::slice::from_ref(&f), &Policy::ALL, &opts(2));
    let shard = Some(Shard { k: 1, n: 1 });
    let written = to_json(&cells, shard);
    let back = from_json(Path::new("w.json"), &written).unwrap();
    assert_eq!(back.version, 1);
    assert_eq!(back.shard, shard);
    assert_eq!(back.cells, cells);

    let v: serde_json::Value = serde_json::from_str(&written).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(keys.len(), 3);
    let end_only = &v["cells"][3];
    assert_eq!(end_only["policy"], "end-only");
    assert_eq!(end_only["index"], 3);
    assert_eq!(end_only["scenario"], "cow");
    assert_eq!(end_only["file"], f.to_str().unwrap());
    assert_eq!(
        end_only["verdict"],
        serde_json::json!(["order-violation", "stale-read"])
    );
    assert_eq!(end_only["expected"], end_only["verdict"]);
    assert_eq!(end_only["as_expected"], true);
    let o = cells[3].result.as_ref().unwrap();
    for (k, n) in [
        ("worst_window", o.worst_window),
        ("flushes", o.flushes),
        ("commands", o.commands),
        ("iotinval", o.iotinval),
        ("ats_inval", o.ats_inval),
        ("fences", o.fences),
        ("spin_cycles", o.spin_cycles),
        ("cycles", o.cycles),
    ] {
        assert_eq!(end_only[k], n, "{k}");
    }
    assert!(end_only.get("wall_ms").is_none());

    // --timing keeps wall times, in the JSON and the table.
    let timed: Vec<Cell> = run_cells(
        std::slice::from_ref(&f),
        &[Policy::Seed],
        &SweepOptions {
            jobs: 1,
            timing: true,
            ..SweepOptions::default()
        },
    );
    assert!(timed[0].wall_ms.unwrap() > 0.0);
    let back = from_json(Path::new("t.json"), &to_json(&timed, None)).unwrap();
    assert_eq!(back.cells, timed);
    assert!(render_table(&timed, true).contains("wall ms"));
    assert!(!render_table(&timed, false).contains("wall ms"));

    // Bad files are errors naming the file and what to do.
    let e = from_json(Path::new("bad.json"), "{ nope")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("bad.json: not JSON"), "{e}");
    let v2 = written.replacen("\"version\": 1", "\"version\": 2", 1);
    let e = from_json(Path::new("v2.json"), &v2)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("version 2") && e.contains("run the sweep again"),
        "{e}"
    );
    let bad_policy = written.replacen("\"end-only\"", "\"sometimes\"", 1);
    let e = from_json(Path::new("p.json"), &bad_policy)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cell 3") && e.contains("unknown notify policy 'sometimes'"),
        "{e}"
    );
    let out = sweep_bin(&["--merge", d.join("missing.json").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("missing.json: cannot read it"));
}

#[test]
fn patterns_select_and_bad_patterns_exit_2() {
    let d = tmp("patterns");
    for n in ["ca", "cb", "d"] {
        cow_copy(&d, n, |s| s);
    }
    std::fs::write(d.join("notes.txt"), "not a scenario").unwrap();
    let dir = d.display().to_string();
    // Sorted by file name, each file once.
    let got = expand(&[
        format!("{dir}/d.yaml"),
        format!("{dir}/c*"),
        format!("{dir}/ca.yaml"),
    ]);
    let names: Vec<String> = got
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["ca.yaml", "cb.yaml", "d.yaml"]);
    // A directory means its *.yaml.
    assert_eq!(expand(std::slice::from_ref(&dir)).unwrap().len(), 3);

    for bad in [
        format!("{dir}/q*"),
        format!("{dir}/nope.yaml"),
        "nope*".into(),
    ] {
        let out = sweep_bin(&[&bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let e = text(&out.stderr);
        assert!(e.contains(&format!("pattern '{bad}'")), "{e}");
        assert!(out.stdout.is_empty());
    }
    for bad in [["--shard", "3/2"], ["--jobs", "0"], ["--notify", "often"]] {
        assert_eq!(sweep_bin(&bad).status.code(), Some(2), "{bad:?}");
    }
}
