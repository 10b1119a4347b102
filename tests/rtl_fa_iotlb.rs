//! The fully-associative IOTLB of `rtl-variants/fa-iotlb` (built with
//! `SHOOTDOWN_RTL=rtl-variants/fa-iotlb`): pages that would share one set
//! of the bundled 16-set, 4-way IOTLB all stay cached, and once its 64
//! entries are full, one round-robin pointer picks the victim. Against any
//! other RTL this test says so and returns: it also proves that the
//! variant, not `rtl/iotlb.sv`, is what the build simulates.

mod common;
use common::*;

const PASID: u32 = 3;
const MAX: u64 = 3_000;
/// Sets * Ways of `shootdown_top`'s IOTLB.
const ENTRIES: u64 = 64;

#[test]
fn fa_iotlb_holds_64_pages_of_one_set_and_replaces_round_robin() {
    let variant = rtl_overlay().is_some_and(|(dir, files)| {
        dir.ends_with("rtl-variants/fa-iotlb") && files.split(' ').any(|f| f == "iotlb.sv")
    });
    if !variant {
        eprintln!("skipped: this build's IOTLB is not rtl-variants/fa-iotlb/iotlb.sv");
        return;
    }
    let mut s = Sim::new(2, 3);
    // VPNs 16 apart: one set of the bundled IOTLB, which would keep 4.
    let vas: Vec<u64> = (0..ENTRIES + 2)
        .map(|i| 0x7000_0000 + i * 16 * 0x1000)
        .collect();
    let held = |s: &mut Sim, vas: &[u64]| -> Vec<bool> {
        vas.iter()
            .map(|va| {
                s.set_probe(0, PASID, *va);
                s.step();
                s.probe(0)[0].is_some()
            })
            .collect()
    };
    for (i, va) in vas.iter().enumerate() {
        s.map_4k(PASID, *va, 0x50_0000_0000 + (i as u64) * 0x1000, true);
        let r = s.read_wait(i as u8, PASID, *va, MAX);
        assert_eq!(r.status, 0, "read {i}");
        if i as u64 == ENTRIES - 1 {
            assert!(
                held(&mut s, &vas[..=i]).iter().all(|h| *h),
                "all {ENTRIES} pages cached, though they share one set index"
            );
        }
    }
    // fills 0..63 take the invalid entries 0..63; fill 64 evicts entry 0
    // (page 0), fill 65 entry 1 (page 1)
    let after = held(&mut s, &vas);
    let evicted: Vec<usize> = (0..after.len()).filter(|i| !after[*i]).collect();
    assert_eq!(evicted, vec![0, 1], "round robin over all 64 entries");

    // an IOTLB hit needs no walk; the evicted page walks again
    s.submit_cmds(&[
        shootdown::rtl::cmd_ats_inval(PASID, 0, u64::MAX),
        shootdown::rtl::cmd_iofence_c(None, 0),
    ]);
    s.wait_cq_empty(MAX);
    let walks = s.walk_reads();
    s.read_wait(100, PASID, vas[2], MAX);
    assert_eq!(s.walk_reads(), walks, "page 2 hits");
    s.read_wait(101, PASID, vas[0], MAX);
    // (its 2 MiB region is still in the walker's paging-structure cache:
    // the walk reads only the PTE)
    assert_eq!(s.walk_reads(), walks + 1, "page 0 walks again");
}
