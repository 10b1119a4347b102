//! The host's signals in the run's VCD: which step of the timeline is
//! running, what each thread is doing, each named page's PTE, the value a
//! CPU reads there, and its stale-translation window (per cache), all in
//! the RTL's time base (cycle `c` at `c * 1000` ps).

use crate::checker::is_stale;
use crate::mem::Leaf;
use crate::mm::Policy;
use crate::rtl::ProbeEntry;
use crate::scenario::{Scenario, ThreadRef};
use crate::waves::{
    merge, vcd_to_fst, write_gtkw, GtkwFormat, GtkwGroup, GtkwSignal, HostTrace, SigId, TempFile,
    WavesError, WavesFormat,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const PS_PER_CYCLE: u64 = 1000;

struct PageSigs {
    pte: SigId,
    value: SigId,
    window: SigId,
    caches: [SigId; 3],
}

/// Where a run's waves went.
#[derive(Clone, Debug)]
pub struct WavesOut {
    /// The waves file: VCD, or FST when `RunOptions::waves` ends in `.fst`.
    pub vcd: PathBuf,
    pub gtkw: PathBuf,
    pub bytes: u64,
}

pub(super) struct HostSignals {
    t: HostTrace,
    slot: SigId,
    policy: SigId,
    violation: SigId,
    violations: SigId,
    count: u64,
    cpu: BTreeMap<usize, SigId>,
    dev: BTreeMap<u8, SigId>,
    /// The kernel's I/O page fault worker (only with PRI).
    iopf: Option<SigId>,
    pages: Vec<PageSigs>,
    names: Vec<String>,
    /// The RTL is the RISC-V socket's (its own signal groups).
    riscv: bool,
    /// The RISC-V socket: its process-directory cache holds a context the
    /// directory no longer has.
    stale_ctx: Option<[SigId; 2]>,
    /// Verilator's own trace of this run, removed with this struct whatever
    /// happens to the run.
    rtl: TempFile,
}

impl HostSignals {
    /// The host signals of a run of `s` whose waves go to `out`; the RTL's
    /// own trace goes to [`rtl_path`](Self::rtl_path), a temporary file
    /// beside `out` unique to this run.
    pub(super) fn new(s: &Scenario, out: &Path) -> Self {
        let mut t = HostTrace::new();
        let slot = t.wire(&["host"], "time_step", 16);
        let policy = t.text(&["host"], "notify");
        let violation = t.text(&["host", "checker"], "violation");
        let violations = t.wire(&["host", "checker"], "count", 16);
        let stale_ctx = s.arch.riscv().then(|| {
            [
                t.wire(&["host", "checker"], "stale_ddtc", 1),
                t.wire(&["host", "checker"], "stale_pdtc", 1),
            ]
        });
        let mut threads: Vec<ThreadRef> = s
            .timeline
            .iter()
            .flat_map(|sl| sl.entries.iter().map(|e| e.thread))
            .collect();
        threads.sort();
        threads.dedup();
        let mut cpu = BTreeMap::new();
        let mut dev = BTreeMap::new();
        for th in threads {
            let name = th.to_string();
            match th {
                ThreadRef::Cpu(i) => {
                    cpu.insert(i, t.text(&["host", "threads"], &name));
                }
                ThreadRef::Dev(i) => {
                    dev.insert(i, t.text(&["host", "threads"], &name));
                }
                // its signal is `iopf`, below
                ThreadRef::Iopf => {}
            }
        }
        let iopf = (s.params.pri > 0).then(|| t.text(&["host", "threads"], "iopf"));
        let pages = s
            .pages
            .iter()
            .map(|p| {
                let sc = ["host", "pages", p.name.as_str()];
                PageSigs {
                    pte: t.wire(&sc, "pte", 64),
                    value: t.wire(&sc, "cpu_value", 64),
                    window: t.wire(&sc, "window", 1),
                    caches: [
                        t.wire(&sc, "stale_iotlb", 1),
                        t.wire(&sc, "stale_atc", 1),
                        t.wire(&sc, "stale_inflight", 1),
                    ],
                }
            })
            .collect();
        let mut hs = HostSignals {
            t,
            slot,
            policy,
            violation,
            violations,
            count: 0,
            cpu,
            dev,
            iopf,
            pages,
            names: s.pages.iter().map(|p| p.name.clone()).collect(),
            riscv: s.arch.riscv(),
            stale_ctx,
            rtl: TempFile::beside(out, "rtl.vcd"),
        };
        hs.t.set(0, hs.violations, 0);
        for sig in hs.stale_ctx.into_iter().flatten() {
            hs.t.set(0, sig, 0);
        }
        hs.t.set_text(0, hs.violation, "");
        for p in &hs.pages {
            hs.t.set(0, p.window, 0);
            for c in p.caches {
                hs.t.set(0, c, 0);
            }
        }
        for s in hs.cpu.values().chain(hs.dev.values()).chain(&hs.iopf) {
            hs.t.set_text(0, *s, "");
        }
        hs
    }

    pub(super) fn policy(&mut self, cycle: u64, p: Policy) {
        self.t.set_text(cycle * PS_PER_CYCLE, self.policy, p.name());
    }

    pub(super) fn slot(&mut self, cycle: u64, index: u64) {
        self.t.set(cycle * PS_PER_CYCLE, self.slot, index);
    }

    pub(super) fn cpu(&mut self, cycle: u64, i: usize, text: &str) {
        if let Some(&s) = self.cpu.get(&i) {
            self.t.set_text(cycle * PS_PER_CYCLE, s, text);
        }
    }

    /// The I/O page fault worker reached checkpoint `text` ("" when idle).
    pub(super) fn iopf(&mut self, cycle: u64, text: &str) {
        if let Some(s) = self.iopf {
            self.t.set_text(cycle * PS_PER_CYCLE, s, text);
        }
    }

    pub(super) fn dev(&mut self, cycle: u64, i: u8, text: &str) {
        if let Some(&s) = self.dev.get(&i) {
            self.t.set_text(cycle * PS_PER_CYCLE, s, text);
        }
    }

    pub(super) fn pte(&mut self, cycle: u64, page: usize, entry: u64) {
        self.t
            .set(cycle * PS_PER_CYCLE, self.pages[page].pte, entry);
    }

    pub(super) fn value(&mut self, cycle: u64, page: usize, v: u64) {
        self.t.set(cycle * PS_PER_CYCLE, self.pages[page].value, v);
    }

    pub(super) fn window(
        &mut self,
        cycle: u64,
        page: usize,
        open: bool,
        held: [Option<ProbeEntry>; 3],
        cpu: Option<&Leaf>,
    ) {
        let t = cycle * PS_PER_CYCLE;
        let p = &self.pages[page];
        self.t.set(t, p.window, open as u64);
        for (c, sig) in p.caches.iter().enumerate() {
            self.t.set(t, *sig, is_stale(held[c], cpu) as u64);
        }
    }

    pub(super) fn stale_context(&mut self, cycle: u64, stale: [bool; 2]) {
        for (sig, v) in self.stale_ctx.into_iter().flatten().zip(stale) {
            self.t.set(cycle * PS_PER_CYCLE, sig, v as u64);
        }
    }

    pub(super) fn violation(&mut self, cycle: u64, kind: &str) {
        self.count += 1;
        self.t.set_text(cycle * PS_PER_CYCLE, self.violation, kind);
        self.t
            .set(cycle * PS_PER_CYCLE, self.violations, self.count);
    }

    /// Where the RTL's own trace goes (open it before the first cycle).
    pub(super) fn rtl_path(&self) -> &Path {
        self.rtl.path()
    }

    /// Merge with the RTL's trace (closed by now), write `out` (FST when it
    /// ends in `.fst`, else VCD) and a .gtkw beside it, each appearing by an
    /// atomic rename of a complete file; the RTL's trace is removed either
    /// way.
    pub(super) fn write(self, out: &Path, end_cycle: u64) -> Result<WavesOut, WavesError> {
        let bytes = match WavesFormat::of_path(out) {
            WavesFormat::Vcd => merge(self.rtl.path(), &self.t, out)?.bytes_out,
            WavesFormat::Fst => {
                let vcd = TempFile::beside(out, "vcd");
                merge(self.rtl.path(), &self.t, vcd.path())?;
                vcd_to_fst(vcd.path(), out)?
            }
        };
        let gtkw = out.with_extension("gtkw");
        write_gtkw(&gtkw, out, &self.groups(), end_cycle * PS_PER_CYCLE)?;
        Ok(WavesOut {
            vcd: out.to_path_buf(),
            gtkw,
            bytes,
        })
    }

    fn groups(&self) -> Vec<GtkwGroup> {
        let sig = |s: SigId| self.t.gtkw_signal(s).into_iter();
        let mut g = vec![GtkwGroup {
            name: "timeline".into(),
            signals: sig(self.slot)
                .map(|mut s| {
                    s.format = GtkwFormat::Dec;
                    s
                })
                .chain(sig(self.policy))
                .chain(self.cpu.values().flat_map(|s| sig(*s)))
                .chain(self.dev.values().flat_map(|s| sig(*s)))
                .chain(self.iopf.into_iter().flat_map(sig))
                .chain(sig(self.violation))
                .chain(sig(self.violations))
                .collect(),
        }];
        for (p, name) in self.pages.iter().zip(&self.names) {
            g.push(GtkwGroup {
                name: format!("page {name}"),
                signals: [p.pte, p.value, p.window]
                    .into_iter()
                    .chain(p.caches)
                    .flat_map(sig)
                    .collect(),
            });
        }
        let rtl = |path: &str, width: u32| GtkwSignal {
            path: format!("TOP.{path}"),
            width,
            format: if width == 1 {
                GtkwFormat::Bin
            } else {
                GtkwFormat::Hex
            },
        };
        if self.riscv {
            g.extend(riscv_groups(&rtl));
            if let Some(last) = g.last_mut() {
                last.signals
                    .extend(self.stale_ctx.into_iter().flatten().flat_map(sig));
            }
            return g;
        }
        g.push(GtkwGroup {
            name: "IOMMU queue and memory".into(),
            signals: vec![
                rtl("cq_tail_i", 32),
                rtl("cq_head_o", 32),
                rtl("iommu_mem_req_valid_o", 1),
                rtl("iommu_mem_req_write_o", 1),
                rtl("iommu_mem_req_cas_o", 1),
                rtl("iommu_mem_req_addr_o", 64),
            ],
        });
        // Internal signals of the bundled RTL (a design in the socket may not
        // have them; GTKWave skips what the VCD lacks).
        g.push(GtkwGroup {
            name: "ATS (bundled RTL)".into(),
            signals: vec![
                rtl("shootdown_top.u_iommu.u_cmdq.state_q", 4),
                rtl("shootdown_top.u_iommu.inv_req_valid", 1),
                rtl("shootdown_top.u_iommu.u_cmdq.u_itag_pool.busy_q", 32),
                rtl("shootdown_top.u_dev.inv_valid", 1),
                rtl("shootdown_top.u_dev.inv_cpl_valid", 1),
                rtl("shootdown_top.u_dev.tr_valid", 1),
                rtl("shootdown_top.u_dev.tr_vpn", 36),
                rtl("shootdown_top.link_cpl_valid_q", 1),
                rtl("shootdown_top.cpl_out_valid", 1),
                rtl("shootdown_top.u_dev.u_dma.retry_q", 1),
                rtl("shootdown_top.u_dev.u_dma.state_q", 4),
            ],
        });
        if self.iopf.is_some() {
            // PRI: the page-request queue and the device's Page Requests
            g.push(GtkwGroup {
                name: "page requests (PRI)".into(),
                signals: vec![
                    rtl("pq_tail_o", 32),
                    rtl("pq_head_i", 32),
                    rtl("pq_ovf_o", 1),
                    rtl("shootdown_top.u_dev.u_dma.pri_cnt_q", 8),
                    rtl("shootdown_top.u_iommu.u_prq.state_q", 3),
                ],
            });
        }
        g.push(GtkwGroup {
            name: "device".into(),
            signals: vec![
                rtl("dev_req_valid_i", 1),
                rtl("dev_req_va_i", 64),
                rtl("dev_rsp_valid_o", 1),
                rtl("dev_rsp_rdata_o", 64),
                rtl("dev_mem_req_valid_o", 1),
                rtl("dev_mem_req_addr_o", 64),
            ],
        });
        g
    }
}

/// The RISC-V socket's groups: its four AXI4 ports (docs/socket-riscv.md)
/// and the third-party design's own command queue, IOTLB and walker (the
/// RISC-V IOMMU in ../shared/thirdparty/riscv-iommu; another design in the
/// socket lacks them and GTKWave skips them).
fn riscv_groups(rtl: &dyn Fn(&str, u32) -> GtkwSignal) -> Vec<GtkwGroup> {
    const TOP: &str = "shootdown_rv_top";
    const CQ: &str = "shootdown_rv_top.u_iommu.i_rv_iommu_sw_if_wrapper.i_rv_iommu_cq_handler";
    const TW: &str = "shootdown_rv_top.u_iommu.i_rv_iommu_translation_wrapper.gen_pc_support.i_rv_iommu_tw_sv39x4_pc";
    let port = |p: &str, name: &str| GtkwGroup {
        name: name.into(),
        signals: [
            ("arvalid", 1),
            ("arready", 1),
            ("arid", 4),
            ("araddr", 64),
            ("rvalid", 1),
            ("rid", 4),
            ("awvalid", 1),
            ("awaddr", 64),
            ("bvalid", 1),
        ]
        .iter()
        .map(|(s, w)| rtl(&format!("{TOP}.{p}_{s}"), *w))
        .collect(),
    };
    vec![
        port("tr", "device requests (tr_)"),
        port("tx", "translated requests to memory (tx_)"),
        port("mem", "IOMMU memory: tables, queue (mem_)"),
        port("reg", "register port (reg_)"),
        GtkwGroup {
            name: "command queue (design)".into(),
            signals: vec![
                rtl(&format!("{CQ}.state_q"), 3),
                rtl(&format!("{CQ}.cq_head_o"), 32),
                rtl(&format!("{CQ}.flush_vma_o"), 1),
                rtl(&format!("{CQ}.flush_av_o"), 1),
                rtl(&format!("{CQ}.flush_vpn_o"), 29),
                rtl(&format!("{CQ}.flush_pscid_o"), 20),
            ],
        },
        GtkwGroup {
            name: "IOTLB and walker (design)".into(),
            signals: vec![
                rtl(&format!("{TW}.i_rv_iommu_iotlb_sv39x4.lookup_i"), 1),
                rtl(&format!("{TW}.i_rv_iommu_iotlb_sv39x4.lu_hit_o"), 1),
                rtl(&format!("{TW}.i_rv_iommu_iotlb_sv39x4.update_i"), 1),
                rtl(&format!("{TW}.i_rv_iommu_iotlb_sv39x4.up_vpn_i"), 29),
                rtl(&format!("{TW}.i_rv_iommu_iotlb_sv39x4.flush_vma_i"), 1),
                rtl(&format!("{TW}.i_rv_iommu_ptw_sv39x4_pc.state_q"), 2),
                rtl(&format!("{TW}.i_rv_iommu_ptw_sv39x4_pc.ptw_active_o"), 1),
            ],
        },
        GtkwGroup {
            name: "directory caches and context walker (design)".into(),
            signals: vec![
                rtl(&format!("{TW}.i_rv_iommu_ddtc.update_i"), 1),
                rtl(&format!("{TW}.i_rv_iommu_ddtc.flush_i"), 1),
                rtl(&format!("{TOP}.probe_ddtc_o"), 64),
                rtl(&format!("{TW}.i_rv_iommu_pdtc.lookup_i"), 1),
                rtl(&format!("{TW}.i_rv_iommu_pdtc.lu_hit_o"), 1),
                rtl(&format!("{TW}.i_rv_iommu_pdtc.update_i"), 1),
                rtl(&format!("{TW}.i_rv_iommu_pdtc.flush_i"), 1),
                rtl(&format!("{TW}.i_rv_iommu_pdtc.flush_pv_i"), 1),
                rtl(&format!("{TW}.i_rv_iommu_cdw_pc.state_q"), 3),
                rtl(&format!("{TOP}.probe_pdtc_o"), 64),
            ],
        },
    ]
}
