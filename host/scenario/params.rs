//! The run-time parameters of a scenario (`params:`) and of `sweep --param`:
//! one table, [`PARAMS`], gives each its name, meaning, default and allowed
//! range, so a scenario and the command line accept exactly the same values
//! and a value is never clamped or rounded behind the user's back.
//!
//! The ranges keep every wait bounded: the largest latencies still let a
//! step finish within the largest watchdog, and no sum of them can wrap.

/// Timing and size knobs; every field can be set in `params:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Memory latency of both RTL memory ports, cycles.
    pub mem_latency: u64,
    /// The device's memory port latency if it differs (0: `mem_latency`).
    pub dev_mem_latency: u64,
    /// The IOMMU's memory port latency (walker and command queue) if it
    /// differs (0: `mem_latency`).
    pub iommu_mem_latency: u64,
    /// One-way ATS link latency, cycles.
    pub ats_latency: u64,
    /// Extra cycles a Translation Completion spends in the fabric (a switch
    /// short of completion credits); Invalidate Requests, posted, pass it as
    /// PCIe ordering allows (`cfg_ats_cpl_delay_i`; 0: one ordered stream).
    pub ats_cpl_delay: u64,
    /// ATC entries in use (`cfg_atc_entries_i`; 0: all the build has).
    pub atc_entries: u64,
    /// IOTLB ways in use per set (`cfg_iotlb_ways_i`; 0: all the build has).
    pub iotlb_ways: u64,
    /// IOTLB sets in use, a power of two (`cfg_iotlb_sets_i`; 0: all the
    /// build has).
    pub iotlb_sets: u64,
    /// ITags in use: the device's Invalidate Queue Depth as the driver
    /// programmed it; the queue stalls while that many ATS invalidations are
    /// outstanding (`cfg_ats_itags_i`; 0: all the build has).
    pub ats_itags: u64,
    /// Entries of the in-memory command queue (a power of two, 2 to 256:
    /// one 4 KiB frame of 16-byte commands; `cfg_cq_log2n_i`). The driver
    /// spins while it is full.
    pub cq_entries: u64,
    /// Cycles one kernel-path step (one checkpoint) takes.
    pub cpu_step_cycles: u64,
    /// A step of the timeline that runs longer than this fails (watchdog).
    pub watchdog_cycles: u64,
    /// Pages an mmu_gather batch holds before it must flush and free
    /// (before E): see paths/zap_pte_range.yaml.
    pub gather_batch: u64,
    /// Check the RTL's SystemVerilog assertions (default true); false lets a
    /// run go on past a broken invariant, for the checker to judge
    /// (`--no-assert`).
    pub assertions: bool,
    /// ATS invalidation timeout of the IOMMU, cycles (`cfg_ats_timeout_i`;
    /// 0: never time out).
    pub ats_timeout: u64,
    /// PCIe PRI: the Page Requests the device sends for one access before
    /// it gives up (`cfg_pri_limit_i`); the kernel's I/O page fault handler
    /// answers each. 0: no PRI, a translation fault ends the access.
    pub pri: u64,
    /// RISC-V socket: the AXI ID on the IOMMU's memory port (`mem_`) whose
    /// requests take `iommu_slow_cycles` more (a manager missing a cache the
    /// others hit; on the bundled RISC-V design ID 0 is its walker).
    pub iommu_slow_id: u64,
    /// RISC-V socket: the extra cycles of `iommu_slow_id`'s requests (0:
    /// none); the other IDs' responses overtake them.
    pub iommu_slow_cycles: u64,
    /// RISC-V socket: memory reads take their value when their address is
    /// accepted, answered after the latency (else when the data leaves).
    pub mem_sample_on_request: bool,
}

impl Default for Params {
    fn default() -> Self {
        let mut p = Params {
            mem_latency: 0,
            dev_mem_latency: 0,
            iommu_mem_latency: 0,
            ats_latency: 0,
            ats_cpl_delay: 0,
            atc_entries: 0,
            iotlb_ways: 0,
            iotlb_sets: 0,
            ats_itags: 0,
            cq_entries: 0,
            cpu_step_cycles: 0,
            watchdog_cycles: 0,
            gather_batch: 0,
            assertions: false,
            ats_timeout: 0,
            pri: 0,
            iommu_slow_id: 0,
            iommu_slow_cycles: 0,
            mem_sample_on_request: false,
        };
        for s in PARAMS {
            (s.set)(&mut p, s.default);
        }
        p
    }
}

/// What values a parameter takes besides its range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Any whole number in the range.
    Any,
    /// A power of two in the range.
    PowerOfTwo,
    /// 0, or a power of two in the range.
    ZeroOrPowerOfTwo,
    /// `true` or `false` (stored as 1 or 0).
    Bool,
}

/// One parameter: its name in `params:` and `--param`, what it means, its
/// default, its range and rule, whether `sweep --param` may vary it.
pub struct ParamSpec {
    pub name: &'static str,
    pub doc: &'static str,
    pub default: u64,
    pub min: u64,
    pub max: u64,
    pub rule: Rule,
    pub sweep: bool,
    pub get: fn(&Params) -> u64,
    pub set: fn(&mut Params, u64),
}

macro_rules! spec {
    ($name:ident, $doc:expr, $default:expr, $min:expr, $max:expr, $rule:ident, $sweep:expr) => {
        ParamSpec {
            name: stringify!($name),
            doc: $doc,
            default: $default,
            min: $min,
            max: $max,
            rule: Rule::$rule,
            sweep: $sweep,
            get: |p| p.$name,
            set: |p, v| p.$name = v,
        }
    };
    // a flag: 0 or 1, never swept
    ($name:ident, $doc:expr, $default:expr, bool) => {
        ParamSpec {
            name: stringify!($name),
            doc: $doc,
            default: $default,
            min: 0,
            max: 1,
            rule: Rule::Bool,
            sweep: false,
            get: |p| p.$name as u64,
            set: |p, v| p.$name = v != 0,
        }
    };
}

/// The largest latency of a memory port, cycles (10 us at 1 GHz).
const MAX_MEM_LATENCY: u64 = 10_000;
/// The 16-bit link ports (`cfg_ats_latency_i`, `cfg_ats_cpl_delay_i`).
const MAX_LINK: u64 = u16::MAX as u64;
/// The 8-bit size ports (`cfg_atc_entries_i`, ...); at least the built size
/// means all the build has.
const MAX_SIZE: u64 = u8::MAX as u64;

/// Every parameter, in the order `docs/scenarios.md` lists them.
pub const PARAMS: &[ParamSpec] = &[
    spec!(
        mem_latency,
        "memory latency of both RTL memory ports, cycles",
        40,
        1,
        MAX_MEM_LATENCY,
        Any,
        true
    ),
    spec!(
        dev_mem_latency,
        "device memory port latency, cycles (0: mem_latency)",
        0,
        0,
        MAX_MEM_LATENCY,
        Any,
        true
    ),
    spec!(
        iommu_mem_latency,
        "IOMMU memory port latency (walker, queue), cycles (0: mem_latency)",
        0,
        0,
        MAX_MEM_LATENCY,
        Any,
        true
    ),
    spec!(
        ats_latency,
        "one-way ATS link latency, cycles",
        150,
        1,
        MAX_LINK,
        Any,
        true
    ),
    spec!(
        ats_cpl_delay,
        "extra cycles a Translation Completion waits in the fabric (Invalidate Requests pass it)",
        0,
        0,
        MAX_LINK,
        Any,
        true
    ),
    spec!(
        atc_entries,
        "ATC entries in use (0, or at least the built size: all the build has)",
        0,
        0,
        MAX_SIZE,
        Any,
        true
    ),
    spec!(
        iotlb_ways,
        "IOTLB ways in use per set (0, or at least the built ways: all the build has)",
        0,
        0,
        MAX_SIZE,
        Any,
        true
    ),
    spec!(
        iotlb_sets,
        "IOTLB sets in use, a power of two (0, or at least the built sets: all the build has)",
        0,
        0,
        128,
        ZeroOrPowerOfTwo,
        true
    ),
    spec!(
        ats_itags,
        "ITags in use: the device's Invalidate Queue Depth (0, or at least the built depth: all)",
        0,
        0,
        MAX_SIZE,
        Any,
        true
    ),
    spec!(
        cq_entries,
        "command queue entries, a power of two (one 4 KiB frame of 16-byte commands)",
        256,
        2,
        256,
        PowerOfTwo,
        true
    ),
    spec!(
        cpu_step_cycles,
        "cycles per kernel-path step",
        10,
        1,
        10_000,
        Any,
        true
    ),
    spec!(
        watchdog_cycles,
        "cycles a timeline step may run before the run fails",
        200_000,
        1,
        50_000_000,
        Any,
        false
    ),
    spec!(
        gather_batch,
        "mmu_gather batch size, pages",
        8,
        1,
        512,
        Any,
        true
    ),
    spec!(
        assertions,
        "check the RTL's SystemVerilog assertions",
        1,
        bool
    ),
    spec!(
        ats_timeout,
        "ATS invalidation timeout, cycles (0: never)",
        0,
        0,
        u32::MAX as u64,
        Any,
        true
    ),
    spec!(
        pri,
        "PCIe PRI: Page Requests the device sends per access before it gives up (0: no PRI)",
        0,
        0,
        MAX_SIZE,
        Any,
        true
    ),
    spec!(
        iommu_slow_id,
        "RISC-V socket: the AXI ID of the IOMMU's memory port whose requests are slower",
        0,
        0,
        15,
        Any,
        true
    ),
    spec!(
        iommu_slow_cycles,
        "RISC-V socket: extra cycles of iommu_slow_id's requests (0: none)",
        0,
        0,
        MAX_MEM_LATENCY,
        Any,
        true
    ),
    spec!(
        mem_sample_on_request,
        "RISC-V socket: a memory read takes its value when its address is accepted",
        0,
        bool
    ),
];

/// The parameter called `name`.
pub fn spec(name: &str) -> Option<&'static ParamSpec> {
    PARAMS.iter().find(|s| s.name == name)
}

/// Every parameter name, comma separated (for error messages).
pub fn names(sweep_only: bool) -> String {
    PARAMS
        .iter()
        .filter(|s| s.sweep || !sweep_only)
        .map(|s| s.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A whole number as a scenario writes it: decimal or `0x` hex, `_`
/// allowed between digits. None when it is not one or exceeds 64 bits.
pub fn parse_int(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => (h, 16),
        None => (s, 10),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if !clean.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(&clean, radix).ok()
}

impl ParamSpec {
    /// The allowed values, as a message says them.
    pub fn allowed(&self) -> String {
        match self.rule {
            Rule::Bool => "true or false".into(),
            Rule::Any => format!("a whole number from {} to {}", self.min, self.max),
            Rule::PowerOfTwo => format!("a power of two from {} to {}", self.min, self.max),
            Rule::ZeroOrPowerOfTwo => {
                format!("0 or a power of two from 1 to {}", self.max)
            }
        }
    }

    /// A parameter of the RISC-V socket's memory ports (its doc says so):
    /// anything but its default is refused on x86-64.
    pub fn riscv_only(&self) -> bool {
        self.doc.starts_with("RISC-V socket")
    }

    /// Why `value` is refused on x86-64, if it is.
    pub fn refused_on_x86(&self, value: u64) -> Option<String> {
        (self.riscv_only() && value != self.default).then(|| {
            format!(
                "params.{} is a parameter of the RISC-V socket's memory ports: add 'arch: riscv-sv39', or drop it",
                self.name
            )
        })
    }

    /// Check a value against the range and rule.
    pub fn check(&self, v: u64) -> Result<u64, String> {
        let ok = (self.min..=self.max).contains(&v)
            && match self.rule {
                Rule::Any | Rule::Bool => true,
                Rule::PowerOfTwo => v.is_power_of_two(),
                Rule::ZeroOrPowerOfTwo => v == 0 || v.is_power_of_two(),
            };
        if ok {
            Ok(v)
        } else {
            Err(format!(
                "{} = {v} is out of range: give {} ({})",
                self.name,
                self.allowed(),
                self.doc
            ))
        }
    }

    /// Parse and check a value as written in a scenario or on the command line.
    pub fn parse(&self, text: &str) -> Result<u64, String> {
        let v = match self.rule {
            Rule::Bool => match text.trim() {
                "true" => Some(1),
                "false" => Some(0),
                _ => None,
            },
            _ => parse_int(text),
        };
        match v {
            Some(v) => self.check(v),
            None => Err(format!(
                "{} = '{}' is not {}",
                self.name,
                text.escape_debug(),
                self.allowed()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_from_the_table_and_pass_their_own_checks() {
        let p = Params::default();
        assert_eq!(p.mem_latency, 40);
        assert_eq!(p.cq_entries, 256);
        assert_eq!(p.watchdog_cycles, 200_000);
        assert!(p.assertions);
        for s in PARAMS {
            assert_eq!((s.get)(&p), s.default, "{}", s.name);
            assert_eq!(s.check(s.default), Ok(s.default), "{}", s.name);
            assert!(
                s.check(s.max).is_ok() && s.check(s.min).is_ok(),
                "{}",
                s.name
            );
        }
    }

    #[test]
    fn every_setter_writes_its_own_field() {
        for s in PARAMS {
            let mut p = Params::default();
            let v = if s.default == s.max { s.min } else { s.max };
            (s.set)(&mut p, v);
            assert_eq!((s.get)(&p), v, "{}", s.name);
            for o in PARAMS.iter().filter(|o| o.name != s.name) {
                assert_eq!((o.get)(&p), o.default, "{} wrote {}", s.name, o.name);
            }
        }
    }

    #[test]
    fn out_of_range_values_are_refused_never_clamped() {
        let cq = spec("cq_entries").unwrap();
        assert!(cq
            .parse("3")
            .unwrap_err()
            .contains("power of two from 2 to 256"));
        assert!(cq.parse("1000").is_err());
        assert_eq!(cq.parse("128"), Ok(128));
        let w = spec("watchdog_cycles").unwrap();
        assert!(w.parse("0").unwrap_err().contains("from 1 to 50000000"));
        let l = spec("ats_latency").unwrap();
        assert!(l.parse("18446744073709551615").is_err());
        assert!(l
            .parse("18446744073709551616")
            .unwrap_err()
            .contains("is not"));
        assert_eq!(l.parse("0x10"), Ok(16));
        assert_eq!(l.parse("1_000"), Ok(1000));
        let s = spec("iotlb_sets").unwrap();
        assert_eq!(s.parse("0"), Ok(0));
        assert!(s.parse("3").is_err());
        let a = spec("assertions").unwrap();
        assert_eq!(a.parse("false"), Ok(0));
        assert!(a.parse("1").is_err());
    }

    #[test]
    fn numbers_are_decimal_or_hex_with_underscores_between_digits() {
        assert_eq!(parse_int("0xA0"), Some(0xa0));
        assert_eq!(parse_int("1_024"), Some(1024));
        assert_eq!(parse_int("_1"), None);
        assert_eq!(parse_int("1__0"), None);
        assert_eq!(parse_int("0x"), None);
        assert_eq!(parse_int("-1"), None);
        assert_eq!(parse_int("+1"), None);
        assert_eq!(parse_int("0xffffffffffffffff"), Some(u64::MAX));
        assert_eq!(parse_int("0x1ffffffffffffffff"), None);
    }

    #[test]
    fn the_docs_table_lists_every_parameter_with_its_default() {
        let doc = include_str!("../../docs/scenarios.md");
        for s in PARAMS {
            let default = match s.rule {
                Rule::Bool => (if s.default == 1 { "true" } else { "false" }).to_string(),
                _ => s.default.to_string(),
            };
            let row = format!("| `{}` | {default} | ", s.name);
            assert!(doc.contains(&row), "docs/scenarios.md lacks {row}");
            if s.rule == Rule::Any {
                let range = format!(" | {}..{} | ", s.min, s.max);
                assert!(
                    doc.contains(&format!("{row}{}", &range[3..])),
                    "{}: {range}",
                    s.name
                );
            }
        }
    }
}
