//! [`ParallelVerifier`]: [`StreamVerifier`] with line preparation on OS threads.

use super::*;

/// A native verifier that hashes and parses lines on several threads and
/// keeps the stream's order for everything else: while the calling thread
/// runs the chain and tree checks of one block, worker threads prepare the
/// next. Same reports as [`StreamVerifier`], byte for byte.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug)]
pub struct ParallelVerifier {
    inner: StreamVerifier,
    buf: Vec<u8>,
    threads: usize,
    block: usize,
    submitted: u64,
    inflight: VecDeque<InFlight>,
}

#[cfg(not(target_arch = "wasm32"))]
type InFlight = (
    std::sync::Arc<Vec<u8>>,
    Vec<std::thread::JoinHandle<Vec<Prepared>>>,
);

#[cfg(not(target_arch = "wasm32"))]
impl ParallelVerifier {
    /// A verifier using `threads` worker threads (at least 1).
    pub fn new(opts: Options, threads: usize) -> Self {
        ParallelVerifier {
            inner: StreamVerifier::new(opts),
            buf: Vec::new(),
            threads: threads.max(1),
            block: 4 << 20,
            submitted: 0,
            inflight: VecDeque::new(),
        }
    }

    /// Sets the size of the blocks handed to the threads (default 4 MiB).
    pub fn block_size(mut self, bytes: usize) -> Self {
        self.block = bytes.max(1);
        self
    }

    /// Bytes consumed so far.
    pub fn bytes(&self) -> u64 {
        self.submitted + self.buf.len() as u64
    }

    /// Feeds the next bytes.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
        while self.buf.len() >= self.block {
            let Some(i) = memchr::memrchr(b'\n', &self.buf) else {
                break;
            };
            let rest = self.buf.split_off(i + 1);
            let block = std::mem::replace(&mut self.buf, rest);
            self.submit(block);
            // Keep one block in flight while this thread checks the one before.
            while self.inflight.len() > 1 {
                self.drain_one();
            }
            if self.buf.len() < self.block {
                break;
            }
        }
    }

    fn submit(&mut self, block: Vec<u8>) {
        let base = self.submitted;
        self.submitted += block.len() as u64;
        let block = std::sync::Arc::new(block);
        let n = self.threads;
        // Cut the block at line ends into n parts of about equal size.
        let mut cuts = vec![0usize];
        for k in 1..n {
            let at = (block.len() * k / n).max(*cuts.last().unwrap_or(&0));
            let c = memchr::memchr(b'\n', &block[at..]).map_or(block.len(), |j| at + j + 1);
            cuts.push(c);
        }
        cuts.push(block.len());
        let handles = cuts
            .windows(2)
            .map(|w| {
                let (a, b, blk) = (w[0], w[1], block.clone());
                std::thread::spawn(move || prepare(&blk[a..b], base + a as u64))
            })
            .collect();
        self.inflight.push_back((block, handles));
    }

    fn drain_one(&mut self) {
        if let Some((block, handles)) = self.inflight.pop_front() {
            // A worker that panicked leaves its lines to be done here.
            let prepared = handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect();
            self.inner.push_prepared(&block, prepared);
        }
    }

    /// Ends the stream and returns the report.
    pub fn finish(mut self) -> Report {
        let rest = std::mem::take(&mut self.buf);
        self.submit(rest);
        while !self.inflight.is_empty() {
            self.drain_one();
        }
        self.inner.finish()
    }
}
