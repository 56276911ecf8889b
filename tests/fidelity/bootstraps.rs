//! Placeholder module; the bootstraps tests of issue 14 go here.
