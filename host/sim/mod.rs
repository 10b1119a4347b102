//! The co-simulation: the machine (memory + RTL + ports) and the
//! deterministic scheduler that runs a scenario's timeline on it.

pub mod machine;
mod run;
mod trace;

pub use run::{
    run, DevRecord, PageView, RunError, RunOptions, RunReport, SlotReport, StoreRecord, ThreadLine,
    WavesOut,
};
