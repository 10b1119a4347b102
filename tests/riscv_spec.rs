//! The RISC-V IOMMU specification as `shootdown::riscv` writes it, checked
//! against a design built to it: the third-party RISC-V IOMMU's packages
//! (`$SHOOTDOWN_RTL_RISCV`, default `../shared/thirdparty/riscv-iommu`)
//! give its command opcodes, its commands' packed layouts and its register
//! offsets; two readings of the specification must agree bit for bit.

use shootdown::riscv::cmd::{Command, OP_IODIR, OP_IOFENCE, OP_IOTINVAL};
use shootdown::riscv::regs;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The design's package directory; None (the test says so) when there is
/// no third-party tree on this machine and none was named.
fn packages() -> Option<PathBuf> {
    let named = std::env::var_os("SHOOTDOWN_RTL_RISCV");
    if named.as_ref().is_some_and(|v| v == "off") {
        eprintln!("skipped: SHOOTDOWN_RTL_RISCV=off");
        return None;
    }
    let named = named.map(PathBuf::from);
    let dir = named.clone().unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/thirdparty/riscv-iommu")
    });
    let p = dir.join("packages/rv_iommu");
    if p.is_dir() {
        return Some(p);
    }
    assert!(
        named.is_none(),
        "SHOOTDOWN_RTL_RISCV has no {}",
        p.display()
    );
    eprintln!("skipped: no third-party RISC-V IOMMU at {}", p.display());
    None
}

/// A packed struct's fields, least significant first: name -> (lo, width).
fn packed(text: &str, name: &str) -> BTreeMap<String, (u32, u32)> {
    let end = text
        .find(&format!("}} {name};"))
        .unwrap_or_else(|| panic!("no struct {name}"));
    let start = text[..end].rfind("typedef struct packed {").unwrap() + 23;
    let mut fields = Vec::new();
    for line in text[start..end].lines() {
        let line = line.split("//").next().unwrap().trim();
        let Some(decl) = line.strip_prefix("logic").map(str::trim) else {
            continue;
        };
        let (width, field) = match decl.strip_prefix('[') {
            Some(rest) => {
                let (range, field) = rest.split_once(']').unwrap();
                let (hi, lo) = range.split_once(':').unwrap();
                let hi: u32 = hi.trim().parse().unwrap();
                let lo: u32 = lo.trim().parse().unwrap();
                (hi - lo + 1, field)
            }
            None => (1, decl),
        };
        fields.push((field.trim().trim_end_matches(';').to_string(), width));
    }
    let mut out = BTreeMap::new();
    let mut lo = 0;
    for (f, w) in fields.into_iter().rev() {
        out.insert(f, (lo, w));
        lo += w;
    }
    out
}

/// The bits of `words` (128 bits, dword0 low) in `[lo, lo + width)`.
fn bits(words: [u64; 2], (lo, width): (u32, u32)) -> u128 {
    let all = u128::from(words[0]) | u128::from(words[1]) << 64;
    (all >> lo) & ((1u128 << width) - 1)
}

#[test]
fn opcodes_and_command_layouts_match_the_design() {
    let Some(dir) = packages() else { return };
    let pkg = std::fs::read_to_string(dir.join("rv_iommu_pkg.sv")).unwrap();
    // `localparam logic [6:0] IOFENCE  = 7'd2;`
    let op = |name: &str| -> u64 {
        let at = pkg
            .find(&format!("[6:0] {name} "))
            .unwrap_or_else(|| panic!("no opcode {name}"));
        let value = pkg[at..]
            .split('=')
            .nth(1)
            .unwrap()
            .split(';')
            .next()
            .unwrap();
        value.trim().trim_start_matches("7'd").parse().unwrap()
    };
    assert_eq!(op("IOTINVAL"), OP_IOTINVAL);
    assert_eq!(op("IOFENCE"), OP_IOFENCE);
    assert_eq!(op("IODIR"), OP_IODIR);

    // Every field at its maximum: each lands where the design reads it.
    let inval = packed(&pkg, "cq_iotinval_t");
    let w = Command::IotinvalVma {
        pscid: Some(0xf_ffff),
        addr: Some(0x3f_ffff_ffff_f000),
        gscid: Some(0xffff),
    }
    .encode()
    .unwrap();
    for (field, want) in [
        ("opcode", 1),
        ("func3", 0),
        ("av", 1),
        ("pscid", 0xf_ffff),
        ("pscv", 1),
        ("gv", 1),
        ("gscid", 0xffff),
        ("addr", 0x3ff_ffff_ffff),
    ] {
        assert_eq!(bits(w, inval[field]), want, "IOTINVAL.VMA {field}");
    }
    for reserved in ["reserved_1", "reserved_2", "reserved_3", "reserved_4"] {
        assert_eq!(bits(w, inval[reserved]), 0, "IOTINVAL.VMA {reserved}");
    }

    let fence = packed(&pkg, "cq_iofence_t");
    let w = Command::IofenceC {
        pr: true,
        pw: true,
        wsi: true,
        write: Some((0x8765_4320, 0xdead_beef)),
    }
    .encode()
    .unwrap();
    for (field, want) in [
        ("opcode", 2),
        ("func3", 0),
        ("av", 1),
        ("wsi", 1),
        ("pr", 1),
        ("pw", 1),
        ("data", 0xdead_beef),
        // the design keeps ADDR[63:2]
        ("addr", 0x8765_4320 >> 2),
    ] {
        assert_eq!(bits(w, fence[field]), want, "IOFENCE.C {field}");
    }

    let dir_inval = packed(&pkg, "cq_iodirinval_t");
    let w = Command::IodirInvalPdt {
        did: 0xab_cdef,
        pid: 0xf_ffff,
    }
    .encode()
    .unwrap();
    for (field, want) in [
        ("opcode", 3),
        ("func3", 1),
        ("pid", 0xf_ffff),
        ("dv", 1),
        ("did", 0xab_cdef),
    ] {
        assert_eq!(bits(w, dir_inval[field]), want, "IODIR.INVAL_PDT {field}");
    }
}

#[test]
fn register_offsets_match_the_design() {
    let Some(dir) = packages() else { return };
    let reg = std::fs::read_to_string(dir.join("rv_iommu_reg_pkg.sv")).unwrap();
    let offset = |name: &str| -> Option<u32> {
        let upper = name.to_uppercase();
        [
            format!("IOMMU_{upper}_OFFSET_L "),
            format!("IOMMU_{upper}_OFFSET "),
        ]
        .iter()
        .find_map(|p| reg.find(p.as_str()).map(|at| &reg[at..]))
        .map(|rest| {
            let hex = rest.split("12'h").nth(1).unwrap().trim_start();
            let hex: String = hex.chars().take_while(char::is_ascii_hexdigit).collect();
            u32::from_str_radix(&hex, 16).unwrap()
        })
    };
    let mut checked = Vec::new();
    for (name, off, _) in regs::ALL {
        // the design has no page-request queue (no ATS): pq* are absent
        if let Some(theirs) = offset(name) {
            assert_eq!(theirs, off, "{name}");
            checked.push(name);
        }
    }
    for must in [
        "capabilities",
        "fctl",
        "ddtp",
        "cqb",
        "cqh",
        "cqt",
        "cqcsr",
        "fqcsr",
    ] {
        assert!(checked.contains(&must), "{must} not found in the design");
    }
}
