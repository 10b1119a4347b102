//! `--kernel <release>` and a scenario's `kernel:`: the bundled paths as a
//! release has them. Each bug's scenario, run at the release of its fix,
//! gives the fixed verdicts; one release before, the bug's.

use shootdown::checker::Violation;
use shootdown::mm::lang::{self, Release};
use shootdown::mm::Policy;
use shootdown::scenario::Scenario;
use shootdown::sim::{run, RunOptions};
use std::collections::BTreeSet;
use std::path::Path;

fn load(rel: &str) -> Scenario {
    Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

fn release(s: &str) -> Release {
    s.parse().unwrap()
}

fn verdicts(s: &Scenario) -> Vec<(Policy, BTreeSet<Violation>)> {
    Policy::ALL
        .into_iter()
        .map(|p| (p, run(s, &RunOptions::policy(p)).unwrap().verdict))
        .collect()
}

/// The verdicts `s` expects, by policy.
fn expected(s: &Scenario) -> Vec<(Policy, BTreeSet<Violation>)> {
    Policy::ALL
        .into_iter()
        .map(|p| (p, s.expected(p).cloned().unwrap()))
        .collect()
}

#[test]
fn each_bug_at_its_fix_release_gives_the_fixed_verdicts() {
    // (the bug's scenario, the fix's release, the release before it, the
    // scenario of the fix)
    let cases = [
        (
            "scenarios/hugetlb-share-migrate.yaml",
            "4.19",
            "4.18",
            "scenarios/paths/hugetlb-share-migrate-4.19.yaml",
        ),
        (
            "scenarios/thp-numa-migrate.yaml",
            "4.20",
            "4.19",
            "scenarios/paths/thp-numa-migrate-4.20.yaml",
        ),
        (
            "scenarios/hugetlb-share-munmap.yaml",
            "5.16",
            "5.15",
            "scenarios/paths/hugetlb-share-munmap-5.16.yaml",
        ),
        (
            "scenarios/paths/mremap-clean-race.yaml",
            "4.19",
            "4.18",
            "scenarios/paths/mremap-clean-race-4.19.yaml",
        ),
    ];
    for (bug, fix, before, fixed) in cases {
        let (bug, fixed) = (load(bug), load(fixed));
        assert_ne!(expected(&bug), expected(&fixed), "{}", bug.name);
        let at_fix = bug.clone().with_kernel(release(fix));
        assert_eq!(verdicts(&at_fix), expected(&fixed), "{} at {fix}", bug.name);
        let at_before = bug.clone().with_kernel(release(before));
        assert_eq!(
            verdicts(&at_before),
            expected(&bug),
            "{} at {before}",
            bug.name
        );
        // the fixed scenario is the bug's with `kernel:` set
        assert_eq!(fixed.paths, at_fix.paths, "{}", fixed.name);
        assert_eq!(fixed.paths.kernel, Some(release(fix)));
        assert!(
            fixed.paths.scenario_defs().next().is_none(),
            "{}",
            fixed.name
        );
    }
}

#[test]
fn a_release_takes_each_functions_newest_version_at_or_before_it() {
    let s = load("scenarios/cow.yaml");
    let later = |k: &str| -> Vec<String> {
        let s = s.clone().with_kernel(release(k));
        (s.paths.later_versions().iter())
            .map(|(n, f)| format!("{n}={f}"))
            .collect()
    };
    assert!(later("4.15").is_empty());
    assert_eq!(
        later("4.19"),
        [
            "migrate_huge_page=paths/4.19/migrate_huge_page.yaml",
            "move_ptes=paths/4.19/move_ptes.yaml"
        ]
    );
    assert_eq!(later("6.6").len(), 5, "{:?}", later("6.6"));
    // a scenario's own move_ptes stays over the release's
    let (_, text) = (lang::BUNDLED.iter())
        .find(|(f, _)| *f == "paths/move_ptes.yaml")
        .unwrap();
    let mine = text.replacen("follows: ", "follows: mine, ", 1);
    let defs = lang::parse_file("mine.yaml", &mine).unwrap();
    let own = lang::Paths::with_at(Some(release("4.19")), defs);
    let moved = own.at_kernel(Some(release("5.16")));
    for p in [&own, &moved] {
        assert!(!p.later_versions().iter().any(|(n, _)| *n == "move_ptes"));
        let follows: Vec<&str> = p.scenario_defs().map(|d| d.follows.as_str()).collect();
        assert_eq!(follows.len(), 1);
        assert!(follows[0].starts_with("mine, "), "{follows:?}");
    }
    assert_eq!(
        moved.later_versions().len(),
        4,
        "{:?}",
        moved.later_versions()
    );
    // the report names the versions a run took
    let s = load("scenarios/hugetlb-share-munmap.yaml").with_kernel(release("5.16"));
    let r = run(&s, &RunOptions::policy(Policy::Arch)).unwrap();
    let text = shootdown::report::render(&s, &r);
    assert!(
        text.contains("kernel 5.16: the bundled paths as 5.16 has them: ")
            && text.contains("unmap_hugepage_range (paths/5.16/unmap_hugepage_range.yaml)"),
        "{text}"
    );
}

#[test]
fn a_kernel_key_that_is_not_a_release_is_an_error_at_its_line() {
    let src = |k: &str| {
        format!(
            "name: k\nabout: x\nkernel: {k}\npages:\n  addrA: {{ va: 0x7f0000000000 }}\ntimeline:\n  - {{ cpu0: read addrA }}\nexpect: {{ seed: clean }}\n"
        )
    };
    let parse = |k: &str| Scenario::parse(Path::new("k.yaml"), &src(k));
    for bad in ["v4.19", "\"4.019\"", "\"4\"", "\"3.10\""] {
        let e = parse(bad).unwrap_err().to_string();
        assert!(e.starts_with("k.yaml:3: kernel: "), "{bad}: {e}");
    }
    assert!(parse("\"3.10\"")
        .unwrap_err()
        .to_string()
        .contains("older than the bundled paths"));
    // quoted or not, 4.20 is 4.20
    for ok in ["\"4.20\"", "4.20"] {
        let s = parse(ok).unwrap();
        assert_eq!(s.paths.kernel, Some(release("4.20")), "{ok}");
    }
}

#[test]
fn explore_workers_run_the_release_the_coordinator_asks() {
    // The fork engine's worker processes load the file again: they must
    // get --kernel too, or they would explore the bug.
    let bug = load("scenarios/hugetlb-share-munmap.yaml");
    let exe = Path::new(env!("CARGO_BIN_EXE_shootdown"));
    let explore = |s: &Scenario| {
        let rules = shootdown::explore::play::Rules::default();
        shootdown::explore::fork::exhaustive(s, Policy::Arch, rules, 0, 10_000, 2, exe, None)
            .unwrap()
    };
    let before = explore(&bug);
    assert!(
        before.verdict.contains(&Violation::UseAfterFree),
        "{:?}",
        before.verdict
    );
    let fixed = explore(&bug.with_kernel(release("5.16")));
    assert!(fixed.verdict.is_empty(), "{:?}", fixed.verdict);
    assert_eq!(fixed.schedules, before.schedules);
}
