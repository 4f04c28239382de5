//! # veil-server: compiled veil programs served over HTTP
//!
//! A server holds a [`veil_runtime::artifact::ServerArtifact`] (the lowered program), takes
//! evaluation keys from clients once and runs the program on their encrypted inputs
//! ([`serve()`]); [`client`] is the other side. Both sit on the runtime only: a server links no
//! compiler, no optimizer and no egg, and never sees a secret key. [`tls`] holds the HTTPS
//! setup of both sides.

pub mod client;
pub mod serve;
pub mod store;
pub mod tls;

pub use client::{Client, ClientError, ClientOptions};
pub use serve::{router, serve, ServeConfig, ServeError};
pub use tls::TlsFiles;
