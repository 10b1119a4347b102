//! mremap of a hugetlb page (paths/move_hugetlb_page_tables.yaml, Linux
//! 5.16): the huge entry moves, the device's stale translation of the old
//! address reaches the moved page; the kernel release decides whether the
//! call exists at all; and a device write through the old address of any
//! moved page is the moved word's, not a lost one.

use shootdown::mm::Policy;
use shootdown::scenario::Scenario;
use shootdown::sim::{run, RunOptions, RunReport};
use std::path::Path;

fn load(rel: &str) -> Scenario {
    Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

fn parse(src: &str) -> Result<Scenario, String> {
    Scenario::parse(Path::new("s.yaml"), src).map_err(|e| e.to_string())
}

fn scenario(head: &str, pages: &str, timeline: &str) -> Result<Scenario, String> {
    parse(&format!(
        "name: t\nabout: t\n{head}pages:\n{pages}timeline:\n{timeline}expect: {{ seed: clean }}\n"
    ))
}

fn run_as(s: &Scenario, p: Policy) -> RunReport {
    run(s, &RunOptions::policy(p)).unwrap()
}

/// The bundled scenario: clean under every policy, the device's write
/// through its stale 2 MiB entry shows at the new address, and arch's
/// notifying CPU flush closes the windows no later than E does.
#[test]
fn a_hugetlb_page_moves_whole_and_the_stale_entry_reaches_it() {
    let s = load("scenarios/hugetlb-mremap.yaml");
    let worst = |r: &RunReport| r.windows.iter().map(|w| w.len(r.cycles)).max().unwrap();
    let mut windows = Vec::new();
    for p in Policy::ALL {
        let r = run_as(&s, p);
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        // the stale entry read the device's first write and took its second
        assert_eq!((r.dev[1].value, r.dev[1].fault), (0xa1, false), "{p}");
        assert_eq!(r.dev[1].pa, r.dev[0].pa, "{p}");
        // the old address faults after mremap returned; the new one has the
        // write made through the old one
        assert!(r.dev[3].fault, "{p}");
        assert_eq!((r.dev[4].page.as_str(), r.dev[4].value), ("addrN", 0xa2));
        assert_eq!(r.dev[4].pa, r.dev[0].pa, "{p}");
        assert_eq!(r.view_of("addrA").unwrap().leaf, None, "{p}");
        windows.push((p, worst(&r)));
    }
    let arch = windows.iter().find(|w| w.0 == Policy::Arch).unwrap().1;
    assert!(
        windows.iter().all(|w| w.1 >= arch && w.1 > 0),
        "{windows:?}"
    );
}

/// A 1 GiB hugetlb page moves by its PUD entry.
#[test]
fn a_1g_hugetlb_page_moves_by_its_pud() {
    let pages = "  addrA: { va: 0x7f0040216008, value: 0xa0, hugetlb: 1G }
  addrN: { va: 0x7f0080216008, absent: true }
";
    let s = scenario(
        "kernel: \"5.16\"\n",
        pages,
        "  - { dev0: read addrA }
  - { cpu0: mremap addrA addrN 262144 }
  - { dev0: read addrA }
  - { dev1: read addrN }
",
    )
    .unwrap();
    let before = run_as(
        &scenario("", pages, "  - { dev0: read addrA }\n").unwrap(),
        Policy::Seed,
    );
    let old = before.view_of("addrA").unwrap().leaf.unwrap();
    for p in Policy::ALL {
        let r = run_as(&s, p);
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        assert!(r.dev[1].fault, "{p}");
        assert_eq!((r.dev[2].value, r.dev[2].fault), (0xa0, false), "{p}");
        let new = r.view_of("addrN").unwrap().leaf.unwrap();
        assert_eq!(new.pfn, old.pfn, "{p}");
        assert_eq!(new.size, shootdown::mem::PageSize::Huge1G, "{p}");
    }
}

/// A hugetlb page moves whole, to the same offset in a huge page nothing
/// else of the process lies in.
#[test]
fn hugetlb_mremap_is_refused_where_it_is_not_whole() {
    let pages = "  addrA: { va: 0x7f0000000010, value: 0xa0, hugetlb: true }
  addrN: { va: 0x7f0000400010, absent: true }
";
    let err =
        |pages: &str, step: &str| scenario("", pages, &format!("  - {{ {step} }}\n")).unwrap_err();
    let e = err(pages, "cpu0: mremap addrA addrN");
    assert!(
        e.contains("s.yaml:") && e.contains("mremap moves it whole, 'mremap addrA addrN 512'"),
        "{e}"
    );
    let e = err(pages, "cpu0: mremap addrA addrN 262144");
    assert!(e.contains("'mremap addrA addrN 512'"), "{e}");
    let off = pages.replace("0x7f0000400010", "0x7f0000401010");
    let e = err(&off, "cpu0: mremap addrA addrN 512");
    assert!(
        e.contains("'addrN' is not at the offset")
            && e.contains("whose offset in its 2 MiB region is 0x10"),
        "{e}"
    );
    let crowded = format!("{pages}  addrB: {{ va: 0x7f0000500000, value: 0xb0 }}\n");
    let e = err(&crowded, "cpu0: mremap addrA addrN 512");
    assert!(
        e.contains("'addrB' lies in the 2 MiB region 'addrN' names"),
        "{e}"
    );
    // twice: the second finds no hugetlb VMA left at the old address
    let twice = scenario(
        "",
        pages,
        "  - { cpu0: mremap addrA addrN 512 }\n  - { cpu0: mremap addrA addrN 512 }\n",
    )
    .unwrap();
    let e = run(&twice, &RunOptions::policy(Policy::Seed))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("s.yaml:") && e.contains("nothing maps any more"),
        "{e}"
    );
}

/// Under a chosen release an mremap whose function came later is refused
/// at its line: by the parser for `kernel:`, by the run for `--kernel`. A
/// scenario's own version of the function is its to run.
#[test]
fn a_release_before_the_function_refuses_the_action() {
    let pages = "  addrA: { va: 0x7f0000000010, value: 0xa0, hugetlb: true }
  addrN: { va: 0x7f0000400010, absent: true }
";
    let step = "  - { dev0: read addrA }\n  - { cpu0: mremap addrA addrN 512 }\n";
    let e = scenario("kernel: \"5.15\"\n", pages, step).unwrap_err();
    assert!(
        e.starts_with("s.yaml:9: ")
            && e.contains("runs move_hugetlb_page_tables, which Linux 5.16 brought (550a7d60bd5e)")
            && e.contains("choose kernel 5.16 or later"),
        "{e}"
    );
    assert!(scenario("kernel: \"5.16\"\n", pages, step).is_ok());
    // with no release chosen the bundled paths run as they are
    assert!(scenario("", pages, step).is_ok());

    let release = |k: &str| k.parse().unwrap();
    let pmd = load("scenarios/mremap-pmd.yaml");
    let e = run(
        &pmd.clone().with_kernel(release("4.19")),
        &RunOptions::policy(Policy::Seed),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("mremap-pmd.yaml")
            && e.contains("line 34: ")
            && e.contains("runs move_normal_pmd, which Linux 4.20 brought")
            && e.contains("one by one"),
        "{e}"
    );
    assert!(run(
        &pmd.with_kernel(release("4.20")),
        &RunOptions::policy(Policy::Seed)
    )
    .is_ok());
    let pud = load("scenarios/mremap-pud-rmap-race.yaml").with_kernel(release("5.10"));
    let e = run(&pud, &RunOptions::policy(Policy::Seed))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("runs move_normal_pud, which Linux 5.11 brought"),
        "{e}"
    );

    // the scenario's own move_normal_pmd: a 4.15 backport is its to write
    let own = "paths:
  move_normal_pmd:
    follows: a backport
    steps:
      - start:
          - pmd = pmd_of(va)
          - new_pmd = pmd_alloc(to)
          - start start, end
      - move:
          - e = read(pmd)
          - set_pte pmd, 0, va
          - set_pte new_pmd, e, to
          - flush_tlb_range start, end
      - end: end start, end
";
    let small = "  addrA: { va: 0x7f0000000000, value: 0xa0 }
  addrN: { va: 0x7f0000400000, absent: true }
";
    let s = scenario(
        &format!("kernel: \"4.15\"\n{own}"),
        small,
        "  - { cpu0: mremap addrA addrN 512 }\n  - { dev0: read addrN }\n",
    )
    .unwrap();
    assert_eq!(run_as(&s, Policy::Seed).dev[0].value, 0xa0);
}

/// mremap of a small page while the device writes through its stale
/// translation of the old address: the write lands in the page the new
/// address maps, where the CPU and the device find it. It was called a
/// lost write ("nothing carried it back") until the checker learned that
/// mremap gives the word a second name.
#[test]
fn a_device_write_through_the_old_address_of_a_moved_page_is_not_lost() {
    let pages = "  addrA: { va: 0x7f0000000010, value: 0xa0 }
  addrN: { va: 0x7f0000400010, absent: true }
";
    let s = scenario(
        "",
        pages,
        "  - { dev0: write addrA 0xa1 }
  - { cpu0: mremap addrA addrN until move }
  - { dev0: write addrA 0xa2 }
  - { cpu0: resume }
  - { dev1: read addrN }
",
    )
    .unwrap();
    for p in Policy::ALL {
        let r = run_as(&s, p);
        assert!(r.verdict.is_empty(), "{p}: {:?}", r.findings);
        assert_eq!((r.dev[1].fault, r.dev[2].value), (false, 0xa2), "{p}");
    }
}
