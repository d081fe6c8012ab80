//! `bench`'s integration tests, in one test binary (each binary links Burn,
//! so one binary is one link instead of four).

mod allocator;
mod blas;
mod cli;
mod committed_profiles;
mod ops;
mod profile_vs_data;
mod sessions;
mod storage;
