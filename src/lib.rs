//! plane: provision Kubernetes addon bundles declaratively — the library behind the binary.

pub mod app_file;
pub mod bundle;
pub mod cel;
pub mod cli;
pub mod commands;
pub mod error;
pub mod files;
pub mod gitops;
pub mod k8s_validation;
pub mod kinds;
pub mod kube;
pub mod redact;
pub mod settings;
pub mod ui;
pub mod values;
