//! End-to-end tests of quire over real gRPC on loopback: one test binary (each links tantivy,
//! the encoder and tonic, so one link instead of four).

mod canary;
mod cancel;
mod eval;
mod grpc;
mod http;
mod jwt;
mod models;
mod release;
mod replicas;
mod security;
mod tamper;
