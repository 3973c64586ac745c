//! A loopback TCP proxy in front of the test store (or the test PostgreSQL), which a test can
//! stall mid-transfer, cut (open connections closed) or shut (connections refused), as a
//! network or a store failing would.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Default)]
struct State {
    /// Bytes from the store to clients still forwarded before every connection stalls.
    budget: AtomicU64,
    /// Bytes forwarded from the store to clients so far.
    forwarded: AtomicU64,
    shut: AtomicBool,
    /// Bumped by [`Proxy::cut`]: connections opened before it close.
    generation: AtomicU64,
}

/// The proxy; shut when dropped.
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<State>,
    acceptor: Option<JoinHandle<()>>,
}

const POLL: Duration = Duration::from_millis(20);

impl Proxy {
    /// Forward 127.0.0.1:(ephemeral) to `upstream`, unthrottled.
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        state.budget.store(u64::MAX, Ordering::SeqCst);
        let shared = state.clone();
        let acceptor = std::thread::spawn(move || {
            while !shared.shut.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => connect(client, upstream, &shared),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL),
                    Err(_) => break,
                }
            }
        });
        Self {
            addr,
            state,
            acceptor: Some(acceptor),
        }
    }

    /// The store's endpoint through the proxy.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Forward `bytes` more from the store, then stall every connection (open, silent).
    pub fn stall_after(&self, bytes: u64) {
        self.state.budget.store(bytes, Ordering::SeqCst);
    }

    /// Bytes forwarded from the store so far.
    pub fn forwarded(&self) -> u64 {
        self.state.forwarded.load(Ordering::SeqCst)
    }

    /// Forward everything again.
    pub fn resume(&self) {
        self.state.budget.store(u64::MAX, Ordering::SeqCst);
    }

    /// Close every open connection, still accepting new ones (a network cut that heals).
    pub fn cut(&self) {
        self.state.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Close every connection and refuse new ones.
    pub fn shut(&mut self) {
        self.state.shut.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shut();
    }
}

fn connect(client: TcpStream, upstream: SocketAddr, state: &Arc<State>) {
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let generation = state.generation.load(Ordering::SeqCst);
    client.set_nonblocking(false).unwrap();
    for (from, to, metered) in [
        (
            client.try_clone().unwrap(),
            server.try_clone().unwrap(),
            false,
        ),
        (server, client, true),
    ] {
        let state = state.clone();
        std::thread::spawn(move || pump(from, to, metered, generation, &state));
    }
}

/// Copy `from` to `to` until either closes or the proxy shuts; the store-to-client direction
/// (`metered`) spends the budget and stalls when it is spent. A [`Proxy::cut`] after
/// `generation` closes it too.
fn pump(mut from: TcpStream, mut to: TcpStream, metered: bool, generation: u64, state: &State) {
    from.set_read_timeout(Some(POLL)).unwrap();
    let mut buf = vec![0u8; 64 << 10];
    let open = || {
        !state.shut.load(Ordering::SeqCst) && state.generation.load(Ordering::SeqCst) == generation
    };
    while open() {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => break,
        };
        let mut sent = 0;
        while sent < n && open() {
            let allowed = if metered {
                take(&state.budget, (n - sent) as u64) as usize
            } else {
                n - sent
            };
            if allowed == 0 {
                std::thread::sleep(POLL);
                continue;
            }
            if to.write_all(&buf[sent..sent + allowed]).is_err() {
                return;
            }
            if metered {
                state.forwarded.fetch_add(allowed as u64, Ordering::SeqCst);
            }
            sent += allowed;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// Take up to `want` from `budget`; what was taken.
fn take(budget: &AtomicU64, want: u64) -> u64 {
    let mut taken = 0;
    let _ = budget.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
        taken = left.min(want);
        Some(left - taken)
    });
    taken
}
