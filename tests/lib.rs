//! End-to-end tests of quire over gRPC (see grpc.rs).
