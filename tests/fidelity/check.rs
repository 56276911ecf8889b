//! Placeholder module; the check tests of issue 14 go here.
