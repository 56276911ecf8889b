//! ECR for the tests: moto's server as the ECR API (`GetAuthorizationToken` through the real
//! AWS SDK in the binary), and ECR registry host names that reach a local registry.
//!
//! * [`MotoEcr::start`] runs `tests/support/registries/moto_server.py` (every AWS service moto
//!   has, with the patches of `moto_ecr.py` and `moto_lambda.py`) with the virtualenv
//!   `tests/run.sh` makes (`target/test-deps/moto-venv`, PyPI `moto[server]`), on a free
//!   loopback port.
//!   moto's token is base64 of `AWS:<account>-auth-token`, so a registry with htpasswd
//!   `AWS` / [`MOTO_PASSWORD`] accepts exactly what moto hands out. Each call is logged with
//!   the region it was signed for ([`MotoEcr::calls`]); every request of any service is in
//!   [`MotoEcr::requests`], and [`MotoEcr::set_knobs`] changes `moto_lambda.py`'s knobs while
//!   it runs.
//! * [`ecr_command`] runs a command in a private mount namespace (`unshare -m`, as root) whose
//!   `/etc/hosts` maps the given ECR host names to 127.0.0.1, so `ACCOUNT.dkr.ecr.REGION.
//!   amazonaws.com:PORT` reaches a registry (or proxy) on that loopback port; the binary needs
//!   no test-only resolver. The environment carries moto's endpoint (`AWS_ENDPOINT_URL_ECR`,
//!   the SDK's standard override) and fake static keys, and no other AWS setting of the
//!   machine.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// moto's default account id.
pub const ACCOUNT: &str = "123456789012";
/// The registry password in moto's token for [`ACCOUNT`].
pub const MOTO_PASSWORD: &str = "123456789012-auth-token";

/// A running moto server; stopped on drop.
pub struct MotoEcr {
    child: Child,
    port: u16,
    call_log: PathBuf,
    dir: tempfile::TempDir,
}

impl MotoEcr {
    /// Starts moto. `token_ttl_seconds`: the `expiresAt` of its tokens from now; None keeps
    /// moto's own (2015-01-01, already expired).
    pub fn start(token_ttl_seconds: Option<u64>) -> MotoEcr {
        Self::start_answering(token_ttl_seconds, None)
    }

    /// Starts moto with `MOTO_ECR_ANSWER` = `answer` (see `moto_ecr.py`): a failing
    /// `GetAuthorizationToken`.
    pub fn start_answering(token_ttl_seconds: Option<u64>, answer: Option<&str>) -> MotoEcr {
        Self::start_with(token_ttl_seconds, answer, &[])
    }

    /// Starts moto with `env` added to its environment (the knobs `moto_lambda.py` lists).
    pub fn start_with(
        token_ttl_seconds: Option<u64>,
        answer: Option<&str>,
        env: &[(&str, &str)],
    ) -> MotoEcr {
        let python = venv_python();
        let dir = tempfile::Builder::new()
            .prefix("moto-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let call_log = dir.path().join("calls.jsonl");
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/registries/moto_server.py");
        let mut command = Command::new(&python);
        command
            .arg(&script)
            .env("MOTO_ECR_CALL_LOG", &call_log)
            .env("MOTO_CALL_LOG", dir.path().join("requests.jsonl"))
            .env("MOTO_LAMBDA_KNOBS_FILE", dir.path().join("knobs.json"))
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("moto.log")).unwrap());
        match answer {
            Some(answer) => command.env("MOTO_ECR_ANSWER", answer),
            None => command.env_remove("MOTO_ECR_ANSWER"),
        };
        match token_ttl_seconds {
            Some(ttl) => command.env("MOTO_ECR_TOKEN_TTL_SECONDS", ttl.to_string()),
            None => command.env_remove("MOTO_ECR_TOKEN_TTL_SECONDS"),
        };
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting moto ({}): {e}", python.display()));
        let mut first_line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first_line)
            .unwrap();
        let port = first_line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("moto did not print its port, but {first_line:?}"));
        MotoEcr {
            child,
            port,
            call_log,
            dir,
        }
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL_ECR`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `GetAuthorizationToken` calls so far: `{"region", "account"}` each.
    pub fn calls(&self) -> Vec<Value> {
        read_json_lines(&self.call_log)
    }

    /// Every request moto served so far, of any service: `{"service", "operation", "region",
    /// "method", "path"}` each (see `moto_lambda.py`).
    #[allow(dead_code)]
    pub fn requests(&self) -> Vec<Value> {
        read_json_lines(&self.dir.path().join("requests.jsonl"))
    }

    /// Replaces the knobs of `moto_lambda.py` (a JSON object, e.g.
    /// `{"MOTO_LAMBDA_PENDING_POLLS": 3}`) for the requests from now on.
    #[allow(dead_code)]
    pub fn set_knobs(&self, knobs: &Value) {
        std::fs::write(self.dir.path().join("knobs.json"), knobs.to_string()).unwrap();
    }

    /// The directory of this server's logs.
    #[allow(dead_code)]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The regions of the calls so far, in order.
    pub fn call_regions(&self) -> Vec<String> {
        self.calls()
            .iter()
            .map(|call| call["region"].as_str().unwrap().to_owned())
            .collect()
    }
}

impl Drop for MotoEcr {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One JSON value per line of the file at `path` (none if it does not exist).
fn read_json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The virtualenv python with moto, made by `tests/run.sh`.
pub fn venv_python() -> PathBuf {
    let python =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-deps/moto-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `bash tests/run.sh`, which installs moto[server] there",
        python.display()
    );
    python
}

/// `ACCOUNT.dkr.ecr.REGION.amazonaws.com` (or `.amazonaws.com.cn` for `cn-` regions).
pub fn ecr_host_name(region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("{ACCOUNT}.dkr.ecr.{region}.{suffix}")
}

/// `program args...` in a mount namespace whose `/etc/hosts` maps each of `host_names` to
/// 127.0.0.1, with an environment holding only `PATH`, `HOME` = `home`, fake AWS keys and,
/// when given, moto's endpoint. Add more with `.env()`, `.arg()` on the result.
pub fn ecr_command(
    program: &Path,
    host_names: &[&str],
    home: &Path,
    moto: Option<&MotoEcr>,
) -> Command {
    std::fs::create_dir_all(home).unwrap();
    let hosts = home.join("hosts");
    let mut lines = String::from("127.0.0.1 localhost\n::1 localhost\n");
    for name in host_names {
        lines.push_str(&format!("127.0.0.1 {name}\n"));
    }
    std::fs::write(&hosts, lines).unwrap();
    let mut command = Command::new("unshare");
    command
        .arg("--mount")
        .arg("sh")
        .arg("-c")
        .arg("mount --bind \"$0\" /etc/hosts && exec \"$@\"")
        .arg(&hosts)
        .arg(program)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("DOCKER_CONFIG", home.join("docker"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", home.join("aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("aws-credentials"));
    if let Some(moto) = moto {
        command
            .env("AWS_ACCESS_KEY_ID", "AKIATESTINGTESTING00")
            .env("AWS_SECRET_ACCESS_KEY", "testing-secret")
            .env("AWS_ENDPOINT_URL_ECR", moto.endpoint());
    }
    command
}
