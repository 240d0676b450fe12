//! Fixture for scripts/check-layout: `a` and `b` import each other.
mod a;
mod b;
