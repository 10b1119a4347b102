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

fn spawn(scenario: &Path, waves: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_shootdown"))
        .arg("scenario")
        .arg(scenario)
        .args(["--notify", "seed", "--waves-dir"])
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
        (cow.as_path(), "cow-seed"),
        (slow.as_path(), "cow-slow-seed"),
    ];

    // Each alone, into the directory the races use (the output names it).
    let mut solo = Vec::new();
    for (scenario, stem) in outputs {
        let o = outcome(spawn(scenario, &waves).wait_with_output().unwrap());
        let vcd = fs::read(waves.join(format!("{stem}.vcd"))).unwrap();
        let gtkw = fs::read(waves.join(format!("{stem}.gtkw"))).unwrap();
        solo.push((o, vcd, gtkw));
    }
    assert_ne!(solo[0].1, solo[1].1, "the two scenarios differ");
    assert_ne!(solo[0].0.stdout, solo[1].0.stdout);
    fs::remove_dir_all(&waves).unwrap();

    // Then each twice at once, all four in flight together; a few times.
    for round in 0..3 {
        let children: Vec<(usize, Child)> = [0, 1, 0, 1]
            .into_iter()
            .map(|i| (i, spawn(outputs[i].0, &waves)))
            .collect();
        for (i, child) in children {
            let o = outcome(child.wait_with_output().unwrap());
            assert_eq!(o, solo[i].0, "round {round}: {}", outputs[i].1);
        }
        for (i, (_, stem)) in outputs.iter().enumerate() {
            let vcd = fs::read(waves.join(format!("{stem}.vcd"))).unwrap();
            let gtkw = fs::read(waves.join(format!("{stem}.gtkw"))).unwrap();
            assert!(
                vcd == solo[i].1,
                "round {round}: {stem}.vcd differs from a solo run"
            );
            assert!(gtkw == solo[i].2, "round {round}: {stem}.gtkw differs");
        }
        assert_eq!(
            files(&waves),
            [
                "cow-seed.gtkw",
                "cow-seed.vcd",
                "cow-slow-seed.gtkw",
                "cow-slow-seed.vcd"
            ],
            "round {round}: no temporary file is left"
        );
    }
}
