//! `lambda-image serve` in the background for the tests, and clients that talk to it the way
//! users do (the real `curl`) and the way runtimes do (plain HTTP to the Runtime API).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::support::{lambda_image, run};

/// The RIE's invoke path, which `serve` answers.
pub const INVOCATIONS_PATH: &str = "/2015-03-31/functions/function/invocations";

/// A running `lambda-image serve`, stopped with SIGTERM when dropped.
pub struct Serve {
    child: Child,
    /// Where it listens (127.0.0.1 and the port it picked).
    pub address: SocketAddr,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<JoinHandle<()>>,
}

impl Serve {
    /// Starts `lambda-image serve ARGS --port 0` and waits until it says where it listens.
    pub fn start(args: &[&str]) -> Serve {
        Serve::start_under(&[], args)
    }

    /// [`Serve::start`] run by `wrapper` (a program and its arguments, e.g. `unshare --pid
    /// --fork`, which runs lambda-image as the PID 1 of a PID namespace); empty for none.
    pub fn start_under(wrapper: &[&str], args: &[&str]) -> Serve {
        let mut command = match wrapper.split_first() {
            Some((program, arguments)) => {
                let mut command = Command::new(program);
                command
                    .args(arguments)
                    .arg(env!("CARGO_BIN_EXE_lambda-image"))
                    .env_remove("SOURCE_DATE_EPOCH");
                command
            }
            None => lambda_image(),
        };
        let mut child = command
            .arg("serve")
            .args(args)
            .args(["--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting lambda-image serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (address_sender, address_receiver) = std::sync::mpsc::channel();
        let stderr_reader = {
            let stderr = Arc::clone(&stderr);
            let pipe = child.stderr.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Some(address) = line
                        .strip_prefix("lambda-image: listening on http://")
                        .and_then(|rest| rest.split('/').next())
                    {
                        let _ = address_sender.send(address.parse::<SocketAddr>().unwrap());
                    }
                    let mut all = stderr.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
            })
        };
        let address = match address_receiver.recv_timeout(Duration::from_secs(30)) {
            Ok(address) => address,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("serve did not start:\n{}", stderr.lock().unwrap());
            }
        };
        Serve {
            child,
            address,
            stderr,
            stderr_reader: Some(stderr_reader),
        }
    }

    /// `http://ADDRESS/2015-03-31/functions/function/invocations`.
    pub fn invocations_url(&self) -> String {
        format!("http://{}{INVOCATIONS_PATH}", self.address)
    }

    /// Everything it printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Its stderr once it has printed `text` (waiting at most 10 s: a line logged after an
    /// answer was sent may arrive after the answer), or as it is then.
    pub fn stderr_with(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let stderr = self.stderr();
            if stderr.contains(text) || Instant::now() > deadline {
                return stderr;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process id of what was started (the wrapper's, under [`Serve::start_under`]).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits (at most 10 s) for it to exit.
    pub fn stop(mut self) -> ExitStatus {
        self.terminate()
    }

    /// Sends SIGKILL (nothing of serve's own runs after it) and reaps it. The stderr reader is
    /// not waited for: whatever serve started and failed to take with it still holds the pipe.
    pub fn kill(mut self) -> ExitStatus {
        // SAFETY: kill(2) on our own child, which is not reaped yet.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        let status = self.child.wait().unwrap();
        drop(self.stderr_reader.take());
        status
    }

    fn terminate(&mut self) -> ExitStatus {
        // SAFETY: kill(2) on our own child, which is not reaped yet.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                panic!(
                    "serve did not stop within 10 s of SIGTERM:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        status
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if self.stderr_reader.is_some() && !std::thread::panicking() {
            self.terminate();
        } else if self.stderr_reader.is_some() {
            let _ = self.child.kill();
        }
    }
}

/// What `curl -i` got: the status, the response head and the body.
pub struct CurlResponse {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl CurlResponse {
    /// The value of header `name` (case-insensitive), if any.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.body))
    }
}

/// `curl -s -i -d BODY URL`, as the RIE's documentation invokes a function.
pub fn curl_post(url: &str, body: &str) -> CurlResponse {
    let output = run(Command::new("curl")
        .args(["--silent", "--show-error", "--include", "--max-time", "60"])
        .args(["--data-binary", body])
        .arg(url));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response from curl: {text:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    CurlResponse {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}
