//! The evidence that bad input gets a clear error: a corpus of malformed
//! scenarios (`tests/corpus/bad/`), each with the line the error must name
//! and a fragment of what it must say. The table below is the
//! specification; every file in the corpus is in it and every row has a
//! file. Some are found by the parser, the last ones (`run-*`) only by the
//! run; both name the file and the line, on one line, with no control
//! character reaching the terminal, and the CLI exits 2 without a panic.

use shootdown::mm::Policy;
use shootdown::scenario::{Scenario, MAX_BYTES, MAX_STEPS};
use shootdown::sim::{run, RunOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

/// (file in tests/corpus/bad without `.yaml`, line, fragment of the message)
const CORPUS: &[(&str, usize, &str)] = &[
    ("about-control-char", 2, "control character '\\u{7}'"),
    ("action-not-a-string", 10, "expected a text value here"),
    ("action-unknown-verb", 11, "expected 'read <page>'"),
    ("alias-flood", 11, "too many YAML anchors"),
    ("bom-then-unknown-field", 3, "unknown field `colour`"),
    (
        "collapse-cow-page",
        11,
        "collapse takes a private small page",
    ),
    ("deep-flow-nesting", 11, "nested deeper than 16 levels"),
    (
        "device-cpu-checkpoint",
        8,
        "unknown checkpoint 'start' for a device access",
    ),
    (
        "device-new-access-while-stopped",
        9,
        "dev0 is still inside its access of line 8",
    ),
    (
        "device-resume-nothing",
        10,
        "dev5 has no access stopped at a checkpoint",
    ),
    ("device-runs-kernel-path", 8, "only CPU threads run it"),
    ("driver-unknown", 3, "unknown IOMMU driver 'nvidia'"),
    ("duplicate-page", 6, "'addrA' is given a second time"),
    ("duplicate-top-key", 3, "'name' is given a second time"),
    (
        "exit-unknown-process",
        9,
        "'2' is not a process of this scenario",
    ),
    ("expect-clean-and-violation", 11, "contradict each other"),
    ("expect-empty-list", 11, "expect.seed: empty"),
    ("expect-unknown-policy", 11, "unknown notify policy 'never'"),
    ("expect-unknown-verdict", 11, "unknown verdict 'spotless'"),
    ("file-and-cow", 6, "a file page is a small page"),
    ("five-pages", 9, "page 'addrE' is one too many"),
    ("flow-timeline", 10, "unknown page 'addrC'"),
    ("huge-region-shared", 6, "share a 2 MiB region"),
    ("inject-unknown", 3, "unknown injected bug 'late-lunch'"),
    ("missing-about", 1, "has no 'about:'"),
    ("mprotect-not-ro", 11, "'mprotect <page> ro'"),
    (
        "munmap-262145-pages",
        11,
        "not a page count from 1 to 262144",
    ),
    ("munmap-zero-pages", 11, "not a page count from 1 to 262144"),
    ("name-absolute", 1, "name '/tmp/x'"),
    ("name-dot-first", 1, "name '.hidden'"),
    ("name-empty", 1, "name ''"),
    ("name-escape", 1, "name '\\u{1b}[31mred'"),
    ("name-long", 1, "nnn...': the name labels the runs"),
    ("name-newline", 1, "name 'a\\nb'"),
    ("name-nul", 1, "name 'a\\0b'"),
    ("name-parent", 1, "name '../x'"),
    ("no-pages", 4, "no pages"),
    ("not-utf8", 2, "byte 0xe9 at column 11 is not UTF-8"),
    ("notify-unknown", 3, "unknown notify policy 'sometimes'"),
    ("page-missing-va", 6, "missing field `va`"),
    ("page-name-digit-first", 6, "page name '1addr'"),
    ("page-name-slash", 6, "page name 'a/b'"),
    ("page-name-space", 6, "page name 'addr B'"),
    ("page-unknown-field", 6, "unknown field `huge`"),
    ("pages-share-4k", 6, "shares its 4 KiB page with 'addrA'"),
    (
        "param-assertions-number",
        3,
        "params.assertions = '1' is not true or false",
    ),
    (
        "param-atc-entries-300",
        3,
        "params.atc_entries = 300 is out of range: give a whole number from 0 to 255",
    ),
    (
        "param-ats-latency-zero",
        3,
        "params.ats_latency = 0 is out of range: give a whole number from 1 to 65535",
    ),
    (
        "param-cpl-delay-huge",
        3,
        "params.ats_cpl_delay = 1000000 is out of range",
    ),
    (
        "param-cpu-step-2-32",
        3,
        "params.cpu_step_cycles = 4294967296 is out of range",
    ),
    (
        "param-cpu-step-zero",
        3,
        "params.cpu_step_cycles = 0 is out of range",
    ),
    (
        "param-cq-entries-1000",
        3,
        "params.cq_entries = 1000 is out of range: give a power of two from 2 to 256",
    ),
    (
        "param-cq-entries-3",
        3,
        "params.cq_entries = 3 is out of range",
    ),
    (
        "param-float",
        3,
        "params.mem_latency = '40.5' is not a whole number",
    ),
    (
        "param-gather-batch-zero",
        3,
        "params.gather_batch = 0 is out of range",
    ),
    (
        "param-given-twice",
        3,
        "'cpu_step_cycles' is given a second time",
    ),
    (
        "param-iotlb-sets-3",
        3,
        "give 0 or a power of two from 1 to 128",
    ),
    (
        "param-latency-2-64",
        3,
        "params.mem_latency = 18446744073709551615 is out of range",
    ),
    (
        "param-latency-negative",
        3,
        "params.mem_latency = '-1' is not a whole number",
    ),
    (
        "param-not-a-number",
        3,
        "params.ats_timeout = 'fast' is not a whole number",
    ),
    ("param-unknown", 3, "unknown parameter 'colour'"),
    (
        "param-watchdog-zero",
        3,
        "params.watchdog_cycles = 0 is out of range",
    ),
    ("params-not-a-mapping", 3, "expected a mapping here"),
    (
        "path-call-unknown",
        11,
        "no path 'q': define it under 'paths:'",
    ),
    (
        "path-flow-list-comma",
        9,
        "write the step's primitives one per line",
    ),
    ("path-goto-nowhere", 9, "no step 'c' to go to"),
    ("path-unknown-field", 8, "unknown field `stpes`"),
    ("path-unknown-primitive", 10, "unknown primitive 'unlcok'"),
    ("process-too-big", 6, "at most 4 processes"),
    (
        "run-busy-cpu-new-work",
        10,
        "write 'resume' before giving it new work",
    ),
    (
        "run-checkpoint-never-reached",
        11,
        "without reaching checkpoint 'start'",
    ),
    (
        "run-lock-held-by-preempted",
        10,
        "spins on a page-table lock held by cpu0",
    ),
    (
        "run-path-loops",
        12,
        "run-path-loops.yaml:9: path 'p', step '_a'",
    ),
    (
        "run-path-unset-variable",
        15,
        "run-path-unset-variable.yaml:12: path 'p', step 'b': 'x' is read before it is set",
    ),
    ("run-resume-nothing", 11, "cpu1 has nothing to resume"),
    ("run-watchdog", 8, "watchdog: this step ran"),
    ("second-document", 12, "a second YAML document starts here"),
    (
        "split-small-page",
        11,
        "is not a private transparent huge page",
    ),
    ("step-empty", 11, "an empty step"),
    ("tab-indentation", 6, "indent with spaces"),
    ("thp-and-hugetlb", 6, "thp or hugetlb, not both"),
    ("thread-cpu-plus0", 10, "unknown thread 'cpu+0'"),
    ("thread-cpu00", 10, "unknown thread 'cpu00'"),
    ("thread-cpu16", 8, "unknown thread 'cpu16'"),
    ("thread-dev16", 8, "unknown thread 'dev16'"),
    ("thread-gpu0", 8, "unknown thread 'gpu0'"),
    ("thread-twice-in-step", 8, "'dev0' is given a second time"),
    ("timeline-empty", 7, "the timeline is empty"),
    ("timeline-not-a-list", 7, "expected a list here"),
    ("unclosed-flow", 10, "opened on line 8 is never closed"),
    ("unknown-checkpoint", 9, "unknown checkpoint 'nowhere'"),
    ("unknown-page", 8, "unknown page 'addrC'"),
    ("unknown-top-field", 3, "unknown field `colour`"),
    (
        "until-then-more",
        9,
        "nothing may follow 'until <checkpoint>'",
    ),
    (
        "until-without-checkpoint",
        9,
        "'until' needs a checkpoint name",
    ),
    ("va-below-mmap-min-addr", 6, "va 0x8000 must be"),
    (
        "va-huge-page-at-zero",
        6,
        "with its 2 MiB page, at or above mmap_min_addr",
    ),
    ("va-kernel-half", 6, "va 0xffff800000000000 must be"),
    ("va-not-a-number", 6, "va 'lots' is not a 64-bit number"),
    (
        "va-unaligned",
        6,
        "va 0x7f0000001004 must be 8-byte aligned",
    ),
    ("va-zero", 6, "va 0x0 must be"),
    (
        "value-too-large",
        6,
        "value '0x1ffffffffffffffff' is not a 64-bit number",
    ),
    ("write-bad-number", 9, "'0xzz' is not a 64-bit number"),
    ("write-without-value", 9, "expected 'read <page>'"),
    (
        "zero-page-with-value",
        6,
        "a zero page is 'thp: true, zero: true'",
    ),
];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/bad")
}

/// The error for `file`: from the parser, else from a run under `seed`.
fn error_of(file: &Path) -> (usize, String, String) {
    match Scenario::load(file) {
        Err(e) => (e.line, e.msg.clone(), e.to_string()),
        Ok(s) => {
            let opts = RunOptions::policy(Policy::Seed);
            match run(&s, &opts) {
                Err(shootdown::sim::RunError::Timeline { line, msg, .. }) => {
                    let text = format!("{}:{line}: {msg}", file.display());
                    (line, msg, text)
                }
                Err(e) => panic!("{}: not a timeline error: {e}", file.display()),
                Ok(_) => panic!("{}: accepted and ran", file.display()),
            }
        }
    }
}

#[test]
fn the_corpus_and_its_table_match() {
    let mut files: Vec<String> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let rows: Vec<String> = CORPUS.iter().map(|(n, _, _)| format!("{n}.yaml")).collect();
    assert_eq!(files, rows, "every corpus file has a row, in order");
    assert!(CORPUS.len() >= 60);
}

#[test]
fn every_malformed_scenario_names_its_line_and_says_what_is_wrong() {
    for (name, line, fragment) in CORPUS {
        let file = corpus_dir().join(format!("{name}.yaml"));
        let (l, msg, text) = error_of(&file);
        assert_eq!(l, *line, "{name}: {text}");
        assert!(msg.contains(fragment), "{name}: {text}");
        assert!(
            text.starts_with(&format!("{}:{line}: ", file.display())),
            "{name}: {text}"
        );
        assert!(
            !text.chars().any(char::is_control),
            "{name}: a control character would reach the terminal: {text:?}"
        );
    }
}

#[test]
fn the_cli_exits_2_with_the_same_line_for_every_one() {
    let dir = corpus_dir();
    for (name, line, fragment) in CORPUS {
        let file = dir.join(format!("{name}.yaml"));
        let out = Command::new(env!("CARGO_BIN_EXE_shootdown"))
            .args([
                "scenario",
                file.to_str().unwrap(),
                "--no-waves",
                "--notify",
                "seed",
            ])
            .output()
            .unwrap();
        let err = String::from_utf8(out.stderr).expect("UTF-8 on stderr");
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        let first = err.lines().next().unwrap_or_default();
        let want = format!("shootdown: {}:{line}: ", file.display());
        assert!(first.starts_with(&want), "{name}: {first}");
        assert!(first.contains(fragment), "{name}: {first}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
}

#[test]
fn whole_file_limits_are_errors_without_a_line() {
    let dir = std::env::temp_dir().join(format!("shootdown_corpus_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("big.yaml");
    std::fs::write(&big, vec![b'#'; MAX_BYTES as usize + 1]).unwrap();
    let e = Scenario::load(&big).unwrap_err();
    assert_eq!(e.line, 0);
    assert!(e.msg.contains("larger than 1024 KiB"), "{e}");
    assert_eq!(e.to_string(), format!("{}: {}", big.display(), e.msg));
    let e = Scenario::load(&dir.join("absent.yaml")).unwrap_err();
    assert!(e.msg.starts_with("cannot read the scenario"), "{e}");

    // A timeline longer than the limit, in a file under the size limit.
    let base = std::fs::read_to_string(corpus_dir().join("run-watchdog.yaml")).unwrap();
    let steps = "  - { dev0: read addrA }\n".repeat(MAX_STEPS + 1);
    let long = base.replacen("timeline:\n", &format!("timeline:\n{steps}"), 1);
    let e = Scenario::parse(Path::new("long.yaml"), &long).unwrap_err();
    assert_eq!(e.line, 8, "the timeline's first step: {e}");
    assert!(e.msg.contains("at most 10000"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
