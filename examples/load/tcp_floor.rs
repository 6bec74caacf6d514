//! `tcp-floor`: the CPU cost of one loopback TCP write of a ready frame, one frame
//! per `write` and then several per `writev`, the floor a server's broadcast is
//! compared with.

use crate::Res;
use crate::args::Args;
use crate::probe::{clock_ticks, machine_between, machine_sample, pin_thread, thread_cpu_ns};
use crate::report::{emit, round};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use serde_json::json;
use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

pub(crate) fn tcp_floor(args: &Args) -> Res<()> {
    let n: usize = args.get("n", 1000)?;
    let count: usize = args.get("count", 200)?;
    let frame_bytes: usize = args.get("frame-bytes", 142)?;
    let batch: usize = args.get::<usize>("batch", 8)?.max(1);
    let readers: usize = args.get::<usize>("readers", 1)?.clamp(1, n.max(1));
    let writer_cpu: Option<usize> = args.opt("writer-cpu")?;
    let reader_cpu: Option<usize> = args.opt("reader-cpu")?;
    // Rounds per second; 0 writes them back to back. A paced round is what a broadcast
    // sent alone costs: the readers sleep between rounds and must be woken again.
    let rate: f64 = args.get("rate", 0.0)?;
    let timeout = args.secs("timeout", 120.0)?;
    args.finish()?;
    if !rate.is_finite() || rate < 0.0 {
        return Err("--rate must be a number of rounds per second, 0 for back to back".into());
    }
    if !(2..=65535).contains(&frame_bytes) {
        return Err("--frame-bytes must be between 2 and 65535".into());
    }

    // A server text frame of exactly `frame_bytes` bytes.
    let mut frame = Vec::with_capacity(frame_bytes);
    let payload = if frame_bytes - 2 < 126 { frame_bytes - 2 } else { frame_bytes - 4 };
    frame.push(0x81);
    if payload < 126 {
        frame.push(payload as u8);
    } else {
        frame.push(126);
        frame.extend_from_slice(&(payload as u16).to_be_bytes());
    }
    frame.resize(frame_bytes, b'x');

    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let mut writers = Vec::with_capacity(n);
    let mut reader_sides: Vec<Vec<std::net::TcpStream>> = (0..readers).map(|_| Vec::new()).collect();
    for i in 0..n {
        let client = std::net::TcpStream::connect(addr)?;
        let (server, _) = listener.accept()?;
        server.set_nodelay(true)?;
        client.set_nonblocking(true)?;
        writers.push(server);
        reader_sides[i % readers].push(client);
    }
    let total_bytes = (n * count * frame_bytes) as u64;
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + timeout;
    let reader_threads: Vec<_> = reader_sides
        .into_iter()
        .map(|socks| {
            let (received, stop) = (received.clone(), stop.clone());
            thread::spawn(move || -> io::Result<()> {
                pin_thread(reader_cpu);
                let mut poll = Poll::new()?;
                let mut socks: Vec<TcpStream> = socks.into_iter().map(TcpStream::from_std).collect();
                for (i, s) in socks.iter_mut().enumerate() {
                    poll.registry().register(s, Token(i), Interest::READABLE)?;
                }
                let mut events = Events::with_capacity(1024);
                let mut buf = vec![0u8; 256 * 1024];
                while !stop.load(Relaxed) && Instant::now() < deadline {
                    poll.poll(&mut events, Some(Duration::from_millis(20)))?;
                    for event in &events {
                        let s = &mut socks[event.token().0];
                        loop {
                            match s.read(&mut buf) {
                                Ok(0) => break,
                                Ok(got) => {
                                    received.fetch_add(got as u64, Relaxed);
                                }
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                                Err(e) => return Err(e),
                            }
                        }
                    }
                }
                Ok(())
            })
        })
        .collect();

    // Pass 1: one write per frame. Pass 2: writev with `batch` frames per call.
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = {
        let received = received.clone();
        let frame = frame.clone();
        thread::spawn(move || -> io::Result<()> {
            pin_thread(writer_cpu);
            let mut results = Vec::new();
            for pass in 0..2 {
                let target = total_bytes * (pass + 1);
                let per_call = if pass == 0 { 1 } else { batch };
                let calls = count.div_ceil(per_call);
                let slices: Vec<IoSlice<'_>> = (0..per_call).map(|_| IoSlice::new(&frame)).collect();
                let cpu0 = thread_cpu_ns();
                let t0 = Instant::now();
                let mut frames = 0u64;
                let mut syscalls = 0u64;
                for round in 0..calls {
                    if rate > 0.0 {
                        let due = t0 + Duration::from_secs_f64(round as f64 / rate);
                        thread::sleep(due.saturating_duration_since(Instant::now()));
                    }
                    // The last writev round may carry fewer frames, to write exactly `count`.
                    let k = per_call.min(count - round * per_call);
                    for w in writers.iter_mut() {
                        if per_call == 1 {
                            w.write_all(&frame)?;
                        } else {
                            let mut done = w.write_vectored(&slices[..k])?;
                            syscalls += 1;
                            // A partial writev is finished with plain writes (rare).
                            while done < k * frame.len() {
                                let at = done % frame.len();
                                done += w.write(&frame[at..])?;
                                syscalls += 1;
                            }
                            frames += k as u64;
                            continue;
                        }
                        syscalls += 1;
                        frames += 1;
                    }
                }
                let cpu = thread_cpu_ns() - cpu0;
                let wall = t0.elapsed();
                results.push((per_call, frames, syscalls, cpu, wall));
                // Let the readers catch up before the next pass.
                while received.load(Relaxed) < target && Instant::now() < deadline {
                    thread::sleep(Duration::from_millis(1));
                }
            }
            let _ = tx.send(results);
            Ok(())
        })
    };
    let ticks = clock_ticks();
    let m0 = machine_sample(ticks);
    writer.join().map_err(|_| "the writer panicked")??;
    let m1 = machine_sample(ticks);
    stop.store(true, Relaxed);
    for r in reader_threads {
        r.join().map_err(|_| "a reader panicked")??;
    }
    let results = rx.recv()?;
    let received = received.load(Relaxed);
    let mut summary = vec![format!(
        "tcp-floor: {n} loopback socket pairs, {count} frames of {frame_bytes} B to each ({} frames), {readers} reader thread(s), {}; received {received}/{} bytes",
        n * count,
        if rate > 0.0 { format!("{rate} rounds per second") } else { "rounds back to back".to_owned() },
        total_bytes * 2
    )];
    let mut line = json!({
        "mode": "tcp-floor",
        "pairs": n,
        "count": count,
        "frame_bytes": frame_bytes,
        "rate": rate,
        "received_bytes": received,
        "expected_bytes": total_bytes * 2,
    });
    for (per_call, frames, syscalls, cpu, wall) in results {
        let per_frame = cpu as f64 / frames.max(1) as f64;
        let per_call_ns = cpu as f64 / syscalls.max(1) as f64;
        let name = if per_call == 1 { "write".to_owned() } else { format!("writev x{per_call}") };
        summary.push(format!(
            "  {name}: writer CPU {:.3} s for {frames} frames in {syscalls} calls ({:.3} s wall) = {:.3} µs per frame, {:.3} µs per call",
            cpu as f64 / 1e9,
            wall.as_secs_f64(),
            per_frame / 1000.0,
            per_call_ns / 1000.0
        ));
        let key = if per_call == 1 { "write".to_owned() } else { "writev".to_owned() };
        line[key] = json!({
            "frames_per_call": per_call,
            "frames": frames,
            "calls": syscalls,
            "cpu_s": round(cpu as f64 / 1e9, 4),
            "wall_s": round(wall.as_secs_f64(), 4),
            "per_frame_us": round(per_frame / 1000.0, 4),
            "per_call_us": round(per_call_ns / 1000.0, 4),
        });
    }
    let (value, text) = machine_between(&m0, &m1, 0, ticks);
    summary.push(text);
    line["machine"] = value;
    emit(&summary, line);
    Ok(())
}
