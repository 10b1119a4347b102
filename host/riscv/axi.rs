//! A cycle-accurate AXI4 memory subordinate over the host's memory: what
//! answers the second socket's manager ports `mem_` and `tx_`
//! (docs/socket-riscv.md), with assertions on what the manager drives.
//!
//! Written from the AMBA AXI and ACE Protocol Specification (ARM IHI0022E):
//! A3.2.1 (the handshake: VALID held until READY, the payload stable while
//! waiting), A3.2.2 (WLAST on the last write beat), A3.3.1 (W may precede its
//! AW), A3.4.1 (burst length, size and type, the beat addresses, the 4 KiB
//! rule), A3.4.2 (write strobes, narrow transfers), A3.4.3 (DECERR), chapters
//! A5 and A6 (responses of one ID in request order, of different IDs in any).
//!
//! Outputs are registered: [`AxiSubordinate::signals`] depends on the state
//! only, so no ready follows the manager's valid within a cycle. Simplified:
//! read bursts are never interleaved (one burst's beats all leave before
//! another's), every response is OKAY or DECERR, and a burst that breaks an
//! address-channel rule is answered DECERR on every beat without touching
//! memory (its beat addresses are reported as its start address).

use std::collections::VecDeque;

pub const BURST_FIXED: u8 = 0;
pub const BURST_INCR: u8 = 1;
pub const BURST_WRAP: u8 = 2;
pub const RESP_OKAY: u8 = 0;
pub const RESP_DECERR: u8 = 3;
/// W beats held while no AW claims them; wready is low once this many wait.
pub const W_BUFFER_BEATS: usize = 256;

/// The protocol rules checked on the manager: name, what it requires.
#[rustfmt::skip]
pub const RULES: &[(&str, &str)] = &[
    ("AXI4-AW-VALID-HOLD", "AWVALID stays high until AWREADY (A3.2.1)"),
    ("AXI4-W-VALID-HOLD", "WVALID stays high until WREADY (A3.2.1)"),
    ("AXI4-AR-VALID-HOLD", "ARVALID stays high until ARREADY (A3.2.1)"),
    ("AXI4-AW-STABLE", "AW payload stable while AWVALID && !AWREADY (A3.2.1)"),
    ("AXI4-W-STABLE", "W payload stable while WVALID && !WREADY (A3.2.1)"),
    ("AXI4-AR-STABLE", "AR payload stable while ARVALID && !ARREADY (A3.2.1)"),
    ("AXI4-WLAST", "WLAST high on the last beat of a write burst, only there (A3.2.2)"),
    ("AXI4-WSTRB", "WSTRB high only on the byte lanes of the beat's transfer (A3.4.2)"),
    ("AXI4-4KB", "an INCR burst does not cross a 4 KiB boundary (A3.4.1)"),
    ("AXI4-WRAP-LEN", "a WRAP burst is 2, 4, 8 or 16 beats (A3.4.1)"),
    ("AXI4-WRAP-ALIGN", "a WRAP burst starts aligned to its transfer size (A3.4.1)"),
    ("AXI4-FIXED-LEN", "a FIXED burst is at most 16 beats (A3.4.1)"),
    ("AXI4-SIZE", "AxSIZE not wider than the 64-bit data bus (A3.4.1)"),
    ("AXI4-BURST-RESERVED", "AxBURST 0b11 is reserved (A3.4.1, table A3-3)"),
];

/// What the manager drives in a cycle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ManagerSignals {
    pub awvalid: bool,
    pub awid: u32,
    pub awaddr: u64,
    pub awlen: u8,
    pub awsize: u8,
    pub awburst: u8,
    pub awprot: u8,
    pub wvalid: bool,
    pub wdata: u64,
    pub wstrb: u8,
    pub wlast: bool,
    pub bready: bool,
    pub arvalid: bool,
    pub arid: u32,
    pub araddr: u64,
    pub arlen: u8,
    pub arsize: u8,
    pub arburst: u8,
    pub arprot: u8,
    pub rready: bool,
}

/// What the subordinate drives in a cycle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubordinateSignals {
    pub awready: bool,
    pub wready: bool,
    pub bvalid: bool,
    pub bid: u32,
    pub bresp: u8,
    pub arready: bool,
    pub rvalid: bool,
    pub rid: u32,
    pub rdata: u64,
    pub rresp: u8,
    pub rlast: bool,
}

/// The memory behind the port, a 64-bit word at a time (`addr` 8-aligned).
/// Its only error is "no memory there", answered DECERR, hence `()`.
#[allow(clippy::result_unit_err)]
pub trait AxiMemory {
    /// The word at `addr` and a tag the memory gives the read (the host:
    /// the store version of the word), carried to its [`AxiEvent::Read`];
    /// Err when no memory is there.
    fn read(&mut self, addr: u64) -> Result<(u64, u64), ()>;
    /// The byte lanes of `data` that `strb` selects, written into the word.
    fn write(&mut self, addr: u64, data: u64, strb: u8) -> Result<(), ()>;
}

/// Which due response goes first when several IDs have one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reorder {
    /// Acceptance order across all IDs.
    InOrder,
    /// The oldest response that is due, of any ID: an ID answered later
    /// (`AxiConfig::slow`) is overtaken by others.
    WhenDue,
    /// A pseudo-random pick (xorshift64*) from this seed.
    Seeded(u64),
    /// The most recently accepted first: the widest race windows.
    NewestFirst,
}

/// When a read takes its value from memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sample {
    /// When the beat is first presented on R: the ordering point is at
    /// the response (a read is not performed until its data leaves).
    #[default]
    OnResponse,
    /// Every beat when the AR is accepted, answered `latency` cycles later
    /// (a memory that performs a read at once and is slow to answer; the
    /// first socket's memory ports do the same). A store after the AR is
    /// not seen by it.
    OnRequest,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AxiConfig {
    /// Cycles from an AR handshake to its first R beat, and from a write's
    /// last W beat and AW both accepted to its B; 0 behaves as 1 (outputs
    /// are registered).
    pub latency: u64,
    pub reorder: Reorder,
    /// Reads (and, separately, writes) in flight before arready (awready)
    /// goes low; 0 behaves as 1.
    pub max_outstanding: usize,
    pub sample: Sample,
    /// Requests of this AXI ID take this many cycles more (a manager whose
    /// accesses miss a cache the others hit): the race windows a fixed
    /// latency cannot open.
    pub slow: Option<(u32, u64)>,
}

impl Default for AxiConfig {
    fn default() -> AxiConfig {
        AxiConfig {
            latency: 1,
            reorder: Reorder::InOrder,
            max_outstanding: 8,
            sample: Sample::OnResponse,
            slow: None,
        }
    }
}

/// What happened in a cycle, for the owner's log and checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AxiEvent {
    /// An AR (`write` false) or AW handshake.
    Accepted {
        cycle: u64,
        write: bool,
        id: u32,
        addr: u64,
        len: u8,
        size: u8,
        burst: u8,
        prot: u8,
    },
    /// An R beat handshaken; `data` is the whole aligned word, `tag` what
    /// [`AxiMemory::read`] gave with it (0 for DECERR).
    Read {
        cycle: u64,
        id: u32,
        addr: u64,
        data: u64,
        tag: u64,
        resp: u8,
        last: bool,
    },
    /// A W beat written to memory (`strb` as applied); refused or DECERR
    /// beats write nothing and have no event.
    Write {
        cycle: u64,
        id: u32,
        addr: u64,
        data: u64,
        strb: u8,
    },
    WriteResponse {
        cycle: u64,
        id: u32,
        resp: u8,
    },
    Violation {
        cycle: u64,
        rule: &'static str,
        detail: String,
    },
}

/// An accepted AR or AW.
#[derive(Clone, Copy, Debug)]
struct Burst {
    id: u32,
    addr: u64,
    len: u8,
    size: u8,
    burst: u8,
    prot: u8,
    /// Broke an address-channel rule: DECERR, memory untouched.
    bad: bool,
}

impl Burst {
    /// Beat `i`'s address (A3.4.1); None for a burst that broke a rule or
    /// past the end of the address space.
    fn beat_addr(&self, i: u8) -> Option<u64> {
        if self.bad {
            return None;
        }
        let nb = 1u64 << self.size;
        let offset = u64::from(i) * nb;
        match self.burst {
            BURST_FIXED => Some(self.addr),
            BURST_INCR if i == 0 => Some(self.addr),
            BURST_INCR => (self.addr & !(nb - 1)).checked_add(offset),
            _ => {
                let span = nb * (u64::from(self.len) + 1);
                let boundary = self.addr & !(span - 1);
                Some(boundary + (self.addr - boundary + offset) % span)
            }
        }
    }

    /// The byte lanes beat `i` may strobe on the 64-bit bus (A3.4.2).
    fn lanes(&self, addr: u64) -> u8 {
        let nb = 1u64 << self.size.min(3);
        let lo = addr & 7;
        let hi = ((addr & !(nb - 1)) + nb - 1) & 7;
        (0xffu8 << lo) & (0xffu8 >> (7 - hi))
    }

    fn event(&self, cycle: u64, write: bool) -> AxiEvent {
        let Burst {
            id,
            addr,
            len,
            size,
            burst,
            prot,
            ..
        } = *self;
        AxiEvent::Accepted {
            cycle,
            write,
            id,
            addr,
            len,
            size,
            burst,
            prot,
        }
    }
}

/// A response waiting for its turn: due from cycle `due` on. Queues of
/// them are kept in acceptance order.
#[derive(Clone, Debug)]
struct Pending<T> {
    id: u32,
    due: u64,
    item: T,
}

/// An accepted read burst and, with [`Sample::OnRequest`], its beats as
/// memory gave them at the AR (data, tag, resp).
#[derive(Clone, Debug)]
struct ReadJob {
    burst: Burst,
    sampled: Option<Vec<(u64, u64, u8)>>,
}

/// The R beat on the bus, read from memory when first presented (or when
/// its AR was accepted).
#[derive(Clone, Debug)]
struct ActiveRead {
    burst: Burst,
    sampled: Option<Vec<(u64, u64, u8)>>,
    beat: u8,
    addr: u64,
    data: u64,
    tag: u64,
    resp: u8,
}

/// An AW waiting for its W beats.
#[derive(Clone, Copy, Debug)]
struct WriteBurst {
    burst: Burst,
    beats: u8,
    resp: u8,
}

#[derive(Clone, Copy, Debug)]
struct WBeat {
    cycle: u64,
    data: u64,
    strb: u8,
    last: bool,
}

/// The subordinate's state between clock edges.
#[derive(Clone, Debug)]
pub struct AxiSubordinate {
    cfg: AxiConfig,
    rng: u64,
    reads: Vec<Pending<ReadJob>>,
    r: Option<ActiveRead>,
    writes: VecDeque<WriteBurst>,
    wbuf: VecDeque<WBeat>,
    bs: Vec<Pending<u8>>,
    b: Option<(u32, u8)>,
    /// Last cycle's manager signals and which valids were left waiting.
    prev: ManagerSignals,
    waiting: [bool; 3],
}

impl AxiSubordinate {
    pub fn new(cfg: AxiConfig) -> AxiSubordinate {
        let rng = match cfg.reorder {
            Reorder::Seeded(0) => 0x9e37_79b9_7f4a_7c15,
            Reorder::Seeded(seed) => seed,
            _ => 1,
        };
        AxiSubordinate {
            cfg,
            rng,
            reads: Vec::new(),
            r: None,
            writes: VecDeque::new(),
            wbuf: VecDeque::new(),
            bs: Vec::new(),
            b: None,
            prev: ManagerSignals::default(),
            waiting: [false; 3],
        }
    }

    /// This cycle's outputs, from the state alone.
    pub fn signals(&self) -> SubordinateSignals {
        let (reads, writes) = self.outstanding();
        let max = self.cfg.max_outstanding.max(1);
        let r = self.r.as_ref();
        SubordinateSignals {
            awready: writes < max,
            wready: self.wbuf.len() < W_BUFFER_BEATS,
            bvalid: self.b.is_some(),
            bid: self.b.map_or(0, |b| b.0),
            bresp: self.b.map_or(0, |b| b.1),
            arready: reads < max,
            rvalid: r.is_some(),
            rid: r.map_or(0, |r| r.burst.id),
            rdata: r.map_or(0, |r| r.data),
            rresp: r.map_or(0, |r| r.resp),
            rlast: r.is_some_and(|r| r.beat == r.burst.len),
        }
    }

    /// (reads, writes) accepted and not yet answered in full.
    pub fn outstanding(&self) -> (usize, usize) {
        let reads = self.reads.len() + usize::from(self.r.is_some());
        let writes = self.writes.len() + self.bs.len() + usize::from(self.b.is_some());
        (reads, writes)
    }

    /// Nothing outstanding and no W beat buffered.
    pub fn idle(&self) -> bool {
        self.outstanding() == (0, 0) && self.wbuf.is_empty()
    }

    /// The rising edge of `cycle`: the handshakes of `signals()` against
    /// `m`, then the state for the next cycle. Writes land in memory in
    /// this call (its `Write` events). An R beat is read from memory in the
    /// call that ends the cycle before it is first valid (after that call's
    /// writes), its value held until rready: each `Read` event with OKAY is
    /// exactly one successful [`AxiMemory::read`], made in the same order,
    /// one or more calls earlier; a DECERR beat's read failed or was not
    /// made.
    pub fn clock(
        &mut self,
        cycle: u64,
        m: &ManagerSignals,
        mem: &mut dyn AxiMemory,
    ) -> Vec<AxiEvent> {
        let s = self.signals();
        let mut ev = Vec::new();
        self.check_held(cycle, m, &mut ev);
        let due = cycle.saturating_add(self.cfg.latency.max(1));
        if m.arvalid && s.arready {
            let burst = self.accept(cycle, "AR", ar_fields(m), &mut ev);
            ev.push(burst.event(cycle, false));
            let sampled = (self.cfg.sample == Sample::OnRequest).then(|| {
                (0..=burst.len)
                    .map(|i| match burst.beat_addr(i).map(|a| mem.read(a & !7)) {
                        Some(Ok((data, tag))) => (data, tag, RESP_OKAY),
                        _ => (0, 0, RESP_DECERR),
                    })
                    .collect()
            });
            self.reads.push(Pending {
                id: burst.id,
                due: self.slowed(burst.id, due),
                item: ReadJob { burst, sampled },
            });
        }
        if m.awvalid && s.awready {
            let burst = self.accept(cycle, "AW", aw_fields(m), &mut ev);
            ev.push(burst.event(cycle, true));
            self.writes.push_back(WriteBurst {
                burst,
                beats: 0,
                resp: RESP_OKAY,
            });
        }
        if m.wvalid && s.wready {
            let beat = WBeat {
                cycle,
                data: m.wdata,
                strb: m.wstrb,
                last: m.wlast,
            };
            self.wbuf.push_back(beat);
        }
        self.apply_writes(cycle, due, mem, &mut ev);
        if s.rvalid && m.rready {
            self.r_beat_done(cycle, mem, &mut ev);
        }
        if s.bvalid && m.bready {
            let (id, resp) = self.b.take().unwrap_or_default();
            ev.push(AxiEvent::WriteResponse { cycle, id, resp });
        }
        self.present(cycle, mem);
        self.prev = *m;
        self.waiting = [
            m.awvalid && !s.awready,
            m.wvalid && !s.wready,
            m.arvalid && !s.arready,
        ];
        ev
    }

    /// A3.2.1: a valid left waiting last cycle is still high, same payload.
    fn check_held(&self, cycle: u64, m: &ManagerSignals, ev: &mut Vec<AxiEvent>) {
        let p = &self.prev;
        let now = [
            (m.awvalid, aw_fields(m) != aw_fields(p)),
            (m.wvalid, w_fields(m) != w_fields(p)),
            (m.arvalid, ar_fields(m) != ar_fields(p)),
        ];
        for (i, (valid, changed)) in now.into_iter().enumerate() {
            let (name, hold, stable) = HELD_RULES[i];
            let (rule, what) = match (self.waiting[i], valid, changed) {
                (false, _, _) | (true, true, false) => continue,
                (true, false, _) => (hold, "VALID dropped before READY"),
                (true, true, true) => (stable, "payload changed while waiting for READY"),
            };
            violation(ev, cycle, rule, format!("{name}: {what}"));
        }
    }

    /// An AR or AW handshake: the burst, checked against A3.4.1.
    fn accept(&self, cycle: u64, chan: &str, f: AxFields, ev: &mut Vec<AxiEvent>) -> Burst {
        let (id, addr, len, size, burst, prot) = f;
        let mut b = Burst {
            id,
            addr,
            len,
            size,
            burst,
            prot,
            bad: false,
        };
        let beats = u64::from(len) + 1;
        let mut broke = |rule, what: String| {
            b.bad = true;
            violation(
                ev,
                cycle,
                rule,
                format!("{chan} id {id} addr {addr:#x}: {what}"),
            );
        };
        if size > 3 {
            broke("AXI4-SIZE", format!("size {size} wider than 8 bytes"));
        }
        match burst {
            BURST_FIXED if beats > 16 => broke("AXI4-FIXED-LEN", format!("{beats} beats")),
            BURST_WRAP if !matches!(beats, 2 | 4 | 8 | 16) => {
                broke("AXI4-WRAP-LEN", format!("{beats} beats"))
            }
            BURST_WRAP if size <= 3 && addr % (1 << size) != 0 => {
                broke("AXI4-WRAP-ALIGN", format!("size {size}"))
            }
            BURST_INCR if size <= 3 => {
                let end = (addr & !((1 << size) - 1)).checked_add((beats << size) - 1);
                if end.is_none_or(|end| end >> 12 != addr >> 12) {
                    broke("AXI4-4KB", format!("{beats} beats of size {size}"));
                }
            }
            3.. => broke("AXI4-BURST-RESERVED", format!("burst {burst}")),
            _ => {}
        }
        b
    }

    /// Matches buffered W beats to AWs in order, writes them, and queues the
    /// B of each write whose beats are all in.
    fn apply_writes(
        &mut self,
        cycle: u64,
        due: u64,
        mem: &mut dyn AxiMemory,
        ev: &mut Vec<AxiEvent>,
    ) {
        while let (Some(w), Some(beat)) = (self.writes.front_mut(), self.wbuf.front().copied()) {
            self.wbuf.pop_front();
            let b = w.burst;
            let last = w.beats == b.len;
            if beat.last != last {
                let (id, n, of) = (b.id, w.beats, u16::from(b.len) + 1);
                let what = format!(
                    "id {id}: beat {n} of {of} (cycle {}) WLAST {}",
                    beat.cycle, beat.last
                );
                violation(ev, cycle, "AXI4-WLAST", what);
            }
            match b.beat_addr(w.beats) {
                None => w.resp = RESP_DECERR,
                Some(addr) => {
                    let lanes = b.lanes(addr);
                    if beat.strb & !lanes != 0 {
                        let what = format!("id {} addr {addr:#x}: strb {:#04x}", b.id, beat.strb);
                        violation(ev, cycle, "AXI4-WSTRB", what);
                    }
                    let strb = beat.strb & lanes;
                    if mem.write(addr & !7, beat.data, strb).is_ok() {
                        let (id, data) = (b.id, beat.data);
                        ev.push(AxiEvent::Write {
                            cycle,
                            id,
                            addr,
                            data,
                            strb,
                        });
                    } else {
                        w.resp = RESP_DECERR;
                    }
                }
            }
            w.beats = w.beats.wrapping_add(1);
            if last {
                let (id, resp) = (b.id, w.resp);
                self.writes.pop_front();
                let due = self.slowed(id, due);
                self.bs.push(Pending {
                    id,
                    due,
                    item: resp,
                });
            }
        }
    }

    /// `due`, later for the slow ID.
    fn slowed(&self, id: u32, due: u64) -> u64 {
        match self.cfg.slow {
            Some((slow, extra)) if slow == id => due.saturating_add(extra),
            _ => due,
        }
    }

    /// After an R handshake: the burst's next beat, or the burst done.
    fn r_beat_done(&mut self, cycle: u64, mem: &mut dyn AxiMemory, ev: &mut Vec<AxiEvent>) {
        let Some(r) = self.r.take() else { return };
        let (id, addr, data, tag, resp) = (r.burst.id, r.addr, r.data, r.tag, r.resp);
        let last = r.beat == r.burst.len;
        ev.push(AxiEvent::Read {
            cycle,
            id,
            addr,
            data,
            tag,
            resp,
            last,
        });
        if !last {
            self.r = Some(read_beat(r.burst, r.sampled, r.beat + 1, mem));
        }
    }

    /// Puts the next due R burst and B on the bus for the next cycle.
    fn present(&mut self, cycle: u64, mem: &mut dyn AxiMemory) {
        let now = cycle.saturating_add(1);
        if self.r.is_none() {
            if let Some(i) = choose(self.cfg.reorder, &mut self.rng, &self.reads, now) {
                let job = self.reads.remove(i).item;
                self.r = Some(read_beat(job.burst, job.sampled, 0, mem));
            }
        }
        if self.b.is_none() {
            if let Some(i) = choose(self.cfg.reorder, &mut self.rng, &self.bs, now) {
                let p = self.bs.remove(i);
                self.b = Some((p.id, p.item));
            }
        }
    }
}

type AxFields = (u32, u64, u8, u8, u8, u8);

fn ar_fields(m: &ManagerSignals) -> AxFields {
    (m.arid, m.araddr, m.arlen, m.arsize, m.arburst, m.arprot)
}

fn aw_fields(m: &ManagerSignals) -> AxFields {
    (m.awid, m.awaddr, m.awlen, m.awsize, m.awburst, m.awprot)
}

fn w_fields(m: &ManagerSignals) -> (u64, u8, bool) {
    (m.wdata, m.wstrb, m.wlast)
}

/// Per channel of `check_held`: its name, the VALID-hold and stable rules.
#[rustfmt::skip]
const HELD_RULES: [(&str, &str, &str); 3] = [
    ("AW", "AXI4-AW-VALID-HOLD", "AXI4-AW-STABLE"),
    ("W", "AXI4-W-VALID-HOLD", "AXI4-W-STABLE"),
    ("AR", "AXI4-AR-VALID-HOLD", "AXI4-AR-STABLE"),
];

fn violation(ev: &mut Vec<AxiEvent>, cycle: u64, rule: &'static str, detail: String) {
    ev.push(AxiEvent::Violation {
        cycle,
        rule,
        detail,
    });
}

/// Beat `beat` of `burst`: as sampled at its AR, else read from memory now.
fn read_beat(
    burst: Burst,
    sampled: Option<Vec<(u64, u64, u8)>>,
    beat: u8,
    mem: &mut dyn AxiMemory,
) -> ActiveRead {
    let addr = burst.beat_addr(beat);
    let (data, tag, resp) = match (&sampled, addr) {
        (Some(words), _) => words
            .get(usize::from(beat))
            .copied()
            .unwrap_or((0, 0, RESP_DECERR)),
        (None, Some(a)) => match mem.read(a & !7) {
            Ok((data, tag)) => (data, tag, RESP_OKAY),
            Err(()) => (0, 0, RESP_DECERR),
        },
        (None, None) => (0, 0, RESP_DECERR),
    };
    ActiveRead {
        burst,
        sampled,
        beat,
        addr: addr.unwrap_or(burst.addr),
        data,
        tag,
        resp,
    }
}

/// Which of `queue` (in acceptance order) goes on the bus at cycle `now`:
/// only the oldest of each ID may, once due; the reorder mode picks.
fn choose<T>(reorder: Reorder, rng: &mut u64, queue: &[Pending<T>], now: u64) -> Option<usize> {
    let ready: Vec<usize> = (0..queue.len())
        .filter(|&i| queue[i].due <= now && !queue[..i].iter().any(|q| q.id == queue[i].id))
        .collect();
    match reorder {
        Reorder::InOrder => ready.first().filter(|&&i| i == 0).copied(),
        Reorder::WhenDue => ready.first().copied(),
        Reorder::NewestFirst => ready.last().copied(),
        Reorder::Seeded(_) if ready.len() > 1 => {
            let pick = xorshift64star(rng) % ready.len() as u64;
            Some(ready[pick as usize])
        }
        Reorder::Seeded(_) => ready.first().copied(),
    }
}

fn xorshift64star(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Memory everywhere but the hole [HOLE, HOLE + 0x800).
    #[derive(Default)]
    struct Mem(BTreeMap<u64, u64>);
    const HOLE: u64 = 0x8800;

    fn mapped(addr: u64) -> bool {
        !(HOLE..HOLE + 0x800).contains(&addr)
    }

    impl AxiMemory for Mem {
        fn read(&mut self, addr: u64) -> Result<(u64, u64), ()> {
            let word = self.0.get(&addr).copied().unwrap_or(0);
            mapped(addr).then_some((word, 0)).ok_or(())
        }
        fn write(&mut self, addr: u64, data: u64, strb: u8) -> Result<(), ()> {
            if !mapped(addr) {
                return Err(());
            }
            let mask = (0..8)
                .filter(|i| strb >> i & 1 == 1)
                .fold(0, |m, i| m | 0xff << (8 * i));
            let word = self.0.entry(addr).or_default();
            *word = (*word & !mask) | (data & mask);
            Ok(())
        }
    }

    /// An AR or AW: (id, addr, len, size, burst).
    type Ax = (u32, u64, u8, u8, u8);

    fn incr(id: u32, addr: u64, len: u8) -> Ax {
        (id, addr, len, 3, BURST_INCR)
    }

    /// A well-behaved manager: each channel's front held valid until its
    /// handshake; rready and bready high from the given cycles on.
    struct Driver {
        sub: AxiSubordinate,
        mem: Mem,
        cycle: u64,
        ar: VecDeque<Ax>,
        aw: VecDeque<Ax>,
        w: VecDeque<(u64, u8, bool)>,
        ready_from: u64,
        events: Vec<AxiEvent>,
    }

    impl Driver {
        fn new(latency: u64, reorder: Reorder) -> Driver {
            let cfg = AxiConfig {
                latency,
                reorder,
                max_outstanding: 8,
                sample: Sample::OnResponse,
                slow: None,
            };
            let (ar, aw, w) = (VecDeque::new(), VecDeque::new(), VecDeque::new());
            let sub = AxiSubordinate::new(cfg);
            Driver {
                sub,
                mem: Mem::default(),
                cycle: 0,
                ar,
                aw,
                w,
                ready_from: 0,
                events: vec![],
            }
        }

        fn write(&mut self, ax: Ax, beats: &[(u64, u8)]) {
            self.aw.push_back(ax);
            self.write_data(beats);
        }

        fn write_data(&mut self, beats: &[(u64, u8)]) {
            for (i, &(data, strb)) in beats.iter().enumerate() {
                self.w.push_back((data, strb, i + 1 == beats.len()));
            }
        }

        fn signals(&self) -> ManagerSignals {
            let mut m = ManagerSignals {
                rready: self.cycle >= self.ready_from,
                bready: self.cycle >= self.ready_from,
                ..ManagerSignals::default()
            };
            if let Some(&(id, addr, len, size, burst)) = self.ar.front() {
                (m.arvalid, m.arid, m.araddr, m.arlen, m.arsize, m.arburst) =
                    (true, id, addr, len, size, burst);
            }
            if let Some(&(id, addr, len, size, burst)) = self.aw.front() {
                (m.awvalid, m.awid, m.awaddr, m.awlen, m.awsize, m.awburst) =
                    (true, id, addr, len, size, burst);
            }
            if let Some(&(data, strb, last)) = self.w.front() {
                (m.wvalid, m.wdata, m.wstrb, m.wlast) = (true, data, strb, last);
            }
            m
        }

        /// One cycle with `m` driven.
        fn step_with(&mut self, m: ManagerSignals) {
            let ev = self.sub.clock(self.cycle, &m, &mut self.mem);
            self.events.extend(ev);
            self.cycle += 1;
        }

        fn step(&mut self) {
            let (s, m) = (self.sub.signals(), self.signals());
            if s.arready && m.arvalid {
                self.ar.pop_front();
            }
            if s.awready && m.awvalid {
                self.aw.pop_front();
            }
            if s.wready && m.wvalid {
                self.w.pop_front();
            }
            self.step_with(m);
        }

        fn run(&mut self) {
            while !(self.sub.idle() && self.ar.is_empty() && self.aw.is_empty()) {
                assert!(self.cycle < 10_000, "no progress");
                self.step();
            }
        }

        /// R beats: (cycle, id, addr, data, resp, last).
        fn reads(&self) -> Vec<(u64, u32, u64, u64, u8, bool)> {
            let beat = |e: &AxiEvent| match *e {
                AxiEvent::Read {
                    cycle,
                    id,
                    addr,
                    data,
                    resp,
                    last,
                    ..
                } => Some((cycle, id, addr, data, resp, last)),
                _ => None,
            };
            self.events.iter().filter_map(beat).collect()
        }

        /// IDs of the read bursts in the order they completed.
        fn read_order(&self) -> Vec<u32> {
            self.reads().iter().filter(|r| r.5).map(|r| r.1).collect()
        }

        /// B responses: (cycle, id, resp).
        fn responses(&self) -> Vec<(u64, u32, u8)> {
            let b = |e: &AxiEvent| match *e {
                AxiEvent::WriteResponse { cycle, id, resp } => Some((cycle, id, resp)),
                _ => None,
            };
            self.events.iter().filter_map(b).collect()
        }

        fn violations(&self) -> Vec<&'static str> {
            let v = |e: &AxiEvent| match e {
                AxiEvent::Violation { rule, .. } => Some(*rule),
                _ => None,
            };
            let rules: Vec<_> = self.events.iter().filter_map(v).collect();
            assert!(rules.iter().all(|r| RULES.iter().any(|(n, _)| n == r)));
            rules
        }
    }

    fn fill(d: &mut Driver, from: u64, words: u64) {
        for i in 0..words {
            d.mem.0.insert(from + 8 * i, 0x1000 + i);
        }
    }

    #[test]
    fn single_beat_write_then_read_round_trips() {
        let mut d = Driver::new(1, Reorder::InOrder);
        d.write(incr(2, 0x100, 0), &[(0xdead_beef_0bad_f00d, 0xff)]);
        d.run();
        d.ar.push_back(incr(3, 0x100, 0));
        d.run();
        assert_eq!(d.mem.0[&0x100], 0xdead_beef_0bad_f00d);
        assert_eq!(
            d.responses().iter().map(|b| (b.1, b.2)).collect::<Vec<_>>(),
            [(2, 0)]
        );
        let r = d.reads();
        assert_eq!(
            (r.len(), r[0].1, r[0].3, r[0].4, r[0].5),
            (1, 3, 0xdead_beef_0bad_f00d, 0, true)
        );
        assert!(d.violations().is_empty());
    }

    /// Addresses and data of every R beat after one burst `ax`.
    fn burst_beats(ax: Ax) -> Vec<(u64, u64, bool)> {
        let mut d = Driver::new(1, Reorder::InOrder);
        fill(&mut d, 0x200, 64);
        d.ar.push_back(ax);
        d.run();
        assert!(d.violations().is_empty());
        d.reads().iter().map(|r| (r.2, r.3, r.5)).collect()
    }

    #[test]
    fn incr_burst_reads_consecutive_words() {
        let beats = burst_beats(incr(0, 0x208, 3));
        let want = [
            (0x208, 0x1001, false),
            (0x210, 0x1002, false),
            (0x218, 0x1003, false),
        ];
        assert_eq!(beats[..3], want);
        assert_eq!(beats[3], (0x220, 0x1004, true));
        // Narrow and unaligned: 4-byte beats from 0x206, the whole word each.
        let narrow = burst_beats((0, 0x206, 2, 2, BURST_INCR));
        let addrs: Vec<_> = narrow.iter().map(|b| (b.0, b.1)).collect();
        assert_eq!(addrs, [(0x206, 0x1000), (0x208, 0x1001), (0x20c, 0x1001)]);
    }

    #[test]
    fn wrap_burst_wraps_to_block_start() {
        let beats = burst_beats((0, 0x230, 3, 3, BURST_WRAP));
        let addrs: Vec<_> = beats.iter().map(|b| (b.0, b.1)).collect();
        assert_eq!(
            addrs,
            [
                (0x230, 0x1006),
                (0x238, 0x1007),
                (0x220, 0x1004),
                (0x228, 0x1005)
            ]
        );
    }

    /// A store after the AR: seen by a read sampled on its response, not by
    /// one sampled on its request.
    #[test]
    fn a_read_samples_memory_on_its_response_or_its_request() {
        for (sample, want) in [(Sample::OnResponse, 2), (Sample::OnRequest, 1)] {
            let mut d = Driver::new(5, Reorder::InOrder);
            d.sub = AxiSubordinate::new(AxiConfig {
                latency: 5,
                sample,
                ..AxiConfig::default()
            });
            d.mem.0.insert(0x40, 1);
            d.ar.push_back(incr(0, 0x40, 0));
            d.step();
            d.step();
            d.mem.0.insert(0x40, 2);
            d.run();
            let got: Vec<u64> = d.reads().iter().map(|r| r.3).collect();
            assert_eq!(got, vec![want], "{sample:?}");
        }
    }

    /// The slow ID's read is answered after a faster ID's later one.
    #[test]
    fn a_slow_id_is_overtaken_by_a_later_read_of_another() {
        let mut d = Driver::new(2, Reorder::WhenDue);
        d.sub = AxiSubordinate::new(AxiConfig {
            latency: 2,
            reorder: Reorder::WhenDue,
            slow: Some((0, 10)),
            ..AxiConfig::default()
        });
        d.ar.push_back(incr(0, 0x40, 0));
        d.ar.push_back(incr(1, 0x48, 0));
        d.run();
        let got: Vec<(u64, u32)> = d.reads().iter().map(|r| (r.0, r.1)).collect();
        assert_eq!(got, vec![(3, 1), (12, 0)]);
    }

    #[test]
    fn fixed_burst_repeats_the_address() {
        let beats = burst_beats((0, 0x218, 2, 3, BURST_FIXED));
        assert!(
            beats.iter().all(|b| b.0 == 0x218 && b.1 == 0x1003),
            "{beats:x?}"
        );
        assert_eq!(beats.len(), 3);
    }

    #[test]
    fn narrow_write_changes_only_strobed_lanes() {
        let mut d = Driver::new(1, Reorder::InOrder);
        d.mem.0.insert(0x500, 0x1111_2222_3333_4444);
        // Two 2-byte beats from 0x502: lanes 2-3, then lanes 4-5.
        d.write(
            (1, 0x502, 1, 1, BURST_INCR),
            &[(0xaaaa_bbbb_cccc_dddd, 0x0c), (!0, 0x30)],
        );
        d.run();
        assert_eq!(d.mem.0[&0x500], 0x1111_ffff_cccc_4444);
        assert!(d.violations().is_empty());
    }

    /// AR handshake in cycle 0; with latency N the first R beat is valid
    /// (and, rready high, handshaken) in cycle max(N, 1), the rest one a
    /// cycle. A write whose AW and only W beat go in cycle 0 has its B in
    /// cycle max(N, 1).
    #[test]
    fn latency_n_gives_the_first_r_beat_n_cycles_after_ar() {
        for n in [0u64, 1, 2, 7] {
            let mut d = Driver::new(n, Reorder::InOrder);
            d.ar.push_back(incr(0, 0x100, 2));
            d.write(incr(0, 0x200, 0), &[(5, 0xff)]);
            for _ in 0..n.max(1) {
                assert!(!d.sub.signals().rvalid && !d.sub.signals().bvalid);
                d.step();
            }
            assert!(d.sub.signals().rvalid && d.sub.signals().bvalid);
            d.run();
            let first = n.max(1);
            let cycles: Vec<_> = d.reads().iter().map(|r| r.0).collect();
            assert_eq!(cycles, [first, first + 1, first + 2], "latency {n}");
            assert_eq!(d.responses()[0].0, first);
        }
    }

    /// A 16-beat read on ID 0 keeps R busy while the reads after it fall
    /// due, so the reorder mode chooses among them.
    fn race(reorder: Reorder, later: &[(u32, u8)]) -> Driver {
        let mut d = Driver::new(2, reorder);
        d.ar.push_back(incr(0, 0x1000, 15));
        for (i, &(id, len)) in later.iter().enumerate() {
            d.ar.push_back(incr(id, 0x2000 + 0x100 * i as u64, len));
        }
        d.run();
        assert!(d.violations().is_empty());
        d
    }

    fn modes() -> Vec<Reorder> {
        let seeded = (1..8).map(Reorder::Seeded);
        [Reorder::InOrder, Reorder::WhenDue, Reorder::NewestFirst]
            .into_iter()
            .chain(seeded)
            .collect()
    }

    #[test]
    fn same_id_responses_stay_ordered_under_every_mode() {
        for mode in modes() {
            let d = race(mode, &[(5, 3), (6, 0), (5, 0), (5, 1)]);
            let addrs: Vec<_> = d
                .reads()
                .iter()
                .filter(|r| r.1 == 5 && r.5)
                .map(|r| r.2)
                .collect();
            assert_eq!(addrs, [0x2018, 0x2200, 0x2308], "{mode:?}");
            // Writes: ID 7's B waits for bready while the rest fall due; the
            // two of ID 9 leave in AW order (DECERR first, then OKAY).
            let mut d = Driver::new(1, mode);
            d.ready_from = 20;
            d.write(incr(7, 0x8, 0), &[(1, 0xff)]);
            d.write(incr(9, HOLE, 0), &[(1, 0xff)]);
            d.write(incr(8, 0x10, 0), &[(1, 0xff)]);
            d.write(incr(9, 0x18, 0), &[(1, 0xff)]);
            d.run();
            let nines: Vec<_> = d
                .responses()
                .iter()
                .filter(|b| b.1 == 9)
                .map(|b| b.2)
                .collect();
            assert_eq!(nines, [RESP_DECERR, RESP_OKAY], "{mode:?}");
        }
    }

    #[test]
    fn different_ids_reorder_under_newest_first_only() {
        let later = [(1, 7), (2, 0)];
        assert_eq!(race(Reorder::InOrder, &later).read_order(), [0, 1, 2]);
        assert_eq!(race(Reorder::NewestFirst, &later).read_order(), [0, 2, 1]);
    }

    #[test]
    fn seeded_is_deterministic_and_depends_on_the_seed() {
        let later: Vec<(u32, u8)> = (1..=6).map(|id| (id, 0)).collect();
        let order = |seed| race(Reorder::Seeded(seed), &later).read_order();
        assert_eq!(order(1), order(1));
        let mut sorted = order(1);
        sorted.sort();
        assert_eq!(sorted, [0, 1, 2, 3, 4, 5, 6]);
        assert!((2..10).any(|seed| order(seed) != order(1)));
        assert!(
            (1..10).any(|seed| order(seed) != sorted),
            "some seed reorders"
        );
    }

    #[test]
    fn write_data_before_its_address_is_buffered() {
        let mut d = Driver::new(1, Reorder::InOrder);
        d.write_data(&[(7, 0xff), (8, 0xff)]);
        for _ in 0..5 {
            d.step();
        }
        assert!(d.w.is_empty() && !d.sub.idle() && d.mem.0.is_empty());
        d.aw.push_back(incr(4, 0x40, 1));
        d.run();
        assert_eq!((d.mem.0[&0x40], d.mem.0[&0x48]), (7, 8));
        assert_eq!(
            d.responses(),
            [(6, 4, RESP_OKAY)],
            "AW in cycle 5, B one later"
        );
        assert!(d.violations().is_empty());
    }

    #[test]
    fn max_outstanding_lowers_arready() {
        let mut d = Driver::new(20, Reorder::InOrder);
        d.sub = AxiSubordinate::new(AxiConfig {
            latency: 20,
            max_outstanding: 2,
            ..AxiConfig::default()
        });
        (0..3).for_each(|i| d.ar.push_back(incr(i, 0x100, 0)));
        for _ in 0..5 {
            d.step();
        }
        assert_eq!(
            (d.sub.outstanding(), d.sub.signals().arready, d.ar.len()),
            ((2, 0), false, 1)
        );
        d.run();
        let mut accepted = d
            .events
            .iter()
            .filter(|e| matches!(e, AxiEvent::Accepted { write: false, .. }));
        let last = accepted.next_back().cloned();
        assert!(
            matches!(
                last,
                Some(AxiEvent::Accepted {
                    cycle: 21,
                    write: false,
                    id: 2,
                    ..
                })
            ),
            "{last:?}"
        );
    }

    #[test]
    fn unmapped_memory_gets_decerr() {
        let mut d = Driver::new(1, Reorder::InOrder);
        d.ar.push_back(incr(1, HOLE - 8, 1));
        d.write(incr(2, HOLE + 0x7f8, 0), &[(1, 0xff)]);
        d.run();
        let resps: Vec<_> = d.reads().iter().map(|r| r.4).collect();
        assert_eq!(resps, [RESP_OKAY, RESP_DECERR]);
        assert_eq!(d.responses()[0].2, RESP_DECERR);
        assert!(d.violations().is_empty());
    }

    #[test]
    fn legal_mixed_traffic_reports_no_violation() {
        let mut d = Driver::new(3, Reorder::Seeded(42));
        d.ready_from = 10;
        for i in 0..24u32 {
            let addr = 0x1000 * u64::from(i);
            let ax = [incr(i % 4, addr + 8, 3), (i % 3, addr, 7, 3, BURST_WRAP)];
            d.ar.push_back(ax[i as usize % 2]);
            d.write(
                (i % 4, addr + 0x104, 2, 2, BURST_INCR),
                &[(1, 0xf0), (2, 0x0f), (3, 0xf0)],
            );
        }
        d.run();
        assert_eq!(
            (d.reads().len(), d.responses().len()),
            (12 * 4 + 12 * 8, 24)
        );
        assert!(d.violations().is_empty());
    }

    /// The rules `m` breaks after `setup` cycles of the driver.
    fn broken(setup: impl FnOnce(&mut Driver), bad: &[ManagerSignals]) -> Vec<&'static str> {
        let mut d = Driver::new(30, Reorder::InOrder);
        d.sub = AxiSubordinate::new(AxiConfig {
            latency: 30,
            max_outstanding: 1,
            ..AxiConfig::default()
        });
        setup(&mut d);
        bad.iter().for_each(|&m| d.step_with(m));
        d.violations()
    }

    fn ar(addr: u64, len: u8, size: u8, burst: u8) -> ManagerSignals {
        let (araddr, arlen, arsize, arburst) = (addr, len, size, burst);
        ManagerSignals {
            arvalid: true,
            araddr,
            arlen,
            arsize,
            arburst,
            ..Default::default()
        }
    }

    #[test]
    fn handshake_rules_are_detected() {
        // One read outstanding holds arready low: a waiting AR changes, then drops.
        let busy = |d: &mut Driver| d.step_with(ar(0x100, 0, 3, 1));
        let waiting = ar(0x200, 0, 3, 1);
        let moved = ar(0x208, 0, 3, 1);
        assert_eq!(broken(busy, &[waiting, moved]), ["AXI4-AR-STABLE"]);
        assert_eq!(
            broken(busy, &[waiting, waiting, ManagerSignals::default()]),
            ["AXI4-AR-VALID-HOLD"]
        );
        let aw = |addr| ManagerSignals {
            awvalid: true,
            awaddr: addr,
            awsize: 3,
            awburst: 1,
            ..Default::default()
        };
        let busy = |d: &mut Driver| d.step_with(aw(0x100));
        assert_eq!(broken(busy, &[aw(0x200), aw(0x300)]), ["AXI4-AW-STABLE"]);
        assert_eq!(
            broken(busy, &[aw(0x200), ManagerSignals::default()]),
            ["AXI4-AW-VALID-HOLD"]
        );
        // A full W buffer holds wready low.
        let w = |wdata| ManagerSignals {
            wvalid: true,
            wdata,
            wstrb: 0xff,
            ..Default::default()
        };
        let full = |d: &mut Driver| (0..W_BUFFER_BEATS).for_each(|_| d.step_with(w(0)));
        assert_eq!(broken(full, &[w(1), w(2)]), ["AXI4-W-STABLE"]);
        assert_eq!(
            broken(full, &[w(1), ManagerSignals::default()]),
            ["AXI4-W-VALID-HOLD"]
        );
    }

    #[test]
    fn wlast_and_wstrb_rules_are_detected() {
        let mut d = Driver::new(1, Reorder::InOrder);
        d.aw.push_back(incr(0, 0x100, 1));
        d.w.extend([(1, 0xff, true), (2, 0xff, false)]);
        d.write((0, 0x201, 0, 0, BURST_INCR), &[(0x0303, 0x06)]);
        d.run();
        assert_eq!(d.violations(), ["AXI4-WLAST", "AXI4-WLAST", "AXI4-WSTRB"]);
        assert_eq!(d.mem.0[&0x200], 0x0300, "only lane 1 written");
    }

    #[test]
    fn address_rules_are_detected_and_answered_decerr() {
        let cases: [(Ax, &str); 7] = [
            (incr(0, 0xff8, 1), "AXI4-4KB"),
            (incr(0, u64::MAX - 7, 3), "AXI4-4KB"),
            ((0, 0x300, 2, 3, BURST_WRAP), "AXI4-WRAP-LEN"),
            ((0, 0x304, 3, 3, BURST_WRAP), "AXI4-WRAP-ALIGN"),
            ((0, 0x300, 16, 3, BURST_FIXED), "AXI4-FIXED-LEN"),
            ((0, 0x300, 0, 4, BURST_INCR), "AXI4-SIZE"),
            ((0, 0x300, 0, 3, 3), "AXI4-BURST-RESERVED"),
        ];
        for (ax, rule) in cases {
            let mut d = Driver::new(1, Reorder::InOrder);
            d.ar.push_back(ax);
            d.write(ax, &vec![(!0, 0xff); usize::from(ax.2) + 1]);
            d.run();
            assert_eq!(d.violations(), [rule, rule], "{ax:x?}");
            assert!(d.reads().iter().all(|r| r.4 == RESP_DECERR && r.3 == 0));
            assert_eq!((d.responses()[0].2, d.mem.0.len()), (RESP_DECERR, 0));
        }
    }

    #[test]
    fn random_signals_never_panic_and_stay_bounded() {
        let mut rng = 7u64;
        let mut d = Driver::new(2, Reorder::NewestFirst);
        for _ in 0..20_000 {
            let r = [(); 4].map(|_| xorshift64star(&mut rng) << 32 | xorshift64star(&mut rng));
            let addr = if r[3] & 1 == 0 { r[0] } else { r[0] % 0x2000 };
            let b = r[1].to_le_bytes();
            let m = ManagerSignals {
                awvalid: b[0] & 1 == 1,
                awid: u32::from(b[1]),
                awaddr: addr,
                awlen: b[2],
                awsize: b[3] % 5,
                awburst: b[4] % 4,
                wvalid: b[5] & 1 == 1,
                wdata: r[2],
                wstrb: b[6],
                wlast: b[7] & 1 == 1,
                bready: b[0] & 2 == 2,
                arvalid: b[0] & 4 == 4,
                arid: u32::from(b[1] >> 4),
                araddr: !addr,
                arlen: b[7],
                arsize: b[6] % 5,
                arburst: b[5] % 4,
                rready: b[0] & 8 == 8,
                ..Default::default()
            };
            d.step_with(m);
            let (reads, writes) = d.sub.outstanding();
            assert!(reads <= 8 && writes <= 8 && d.sub.wbuf.len() <= W_BUFFER_BEATS);
        }
        assert!(!d.violations().is_empty());
    }
}
