//! Benchmarks the whole offline pipeline (load, layer values, render) of the built-in bundles, in
//! this process: the work of the render child, without the process around it.

use std::hint::black_box;

use clap::Parser;
use criterion::{Criterion, criterion_group, criterion_main};
use plane::cli::{Cli, Command};
use plane::commands::render;
use plane::settings::RenderSettings;

fn args(addon: &str, profile: &str) -> plane::cli::RenderArgs {
    let cli = Cli::parse_from(["plane", "template", addon, "--profile", profile]);
    match cli.command {
        Command::Template(args) => args.render,
        _ => unreachable!("parsed a template command"),
    }
}

fn render(c: &mut Criterion) {
    for profile in ["r-eastus", "local"] {
        let args = args("datalayer-ray", profile);
        let objects = render::render_here(&RenderSettings::from_args(&args), None)
            .expect("datalayer-ray renders")
            .objects
            .len();
        c.bench_function(
            &format!("render datalayer-ray --profile {profile} ({objects} objects)"),
            |b| {
                b.iter(|| {
                    render::render_here(&RenderSettings::from_args(black_box(&args)), None)
                        .expect("renders")
                });
            },
        );
    }
}

criterion_group!(benches, render);
criterion_main!(benches);
