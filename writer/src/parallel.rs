//! [`ParallelVerifier`]: core's [`StreamVerifier`] with the per-line work
//! (leaf hash, parse) done on OS threads. Threads live here, in the writer:
//! core stays pure (no threads, no I/O) and only offers the pieces,
//! [`prepare_encoded`] and [`StreamVerifier::push_encoded`].

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use stele_core::verify::{Options, Report, StreamVerifier, prepare_encoded_into};

// One part of a block to prepare: (block, start, end, stream offset of the
// block, a buffer for the prepared lines, where to send it filled).
type Job = (
    Arc<Vec<u8>>,
    usize,
    usize,
    u64,
    Vec<u8>,
    SyncSender<Vec<u8>>,
);

// A block in flight: the block, and each part's range and reply, in order.
type InFlight = (Arc<Vec<u8>>, Vec<(usize, usize, Receiver<Vec<u8>>)>);

/// Bytes of a block prepared as one job, about: a block is cut into parts
/// this size, which the workers (and the calling thread while it waits)
/// take in order from one queue, so that no core idles while another still
/// has a long part to do.
const PART: usize = 512 << 10;

/// Blocks prepared ahead of the one the calling thread checks.
const AHEAD: usize = 2;

// The queue of parts to prepare, shared by the workers and the calling thread.
#[derive(Debug, Default)]
struct Queue {
    jobs: Mutex<(VecDeque<Job>, bool)>,
    more: Condvar,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, (VecDeque<Job>, bool)> {
        // Nothing panics while holding the lock; a poisoned queue is still whole.
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    // The next job; `None` once the queue is closed and empty.
    fn next(&self) -> Option<Job> {
        let mut q = self.lock();
        loop {
            if let Some(j) = q.0.pop_front() {
                return Some(j);
            }
            if q.1 {
                return None;
            }
            q = self.more.wait(q).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn try_next(&self) -> Option<Job> {
        self.lock().0.pop_front()
    }
}

// Prepares one part and sends the result.
fn run(job: Job) {
    let (block, a, b, base, mut out, reply) = job;
    out.clear();
    prepare_encoded_into(&block[a..b], base + a as u64, &mut out);
    // The block is let go before replying, so the verifier can take its
    // buffer back once every reply is in.
    drop(block);
    let _ = reply.send(out);
}

/// A native verifier that hashes and parses lines on several threads and
/// keeps the stream's order for everything else: while the calling thread
/// runs the chain and tree checks of one block, worker threads prepare the
/// next ones. Same reports as [`StreamVerifier`], byte for byte
/// (writer/tests/parallel.rs checks that on every test vector).
///
/// Each block is cut into parts of about [`PART`] bytes, queued in stream
/// order; the workers take them from one queue, and the calling thread takes
/// them too while the part it needs next is not ready, so a core only idles
/// when nothing is left to prepare (one half-block job per worker left one
/// core idle whenever its half was done first, and the calling thread idle
/// whenever it waited).
///
/// Memory is flat: at most [`AHEAD`] blocks are in flight besides the one
/// being filled (AHEAD + 1 for the moment between a block's submission and
/// the check of the oldest), and their buffers, like the buffers of the prepared lines,
/// are reused (fresh buffers per block made the kernel fault in and clear
/// new pages for every block). The worker threads are started once and live
/// as long as the verifier.
#[derive(Debug)]
pub struct ParallelVerifier {
    inner: StreamVerifier,
    buf: Vec<u8>,
    threads: usize,
    block: usize,
    // Bytes of a part, about ([`PART`] unless a test sets it).
    part: usize,
    submitted: u64,
    inflight: VecDeque<InFlight>,
    // Emptied block buffers, for reuse.
    pool: Vec<Vec<u8>>,
    // Emptied buffers of prepared lines, for reuse.
    outs: Vec<Vec<u8>>,
    queue: Arc<Queue>,
    workers: Vec<JoinHandle<()>>,
}

impl ParallelVerifier {
    /// A verifier using `threads` worker threads (at least 1).
    pub fn new(opts: Options, threads: usize) -> Self {
        Self {
            inner: StreamVerifier::new(opts),
            buf: Vec::new(),
            threads: threads.max(1),
            block: 4 << 20,
            part: PART,
            submitted: 0,
            inflight: VecDeque::new(),
            pool: Vec::new(),
            outs: Vec::new(),
            queue: Arc::new(Queue::default()),
            workers: Vec::new(),
        }
    }

    /// Sets the size of the blocks handed to the threads (default 4 MiB).
    pub fn block_size(mut self, bytes: usize) -> Self {
        self.block = bytes.max(1);
        self
    }

    /// Sets the size of the parts a block is cut into (default 512 KiB):
    /// small parts let tests cut small inputs into several parts a block.
    pub fn part_size(mut self, bytes: usize) -> Self {
        self.part = bytes.max(1);
        self
    }

    /// Bytes consumed so far.
    pub fn bytes(&self) -> u64 {
        self.submitted + self.buf.len() as u64
    }

    fn new_buffer(&mut self) -> Vec<u8> {
        self.pool
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.block + (1 << 20)))
    }

    /// Feeds the next bytes. Memory stays O(block size) whatever the input:
    /// a whole block without a line end goes to the stream's framing, which
    /// counts an overlong line without keeping it.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.buf.capacity() == 0 {
            self.buf = self.new_buffer();
        }
        self.buf.extend_from_slice(chunk);
        self.split_blocks();
    }

    /// The buffer being filled, for a caller that reads its input straight
    /// into it ([`ParallelVerifier::read_from`]) instead of through a buffer
    /// of its own and [`ParallelVerifier::push`]: bytes appended to it are
    /// pushed by [`ParallelVerifier::give_back`]. Nothing else may be pushed
    /// in between.
    pub fn take_buffer(&mut self) -> Vec<u8> {
        if self.buf.capacity() == 0 {
            self.buf = self.new_buffer();
        }
        std::mem::take(&mut self.buf)
    }

    /// Pushes what was appended to the buffer from
    /// [`ParallelVerifier::take_buffer`].
    pub fn give_back(&mut self, buf: Vec<u8>) {
        self.buf = buf;
        self.split_blocks();
    }

    /// Reads up to `max` bytes of `r` into the verifier's own buffer and
    /// pushes them (0 at the end of `r`): the bytes are copied once, by the
    /// read, not again into the buffer as `push` does (on `stele verify` of
    /// a 333 MB log that second copy was 9% of the CPU samples, all of it
    /// on the thread that keeps the stream's order: perf).
    pub fn read_from(&mut self, r: &mut impl std::io::Read, max: usize) -> std::io::Result<usize> {
        let mut buf = self.take_buffer();
        let n = read_into(r, &mut buf, max);
        self.give_back(buf);
        n
    }

    // Cuts whole blocks off the buffer and hands them to the workers.
    fn split_blocks(&mut self) {
        while self.buf.len() >= self.block {
            let Some(i) = memchr::memrchr(b'\n', &self.buf) else {
                // No line end in a whole block: a line longer than any entry.
                // In order after the blocks in flight, and nothing to prepare.
                while !self.inflight.is_empty() {
                    self.drain_one();
                }
                self.submitted += self.buf.len() as u64;
                self.inner.push(&self.buf);
                self.buf.clear();
                break;
            };
            // The partial last line moves to the next buffer; the block
            // keeps its buffer (no copy of the block itself).
            let mut next = self.new_buffer();
            next.extend_from_slice(&self.buf[i + 1..]);
            self.buf.truncate(i + 1);
            let block = std::mem::replace(&mut self.buf, next);
            self.submit(block);
            // Keep blocks in flight while this thread checks the oldest.
            while self.inflight.len() > AHEAD {
                self.drain_one();
            }
            if self.buf.len() < self.block {
                break;
            }
        }
    }

    fn start_workers(&mut self) {
        while self.workers.len() < self.threads {
            let queue = Arc::clone(&self.queue);
            self.workers.push(std::thread::spawn(move || {
                while let Some(job) = queue.next() {
                    run(job);
                }
            }));
        }
    }

    fn submit(&mut self, block: Vec<u8>) {
        self.start_workers();
        let base = self.submitted;
        self.submitted += block.len() as u64;
        let block = Arc::new(block);
        // Cut the block at line ends into parts of about `part` bytes.
        let mut parts = Vec::new();
        let mut jobs = Vec::new();
        let mut a = 0;
        while a < block.len() {
            let at = a + self.part;
            let b = if at >= block.len() {
                block.len()
            } else {
                memchr::memchr(b'\n', &block[at..]).map_or(block.len(), |j| at + j + 1)
            };
            let (reply, rx) = sync_channel(1);
            let out = self.outs.pop().unwrap_or_default();
            jobs.push((Arc::clone(&block), a, b, base, out, reply));
            parts.push((a, b, rx));
            a = b;
        }
        let mut q = self.queue.lock();
        q.0.extend(jobs);
        drop(q);
        self.queue.more.notify_all();
        self.inflight.push_back((block, parts));
    }

    // The prepared lines of a part: its reply, or while that is not ready,
    // parts taken from the queue and prepared here. A reply that never
    // comes (its worker panicked and dropped the job) is empty: the stream
    // verifier then does those lines itself.
    fn reply(&self, rx: &Receiver<Vec<u8>>) -> Vec<u8> {
        loop {
            match rx.try_recv() {
                Ok(out) => return out,
                Err(TryRecvError::Disconnected) => return Vec::new(),
                Err(TryRecvError::Empty) => match self.queue.try_next() {
                    Some(job) => run(job),
                    None => return rx.recv().unwrap_or_default(),
                },
            }
        }
    }

    fn drain_one(&mut self) {
        if let Some((block, parts)) = self.inflight.pop_front() {
            // In stream order, part by part (the stream verifier takes any
            // chunking; parts end at line ends).
            for (a, b, rx) in parts {
                let mut out = self.reply(&rx);
                self.inner.push_encoded_buf(&block[a..b], &mut out);
                self.outs.push(out);
            }
            if let Ok(mut buf) = Arc::try_unwrap(block) {
                buf.clear();
                self.pool.push(buf);
            }
        }
    }

    /// Ends the stream and returns the report.
    pub fn finish(mut self) -> Report {
        self.finish_and_restart(Options::new(vec![]))
    }

    /// Ends the stream, returns its report, and starts a new stream verified
    /// with `next` that keeps the worker threads and the block buffers (a
    /// caller verifying many streams, such as a mirror's chunks, then
    /// neither starts threads nor faults in fresh pages for each).
    pub fn finish_and_restart(&mut self, next: Options) -> Report {
        let rest = std::mem::take(&mut self.buf);
        if rest.is_empty() {
            // Nothing left to prepare; the buffer is kept for the next stream.
            self.buf = rest;
        } else {
            // Its buffer returns to the pool once its lines are checked.
            self.submit(rest);
        }
        while !self.inflight.is_empty() {
            self.drain_one();
        }
        self.submitted = 0;
        std::mem::replace(&mut self.inner, StreamVerifier::new(next)).finish()
    }
}

/// Appends up to `max` bytes of `r` to `buf` (its spare capacity is read
/// into, not zeroed first); the number read, 0 at the end of `r`.
pub fn read_into<R: std::io::Read>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<usize> {
    buf.reserve(max);
    std::io::Read::read_to_end(&mut std::io::Read::take(r, max as u64), buf)
}

impl Drop for ParallelVerifier {
    fn drop(&mut self) {
        self.queue.lock().1 = true;
        self.queue.more.notify_all();
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ParallelVerifier;
    use stele_core::verify::{Options, verify_bytes};

    /// Lines longer than a block (and than any entry) go to the stream's
    /// framing without being buffered; the report is the stream verifier's
    /// for every block size and chunking. (Moved here with the verifier
    /// from core/src/verify/parallel.rs.)
    #[test]
    fn lines_longer_than_a_block_give_the_stream_report() {
        let mut data = b"stele-export v1 log\n".to_vec();
        data.extend(std::iter::repeat_n(b'{', 70_000));
        data.extend_from_slice(b"\n{}\n");
        data.extend(std::iter::repeat_n(b'x', 3000));
        data.extend_from_slice(b"\n{\"a\":1}\n");
        data.extend(std::iter::repeat_n(b'y', 80_000));
        let want = verify_bytes(Options::new(vec![]), &data);
        assert!(want.failures.iter().any(|f| f.code == "line_too_long"));
        for block in [1, 64, 700, 4096, 1 << 20] {
            for chunk in [7, 333, 10_000, 1 << 20] {
                let mut p = ParallelVerifier::new(Options::new(vec![]), 2).block_size(block);
                for c in data.chunks(chunk) {
                    p.push(c);
                    assert!(
                        p.buf.len() < block.max(2 * chunk) + chunk,
                        "buffered {}",
                        p.buf.len()
                    );
                }
                assert_eq!(p.finish(), want, "block {block}, chunk {chunk}");
            }
        }
    }
}
