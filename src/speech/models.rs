//! Offline model files (see mod.rs).
