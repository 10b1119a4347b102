//! The cluster scripts without a cluster: `scripts/explore-slurm.sh` under
//! a stand-in `sbatch` that runs each job at once (array tasks with
//! 0-based SLURM_ARRAY_TASK_ID, the merge only if they all succeeded), and
//! the containers' scripts of `scripts/explore-k8s.yaml` (parsed by
//! python3's yaml) run locally with JOB_COMPLETION_INDEX 0..N-1. Each gives
//! what the unsharded command prints. `scripts/slurm-selftest.sh` does the
//! same on a real Slurm.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_shootdown");

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh directory for one test.
fn tmp(test: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cluster-{test}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_exe(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Runs each job when submitted, from a copy of its script (as sbatch
/// does), and keeps each job's status in $FAKE_SLURM/<id>.
const SBATCH: &str = r#"#!/usr/bin/env bash
set -u
s=$FAKE_SLURM
id=$(($(cat "$s/next" 2>/dev/null || echo 0) + 1))
echo "$id" >"$s/next"
array= dep= out= cpus=1 chdir=.
while [[ $1 == --* ]]; do
  case $1 in
    --array=0-*) array=$((${1#--array=0-} + 1)) ;;
    --dependency=afterok:*) dep=${1#*afterok:} ;;
    --output=*) out=${1#*=} ;;
    --cpus-per-task=*) cpus=${1#*=} ;;
    --chdir=*) chdir=${1#*=} ;;
  esac
  shift
done
cp "$1" "$s/job-$id.sh"
shift
echo "$id"
if [ -n "$dep" ] && [ "$(cat "$s/$dep")" != 0 ]; then echo cancelled >"$s/$id"; exit 0; fi
status=0
if [ -n "$array" ]; then
  for ((i = 0; i < array; i++)); do
    (cd "$chdir" && SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_TASK_COUNT=$array SLURM_CPUS_PER_TASK=$cpus \
      bash "$s/job-$id.sh" "$@" >"${out//%a/$i}" 2>&1) || status=1
  done
else
  (cd "$chdir" && bash "$s/job-$id.sh" "$@" >"$out" 2>&1) || status=$?
fi
echo "$status" >"$s/$id"
"#;

/// `shootdown` on PATH (for the Kubernetes scripts), and as $SHOOTDOWN a
/// wrapper that logs its arguments and fails shard $FAIL_SHARD.
const WRAPPER: &str = r#"#!/usr/bin/env bash
echo "$*" >>"$(dirname "$0")/calls"
case " $* " in *" --shard ${FAIL_SHARD:-0}/"*) exit 2 ;; esac
exec "$REAL_SHOOTDOWN" "$@"
"#;

fn bin_dir(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    write_exe(&bin.join("sbatch"), SBATCH);
    write_exe(&bin.join("shootdown"), WRAPPER);
    bin
}

fn path_with(bin: &Path) -> String {
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap())
}

/// What the unsharded command prints (its --out directory named OUT) and
/// its exit status.
fn unsharded(dir: &Path, args: &[&str]) -> (String, i32) {
    let out = dir.join("unsharded");
    let o = Command::new(BIN)
        .args(args)
        .arg("--out")
        .arg(&out)
        .current_dir(repo())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).replace(out.to_str().unwrap(), "OUT");
    (text, o.status.code().unwrap())
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const SCENARIO: &str = "scenarios/programs/cow.yaml";

fn submit(dir: &Path, fail_shard: u32) -> PathBuf {
    let bin = bin_dir(dir);
    let state = dir.join("slurm");
    std::fs::create_dir_all(&state).unwrap();
    let out = dir.join("out");
    let o = Command::new(repo().join("scripts/explore-slurm.sh"))
        .arg(SCENARIO)
        .current_dir(repo())
        .env("PATH", path_with(&bin))
        .env("FAKE_SLURM", &state)
        .env("REAL_SHOOTDOWN", BIN)
        .env("FAIL_SHARD", fail_shard.to_string())
        .env("SHOOTDOWN", bin.join("shootdown"))
        .env("NOTIFY", "end-only")
        .env("BOUND", "0")
        .env("SHARDS", "3")
        .env("CPUS", "1")
        .env("OUT", &out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ids = read(&out.join("jobs"));
    assert_eq!(ids.split_whitespace().collect::<Vec<_>>(), ["1", "2"]);
    out
}

#[test]
fn slurm_array_tasks_run_shards_one_to_n_and_the_merge_prints_the_unsharded_result() {
    let dir = tmp("slurm");
    let out = submit(&dir, 0);
    // Task i ran shard i+1 of 3, each with the same options.
    let calls = read(&dir.join("bin/calls"));
    for k in 1..=3 {
        let i = k - 1;
        let want = format!(
            "explore {} --notify end-only --bound 0 --out {}/shard-{i} --jobs 1 --shard {k}/3 --json {}/shard-{i}.json",
            repo().join(SCENARIO).display(),
            out.display(),
            out.display()
        );
        assert!(calls.lines().any(|l| l == want), "{want}\nnot in\n{calls}");
        assert!(out.join(format!("shard-{i}.json")).is_file());
    }
    // Within no preemption, explore finds nothing where the scenario
    // expects a violation: exit status 1 for the whole (the merge), 0 for
    // each shard (its verdicts are partial). The script gives the jobs the
    // scenario's absolute path, which the output names.
    let scenario = repo().join(SCENARIO);
    let (want, status) = unsharded(
        &dir,
        &[
            "explore",
            scenario.to_str().unwrap(),
            "--notify",
            "end-only",
            "--bound",
            "0",
        ],
    );
    assert_eq!(status, 1, "{want}");
    assert_eq!(read(&dir.join("slurm/1")).trim(), "0", "the array job");
    assert_eq!(read(&dir.join("slurm/2")).trim(), "1", "the merge job");
    let merged =
        read(&out.join("merged.txt")).replace(out.join("findings").to_str().unwrap(), "OUT");
    assert_eq!(merged, want);
    assert!(out.join("merged.json").is_file());
}

#[test]
fn a_failed_slurm_shard_cancels_the_merge() {
    let dir = tmp("slurm-fail");
    let out = submit(&dir, 2);
    assert_eq!(read(&dir.join("slurm/1")).trim(), "1", "the array job");
    assert_eq!(read(&dir.join("slurm/2")).trim(), "cancelled");
    assert!(!out.join("shard-1.json").exists());
    assert!(out.join("shard-0.json").is_file() && out.join("shard-2.json").is_file());
    assert!(!out.join("merged.txt").exists());
}

/// The documents of the Kubernetes file, through python3's yaml.
fn k8s_docs() -> Vec<Value> {
    let o = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; json.dump(list(yaml.safe_load_all(open(sys.argv[1]))), sys.stdout)",
        ])
        .arg(repo().join("scripts/explore-k8s.yaml"))
        .output()
        .expect("python3 (with its yaml module: apt-get install python3-yaml)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The one container of a Job's pods: its env as pairs and its script.
fn container(job: &Value) -> (Vec<(String, String)>, String) {
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["command"], serde_json::json!(["bash", "-c"]));
    let env = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap().to_string();
            (s("name"), s("value"))
        })
        .collect();
    (env, c["args"][0].as_str().unwrap().to_string())
}

fn env_of<'a>(env: &'a [(String, String)], name: &str) -> &'a str {
    &env.iter().find(|(n, _)| n == name).unwrap().1
}

#[test]
fn k8s_indexed_job_shards_into_the_claim_and_the_merge_job_prints_the_unsharded_result() {
    let docs = k8s_docs();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["PersistentVolumeClaim", "Job", "Job"]);
    let claim = docs[0]["metadata"]["name"].as_str().unwrap();
    let (shards, merge) = (&docs[1], &docs[2]);
    assert_eq!(shards["spec"]["completionMode"], "Indexed");
    let n = shards["spec"]["completions"].as_u64().unwrap();
    assert!(shards["spec"]["parallelism"].as_u64().unwrap() >= 1);
    let (shard_env, shard_sh) = container(shards);
    let (merge_env, merge_sh) = container(merge);
    for (job, env) in [(shards, &shard_env), (merge, &merge_env)] {
        let pod = &job["spec"]["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Never");
        assert_eq!(
            pod["volumes"][0]["persistentVolumeClaim"]["claimName"],
            claim
        );
        let mount = pod["containers"][0]["volumeMounts"][0]["mountPath"]
            .as_str()
            .unwrap();
        assert!(env_of(env, "RUN").starts_with(&format!("{mount}/")));
        assert_eq!(env_of(env, "SHARDS"), n.to_string(), "SHARDS = completions");
    }

    // Run the pods' scripts here: each index in turn, then the merge, with
    // RUN in a temporary directory and the scenarios of this repo; the
    // bound is 0 to keep the test short.
    let dir = tmp("k8s");
    let bin = bin_dir(&dir);
    let run = dir.join("run");
    let scenario = repo().join(SCENARIO);
    let sh = |script: &str, env: &[(String, String)], index: Option<u64>| {
        let mut c = Command::new("bash");
        c.arg("-c").arg(script).current_dir(&dir);
        for (k, v) in env {
            c.env(k, v);
        }
        c.env("PATH", path_with(&bin))
            .env("REAL_SHOOTDOWN", BIN)
            .env("RUN", &run)
            .env("SCENARIOS", &scenario)
            .env("BOUND", "0");
        if let Some(i) = index {
            c.env("JOB_COMPLETION_INDEX", i.to_string());
        }
        c.output().unwrap()
    };
    for i in 0..n {
        let o = sh(&shard_sh, &shard_env, Some(i));
        assert!(
            o.status.success(),
            "index {i}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(run.join(format!("shard-{i}.json")).is_file());
        assert!(!run.join(format!("shard-{i}.json.part")).exists());
    }
    let calls = read(&bin.join("calls"));
    for k in 1..=n {
        assert!(calls.contains(&format!("--shard {k}/{n} ")), "{calls}");
    }
    let o = sh(&merge_sh, &merge_env, None);
    let (want, status) = unsharded(
        &dir,
        &[
            "explore",
            scenario.to_str().unwrap(),
            "--notify",
            env_of(&shard_env, "NOTIFY"),
            "--bound",
            "0",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(status),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let merged =
        String::from_utf8_lossy(&o.stdout).replace(run.join("findings").to_str().unwrap(), "OUT");
    assert_eq!(merged, want);
    assert_eq!(
        read(&run.join("merged.txt")),
        String::from_utf8_lossy(&o.stdout)
    );
}
