//! Soak: N mutated scenarios (`tests/support/mutate.rs`) through the
//! `shootdown` CLI, each in its own process with a time limit, counting
//! what must never happen: a panic, a crash (a signal), a hang (the time
//! limit), an unclear error (no file and line within the file, a control
//! character, a message that says almost nothing). All must be 0; the
//! exit status is 1 otherwise, and each offending input is kept in
//! `target/soak/` to replay with `shootdown scenario <file>`.
//!
//! `cargo bench --bench soak -- [N] [--seed S] [--timeout SECONDS] [--jobs J]`
//! (defaults: 2000 mutants, seed 1, 30 s, one job per core).

#[path = "../tests/support/mutate.rs"]
mod mutate;

use mutate::{is_clear, Rng, Seeds};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Tally {
    accepted: usize,
    rejected: usize,
    panics: Vec<(u64, String)>,
    crashes: Vec<(u64, String)>,
    hangs: Vec<(u64, String)>,
    unclear: Vec<(u64, String)>,
}

fn arg<T: std::str::FromStr>(args: &[String], flag: &str) -> Option<T> {
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1)?.parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: u64 = args
        .iter()
        .take_while(|a| !a.starts_with("--"))
        .find_map(|a| a.parse().ok())
        .unwrap_or(2000);
    let seed: u64 = arg(&args, "--seed").unwrap_or(1);
    let limit = Duration::from_secs(arg(&args, "--timeout").unwrap_or(30));
    let jobs: usize = arg(&args, "--jobs")
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seeds = Seeds::load(root);
    let others = seeds.all_bytes();
    let work = std::env::temp_dir().join(format!("shootdown-soak-{}", std::process::id()));
    let keep = root.join("target/soak");
    std::fs::create_dir_all(&work).unwrap();
    let bin = env!("CARGO_BIN_EXE_shootdown");

    let next = AtomicUsize::new(0);
    let tally = Mutex::new(Tally::default());
    let t0 = Instant::now();
    std::thread::scope(|sc| {
        for _ in 0..jobs.max(1) {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as u64;
                if i >= n {
                    break;
                }
                let mut rng = Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(i));
                let (_, bytes) = seeds.mutant(&mut rng, &others, 5);
                let file = work.join(format!("m{i}.yaml"));
                std::fs::write(&file, &bytes).unwrap();
                let outcome = one(bin, &file, &bytes, limit);
                let bad = !matches!(outcome, Outcome::Accepted | Outcome::Rejected);
                let mut t = tally.lock().unwrap();
                match outcome {
                    Outcome::Accepted => t.accepted += 1,
                    Outcome::Rejected => t.rejected += 1,
                    Outcome::Panic(e) => t.panics.push((i, e)),
                    Outcome::Crash(e) => t.crashes.push((i, e)),
                    Outcome::Hang => t.hangs.push((i, String::new())),
                    Outcome::Unclear(e) => t.unclear.push((i, e)),
                }
                drop(t);
                if bad {
                    std::fs::create_dir_all(&keep).unwrap();
                    let _ = std::fs::copy(&file, keep.join(format!("m{i}.yaml")));
                }
                let _ = std::fs::remove_file(&file);
            });
        }
    });
    let _ = std::fs::remove_dir_all(&work);
    let t = tally.into_inner().unwrap();
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "soak: {n} mutants (seed {seed}, {jobs} jobs) in {secs:.1} s, {:.0} per second",
        n as f64 / secs
    );
    println!(
        "  accepted and ran: {}  rejected with a clear error: {}",
        t.accepted, t.rejected
    );
    println!(
        "  panics: {}  crashes: {}  hangs (> {} s): {}  unclear errors: {}",
        t.panics.len(),
        t.crashes.len(),
        limit.as_secs(),
        t.hangs.len(),
        t.unclear.len()
    );
    for (what, list) in [
        ("panic", &t.panics),
        ("crash", &t.crashes),
        ("hang", &t.hangs),
        ("unclear", &t.unclear),
    ] {
        for (i, e) in list.iter().take(5) {
            println!("  {what}: target/soak/m{i}.yaml: {e}");
        }
    }
    let bad = t.panics.len() + t.crashes.len() + t.hangs.len() + t.unclear.len();
    std::process::exit(i32::from(bad > 0));
}

enum Outcome {
    Accepted,
    Rejected,
    Panic(String),
    Crash(String),
    Hang,
    Unclear(String),
}

/// Run one mutant through the CLI under the time limit.
fn one(bin: &str, file: &Path, bytes: &[u8], limit: Duration) -> Outcome {
    let mut child = Command::new(bin)
        .args(["scenario", file.to_str().unwrap(), "--no-waves", "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the shootdown binary runs");
    let start = Instant::now();
    let status = loop {
        match child.try_wait().expect("wait") {
            Some(s) => break s,
            None if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Outcome::Hang;
            }
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let mut raw = Vec::new();
        let _ = e.read_to_end(&mut raw);
        err = String::from_utf8_lossy(&raw).into_owned();
    }
    if err.contains("panicked") {
        return Outcome::Panic(err.lines().next().unwrap_or_default().to_string());
    }
    match status.code() {
        None => Outcome::Crash(format!("{status}")),
        Some(0 | 1) => Outcome::Accepted,
        Some(2) => {
            let first = err.lines().next().unwrap_or_default();
            let text = first.strip_prefix("shootdown: ").unwrap_or(first);
            let lines = bytes.split(|b| *b == b'\n').count();
            match is_clear(text, file.to_str().unwrap(), lines) {
                Ok(()) => Outcome::Rejected,
                Err(why) => Outcome::Unclear(why),
            }
        }
        Some(c) => Outcome::Crash(format!(
            "exit status {c}: {}",
            err.lines().next().unwrap_or_default()
        )),
    }
}
