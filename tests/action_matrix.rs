//! The action matrix (issue 8, item 4: no silent no-op). Every action, on
//! every page kind and in every state a page reaches during a run, is one
//! of:
//!
//! - `Ok`: implemented. The run succeeds and the page table changed as
//!   Linux would change it; [`effect`] checks that change on the report
//!   (the page's final CPU view, the device's accesses, the I/O).
//! - `Run`: rejected at run time by the kernel path, before it changes
//!   anything: a `RunError::Timeline` naming the action's line, whose
//!   message names the action and says what is not modelled. (Should the
//!   parser learn to reject the combination first, a parse error naming the
//!   same line and the action is accepted too.)
//! - `Parse`: rejected by the parser, naming the action's line.
//! - `NA`: the state cannot be reached from that kind (its preparation is
//!   rejected: see the base matrix).
//!
//! The tables below are the specification; docs/scenarios.md summarises
//! them. Each cell is a generated scenario: the page (named addrP), a device
//! read (the frame before), the action, and a device access after it.

use shootdown::mm::Policy;
use shootdown::scenario::{Scenario, ScenarioError};
use shootdown::sim::{run, RunError, RunOptions, RunReport};
use std::path::Path;

use Cell::{Ok, Parse, Run, NA};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cell {
    Ok,
    Run,
    Parse,
    NA,
}

/// The page kinds, in the tables' column order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Small,
    Cow,
    File,
    Thp,
    ThpCow,
    Zero,
    Hugetlb,
    HugetlbCow,
}

const KINDS: [Kind; 8] = [
    Kind::Small,
    Kind::Cow,
    Kind::File,
    Kind::Thp,
    Kind::ThpCow,
    Kind::Zero,
    Kind::Hugetlb,
    Kind::HugetlbCow,
];

impl Kind {
    fn fields(self) -> &'static str {
        match self {
            Kind::Small => "",
            Kind::Cow => ", cow: true",
            Kind::File => ", file: true",
            Kind::Thp => ", thp: true",
            Kind::ThpCow => ", thp: true, cow: true",
            Kind::Zero => ", thp: true, zero: true",
            Kind::Hugetlb => ", hugetlb: true",
            Kind::HugetlbCow => ", hugetlb: true, cow: true",
        }
    }

    fn value(self) -> u64 {
        if self == Kind::Zero {
            0
        } else {
            VALUE
        }
    }

    /// Mapped read-only at the start (a write copies, or faults).
    fn read_only(self) -> bool {
        matches!(
            self,
            Kind::Cow | Kind::ThpCow | Kind::Zero | Kind::HugetlbCow
        )
    }
}

const VALUE: u64 = 0x5a;
const WRITTEN: u64 = 0x99;

// ---------------------------------------------------------------------------
// The specification.

/// Every action on every kind, as the run starts (the base matrix).
#[rustfmt::skip]
const MATRIX: &[(&str, [Cell; 8])] = &[
    //                  small  cow    file   thp    thp+cow zero  hugetlb hugetlb+cow
    ("cpu read",       [Ok,    Ok,    Ok,    Ok,    Ok,    Ok,    Ok,    Ok   ]),
    ("cpu write",      [Ok,    Ok,    Ok,    Ok,    Ok,    Ok,    Ok,    Run  ]),
    ("munmap",         [Ok,    Ok,    Ok,    Ok,    Ok,    Run,   Run,   Run  ]),
    ("madv-dontneed",  [Ok,    Ok,    Ok,    Ok,    Ok,    Run,   Parse, Parse]),
    ("munmap 2m",      [Ok,    Ok,    Ok,    Ok,    Ok,    Ok,    Ok,    Ok   ]),
    ("exit",           [Ok,    Ok,    Ok,    Ok,    Ok,    Ok,    Ok,    Ok   ]),
    ("ksm-wrprotect",  [Ok,    Ok,    Run,   Run,   Run,   Run,   Run,   Run  ]),
    ("writeback",      [Ok,    Run,   Ok,    Run,   Run,   Run,   Run,   Run  ]),
    ("dax-writeback",  [Ok,    Run,   Ok,    Run,   Run,   Run,   Run,   Run  ]),
    ("mprotect ro",    [Ok,    Ok,    Ok,    Ok,    Ok,    Run,   Ok,    Ok   ]),
    ("fork",           [Run,   Run,   Run,   Run,   Run,   Run,   Ok,    Ok   ]),
    ("split",          [Parse, Parse, Parse, Ok,    Parse, Ok,    Parse, Parse]),
    ("madv-free",      [Ok,    Parse, Parse, Parse, Parse, Parse, Parse, Parse]),
    ("collapse",       [Ok,    Parse, Parse, Parse, Parse, Parse, Parse, Parse]),
    ("mremap",         [Ok,    Ok,    Ok,    Parse, Parse, Parse, Parse, Parse]),
    ("reclaim",        [Ok,    Parse, Ok,    Parse, Parse, Parse, Parse, Parse]),
    ("migrate",        [Ok,    Parse, Ok,    Parse, Parse, Parse, Ok,    Parse]),
    ("numa-hint",      [Ok,    Run,   Ok,    Ok,    Parse, Parse, Parse, Parse]),
    ("dev read",       [Ok,    Ok,    Ok,    Ok,    Ok,    Ok,    Ok,    Ok   ]),
    ("dev write",      [Ok,    Ok,    Ok,    Ok,    Ok,    Ok,    Ok,    Ok   ]),
];

/// `ksm-merge P Q`: rows are P's kind, columns Q's. Q is made a KSM page
/// first (`ksm-wrprotect Q`) where that is implemented (small, cow); the
/// other kinds are merged into as they are. Both pages hold the same word
/// at the same offset, so a merge is due wherever it is implemented.
#[rustfmt::skip]
const MERGE: &[(Kind, [Cell; 8])] = &[
    //                  small  cow    file   thp    thp+cow zero  hugetlb hugetlb+cow
    (Kind::Small,      [Ok,    Ok,    Run,   Run,   Run,   Run,   Run,   Run  ]),
    (Kind::Cow,        [Ok,    Ok,    Run,   Run,   Run,   Run,   Run,   Run  ]),
    (Kind::File,       [Run,   Run,   Run,   Run,   Run,   Run,   Run,   Run  ]),
    (Kind::Thp,        [Run,   Run,   Run,   Run,   Run,   Run,   Run,   Run  ]),
    (Kind::ThpCow,     [Run,   Run,   Run,   Run,   Run,   Run,   Run,   Run  ]),
    (Kind::Zero,       [Run,   Run,   Run,   Run,   Run,   Run,   Run,   Run  ]),
    (Kind::Hugetlb,    [Run,   Run,   Run,   Run,   Run,   Run,   Run,   Run  ]),
    (Kind::HugetlbCow, [Run,   Run,   Run,   Run,   Run,   Run,   Run,   Run  ]),
];

/// A state a page reaches during a run: the steps that lead there (`{P}`
/// is the page), and every action in it.
struct State {
    name: &'static str,
    prep: &'static [&'static str],
    matrix: &'static [(&'static str, [Cell; 8])],
}

#[rustfmt::skip]
const STATES: &[State] = &[
    State {
        // khugepaged made the small page part of a PMD-mapped THP.
        name: "after collapse",
        prep: &["cpu0: collapse {P}"],
        matrix: &[
            //                  small  cow    file   thp    thp+cow zero  hugetlb hugetlb+cow
            ("cpu read",       [Ok,    NA,    NA,    NA,    NA,    NA,    NA,    NA   ]),
            ("cpu write",      [Ok,    NA,    NA,    NA,    NA,    NA,    NA,    NA   ]),
            ("munmap",         [Ok,    NA,    NA,    NA,    NA,    NA,    NA,    NA   ]),
            ("madv-dontneed",  [Ok,    NA,    NA,    NA,    NA,    NA,    NA,    NA   ]),
            ("munmap 2m",      [Ok,    NA,    NA,    NA,    NA,    NA,    NA,    NA   ]),
            ("exit",           [Ok,    NA,    NA,    NA,    NA,    NA,    NA,    NA   ]),
            ("ksm-wrprotect",  [Run,   NA,    NA,    NA,    NA,    NA,    NA,    NA   ]),
            ("writeback",      [Run,   NA,    NA,    NA,    NA,    NA,    NA,    NA   ]),
            ("dax-writeback",  [Run,   NA,    NA,    NA,    NA,    NA,    NA,    NA   ]),
            ("mprotect ro",    [Ok,    NA,    NA,    NA,    NA,    NA,    NA,    NA   ]),
            ("fork",           [Run,   NA,    NA,    NA,    NA,    NA,    NA,    NA   ]),
            ("split",          [Parse, NA,    NA,    NA,    NA,    NA,    NA,    NA   ]),
            ("madv-free",      [Run,   NA,    NA,    NA,    NA,    NA,    NA,    NA   ]),
            ("collapse",       [Run,   NA,    NA,    NA,    NA,    NA,    NA,    NA   ]),
            ("mremap",         [Run,   NA,    NA,    NA,    NA,    NA,    NA,    NA   ]),
            ("reclaim",        [Run,   NA,    NA,    NA,    NA,    NA,    NA,    NA   ]),
            ("migrate",        [Run,   NA,    NA,    NA,    NA,    NA,    NA,    NA   ]),
            ("numa-hint",      [Ok,    NA,    NA,    NA,    NA,    NA,    NA,    NA   ]),
            ("dev read",       [Ok,    NA,    NA,    NA,    NA,    NA,    NA,    NA   ]),
            ("dev write",      [Ok,    NA,    NA,    NA,    NA,    NA,    NA,    NA   ]),
        ],
    },
    State {
        // Swapped out (a swap entry), or a file page dropped from the mapping (none).
        name: "after reclaim",
        prep: &["cpu0: reclaim {P}"],
        matrix: &[
            //                  small  cow    file   thp    thp+cow zero  hugetlb hugetlb+cow
            ("cpu read",       [Run,   NA,    Run,   NA,    NA,    NA,    NA,    NA   ]),
            ("cpu write",      [Run,   NA,    Run,   NA,    NA,    NA,    NA,    NA   ]),
            ("munmap",         [Ok,    NA,    Run,   NA,    NA,    NA,    NA,    NA   ]),
            ("madv-dontneed",  [Ok,    NA,    Run,   NA,    NA,    NA,    NA,    NA   ]),
            ("munmap 2m",      [Ok,    NA,    Run,   NA,    NA,    NA,    NA,    NA   ]),
            ("exit",           [Ok,    NA,    Ok,    NA,    NA,    NA,    NA,    NA   ]),
            ("ksm-wrprotect",  [Run,   NA,    Run,   NA,    NA,    NA,    NA,    NA   ]),
            ("writeback",      [Run,   NA,    Run,   NA,    NA,    NA,    NA,    NA   ]),
            ("dax-writeback",  [Run,   NA,    Run,   NA,    NA,    NA,    NA,    NA   ]),
            ("mprotect ro",    [Run,   NA,    Run,   NA,    NA,    NA,    NA,    NA   ]),
            ("fork",           [Run,   NA,    Run,   NA,    NA,    NA,    NA,    NA   ]),
            ("split",          [Parse, NA,    Parse, NA,    NA,    NA,    NA,    NA   ]),
            ("madv-free",      [Ok,    NA,    Parse, NA,    NA,    NA,    NA,    NA   ]),
            ("collapse",       [Run,   NA,    Parse, NA,    NA,    NA,    NA,    NA   ]),
            ("mremap",         [Run,   NA,    Run,   NA,    NA,    NA,    NA,    NA   ]),
            ("reclaim",        [Run,   NA,    Run,   NA,    NA,    NA,    NA,    NA   ]),
            ("migrate",        [Run,   NA,    Run,   NA,    NA,    NA,    NA,    NA   ]),
            ("numa-hint",      [Run,   NA,    Run,   NA,    NA,    NA,    NA,    NA   ]),
            ("dev read",       [Ok,    NA,    Ok,    NA,    NA,    NA,    NA,    NA   ]),
            ("dev write",      [Ok,    NA,    Ok,    NA,    NA,    NA,    NA,    NA   ]),
        ],
    },
    State {
        // Mapped again, to another frame.
        name: "after migrate",
        prep: &["cpu0: migrate {P}"],
        matrix: &[
            //                  small  cow    file   thp    thp+cow zero  hugetlb hugetlb+cow
            ("cpu read",       [Ok,    NA,    Ok,    NA,    NA,    NA,    NA,    NA   ]),
            ("cpu write",      [Ok,    NA,    Ok,    NA,    NA,    NA,    NA,    NA   ]),
            ("munmap",         [Ok,    NA,    Ok,    NA,    NA,    NA,    NA,    NA   ]),
            ("madv-dontneed",  [Ok,    NA,    Ok,    NA,    NA,    NA,    NA,    NA   ]),
            ("munmap 2m",      [Ok,    NA,    Ok,    NA,    NA,    NA,    NA,    NA   ]),
            ("exit",           [Ok,    NA,    Ok,    NA,    NA,    NA,    NA,    NA   ]),
            ("ksm-wrprotect",  [Ok,    NA,    Run,   NA,    NA,    NA,    NA,    NA   ]),
            ("writeback",      [Ok,    NA,    Ok,    NA,    NA,    NA,    NA,    NA   ]),
            ("dax-writeback",  [Ok,    NA,    Ok,    NA,    NA,    NA,    NA,    NA   ]),
            ("mprotect ro",    [Ok,    NA,    Ok,    NA,    NA,    NA,    NA,    NA   ]),
            ("fork",           [Run,   NA,    Run,   NA,    NA,    NA,    NA,    NA   ]),
            ("split",          [Parse, NA,    Parse, NA,    NA,    NA,    NA,    NA   ]),
            ("madv-free",      [Ok,    NA,    Parse, NA,    NA,    NA,    NA,    NA   ]),
            ("collapse",       [Ok,    NA,    Parse, NA,    NA,    NA,    NA,    NA   ]),
            ("mremap",         [Ok,    NA,    Ok,    NA,    NA,    NA,    NA,    NA   ]),
            ("reclaim",        [Ok,    NA,    Ok,    NA,    NA,    NA,    NA,    NA   ]),
            ("migrate",        [Ok,    NA,    Ok,    NA,    NA,    NA,    NA,    NA   ]),
            ("numa-hint",      [Ok,    NA,    Ok,    NA,    NA,    NA,    NA,    NA   ]),
            ("dev read",       [Ok,    NA,    Ok,    NA,    NA,    NA,    NA,    NA   ]),
            ("dev write",      [Ok,    NA,    Ok,    NA,    NA,    NA,    NA,    NA   ]),
        ],
    },
    State {
        // Gone: no PTE (and, to Linux, no VMA). A THP's page: the THP
        // split, its other 511 pages mapped by PTEs.
        name: "after munmap",
        prep: &["cpu0: munmap {P}"],
        matrix: &[
            //                  small  cow    file   thp    thp+cow zero  hugetlb hugetlb+cow
            ("cpu read",       [Run,   Run,   Run,   Run,   Run,   NA,    NA,    NA   ]),
            ("cpu write",      [Run,   Run,   Run,   Run,   Run,   NA,    NA,    NA   ]),
            ("munmap",         [Run,   Run,   Run,   Run,   Run,   NA,    NA,    NA   ]),
            ("madv-dontneed",  [Run,   Run,   Run,   Run,   Run,   NA,    NA,    NA   ]),
            ("munmap 2m",      [Run,   Run,   Run,   Ok,    Ok,    NA,    NA,    NA   ]),
            ("exit",           [Ok,    Ok,    Ok,    Ok,    Ok,    NA,    NA,    NA   ]),
            ("ksm-wrprotect",  [Run,   Run,   Run,   Run,   Run,   NA,    NA,    NA   ]),
            ("writeback",      [Run,   Run,   Run,   Run,   Run,   NA,    NA,    NA   ]),
            ("dax-writeback",  [Run,   Run,   Run,   Run,   Run,   NA,    NA,    NA   ]),
            ("mprotect ro",    [Run,   Run,   Run,   Run,   Run,   NA,    NA,    NA   ]),
            ("fork",           [Run,   Run,   Run,   Run,   Run,   NA,    NA,    NA   ]),
            ("split",          [Parse, Parse, Parse, Run,   Parse, NA,    NA,    NA   ]),
            ("madv-free",      [Run,   Parse, Parse, Parse, Parse, NA,    NA,    NA   ]),
            ("collapse",       [Run,   Parse, Parse, Parse, Parse, NA,    NA,    NA   ]),
            ("mremap",         [Run,   Run,   Run,   Parse, Parse, NA,    NA,    NA   ]),
            ("reclaim",        [Run,   Parse, Run,   Parse, Parse, NA,    NA,    NA   ]),
            ("migrate",        [Run,   Parse, Run,   Parse, Parse, NA,    NA,    NA   ]),
            ("numa-hint",      [Run,   Run,   Run,   Run,   Parse, NA,    NA,    NA   ]),
            ("dev read",       [Ok,    Ok,    Ok,    Ok,    Ok,    NA,    NA,    NA   ]),
            ("dev write",      [Ok,    Ok,    Ok,    Ok,    Ok,    NA,    NA,    NA   ]),
        ],
    },
    State {
        // A private writable copy mapped by a PTE (a THP COW falls back to
        // 512 small copies; the huge zero page is split first).
        name: "after a COW write",
        prep: &["cpu0: write {P} 0x77"],
        matrix: &[
            //                  small  cow    file   thp    thp+cow zero  hugetlb hugetlb+cow
            ("cpu read",       [NA,    Ok,    NA,    NA,    Ok,    Ok,    NA,    NA   ]),
            ("cpu write",      [NA,    Ok,    NA,    NA,    Ok,    Ok,    NA,    NA   ]),
            ("munmap",         [NA,    Ok,    NA,    NA,    Ok,    Ok,    NA,    NA   ]),
            ("madv-dontneed",  [NA,    Ok,    NA,    NA,    Ok,    Ok,    NA,    NA   ]),
            ("munmap 2m",      [NA,    Ok,    NA,    NA,    Ok,    Ok,    NA,    NA   ]),
            ("exit",           [NA,    Ok,    NA,    NA,    Ok,    Ok,    NA,    NA   ]),
            ("ksm-wrprotect",  [NA,    Ok,    NA,    NA,    Ok,    Ok,    NA,    NA   ]),
            ("writeback",      [NA,    Ok,    NA,    NA,    Ok,    Ok,    NA,    NA   ]),
            ("dax-writeback",  [NA,    Ok,    NA,    NA,    Ok,    Ok,    NA,    NA   ]),
            ("mprotect ro",    [NA,    Ok,    NA,    NA,    Ok,    Ok,    NA,    NA   ]),
            ("fork",           [NA,    Run,   NA,    NA,    Run,   Run,   NA,    NA   ]),
            ("split",          [NA,    Parse, NA,    NA,    Parse, Run,   NA,    NA   ]),
            ("madv-free",      [NA,    Parse, NA,    NA,    Parse, Parse, NA,    NA   ]),
            ("collapse",       [NA,    Parse, NA,    NA,    Parse, Parse, NA,    NA   ]),
            ("mremap",         [NA,    Ok,    NA,    NA,    Parse, Parse, NA,    NA   ]),
            ("reclaim",        [NA,    Parse, NA,    NA,    Parse, Parse, NA,    NA   ]),
            ("migrate",        [NA,    Parse, NA,    NA,    Parse, Parse, NA,    NA   ]),
            ("numa-hint",      [NA,    Ok,    NA,    NA,    Parse, Parse, NA,    NA   ]),
            ("dev read",       [NA,    Ok,    NA,    NA,    Ok,    Ok,    NA,    NA   ]),
            ("dev write",      [NA,    Ok,    NA,    NA,    Ok,    Ok,    NA,    NA   ]),
        ],
    },
];

// ---------------------------------------------------------------------------
// Generating and running a cell.

/// The page the actions work on, and the KSM page of `ksm-merge` (another
/// 2 MiB region, the same offset in its page).
const VA_P: u64 = 0x7f00_0020_3010;
const VA_Q: u64 = 0x7f00_0060_5010;
/// mremap's destination: an address nothing maps (another 2 MiB region).
const VA_M: u64 = 0x7f00_00a0_7010;

/// A scenario and the line of its action.
struct Generated {
    src: String,
    action_line: usize,
    /// The device access after the action (line), if any.
    after: Option<&'static str>,
}

fn thread_action(action: &str) -> String {
    match action {
        "cpu read" => "cpu0: read addrP".into(),
        "cpu write" => format!("cpu0: write addrP {WRITTEN:#x}"),
        "dev read" => "dev0: read addrP".into(),
        "dev write" => format!("dev0: write addrP {WRITTEN:#x}"),
        "mprotect ro" => "cpu0: mprotect addrP ro".into(),
        "ksm-merge" => "cpu0: ksm-merge addrP addrQ".into(),
        "mremap" => "cpu0: mremap addrP addrM".into(),
        // the whole 2 MiB region from its first page (see `va_p`)
        "munmap 2m" => "cpu0: munmap addrP 512".into(),
        "exit" => "cpu0: exit".into(),
        a => format!("cpu0: {a} addrP"),
    }
}

/// What the device does after the action, to see its effect: a write
/// where the action write-protects, nothing where a device access would
/// change what is checked (MADV_FREE's clean, old PTE), a read elsewhere.
fn after(action: &str) -> Option<&'static str> {
    match action {
        "ksm-wrprotect" | "writeback" | "dax-writeback" | "mprotect ro" | "fork" | "ksm-merge" => {
            Some("dev0: write addrP 0x66")
        }
        "madv-free" => None,
        _ => Some("dev0: read addrP"),
    }
}

/// addrP's address: [`VA_P`], or for `munmap 2m` the same word in its 2 MiB
/// region's first page (a huge page is unmapped whole, from its first).
fn va_p(action: &str) -> u64 {
    if action == "munmap 2m" {
        VA_P & !0x1f_f000
    } else {
        VA_P
    }
}

fn generate(p: Kind, q: Option<Kind>, prep: &[String], action: &str) -> Generated {
    let mut src = format!(
        "name: matrix\nabout: generated by tests/action_matrix.rs\npages:\n  addrP: {{ va: {:#x}, value: {:#x}{} }}\n",
        va_p(action),
        p.value(),
        p.fields()
    );
    if let Some(q) = q {
        src += &format!(
            "  addrQ: {{ va: {VA_Q:#x}, value: {:#x}{} }}\n",
            q.value(),
            q.fields()
        );
    }
    if action == "mremap" {
        src += &format!("  addrM: {{ va: {VA_M:#x}, absent: true }}\n");
    }
    src += "timeline:\n";
    let mut steps: Vec<String> = Vec::new();
    if !prep.is_empty() {
        steps.push("dev0: read addrP".into());
        steps.extend(prep.iter().cloned());
    }
    steps.push("dev0: read addrP".into()); // the frame before the action
    let action_index = steps.len();
    steps.push(thread_action(action));
    let after = after(action);
    steps.extend(after.map(str::to_string));
    let first = src.lines().count() + 1;
    for s in &steps {
        src += &format!("  - {{ {s} }}\n");
    }
    src += "expect: { always: clean }\n";
    Generated {
        src,
        action_line: first + action_index,
        after,
    }
}

enum Outcome {
    Parse(ScenarioError),
    Run { line: usize, msg: String },
    Done(Box<RunReport>),
}

fn outcome(src: &str) -> Outcome {
    let s = match Scenario::parse(Path::new("matrix.yaml"), src) {
        Err(e) => return Outcome::Parse(e),
        std::result::Result::Ok(s) => s,
    };
    match run(&s, &RunOptions::policy(Policy::Always)) {
        std::result::Result::Ok(r) => Outcome::Done(Box::new(r)),
        Err(RunError::Timeline { line, msg, .. }) => Outcome::Run { line, msg },
        Err(e) => panic!("a run failed outside its timeline: {e}\n{src}"),
    }
}

/// The word an error message must name for `action`.
fn verb(action: &str) -> &str {
    match action {
        "cpu read" => "CPU read",
        "cpu write" => "CPU write",
        "mprotect ro" => "mprotect",
        "munmap 2m" => "munmap",
        a => a,
    }
}

/// The context an effect is judged in.
struct Seen<'a> {
    r: &'a RunReport,
    kind: Kind,
    /// The prepared state ("" at the start).
    state: &'a str,
    action_line: usize,
    /// The device read just before the action: frame and value (None: a fault).
    before: Option<(u64, u64)>,
    /// The device access after the action.
    after: Option<&'a shootdown::sim::DevRecord>,
}

/// Check that an `Ok` cell did what Linux does; Err says what is missing.
fn effect(action: &str, c: &Seen) -> Result<(), String> {
    let v = c.r.view_of("addrP").ok_or("no final view of addrP")?;
    let leaf = v.leaf;
    let frame = leaf.map(|l| l.pfn);
    let before_frame = c.before.map(|b| b.0);
    let before_value = c.before.map(|b| b.1);
    let check = |ok: bool, what: &str| {
        if ok {
            std::result::Result::Ok(())
        } else {
            Err(format!("{what} (final view {v:?})"))
        }
    };
    let after_faults = |want: bool| match c.after {
        Some(d) if d.fault == want => std::result::Result::Ok(()),
        Some(d) => Err(format!(
            "the device access after the action {} (it should {})",
            if d.fault { "faulted" } else { "went through" },
            if want { "fault" } else { "go through" }
        )),
        None => Err("no device access after the action".into()),
    };
    const A: u64 = 1 << 5;
    const D: u64 = 1 << 6;
    let writable = leaf.is_some_and(|l| l.writable);
    match action {
        "cpu read" => {
            let loaded = c.r.slots.iter().any(|s| {
                s.line == c.action_line && s.lines.iter().any(|l| l.text.ends_with(": load"))
            });
            check(loaded, "the CPU did not load")?;
            check(frame == before_frame, "the read moved the page")?;
            after_faults(false)
        }
        "cpu write" => {
            check(
                v.value == Some(WRITTEN),
                "the CPU's value is not in the page",
            )?;
            check(writable, "the page is not writable after the write")?;
            let copied = c.state.is_empty() && c.kind.read_only();
            check(
                (frame != before_frame) == copied,
                if copied {
                    "a write to a read-only shared page must copy it"
                } else {
                    "a write to a writable page must not move it"
                },
            )?;
            if copied && matches!(c.kind, Kind::ThpCow | Kind::Zero) {
                check(
                    leaf.is_some_and(|l| l.size == shootdown::mem::PageSize::Small),
                    "a THP COW fallback or zero-page split maps the copy with a PTE",
                )?;
            }
            after_faults(false)?;
            check(
                c.after.is_some_and(|d| d.value == WRITTEN),
                "the device does not read the CPU's value",
            )
        }
        "munmap" | "munmap 2m" | "exit" | "madv-dontneed" => {
            check(leaf.is_none() && v.entry == 0, "the page is still mapped")?;
            after_faults(true)
        }
        "ksm-wrprotect" | "writeback" | "dax-writeback" => {
            check(leaf.is_some() && !writable, "the page is still writable")?;
            check(v.entry & D == 0, "the PTE is still dirty")?;
            check(frame == before_frame, "the page moved")?;
            if action != "ksm-wrprotect" {
                let io = c.r.io.iter().any(|i| i.page == "addrP");
                check(io, "no I/O of the page")?;
            }
            after_faults(true)
        }
        "mprotect ro" | "fork" => {
            check(leaf.is_some() && !writable, "the page is still writable")?;
            after_faults(true)
        }
        "split" if c.kind == Kind::Zero => {
            check(
                leaf.is_some_and(|l| l.size == shootdown::mem::PageSize::Small && !l.writable),
                "the zero page is not mapped read-only by a PTE",
            )?;
            check(v.value == Some(0), "the split page does not read zeros")?;
            after_faults(false)
        }
        // an anonymous THP: a writable PTE for the same frame
        "split" => {
            check(
                leaf.is_some_and(|l| l.size == shootdown::mem::PageSize::Small && l.writable),
                "the THP's page is not mapped writable by a PTE",
            )?;
            check(frame == before_frame, "the split moved the page")?;
            check(v.value == before_value, "the split lost the value")?;
            after_faults(false)
        }
        // a swapped-out page: free_swap_and_cache drops the entry
        "madv-free" if c.state == "after reclaim" => {
            check(leaf.is_none() && v.entry == 0, "the swap entry is left")
        }
        "madv-free" => {
            check(
                leaf.is_some() && writable,
                "MADV_FREE leaves the page mapped",
            )?;
            check(v.entry & (A | D) == 0, "the PTE is not old and clean")
        }
        "collapse" => {
            check(
                leaf.is_some_and(|l| l.size == shootdown::mem::PageSize::Huge2M && l.writable),
                "the region is not mapped by a writable huge PMD",
            )?;
            check(v.value == before_value, "the huge page lost the value")?;
            after_faults(false)
        }
        "reclaim" => {
            check(leaf.is_none(), "the page is still mapped")?;
            let swap = c.kind != Kind::File;
            check(
                (v.entry != 0) == swap,
                if swap {
                    "an anonymous page must leave a swap entry"
                } else {
                    "a file page leaves no entry"
                },
            )?;
            check(
                c.r.io.iter().any(|i| i.page == "addrP"),
                "no pageout I/O of the page",
            )?;
            after_faults(true)
        }
        "numa-hint" => {
            check(
                leaf.is_none() && v.entry & 0x101 == 0x100,
                "the PTE is not a NUMA hinting entry (PROT_NONE)",
            )?;
            // a THP's hinting PMD (x86 PS set) holds the huge page's first
            // frame
            let mask = if v.entry & (1 << 7) != 0 { !0x1ff } else { !0 };
            check(
                v.entry >> 12 == before_frame.unwrap_or(0) & mask,
                "the hinting entry lost its frame",
            )?;
            after_faults(true)
        }
        "migrate" => {
            check(leaf.is_some(), "the page is not mapped again")?;
            check(frame != before_frame, "the page did not move")?;
            check(v.value == before_value, "the copy lost the value")?;
            after_faults(false)
        }
        "dev read" | "dev write" => {
            let d = (c.r.dev.iter())
                .filter(|d| d.page == "addrP")
                .nth(if c.state.is_empty() { 1 } else { 2 })
                .ok_or("no device access")?;
            let write = action == "dev write";
            let allowed = if write { writable } else { leaf.is_some() };
            check(
                d.fault != allowed,
                "the device access and the final mapping disagree",
            )?;
            if !d.fault {
                check(
                    d.pa >> 12 == frame.unwrap_or(0),
                    "the device used another frame",
                )?;
                let want = if write { Some(WRITTEN) } else { v.value };
                check(
                    Some(d.value) == want && v.value == want,
                    "the device and the CPU see different values",
                )?;
            } else {
                check(
                    v.value.is_none() || v.value == before_value,
                    "a faulted access changed the page",
                )?;
            }
            std::result::Result::Ok(())
        }
        "mremap" => {
            check(
                leaf.is_none() && v.entry == 0,
                "the old address is still mapped",
            )?;
            let m = c.r.view_of("addrM").ok_or("no final view of addrM")?;
            check(
                m.leaf.map(|l| l.pfn) == before_frame && m.value == before_value,
                "the new address does not map the page with its data",
            )?;
            check(
                m.leaf.map(|l| l.writable) == Some(!c.kind.read_only() || !c.state.is_empty()),
                "the moved entry changed its permission",
            )?;
            after_faults(true)
        }
        "ksm-merge" => {
            let q = c.r.view_of("addrQ").ok_or("no final view of addrQ")?;
            check(
                frame.is_some() && frame == q.leaf.map(|l| l.pfn),
                "P does not map Q's frame",
            )?;
            check(!writable, "the merged page is writable")?;
            after_faults(true)
        }
        a => Err(format!("no effect is specified for '{a}'")),
    }
}

/// Run one cell; Err(why) if it does not behave as its table says.
fn judge(p: Kind, q: Option<Kind>, state: &State, action: &str, want: Cell) -> Result<(), String> {
    let prep: Vec<String> = (state.prep.iter())
        .map(|s| s.replace("{P}", "addrP"))
        .collect();
    let cell = generate(p, q, &prep, action);
    let line = cell.action_line;
    let got = outcome(&cell.src);
    let verb = verb(action);
    let res = match (want, got) {
        (NA, _) => return std::result::Result::Ok(()),
        (Parse | Run, Outcome::Parse(e)) if e.line == line && e.msg.contains(verb) => {
            std::result::Result::Ok(())
        }
        (Parse | Run, Outcome::Parse(e)) => Err(format!(
            "parse error at the wrong line or without '{verb}': {e}"
        )),
        (Parse, _) => Err("the parser accepted it".to_string()),
        (Run, Outcome::Run { line: l, msg })
            if l == line && msg.contains(verb) && msg.contains("not modelled") =>
        {
            std::result::Result::Ok(())
        }
        (Run, Outcome::Run { line: l, msg }) => Err(format!(
            "run error at line {l}, not naming '{verb}' and what is not modelled: {msg}"
        )),
        (Run, Outcome::Done(r)) => Err(format!(
            "accepted and ran (a silent no-op?): {:?}",
            r.view_of("addrP")
        )),
        (Ok, Outcome::Done(r)) => {
            let dev: Vec<_> = r.dev.iter().filter(|d| d.page == "addrP").collect();
            let at = |i: usize| dev.get(i).copied();
            let (before_i, after_i) = if prep.is_empty() { (0, 1) } else { (1, 2) };
            let before = at(before_i)
                .filter(|d| !d.fault)
                .map(|d| (d.pa >> 12, d.value));
            let seen = Seen {
                r: &r,
                kind: p,
                state: if prep.is_empty() { "" } else { state.name },
                action_line: line,
                before,
                after: cell.after.and(at(after_i)),
            };
            let e = effect(action, &seen);
            match (e, r.as_expected()) {
                (Err(e), _) => Err(e),
                (std::result::Result::Ok(()), false) => Err(format!(
                    "not clean under always: {:?} {:?}",
                    r.verdict, r.findings
                )),
                _ => std::result::Result::Ok(()),
            }
        }
        (Ok, Outcome::Parse(e)) => Err(format!("rejected by the parser: {e}")),
        (Ok, Outcome::Run { line, msg }) => Err(format!("rejected at line {line}: {msg}")),
    };
    res.map_err(|e| {
        let q = q.map_or(String::new(), |q| format!(" into {q:?}"));
        let at = if prep.is_empty() { "" } else { state.name };
        format!(
            "{action} on {p:?}{q} {at} (expected {want:?}): {e}\n{}",
            cell.src
        )
    })
}

fn report(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} cells differ from the tables:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

const START: State = State {
    name: "at the start",
    prep: &[],
    matrix: MATRIX,
};

#[test]
fn every_action_on_every_kind() {
    let mut failures = Vec::new();
    for (action, cells) in MATRIX {
        for (k, want) in KINDS.iter().zip(cells) {
            if let Err(e) = judge(*k, None, &START, action, *want) {
                failures.push(e);
            }
        }
    }
    report(failures);
}

#[test]
fn ksm_merge_of_every_kind_into_every_kind() {
    let mut failures = Vec::new();
    for (p, cells) in MERGE {
        for (q, want) in KINDS.iter().zip(cells) {
            let prep: &'static [&'static str] = match q {
                Kind::Small | Kind::Cow => &["cpu0: ksm-wrprotect addrQ"],
                _ => &[],
            };
            let state = State {
                name: "after ksm-wrprotect of addrQ",
                prep,
                matrix: &[],
            };
            if let Err(e) = judge(*p, Some(*q), &state, "ksm-merge", *want) {
                failures.push(e);
            }
        }
    }
    report(failures);
}

#[test]
fn every_action_in_every_state_a_run_reaches() {
    let mut failures = Vec::new();
    for state in STATES {
        for (action, cells) in state.matrix {
            for (k, want) in KINDS.iter().zip(cells) {
                if let Err(e) = judge(*k, None, state, action, *want) {
                    failures.push(e);
                }
            }
        }
    }
    report(failures);
}

#[test]
fn the_tables_cover_every_action_and_state() {
    let actions: Vec<&str> = MATRIX.iter().map(|r| r.0).collect();
    assert_eq!(actions.len(), 20);
    for state in STATES {
        let here: Vec<&str> = state.matrix.iter().map(|r| r.0).collect();
        assert_eq!(
            here, actions,
            "{}: the same actions in the same order",
            state.name
        );
    }
    assert_eq!(MERGE.len(), KINDS.len());
    for ((k, _), want) in MERGE.iter().zip(KINDS) {
        assert_eq!(*k, want);
    }
}

// ---------------------------------------------------------------------------
// Combinations the tables do not show: ranges, races, several pages.

fn scenario(pages: &str, steps: &[&str]) -> (String, usize) {
    let mut src =
        format!("name: special\nabout: tests/action_matrix.rs\npages:\n{pages}timeline:\n");
    let first = src.lines().count() + 1;
    for s in steps {
        src += &format!("  - {{ {s} }}\n");
    }
    src += "expect: { always: clean }\n";
    (src, first)
}

fn done(src: &str) -> Box<RunReport> {
    match outcome(src) {
        Outcome::Done(r) => r,
        Outcome::Parse(e) => panic!("parse error {e}\n{src}"),
        Outcome::Run { line, msg } => panic!("run error at {line}: {msg}\n{src}"),
    }
}

/// The run stops at `line` with a message holding every one of `words`.
fn refused(src: &str, line: usize, words: &[&str]) {
    match outcome(src) {
        Outcome::Run { line: l, msg } => {
            assert_eq!(l, line, "{msg}\n{src}");
            for w in words {
                assert!(msg.contains(w), "'{w}' not in: {msg}\n{src}");
            }
        }
        Outcome::Parse(e) => panic!("parse error {e}\n{src}"),
        Outcome::Done(_) => panic!("accepted\n{src}"),
    }
}

/// The parser refuses it at `line` with a message holding every one of `words`.
fn refused_by_parser(src: &str, line: usize, words: &[&str]) {
    match outcome(src) {
        Outcome::Parse(e) => {
            assert_eq!(e.line, line, "{e}\n{src}");
            for w in words {
                assert!(e.msg.contains(w), "'{w}' not in: {e}\n{src}");
            }
        }
        Outcome::Run { line, msg } => panic!("run error at {line}: {msg}\n{src}"),
        Outcome::Done(_) => panic!("accepted\n{src}"),
    }
}

#[test]
fn munmap_of_part_of_a_huge_page_splits_a_thp_and_refuses_the_rest() {
    // The range starts at a small page and runs into a THP's region: the
    // THP is split (__split_huge_pmd) and its first page zapped. The THP's
    // first word looks like a present PTE (frame 3, P|RW): a zap that took
    // the huge page's data for a page table once cleared it and freed
    // frame 3 (the IOMMU's PASID table); the split fills the deposited table.
    let pages = "  addrS: { va: 0x7f00001ff000, value: 0x51 }\n  addrT: { va: 0x7f0000200000, value: 0x3003, thp: true }\n";
    let (src, _) = scenario(pages, &["cpu0: munmap addrS 2", "dev0: read addrT"]);
    match outcome(&src) {
        Outcome::Done(r) => {
            assert!(r.verdict.is_empty(), "{:?}\n{src}", r.findings);
            assert_eq!(r.view_of("addrT").unwrap().leaf, None, "{src}");
            let lines: Vec<&str> = (r.slots.iter())
                .flat_map(|s| s.lines.iter())
                .map(|l| l.text.as_str())
                .collect();
            assert!(
                lines.iter().any(|l| l.contains("split_populate")),
                "{lines:?}"
            );
        }
        _ => panic!("not run to its end\n{src}"),
    }
    // the huge zero page is split by its own action first
    let pages = "  addrZ: { va: 0x7f0000200000, value: 0, thp: true, zero: true }\n";
    let (src, first) = scenario(pages, &["cpu0: munmap addrZ"]);
    refused(&src, first, &["munmap", "part of the huge zero page"]);
    let pages = "  addrH: { va: 0x7f0000400000, value: 0x3003, hugetlb: true }\n";
    let (src, first) = scenario(pages, &["dev0: read addrH", "cpu0: munmap addrH"]);
    refused(&src, first + 1, &["munmap", "part of a hugetlb page"]);
    // a hugetlb page among small ones: its VMA is unmapped by itself
    let pages = "  addrS: { va: 0x7f00003ff000, value: 0x51 }\n  addrH: { va: 0x7f0000400000, value: 0x3003, hugetlb: true }\n";
    let (src, first) = scenario(pages, &["cpu0: munmap addrS 513"]);
    refused(&src, first, &["munmap", "hugetlb page among other pages"]);
    let pages = "  addrH: { va: 0x7f0000400000, value: 0x3003, hugetlb: true }\n  addrS: { va: 0x7f0000600000, value: 0x51 }\n";
    let (src, first) = scenario(pages, &["cpu0: munmap addrH 1024"]);
    refused(&src, first, &["munmap", "hugetlb range with other pages"]);
}

#[test]
fn munmap_of_a_range_skips_holes_and_regions_without_a_page_table() {
    // addrA and addrB in one page table, with holes; the range then runs
    // into a 2 MiB region that has no page table at all.
    let pages = "  addrA: { va: 0x7f00001f0000, value: 0xa0 }\n  addrB: { va: 0x7f00001fe008, value: 0xb0, cow: true }\n";
    let (src, _) = scenario(
        pages,
        &[
            "dev0: read addrA",
            "cpu0: munmap addrA 32",
            "dev0: read addrA",
            "dev1: read addrB",
        ],
    );
    let r = done(&src);
    for p in ["addrA", "addrB"] {
        assert_eq!(r.view_of(p).unwrap().leaf, None, "{p}");
        assert!(r.dev.iter().rfind(|d| d.page == p).unwrap().fault, "{p}");
    }
}

#[test]
fn munmap_clears_a_swap_entry_and_the_zero_pages_ptes() {
    let pages = "  addrR: { va: 0x7f0000000000, value: 0x30 }\n  addrZ: { va: 0x7f0000200000, value: 0, thp: true, zero: true }\n";
    let (src, _) = scenario(
        pages,
        &[
            "cpu0: reclaim addrR",
            "cpu0: munmap addrR",
            "cpu1: split addrZ",
            "cpu1: munmap addrZ 512",
        ],
    );
    let r = done(&src);
    let v = r.view_of("addrR").unwrap();
    assert_eq!((v.leaf, v.entry), (None, 0), "the swap entry is gone");
    let v = r.view_of("addrZ").unwrap();
    assert_eq!(
        (v.leaf, v.entry),
        (None, 0),
        "the zero page's PTEs are gone"
    );
    // The zero page is never freed: a write elsewhere still finds zeros.
}

#[test]
fn a_munmap_during_migration_leaves_the_page_unmapped() {
    // remove_migration_ptes replaces only its own migration entry.
    let pages = "  addrM: { va: 0x7f0000000000, value: 0x30 }\n";
    let (src, _) = scenario(
        pages,
        &[
            "cpu0: migrate addrM until end",
            "cpu1: munmap addrM",
            "cpu0: resume",
            "dev0: read addrM",
        ],
    );
    let r = done(&src);
    let v = r.view_of("addrM").unwrap();
    assert_eq!(
        (v.leaf, v.entry),
        (None, 0),
        "munmap's work undone by the remap"
    );
    assert!(r.dev.last().unwrap().fault);
}

#[test]
fn a_cpu_store_redirties_a_madv_free_page_so_reclaim_keeps_it() {
    // The CPU's walk sets D on a store, as the IOMMU's does for a device write.
    let pages = "  addrL: { va: 0x7f0000000000, value: 0x40 }\n";
    let (src, _) = scenario(
        pages,
        &[
            "cpu0: madv-free addrL",
            "cpu0: write addrL 0x41",
            "cpu0: reclaim addrL",
            "dev0: read addrL",
        ],
    );
    let r = done(&src);
    let v = r.view_of("addrL").unwrap();
    assert_eq!(v.value, Some(0x41), "the CPU's store was discarded: {v:?}");
    assert_eq!(r.dev.last().unwrap().value, 0x41);
    // Without the store the page is discarded.
    let (src, _) = scenario(pages, &["cpu0: madv-free addrL", "cpu0: reclaim addrL"]);
    let r = done(&src);
    assert_eq!(r.view_of("addrL").unwrap().leaf, None);
    assert!(r.io.is_empty(), "a discard writes nothing");
}

#[test]
fn ksm_merges_only_into_a_write_protected_other_page() {
    let pages = "  addrX: { va: 0x7f0000000000, value: 0x55 }\n  addrY: { va: 0x7f0000201000, value: 0x55 }\n";
    let (src, first) = scenario(pages, &["cpu0: ksm-merge addrY addrX"]);
    refused(
        &src,
        first,
        &["ksm-merge into a writable page", "ksm-wrprotect"],
    );
    let (src, first) = scenario(
        pages,
        &["cpu0: ksm-wrprotect addrX", "cpu0: ksm-merge addrX addrX"],
    );
    refused_by_parser(&src, first + 1, &["ksm-merge needs two different pages"]);
    let (src, first) = scenario(
        pages,
        &[
            "cpu0: ksm-wrprotect addrX",
            "cpu0: ksm-merge addrY addrX",
            "cpu0: ksm-merge addrY addrX",
        ],
    );
    refused(&src, first + 2, &["ksm-merge into", "already share"]);
    // A merged page is a KSM page: a write copies it, the other keeps it.
    let (src, _) = scenario(
        pages,
        &[
            "cpu0: ksm-wrprotect addrX",
            "cpu0: ksm-merge addrY addrX",
            "cpu1: write addrY 0x56",
        ],
    );
    let r = done(&src);
    let (x, y) = (r.view_of("addrX").unwrap(), r.view_of("addrY").unwrap());
    assert_eq!((x.value, y.value), (Some(0x55), Some(0x56)));
    assert_ne!(x.leaf.unwrap().pfn, y.leaf.unwrap().pfn);
}

#[test]
fn collapse_refuses_a_region_khugepaged_would_not_take() {
    let cases = [
        (
            "  addrB: { va: 0x7f0000001000, value: 0xb0, cow: true }\n",
            "shared with another process",
        ),
        (
            "  addrB: { va: 0x7f0000001000, value: 0xb0, file: true }\n",
            "shared file mapping",
        ),
    ];
    for (other, words) in cases {
        let pages = format!("  addrA: {{ va: 0x7f0000000000, value: 0xa0 }}\n{other}");
        let (src, first) = scenario(&pages, &["cpu0: collapse addrA"]);
        refused(&src, first, &["collapse", words]);
    }
    // A page munmapped in the region: a hole in the VMA.
    let pages = "  addrA: { va: 0x7f0000000000, value: 0xa0 }\n  addrB: { va: 0x7f0000001000, value: 0xb0 }\n";
    let (src, first) = scenario(pages, &["cpu0: munmap addrB", "cpu0: collapse addrA"]);
    refused(&src, first + 1, &["collapse", "unmapped since the start"]);
    // Only read-only pages (after ksm-wrprotect): khugepaged gives up.
    let pages = "  addrA: { va: 0x7f0000000000, value: 0xa0 }\n";
    let (src, first) = scenario(
        pages,
        &["cpu0: ksm-wrprotect addrA", "cpu0: collapse addrA"],
    );
    refused(&src, first + 1, &["collapse", "no writable page"]);
}

#[test]
fn a_write_to_a_write_protected_hugetlb_page_is_refused_before_any_change() {
    // It ran the THP COW fallback, which failed after clearing the PMD.
    let pages = "  addrH: { va: 0x7f0000400000, value: 0x70, hugetlb: true }\n";
    for prot in ["cpu0: mprotect addrH ro", "cpu0: fork addrH"] {
        let (src, first) = scenario(pages, &[prot, "cpu1: write addrH 0x71"]);
        refused(
            &src,
            first + 1,
            &["CPU write to a read-only hugetlb page", "hugetlb_cow"],
        );
    }
}

#[test]
fn a_page_below_mmap_min_addr_never_runs() {
    // The parser may refuse it (naming the page's line); if it does not,
    // setting up the machine refuses it.
    for va in ["0x0", "0x8", "0xf000"] {
        let (src, _) = scenario(
            &format!("  addrA: {{ va: {va}, value: 0xa0 }}\n"),
            &["dev0: read addrA"],
        );
        match Scenario::parse(Path::new("low.yaml"), &src) {
            Err(e) => assert_eq!(e.line, 4, "{e}"),
            std::result::Result::Ok(s) => {
                let e = run(&s, &RunOptions::policy(Policy::Seed))
                    .err()
                    .unwrap_or_else(|| panic!("{va} ran"));
                assert!(matches!(e, RunError::Setup { .. }), "{e}");
                let msg = e.to_string();
                assert!(
                    msg.contains("addrA") && msg.contains("mmap_min_addr"),
                    "{msg}"
                );
            }
        }
    }
}

#[test]
fn reclaim_or_migration_after_a_racing_munmap_maps_nothing_again() {
    // try_to_unmap_one finds no mapping under the PTL: no swap or migration
    // entry is written into the unmapped PTE, no reference dropped twice.
    let pages = "  addrR: { va: 0x7f0000000000, value: 0x30 }\n";
    for action in ["reclaim", "migrate"] {
        let (src, _) = scenario(
            pages,
            &[
                &format!("cpu0: {action} addrR until start"),
                "cpu1: munmap addrR",
                "cpu0: resume",
                "dev0: read addrR",
            ],
        );
        let r = done(&src);
        let v = r.view_of("addrR").unwrap();
        assert_eq!((v.leaf, v.entry), (None, 0), "{action}: {v:?}");
        assert!(r.dev.last().unwrap().fault, "{action}");
        assert!(r.verdict.is_empty(), "{action}: {:?}", r.findings);
    }
}

#[test]
fn two_racing_zero_page_splits_split_once() {
    let pages = "  addrZ: { va: 0x7f0000203000, value: 0, thp: true, zero: true }\n";
    let (src, _) = scenario(
        pages,
        &[
            "cpu0: split addrZ until split_start",
            "cpu1: split addrZ",
            "cpu0: resume",
            "dev0: read addrZ",
        ],
    );
    let r = done(&src);
    let v = r.view_of("addrZ").unwrap();
    let leaf = v.leaf.expect("the zero page is mapped by a PTE");
    assert_eq!(leaf.size, shootdown::mem::PageSize::Small);
    assert_eq!((v.value, r.dev.last().unwrap().value), (Some(0), 0));
}

/// Whatever runs, it ends in success, a parse error, a refusal, or a
/// scheduling error of the timeline itself: never an error of the memory or
/// the page tables (a path that read data as a table, or freed a frame
/// twice), never a panic.
fn sound(src: &str) -> Result<(), String> {
    // Errors of the timeline itself (a stop never reached, a lock held by a
    // thread the step does not run, a resume of a finished path).
    let timeline = [
        "without reaching checkpoint",
        "spins on a page-table lock",
        "waits for an rmap lock",
        "waits for its process's mmap_lock",
        "waits for a page lock",
        "waits for ksm_thread_mutex",
        "nothing to resume",
    ];
    match outcome(src) {
        Outcome::Done(r) if !r.as_expected() => Err(format!(
            "not clean under always: {:?} {:?}",
            r.verdict, r.findings
        )),
        Outcome::Run { msg, .. } => {
            let refusal = msg.contains("[mm]") && msg.contains("not modelled");
            if refusal || timeline.iter().any(|t| msg.contains(t)) {
                std::result::Result::Ok(())
            } else {
                Err(msg)
            }
        }
        _ => std::result::Result::Ok(()),
    }
}

const EVERY_CPU_ACTION: [&str; 18] = [
    "read addrP",
    "exit",
    "write addrP 0x99",
    "munmap addrP",
    "munmap addrP 2",
    "ksm-wrprotect addrP",
    "ksm-merge addrP addrQ",
    "writeback addrP",
    "dax-writeback addrP",
    "mprotect addrP ro",
    "fork addrP",
    "split addrP",
    "madv-free addrP",
    "madv-dontneed addrP 2",
    "collapse addrP",
    "reclaim addrP",
    "migrate addrP",
    "numa-hint addrP",
];

fn two_pages(kind: Kind) -> String {
    // addrR shares addrP's page table (or 2 MiB region) when both are small.
    let r = if matches!(kind, Kind::Small | Kind::Cow | Kind::File) {
        0x7f00_0020_4010u64
    } else {
        0x7f00_0080_4010
    };
    format!(
        "  addrP: {{ va: {VA_P:#x}, value: {:#x}{} }}\n  addrQ: {{ va: {VA_Q:#x}, value: {VALUE:#x} }}\n  addrR: {{ va: {r:#x}, value: {VALUE:#x} }}\n",
        kind.value(),
        kind.fields()
    )
}

#[test]
fn every_pair_of_actions_ends_in_success_or_a_refusal() {
    let mut failures = Vec::new();
    for kind in KINDS {
        let pages = two_pages(kind);
        for a in EVERY_CPU_ACTION {
            for b in EVERY_CPU_ACTION {
                let (a, b) = (format!("cpu0: {a}"), format!("cpu1: {b}"));
                let steps = ["cpu2: ksm-wrprotect addrQ", &a, &b, "dev0: read addrP"];
                let (src, _) = scenario(&pages, &steps);
                if let Err(e) = sound(&src) {
                    failures.push(format!("{e}\n{src}"));
                }
            }
        }
    }
    report(failures);
}

/// Each of `actions`, stopped at each of its checkpoints while each of
/// `meanwhile` runs on another CPU and the device writes, then resumed:
/// every run ends clean or in a refusal.
fn preempted_anywhere(
    kinds: &[Kind],
    pages: fn(Kind) -> String,
    actions: &[&str],
    meanwhile: &[&str],
) {
    use shootdown::mm::*;
    let checkpoints = |a: &str| -> Vec<&'static str> {
        let mut v = match a.split(' ').next().unwrap_or_default() {
            "write" => [
                CHECKPOINTS_WP_PAGE_COPY,
                CHECKPOINTS_THP_FALLBACK,
                CHECKPOINTS_ZERO_SPLIT,
            ]
            .concat(),
            "munmap" => [CHECKPOINTS_ZAP, CHECKPOINTS_UNMAP_HUGETLB].concat(),
            "madv-dontneed" => CHECKPOINTS_ZAP.to_vec(),
            "exit" => CHECKPOINTS_EXIT.to_vec(),
            "ksm-wrprotect" | "ksm-merge" => CHECKPOINTS_KSM.to_vec(),
            "writeback" => CHECKPOINTS_MKCLEAN.to_vec(),
            "mprotect" | "fork" => CHECKPOINTS_HUGETLB.to_vec(),
            "split" => [CHECKPOINTS_ZERO_SPLIT, &["split_populate"]].concat(),
            "madv-free" => CHECKPOINTS_MADV_FREE.to_vec(),
            "collapse" => CHECKPOINTS_COLLAPSE.to_vec(),
            "reclaim" => [CHECKPOINTS_RECLAIM, CHECKPOINTS_DISCARD].concat(),
            "migrate" => CHECKPOINTS_MIGRATE.to_vec(),
            "numa-hint" => CHECKPOINTS_HUGETLB.to_vec(),
            _ => vec![],
        };
        v.sort_unstable();
        v.dedup();
        v
    };
    let mut failures = Vec::new();
    for &kind in kinds {
        let pages = pages(kind);
        for a in actions {
            for c in checkpoints(a) {
                for b in meanwhile {
                    let (a, b) = (
                        format!("cpu0: {a} until {c}"),
                        format!("cpu1: {b}, dev0: write addrP 0x66"),
                    );
                    let steps = [
                        "cpu2: ksm-wrprotect addrQ, dev0: read addrP",
                        &a,
                        &b,
                        "cpu0: resume",
                        "dev0: read addrP",
                    ];
                    let (src, _) = scenario(&pages, &steps);
                    if let Err(e) = sound(&src) {
                        failures.push(format!("{e}\n{src}"));
                    }
                }
            }
        }
    }
    report(failures);
}

#[test]
fn a_path_preempted_at_any_checkpoint_survives_what_runs_meanwhile() {
    let meanwhile = [
        "write addrP 0x77",
        "munmap addrP 2",
        "collapse addrP",
        "reclaim addrP",
        "migrate addrP",
        "ksm-wrprotect addrP",
        "writeback addrP",
    ];
    let kinds = [
        Kind::Small,
        Kind::Cow,
        Kind::ThpCow,
        Kind::Zero,
        Kind::Hugetlb,
    ];
    preempted_anywhere(&kinds, two_pages, &EVERY_CPU_ACTION, &meanwhile);
}

/// The same for the munmap of a whole huge page (zap_huge_pmd,
/// __unmap_hugepage_range), addrP at its region's start, and the actions
/// that can change a huge PMD meanwhile.
#[test]
fn a_huge_munmap_preempted_at_any_checkpoint_survives_what_runs_meanwhile() {
    fn pages(kind: Kind) -> String {
        two_pages(kind).replacen(
            &format!("{VA_P:#x}"),
            &format!("{:#x}", VA_P & !0x1f_f000),
            1,
        )
    }
    let meanwhile = [
        "write addrP 0x77",
        "munmap addrP 512",
        "split addrP",
        "mprotect addrP ro",
        "fork addrP",
        "collapse addrR",
    ];
    let kinds = [
        Kind::Thp,
        Kind::ThpCow,
        Kind::Zero,
        Kind::Hugetlb,
        Kind::HugetlbCow,
    ];
    preempted_anywhere(&kinds, pages, &["munmap addrP 512"], &meanwhile);
}
