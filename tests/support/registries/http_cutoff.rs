//! Ending a connection of the test HTTP server ([`super::http`]) other than by answering:
//! with a TCP reset, an orderly close, or silence; used to break bodies off mid-way.

use std::io::BufReader;
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How a broken-off body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cutoff {
    /// A TCP reset.
    Reset,
    /// An orderly close (FIN): the body is simply shorter than announced.
    Close,
    /// Nothing more: the connection is held open, silent, until the server is dropped.
    Hold,
}

/// Ends a connection as `cutoff` says; `Hold` waits (silent) until the server stops.
pub fn end_connection(
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    cutoff: Cutoff,
    stopping: &AtomicBool,
) {
    match cutoff {
        Cutoff::Reset => {
            set_linger_zero(&writer);
            // Every descriptor of the socket must be closed for the reset to go out.
            drop(reader);
            drop(writer);
        }
        Cutoff::Close => {
            let _ = writer.shutdown(Shutdown::Both);
        }
        Cutoff::Hold => {
            let started = Instant::now();
            while !stopping.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(300) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = writer.shutdown(Shutdown::Both);
        }
    }
}

/// `struct linger` of `<sys/socket.h>`.
#[repr(C)]
struct Linger {
    l_onoff: i32,
    l_linger: i32,
}

// Linux's values (x86-64, aarch64 and most others; not mips, sparc or parisc).
const SOL_SOCKET: i32 = 1;
const SO_LINGER: i32 = 13;

unsafe extern "C" {
    /// setsockopt(2) from the C library that std already links.
    fn setsockopt(fd: i32, level: i32, name: i32, value: *const Linger, len: u32) -> i32;
}

/// Makes the next close of `stream` send a reset instead of a FIN.
pub(super) fn set_linger_zero(stream: &TcpStream) {
    let linger = Linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor, a pointer to a live `struct linger` and its size.
    unsafe {
        setsockopt(
            stream.as_raw_fd(),
            SOL_SOCKET,
            SO_LINGER,
            &linger,
            std::mem::size_of::<Linger>() as u32,
        );
    }
}
