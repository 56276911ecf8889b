//! Unit tests of the flow.
