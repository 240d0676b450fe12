//! Half of a cycle.
use crate::b::B;
pub struct A(B);
