//! Scenario mutations for the parser fuzz test (`tests/fuzz_scenario.rs`)
//! and the soak benchmark (`benches/soak.rs`): small, deterministic edits
//! of real scenarios that keep most of the file valid, so the mutated file
//! reaches deep into the parser and, when it still parses, into the run.

/// A small deterministic generator (xorshift64*): the same seed gives the
/// same mutations on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// Words a scenario is made of, and words that break it.
const WORDS: &[&str] = &[
    "cpu0",
    "cpu1",
    "cpu15",
    "cpu16",
    "cpu00",
    "cpu+1",
    "dev0",
    "dev2",
    "dev15",
    "dev16",
    "gpu0",
    "iopf",
    "addrA",
    "addrB",
    "addrC",
    "addrT",
    "read",
    "write",
    "munmap",
    "ksm-wrprotect",
    "ksm-merge",
    "writeback",
    "dax-writeback",
    "mprotect",
    "ro",
    "fork",
    "split",
    "reclaim",
    "migrate",
    "madv-free",
    "collapse",
    "madv-dontneed",
    "mremap",
    "numa-hint",
    "misplaced",
    "exit",
    "unbind",
    "resume",
    "until",
    "start",
    "lock",
    "clear_flush",
    "end",
    "unlock",
    "translated",
    "page-request",
    "requested",
    "vma",
    "anonymous",
    "respond",
    "responded",
    "pri: 4",
    "kernel: 4.19",
    "kernel: 3.2",
    "fault",
    "copy",
    "flush",
    "free",
    "finish",
    "cow: true",
    "thp: true",
    "hugetlb: true",
    "zero: true",
    "file: true",
    "absent: true",
    "process: 1",
    "process: 3",
    "process: 4",
    "shares: addrA",
    "shares: addrB",
    "rmap_next",
    "rmap_end",
    "mapcount",
    "alloc_huge",
    "huge_pmd_unshare",
    "huge_pte_offset",
    "alloc_thp",
    "huge_hinting",
    "tlb_flush_pending",
    "rmap_lock",
    "rmap_lock_read",
    "rmap_unlock",
    "pmd_alloc",
    "pud_alloc",
    "pud_of",
    "move",
    "intel@6.17",
    "intel@7.0",
    "1G",
    "2M",
    "hugetlb: 1G",
    "child_huge_pte",
    "tlb_remove_pud_tlb_entry",
    "huge_page_size",
    "PUD_SIZE",
    "deposit",
    "named",
    "huge_leaf_rw",
    "kernel: true",
    "kernel: supervisor",
    "vfree",
    "vmap-huge",
    "0xffffc90000001000",
    "flush_tlb_kernel_range",
    "iommu_sva_invalidate_kva_range",
    "pte_free_kernel",
    "kernel_huge_leaf",
    "mmap_lock: write",
    "mmap_lock: downgrade",
    "mmap_lock: none",
    "    mmap_lock: read",
    "pages[i]",
    "[4096]",
    "va:",
    "value:",
    "name:",
    "about:",
    "params:",
    "pages:",
    "timeline:",
    "expect:",
    "notify:",
    "driver:",
    "inject:",
    "seed",
    "always",
    "arch",
    "end-only",
    "clean",
    "stale-read",
    "order-violation",
    "use-after-free",
    "lost-write",
    "no-progress",
    "isolation",
    "intel",
    "amd",
    "arm",
    "early-fence",
    "cache-racing-cpl",
    "lookup-any-pasid",
    "watchdog_cycles:",
    "cpu_step_cycles:",
    "ats_latency:",
    "ats_cpl_delay:",
    "mem_latency:",
    "gather_batch:",
    "cq_entries:",
    "iotlb_sets:",
    "atc_entries:",
    "assertions:",
    "ats_timeout:",
    "pri:",
    "-",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "#",
    "&a",
    "*a",
    "---",
    "...",
    "? ",
    "!!int",
    "!!str",
    "|",
    ">",
    "'",
    "\"",
    "~",
    "null",
    "true",
    "no",
    "\t",
    "\u{feff}",
    "\u{1b}[31m",
    "\0",
    "\r",
    "\\",
];

/// Numbers at and beyond every boundary.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "7",
    "8",
    "255",
    "256",
    "512",
    "513",
    "262144",
    "262145",
    "4096",
    "65535",
    "65536",
    "10000",
    "10001",
    "200000",
    "50000000",
    "50000001",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "-1",
    "0x0",
    "0x10000",
    "0x7f0000000000",
    "0x7fffffffffff",
    "0x800000000000",
    "0xffffffffffffffff",
    "1e9",
    "1.5",
    "0b101",
    "0o7",
    "1_000",
    "__1",
];

/// Apply 1 to `max_edits` edits to `src`; `others` supplies lines to
/// splice in from other scenarios.
pub fn mutate(rng: &mut Rng, src: &[u8], others: &[Vec<u8>], max_edits: usize) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = src.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    let edits = 1 + rng.below(max_edits.max(1));
    for _ in 0..edits {
        if lines.is_empty() {
            lines.push(Vec::new());
        }
        let i = rng.below(lines.len());
        match rng.below(11) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            2 => {
                let j = rng.below(lines.len());
                lines.swap(i, j);
            }
            3 | 4 => replace_token(rng, &mut lines[i], NUMBERS, |t| {
                t.first().is_some_and(u8::is_ascii_digit)
            }),
            5 | 6 => replace_token(rng, &mut lines[i], WORDS, |_| true),
            7 => {
                // Insert a word at a random place.
                let at = rng.below(lines[i].len() + 1);
                let w = rng.pick(WORDS).as_bytes().to_vec();
                lines[i].splice(at..at, w);
            }
            8 => {
                // Indent or unindent.
                if rng.below(2) == 0 {
                    lines[i].splice(0..0, b"  ".iter().copied());
                } else {
                    let n = lines[i].iter().take_while(|b| **b == b' ').count().min(2);
                    lines[i].drain(..n);
                }
            }
            9 => {
                // Raw bytes, possibly not UTF-8.
                let at = rng.below(lines[i].len() + 1);
                let b = [0x80u8, 0xc3, 0xe9, 0xff, 0x00, 0x7f, 0x1b, 0x0d][rng.below(8)];
                lines[i].insert(at, b);
            }
            _ => {
                // A line of another scenario.
                if let Some(o) = (!others.is_empty()).then(|| rng.pick(others)) {
                    let ol: Vec<&[u8]> = o.split(|b| *b == b'\n').collect();
                    let l = ol[rng.below(ol.len())].to_vec();
                    lines.insert(i, l);
                }
            }
        }
    }
    let mut out = lines.join(&b'\n');
    if rng.below(16) == 0 {
        let cut = rng.below(out.len() + 1);
        out.truncate(cut);
    }
    out
}

/// Replace one whitespace-separated token of `line` that `want` accepts by
/// a word of `from`.
fn replace_token(rng: &mut Rng, line: &mut Vec<u8>, from: &[&str], want: fn(&[u8]) -> bool) {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, b) in line
        .iter()
        .enumerate()
        .chain(std::iter::once((line.len(), &b' ')))
    {
        let sep = matches!(b, b' ' | b',' | b'{' | b'}' | b'[' | b']');
        match (start, sep) {
            (None, false) => start = Some(i),
            (Some(s), true) => {
                if want(&line[s..i]) {
                    spans.push((s, i));
                }
                start = None;
            }
            _ => {}
        }
    }
    if spans.is_empty() {
        return;
    }
    let (s, e) = spans[rng.below(spans.len())];
    let w = rng.pick(from).as_bytes().to_vec();
    line.splice(s..e, w);
}

/// The seeds: the bundled scenarios (valid) and the malformed corpus.
pub struct Seeds {
    pub valid: Vec<(String, Vec<u8>)>,
    pub bad: Vec<(String, Vec<u8>)>,
}

impl Seeds {
    pub fn load(root: &std::path::Path) -> Seeds {
        Seeds {
            // The bundled scenarios, and those with kernel paths of their own
            // (the path language's parser and interpreter get mutants too).
            valid: [
                yaml_files(&root.join("scenarios")),
                yaml_files(&root.join("scenarios/paths")),
            ]
            .concat(),
            bad: yaml_files(&root.join("tests/corpus/bad")),
        }
    }

    /// Every seed's bytes, for splicing.
    pub fn all_bytes(&self) -> Vec<Vec<u8>> {
        self.valid
            .iter()
            .chain(&self.bad)
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// A seed: a valid scenario three times in four, so that many mutants
    /// still parse and run.
    pub fn pick(&self, rng: &mut Rng) -> &(String, Vec<u8>) {
        if self.bad.is_empty() || rng.below(4) != 0 {
            rng.pick(&self.valid)
        } else {
            rng.pick(&self.bad)
        }
    }

    /// A mutant of a seed: the seed's name and the mutated bytes.
    pub fn mutant(&self, rng: &mut Rng, others: &[Vec<u8>], edits: usize) -> (String, Vec<u8>) {
        let (name, src) = self.pick(rng).clone();
        let bytes = mutate(rng, &src, others, edits);
        (name, bytes)
    }
}

fn yaml_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|f| Some((f.display().to_string(), std::fs::read(&f).ok()?)))
        .collect()
}

/// Whether an error text is clear: `<file>:<line>: <message>` (or
/// `<file>: <message>` for the whole file), the line within the file, one
/// line of printable text of reasonable length.
pub fn is_clear(text: &str, file: &str, lines: usize) -> Result<(), String> {
    let rest = text
        .strip_prefix(file)
        .ok_or_else(|| format!("does not start with the file name: {text:?}"))?;
    let msg = if let Some(r) = rest.strip_prefix(": ") {
        r
    } else {
        let r = rest
            .strip_prefix(':')
            .ok_or_else(|| format!("no ':' after the file: {text:?}"))?;
        let (n, m) = r
            .split_once(": ")
            .ok_or_else(|| format!("no line: {text:?}"))?;
        let n: usize = n.parse().map_err(|_| format!("no line number: {text:?}"))?;
        if n == 0 || n > lines + 1 {
            return Err(format!(
                "line {n} outside the file's {lines} lines: {text:?}"
            ));
        }
        m
    };
    if msg.trim().len() < 10 {
        return Err(format!("says almost nothing: {text:?}"));
    }
    if text.chars().any(char::is_control) {
        return Err(format!("a control character: {text:?}"));
    }
    if text.len() > 1200 {
        return Err(format!("{} characters long", text.len()));
    }
    Ok(())
}
