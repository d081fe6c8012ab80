//! The timing harness: how one workload is timed, and how many workloads
//! share a machine whose speed drifts.
//!
//! Every timed run is `sync → start → execute → sync → stop` (burn-bench's
//! discipline: without the syncs an asynchronous device would be timed at
//! dispatch, not execution). The first call is timed alone as the cold
//! latency; warm-up follows; then samples are taken in interleaved rounds
//! (see [`rounds`]) until the median is known to the target precision. The
//! statistics are `fit::stats`, the one statistics module of the workspace.

pub mod load;
pub mod rounds;
pub mod timing;
