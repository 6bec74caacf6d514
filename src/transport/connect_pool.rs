//! Connect workers: the threads that run user `connect` and `id` callbacks, so that a
//! slow or panicking `connect` never stalls a reactor.

use super::mailbox::{Command, ConnKey, Mailbox};
use crate::connect_info::ConnectInfo;
use crate::params::Params;
use crate::socket::Assigns;
use crate::user_socket::{Refusal, UserSocket};
use crossbeam_channel::{Receiver, Sender};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The verdict on one handshake.
pub(crate) enum ConnectOutcome {
    Accepted { assigns: Assigns, id: Option<String>, took: Duration },
    Refused { refusal: Refusal, took: Duration },
}

/// One handshake waiting for `connect`.
pub(crate) struct ConnectJob {
    pub(crate) mailbox: Arc<Mailbox>,
    pub(crate) key: ConnKey,
    pub(crate) socket: Arc<UserSocket>,
    pub(crate) params: Params,
    pub(crate) info: ConnectInfo,
}

pub(crate) struct ConnectPool {
    sender: Option<Sender<ConnectJob>>,
    workers: Vec<JoinHandle<()>>,
}

impl ConnectPool {
    pub(crate) fn start(workers: usize) -> std::io::Result<ConnectPool> {
        let (sender, receiver) = crossbeam_channel::unbounded::<ConnectJob>();
        let workers = (0..workers.max(1))
            .map(|i| {
                let receiver = receiver.clone();
                std::thread::Builder::new().name(format!("phx-connect-{i}")).spawn(move || work(&receiver))
            })
            .collect::<Result<_, _>>()?;
        Ok(ConnectPool { sender: Some(sender), workers })
    }

    pub(crate) fn submit(&self, job: ConnectJob) {
        if let Some(sender) = &self.sender {
            let _ = sender.send(job);
        }
    }

    /// Lets the workers finish their queue, then waits for them.
    pub(crate) fn stop(&mut self) {
        self.sender = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

fn work(jobs: &Receiver<ConnectJob>) {
    for job in jobs {
        let began = Instant::now();
        let socket = &job.socket;
        let verdict = catch_unwind(AssertUnwindSafe(|| {
            (socket.connect)(&job.params, &job.info).map(|assigns| {
                let id = (socket.id)(&assigns);
                (assigns, id)
            })
        }));
        let took = began.elapsed();
        let outcome = match verdict {
            Ok(Ok((assigns, id))) => ConnectOutcome::Accepted { assigns, id, took },
            Ok(Err(refusal)) => ConnectOutcome::Refused { refusal, took },
            Err(_) => {
                log::error!("connect panicked; refusing the connection with 403");
                ConnectOutcome::Refused { refusal: Refusal::forbidden(), took }
            }
        };
        job.mailbox.command(Command::Connected { key: job.key, outcome });
    }
}
