//! Naming the current thread as the OS shows it (`top -H`, `/proc/self/task/*/comm`).
//! Channel threads run one channel after another, so they take each channel's topic as
//! they start it, and a name of their own while they wait for the next.

/// Names the current thread `name`, as much of it as Linux keeps (15 bytes), leaving
/// out NUL bytes. A no-op on other systems.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub(crate) fn name_current_thread(name: &str) {
    let mut comm = [0u8; 16];
    for (slot, byte) in comm[..15].iter_mut().zip(name.bytes().filter(|byte| *byte != 0)) {
        *slot = byte;
    }
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes from the
    // pointer; `comm` is 16 bytes, lives across the call, and its last byte is always 0.
    unsafe {
        libc::prctl(
            libc::PR_SET_NAME,
            comm.as_ptr() as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        );
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn name_current_thread(_name: &str) {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn comm() -> String {
        std::fs::read_to_string("/proc/thread-self/comm").unwrap().trim_end().to_owned()
    }

    #[test]
    fn a_long_topic_is_cut_to_fifteen_bytes_and_nul_bytes_are_left_out() {
        std::thread::spawn(|| {
            name_current_thread("room:\0lobby:with-a-long-name");
            assert_eq!(comm(), "room:lobby:with");
            name_current_thread("phx-spare");
            assert_eq!(comm(), "phx-spare");
        })
        .join()
        .unwrap();
    }
}
