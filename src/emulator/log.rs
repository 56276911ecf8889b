//! Lines on stderr, each written whole in one `write`: the bootstrap shares lambda-image's
//! stderr, and `eprintln!` writes a line in pieces, which its output could split.

use std::io::Write;

/// Writes `line` and a newline to stderr in one `write`.
pub fn write_line(line: &str) {
    let mut whole = String::with_capacity(line.len() + 1);
    whole.push_str(line);
    whole.push('\n');
    // Nothing useful can be done when stderr is closed.
    let _ = std::io::stderr().lock().write_all(whole.as_bytes());
}

/// `eprintln!`, written with [`write_line`].
macro_rules! log_line {
    ($($argument:tt)*) => {
        $crate::emulator::log::write_line(&format!($($argument)*))
    };
}
pub(crate) use log_line;
