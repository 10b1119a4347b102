//! The seed's generic SVA driver: no vendor in particular. One part:
//! IOTINVAL.VMA for each page of the range (the whole PASID above
//! `max_pages` pages), one ATS.INVAL for the smallest naturally aligned
//! power-of-two block holding the range, then one fence. The IOMMU's own TLB
//! goes first so the device cannot refill its ATC from a stale IOTLB entry.

use super::{ats_range, Cmd};
use crate::mem::PAGE_SIZE;

pub(super) fn plan(start: u64, end: u64, max_pages: u64) -> Vec<Vec<Cmd>> {
    let pages = end.saturating_sub(start).div_ceil(PAGE_SIZE).max(1);
    let mut part = Vec::new();
    if pages > max_pages {
        part.push(Cmd::IotlbPasid);
    } else {
        part.extend((0..pages).map(|p| Cmd::IotlbPage {
            va: start + p * PAGE_SIZE,
        }));
    }
    let (base, size) = ats_range(start, end);
    part.push(Cmd::Atc { base, size });
    vec![part]
}
