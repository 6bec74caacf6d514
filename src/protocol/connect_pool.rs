//! Connect workers: the threads that run user `connect` and `id` callbacks, so that a
//! slow or panicking `connect` never stalls a reactor.

use crate::scheduling::Scheduling;
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use std::thread::JoinHandle;

/// One handshake's work: runs the socket's callbacks and hands the verdict back.
pub(crate) type ConnectJob = Box<dyn FnOnce() + Send>;

pub(crate) struct ConnectPool {
    /// Gone once the pool stops.
    sender: Mutex<Option<Sender<ConnectJob>>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl ConnectPool {
    pub(crate) fn start(workers: usize, scheduling: Scheduling) -> std::io::Result<ConnectPool> {
        let (sender, receiver) = crossbeam_channel::unbounded::<ConnectJob>();
        let workers = (0..workers.max(1))
            .map(|i| {
                let receiver = receiver.clone();
                std::thread::Builder::new().name(format!("phx-connect-{i}")).spawn(move || {
                    scheduling.apply_to_current_thread();
                    work(&receiver)
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(ConnectPool { sender: Mutex::new(Some(sender)), workers: Mutex::new(workers) })
    }

    /// Runs `job` on a worker; after [`stop`](ConnectPool::stop) it is dropped.
    pub(crate) fn submit(&self, job: ConnectJob) {
        if let Some(sender) = &*self.sender.lock() {
            let _ = sender.send(job);
        }
    }

    /// Lets the workers finish their queue, then waits for them.
    pub(crate) fn stop(&self) {
        self.sender.lock().take();
        for worker in self.workers.lock().drain(..) {
            let _ = worker.join();
        }
    }
}

fn work(jobs: &Receiver<ConnectJob>) {
    for job in jobs {
        job();
    }
}
