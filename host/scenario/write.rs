//! A scenario written back as YAML, in the bundled scenarios' style: what
//! `explore` writes for a schedule it found, so that `shootdown scenario`
//! replays it. The text parses back to the same scenario (a test checks it
//! for every bundled one).

use super::{Page, Scenario, Slot, PARAMS};
use crate::rtl::INJECT_NAMES;
use std::fmt::Write;

impl Scenario {
    /// This scenario as a scenario file: its timeline when it has one, else
    /// its programs.
    pub fn to_yaml(&self) -> String {
        let mut y = String::new();
        let _ = writeln!(y, "name: {}", self.name);
        let _ = writeln!(y, "about: |");
        for l in self.about.lines() {
            let _ = writeln!(y, "  {l}");
        }
        if let Some(p) = self.notify {
            let _ = writeln!(y, "notify: {p}");
        }
        if self.driver != Default::default() {
            let _ = writeln!(y, "driver: {}", self.driver);
        }
        if self.arch != Default::default() {
            let _ = writeln!(y, "arch: {}", self.arch);
        }
        if let Some(k) = self.paths.kernel {
            let _ = writeln!(y, "kernel: \"{k}\"");
        }
        let inject: Vec<&str> = INJECT_NAMES
            .iter()
            .filter(|(_, bit, _)| self.inject & bit != 0)
            .map(|(n, _, _)| *n)
            .collect();
        if !inject.is_empty() {
            let _ = writeln!(y, "inject: [{}]", inject.join(", "));
        }
        let defaults = super::Params::default();
        let params: Vec<String> = PARAMS
            .iter()
            .filter(|s| (s.get)(&self.params) != (s.get)(&defaults))
            .map(|s| match s.rule {
                super::Rule::Bool => format!("{}: {}", s.name, (s.get)(&self.params) != 0),
                _ => format!("{}: {}", s.name, (s.get)(&self.params)),
            })
            .collect();
        if !params.is_empty() {
            let _ = writeln!(y, "params: {{ {} }}", params.join(", "));
        }
        let _ = writeln!(y, "pages:");
        for p in &self.pages {
            let _ = writeln!(y, "  {}: {{ {} }}", p.name, page_fields(p, &self.pages));
        }
        if self.timeline.is_empty() {
            let _ = writeln!(y, "programs:");
            for p in &self.programs {
                let actions: Vec<&str> = p.actions.iter().map(|e| e.text.as_str()).collect();
                let _ = writeln!(y, "  {}: [{}]", p.thread, actions.join(", "));
            }
        } else {
            let _ = writeln!(y, "timeline:");
            for slot in &self.timeline {
                let _ = writeln!(y, "  - {}", step(slot));
            }
        }
        let mut defs = self.paths.scenario_defs().peekable();
        if defs.peek().is_some() {
            let _ = writeln!(y, "paths:");
            for d in defs {
                y.push_str(&d.to_yaml(2));
            }
        }
        let expect: Vec<String> = self
            .expect
            .iter()
            .map(|(p, v)| {
                if v.is_empty() {
                    format!("{p}: clean")
                } else {
                    let kinds: Vec<&str> = v.iter().map(|k| k.name()).collect();
                    format!("{p}: [{}]", kinds.join(", "))
                }
            })
            .collect();
        let _ = writeln!(y, "expect: {{ {} }}", expect.join(", "));
        y
    }
}

fn page_fields(p: &Page, pages: &[Page]) -> String {
    let mut f = vec![format!("va: {:#x}", p.va), format!("value: {:#x}", p.value)];
    for (on, name) in [
        (p.cow, "cow"),
        (p.thp, "thp"),
        (p.hugetlb, "hugetlb"),
        (p.zero, "zero"),
        (p.file, "file"),
        (p.absent, "absent"),
    ] {
        if on {
            f.push(format!("{name}: true"));
        }
    }
    if p.gigantic {
        let at = f
            .iter()
            .position(|x| x == "hugetlb: true")
            .expect("a gigantic page is hugetlb");
        f[at] = "hugetlb: 1G".into();
    }
    match (p.kernel, p.supervisor) {
        (true, false) => f.push("kernel: true".into()),
        (true, true) => f.push("kernel: supervisor".into()),
        _ => {}
    }
    if p.process != 0 {
        f.push(format!("process: {}", p.process));
    }
    if let Some(i) = p.shares {
        f.push(format!("shares: {}", pages[i].name));
    }
    f.join(", ")
}

fn step(slot: &Slot) -> String {
    let entries: Vec<String> = slot
        .entries
        .iter()
        .map(|e| format!("{}: {}", e.thread, e.text))
        .collect();
    format!("{{ {} }}", entries.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn every_bundled_scenario_reads_back_as_itself() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let mut n = 0;
        let files = (std::fs::read_dir(&dir).unwrap())
            .chain(std::fs::read_dir(dir.join("paths")).unwrap())
            .map(|e| e.unwrap().path());
        for p in files {
            if p.extension().is_none_or(|x| x != "yaml") {
                continue;
            }
            let s = Scenario::load(&p).unwrap();
            let back = Scenario::parse(&p, &s.to_yaml()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(back.pages, s.pages, "{}", p.display());
            assert_eq!(back.params, s.params, "{}", p.display());
            assert_eq!(back.driver, s.driver);
            assert_eq!(back.arch, s.arch);
            // the release and the scenario's own paths (their lines differ)
            assert_eq!(back.paths.kernel, s.paths.kernel, "{}", p.display());
            let own = |s: &Scenario| -> Vec<String> {
                s.paths.scenario_defs().map(|d| d.to_yaml(0)).collect()
            };
            assert_eq!(own(&back), own(&s), "{}", p.display());
            assert_eq!(back.inject, s.inject);
            assert_eq!(back.expect, s.expect);
            let programs = |s: &Scenario| -> Vec<_> {
                s.programs
                    .iter()
                    .map(|p| (p.thread, p.actions.clone()))
                    .collect()
            };
            assert_eq!(programs(&back), programs(&s), "{}", p.display());
            let steps = |s: &Scenario| -> Vec<Vec<super::super::Entry>> {
                s.timeline.iter().map(|t| t.entries.clone()).collect()
            };
            assert_eq!(steps(&back), steps(&s), "{}", p.display());
            n += 1;
        }
        assert!(n >= 10);
    }
}
