//! Values files and profiles are regular files under 4 MiB: `/dev/zero`, a FIFO, a directory or
//! an oversized file is refused at once (exit 2, the file and the limit named), within a
//! bounded address space, without reading the rest.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Fixture, text, within};

/// The address space every run gets: far below what reading `/dev/zero` until the limit (or a
/// 5 MiB file into YAML values) would take if it were read.
const ADDRESS_SPACE_KIB: u32 = 400 * 1024;

/// `plane template minimal` with `args`, run by bash under [`ADDRESS_SPACE_KIB`] (`ulimit -v`),
/// in the clean environment of the other tests.
fn bounded(fixture: &Fixture, args: &[&str]) -> Command {
    let mut script =
        format!("ulimit -v {ADDRESS_SPACE_KIB}; exec \"$0\" template minimal --addons-dir \"$1\"");
    for i in 0..args.len() {
        script.push_str(&format!(" \"${}\"", i + 2));
    }
    let mut shell = common::clean(Command::new("bash"));
    shell
        .current_dir(fixture.root())
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_plane"))
        .arg(fixture.root().join("addons"))
        .args(args)
        .env("RUN_URL", "https://dev.example.com");
    shell
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success());
}

#[test]
fn devices_fifos_directories_and_large_files_are_refused_at_once() {
    let fixture = Fixture::addon("minimal");
    let dir = fixture.root();
    mkfifo(&dir.join("values.fifo"));
    mkfifo(&dir.join("profile.fifo.yaml"));
    mkfifo(&dir.join("profiles/piped.yaml"));
    let big = std::fs::File::create(dir.join("big.yaml")).unwrap();
    big.set_len(5 * 1024 * 1024).unwrap();
    drop(big);
    std::fs::create_dir(dir.join("folder.yaml")).unwrap();

    let cases: [(&[&str], &[&str]); 7] = [
        (
            &["-f", "/dev/zero"],
            &[
                "cannot read values file",
                "-f /dev/zero",
                "a character device",
            ],
        ),
        (
            &["-f", "values.fifo"],
            &["-f values.fifo", "a FIFO (named pipe), not a regular file"],
        ),
        (
            &["-f", "big.yaml"],
            &[
                "-f big.yaml",
                "5 MiB or more, over the limit of 4 MiB",
                "hint: values files and profiles may hold at most 4 MiB",
            ],
        ),
        (
            &["-f", "folder.yaml"],
            &["-f folder.yaml", "a directory, not a regular file"],
        ),
        (
            &["--profile", "/dev/zero"],
            &["cannot read profile file /dev/zero", "a character device"],
        ),
        (
            &["--profile", "profile.fifo.yaml"],
            &["cannot read profile file profile.fifo.yaml", "a FIFO"],
        ),
        (
            &["--profile", "piped"],
            &[
                "cannot read profile",
                "--profile piped",
                "piped.yaml: it is a FIFO",
            ],
        ),
    ];
    for (args, expected) in cases {
        let started = Instant::now();
        let out = within(bounded(&fixture, args), Duration::from_secs(20));
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        for needle in expected {
            assert!(
                stderr.contains(needle),
                "{args:?} lacks {needle:?}: {stderr}"
            );
        }
        assert!(out.stdout.is_empty(), "{args:?}");
        eprintln_elapsed(args, started.elapsed());
    }
}

#[allow(
    clippy::print_stderr,
    reason = "how long each refusal took, for the record"
)]
fn eprintln_elapsed(args: &[&str], elapsed: Duration) {
    eprintln!(
        "{args:?}: refused in {:.0} ms",
        elapsed.as_secs_f64() * 1000.0
    );
}

#[test]
fn a_file_at_the_limit_is_read() {
    let fixture = Fixture::addon("minimal");
    let values = fixture.root().join("padded.yaml");
    // Comments up to just under 4 MiB, then a value: read whole, applied.
    let mut text = String::from("web:\n  replicas: 3\n");
    while text.len() < 4 * 1024 * 1024 - 100 {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&values, text).unwrap();
    let out = within(
        bounded(&fixture, &["-f", "padded.yaml"]),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    assert!(common::text(&out.stdout).contains("replicas: 3"));
}

#[test]
fn a_huge_value_in_an_annotation_names_its_values_path_and_origin_briefly() {
    let fixture = common::builtin("datalayer-ray");
    let values = fixture.root().join("huge.yaml");
    let huge = "x".repeat(3 * 1024 * 1024);
    std::fs::write(
        &values,
        format!("api:\n  ingress:\n    annotations:\n      example.com/huge: {huge}\n"),
    )
    .unwrap();
    let out = within(
        fixture.template(&["--profile", "local", "-f", values.to_str().unwrap()]),
        Duration::from_secs(60),
    );
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        &stderr[..stderr.len().min(4000)]
    );
    for needle in [
        "Ingress/datalayer-api/datalayer-ray has an invalid metadata.annotations.example.com/huge",
        "all annotations together may take at most 262144 bytes",
        "it comes from values path `api.ingress.annotations.example\\.com/huge`",
        "huge.yaml:4:",
        "bytes left out",
    ] {
        assert!(stderr.contains(needle), "lacks {needle:?}: {stderr}");
    }
    // The error names the value, not the value's megabytes.
    assert!(stderr.len() < 16 * 1024, "{} bytes of error", stderr.len());
}
