pub mod body_faults;
pub mod ecr;
pub mod forward_proxy;
pub mod http;
pub mod http_cutoff;
pub mod proxy;
pub mod registry;
pub mod token;
