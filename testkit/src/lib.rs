//! What execstore's test suite and benchmarks need and the server must not
//! ship: a dev-dependency only.

pub mod throwaway_pg;
