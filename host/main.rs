//! `shootdown`: run a scenario on the co-simulator and report what the
//! device saw.

use clap::{Parser, Subcommand};
use shootdown::mm::Policy;
use shootdown::report::render;
use shootdown::scenario::Scenario;
use shootdown::sim::{run, RunOptions};
use shootdown::sweep::{resolve, scenarios_dir};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "shootdown",
    version,
    about = "Secondary-TLB shootdown co-simulator: Linux mm paths in Rust against a Verilated IOMMU and ATS device",
    long_about = "Runs a scenario (a YAML timeline written like the seed's [Time N] tables) with the Linux mm \
paths on the CPU side and a Verilated IOMMU (IOTLB, page-table walker, ATS, command queue) and ATS device \
(ATC, DMA) on the other, then reports the stale-translation windows, what the device read, and the verdict."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one scenario and print its timeline, windows and verdict.
    ///
    /// Exits with status 1 when a verdict differs from the scenario's `expect`,
    /// 2 on a bad scenario or a run that could not finish.
    Scenario {
        /// A scenario file, or a bare name looked up in scenarios/ (e.g. `cow` or `cow.yaml`).
        file: String,
        /// The mmu_notifier policy: always (4.14), seed (4.15), arch (6.6+) or end-only (the bug).
        /// Default: the scenario's `notify`, else every policy its `expect` names.
        #[arg(long, value_parser = parse_policy)]
        notify: Option<Policy>,
        /// The IOMMU driver model (generic, amd, amd@6.10, intel, intel@<release>, arm, arm@5.11, arm-btm, batched; docs/drivers.md). Default: the scenario's `driver:`.
        #[arg(long, value_parser = shootdown::sweep::parse_driver)]
        driver: Option<shootdown::iommu::DriverKind>,
        /// Inject RTL bugs, comma-separated (`shootdown mutants --list` names them). Default: the scenario's `inject:`.
        #[arg(long, value_parser = shootdown::sweep::parse_inject)]
        inject: Option<u16>,
        /// The page-table format and socket: x86-64 (the bundled IOMMU) or riscv-sv39 / riscv-sv48
        /// (the RISC-V IOMMU design built into this binary, docs/socket-riscv.md). Pages outside
        /// the format's user half move (said on stderr). Default: the scenario's `arch:`.
        #[arg(long)]
        arch: Option<shootdown::scenario::Arch>,
        /// Run the bundled kernel paths as this release has them (`4.19`, `5.16`; docs/paths.md,
        /// "Kernel releases"): each function's newest version at or before it. Default: the
        /// scenario's `kernel:`, else the files under paths/.
        #[arg(long, value_parser = |s: &str| s.parse::<shootdown::mm::lang::Release>())]
        kernel: Option<shootdown::mm::lang::Release>,
        /// Do not write waves (faster).
        #[arg(long)]
        no_waves: bool,
        /// Do not check the RTL's SystemVerilog assertions: the run goes on past a
        /// broken invariant and the checker judges what the device did.
        #[arg(long)]
        no_assert: bool,
        /// Where to write `<scenario file stem>-<policy>.vcd` (or `.fst`) and its `.gtkw` (each appears by an
        /// atomic rename once complete, so concurrent runs into one directory are safe).
        #[arg(long, default_value = "waves")]
        waves_dir: PathBuf,
        /// The waves file format: vcd (text, the default) or fst (compressed; GTKWave opens it faster).
        #[arg(long, default_value = "vcd", value_parser = ["vcd", "fst"])]
        waves_format: String,
        /// Print only the verdict line of each run.
        #[arg(long, short)]
        quiet: bool,
        /// Also print the functional coverage of each run (the RTL's cover groups, hits per bin,
        /// holes), and summed over the runs when there are several.
        #[arg(long)]
        coverage: bool,
    },
    /// List the bundled scenarios.
    List,
    /// Run every (scenario, policy) cell in parallel: a table of verdicts and
    /// worst stale windows, and the cost of each policy.
    Sweep(shootdown::sweep::SweepArgs),
    /// Explore the schedules of each scenario's programs (every interleaving
    /// of its threads' moves up to a preemption bound); each finding is
    /// shrunk into a scenario with a timeline that `scenario` replays.
    Explore(shootdown::explore::ExploreArgs),
    /// A worker process of `explore` (it forks at every branch point, so it
    /// runs single-threaded in a process of its own).
    #[command(hide = true)]
    ExploreWorker(shootdown::explore::WorkerArgs),
    /// Run the scenarios against each injectable RTL bug: which scenario
    /// catches it, at which cycle; the correct design must pass them all.
    Mutants(shootdown::mutants::MutantsArgs),
}

fn parse_policy(s: &str) -> Result<Policy, String> {
    s.parse()
}

fn main() -> ExitCode {
    // Output piped into `head` and the like: end quietly when the reader
    // goes away, as command-line tools do, instead of panicking on EPIPE.
    // SAFETY: setting a signal's disposition to the default at the start
    // of main, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Sweep(args) => shootdown::sweep::main(args),
        Cmd::Mutants(args) => shootdown::mutants::main(args),
        Cmd::Explore(args) => shootdown::explore::main(args),
        Cmd::ExploreWorker(args) => shootdown::explore::worker_main(args),
        Cmd::List => {
            let mut names: Vec<_> = std::fs::read_dir(scenarios_dir())
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .map(|e| e.path())
                        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            for p in names {
                match Scenario::load(&p) {
                    Ok(s) => println!(
                        "{:<24} {}",
                        p.file_name().unwrap_or_default().to_string_lossy(),
                        s.about.lines().next().unwrap_or("")
                    ),
                    Err(e) => println!("{e}"),
                }
            }
            ExitCode::SUCCESS
        }
        Cmd::Scenario {
            file,
            notify,
            driver,
            inject,
            arch,
            kernel,
            no_waves,
            no_assert,
            waves_dir,
            waves_format,
            quiet,
            coverage,
        } => {
            let ext = waves_format
                .parse::<shootdown::waves::WavesFormat>()
                .map_or("vcd", |f| f.extension());
            let path = resolve(&file);
            let mut s = match Scenario::load(&path) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("shootdown: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Some(d) = driver {
                s.driver = d;
            }
            if let Some(a) = arch {
                match s.with_arch(a) {
                    Ok((moved, notes)) => {
                        for n in notes {
                            eprintln!("shootdown: --arch {a}: {n}");
                        }
                        s = moved;
                    }
                    Err(e) => {
                        eprintln!("shootdown: {e}");
                        return ExitCode::from(2);
                    }
                }
            }
            s.params.assertions &= !no_assert;
            if let Some(i) = inject {
                s.inject = i;
            }
            if let Some(k) = kernel {
                s = s.with_kernel(k);
            }
            let policies: Vec<Policy> = match notify.or(s.notify) {
                Some(p) => vec![p],
                None if s.expect.is_empty() => vec![Policy::Seed],
                None => Policy::ALL
                    .into_iter()
                    .filter(|p| s.expected(*p).is_some())
                    .collect(),
            };
            if !no_waves {
                if let Err(e) = std::fs::create_dir_all(&waves_dir) {
                    eprintln!("shootdown: cannot create {}: {e}", waves_dir.display());
                    return ExitCode::from(2);
                }
            }
            if s.timeline.is_empty() {
                eprintln!(
                    "shootdown: {}: this scenario gives programs and no timeline: explore its schedules with 'shootdown explore {}', or add a timeline",
                    s.path.display(),
                    s.path.display()
                );
                return ExitCode::from(2);
            }
            // Waves are named after the scenario file, so that a copy of a
            // scenario with other params (same `name:`) gets its own.
            // Only letters, digits, '.', '_' and '-' of it reach the file
            // system (the scenario's `name:` is already checked so).
            let stem = s
                .path
                .file_stem()
                .map(|n| {
                    n.to_string_lossy()
                        .chars()
                        .map(|c| match c {
                            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '_' | '-' => c,
                            _ => '_',
                        })
                        .collect::<String>()
                })
                .filter(|n| !n.is_empty() && !n.starts_with('.'))
                .unwrap_or_else(|| s.name.clone());
            let mut ok = true;
            let mut covered = Vec::new();
            for p in policies {
                let opts = RunOptions {
                    policy: p,
                    waves: (!no_waves).then(|| waves_dir.join(format!("{stem}-{p}.{ext}"))),
                };
                match run(&s, &opts) {
                    Ok(r) => {
                        ok &= r.as_expected();
                        if quiet {
                            let v: Vec<&str> = r.verdict.iter().map(|v| v.name()).collect();
                            println!(
                                "{} --notify {}: {} ({})",
                                s.name,
                                p,
                                if v.is_empty() {
                                    "clean".into()
                                } else {
                                    v.join(", ")
                                },
                                if r.as_expected() {
                                    "as expected"
                                } else {
                                    "MISMATCH"
                                }
                            );
                        } else {
                            println!("{}", render(&s, &r));
                        }
                        if coverage {
                            covered.push((p, r.coverage));
                        }
                    }
                    Err(e) => {
                        eprintln!("shootdown: {e}");
                        if matches!(
                            e,
                            shootdown::sim::RunError::Rtl {
                                source: shootdown::rtl::RtlError::Assertion { .. },
                                ..
                            }
                        ) {
                            eprintln!("shootdown: a protocol assertion of the RTL stopped the run (docs/socket.md, \"Assertions\"); --no-assert runs past it and lets the checker show what the device did");
                        }
                        if let Some(vcd) = opts.waves.as_ref().filter(|v| v.exists()) {
                            eprintln!(
                                "shootdown: waves up to the failure (marked on host.violation): {}; open with: gtkwave --rcvar 'do_initial_zoom_fit yes' {}",
                                vcd.display(),
                                vcd.with_extension("gtkw").display()
                            );
                        }
                        return ExitCode::from(2);
                    }
                }
            }
            // One run: its table. Several: a line per run, then the table
            // of their sum.
            match covered.as_slice() {
                [] => {}
                [(p, c)] => print!("{} --notify {p}: {}", s.name, c.render()),
                runs => {
                    for (p, c) in runs {
                        println!("{} --notify {p}: coverage: {}", s.name, c.render_brief());
                    }
                    let sum = shootdown::coverage::Coverage::sum(runs.iter().map(|(_, c)| c));
                    print!("{}, summed: {}", s.name, sum.render());
                }
            }
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
    }
}
