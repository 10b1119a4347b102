//! Two `shootdown scenario` processes writing waves into one directory at
//! once (the same scenario twice, and a copy of it with the same `name:` but
//! other params) each end as they do alone: same exit status, same output,
//! and the waves file and .gtkw each leaves are byte-identical to a solo
//! run's. Temporary files are unique per process and run, outputs appear by
//! an atomic rename, and none is left behind.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

struct Tmp(PathBuf);

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn spawn(scenario: &Path, format: &str, waves: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_shootdown"))
        .arg("scenario")
        .arg(scenario)
        .args(["--notify", "seed", "--waves-format", format, "--waves-dir"])
        .arg(waves)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run shootdown")
}

/// What a run leaves: exit status, stdout without the wall-clock line.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    status: Option<i32>,
    stdout: String,
}

fn outcome(o: Output) -> Outcome {
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stdout = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.starts_with("Simulated "))
        .collect::<Vec<_>>()
        .join("\n");
    Outcome {
        status: o.status.code(),
        stdout,
    }
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn concurrent_runs_into_one_waves_dir_match_solo_runs() {
    let root = std::env::temp_dir().join(format!("shootdown_concurrent_{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).unwrap();
    let _guard = Tmp(root.clone());
    let cow = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/cow.yaml");
    // Same `name: cow`, another memory latency: other cycles, other waves.
    let text = fs::read_to_string(&cow).unwrap();
    assert!(text.contains("mem_latency: 40,"));
    let slow = root.join("cow-slow.yaml");
    fs::write(&slow, text.replace("mem_latency: 40,", "mem_latency: 55,")).unwrap();
    let waves = root.join("waves");
    let outputs = [
        (cow.as_path(), "vcd", "cow-seed"),
        (slow.as_path(), "vcd", "cow-slow-seed"),
        (cow.as_path(), "fst", "cow-seed"),
    ];

    // Each alone, into the directory the races use (the output names it).
    let mut solo = Vec::new();
    for (scenario, format, stem) in outputs {
        let o = outcome(spawn(scenario, format, &waves).wait_with_output().unwrap());
        let file = fs::read(waves.join(format!("{stem}.{format}"))).unwrap();
        let gtkw = fs::read(waves.join(format!("{stem}.gtkw"))).unwrap();
        solo.push((o, file, gtkw));
        fs::remove_dir_all(&waves).unwrap();
    }
    assert_ne!(solo[0].1, solo[1].1, "the two scenarios differ");
    assert_ne!(solo[0].0.stdout, solo[1].0.stdout);

    // Then two of each scenario at once, all four in flight together: in
    // even rounds the VCD runs, in odd ones the FST run of cow instead of
    // its VCD run (their .gtkw files share a name); a few times.
    for round in 0..4 {
        let fst = round % 2 == 1;
        let runs: &[usize] = if fst { &[1, 2, 1, 2] } else { &[0, 1, 0, 1] };
        let children: Vec<(usize, Child)> = runs
            .iter()
            .map(|&i| (i, spawn(outputs[i].0, outputs[i].1, &waves)))
            .collect();
        for (i, child) in children {
            let o = outcome(child.wait_with_output().unwrap());
            let (_, format, stem) = outputs[i];
            assert_eq!(o, solo[i].0, "round {round}: {stem} {format}");
        }
        let checked: &[usize] = if fst { &[1, 2] } else { &[0, 1] };
        for &i in checked {
            let (_, format, stem) = outputs[i];
            let file = fs::read(waves.join(format!("{stem}.{format}"))).unwrap();
            let gtkw = fs::read(waves.join(format!("{stem}.gtkw"))).unwrap();
            assert!(
                file == solo[i].1,
                "round {round}: {stem}.{format} differs from a solo run"
            );
            assert!(gtkw == solo[i].2, "round {round}: {stem}.gtkw differs");
        }
        let mut want = vec![
            "cow-seed.gtkw",
            "cow-seed.vcd",
            "cow-slow-seed.gtkw",
            "cow-slow-seed.vcd",
        ];
        if fst {
            want = vec![
                "cow-seed.fst",
                "cow-seed.gtkw",
                "cow-slow-seed.gtkw",
                "cow-slow-seed.vcd",
            ];
        }
        assert_eq!(
            files(&waves),
            want,
            "round {round}: no temporary file is left"
        );
        fs::remove_dir_all(&waves).unwrap();
    }
}
