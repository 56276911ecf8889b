//! Placeholder module; the emulator tests of issue 14 go here.
