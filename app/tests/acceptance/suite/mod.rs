//! The acceptance scenarios every strategy runs (see `strategies.rs`), through HAProxy with three
//! replicas. Where a strategy cannot do something by design, the scenario checks that it fails
//! the documented way, so no strategy can quietly claim more than it does.
mod contract;
mod devices;
mod lifecycle;
mod replicas;
mod robustness;
mod unshared;

pub use contract::*;
pub use devices::*;
pub use lifecycle::*;
pub use replicas::*;
pub use robustness::*;
pub use unshared::*;
