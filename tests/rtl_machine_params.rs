//! The host side of the new knobs, through `sim::machine::MachineParams`:
//! `iommu_mem_latency` (the IOMMU memory port's latency: walks, command
//! fetches) and the configuration inputs `ats_cpl_delay`, `atc_entries`,
//! `iotlb_ways`, `iotlb_sets`, `ats_itags`, saturated to their port widths.

use shootdown::mem::{pte, AddressSpace, PageSize, PAGE_SHIFT};
use shootdown::rtl::{cmd_ats_inval, Inject};
use shootdown::sim::machine::{DevRequest, DevResponse, IommuLayout, Machine, MachineParams};

const PASID: u32 = 1;
const MAX: u64 = 100_000;

/// A reset machine with `params`, a PASID table whose entry `PASID` points
/// at a fresh address space, and `n` mapped 4 KiB pages 16 pages apart (one
/// set of the bundled IOTLB): their VAs.
fn machine(params: MachineParams, n: u64) -> (Machine, Vec<u64>) {
    let (m, vas, _) = machine_strided(params, n, 16);
    (m, vas)
}

/// [`machine`] with the pages `stride` pages apart (1: consecutive pages,
/// different sets of the whole bundled IOTLB); also the command queue's PA.
fn machine_strided(params: MachineParams, n: u64, stride: u64) -> (Machine, Vec<u64>, u64) {
    let mut m = Machine::new(params);
    let layout = layout(&mut m);
    let mm = AddressSpace::new(&mut m.mem, PASID).unwrap();
    layout.bind(&mut m.mem, PASID, mm.pgd).unwrap();
    let vas: Vec<u64> = (0..n).map(|i| 0x7000_0000 + i * stride * 0x1000).collect();
    for va in &vas {
        let f = m.mem.alloc().unwrap();
        let flags = pte::RW | pte::US | pte::A | pte::D;
        mm.map(&mut m.mem, *va, f, PageSize::Small, flags).unwrap();
    }
    m.reset(layout);
    (m, vas, layout.cq_base)
}

/// A command queue and a PASID table in fresh frames (no PRI).
fn layout(m: &mut Machine) -> IommuLayout {
    let cq = m.mem.alloc().unwrap();
    let table = m.mem.alloc().unwrap();
    IommuLayout {
        cq_base: cq << PAGE_SHIFT,
        cq_log2n: 6,
        pasid_table: table << PAGE_SHIFT,
        pq_base: 0,
        pq_log2n: 0,
    }
}

/// Read `va` through the device: the response and the cycles it took.
fn read(m: &mut Machine, id: u8, va: u64, max: u64) -> Option<(DevResponse, u64)> {
    let t0 = m.cycle();
    m.dev_submit(DevRequest {
        id,
        pasid: PASID,
        va,
        write: false,
        wdata: 0,
    });
    while m.cycle() - t0 < max {
        m.tick();
        assert!(m.rtl_error().is_none(), "{:?}", m.rtl_error());
        if let Some(r) = m.dev_responses.pop() {
            assert_eq!((r.id, r.fault), (id, false));
            return Some((r, m.cycle() - t0));
        }
    }
    None
}

/// Cycles of a read that walks, then of a second read of the same page
/// (an ATC hit: no IOMMU traffic).
fn walk_then_hit(params: MachineParams) -> (u64, u64) {
    let (mut m, vas) = machine(params, 1);
    let (_, walk) = read(&mut m, 1, vas[0], MAX).expect("first read");
    let (_, hit) = read(&mut m, 2, vas[0], MAX).expect("second read");
    (walk, hit)
}

fn params(f: impl FnOnce(&mut MachineParams)) -> MachineParams {
    let mut p = MachineParams {
        mem_latency: 10,
        ats_latency: 20,
        ..MachineParams::default()
    };
    f(&mut p);
    p
}

#[test]
fn iommu_mem_latency_slows_the_walk_and_nothing_else() {
    let (walk, hit) = walk_then_hit(params(|_| {}));
    assert_eq!(
        walk_then_hit(params(|p| p.iommu_mem_latency = 10)),
        (walk, hit),
        "equal to mem_latency: the same as 0"
    );
    let (slow_walk, slow_hit) = walk_then_hit(params(|p| p.iommu_mem_latency = 100));
    // five walk reads (PASID entry, PML4, PDPT, PD, PT), 90 cycles slower each
    assert!(
        slow_walk >= walk + 5 * 90,
        "walk {walk} -> {slow_walk} cycles"
    );
    assert_eq!(slow_hit, hit, "the device's own memory port is not slowed");
    // and the device port's latency leaves the walk alone
    let (w, h) = walk_then_hit(params(|p| {
        p.iommu_mem_latency = 10;
        p.dev_mem_latency = 100;
    }));
    assert_eq!((w - walk, h - hit), (90, 90), "one device access each");
}

#[test]
fn ats_cpl_delay_delays_each_completion() {
    let (walk, hit) = walk_then_hit(params(|_| {}));
    let (w, h) = walk_then_hit(params(|p| p.ats_cpl_delay = 300));
    assert_eq!((w, h), (walk + 300, hit));
}

#[test]
fn ats_cpl_delay_saturates_at_16_bits() {
    let (walk, _) = walk_then_hit(params(|_| {}));
    // 65541 wrapped would be 5; saturated it is 65535
    let (mut m, vas) = machine(params(|p| p.ats_cpl_delay = 65_541), 1);
    assert!(read(&mut m, 1, vas[0], walk + 1000).is_none());
}

/// Which of the pages (IOTLB, ATC) hold after reading each once.
fn held_after_reads(params: MachineParams, n: u64) -> (Vec<bool>, Vec<bool>) {
    let (mut m, vas) = machine(params, n);
    for (i, va) in vas.iter().enumerate() {
        read(&mut m, i as u8, *va, MAX).expect("read");
    }
    for (slot, va) in vas.iter().enumerate() {
        m.set_probe(slot, PASID, va >> 12);
    }
    m.tick();
    let probes: Vec<_> = (0..vas.len()).map(|slot| m.probe(slot)).collect();
    (
        probes.iter().map(|p| p[0].is_some()).collect(),
        probes.iter().map(|p| p[1].is_some()).collect(),
    )
}

#[test]
fn atc_entries_and_iotlb_ways_limit_the_caches() {
    let all = held_after_reads(params(|_| {}), 2);
    assert_eq!(all, (vec![true, true], vec![true, true]));
    let (iotlb, atc) = held_after_reads(params(|p| p.atc_entries = 1), 2);
    assert_eq!((iotlb, atc), (vec![true, true], vec![false, true]));
    let (iotlb, atc) = held_after_reads(params(|p| p.iotlb_ways = 1), 2);
    assert_eq!((iotlb, atc), (vec![false, true], vec![true, true]));
}

#[test]
fn atc_entries_and_iotlb_ways_saturate_at_8_bits() {
    // 257 wrapped would be 1; saturated it is 255: every entry
    let r = held_after_reads(
        params(|p| {
            p.atc_entries = 257;
            p.iotlb_ways = 257;
        }),
        2,
    );
    assert_eq!(r, (vec![true, true], vec![true, true]));
}

/// How many of `n` consecutive pages (different sets of the whole bundled
/// IOTLB) the IOTLB holds after reading each once, probed one at a time.
fn iotlb_holds_of_consecutive(params: MachineParams, n: u64) -> usize {
    let (mut m, vas, _) = machine_strided(params, n, 1);
    for (i, va) in vas.iter().enumerate() {
        read(&mut m, i as u8, *va, MAX).expect("read");
    }
    vas.iter()
        .filter(|va| {
            m.set_probe(0, PASID, *va >> 12);
            m.tick();
            m.probe(0)[0].is_some()
        })
        .count()
}

/// A device that never completes an invalidation, no timeout: submit three
/// ATS.INVALs and return where the queue head stops (each holds an ITag).
fn head_after_three_invals(params: MachineParams) -> u32 {
    let (mut m, _, cq) = machine_strided(
        MachineParams {
            inject: Inject::DROP_INV_CPL,
            ..params
        },
        0,
        1,
    );
    for i in 0..3u64 {
        let [dw0, dw1] = cmd_ats_inval(PASID, i << 12, 4096);
        m.mem.write(cq + 16 * i, dw0, 0).unwrap();
        m.mem.write(cq + 16 * i + 8, dw1, 0).unwrap();
    }
    m.set_cq_tail(3);
    for _ in 0..3_000 {
        m.tick();
        assert!(m.rtl_error().is_none(), "{:?}", m.rtl_error());
    }
    assert_eq!(m.cq_err(), 0);
    m.cq_head()
}

#[test]
fn iotlb_sets_and_ats_itags_limit_the_iotlb_and_the_itags() {
    // IotlbWays (4) ways of one set hold four of five pages
    assert_eq!(iotlb_holds_of_consecutive(params(|_| {}), 5), 5);
    assert_eq!(
        iotlb_holds_of_consecutive(params(|p| p.iotlb_sets = 1), 5),
        4
    );
    assert_eq!(head_after_three_invals(params(|_| {})), 3);
    assert_eq!(head_after_three_invals(params(|p| p.ats_itags = 1)), 1);
    assert_eq!(head_after_three_invals(params(|p| p.ats_itags = 2)), 2);
}

#[test]
fn iotlb_sets_and_ats_itags_saturate_at_8_bits() {
    // 257 wrapped would be 1 (one set, one ITag); saturated it is 255: all
    assert_eq!(
        iotlb_holds_of_consecutive(params(|p| p.iotlb_sets = 257), 5),
        5
    );
    assert_eq!(head_after_three_invals(params(|p| p.ats_itags = 257)), 3);
}

/// A walk that leaves physical memory is the run's error, not a read of 0:
/// here the PASID-table entry points at a frame no memory has.
#[test]
fn a_memory_access_outside_physical_memory_stops_the_run() {
    let mut m = Machine::new(MachineParams::default());
    let layout = layout(&mut m);
    layout.bind(&mut m.mem, PASID, 0xf_ffff).unwrap();
    m.reset(layout);
    m.dev_submit(DevRequest {
        id: 0,
        pasid: PASID,
        va: 0x7000_0000,
        write: false,
        wdata: 0,
    });
    while m.rtl_error().is_none() && m.cycle() < MAX {
        m.tick();
    }
    let e = m.rtl_error().expect("the walk's bus error").to_string();
    assert!(
        e.contains("bus error: the iommu memory port accessed 0xfffff000"),
        "{e}"
    );
    assert_eq!(m.bus_errors[0].port, "iommu");
}
