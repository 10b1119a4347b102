//! A found schedule as an ordinary scenario: its moves become a timeline
//! (one step each), and the timeline is shrunk while it still finds the
//! same thing: whole actions dropped (with their resumes), trailing steps
//! dropped (the drain runs what is left), consecutive steps of one CPU
//! thread merged, latencies halved. Every candidate is written as YAML,
//! read back and run, so the file explore writes is one that
//! `shootdown scenario` has already replayed to the same verdict.

use super::search::{Finding, Found};
use crate::mm::Policy;
use crate::scenario::{programs_of, Action, Entry, Scenario, Slot, ThreadRef};
use crate::sim::{run, RunOptions};
use std::path::Path;

/// The shrunk scenario.
pub struct Shrunk {
    pub yaml: String,
    /// Steps of the schedule as found, and after shrinking.
    pub steps_before: usize,
    pub steps_after: usize,
    /// Replays run while shrinking.
    pub replays: usize,
}

/// Latency parameters shrinking tries to lower.
const LATENCIES: [&str; 5] = [
    "mem_latency",
    "dev_mem_latency",
    "iommu_mem_latency",
    "ats_latency",
    "ats_cpl_delay",
];

struct Shrinker<'a> {
    base: &'a Scenario,
    policy: Policy,
    what: &'a Found,
    name: String,
    about: String,
    file: &'a Path,
    replays: usize,
}

/// Shrink `f`, found in `base` under `policy`, into a scenario called
/// `name` whose file will be `file`.
pub fn shrink(
    base: &Scenario,
    policy: Policy,
    f: &Finding,
    name: &str,
    about: &str,
    file: &Path,
) -> Result<Shrunk, String> {
    let mut sh = Shrinker {
        base,
        policy,
        what: &f.what,
        name: name.to_string(),
        about: about.to_string(),
        file,
        replays: 0,
    };
    let mut steps = f.steps.clone();
    let mut params = base.params;
    if !sh.holds(&steps, &params).0 {
        return Err(format!(
            "the schedule found ({} steps) does not replay as a timeline to '{}': a bug of shootdown's explore",
            steps.len(),
            f.what.name()
        ));
    }
    loop {
        let before = (steps.len(), params);
        sh.drop_actions(&mut steps, &params);
        sh.drop_trailing(&mut steps, &params);
        sh.merge(&mut steps, &params);
        sh.lower_latencies(&steps, &mut params);
        if (steps.len(), params) == before {
            break;
        }
    }
    let (ok, yaml) = sh.holds(&steps, &params);
    if !ok {
        return Err("the shrunk schedule stopped replaying: a bug of shootdown's explore".into());
    }
    Ok(Shrunk {
        yaml,
        steps_before: f.steps.len(),
        steps_after: steps.len(),
        replays: sh.replays,
    })
}

impl Shrinker<'_> {
    /// The scenario text of `steps` with `params`.
    fn yaml(&self, steps: &[Entry], params: &crate::scenario::Params) -> String {
        let timeline: Vec<Slot> = steps
            .iter()
            .map(|e| Slot {
                line: 0,
                entries: vec![e.clone()],
            })
            .collect();
        let verdict = match self.what {
            Found::Verdict(v) => v.clone(),
            Found::Stopped(_) => Default::default(),
        };
        let s = Scenario {
            path: self.file.to_path_buf(),
            name: self.name.clone(),
            about: self.about.clone(),
            notify: Some(self.policy),
            driver: self.base.driver,
            arch: self.base.arch,
            inject: self.base.inject,
            params: *params,
            pages: self.base.pages.clone(),
            programs: programs_of(&timeline),
            timeline,
            paths: self.base.paths.clone(),
            expect: vec![(self.policy, verdict)],
        };
        s.to_yaml()
    }

    /// Whether `steps` with `params`, written and read back, still finds
    /// the same thing; and the text.
    fn holds(&mut self, steps: &[Entry], params: &crate::scenario::Params) -> (bool, String) {
        let yaml = self.yaml(steps, params);
        self.replays += 1;
        let Ok(s) = Scenario::parse(self.file, &yaml) else {
            return (false, yaml);
        };
        let opts = RunOptions::policy(self.policy);
        let ok = match (self.what, run(&s, &opts)) {
            (Found::Verdict(v), Ok(r)) => r.verdict == *v,
            (Found::Stopped(e), Err(got)) => same_stop(e, &got.to_string()),
            _ => false,
        };
        (ok, yaml)
    }

    /// Drop whole actions (an action's step and its resumes), last first.
    fn drop_actions(&mut self, steps: &mut Vec<Entry>, params: &crate::scenario::Params) {
        let mut g = groups(steps).len();
        while g > 0 {
            g -= 1;
            let ids = groups(steps);
            let Some(members) = ids.get(g) else { continue };
            let cand: Vec<Entry> = steps
                .iter()
                .enumerate()
                .filter(|(k, _)| !members.contains(k))
                .map(|(_, e)| e.clone())
                .collect();
            if !cand.is_empty() && self.holds(&cand, params).0 {
                *steps = cand;
            }
        }
    }

    /// Drop steps from the end while it still holds (the drain finishes
    /// what they would have run).
    fn drop_trailing(&mut self, steps: &mut Vec<Entry>, params: &crate::scenario::Params) {
        while steps.len() > 1 {
            let cand = steps[..steps.len() - 1].to_vec();
            if !self.holds(&cand, params).0 {
                break;
            }
            *steps = cand;
        }
    }

    /// Merge a CPU (or the worker's) step into the one before when the same
    /// thread took both (`cpu0: write addrA 1 until start` + `cpu0: resume
    /// until lock` = `cpu0: write addrA 1 until lock`).
    fn merge(&mut self, steps: &mut Vec<Entry>, params: &crate::scenario::Params) {
        let mut k = 1;
        while k < steps.len() {
            let (a, b) = (&steps[k - 1], &steps[k]);
            let same = a.thread == b.thread
                && matches!(a.thread, ThreadRef::Cpu(_) | ThreadRef::Iopf)
                && b.action == Action::Resume
                && a.until.stops();
            if same {
                let mut m = a.clone();
                m.until = b.until.clone();
                m.text = super::play::step_text(&Entry {
                    text: a.action_text().to_string(),
                    ..m.clone()
                });
                let mut cand = steps.clone();
                cand.splice(k - 1..=k, [m]);
                if self.holds(&cand, params).0 {
                    *steps = cand;
                    continue;
                }
            }
            k += 1;
        }
    }

    /// Halve each latency while it still holds.
    fn lower_latencies(&mut self, steps: &[Entry], params: &mut crate::scenario::Params) {
        for name in LATENCIES {
            let Some(spec) = crate::scenario::param_spec(name) else {
                continue;
            };
            loop {
                let v = (spec.get)(params);
                let lower = (v / 2).max(spec.min);
                if lower >= v {
                    break;
                }
                let mut cand = *params;
                (spec.set)(&mut cand, lower);
                if !self.holds(steps, &cand).0 {
                    break;
                }
                *params = cand;
            }
        }
    }
}

/// The steps of each action: its first step and its resumes.
fn groups(steps: &[Entry]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut open: Vec<(ThreadRef, usize)> = Vec::new();
    for (k, e) in steps.iter().enumerate() {
        if e.action == Action::Resume {
            if let Some((_, g)) = open.iter().find(|(t, _)| *t == e.thread) {
                out[*g].push(k);
                continue;
            }
        }
        open.retain(|(t, _)| *t != e.thread);
        open.push((e.thread, out.len()));
        out.push(vec![k]);
    }
    out
}

/// Two run errors stop for the same reason: the same assertion, or both
/// the watchdog.
fn same_stop(want: &str, got: &str) -> bool {
    match crate::rtl::assertion_name(want) {
        Some(a) => crate::rtl::assertion_name(got) == Some(a),
        None => want.contains("watchdog:") && got.contains("watchdog:"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Until;

    fn e(thread: ThreadRef, resume: bool) -> Entry {
        Entry {
            thread,
            action: if resume {
                Action::Resume
            } else {
                Action::Read { page: 0 }
            },
            until: Until::End,
            text: String::new(),
        }
    }

    #[test]
    fn an_action_owns_its_resumes() {
        let (c0, c1) = (ThreadRef::Cpu(0), ThreadRef::Cpu(1));
        let steps = [
            e(c0, false),
            e(c1, false),
            e(c0, true),
            e(c0, false),
            e(c1, true),
        ];
        assert_eq!(groups(&steps), vec![vec![0, 2], vec![1, 4], vec![3]]);
    }
}
