//! Draining on SIGTERM and SIGINT, opted into with `Endpoint::shutdown_on_signals`.
//!
//! A signal handler may do almost nothing safely, so it only writes a byte to a pipe.
//! A thread of its own reads the pipe and shuts the registered endpoints down, in
//! order, as `Endpoint::shutdown` does; a second signal during that drain exits the
//! process at once, for an operator who does not want to wait.

use super::running::Running;
use parking_lot::Mutex;
use std::io;
use std::sync::{Arc, OnceLock, Weak};

/// The endpoints a signal drains; dropped ones are skipped.
static ENDPOINTS: Mutex<Vec<Weak<Running>>> = Mutex::new(Vec::new());
/// Whether the handlers are installed (once per process), or why they could not be.
static INSTALLED: OnceLock<Result<(), io::ErrorKind>> = OnceLock::new();

/// Registers `running` to be shut down on SIGTERM or SIGINT, installing the handlers
/// and the thread that waits for them the first time.
pub(super) fn drain_on_signals(running: &Arc<Running>) -> io::Result<()> {
    INSTALLED
        .get_or_init(|| {
            os::install(drain_all).map_err(|err| {
                log::error!("cannot install the SIGTERM/SIGINT handlers: {err}");
                err.kind()
            })
        })
        .map_err(|kind| io::Error::new(kind, "the SIGTERM/SIGINT handlers could not be installed"))?;
    let mut endpoints = ENDPOINTS.lock();
    endpoints.retain(|endpoint| endpoint.strong_count() > 0);
    endpoints.push(Arc::downgrade(running));
    Ok(())
}

/// What the signal thread runs on the first signal.
fn drain_all() {
    let endpoints: Vec<_> = ENDPOINTS.lock().drain(..).filter_map(|endpoint| endpoint.upgrade()).collect();
    log::info!("signal received: draining {} endpoint(s); a second signal exits at once", endpoints.len());
    for running in endpoints {
        running.shutdown();
    }
}

#[cfg(target_os = "linux")]
mod os {
    use std::io;
    use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

    /// The pipe's write end, for the handler; -1 until installed.
    static WAKE: AtomicI32 = AtomicI32::new(-1);

    /// Installs the handlers for SIGTERM and SIGINT and starts the thread that runs
    /// `drain` on the first signal and exits the process on the next.
    pub(super) fn install(drain: fn()) -> io::Result<()> {
        let (read, write) = pipe()?;
        WAKE.store(write, Ordering::SeqCst);
        std::thread::Builder::new().name("phx-signals".into()).spawn(move || watch(read, drain))?;
        for signal in [libc::SIGTERM, libc::SIGINT] {
            handle(signal)?;
        }
        Ok(())
    }

    /// Waits for signals: the first drains (on a thread of its own, so that this one
    /// still hears the next), the next exits.
    fn watch(read: i32, drain: fn()) {
        static DRAINING: AtomicBool = AtomicBool::new(false);
        loop {
            match read_byte(read) {
                Ok(()) if !DRAINING.swap(true, Ordering::SeqCst) => {
                    let spawned = std::thread::Builder::new().name("phx-drain".into()).spawn(drain);
                    if let Err(err) = spawned {
                        log::error!("cannot start the drain: {err}; draining on the signal thread");
                        drain();
                    }
                }
                Ok(()) => {
                    log::warn!("second signal during the drain: exiting now");
                    std::process::exit(1);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    log::error!("the signal pipe failed: {err}; signals no longer drain");
                    return;
                }
            }
        }
    }

    /// A pipe whose write end never blocks (a handler must not wait), both ends closed
    /// on exec.
    #[allow(unsafe_code)]
    fn pipe() -> io::Result<(i32, i32)> {
        let mut fds = [-1; 2];
        // SAFETY: `fds` is a valid array of two `c_int`s for `pipe2` to fill.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fds[1]` is the write end just opened; F_SETFL takes an int argument.
        if unsafe { libc::fcntl(fds[1], libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((fds[0], fds[1]))
    }

    /// Blocks until a byte can be read from `fd`.
    #[allow(unsafe_code)]
    fn read_byte(fd: i32) -> io::Result<()> {
        let mut byte = 0u8;
        // SAFETY: `byte` is one writable byte, and `fd` the pipe's read end, which is
        // never closed.
        match unsafe { libc::read(fd, (&raw mut byte).cast(), 1) } {
            1 => Ok(()),
            0 => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the signal pipe was closed")),
            _ => Err(io::Error::last_os_error()),
        }
    }

    /// Sets [`on_signal`] as the handler of `signal`.
    #[allow(unsafe_code)]
    fn handle(signal: libc::c_int) -> io::Result<()> {
        // SAFETY: an all-zero `sigaction` is a valid value (empty mask, no flags), and
        // it is filled in before use.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        // SAFETY: `action.sa_mask` is a valid signal set to empty; `action` is fully
        // initialised, the old action is not asked for (null), and `on_signal` does only
        // async-signal-safe things.
        let installed = unsafe {
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if installed == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
    }

    /// The handler: writes one byte to the pipe, and nothing else. An atomic load and
    /// `write` are async-signal-safe; `errno` is restored for the interrupted code.
    #[allow(unsafe_code)]
    extern "C" fn on_signal(_signal: libc::c_int) {
        let fd = WAKE.load(Ordering::SeqCst);
        if fd < 0 {
            return;
        }
        // SAFETY: `__errno_location` returns this thread's errno, valid for reads and
        // writes; `write` gets one readable byte and the pipe's write end, which never
        // blocks. A full pipe (a signal is already waiting) drops the byte, as it should.
        unsafe {
            let errno = *libc::__errno_location();
            libc::write(fd, [1u8].as_ptr().cast(), 1);
            *libc::__errno_location() = errno;
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod os {
    use std::io;

    pub(super) fn install(_drain: fn()) -> io::Result<()> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "draining on signals is implemented for Linux only"))
    }
}
