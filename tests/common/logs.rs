//! Log output for the test binaries: `env_logger`, started once.

/// Starts `env_logger` once per test binary.
pub fn init_logs() {
    let _ = env_logger::builder().is_test(true).try_init();
}
