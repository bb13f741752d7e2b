//! effcal-harness
