//! Hostile inputs on disk for the hostile-input table: OCI layouts whose extra layer holds
//! absolute or `..` paths or symlink loops (written raw, as no well-behaved tar writer
//! would), a dynamically linked bootstrap that makes `build` read the base's layers, and TLS
//! endpoints with a wrong host name or an expired certificate (the `openssl` CLI, as
//! `support/fixtures/certificates.rs` makes its certificates).

use std::fs;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{
    self, MEDIA_TYPE_CONFIG, MEDIA_TYPE_LAYER_GZIP, MEDIA_TYPE_MANIFEST, REF_NAME_ANNOTATION,
    fixtures,
};

/// The tag of the hostile amd64 image added to a copied layout.
pub const HOSTILE_TAG: &str = "hostile";

/// One raw tar entry of a hostile layer.
pub enum RawEntry<'a> {
    Directory(&'a str),
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
}

/// A tar whose entry names are written byte for byte (`tar::Header::set_path` refuses `..`
/// and absolute paths, which is the point here).
pub fn raw_tar(entries: &[RawEntry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        let (path, data): (&str, &[u8]) = match entry {
            RawEntry::Directory(path) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                (path, &[])
            }
            RawEntry::File(path, data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o755);
                (path, data)
            }
            RawEntry::Symlink(path, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_link_name(target).unwrap();
                (path, &[])
            }
        };
        header.set_size(data.len() as u64);
        header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap()
}

/// Copies the fixture base to `layout` and adds an amd64 image tagged [`HOSTILE_TAG`]: the
/// fixture's amd64 layers plus one more holding `entries`. Returns `oci:LAYOUT:hostile`.
pub fn layout_with_extra_layer(layout: &Path, entries: &[RawEntry<'_>]) -> String {
    support::table::copy_tree(&fixtures().base_layout, layout);
    let tar = raw_tar(entries);
    let diff_id = format!("sha256:{}", support::sha256_hex(&tar));
    let (layer_digest, layer_size) = support::write_blob(layout, &support::gzip(&tar));

    let f = fixtures();
    let mut config = support::read_blob_json(layout, &f.base_configs["amd64"]);
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .unwrap()
        .push(json!(diff_id));
    config["history"]
        .as_array_mut()
        .unwrap()
        .push(json!({"created_by": "hostile layer"}));
    let (config_digest, config_size) =
        support::write_blob(layout, &support::to_json_bytes(&config));

    let mut manifest = support::read_blob_json(layout, &f.base_manifests["amd64"]);
    manifest["config"] =
        json!({"mediaType": MEDIA_TYPE_CONFIG, "digest": config_digest, "size": config_size});
    manifest["layers"].as_array_mut().unwrap().push(json!({
        "mediaType": MEDIA_TYPE_LAYER_GZIP, "digest": layer_digest, "size": layer_size
    }));
    let (manifest_digest, manifest_size) =
        support::write_blob(layout, &support::to_json_bytes(&manifest));

    let index_path = layout.join("index.json");
    let mut index = support::read_json(&index_path);
    index["manifests"].as_array_mut().unwrap().push(json!({
        "mediaType": MEDIA_TYPE_MANIFEST,
        "digest": manifest_digest,
        "size": manifest_size,
        "platform": {"architecture": "amd64", "os": "linux"},
        "annotations": {REF_NAME_ANNOTATION: HOSTILE_TAG},
    }));
    fs::write(&index_path, support::to_json_bytes(&index)).unwrap();
    format!("oci:{}:{HOSTILE_TAG}", layout.display())
}

/// A dynamically linked x86-64 bootstrap (gcc's default), whose interpreter
/// `/lib64/ld-linux-x86-64.so.2` makes `build` read a local base's layers.
pub fn dynamic_bootstrap(path: &Path) {
    let source = path.with_extension("c");
    fs::write(&source, "int main(void) { return 0; }\n").unwrap();
    support::run(Command::new("gcc").arg("-o").arg(path).arg(&source));
}

/// What is wrong with a TLS server's certificate.
#[derive(Clone, Copy)]
pub enum BadCertificate {
    /// Valid, but for `registry.example` only (the client connects to 127.0.0.1).
    WrongName,
    /// For 127.0.0.1, but it expired yesterday.
    Expired,
}

/// `openssl s_server` on a free loopback port with a bad certificate signed by a throw-away CA
/// (which the client is told to trust); killed on drop.
pub struct BadTlsServer {
    child: Child,
    port: u16,
    ca_cert: PathBuf,
}

impl BadTlsServer {
    pub fn start(dir: &Path, problem: BadCertificate) -> BadTlsServer {
        fs::create_dir_all(dir).unwrap();
        let openssl = || {
            let mut command = Command::new("openssl");
            command.current_dir(dir);
            command
        };
        let new_key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        support::run(
            openssl()
                .args(["req", "-x509", "-days", "7", "-subj", "/CN=hostile test CA"])
                .args(["-addext", "basicConstraints=critical,CA:TRUE"])
                .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
                .args(new_key)
                .args(["-keyout", "ca.key", "-out", "ca.crt"]),
        );
        support::run(
            openssl()
                .args(["req", "-new", "-subj", "/CN=hostile test server"])
                .args(new_key)
                .args(["-keyout", "server.key", "-out", "server.csr"]),
        );
        let (name, days) = match problem {
            BadCertificate::WrongName => ("DNS:registry.example", "7"),
            BadCertificate::Expired => ("IP:127.0.0.1, DNS:localhost", "-1"),
        };
        fs::write(
            dir.join("server.ext"),
            format!("subjectAltName = {name}\nextendedKeyUsage = serverAuth\nbasicConstraints = critical, CA:FALSE\n"),
        )
        .unwrap();
        support::run(
            openssl()
                .args(["x509", "-req", "-in", "server.csr", "-CA", "ca.crt"])
                .args(["-CAkey", "ca.key", "-CAcreateserial", "-days", days])
                .args(["-extfile", "server.ext", "-out", "server.crt"]),
        );
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = openssl()
            .args(["s_server", "-quiet", "-www", "-cert", "server.crt"])
            .args(["-key", "server.key", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting openssl s_server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            assert!(Instant::now() < deadline, "openssl s_server did not start");
            std::thread::sleep(Duration::from_millis(25));
        }
        BadTlsServer {
            child,
            port,
            ca_cert: dir.join("ca.crt"),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The CA that signed the bad certificate (for `SSL_CERT_FILE`).
    pub fn ca_cert(&self) -> &Path {
        &self.ca_cert
    }
}

impl Drop for BadTlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A config of `size` bytes that is valid JSON (a padded `config`), for the limit tests.
pub fn padded_json(size: usize) -> Vec<u8> {
    let mut value: Value = json!({"architecture": "amd64", "os": "linux", "pad": ""});
    let overhead = support::to_json_bytes(&value).len();
    value["pad"] = json!("x".repeat(size.saturating_sub(overhead)));
    support::to_json_bytes(&value)
}
