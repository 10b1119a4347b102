//! One waveform for the whole co-simulation: the host's own signals (CPU
//! thread steps, PTE values of named pages, stale-window flags, violation
//! markers) merged into the VCD Verilator writes, optionally converted to
//! FST, plus a GTKWave save file.
//!
//! # Time base
//!
//! Verilator's trace uses `$timescale 1ps` and has one timestamp per cycle:
//! rising edge `c` at `c * 1000` (the falling edge is not dumped, so the
//! clock reads 1 throughout; at `c * 1000` an input shows the value edge `c`
//! sampled, a register its value after edge `c`). Host signals are recorded
//! in the same picoseconds, at cycle times (`cycle * 1000`: what the host
//! saw and did after edge `cycle`), in a [`HostTrace`]. [`merge`] streams the RTL VCD into a new VCD that also
//! holds the host scopes and changes; [`write_host_only`] writes the host
//! signals alone when there is no RTL trace; [`write_gtkw`] writes the
//! `.gtkw` that opens the result with the chosen signals grouped.
//!
//! # Merging cheaply
//!
//! [`merge`] reads the RTL trace in 1 MiB blocks. Almost every line
//! Verilator writes is a value change or a timestamp before which the host
//! has nothing to insert: those are not parsed beyond their first bytes and
//! go out in runs, one slice of the block each. Only the timestamps that get
//! host changes around them (and anything unusual: commands, several tokens
//! on a line, malformed input) go through the token state machine, which
//! inserts the host changes and checks the syntax. A 50 MB synthetic trace
//! with a host change in every cycle merges at about 540 MB/s.
//!
//! # FST
//!
//! [`vcd_to_fst`] converts a (merged) VCD into FST as it streams, through
//! GTKWave's own writer, libfst, compiled by build.rs from the copy
//! Verilator ships (it needs zlib). Scopes, variables, aliases (one code in
//! several scopes) and every change carry over; text signals become FST
//! string variables holding the unescaped text, which GTKWave shows as it
//! shows the VCD's. The FST's date and version fields are fixed strings, so
//! it is as deterministic as the VCD. A path ending in `.fst` asks the
//! simulator for FST ([`WavesFormat::of_path`]).
//!
//! # Files
//!
//! Every output (merged VCD, FST, `.gtkw`) is written to a temporary file
//! beside it and renamed into place once complete, so a reader never sees a
//! half-written file and two runs writing the same name leave one complete
//! file or the other. Temporary names ([`temp_path`]) are unique per process
//! and per call (`.<name>.<pid>-<n>.<tag>`), so runs in parallel, in one
//! process (`sweep`) or in several, never share one; [`TempFile`] removes
//! one when dropped, on every error path.
//!
//! # Text signals
//!
//! Text (e.g. the step a CPU thread is in) is a VCD string variable,
//! `$var string 1 <id> <name> $end`, with changes `s<text> <id>`. Checked
//! before choosing it: GTKWave 3.3.118 shows such a variable as text, both
//! when reading the VCD (its `vcd_recoder` loader) and after `vcd2fst`
//! (which accepts it); the `vcd` crate 0.7 parses both the declaration and
//! the changes. So the fallback, a wide wire of 8 bits per character shown
//! with GTKWave's ASCII format, is not needed (and would truncate text).
//!
//! A VCD value is one whitespace-free token, so text is escaped as GTKWave's
//! own writers escape it and as its VCD reader and `vcd2fst` decode it:
//! bytes outside printable ASCII `!`..=`~` (space included) become octal
//! `\ooo` (a space is `\040`), a backslash becomes `\\`, and the empty
//! string is written as one escaped space. GTKWave therefore shows the
//! original text, spaces and all. The `vcd` crate does not decode escapes:
//! a reader using it should pass values through [`unescape_text`].
//!
//! In the `.gtkw`, text signals get the ASCII flag (`@820`); GTKWave names a
//! string variable without a bit range.
//!
//! # Determinism
//!
//! The same inputs give byte-identical outputs: no dates are written, host
//! identifier codes depend only on the RTL header and the registration
//! order, and scopes are written in registration order.

mod emit;
mod error;
mod fst;
mod gtkw;
mod merge;
mod tmp;
mod trace;

pub use error::WavesError;

use std::path::Path;

/// The file format of a run's waves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WavesFormat {
    /// Value Change Dump text (the default).
    #[default]
    Vcd,
    /// GTKWave's Fast Signal Trace: compressed, opens faster.
    Fst,
}

impl WavesFormat {
    /// The file name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            WavesFormat::Vcd => "vcd",
            WavesFormat::Fst => "fst",
        }
    }

    /// FST for a path ending in `.fst` (any case), else VCD.
    pub fn of_path(path: &Path) -> WavesFormat {
        match path.extension() {
            Some(e) if e.eq_ignore_ascii_case("fst") => WavesFormat::Fst,
            _ => WavesFormat::Vcd,
        }
    }
}

impl std::str::FromStr for WavesFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "vcd" => Ok(WavesFormat::Vcd),
            "fst" => Ok(WavesFormat::Fst),
            other => Err(format!("unknown waves format '{other}' (vcd or fst)")),
        }
    }
}
pub use fst::vcd_to_fst;
pub use gtkw::{write_gtkw, GtkwFormat, GtkwGroup, GtkwSignal};
pub use merge::{merge, write_host_only, MergeStats};
pub use tmp::{temp_path, TempFile};
pub use trace::{escape_text, unescape_text, HostTrace, SigId, DEFAULT_SCOPE, MAX_WIRE_WIDTH};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_from_path_and_name() {
        assert_eq!(
            WavesFormat::of_path(Path::new("w/cow-seed.fst")),
            WavesFormat::Fst
        );
        assert_eq!(
            WavesFormat::of_path(Path::new("w/cow-seed.FST")),
            WavesFormat::Fst
        );
        assert_eq!(
            WavesFormat::of_path(Path::new("w/cow-seed.vcd")),
            WavesFormat::Vcd
        );
        assert_eq!(
            WavesFormat::of_path(Path::new("w/cow-seed")),
            WavesFormat::Vcd
        );
        assert_eq!("fst".parse(), Ok(WavesFormat::Fst));
        assert_eq!(
            "vcd".parse::<WavesFormat>().map(|f| f.extension()),
            Ok("vcd")
        );
        assert!("ghw"
            .parse::<WavesFormat>()
            .unwrap_err()
            .contains("vcd or fst"));
    }
}
