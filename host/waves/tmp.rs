//! Temporary files beside an output, unique per process and per call, so
//! that concurrent runs (two processes, or the threads of one) writing into
//! one directory never share one; outputs appear by an atomic rename of a
//! complete file.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::WavesError;

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A fresh name beside `out` for a temporary file: `.<name>.<pid>-<n>.<tag>`,
/// in the same directory (so a rename onto `out` is atomic), hidden, and
/// never returned twice in one process.
pub fn temp_path(out: &Path, tag: &str) -> PathBuf {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut name = OsString::from(".");
    name.push(out.file_name().unwrap_or_else(|| "waves".as_ref()));
    name.push(format!(".{}-{n}.{tag}", std::process::id()));
    out.with_file_name(name)
}

/// A temporary file that is removed when this is dropped (whether or not it
/// was ever created).
#[derive(Debug)]
pub struct TempFile(PathBuf);

impl TempFile {
    /// A new unique name beside `out` (see [`temp_path`]); nothing is
    /// created yet.
    pub fn beside(out: &Path, tag: &str) -> TempFile {
        TempFile(temp_path(out, tag))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Writes `bytes` to `out` through a unique temporary file renamed into
/// place; on error the temporary file is removed and `out` is untouched.
pub(crate) fn write_file_atomically(out: &Path, bytes: &[u8]) -> Result<(), WavesError> {
    let tmp = TempFile::beside(out, "tmp");
    fs::write(tmp.path(), bytes).map_err(|e| WavesError::write(out, e))?;
    fs::rename(tmp.path(), out).map_err(|e| WavesError::write(out, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_hidden_and_beside_the_output() {
        let out = Path::new("/some/dir/cow-seed.vcd");
        let a = temp_path(out, "rtl");
        let b = temp_path(out, "rtl");
        assert_ne!(a, b);
        assert_eq!(a.parent(), out.parent());
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".cow-seed.vcd."), "{name}");
        assert!(name.contains(&std::process::id().to_string()), "{name}");
        assert!(name.ends_with(".rtl"), "{name}");
    }

    #[test]
    fn a_temp_file_is_removed_on_drop() {
        let dir = std::env::temp_dir().join(format!("waves_tmp_unit_{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let out = dir.join("x.vcd");
        let p = {
            let t = TempFile::beside(&out, "rtl");
            fs::write(t.path(), b"x").unwrap();
            t.path().to_path_buf()
        };
        assert!(!p.exists());
        write_file_atomically(&out, b"done").unwrap();
        assert_eq!(fs::read(&out).unwrap(), b"done");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "only the output");
        assert!(write_file_atomically(&dir.join("no/such/dir/y"), b"").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
