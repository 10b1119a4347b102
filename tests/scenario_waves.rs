//! The waves of a whole run: one VCD with RTL and host signals in one time
//! base, readable by the `vcd` crate and by GTKWave's `vcd2fst`, identical
//! from run to run.

use shootdown::mm::Policy;
use shootdown::scenario::Scenario;
use shootdown::sim::{run, RunOptions, RunReport};
use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::Command;

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("shootdown_waves_{tag}_{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn run_with_waves(policy: Policy, vcd: &Path) -> RunReport {
    let s =
        Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/cow.yaml")).unwrap();
    run(
        &s,
        &RunOptions {
            policy,
            waves: Some(vcd.to_path_buf()),
        },
    )
    .unwrap()
}

/// Run `s` under `seed` with its waves written to `vcd`.
fn run_seed(s: &Scenario, vcd: &Path) -> Result<RunReport, shootdown::sim::RunError> {
    run(
        s,
        &RunOptions {
            policy: Policy::Seed,
            waves: Some(vcd.to_path_buf()),
        },
    )
}

/// Every change of the variable at `path`, with its time in ps.
fn changes(vcd: &Path, path: &[&str]) -> Vec<(u64, vcd::Command)> {
    let mut p = vcd::Parser::new(BufReader::new(fs::File::open(vcd).unwrap()));
    let header = p.parse_header().unwrap();
    let id = header
        .find_var(path)
        .unwrap_or_else(|| panic!("{path:?} is not in {}", vcd.display()))
        .code;
    let mut t = 0;
    let mut out = Vec::new();
    for cmd in p {
        match cmd.unwrap() {
            vcd::Command::Timestamp(x) => t = x,
            c @ (vcd::Command::ChangeScalar(i, _)
            | vcd::Command::ChangeVector(i, _)
            | vcd::Command::ChangeString(i, _))
                if i == id =>
            {
                out.push((t, c))
            }
            _ => {}
        }
    }
    out
}

/// Times (in ps) at which a 1-bit variable changes, with its new value.
fn scalar_changes(vcd: &Path, path: &[&str]) -> Vec<(u64, bool)> {
    changes(vcd, path)
        .into_iter()
        .filter_map(|(t, c)| match c {
            vcd::Command::ChangeScalar(_, v) => Some((t, v == vcd::Value::V1)),
            _ => None,
        })
        .collect()
}

/// The changes of a text variable: (time in ps, unescaped text).
fn string_changes(vcd: &Path, path: &[&str]) -> Vec<(u64, String)> {
    changes(vcd, path)
        .into_iter()
        .filter_map(|(t, c)| match c {
            vcd::Command::ChangeString(_, v) => Some((t, shootdown::waves::unescape_text(&v))),
            _ => None,
        })
        .collect()
}

/// Times (in ps) at which a variable of any width changes.
fn change_times(vcd: &Path, path: &[&str]) -> Vec<u64> {
    changes(vcd, path).into_iter().map(|(t, _)| t).collect()
}

#[test]
fn window_signals_follow_the_checker_in_the_rtl_time_base() {
    let dir = tmpdir("window");
    let vcd = dir.join("cow-end-only.vcd");
    let r = run_with_waves(Policy::EndOnly, &vcd);
    let w = r.waves.as_ref().expect("waves were asked for");
    assert_eq!(w.vcd, vcd);
    assert!(w.gtkw.exists());
    let mut left: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["cow-end-only.gtkw", "cow-end-only.vcd"],
        "the RTL-only trace and every temporary file are removed"
    );

    // The ATC window of addrA, as the checker measured it, is the window
    // signal's first rising and falling edge (1 cycle = 1000 ps).
    let atc = r
        .windows_of("addrA")
        .into_iter()
        .find(|w| w.cache == shootdown::checker::Cache::Atc)
        .unwrap();
    let edges = scalar_changes(&vcd, &["host", "pages", "addrA", "stale_atc"]);
    let rise = edges.iter().find(|e| e.1).expect("the window opens").0;
    let fall = edges
        .iter()
        .find(|e| !e.1 && e.0 > rise)
        .expect("and closes")
        .0;
    assert_eq!(rise, atc.start * 1000);
    assert_eq!(fall, atc.end.unwrap() * 1000);

    // The RTL's own trace is in the same file and the same time base: one
    // timestamp per cycle, each a rising edge (clk_i reads 1 there), and
    // the ATC's probe of addrA (slot 0) drops the entry in the very cycle
    // the window closes.
    let clk = scalar_changes(&vcd, &["TOP", "clk_i"]);
    assert!(clk.iter().all(|&(_, v)| v), "clk_i is 1 at every timestamp");
    let atc_probe = change_times(&vcd, &["TOP", "probe0_atc_o"]);
    assert!(
        atc_probe.contains(&fall),
        "probe0_atc_o changes at {fall}: {atc_probe:?}"
    );
    // A violation marker is recorded.
    let mut p = vcd::Parser::new(BufReader::new(fs::File::open(&vcd).unwrap()));
    let h = p.parse_header().unwrap();
    assert!(h.find_var(&["host", "checker", "violation"]).is_some());
    assert!(h.find_var(&["host", "threads", "cpu0"]).is_some());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn waves_are_byte_identical_across_runs() {
    let dir = tmpdir("det");
    let a = dir.join("a.vcd");
    let b = dir.join("b.vcd");
    run_with_waves(Policy::Seed, &a);
    run_with_waves(Policy::Seed, &b);
    let (x, y) = (fs::read(&a).unwrap(), fs::read(&b).unwrap());
    assert!(x.len() > 10_000);
    assert!(x == y, "two runs of the same scenario wrote different VCDs");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn gtkwave_vcd2fst_accepts_the_run() {
    let dir = tmpdir("fst");
    let vcd = dir.join("cow-seed.vcd");
    run_with_waves(Policy::Seed, &vcd);
    let fst = dir.join("cow.fst");
    let back = dir.join("back.vcd");
    let st = Command::new("vcd2fst")
        .arg(&vcd)
        .arg(&fst)
        .status()
        .expect("vcd2fst is missing: apt-get install -y gtkwave");
    assert!(st.success());
    // vcd2fst exits 0 even on garbage: convert back and look for our signals.
    let st = Command::new("fst2vcd")
        .arg("-o")
        .arg(&back)
        .arg(&fst)
        .status()
        .expect("fst2vcd is missing: apt-get install -y gtkwave");
    assert!(st.success());
    let text = fs::read_to_string(&back).unwrap();
    for name in ["window", "stale_atc", "cpu_value", "clk_i", "cq_head_o"] {
        assert!(text.contains(name), "{name} lost in the vcd2fst round trip");
    }
    let _ = fs::remove_dir_all(&dir);
}

/// A run that an RTL assertion stops still leaves its waves, up to the
/// failing cycle, with the assertion named on `host.violation` and the
/// .gtkw beside them; no temporary RTL trace is left behind.
#[test]
fn a_failed_run_leaves_its_waves_up_to_the_failure() {
    let dir = tmpdir("failed");
    let vcd = dir.join("tr-race.vcd");
    let mut s =
        Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/tr-race.yaml"))
            .unwrap();
    s.inject = shootdown::rtl::Inject::CACHE_RACING_CPL;
    let e = run_seed(&s, &vcd).expect_err("the racing-completion assertion stops the run");
    // The error names the scenario line of the step the RTL failed in.
    let msg = e.to_string();
    let at = msg.split("tr-race.yaml:").nth(1).expect("names the file");
    let line: usize = at.split(':').next().unwrap().parse().expect("and a line");
    assert!(line > 1 && at.contains("[rtl] assertion failed"), "{msg}");
    let cycle = match e {
        shootdown::sim::RunError::Rtl {
            source: shootdown::rtl::RtlError::Assertion { cycle, .. },
            ..
        } => cycle,
        other => panic!("expected an assertion, got {other}"),
    };
    let text = fs::read_to_string(&vcd).unwrap();
    let mark = text
        .find("sassertion\\040RacingCplDiscarded_A")
        .expect("the assertion is marked");
    let at = text[..mark]
        .rfind("\n#")
        .map(|i| &text[i + 2..mark])
        .unwrap();
    let t: u64 = at.lines().next().unwrap().trim().parse().unwrap();
    assert_eq!(t, cycle * 1000, "marked at the failing cycle");
    assert!(vcd.with_extension("gtkw").exists());
    let left: Vec<_> = fs::read_dir(&dir).unwrap().collect();
    assert_eq!(left.len(), 2, "the .vcd and the .gtkw only");
}

/// The watchdog names its step and the absolute cycle, and its waves say
/// why the run stopped, not only that it did.
#[test]
fn a_watchdog_stop_names_its_cycle_and_reason() {
    let dir = tmpdir("watchdog");
    let vcd = dir.join("slow.vcd");
    let src = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/cow.yaml"))
        .unwrap()
        .replace(
            "params: { mem_latency: 40, ats_latency: 150, cpu_step_cycles: 10 }",
            "params: { mem_latency: 40, ats_latency: 60000, cpu_step_cycles: 10, watchdog_cycles: 3000 }",
        )
        // a CPU flush that waits on its fence (a device access alone past
        // the watchdog is a no-progress verdict, not a stop)
        .replace("{ dev0: read addrA, dev2: read addrB }", "{ cpu3: write addrA 0xa3 }");
    let s = Scenario::parse(Path::new("slow.yaml"), &src).unwrap();
    let e = run_seed(&s, &vcd).expect_err("an ATS link this slow trips the watchdog");
    let text = e.to_string();
    let line = src
        .lines()
        .position(|l| l.contains("cpu3: write addrA 0xa3"))
        .unwrap()
        + 1;
    assert!(
        text.starts_with(&format!("slow.yaml:{line}: watchdog: this step ran")),
        "{text}"
    );
    // The step starts after reset; the error gives where it started and stopped.
    let (from, to) = {
        let after = |k: &str| -> u64 {
            let i = text.find(k).unwrap() + k.len();
            text[i..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        (after("from cycle "), after("to cycle "))
    };
    assert!(to > from + 3000, "{text}");
    let waves = fs::read_to_string(&vcd).unwrap();
    assert!(
        waves.contains(&format!(
            "sstopped\\040at\\040line\\040{line}:\\040watchdog:"
        )),
        "the reason is on host.violation"
    );
    let _ = fs::remove_dir_all(&dir);
}

/// `--waves-format fst` (a waves path ending in `.fst`): one FST with the
/// RTL and host signals, read back by GTKWave's `fst2vcd`, with the window
/// edges where the checker saw them and the RTL in the same time base; the
/// .gtkw opens it; two runs give the same bytes; nothing else is left.
#[test]
fn fst_waves_hold_rtl_and_host_signals_at_the_right_times() {
    let dir = tmpdir("fstrun");
    let fst = dir.join("cow-end-only.fst");
    let r = run_with_waves(Policy::EndOnly, &fst);
    let w = r.waves.as_ref().expect("waves were asked for");
    assert_eq!(w.vcd, fst);
    assert_eq!(w.bytes, fs::metadata(&fst).unwrap().len());
    let gtkw = fs::read_to_string(&w.gtkw).unwrap();
    assert!(gtkw.contains("[dumpfile] \"cow-end-only.fst\"\n"), "{gtkw}");

    let back = Command::new("fst2vcd")
        .arg(&fst)
        .output()
        .expect("fst2vcd is missing: apt-get install -y gtkwave");
    assert!(back.status.success());
    let vcd = dir.join("back.vcd");
    fs::write(&vcd, &back.stdout).unwrap();
    let atc = r
        .windows_of("addrA")
        .into_iter()
        .find(|w| w.cache == shootdown::checker::Cache::Atc)
        .unwrap();
    let edges = scalar_changes(&vcd, &["host", "pages", "addrA", "stale_atc"]);
    let rise = edges.iter().find(|e| e.1).expect("the window opens").0;
    let fall = edges.iter().find(|e| !e.1 && e.0 > rise).unwrap().0;
    assert_eq!((rise, fall), (atc.start * 1000, atc.end.unwrap() * 1000));
    assert!(change_times(&vcd, &["TOP", "probe0_atc_o"]).contains(&fall));

    // The same run again gives the same FST; the VCD of it holds the same
    // host changes.
    let again = dir.join("again.fst");
    run_with_waves(Policy::EndOnly, &again);
    assert!(fs::read(&fst).unwrap() == fs::read(&again).unwrap());
    let vcd_run = dir.join("cow-end-only.vcd");
    run_with_waves(Policy::EndOnly, &vcd_run);
    for sig in ["stale_atc", "window", "stale_iotlb"] {
        assert_eq!(
            scalar_changes(&vcd, &["host", "pages", "addrA", sig]),
            scalar_changes(&vcd_run, &["host", "pages", "addrA", sig]),
            "{sig}: FST and VCD agree"
        );
    }
    // Text stays text: cpu0's checkpoints, change by change.
    let cpu0 = string_changes(&vcd, &["host", "threads", "cpu0"]);
    assert!(
        cpu0.iter().any(|(_, t)| t.starts_with("write addrA 0xa1")),
        "{cpu0:?}"
    );
    assert_eq!(cpu0, string_changes(&vcd_run, &["host", "threads", "cpu0"]));
    let mut left: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "again.fst",
            "again.gtkw",
            "back.vcd",
            "cow-end-only.fst",
            "cow-end-only.gtkw",
            "cow-end-only.vcd"
        ]
    );
    let _ = fs::remove_dir_all(&dir);
}
