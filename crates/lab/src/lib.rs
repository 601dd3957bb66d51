//! Real PostgreSQL clusters on free ports in temp (or given) directories.
//!
//! One harness for `pgdbre lab`, every integration test and the benchmarks.
