//! The text report of a run, in the seed's `[Time N]` style.

use crate::checker::Window;
use crate::mm::Policy;
use crate::scenario::{Scenario, ThreadRef};
use crate::sim::RunReport;
use std::fmt::Write;

fn policy_about(p: Policy) -> &'static str {
    match p {
        Policy::Always => {
            "Linux 4.14: notify under the PTL at every *_clear_flush_notify, and again at E"
        }
        Policy::Seed => "Linux 4.15, the seed: notify under the PTL only in cases A and B",
        Policy::Arch => "Linux 6.6+: secondary flush wherever the CPU TLB is flushed",
        Policy::EndOnly => "the bug the seed warns about: every secondary flush deferred to E",
    }
}

fn thread_label(t: ThreadRef) -> String {
    match t {
        ThreadRef::Cpu(i) => format!("CPU-thread-{i}"),
        ThreadRef::Dev(i) => format!("DEV-thread-{i}"),
        ThreadRef::Iopf => "IOPF-worker".to_string(),
    }
}

fn open_at(ws: &[Window], cycle: u64) -> Vec<&Window> {
    ws.iter().filter(|w| w.contains(cycle)).collect()
}

fn window_state(ws: &[Window], cycle: u64) -> String {
    let open = open_at(ws, cycle);
    if open.is_empty() {
        return "window closed".into();
    }
    let caches: Vec<String> = open
        .iter()
        .map(|w| format!("{} since @{}", w.cache.name(), w.start))
        .collect();
    format!("window OPEN ({})", caches.join(", "))
}

/// Render `r` (a run of `s`) as text.
/// One window of the report: `label` (a page's name, or blank), the
/// cache, `[start, end)` (`end` None: still open) and its length.
fn window_line(o: &mut String, label: &str, cache: &str, start: u64, end: Option<u64>, len: u64) {
    let end = end.map_or("still open".to_string(), |e| format!("{e:>7})"));
    let _ = writeln!(
        o,
        "  {label:<8} {cache:<9} [{start:>7}, {end} {len:>7} cycles"
    );
}

pub fn render(s: &Scenario, r: &RunReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "shootdown: {} ({}) under --notify {}",
        s.name,
        s.path.display(),
        r.policy
    );
    let _ = writeln!(o, "  {}", policy_about(r.policy));
    if let Some(k) = s.paths.kernel {
        let later: Vec<String> = (s.paths.later_versions().iter())
            .map(|(n, f)| format!("{n} ({f})"))
            .collect();
        let later = match later.is_empty() {
            true => "none changed by then".to_string(),
            false => later.join(", "),
        };
        let _ = writeln!(
            o,
            "  kernel {k}: the bundled paths as {k} has them: {later}"
        );
    }
    // with several processes, which pages each one's PASID translates
    let n = crate::scenario::processes(&s.pages);
    for proc in (0..n).filter(|_| n > 1) {
        let names: Vec<&str> = (s.pages.iter())
            .filter(|p| usize::from(p.process) == proc)
            .map(|p| p.name.as_str())
            .collect();
        let _ = writeln!(
            o,
            "  process {proc} (PASID {}): {}",
            crate::scenario::pasid_of(proc as u8),
            names.join(", ")
        );
    }
    let supervisor: Vec<&str> = (s.pages.iter())
        .filter(|p| p.supervisor)
        .map(|p| p.name.as_str())
        .collect();
    if !supervisor.is_empty() {
        let _ = writeln!(
            o,
            "  supervisor PASID {} (the kernel's page tables, SRE): {}",
            crate::scenario::KERNEL_PASID,
            supervisor.join(", ")
        );
    }
    let mut threads: Vec<ThreadRef> = s
        .timeline
        .iter()
        .flat_map(|sl| sl.entries.iter().map(|e| e.thread))
        .collect();
    threads.sort();
    threads.dedup();
    for slot in &r.slots {
        let head = if slot.line == 0 {
            format!(
                "[Time {}] (after the timeline: preempted threads run to completion)",
                slot.label
            )
        } else {
            format!("[Time {}] (line {})", slot.label, slot.line)
        };
        let _ = writeln!(o, "{head:-<60} cycles {}..{}", slot.start, slot.end);
        for &t in &threads {
            let did: Vec<&str> = slot
                .lines
                .iter()
                .filter(|l| l.thread == t)
                .map(|l| l.text.as_str())
                .collect();
            let body = if !did.is_empty() {
                did.join("; ")
            } else if matches!(t, ThreadRef::Cpu(i) if slot.preempted.contains(&i)) {
                "preempted".into()
            } else {
                String::new()
            };
            let _ = writeln!(o, "{} {{{body}}}", thread_label(t));
        }
    }

    let _ = writeln!(o, "\nStale-translation windows (cycles a cache held a translation the CPU page table no longer had):");
    if s.arch.riscv() {
        let _ = writeln!(o, "  (the design's IOTLB, through the RISC-V socket's probes; it has no ATC, and a translation in flight is not probed)");
    }
    for (i, name) in r.pages.iter().enumerate() {
        let ws: Vec<&Window> = r.windows.iter().filter(|w| w.page == i).collect();
        if ws.is_empty() {
            let _ = writeln!(o, "  {name:<8} none");
        }
        for (k, w) in ws.iter().enumerate() {
            let label = if k == 0 { name.as_str() } else { "" };
            window_line(
                &mut o,
                label,
                w.cache.name(),
                w.start,
                w.end,
                w.len(r.cycles),
            );
        }
    }

    if s.arch.riscv() {
        let _ = write!(
            o,
            "  contexts (the design's DDTC or PDTC held one its directory no longer had):"
        );
        if r.context_windows.is_empty() {
            let _ = writeln!(o, " none");
        } else {
            let _ = writeln!(o);
        }
        for w in &r.context_windows {
            window_line(&mut o, "", w.cache.name(), w.start, w.end, w.len(r.cycles));
        }
    }

    let _ = writeln!(o, "\nKey moments (the window of the page at that cycle):");
    let state = |ws: &[Window], cycle: u64| format!(": {}", window_state(ws, cycle));
    let mut moments: Vec<(u64, String)> = Vec::new();
    for st in &r.stores {
        let ws = r.windows_of(&st.page);
        moments.push((
            st.cycle,
            match st.zero_fill {
                true => format!(
                    "{}'s page fault fills {} with zeros{}",
                    st.thread,
                    st.page,
                    state(&ws, st.cycle)
                ),
                false => format!(
                    "{} stores {:#x} to {}{}",
                    st.thread,
                    st.value,
                    st.page,
                    state(&ws, st.cycle)
                ),
            },
        ));
    }
    for d in &r.dev {
        let ws = r.windows_of(&d.page);
        let what = if d.fault {
            "faults".to_string()
        } else if d.write {
            format!("writes {:#x}", d.value)
        } else {
            format!("reads {:#x}", d.value)
        };
        moments.push((
            d.cycle,
            format!(
                "dev{} {what} at {} (frame {:#x}){}",
                d.dev,
                d.page,
                d.pa >> 12,
                state(&ws, d.cycle)
            ),
        ));
    }
    for io in &r.io {
        moments.push((
            io.cycle,
            format!(
                "{} writeback I/O of {} puts {:#x} on disk",
                io.thread, io.page, io.value
            ),
        ));
    }
    moments.sort_by_key(|m| m.0);
    for (c, m) in moments {
        let _ = writeln!(o, "  @{c:<7} {m}");
    }

    if !r.findings.is_empty() {
        let _ = writeln!(o, "\nFindings:");
        for f in &r.findings {
            let _ = writeln!(o, "  @{:<7} {}: {}", f.cycle, f.kind, f.detail);
        }
    }
    let st = &r.stats;
    let _ = writeln!(
        o,
        "\nCost ({} driver): {} secondary-TLB flushes, {} commands ({} IOTINVAL.VMA, {} of them whole-PASID, {} ATS.INVAL, {} IOFENCE.C), {} CPU cycles spinning on the IOMMU",
        if s.arch.riscv() {
            "Linux 6.13 RISC-V IOMMU"
        } else {
            r.driver.name()
        },
        st.flushes,
        st.commands,
        st.iotinval,
        st.whole_pasid,
        st.ats_inval,
        st.fences,
        r.spin_cycles
    );
    if st.page_responses > 0 {
        let _ = writeln!(
            o,
            "Page Requests answered: {} (an ATS.PRGR and an IOFENCE.C each, by the I/O page fault worker; not in the counts above)",
            st.page_responses
        );
    }
    if st.silent > 0 {
        let _ = writeln!(
            o,
            "Flushes the driver sent no command for: {} (the IOTLB and the device's ATC were not invalidated; docs/drivers.md)",
            st.silent
        );
    }
    if st.ats_timeouts > 0 {
        let _ = writeln!(
            o,
            "ATS invalidation timeouts: {} (reported at a fence as cmd_to; the driver cleared them and went on, as Linux's RISC-V IOMMU driver does)",
            st.ats_timeouts
        );
    }
    let verdict = names(r.verdict.iter().map(|v| v.name()));
    let _ = match &r.expected {
        Some(e) => writeln!(
            o,
            "Verdict: {verdict}; expected {}: {}",
            names(e.iter().map(|v| v.name())),
            if r.as_expected() {
                "as expected"
            } else {
                "MISMATCH"
            }
        ),
        None => writeln!(
            o,
            "Verdict: {verdict} (the scenario expects nothing of {})",
            r.policy
        ),
    };
    if let Some(w) = &r.waves {
        let _ = writeln!(
            o,
            "Waves: {} ({} KiB); open with: gtkwave --rcvar 'do_initial_zoom_fit yes' {}",
            w.vcd.display(),
            w.bytes.div_ceil(1024),
            w.gtkw.display()
        );
    }
    let secs = r.wall.as_secs_f64().max(1e-9);
    let _ = writeln!(
        o,
        "Simulated {} cycles in {:.1} ms ({:.0} cycles/s)",
        r.cycles,
        secs * 1e3,
        r.cycles as f64 / secs
    );
    o
}

fn names<'a>(it: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = it.collect();
    if v.is_empty() {
        "clean".into()
    } else {
        v.join(", ")
    }
}
