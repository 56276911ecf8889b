//! Fuzzes the parser of a credential file (docker `config.json`, containers `auth.json`) and the
//! lookup of a registry's entry in its `auths` (keys as hosts, URLs, Docker Hub aliases; `auth`
//! as base64 of USER:PASSWORD). Credential helpers are not run.
#![no_main]

use std::path::Path;

use lambda_image::credentials::parse_auth_file;
use libfuzzer_sys::fuzz_target;

const REGISTRIES: [&str; 5] = [
    "docker.io",
    "index.docker.io",
    "public.ecr.aws",
    "123456789012.dkr.ecr.us-east-1.amazonaws.com",
    "127.0.0.1:5000",
];

fuzz_target!(|bytes: &[u8]| {
    let file = Path::new("/fuzz/config.json");
    if let Ok(auth_file) = parse_auth_file(bytes, file) {
        for registry in REGISTRIES {
            let _ = auth_file.auths_credential(file, registry);
        }
    }
});
