//! The co-simulation: the machine (memory + RTL + ports) and the
//! deterministic scheduler that runs a scenario's timeline on it.

pub mod digest;
pub mod machine;
mod outcome;
mod run;
mod trace;

pub use outcome::{DevRecord, IoRecord, PageView, RunReport, SlotReport, StoreRecord, ThreadLine};
pub use run::{run, RunError, RunOptions, Session};
pub use trace::WavesOut;
