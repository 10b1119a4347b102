//! [`WavesError`]: everything that can go wrong reading or writing traces.

use std::io;
use std::path::{Path, PathBuf};

/// Error from [`merge`](super::merge), [`write_host_only`](super::write_host_only)
/// or [`write_gtkw`](super::write_gtkw). Every message starts with `[waves]`
/// and names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum WavesError {
    /// The file could not be opened or read.
    #[error("[waves] cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The output file could not be created, written or renamed into place.
    #[error("[waves] cannot write {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The input is not a VCD this module can merge into.
    #[error("[waves] {}:{line}: malformed VCD: {reason}", .path.display())]
    Malformed {
        path: PathBuf,
        /// 1-based line number in `path`.
        line: u64,
        reason: String,
    },
    /// A host top-level scope has the name of a top-level scope of the RTL
    /// trace, so the two hierarchies would mix.
    #[error(
        "[waves] {}: host scope `{scope}` clashes with the RTL trace's top-level scope of the same name",
        .path.display()
    )]
    ScopeClash { path: PathBuf, scope: String },
}

impl WavesError {
    pub(crate) fn read(path: &Path, source: io::Error) -> Self {
        WavesError::Read {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn write(path: &Path, source: io::Error) -> Self {
        WavesError::Write {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn malformed(path: &Path, line: u64, reason: impl Into<String>) -> Self {
        WavesError::Malformed {
            path: path.to_path_buf(),
            line,
            reason: reason.into(),
        }
    }
}
