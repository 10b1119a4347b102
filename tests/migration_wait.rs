//! A fault on a page under migration (`migration_entry_wait`): the CPU's
//! and the I/O page fault handler's fault waits for the page lock the
//! migration path holds (`lock_page` in paths/migrate_page.yaml) from
//! before its unmap to after its remap, then the access is retried and
//! finds the new page. Before, both were refused as not modelled, and
//! `explore numa-hint` left 3,176 schedules not judged.

use shootdown::explore::play::Rules;
use shootdown::explore::search::exhaustive;
use shootdown::mm::Policy;
use shootdown::scenario::Scenario;
use shootdown::sim::{run, RunOptions};
use std::path::Path;

#[path = "support/bundled.rs"]
mod support;

fn parse(body: &str) -> Scenario {
    Scenario::parse(
        Path::new("m.yaml"),
        &format!(
            "name: m\nabout: m\nparams: {{ mem_latency: 40, ats_latency: 150, cpu_step_cycles: 10, pri: 4 }}
pages:
  addrA: {{ va: 0x7f0000000010, value: 0xa0 }}
{body}expect: {{ seed: clean }}\n"
        ),
    )
    .unwrap()
}

/// scenarios/pri-migrate.yaml and, for a hugetlb page
/// (`migration_entry_wait_huge`), pri-hugetlb-migrate.yaml: the handler
/// waits for the migration's page lock, and the retry reads the new page.
#[test]
fn the_handler_waits_for_the_migration_and_the_retry_finds_the_new_page() {
    for (file, page, value, mask) in [
        ("pri-migrate.yaml", "addrA", 0xa0, !0xfff),
        ("pri-hugetlb-migrate.yaml", "addrH", 0x70, !0x1f_ffff),
    ] {
        let s = support::bundled(file);
        for p in Policy::ALL {
            let r = run(&s, &RunOptions::policy(p)).unwrap();
            assert!(r.verdict.is_empty(), "{file} {p}: {:?}", r.findings);
            let handler = support::handler_line(&r, 0);
            assert!(
                handler.ends_with("vma, migration, respond, responded -> Success"),
                "{file} {p}: {handler}"
            );
            let read = &r.dev[0];
            assert_eq!((read.value, read.fault), (value, false), "{file} {p}");
            let leaf = r.view_of(page).unwrap().leaf.unwrap();
            assert_eq!(leaf.pfn << 12, read.pa & mask, "{file} {p}: the new page");
        }
    }
}

#[test]
fn a_cpu_store_waits_for_the_migration_and_lands_in_the_new_page() {
    let s = parse(
        "timeline:
  - { cpu0: migrate addrA until end }
  - { cpu0: resume, cpu1: write addrA 0xa1 }
  - { dev0: read addrA }
",
    );
    for p in Policy::ALL {
        let r = run(&s, &RunOptions::policy(p)).unwrap();
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        assert_eq!(r.dev[0].value, 0xa1, "{p}");
        assert_eq!(r.view_of("addrA").unwrap().value, Some(0xa1), "{p}");
    }
}

/// A wait no thread of the step can end is the timeline's error, at its
/// line, for the CPU and for the worker.
#[test]
fn waiting_for_a_migration_that_does_not_run_is_an_error_naming_the_line() {
    let cpu = parse(
        "timeline:
  - { cpu0: migrate addrA until end }
  - { cpu1: write addrA 0xa1 }
",
    );
    let e = run(&cpu, &RunOptions::policy(Policy::Seed))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("m.yaml:8: cpu1 waits for a page lock held by cpu0")
            && e.contains("resume cpu0 in this step"),
        "{e}"
    );
    let worker = parse(
        "timeline:
  - { cpu0: migrate addrA until end }
  - { dev0: read addrA until page-request }
  - { iopf: resume }
",
    );
    let e = run(&worker, &RunOptions::policy(Policy::Seed))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("m.yaml:9: the kernel's I/O page fault handler")
            && e.contains("waits for a page lock held by cpu0"),
        "{e}"
    );
}

/// Every schedule of a migration raced by a CPU load and a device read
/// (whose Page Request the worker answers) is judged, and clean.
#[test]
fn every_schedule_of_a_fault_on_a_page_under_migration_is_judged() {
    let s = parse(
        "programs:
  cpu0: [migrate addrA]
  cpu1: [read addrA]
  dev0: [read addrA]
",
    );
    for p in [Policy::Seed, Policy::EndOnly] {
        let r = exhaustive(&s, p, Rules::default(), 1, 100_000, 2).unwrap();
        assert_eq!(r.unmodelled, 0, "{p}: {:?}", r.unmodelled_first);
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        assert!(r.schedules > 20, "{p}: {}", r.schedules);
    }
}

/// A CPU store to a hugetlb page under migration waits for the page lock
/// and lands in the new page; a load while the migration has the PMD
/// cleared under its lock spins on that lock. Every schedule of the three
/// is judged (the handler's and the CPU's fault on the cleared PMD were
/// refused before).
#[test]
fn faults_on_a_hugetlb_page_under_migration_wait_and_every_schedule_is_judged() {
    let huge = "  addrH: { va: 0x7f0000400010, value: 0x70, hugetlb: true }\n";
    let s = parse(&format!(
        "{huge}timeline:
  - {{ cpu0: migrate addrH until end }}
  - {{ cpu0: resume, cpu1: write addrH 0x71 }}
  - {{ dev0: read addrH }}
"
    ));
    for p in Policy::ALL {
        let r = run(&s, &RunOptions::policy(p)).unwrap();
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        assert_eq!(r.dev[0].value, 0x71, "{p}");
        assert_eq!(r.view_of("addrH").unwrap().value, Some(0x71), "{p}");
    }
    let s = parse(&format!(
        "{huge}programs:
  cpu0: [migrate addrH]
  cpu1: [read addrH]
  dev0: [read addrH]
"
    ));
    for p in [Policy::Seed, Policy::EndOnly] {
        let r = exhaustive(&s, p, Rules::default(), 1, 100_000, 2).unwrap();
        assert_eq!(r.unmodelled, 0, "{p}: {:?}", r.unmodelled_first);
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        assert!(r.schedules > 20, "{p}: {}", r.schedules);
    }
}
