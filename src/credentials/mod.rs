//! Where registry credentials come from: the command line, auth files and their helpers, ECR.

mod auth_files;
pub mod ecr;

pub use auth_files::*;
