//! One Lambda execution environment: a runtime (a bootstrap lambda-image starts, an image's
//! entrypoint it runs in a sandbox, or one started elsewhere), the Runtime API it talks to, and one invocation at a time, each ending in an
//! [`Outcome`].
//!
//! The timing follows Lambda. A bootstrap's init (from its start to its first
//! `GET /runtime/invocation/next`) is limited to 10 seconds; when it takes longer, Lambda "retries
//! the Init phase at the time of the first function invocation with the configured function
//! timeout" (Lambda developer guide, "Understanding the Lambda execution environment lifecycle",
//! Init phase; the RIE calls it a suppressed init, `SuppressInit` in
//! `internal/lambda/interop/sandbox_model.go`). So does lambda-image: the bootstrap is killed
//! and started again (Lambda resets the environment), an `INIT_REPORT … Phase: init Status:
//! timeout` line is logged, and the new init and the invocation together have the function's
//! timeout, which is also the deadline the runtime is told. Otherwise the function's timeout
//! starts when the runtime takes the event. A bootstrap that times out, exits, or reports an
//! init error is killed with everything it started, and the next invocation starts a fresh one
//! (a cold start). A runtime started elsewhere cannot be killed or restarted: its invocation is
//! abandoned after 10 s without a request for it.
//!
//! Like Lambda and the RIE, each invocation logs `START`, `END` and `REPORT` lines (on stderr).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant, SystemTime};

use super::invocation::{Answer, Event, Notice, new_request_id};
use super::log::log_line;
use super::process::{BootstrapProcess, Launch, describe_exit};
use super::runtime_api::{Deadline, RuntimeApi};
use crate::error::Result;
use crate::rootfs::RootFilesystem;
use crate::sandbox::SandboxSpec;

/// How long a runtime may take to ask for its first event: "The Init phase is limited to 10
/// seconds" (Lambda developer guide, execution environment lifecycle, Init phase).
pub const INIT_LIMIT: Duration = Duration::from_secs(10);
/// How long a runtime that reported an init error may take to exit by itself (its last logs).
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// Where the runtime comes from.
#[derive(Clone, Debug)]
pub enum RuntimeSource {
    /// lambda-image starts `bootstrap` with `variables` (and restarts it when needed).
    Bootstrap {
        bootstrap: PathBuf,
        variables: Vec<(String, String)>,
    },
    /// lambda-image runs an image's entrypoint in a sandbox (`crate::sandbox`), restarted like
    /// a bootstrap (a cold start after an exit, a timeout or an init error). `spec.env` is the
    /// whole environment, the Runtime API's address included. `rootfs` is the tree `spec.root`
    /// names, kept for as long as the environment may start the runtime (a temporary tree is
    /// removed when the last holder drops it).
    Image {
        spec: SandboxSpec,
        rootfs: Arc<RootFilesystem>,
    },
    /// Someone else starts it, pointed at this Runtime API (e.g. inside a container).
    External,
}

impl RuntimeSource {
    /// lambda-image starts the runtime itself (so it can kill and restart it).
    fn started_here(&self) -> bool {
        !matches!(self, RuntimeSource::External)
    }

    /// How to start it; `None` for a runtime started elsewhere.
    fn launch(&self) -> Option<Launch<'_>> {
        match self {
            RuntimeSource::Bootstrap {
                bootstrap,
                variables,
            } => Some(Launch::Program {
                path: bootstrap,
                environment: variables,
            }),
            RuntimeSource::Image { spec, .. } => Some(Launch::Sandbox(spec)),
            RuntimeSource::External => None,
        }
    }
}

/// How an invocation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The function answered (`…/response`).
    Response {
        body: Vec<u8>,
        content_type: Option<String>,
    },
    /// The function failed (`…/error`); `body` is what the runtime posted.
    FunctionError { body: Vec<u8> },
    /// The runtime could not start (`/runtime/init/error`); `body` is what it posted.
    InitError { body: Vec<u8> },
    /// The bootstrap exited before answering; `reason` as Lambda words it, `code` its exit
    /// status (`None` when a signal killed it).
    Exited { reason: String, code: Option<i32> },
    /// The function did not answer within the timeout (a retried init included).
    TimedOut,
    /// No runtime started elsewhere asked for the event within [`INIT_LIMIT`].
    NotTaken,
}

/// How an invocation went, and its request id.
#[derive(Debug)]
pub struct InvocationReport {
    pub request_id: String,
    pub outcome: Outcome,
}

struct RunningBootstrap {
    process: BootstrapProcess,
    started: Instant,
    /// How long its init took, once it asked for its first event; `None` before.
    init_duration: Option<Duration>,
    /// `init_duration` went into a `REPORT` line already.
    init_reported: bool,
    /// Its init is limited to [`INIT_LIMIT`]; `false` for an init retried inside an invocation,
    /// which has the function's timeout instead.
    init_limited: bool,
    exited: bool,
    init_failed: bool,
}

/// One execution environment, invoked one event at a time.
pub struct ExecutionEnvironment {
    api: Arc<RuntimeApi>,
    notices: Receiver<Notice>,
    notice_sender: Sender<Notice>,
    source: RuntimeSource,
    timeout: Duration,
    memory_size: String,
    running: Option<RunningBootstrap>,
}

impl ExecutionEnvironment {
    /// An environment whose runtime will be told `function_arn`; nothing starts yet. Serve the
    /// returned API (see `server`) before invoking.
    pub fn new(
        source: RuntimeSource,
        function_arn: String,
        timeout: Duration,
        memory_size: &str,
    ) -> (Self, Arc<RuntimeApi>) {
        let (notice_sender, notices) = channel();
        let api = Arc::new(RuntimeApi::new(function_arn, notice_sender.clone()));
        let environment = Self {
            api: Arc::clone(&api),
            notices,
            notice_sender,
            source,
            timeout,
            memory_size: memory_size.to_owned(),
            running: None,
        };
        (environment, api)
    }

    /// Starts the bootstrap now rather than at the first invocation (nothing for an external
    /// runtime). Returns its process id.
    pub fn start(&mut self) -> Result<Option<u32>> {
        if !self.source.started_here() {
            return Ok(None);
        }
        self.stop();
        // Whatever is pending concerns the process just stopped.
        while self.notices.try_recv().is_ok() {}
        let Some(launch) = self.source.launch() else {
            return Ok(None);
        };
        let process = BootstrapProcess::spawn(launch, self.notice_sender.clone())?;
        let pid = process.pid();
        self.running = Some(RunningBootstrap {
            process,
            started: Instant::now(),
            init_duration: None,
            init_reported: false,
            init_limited: true,
            exited: false,
            init_failed: false,
        });
        Ok(Some(pid))
    }

    /// Kills the bootstrap, if one runs, and ends the requests it left waiting. (A runtime
    /// started elsewhere is left alone: its next request for an event keeps waiting.)
    pub fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.process.stop();
            self.api.release_waiting_runtimes();
        }
    }

    /// Delivers `event` and waits for its outcome.
    pub fn invoke(&mut self, event: Event) -> Result<InvocationReport> {
        self.take_idle_notices();
        let needs_start = self.source.started_here()
            && self
                .running
                .as_ref()
                .is_none_or(|running| running.exited || running.init_failed);
        if needs_start {
            self.start()?;
        }

        let request_id = new_request_id();
        log_line!("START RequestId: {request_id} Version: $LATEST");
        // The init limit counts from the bootstrap's start (`serve` starts it before any event).
        let (take_by, init_overran) = match &self.running {
            Some(running) if running.init_limited && running.init_duration.is_none() => {
                (running.started + INIT_LIMIT, false)
            }
            Some(running) if running.init_limited => (
                Instant::now() + INIT_LIMIT,
                running.init_duration.is_some_and(|init| init > INIT_LIMIT),
            ),
            // Ready (it waits for the event), or a runtime started elsewhere.
            _ => (Instant::now() + INIT_LIMIT, false),
        };
        let (outcome, started) = if init_overran {
            // It became ready, but later than Lambda allows: Lambda would have stopped it.
            self.retry_init(&request_id, event)?
        } else {
            self.api.queue(
                &request_id,
                event.clone(),
                Deadline::AfterTaken(self.timeout),
            );
            match self.await_outcome(&request_id, take_by, false) {
                (Outcome::NotTaken, _) if self.can_restart() => {
                    self.api.withdraw(&request_id);
                    self.retry_init(&request_id, event)?
                }
                waited => waited,
            }
        };
        self.api.withdraw(&request_id);
        if !matches!(
            outcome,
            Outcome::Response { .. } | Outcome::FunctionError { .. }
        ) {
            self.stop();
        }

        log_line!("END RequestId: {request_id}");
        let init = self
            .take_init_duration()
            .map(|init| format!("Init Duration: {:.2} ms\t", milliseconds(init)))
            .unwrap_or_default();
        let duration = milliseconds(started.map_or(Duration::ZERO, |start| start.elapsed()));
        log_line!(
            "REPORT RequestId: {request_id}\t{init}Duration: {duration:.2} ms\tBilled Duration: {:.0} ms\tMemory Size: {} MB",
            // Rounded up to the next millisecond, never 0: Lambda bills at least 1 ms (AWS
            // Lambda pricing: "rounded up to the nearest 1 ms").
            duration.ceil().max(1.0),
            self.memory_size
        );
        Ok(InvocationReport {
            request_id,
            outcome,
        })
    }

    /// Lambda's retry of an init that overran [`INIT_LIMIT`]: logs the timed-out init, starts
    /// the bootstrap again and gives the new init plus the invocation the function's timeout
    /// (the deadline the runtime is told). Returns the outcome and when the retry started (the
    /// invocation's duration counts from there).
    fn retry_init(&mut self, request_id: &str, event: Event) -> Result<(Outcome, Option<Instant>)> {
        let first_init = self.running.as_ref().map_or(INIT_LIMIT, |running| {
            running.started.elapsed().min(INIT_LIMIT)
        });
        log_line!(
            "INIT_REPORT Init Duration: {:.2} ms\tPhase: init\tStatus: timeout",
            milliseconds(first_init)
        );
        log_line!(
            "lambda-image: the bootstrap did not ask for an event within {} s (Lambda's init limit); \
             starting it again, with the function's timeout ({} s) for init and invocation, as Lambda does",
            INIT_LIMIT.as_secs(),
            self.timeout.as_secs()
        );
        self.start()?;
        self.mark_running(|running| {
            running.init_limited = false;
            // The retried init is part of the invocation's duration, not a cold start's.
            running.init_reported = true;
        });
        let started = Instant::now();
        self.api.queue(
            request_id,
            event,
            Deadline::At(SystemTime::now() + self.timeout),
        );
        let (outcome, _) = self.await_outcome(request_id, started + self.timeout, true);
        let init_duration = self
            .running
            .as_ref()
            .and_then(|running| running.init_duration);
        let status = match (&outcome, init_duration) {
            (_, Some(_)) => "success",
            (Outcome::TimedOut, None) => "timeout",
            _ => "error",
        };
        log_line!(
            "INIT_REPORT Init Duration: {:.2} ms\tPhase: invoke\tStatus: {status}",
            milliseconds(init_duration.unwrap_or_else(|| started.elapsed()))
        );
        Ok((outcome, Some(started)))
    }

    /// Waits for the notices that end invocation `request_id`: a runtime must take it by
    /// `take_by`, then answer by the deadline it was told. Returns the outcome and when the
    /// event was taken. `retried_init`: the event is already in its function timeout, so not
    /// being taken in time is a timeout.
    fn await_outcome(
        &mut self,
        request_id: &str,
        take_by: Instant,
        retried_init: bool,
    ) -> (Outcome, Option<Instant>) {
        let mut deadline = take_by;
        let mut delivered: Option<Instant> = None;
        let outcome = loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let notice = match self.notices.recv_timeout(remaining) {
                Ok(notice) => notice,
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    break if delivered.is_some() || retried_init {
                        Outcome::TimedOut
                    } else {
                        Outcome::NotTaken
                    };
                }
            };
            match notice {
                Notice::Delivered {
                    request_id: id,
                    deadline: function_deadline,
                } if id == request_id => {
                    let now = Instant::now();
                    delivered = Some(now);
                    // The deadline the runtime was told, on this clock.
                    deadline = now
                        + function_deadline
                            .duration_since(SystemTime::now())
                            .unwrap_or_default();
                }
                Notice::RuntimeReady { at } => self.note_runtime_ready(at),
                Notice::Answered {
                    request_id: id,
                    answer,
                } if id == request_id => {
                    break match answer {
                        Answer::Response { body, content_type } => {
                            Outcome::Response { body, content_type }
                        }
                        Answer::FunctionError { body } => Outcome::FunctionError { body },
                    };
                }
                Notice::InitError { body } => {
                    self.await_exit(EXIT_GRACE);
                    break Outcome::InitError { body };
                }
                Notice::Exited { pid, status } if self.is_running(pid) => {
                    break Outcome::Exited {
                        reason: exit_reason(status),
                        code: status.code(),
                    };
                }
                // Notices about earlier invocations or processes.
                _ => {}
            }
        };
        (outcome, delivered)
    }

    /// The running bootstrap's init duration, the first time it is asked for after its init
    /// (a cold start's `Init Duration`).
    fn take_init_duration(&mut self) -> Option<Duration> {
        self.running
            .as_mut()
            .filter(|running| running.init_duration.is_some() && !running.init_reported)
            .and_then(|running| {
                running.init_reported = true;
                running.init_duration
            })
    }

    /// A bootstrap lambda-image started runs, so it can be started again.
    fn can_restart(&self) -> bool {
        self.source.started_here() && self.running.as_ref().is_some_and(|running| !running.exited)
    }

    /// Applies what happened since the last invocation (a bootstrap that died or failed init).
    fn take_idle_notices(&mut self) {
        while let Ok(notice) = self.notices.try_recv() {
            match notice {
                Notice::RuntimeReady { at } => self.note_runtime_ready(at),
                Notice::Exited { pid, status } if self.is_running(pid) => {
                    log_line!(
                        "lambda-image: the bootstrap (pid {pid}) exited while idle ({}); starting it again",
                        describe_exit(status)
                    );
                    self.mark_running(|running| running.exited = true);
                }
                Notice::InitError { body } => {
                    log_line!(
                        "lambda-image: the runtime reported an init error while idle: {}",
                        String::from_utf8_lossy(&body)
                    );
                    self.mark_running(|running| running.init_failed = true);
                }
                _ => {}
            }
        }
    }

    /// Waits up to `grace` for the running bootstrap to exit by itself.
    fn await_exit(&mut self, grace: Duration) {
        let Some(pid) = self.running.as_ref().map(|running| running.process.pid()) else {
            return;
        };
        let until = Instant::now() + grace;
        while let Ok(notice) = self
            .notices
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            if matches!(notice, Notice::Exited { pid: exited, .. } if exited == pid) {
                return;
            }
        }
    }

    /// The first `GET invocation/next` of the running bootstrap ends its init.
    fn note_runtime_ready(&mut self, at: Instant) {
        self.mark_running(|running| {
            if running.init_duration.is_none() {
                running.init_duration = Some(at.saturating_duration_since(running.started));
            }
        });
    }

    fn is_running(&self, pid: u32) -> bool {
        self.running
            .as_ref()
            .is_some_and(|running| running.process.pid() == pid)
    }

    fn mark_running(&mut self, change: impl FnOnce(&mut RunningBootstrap)) {
        if let Some(running) = self.running.as_mut() {
            change(running);
        }
    }
}

impl Drop for ExecutionEnvironment {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Lambda's wording: "Runtime exited without providing a reason" for a clean exit, else
/// "Runtime exited with error: exit status N" (or "signal: …").
fn exit_reason(status: std::process::ExitStatus) -> String {
    if status.success() {
        "Runtime exited without providing a reason".to_owned()
    } else {
        format!("Runtime exited with error: {}", describe_exit(status))
    }
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
