//! Placeholder module; the files tests of issue 14 go here.
