//! What a layer's tar entry says about itself besides its content (mode, owner, mtime, from its
//! header or its PAX records), and setting an mtime on the tree without following a symlink.
//!
//! Not here: applying an entry to the tree (`super::unpack`).

use std::ffi::CString;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Why an entry's attributes cannot be read.
#[derive(Debug)]
pub enum AttributeFault {
    /// The layer's bytes could not be read (its PAX records).
    Read(io::Error),
    /// The header or a PAX record holds something that is not a valid value: why, in words.
    Refused(String),
}

/// What an entry says about itself besides its content.
#[derive(Clone, Copy, Debug)]
pub struct Attributes {
    /// Permission bits with setuid, setgid and sticky (`0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds and nanoseconds since the epoch; `None` for the root when no entry names it.
    pub mtime: Option<(i64, u32)>,
}

/// The entry's mode, owner and mtime: the header's, or its PAX records' (`uid`, `gid`,
/// `mtime`, POSIX pax(1) "pax Extended Header"), which override it.
pub fn attributes(entry: &mut tar::Entry<'_, &mut dyn Read>) -> Result<Attributes, AttributeFault> {
    let header = entry.header();
    let bad = |field: &str, error: io::Error| {
        AttributeFault::Refused(format!("its header's {field} is not valid: {error}"))
    };
    let mode = header.mode().map_err(|error| bad("mode", error))? & 0o7777;
    let mut uid = header.uid().map_err(|error| bad("uid", error))?;
    let mut gid = header.gid().map_err(|error| bad("gid", error))?;
    let mut mtime = (
        i64::try_from(header.mtime().map_err(|error| bad("mtime", error))?).unwrap_or(i64::MAX),
        0,
    );
    if let Some(records) = entry.pax_extensions().map_err(AttributeFault::Read)? {
        for record in records {
            let record = record.map_err(AttributeFault::Read)?;
            let value = record.value().unwrap_or("");
            let number = || {
                value.parse::<u64>().map_err(|_| {
                    AttributeFault::Refused(format!(
                        "its PAX record {} = {value:?} is not a number",
                        String::from_utf8_lossy(record.key_bytes())
                    ))
                })
            };
            match record.key_bytes() {
                b"uid" => uid = number()?,
                b"gid" => gid = number()?,
                b"mtime" => {
                    mtime = pax_time(value).ok_or_else(|| {
                        AttributeFault::Refused(format!(
                            "its PAX mtime {value:?} is not a time in seconds"
                        ))
                    })?;
                }
                _ => {}
            }
        }
    }
    let id = |what: &str, value: u64| {
        u32::try_from(value)
            .map_err(|_| AttributeFault::Refused(format!("its {what} {value} is over 2^32 - 1")))
    };
    Ok(Attributes {
        mode,
        uid: id("uid", uid)?,
        gid: id("gid", gid)?,
        mtime: Some(mtime),
    })
}

/// A PAX time, `seconds[.fraction]` (seconds may be negative).
fn pax_time(value: &str) -> Option<(i64, u32)> {
    let (seconds, fraction) = value.split_once('.').unwrap_or((value, ""));
    let seconds: i64 = seconds.parse().ok()?;
    if !fraction.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let digits: String = fraction
        .chars()
        .chain(std::iter::repeat('0'))
        .take(9)
        .collect();
    let nanoseconds: u32 = digits.parse().ok()?;
    Some((seconds, nanoseconds))
}

pub fn system_time(seconds: i64, nanoseconds: u32) -> SystemTime {
    let since = Duration::new(seconds.unsigned_abs(), nanoseconds);
    if seconds >= 0 {
        SystemTime::UNIX_EPOCH + since
    } else {
        SystemTime::UNIX_EPOCH - since
    }
}

/// Sets the mtime of `path` itself (a symlink is not followed; its atime is left as it is),
/// through utimensat(2) with `AT_SYMLINK_NOFOLLOW`.
pub fn set_mtime(path: &Path, (seconds, nanoseconds): (i64, u32)) -> io::Result<()> {
    let path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: seconds as libc::time_t,
            tv_nsec: nanoseconds as libc::c_long,
        },
    ];
    // SAFETY: `path` is a NUL-terminated string and `times` two timespecs, both outliving the
    // call.
    let result = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            path.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
