//! The command queue's commands (specification 3.1), two 64-bit words
//! each: dword0 carries the opcode in bits 6:0 and the function in 9:7.

use super::Field;

const OPCODE: Field = Field::new(6, 0);
const FUNC3: Field = Field::new(9, 7);

pub const OP_IOTINVAL: u64 = 1;
pub const OP_IOFENCE: u64 = 2;
pub const OP_IODIR: u64 = 3;
pub const OP_ATS: u64 = 4;

// IOTINVAL.VMA / .GVMA
const IOTINVAL_AV: u64 = 1 << 10;
const IOTINVAL_PSCID: Field = Field::new(31, 12);
const IOTINVAL_PSCV: u64 = 1 << 32;
const IOTINVAL_GV: u64 = 1 << 33;
const IOTINVAL_GSCID: Field = Field::new(59, 44);
/// dword1: the page number of the address.
const IOTINVAL_ADDR: Field = Field::new(61, 10);

// IOFENCE.C
const IOFENCE_AV: u64 = 1 << 10;
const IOFENCE_WSI: u64 = 1 << 11;
const IOFENCE_PR: u64 = 1 << 12;
const IOFENCE_PW: u64 = 1 << 13;
const IOFENCE_DATA: Field = Field::new(63, 32);

// IODIR.INVAL_DDT / _PDT
const IODIR_PID: Field = Field::new(31, 12);
const IODIR_DV: u64 = 1 << 33;
const IODIR_DID: Field = Field::new(63, 40);

/// A command, as the host writes it into the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// IOTINVAL.VMA: first-stage IOTLB entries of the address space
    /// `pscid` (None: every one), of the page at `addr` (None: every page),
    /// for the guest `gscid` (None: every guest; Linux's host driver sets
    /// none).
    IotinvalVma {
        pscid: Option<u32>,
        addr: Option<u64>,
        gscid: Option<u16>,
    },
    /// IOTINVAL.GVMA: second-stage entries of `gscid` (None: all), of the
    /// guest-physical page at `addr` (None: all).
    IotinvalGvma {
        gscid: Option<u16>,
        addr: Option<u64>,
    },
    /// IOFENCE.C: every earlier command done (and with `pr`/`pw`, earlier
    /// reads/writes of translated requests), then, with `write`, `data` (32
    /// bits) written to `addr` (4-byte aligned); `wsi`: also a wired
    /// interrupt.
    IofenceC {
        pr: bool,
        pw: bool,
        wsi: bool,
        write: Option<(u64, u32)>,
    },
    /// IODIR.INVAL_DDT: the cached device contexts of `did` (None: all).
    IodirInvalDdt { did: Option<u32> },
    /// IODIR.INVAL_PDT: the cached process context `pid` of device `did`.
    IodirInvalPdt { did: u32, pid: u32 },
}

/// Why a pair of words is not a command this module knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadCommand {
    /// A field's value does not fit it (an ID too wide, an unaligned
    /// address).
    Field(&'static str),
    /// Opcode and function name no command the specification defines
    /// (ATS commands are for designs with ATS: not modelled here).
    Unknown { opcode: u64, func3: u64 },
    /// A bit the specification reserves is set.
    Reserved { dword: u8, bits: u64 },
}

fn put(f: Field, v: u64, what: &'static str) -> Result<u64, BadCommand> {
    f.put(v).ok_or(BadCommand::Field(what))
}

fn head(opcode: u64, func3: u64) -> u64 {
    opcode | func3 << FUNC3.lo
}

impl Command {
    /// The command's two words.
    pub fn encode(self) -> Result<[u64; 2], BadCommand> {
        match self {
            Command::IotinvalVma { pscid, addr, gscid } => iotinval(0, pscid, gscid, addr),
            Command::IotinvalGvma { gscid, addr } => iotinval(1, None, gscid, addr),
            Command::IofenceC { pr, pw, wsi, write } => {
                let mut d0 = head(OP_IOFENCE, 0);
                d0 |= if pr { IOFENCE_PR } else { 0 };
                d0 |= if pw { IOFENCE_PW } else { 0 };
                d0 |= if wsi { IOFENCE_WSI } else { 0 };
                let d1 = match write {
                    Some((addr, data)) => {
                        if addr % 4 != 0 || addr >> 2 >= 1 << 62 {
                            return Err(BadCommand::Field("IOFENCE.C address"));
                        }
                        d0 |= IOFENCE_AV | put(IOFENCE_DATA, u64::from(data), "DATA")?;
                        addr >> 2
                    }
                    None => 0,
                };
                Ok([d0, d1])
            }
            Command::IodirInvalDdt { did } => {
                let mut d0 = head(OP_IODIR, 0);
                if let Some(d) = did {
                    d0 |= put(IODIR_DID, u64::from(d), "DID")? | IODIR_DV;
                }
                Ok([d0, 0])
            }
            Command::IodirInvalPdt { did, pid } => Ok([
                head(OP_IODIR, 1)
                    | put(IODIR_DID, u64::from(did), "DID")?
                    | IODIR_DV
                    | put(IODIR_PID, u64::from(pid), "PID")?,
                0,
            ]),
        }
    }

    /// The command two words encode; reserved bits set are an error.
    pub fn decode(w: [u64; 2]) -> Result<Command, BadCommand> {
        let (opcode, func3) = (OPCODE.get(w[0]), FUNC3.get(w[0]));
        let (cmd, used0, used1) = match (opcode, func3) {
            (OP_IOTINVAL, 0 | 1) => {
                let av = w[0] & IOTINVAL_AV != 0;
                let gscid = opt(w[0] & IOTINVAL_GV != 0, IOTINVAL_GSCID.get(w[0]) as u16);
                let addr = opt(av, IOTINVAL_ADDR.get(w[1]) << 12);
                let used0 = OPCODE.mask()
                    | FUNC3.mask()
                    | IOTINVAL_AV
                    | IOTINVAL_GV
                    | IOTINVAL_GSCID.mask()
                    | if func3 == 0 {
                        IOTINVAL_PSCID.mask() | IOTINVAL_PSCV
                    } else {
                        0
                    };
                let cmd = if func3 == 0 {
                    Command::IotinvalVma {
                        pscid: opt(w[0] & IOTINVAL_PSCV != 0, IOTINVAL_PSCID.get(w[0]) as u32),
                        addr,
                        gscid,
                    }
                } else {
                    Command::IotinvalGvma { gscid, addr }
                };
                (cmd, used0, IOTINVAL_ADDR.mask())
            }
            (OP_IOFENCE, 0) => {
                let av = w[0] & IOFENCE_AV != 0;
                let cmd = Command::IofenceC {
                    pr: w[0] & IOFENCE_PR != 0,
                    pw: w[0] & IOFENCE_PW != 0,
                    wsi: w[0] & IOFENCE_WSI != 0,
                    write: opt(av, (w[1] << 2, IOFENCE_DATA.get(w[0]) as u32)),
                };
                let used0 = OPCODE.mask()
                    | FUNC3.mask()
                    | IOFENCE_AV
                    | IOFENCE_WSI
                    | IOFENCE_PR
                    | IOFENCE_PW
                    | IOFENCE_DATA.mask();
                (cmd, used0, Field::new(61, 0).mask())
            }
            (OP_IODIR, 0) => (
                Command::IodirInvalDdt {
                    did: opt(w[0] & IODIR_DV != 0, IODIR_DID.get(w[0]) as u32),
                },
                OPCODE.mask() | FUNC3.mask() | IODIR_DV | IODIR_DID.mask(),
                0,
            ),
            (OP_IODIR, 1) if w[0] & IODIR_DV != 0 => (
                Command::IodirInvalPdt {
                    did: IODIR_DID.get(w[0]) as u32,
                    pid: IODIR_PID.get(w[0]) as u32,
                },
                OPCODE.mask() | FUNC3.mask() | IODIR_DV | IODIR_DID.mask() | IODIR_PID.mask(),
                0,
            ),
            _ => return Err(BadCommand::Unknown { opcode, func3 }),
        };
        for (dword, (word, used)) in [(w[0], used0), (w[1], used1)].into_iter().enumerate() {
            if word & !used != 0 {
                return Err(BadCommand::Reserved {
                    dword: dword as u8,
                    bits: word & !used,
                });
            }
        }
        Ok(cmd)
    }
}

/// IOTINVAL.VMA (`func3` 0) or .GVMA (1): each ID and the address only
/// when given, its valid bit set.
fn iotinval(
    func3: u64,
    pscid: Option<u32>,
    gscid: Option<u16>,
    addr: Option<u64>,
) -> Result<[u64; 2], BadCommand> {
    let mut d0 = head(OP_IOTINVAL, func3);
    if let Some(p) = pscid {
        d0 |= put(IOTINVAL_PSCID, u64::from(p), "PSCID")? | IOTINVAL_PSCV;
    }
    if let Some(g) = gscid {
        d0 |= put(IOTINVAL_GSCID, u64::from(g), "GSCID")? | IOTINVAL_GV;
    }
    let d1 = match addr {
        Some(a) => {
            d0 |= IOTINVAL_AV;
            page(a)?
        }
        None => 0,
    };
    Ok([d0, d1])
}

/// `v` when the command's valid bit for it is set.
fn opt<T>(valid: bool, v: T) -> Option<T> {
    valid.then_some(v)
}

/// dword1 of an IOTINVAL: the page number of `addr` in bits 61:10.
fn page(addr: u64) -> Result<u64, BadCommand> {
    if addr % 4096 != 0 {
        return Err(BadCommand::Field("IOTINVAL address (not 4 KiB aligned)"));
    }
    put(IOTINVAL_ADDR, addr >> 12, "IOTINVAL address")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iotinval_vma_by_address_and_by_pscid() {
        let by_page = Command::IotinvalVma {
            pscid: Some(5),
            addr: Some(0x7f00_0000_1000),
            gscid: None,
        };
        let w = by_page.encode().unwrap();
        // opcode 1, func3 0, AV (10), PSCID 5 at 31:12, PSCV (32)
        assert_eq!(w[0], 1 | 1 << 10 | 5 << 12 | 1 << 32);
        // the page number 0x7f0000001 at bits 61:10
        assert_eq!(w[1], 0x7_f000_0001 << 10);
        assert_eq!(Command::decode(w), Ok(by_page));
        let whole = Command::IotinvalVma {
            pscid: Some(5),
            addr: None,
            gscid: None,
        };
        assert_eq!(whole.encode().unwrap(), [1 | 5 << 12 | 1 << 32, 0]);
        let all = Command::IotinvalVma {
            pscid: None,
            addr: None,
            gscid: None,
        };
        assert_eq!(all.encode().unwrap(), [1, 0]);
        let unaligned = Command::IotinvalVma {
            pscid: None,
            addr: Some(0x1008),
            gscid: None,
        };
        assert!(unaligned.encode().is_err());
        let wide = Command::IotinvalVma {
            pscid: Some(1 << 20),
            addr: None,
            gscid: None,
        };
        assert_eq!(wide.encode(), Err(BadCommand::Field("PSCID")));
    }

    #[test]
    fn iofence_c_and_iodir() {
        let fence = Command::IofenceC {
            pr: true,
            pw: true,
            wsi: false,
            write: Some((0x8000_1004, 0xdead_beef)),
        };
        let w = fence.encode().unwrap();
        assert_eq!(w[0], 2 | 1 << 10 | 1 << 12 | 1 << 13 | 0xdead_beef << 32);
        assert_eq!(w[1], 0x8000_1004 >> 2);
        assert_eq!(Command::decode(w), Ok(fence));
        let odd = Command::IofenceC {
            pr: false,
            pw: false,
            wsi: true,
            write: Some((0x8000_1002, 1)),
        };
        assert!(odd.encode().is_err());
        let ddt = Command::IodirInvalDdt { did: Some(0x12) };
        assert_eq!(ddt.encode().unwrap(), [3 | 1 << 33 | 0x12 << 40, 0]);
        let pdt = Command::IodirInvalPdt { did: 7, pid: 9 };
        let w = pdt.encode().unwrap();
        assert_eq!(w, [3 | 1 << 7 | 9 << 12 | 1 << 33 | 7 << 40, 0]);
        assert_eq!(Command::decode(w), Ok(pdt));
    }

    #[test]
    fn decoding_refuses_reserved_bits_and_unknown_commands() {
        assert_eq!(
            Command::decode([1 | 1 << 11, 0]),
            Err(BadCommand::Reserved {
                dword: 0,
                bits: 1 << 11
            })
        );
        assert_eq!(
            Command::decode([1, 1 << 63]),
            Err(BadCommand::Reserved {
                dword: 1,
                bits: 1 << 63
            })
        );
        assert_eq!(
            Command::decode([2 | 1 << 7, 0]),
            Err(BadCommand::Unknown {
                opcode: 2,
                func3: 1
            })
        );
        // an ATS command: defined, but for designs with ATS
        assert!(matches!(
            Command::decode([4, 0]),
            Err(BadCommand::Unknown { opcode: 4, .. })
        ));
        // IODIR.INVAL_PDT needs a device
        assert!(Command::decode([3 | 1 << 7, 0]).is_err());
    }

    #[test]
    fn every_command_round_trips() {
        let cmds = [
            Command::IotinvalVma {
                pscid: None,
                addr: Some(0x3f_ffff_f000),
                gscid: Some(3),
            },
            Command::IotinvalGvma {
                gscid: Some(0xffff),
                addr: Some(0x1000),
            },
            Command::IotinvalGvma {
                gscid: None,
                addr: None,
            },
            Command::IofenceC {
                pr: false,
                pw: true,
                wsi: true,
                write: None,
            },
            Command::IodirInvalDdt { did: None },
            Command::IodirInvalDdt {
                did: Some(0xff_ffff),
            },
        ];
        for c in cmds {
            assert_eq!(Command::decode(c.encode().unwrap()), Ok(c), "{c:?}");
        }
    }
}
