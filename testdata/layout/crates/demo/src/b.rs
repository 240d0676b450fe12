//! The other half.
use crate::a::A;
pub struct B(Option<Box<A>>);
