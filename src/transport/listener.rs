//! The endpoint's listening socket: bound as mio binds it, with a longer accept queue.
//!
//! mio (like std) listens with a queue of 128 connections that the kernel has set up
//! and the acceptor has not yet taken. When thousands of clients connect at once (a
//! deploy or a network blip makes every client reconnect together), the kernel drops
//! the connection attempts past that and the clients retry only after a second.

use mio::net::TcpListener;
use std::io;
use std::net::SocketAddr;

/// Connections the kernel may hold for the acceptor. The kernel caps it at
/// `net.core.somaxconn` (4096 by default since Linux 5.4).
const ACCEPT_QUEUE: i32 = 1024;

/// Binds a listener on `addr` with a queue of [`ACCEPT_QUEUE`] connections.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    lengthen_queue(&listener)?;
    Ok(listener)
}

/// Linux takes a second `listen` on a listening socket as a new queue length.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn lengthen_queue(listener: &TcpListener) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor belongs to `listener`, which is alive for the whole call;
    // `listen` takes no pointers and changes only that socket's queue length.
    if unsafe { libc::listen(listener.as_raw_fd(), ACCEPT_QUEUE) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn lengthen_queue(_listener: &TcpListener) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn hundreds_of_connections_wait_for_an_acceptor_that_is_not_accepting() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        // Nobody accepts: each connection completes only while the queue has room.
        // With the default queue of 128 the 130th would wait for a retry a second later.
        let connected: Vec<_> =
            (0..300).map(|_| std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500))).collect();
        let failed = connected.iter().filter(|c| c.is_err()).count();
        assert_eq!(failed, 0, "every connection found room in the queue");
    }
}
