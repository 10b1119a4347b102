//! Several models alive in one thread, created and dropped in any order,
//! and a model dropped on another thread than the one that made it: no
//! hang (Verilator 5.006 erases scopes through the thread's context).

use shootdown::rtl::{Model, PortsIn};
use std::sync::mpsc;
use std::time::Duration;

fn idle(m: &mut Model, n: u64) {
    let inp = PortsIn {
        rst_ni: 1,
        cfg_ats_latency: 4,
        ..PortsIn::default()
    };
    for _ in 0..n {
        m.step(&inp);
    }
}

#[test]
fn models_interleaved_in_one_thread_and_across_threads() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut a = Model::new();
        a.reset(4);
        let mut b = Model::new();
        b.reset(4);
        idle(&mut a, 100);
        idle(&mut b, 100);
        drop(a); // b's context is the thread's now; a's must be used
        let mut c = Model::new();
        c.reset(4);
        drop(b);
        idle(&mut c, 10);
        // a model made here, dropped on another thread
        let d = Model::new();
        let cycles = c.cycle();
        std::thread::spawn(move || drop(d)).join().unwrap();
        drop(c);
        tx.send(cycles).unwrap();
    });
    let cycles = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("creating and dropping models hung");
    assert_eq!(cycles, 14);
}
