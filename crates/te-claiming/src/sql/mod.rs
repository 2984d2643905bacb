//! The catalogue of te-claiming's SQL written as text: the claim statements
//! of both backends ([`statements`]) and the `EXPLAIN` of the claim that the
//! plan tests read ([`explain`]).

pub(crate) mod explain;
pub(crate) mod statements;
