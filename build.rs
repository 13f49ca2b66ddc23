//! Rebuild when a bundle, profile or shared template changes: they are embedded with `include_dir`,
//! whose macro cannot tell cargo which files it read.
fn main() {
    for dir in ["addons", "templates", "profiles"] {
        println!("cargo::rerun-if-changed={dir}");
    }
}
