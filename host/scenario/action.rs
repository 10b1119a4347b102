//! One timeline entry: `cpu0: write addrA 0xa1 until start`: the thread,
//! the action and where it stops.

use super::params::parse_int;
use super::yaml::shown;
use super::{Page, USER_END};
use crate::mm::lang::Paths;
use std::fmt;

/// Thread kinds of a timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ThreadRef {
    Cpu(usize),
    Dev(u8),
    /// The kernel's I/O page fault worker (PRI): named in a timeline, it
    /// runs only in the steps that name it (`iopf: resume until vma`).
    Iopf,
}

impl fmt::Display for ThreadRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThreadRef::Cpu(i) => write!(f, "cpu{i}"),
            ThreadRef::Dev(i) => write!(f, "dev{i}"),
            ThreadRef::Iopf => write!(f, "iopf"),
        }
    }
}

pub const MAX_CPUS: usize = 16;
pub const MAX_DEVS: u8 = 16;

/// Where a device access can stop (`dev0: read addrA until translated`),
/// seen through the socket's probes, not inside the RTL:
/// - `requested`: the device took the access's request;
/// - `translated`: the IOMMU answered the access's Translation Request (the
///   page's `xlat` probe shows a walk result or a Completion in flight);
/// - `page-request`: the device's PCIe Page Request (PRI) is in the IOMMU's
///   page-request queue, for the I/O page fault worker (`iopf`) to handle.
///
/// The access goes on in the background; `dev0: resume` waits for it
/// (`dev0: resume until page-request`: for its next Page Request).
pub const DEV_CHECKPOINTS: &[&str] = &["requested", "translated", "page-request"];

/// The checkpoint of a device access at its Page Request.
pub const PAGE_REQUEST: &str = "page-request";

/// The largest `munmap <page> <pages>`: 1 GiB (a 1 GiB hugetlb page, or
/// 512 page tables' worth of small pages).
pub const MAX_MUNMAP_PAGES: u64 = 262_144;

/// What a thread does in one `[Time N+k]` step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Read {
        page: usize,
    },
    Write {
        page: usize,
        value: u64,
    },
    /// `munmap` of `pages` pages from the named page's (zap_pte_range).
    Munmap {
        page: usize,
        pages: u64,
    },
    /// KSM write_protect_page of the page; with `into`, then merge it into
    /// that page's frame (replace_page).
    Ksm {
        page: usize,
        into: Option<usize>,
    },
    /// Writeback of the page: page_mkclean_one, then the I/O.
    Writeback {
        page: usize,
        dax: bool,
    },
    /// mprotect(PROT_READ) of a page: hugetlb_change_protection for a
    /// hugetlb page, change_protection for the others (which refuses huge
    /// ones).
    MprotectRo {
        page: usize,
    },
    /// fork: the hugetlb VMA holding the page is copied to a child (copy_hugetlb_page_range).
    Fork {
        page: usize,
    },
    /// split_huge_pmd of the huge zero page holding the page.
    Split {
        page: usize,
    },
    /// madvise(MADV_FREE) of the page.
    MadvFree {
        page: usize,
    },
    /// madvise(MADV_DONTNEED) of `pages` pages from the named page's:
    /// `zap_page_range`, munmap's zap without `free_pgtables` (the VMA and
    /// its page tables stay).
    MadvDontneed {
        page: usize,
        pages: u64,
    },
    /// khugepaged collapses the 2 MiB region holding the page into a huge page.
    Collapse {
        page: usize,
    },
    /// NUMA balancing's scan (task_numa_work, change_prot_numa) makes the
    /// page's PTE a PROT_NONE hinting entry (change_protection);
    /// `misplaced`: its hinting fault finds it on the wrong node and
    /// migrates it (migrate_misplaced_page).
    NumaHint {
        page: usize,
        misplaced: bool,
    },
    /// try_to_unmap_one by reclaim (swap-out) or by page migration.
    Unmap {
        page: usize,
        migrate: bool,
    },
    /// `iommu_sva_unbind_device`: the device's binding of process
    /// `process` taken away (the RISC-V socket only).
    Unbind {
        process: u8,
    },
    /// Process `process` exits while the device is bound (exit_mmap:
    /// mmu_notifier_release, then every page unmapped).
    Exit {
        process: u8,
    },
    /// `mremap <page> <to> [512]`: the page moved to the address of `to`,
    /// an absent page (move_page_tables, move_ptes); with 512, the whole
    /// 2 MiB region from the page moved to the one from `to`, page table
    /// and all (move_normal_pmd), or a THP's huge PMD (move_huge_pmd).
    Mremap {
        page: usize,
        to: usize,
        pages: u64,
    },
    /// `vfree <page>`: the kernel page's vmalloc area freed (vunmap of its
    /// PTE, the page freed, the CPU's kernel TLB flush).
    Vfree {
        page: usize,
    },
    /// `vmap-huge <page>`: a 2 MiB vmap lands on the kernel page's empty
    /// 2 MiB region (`vmap_try_huge_pmd`): its page table is freed
    /// (`pmd_free_pte_page`) and a huge PMD set.
    VmapHuge {
        page: usize,
    },
    /// `call <path> <page> [<pages>]`: a path the scenario wrote in the
    /// path language, over `pages` pages from the named page's.
    Call {
        path: String,
        page: usize,
        pages: u64,
    },
    Resume,
}

/// Where a thread stops in a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Until {
    /// Run the action (or what is left of it) to its end.
    End,
    /// Stop after this checkpoint (a kernel path's, or a device access's
    /// [`DEV_CHECKPOINTS`]), as the timeline writes `until <checkpoint>`.
    At(String),
    /// Stop after the next checkpoint whatever it is: what `explore` runs
    /// (a schedule's move); a timeline names the checkpoint instead.
    Next,
}

impl Until {
    /// The named checkpoint, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            Until::At(n) => Some(n),
            Until::End | Until::Next => None,
        }
    }

    /// The thread stops before its action's end.
    pub fn stops(&self) -> bool {
        !matches!(self, Until::End)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub thread: ThreadRef,
    pub action: Action,
    /// Where the thread stops.
    pub until: Until,
    /// The text as written, for the report.
    pub text: String,
}

impl Entry {
    /// The action as written, without its `until <checkpoint>`.
    pub fn action_text(&self) -> &str {
        self.text.split(" until ").next().unwrap_or(&self.text)
    }
}

/// A thread name as the timeline writes it: `cpu0`..`cpu15`, `dev0`..`dev15`,
/// the number in plain decimal (`cpu00` and `cpu+0` are not `cpu0`), or
/// `iopf`.
pub fn parse_thread(s: &str) -> Result<ThreadRef, String> {
    if s == "iopf" {
        return Ok(ThreadRef::Iopf);
    }
    let bad = || {
        format!(
            "unknown thread '{}': use cpu0..cpu{}, dev0..dev{} or iopf (the I/O page fault worker)",
            shown(s),
            MAX_CPUS - 1,
            MAX_DEVS - 1
        )
    };
    let (kind, n) = if let Some(n) = s.strip_prefix("cpu") {
        ("cpu", n)
    } else if let Some(n) = s.strip_prefix("dev") {
        ("dev", n)
    } else {
        return Err(bad());
    };
    let canonical =
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && (n == "0" || !n.starts_with('0'));
    let i: usize = n.parse().ok().filter(|_| canonical).ok_or_else(bad)?;
    match kind {
        "cpu" if i < MAX_CPUS => Ok(ThreadRef::Cpu(i)),
        "dev" if i < MAX_DEVS as usize => Ok(ThreadRef::Dev(i as u8)),
        _ => Err(bad()),
    }
}

/// Every checkpoint name a CPU thread can stop at: the Rust paths' and
/// those of `paths` (the bundled path files and the scenario's own).
pub fn checkpoint_names(paths: &Paths) -> Vec<&'static str> {
    // a load's or store's own: wp_page_reuse, the load, do_anonymous_page
    let mut v: Vec<&str> = vec!["reuse", "load", "anonymous"];
    for c in crate::mm::ALL_CHECKPOINTS
        .iter()
        .flat_map(|l| l.iter().copied())
        .chain(paths.checkpoints())
    {
        if !v.contains(&c) {
            v.push(c);
        }
    }
    v
}

const USAGE: &str = "expected 'read <page>', 'write <page> <value>', 'munmap <page> [<pages>]', 'ksm-wrprotect <page>', 'ksm-merge <page> <into-page>', 'writeback <page>', 'dax-writeback <page>', 'mprotect <page> ro', 'fork <page>', 'split <page>', 'reclaim <page>', 'migrate <page>', 'madv-free <page>', 'madv-dontneed <page> [<pages>]', 'collapse <page>', 'numa-hint <page> [misplaced]', 'mremap <page> <to-page>', 'unbind [<process>]', 'exit [<process>]', 'vfree <page>', 'vmap-huge <page>' (kernel pages), 'call <path> <page> [<pages>]' or 'resume', optionally followed by 'until <checkpoint>'";

/// What the I/O page fault worker's line may say.
const IOPF_ONLY: &str = "the I/O page fault worker takes no action of its own (its work is the devices' Page Requests): write 'iopf: resume' (handle every one queued) or 'iopf: resume until <checkpoint>' (vma, anonymous, numa, responded, or a fault's)";

/// The kernel paths: only CPU threads run them.
const KERNEL_VERBS: &[&str] = &[
    "munmap",
    "ksm-wrprotect",
    "ksm-merge",
    "writeback",
    "dax-writeback",
    "mprotect",
    "fork",
    "split",
    "reclaim",
    "migrate",
    "madv-free",
    "madv-dontneed",
    "collapse",
    "numa-hint",
    "unbind",
    "exit",
    "mremap",
    "vfree",
    "vmap-huge",
    "call",
];

/// Parse one action of `thread`, written `text`, against the scenario's
/// pages and the CPU checkpoints.
pub fn parse_action(
    thread: ThreadRef,
    text: &str,
    pages: &[Page],
    checkpoints: &[&str],
    paths: &Paths,
) -> Result<Entry, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let (body, until) = match words.iter().position(|w| *w == "until") {
        Some(p) => {
            let cp = words.get(p + 1).ok_or("'until' needs a checkpoint name")?;
            if words.len() > p + 2 {
                return Err("nothing may follow 'until <checkpoint>'".into());
            }
            // the worker's: its handler's own, then a fault's
            let worker: Vec<&str>;
            let known = match thread {
                ThreadRef::Cpu(_) => checkpoints,
                ThreadRef::Iopf => {
                    // not `respond`: from its PRG Response to its fence's
                    // completion it owns the IOMMU's queue with interrupts
                    // off (qi_submit_sync): it cannot stop there
                    let own = (crate::mm::CHECKPOINTS_IOPF.iter())
                        .filter(|c| **c != crate::mm::IOPF_RESPOND);
                    worker = own
                        .chain(
                            checkpoints
                                .iter()
                                .filter(|c| !crate::mm::CHECKPOINTS_IOPF.contains(c)),
                        )
                        .copied()
                        .collect();
                    &worker
                }
                ThreadRef::Dev(_) => DEV_CHECKPOINTS,
            };
            if !known.contains(cp) {
                let whose = match thread {
                    ThreadRef::Cpu(_) | ThreadRef::Iopf => "",
                    ThreadRef::Dev(_) => " for a device access",
                };
                return Err(format!(
                    "unknown checkpoint '{}'{whose}: use one of {}",
                    shown(cp),
                    known.join(", ")
                ));
            }
            if words.first() == Some(&"resume")
                && matches!(thread, ThreadRef::Dev(_))
                && *cp != PAGE_REQUEST
            {
                return Err("'resume' waits for the whole access, or until its next 'page-request': drop 'until', or write 'until page-request'".into());
            }
            (&words[..p], Until::At(cp.to_string()))
        }
        None => (&words[..], Until::End),
    };
    let page = |name: &str| {
        pages
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| format!("unknown page '{}': pages are {}", shown(name), names(pages)))
    };
    if thread == ThreadRef::Iopf {
        if body != ["resume"] {
            return Err(IOPF_ONLY.into());
        }
        return Ok(Entry {
            thread,
            action: Action::Resume,
            until,
            text: words.join(" "),
        });
    }
    let cpu = matches!(thread, ThreadRef::Cpu(_));
    if let (false, Some(verb)) = (cpu, body.first()) {
        if KERNEL_VERBS.contains(verb) {
            return Err("this is a kernel path: only CPU threads run it".into());
        }
    }
    // A kernel page is the kernel's: a CPU thread takes it in the kernel
    // paths made for it; a device reads or writes it through the page's
    // process's PASID (a user-mode request, which faults at the leaf).
    if let (true, [verb, args @ ..]) = (cpu, body) {
        let kernel = |w: &&&str| pages.iter().any(|p| p.kernel && p.name == **w);
        if let (false, Some(w)) = (
            ["vfree", "vmap-huge", "call"].contains(verb),
            args.iter().find(kernel),
        ) {
            return Err(format!("'{w}' is a kernel page: a CPU thread takes it only in 'vfree', 'vmap-huge' or 'call' (a device thread may read or write it)"));
        }
    }
    let action = match body {
        ["read", p] => Action::Read { page: page(p)? },
        ["write", p, _] if cpu && pages[page(p)?].hugetlb && pages[page(p)?].cow => {
            return Err(format!(
                "'{p}': a CPU write to a read-only hugetlb page (hugetlb_cow) is not modelled"
            ))
        }
        ["write", p, v] => Action::Write {
            page: page(p)?,
            value: parse_int(v).ok_or_else(|| {
                format!(
                    "'{}' is not a 64-bit number (write 0x.. or decimal)",
                    shown(v)
                )
            })?,
        },
        ["munmap", p, rest @ ..] if rest.len() <= 1 => {
            let i = page(p)?;
            Action::Munmap {
                page: i,
                pages: page_count(pages, i, rest.first().copied())?,
            }
        }
        ["madv-dontneed", p, rest @ ..] if rest.len() <= 1 => {
            let i = page(p)?;
            if pages[i].hugetlb {
                return Err(format!("'{p}': madvise(MADV_DONTNEED) of a hugetlb page fails with EINVAL in Linux 4.14 (can_madv_dontneed_vma): munmap it instead"));
            }
            Action::MadvDontneed {
                page: i,
                pages: page_count(pages, i, rest.first().copied())?,
            }
        }
        ["mremap", p, q, rest @ ..] if rest.len() <= 1 => 'mremap: {
            let (i, j) = (page(p)?, page(q)?);
            let (from, to) = (&pages[i], &pages[j]);
            if from.absent {
                return Err(format!("'{p}' is not mapped: mremap moves a page that is (a small page, a transparent huge page or a hugetlb page)"));
            }
            if from.thp && rest.first() != Some(&"512") {
                return Err(format!("'{p}' is a transparent huge page: mremap moves it whole, 'mremap {p} {q} 512' (move_huge_pmd); a part of it would be split first (split_huge_pmd, not modelled here)"));
            }
            if from.process != to.process {
                return Err(format!("'{p}' and '{q}' are in different processes: mremap moves a page within its own address space"));
            }
            if !to.absent {
                return Err(format!("'{q}' is mapped: mremap's destination is an address nothing maps yet (declare it 'absent: true'; MREMAP_FIXED over a mapping is not modelled)"));
            }
            if from.shares.is_some() || pages.iter().any(|o| o.shares == Some(i)) {
                return Err(format!("'{p}' is a page-cache page another process maps too: mremap of it is not modelled (the rmap walk would have to follow the move); mremap a page only this process maps"));
            }
            if from.hugetlb {
                let (n, bytes) = (from.huge_size().frames(), from.huge_size().bytes());
                let what = if from.gigantic { "1 GiB" } else { "2 MiB" };
                if rest.first().copied() != Some(n.to_string().as_str()) {
                    return Err(format!("'{p}' is a {what} hugetlb page: mremap moves it whole, 'mremap {p} {q} {n}' (move_hugetlb_page_tables, Linux 5.16)"));
                }
                if (from.va ^ to.va) & (bytes - 1) != 0 {
                    return Err(format!("'{q}' is not at the offset in its {what} region that '{p}' is at in its page: the huge page moves whole, from a {what} boundary to a {what} boundary, and '{q}' names the word '{p}' names after the move (give '{q}' an address whose offset in its {what} region is {:#x})", from.va & (bytes - 1)));
                }
                let other = pages.iter().find(|o| {
                    o.process == from.process
                        && !std::ptr::eq(*o, from)
                        && !std::ptr::eq(*o, to)
                        && o.va & !(bytes - 1) == to.va & !(bytes - 1)
                });
                if let Some(o) = other {
                    return Err(format!("'{}' lies in the {what} region '{q}' names: the hugetlb page moves there whole (put '{}' in another region)", o.name, o.name));
                }
                break 'mremap Action::Mremap {
                    page: i,
                    to: j,
                    pages: n,
                };
            }
            let n = match rest.first() {
                None => 1,
                Some(&"512") => 512,
                Some(&"262144") => 262_144,
                Some(n) => return Err(format!("'{}': mremap moves one page, 512 (a whole 2 MiB region, page table and all: move_normal_pmd) or 262144 (a whole 1 GiB region: move_normal_pud); other lengths are not modelled", shown(n))),
            };
            if n > 1 {
                let (bytes, what, fun) = if n == 512 && from.thp {
                    (0x20_0000u64, "2 MiB", "move_huge_pmd")
                } else if n == 512 {
                    (0x20_0000u64, "2 MiB", "move_normal_pmd")
                } else {
                    (0x4000_0000u64, "1 GiB", "move_normal_pud")
                };
                let region = |v: u64| v & !(bytes - 1);
                for (name, v) in [(p, from.va), (q, to.va)] {
                    if v & (bytes - 1) & !0xfff != 0 {
                        return Err(format!("'{name}' is not in the first page of a {what} region: {fun} moves whole page tables, from a {what} boundary to a {what} boundary"));
                    }
                }
                let other = pages.iter().find(|o| {
                    o.process == from.process
                        && !std::ptr::eq(*o, from)
                        && !std::ptr::eq(*o, to)
                        && (region(o.va) == region(from.va) || region(o.va) == region(to.va))
                });
                if let Some(o) = other {
                    return Err(format!("'{}' lies in the {what} region '{p}' or '{q}' names: mremap of {n} pages moves that region's whole page table, and the model follows the named page only (put '{}' in another region)", o.name, o.name));
                }
            }
            Action::Mremap {
                page: i,
                to: j,
                pages: n,
            }
        }
        ["call", name, p, rest @ ..] if rest.len() <= 1 => {
            let def = paths.get(name).ok_or_else(|| {
                format!(
                    "no path '{}': define it under 'paths:' (the paths are {})",
                    shown(name),
                    paths.names()
                )
            })?;
            if def.0.retries() {
                return Err(format!("'{name}' is a fault handler (it ends in 'retry'): an access runs it (write a store to a COW page)"));
            }
            let i = page(p)?;
            Action::Call {
                path: name.to_string(),
                page: i,
                pages: page_count(pages, i, rest.first().copied())?,
            }
        }
        ["ksm-wrprotect", p] => Action::Ksm {
            page: ksm_page(pages, page(p)?)?,
            into: None,
        },
        ["ksm-merge", p, q] => {
            let (i, j) = (ksm_page(pages, page(p)?)?, ksm_page(pages, page(q)?)?);
            if i == j {
                return Err("ksm-merge needs two different pages".into());
            }
            if pages[i].process != pages[j].process {
                return Err(format!("'{p}' and '{q}' are in different processes: a merge across processes is not modelled (the stable page's other mappings are not walked); merge pages of one process"));
            }
            Action::Ksm {
                page: i,
                into: Some(j),
            }
        }
        [w @ ("writeback" | "dax-writeback"), p] => {
            let i = page(p)?;
            if pages[i].hugetlb {
                return Err(format!("'{p}': writeback of a hugetlb page is not modelled (hugetlbfs pages are not written back)"));
            }
            Action::Writeback {
                page: i,
                dax: *w == "dax-writeback",
            }
        }
        ["mprotect", p, "ro"] => Action::MprotectRo { page: page(p)? },
        ["fork", p] => {
            let i = page(p)?;
            if !pages[i].hugetlb {
                return Err(format!("'{p}': fork is modelled for hugetlb pages only (copy_hugetlb_page_range; copy_pte_range and copy_huge_pmd are not)"));
            }
            if pages[i].file {
                return Err(format!("'{p}': fork of a shared hugetlb mapping (copy_hugetlb_page_range shares the entry, no COW) is not modelled: fork a private hugetlb page"));
            }
            Action::Fork { page: i }
        }
        ["unbind", rest @ ..] if rest.len() <= 1 => Action::Unbind {
            process: process_arg(pages, rest.first().copied())?,
        },
        ["exit", rest @ ..] if rest.len() <= 1 => Action::Exit {
            process: process_arg(pages, rest.first().copied())?,
        },
        ["collapse", p] => {
            let i = page(p)?;
            if pages[i].cow || pages[i].thp || pages[i].hugetlb || pages[i].file {
                return Err(format!("'{p}': collapse takes a private small page (its 2 MiB region becomes a huge page)"));
            }
            Action::Collapse { page: i }
        }
        ["numa-hint", p, rest @ ..] if matches!(rest, [] | ["misplaced"]) => {
            let i = page(p)?;
            if pages[i].hugetlb {
                return Err(format!(
                    "'{p}': NUMA balancing skips hugetlb VMAs (task_numa_work)"
                ));
            }
            if pages[i].thp && (pages[i].cow || pages[i].zero) {
                return Err(format!("'{p}': NUMA hinting of a THP the parent shares after fork, or of the huge zero page, is not modelled: hint a private THP or a small page"));
            }
            Action::NumaHint {
                page: i,
                misplaced: !rest.is_empty(),
            }
        }
        ["madv-free", p] => {
            let i = page(p)?;
            if pages[i].cow || pages[i].thp || pages[i].hugetlb || pages[i].file {
                return Err(format!(
                    "'{p}': MADV_FREE is modelled for private anonymous small pages only"
                ));
            }
            Action::MadvFree { page: i }
        }
        ["migrate", p] if pages[page(p)?].hugetlb => {
            let i = page(p)?;
            if pages[i].cow {
                return Err(format!("'{p}': migration of a hugetlb page the parent shares after fork is not modelled: migrate one only this process maps, or a shared file one"));
            }
            Action::Unmap {
                page: i,
                migrate: true,
            }
        }
        [v @ ("reclaim" | "migrate"), p] => {
            let i = page(p)?;
            if pages[i].cow || pages[i].thp || pages[i].hugetlb {
                return Err(format!(
                    "'{p}': reclaim and migration are modelled for private small pages only"
                ));
            }
            Action::Unmap {
                page: i,
                migrate: *v == "migrate",
            }
        }
        ["split", p] => {
            let i = page(p)?;
            if !pages[i].thp || pages[i].cow {
                return Err(format!("'{p}' is not a private transparent huge page: split takes a 'thp: true' page (the huge zero page too; a THP the parent shares after fork is not modelled)"));
            }
            Action::Split { page: i }
        }
        [v @ ("vfree" | "vmap-huge"), p] => {
            let i = page(p)?;
            if !pages[i].kernel {
                return Err(format!("'{p}' is a user page: {v} takes a kernel page (declare it 'kernel: true', a vmalloc address)"));
            }
            match *v {
                "vfree" => Action::Vfree { page: i },
                _ => Action::VmapHuge { page: i },
            }
        }
        ["resume"] => Action::Resume,
        _ => return Err(USAGE.into()),
    };

    Ok(Entry {
        thread,
        action,
        until,
        text: words.join(" "),
    })
}

/// A page KSM can ever merge: anonymous and not hugetlb. (A THP or the
/// huge zero page may be split into small pages by an earlier write, so the
/// kernel path decides for those when it runs.)
/// The process an `exit` or `unbind` names (0 when it names none): one
/// that a page of the scenario is in.
fn process_arg(pages: &[Page], n: Option<&str>) -> Result<u8, String> {
    let Some(n) = n else { return Ok(0) };
    let count = processes(pages);
    match n.parse::<u8>() {
        Ok(p) if usize::from(p) < count => Ok(p),
        _ => Err(format!(
            "'{}' is not a process of this scenario: its pages are in processes 0 to {} (a page's 'process:')",
            shown(n),
            count - 1
        )),
    }
}

/// How many processes the pages are in (at least one: process 0).
pub fn processes(pages: &[Page]) -> usize {
    pages
        .iter()
        .map(|p| usize::from(p.process) + 1)
        .max()
        .unwrap_or(1)
}

impl Action {
    /// The bundled function the action runs that a kernel release after
    /// the seed's brought (`Paths::introduced_after_kernel` tells which).
    pub fn function(&self, pages: &[Page]) -> Option<&'static str> {
        match *self {
            Action::Mremap { page, pages: n, .. } => match (n, &pages[page]) {
                (_, p) if p.hugetlb => Some("move_hugetlb_page_tables"),
                (512, p) if !p.thp => Some("move_normal_pmd"),
                (262_144, _) => Some("move_normal_pud"),
                _ => None,
            },
            _ => None,
        }
    }

    /// The process the action's CPU thread acts in (as `current->mm`): its
    /// page's, or the one it names.
    pub fn process(&self, pages: &[Page]) -> u8 {
        match *self {
            Action::Unbind { process } | Action::Exit { process } => process,
            Action::Resume => 0,
            _ => self.page().map_or(0, |i| pages[i].process),
        }
    }

    /// The page the action names first, if it names one.
    pub fn page(&self) -> Option<usize> {
        match *self {
            Action::Read { page }
            | Action::Write { page, .. }
            | Action::Munmap { page, .. }
            | Action::Ksm { page, .. }
            | Action::Writeback { page, .. }
            | Action::MprotectRo { page }
            | Action::Fork { page }
            | Action::Split { page }
            | Action::MadvFree { page }
            | Action::MadvDontneed { page, .. }
            | Action::Collapse { page }
            | Action::NumaHint { page, .. }
            | Action::Unmap { page, .. }
            | Action::Mremap { page, .. }
            | Action::Vfree { page }
            | Action::VmapHuge { page }
            | Action::Call { page, .. } => Some(page),
            Action::Unbind { .. } | Action::Exit { .. } | Action::Resume => None,
        }
    }
}

fn ksm_page(pages: &[Page], i: usize) -> Result<usize, String> {
    let p = &pages[i];
    if p.file || p.hugetlb {
        return Err(format!(
            "'{}': KSM merges private anonymous pages only (not file or hugetlb pages)",
            p.name
        ));
    }
    Ok(i)
}

/// The most actions one thread's program holds (after `N x` and ranges).
pub const MAX_PROGRAM: usize = 64;

/// One entry of a thread's program (`programs:`): an action without
/// `until`, not `resume`; `N x <action>` repeats it (N from 1 to
/// [`MAX_PROGRAM`]); a device access may stream over named pages in the
/// order the scenario declares them, `read addrA..addrC` or
/// `write addrA..addrC <value>`.
pub fn parse_program_entry(
    thread: ThreadRef,
    text: &str,
    pages: &[Page],
    paths: &Paths,
) -> Result<Vec<Entry>, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let (times, body) = match words.as_slice() {
        [n, "x", rest @ ..] if !rest.is_empty() => {
            let n = parse_int(n)
                .filter(|n| (1..=MAX_PROGRAM as u64).contains(n))
                .ok_or_else(|| {
                    format!(
                        "'{}' is not a repeat count from 1 to {MAX_PROGRAM}",
                        shown(n)
                    )
                })?;
            (n as usize, rest)
        }
        _ => (1, words.as_slice()),
    };
    if thread == ThreadRef::Iopf {
        return Err("the I/O page fault worker has no program: its work is the devices' Page Requests, and explore schedules it whenever params.pri is set".into());
    }
    if body.contains(&"until") {
        return Err("a program runs each action to its end: drop 'until' (explore chooses where threads stop)".into());
    }
    if body.first() == Some(&"resume") {
        return Err("a program lists actions; 'resume' belongs to a timeline".into());
    }
    // A device access over a range of named pages.
    let ranged = match body {
        [verb @ ("read" | "write"), range, rest @ ..] if range.contains("..") => {
            if matches!(thread, ThreadRef::Cpu(_)) {
                return Err(
                    "a range of pages is for device accesses (a device streaming over them)".into(),
                );
            }
            let (from, to) = range.split_once("..").unwrap_or_default();
            let pos = |n: &str| {
                pages.iter().position(|p| p.name == n).ok_or_else(|| {
                    format!("unknown page '{}': pages are {}", shown(n), names(pages))
                })
            };
            let (a, b) = (pos(from)?, pos(to)?);
            if a > b {
                return Err(format!(
                    "'{from}' comes after '{to}' in pages: write the range in the order the pages are declared"
                ));
            }
            Some(
                (a..=b)
                    .map(|i| {
                        let mut w = vec![*verb, pages[i].name.as_str()];
                        w.extend(rest.iter().copied());
                        w.join(" ")
                    })
                    .collect::<Vec<_>>(),
            )
        }
        _ => None,
    };
    let texts = ranged.unwrap_or_else(|| vec![body.join(" ")]);
    let mut out = Vec::new();
    for _ in 0..times {
        for t in &texts {
            out.push(parse_action(thread, t, pages, &[], paths)?);
            if out.len() > MAX_PROGRAM {
                return Err(format!(
                    "more than {MAX_PROGRAM} actions: a program is a short list"
                ));
            }
        }
    }
    Ok(out)
}

/// `[<pages>]` of `munmap` and `call`: 1 to [`MAX_MUNMAP_PAGES`] pages
/// from page `i`, inside the user half.
fn page_count(pages: &[Page], i: usize, n: Option<&str>) -> Result<u64, String> {
    let n = match n {
        None => 1,
        Some(n) => parse_int(n)
            .filter(|n| (1..=MAX_MUNMAP_PAGES).contains(n))
            .ok_or_else(|| {
                format!(
                    "'{}' is not a page count from 1 to {MAX_MUNMAP_PAGES}",
                    shown(n)
                )
            })?,
    };
    let start = pages[i].va & !0xfff;
    if start + n * 4096 > USER_END {
        return Err(format!(
            "{n} pages from '{}' run past the end of the user address space ({USER_END:#x})",
            pages[i].name
        ));
    }
    Ok(n)
}

fn names(pages: &[Page]) -> String {
    pages
        .iter()
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_names_are_canonical() {
        assert_eq!(parse_thread("cpu0"), Ok(ThreadRef::Cpu(0)));
        assert_eq!(parse_thread("cpu15"), Ok(ThreadRef::Cpu(15)));
        assert_eq!(parse_thread("dev10"), Ok(ThreadRef::Dev(10)));
        assert_eq!(parse_thread("iopf"), Ok(ThreadRef::Iopf));
        for bad in [
            "cpu00", "cpu+0", "cpu01", "cpu16", "dev16", "cpu", "gpu0", "cpu 0", "cpu-0", "dev٣",
            "iopf0", "IOPF",
        ] {
            let e = parse_thread(bad).unwrap_err();
            assert!(
                e.contains("use cpu0..cpu15, dev0..dev15 or iopf"),
                "{bad}: {e}"
            );
        }
        assert!(parse_thread("cpu\x1b0").unwrap_err().contains("\\u{1b}"));
    }
}
