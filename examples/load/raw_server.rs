//! `raw-server`: the floor for `raw-echo`, a plain tungstenite echo server with one
//! thread per connection.

use crate::Res;
use crate::args::Args;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::thread;

pub(crate) fn raw_server(args: &Args) -> Res<()> {
    let port: u16 = args.get("port", 4900)?;
    let max = args.secs("max-seconds", 900.0)?;
    args.finish()?;
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
    println!(
        "raw echo server listening on {} (pid {}, exits after {:?})",
        listener.local_addr()?,
        std::process::id(),
        max
    );
    thread::spawn(move || {
        thread::sleep(max);
        println!("raw echo server: --max-seconds reached, exiting");
        std::process::exit(0);
    });
    let served = Arc::new(AtomicU64::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let served = served.clone();
        thread::spawn(move || {
            let _ = stream.set_nodelay(true);
            let Ok(mut ws) = tungstenite::accept(stream) else { return };
            loop {
                match ws.read() {
                    Ok(msg @ (tungstenite::Message::Text(_) | tungstenite::Message::Binary(_))) => {
                        if ws.send(msg).is_err() {
                            return;
                        }
                        served.fetch_add(1, Relaxed);
                    }
                    Ok(_) => {
                        if ws.flush().is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
        });
    }
    Ok(())
}
