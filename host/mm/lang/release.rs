//! Kernel releases, for the bundled paths' versions: `paths/<function>.yaml`
//! follows the release its `follows:` names (4.14, 4.15, or the release
//! that introduced the function), and `paths/<release>/<function>.yaml` the
//! function as that release changed it. `--kernel 4.19` (or a scenario's
//! `kernel: 4.19`) runs, for each function, the newest version at or before
//! it.

use std::fmt;
use std::str::FromStr;

/// A kernel release, `major.minor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Release {
    pub major: u16,
    pub minor: u16,
}

/// The oldest release a `--kernel` can name: the bundled paths' (the seed's
/// 4.14 and 4.15).
pub const OLDEST: Release = Release {
    major: 4,
    minor: 14,
};

impl FromStr for Release {
    type Err = String;

    fn from_str(s: &str) -> Result<Release, String> {
        let bad = || {
            format!(
                "'{}' is not a kernel release: write major.minor, like 4.19 or 5.16 (from {OLDEST} on)",
                s.escape_debug()
            )
        };
        let (a, b) = s.split_once('.').ok_or_else(bad)?;
        let num = |t: &str| -> Result<u16, String> {
            let canonical = !t.is_empty()
                && t.len() <= 3
                && t.bytes().all(|c| c.is_ascii_digit())
                && (t == "0" || !t.starts_with('0'));
            if !canonical {
                return Err(bad());
            }
            t.parse().map_err(|_| bad())
        };
        let r = Release {
            major: num(a)?,
            minor: num(b)?,
        };
        if r < OLDEST {
            return Err(format!(
                "kernel {r} is older than the bundled paths ({OLDEST} and 4.15, the seed's): give {OLDEST} or later"
            ));
        }
        Ok(r)
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The bundled functions a release later than the seed's brought:
/// (function, release, commit, what the older releases do instead). Under
/// an older `--kernel` an action that runs one is refused. (`vmap_try_huge_pmd`
/// is not here: 5.13 renamed 4.18's `ioremap_try_huge_pmd`.)
pub const INTRODUCED: &[(&str, &str, &str, &str)] = &[
    (
        "move_normal_pmd",
        "4.20",
        "2c91bd4a4e2e",
        "move_page_tables moves the 2 MiB region's 512 PTEs one by one (move_ptes over a whole table, not modelled)",
    ),
    (
        "move_normal_pud",
        "5.11",
        "c49dd3401802",
        "move_page_tables moves the 1 GiB region's tables one PMD at a time (not modelled)",
    ),
    (
        "move_hugetlb_page_tables",
        "5.16",
        "550a7d60bd5e",
        "mremap of a hugetlb VMA fails (vma_to_resize returns -EINVAL)",
    ),
];

/// The bundled functions as later releases changed them: (release, file,
/// text), oldest first.
pub const VERSIONS: &[(&str, &str, &str)] = &[
    (
        "4.19",
        "paths/4.19/move_ptes.yaml",
        include_str!("../../../paths/4.19/move_ptes.yaml"),
    ),
    (
        "4.19",
        "paths/4.19/migrate_huge_page.yaml",
        include_str!("../../../paths/4.19/migrate_huge_page.yaml"),
    ),
    (
        "4.20",
        "paths/4.20/do_huge_pmd_numa_page.yaml",
        include_str!("../../../paths/4.20/do_huge_pmd_numa_page.yaml"),
    ),
    (
        "5.14",
        "paths/5.14/move_normal_pmd.yaml",
        include_str!("../../../paths/5.14/move_normal_pmd.yaml"),
    ),
    (
        "5.16",
        "paths/5.16/unmap_hugepage_range.yaml",
        include_str!("../../../paths/5.16/unmap_hugepage_range.yaml"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_parse_canonically_and_order() {
        let r = |s: &str| s.parse::<Release>();
        assert_eq!(
            r("4.19"),
            Ok(Release {
                major: 4,
                minor: 19
            })
        );
        assert_eq!(r("4.20").unwrap().to_string(), "4.20");
        assert!(r("4.2")
            .unwrap_err()
            .contains("older than the bundled paths"));
        assert!(r("4.20").unwrap() > r("4.19").unwrap());
        assert!(r("5.0").unwrap() > r("4.20").unwrap());
        for bad in [
            "4", "4.", ".19", "4.019", "v4.19", "4.19.1", "4.19-rc1", "", "99999.1",
        ] {
            let e = r(bad).unwrap_err();
            assert!(e.contains("not a kernel release"), "{bad}: {e}");
        }
        assert!(r("3.10")
            .unwrap_err()
            .contains("older than the bundled paths"));
    }

    #[test]
    fn every_version_parses_and_replaces() {
        // one path each, a bundled function's name, from its release on
        for (rel, file, text) in VERSIONS {
            let defs = crate::mm::lang::parse_file(file, text).unwrap();
            assert_eq!(defs.len(), 1, "{file}");
            let name = &defs[0].name;
            assert!(file.ends_with(&format!("/{name}.yaml")), "{file}");
            assert!(
                crate::mm::lang::Paths::bundled().get(name).is_some(),
                "{file}"
            );
            let r: Release = rel.parse().unwrap();
            let at = |k: Release| crate::mm::lang::Paths::bundled_at(Some(k));
            let before = Release {
                minor: r.minor.wrapping_sub(1),
                ..r
            };
            assert!(
                at(r).later_versions().contains(&(name.as_str(), *file)),
                "{file}"
            );
            if before >= OLDEST && before.minor < r.minor {
                assert!(
                    !at(before).later_versions().iter().any(|(_, f)| f == file),
                    "{file}"
                );
            }
        }
    }

    #[test]
    fn the_versions_are_in_release_order_under_their_release() {
        let mut last = OLDEST;
        for (rel, file, _) in VERSIONS {
            let r: Release = rel.parse().unwrap();
            assert!(r >= last, "{file}");
            assert!(file.starts_with(&format!("paths/{rel}/")), "{file}");
            last = r;
        }
    }
}
