//! Tests of the wire module: hand-written vectors, truncation sweeps, property tests.
