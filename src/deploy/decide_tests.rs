//! Unit tests of the decisions.
