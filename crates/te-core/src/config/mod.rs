//! The config floor: which database a URL names ([`Target`], [`Backend`]),
//! how to connect and how the pool behaves ([`DalConfig`]), the DAL's own URL
//! parameters, and keeping passwords out of messages. It builds on the
//! ground floor only.

pub(crate) mod dal_config;
pub(crate) mod redact;
pub(crate) mod target;
pub(crate) mod url_params;

#[cfg(test)]
mod tests;

pub use dal_config::{DalConfig, Synchronous};
pub use target::{Backend, Target};
