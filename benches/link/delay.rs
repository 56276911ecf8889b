//! A userspace packet delay line, for kernels without `sch_netem`: two TUN devices (one to end
//! up in the host's namespace, one in the registry's), and threads that read every IP packet
//! that leaves one of them and write it into the other after a fixed one-way delay. TCP runs end
//! to end through it, so it sees the round trip (slow start, window growth, request/answer
//! waits) as over a real path; the tbf shaping of benches/link/net.rs sits on the devices'
//! egress, before the delay, as at a real bottleneck.
//!
//! The devices are opened with `IFF_VNET_HDR` and `TUNSETOFFLOAD` (checksum and TSO offload,
//! Linux `Documentation/networking/tuntap.rst`), so the stack hands over GSO packets of up to
//! 64 KB and the threads move a few thousand packets a second at 1 Gbit/s rather than 80,000:
//! each packet keeps its virtio-net header and goes through unchanged. They are not persistent:
//! they vanish when this process closes them, also when it dies.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

// linux/if_tun.h
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
const TUN_F_CSUM: libc::c_uint = 0x01;
const TUN_F_TSO4: libc::c_uint = 0x02;
const TUN_F_TSO6: libc::c_uint = 0x04;
/// A GSO packet (64 KB) and its virtio-net header, with room to spare.
const PACKET_BUFFER: usize = 70_000;
/// How often idle threads look whether they should stop.
const POLL: Duration = Duration::from_millis(100);

/// The two devices and the four threads moving packets between them; stopped, and the devices
/// gone, on drop.
pub struct DelayLine {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl DelayLine {
    /// Creates TUN devices `first` and `second` in the current network namespace (move one
    /// elsewhere with `ip link set NAME netns NS` afterwards; the open files follow), and starts
    /// delaying every packet by `one_way` in each direction. Panics if the devices cannot be
    /// made (needs CAP_NET_ADMIN and /dev/net/tun).
    pub fn start(first: &str, second: &str, one_way: Duration) -> DelayLine {
        let a = Arc::new(open_tun(first));
        let b = Arc::new(open_tun(second));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for (from, to) in [(a.clone(), b.clone()), (b, a)] {
            let (sender, receiver) = mpsc::channel::<(Instant, Vec<u8>)>();
            let reading = stop.clone();
            threads.push(std::thread::spawn(move || {
                read_packets(&from, one_way, &sender, &reading)
            }));
            let writing = stop.clone();
            threads.push(std::thread::spawn(move || {
                write_packets(&to, &receiver, &writing)
            }));
        }
        DelayLine { stop, threads }
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Opens /dev/net/tun (non-blocking) as a new TUN device `name` with virtio-net headers and
/// checksum/TSO offload.
fn open_tun(name: &str) -> File {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/net/tun")
        .unwrap_or_else(|e| panic!("opening /dev/net/tun: {e}"));
    // struct ifreq: the name (IFNAMSIZ = 16 bytes), then ifr_flags in the union.
    let mut request = [0u8; 40];
    assert!(name.len() < 16, "device name too long: {name}");
    request[..name.len()].copy_from_slice(name.as_bytes());
    let flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR;
    request[16..18].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: TUNSETIFF reads and writes a struct ifreq, which `request` is large enough for;
    // TUNSETOFFLOAD takes an unsigned long by value.
    unsafe {
        assert_eq!(
            libc::ioctl(file.as_raw_fd(), TUNSETIFF, request.as_mut_ptr()),
            0,
            "TUNSETIFF {name}: {}",
            std::io::Error::last_os_error()
        );
        let offload = (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) as libc::c_ulong;
        assert_eq!(
            libc::ioctl(file.as_raw_fd(), TUNSETOFFLOAD, offload),
            0,
            "TUNSETOFFLOAD {name}: {}",
            std::io::Error::last_os_error()
        );
    }
    file
}

/// Reads every packet leaving `from` and queues it with the instant it is due.
fn read_packets(
    from: &File,
    one_way: Duration,
    queue: &mpsc::Sender<(Instant, Vec<u8>)>,
    stop: &AtomicBool,
) {
    let mut buffer = vec![0u8; PACKET_BUFFER];
    while !stop.load(Ordering::Relaxed) {
        match (&*from).read(&mut buffer) {
            Ok(n) => {
                if queue
                    .send((Instant::now() + one_way, buffer[..n].to_vec()))
                    .is_err()
                {
                    return;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => wait_readable(from),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // The device is gone.
            Err(_) => return,
        }
    }
}

/// Writes each queued packet into `to` once it is due, in order.
fn write_packets(to: &File, queue: &mpsc::Receiver<(Instant, Vec<u8>)>, stop: &AtomicBool) {
    let mut pending: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    while !stop.load(Ordering::Relaxed) {
        if pending.is_empty() {
            match queue.recv_timeout(POLL) {
                Ok(packet) => pending.push_back(packet),
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
        pending.extend(queue.try_iter());
        let due = pending.front().unwrap().0;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let (_, packet) = pending.pop_front().unwrap();
        // A TUN device takes a whole packet per write; a full receive queue drops it, as a
        // congested link would.
        let _ = (&*to).write(&packet);
    }
}

/// Waits up to [`POLL`] until `file` has a packet to read.
fn wait_readable(file: &File) {
    let mut poll = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for the duration of the call.
    unsafe {
        libc::poll(&mut poll, 1, POLL.as_millis() as libc::c_int);
    }
}
