//! `stele`: the command-line tool for Stele logs.

#![forbid(unsafe_code)]

mod bench;
mod bench_checkpoints;
mod bench_http;
mod bench_sealed;
mod bench_witness;
mod cluster_bench;
mod cluster_cli;
mod cluster_seal_cli;
mod demo;
mod mirror_cli;
mod witness_cli;

use clap::{Args, Parser, Subcommand};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use stele_core::note::VerifierKey;
use stele_core::verify::{FailureCode, Options, Report, Verdict};
use stele_writer::anchor::Anchored;
use stele_writer::{Error, Log, LogOptions, View, key, serve, verify_dir};

const ACCESS_HELP: &str = "Access auditing: cat, prove, export and verify against a log directory first \
append a `stele.access` entry to that log (OS user, command, what is read: parsed parameters only, the shape of docs/FORMAT.md 2.6). If the log is \
locked by a running writer or on read-only storage, pass --access-log OTHER_DIR to record the access \
in another log instead; the target log is then only read.";

#[derive(Parser, Debug)]
#[command(
    name = "stele",
    version,
    about = "Tamper-evident audit logs: append, sign checkpoints, prove, export, verify",
    after_help = "Exit status: 0 success, 1 verification failed or tampering found, 2 usage or I/O error.\n\n\
PostgreSQL URLs (--db, stele migrate) take libpq's TLS parameters: \
?sslmode=disable|prefer (the default: TLS if offered, unverified)|require (TLS, unverified)|verify-ca|verify-full \
and sslrootcert=FILE (PEM roots; else $PGSSLROOTCERT, else ~/.postgresql/root.crt, else the system's roots; \
sslrootcert=system: the system's). require with sslrootcert acts as verify-ca. The password is never printed."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum AuditorCmd {
    /// Add an auditor: wraps every existing and future data key for it.
    #[command(
        override_usage = "stele auditor add DIR RECIPIENT\n       stele auditor add --db URL [--objects URL] --seal-key FILE RECIPIENT"
    )]
    Add {
        /// The log directory (none with --db).
        dir: PathBuf,
        /// The auditor's age X25519 recipient (age1…, from `age-keygen -y`).
        recipient: Option<String>,
        #[command(flatten)]
        db: DbArgs,
        /// With --db: the log's sealing key file (stele init --db wrote it beside the signing key, FILE.seal).
        #[arg(long, value_name = "FILE", requires = "db")]
        seal_key: Option<PathBuf>,
        /// Who asked (recorded in the stele.auditor event); default: $USER with the uid, e.g. "alice (uid 1000)".
        #[arg(long)]
        by: Option<String>,
    },
    /// Remove an auditor: no later data key is wrapped for it, no export is revealed to it, its wraps are destroyed.
    #[command(
        override_usage = "stele auditor remove DIR RECIPIENT\n       stele auditor remove --db URL [--objects URL] RECIPIENT",
        long_about = "Remove an auditor: it leaves the log's list (no later data key is wrapped for it, \
no export can be revealed to it) and every wrap made for it is destroyed (overwritten, fsync'ed and \
unlinked; with --db deleted in PostgreSQL). What it was given before (exports revealed to it, wraps \
it kept) stays openable by it: forgetting a subject is what ends that."
    )]
    Remove {
        /// The log directory (none with --db).
        dir: PathBuf,
        /// The auditor's age X25519 recipient (age1…).
        recipient: Option<String>,
        #[command(flatten)]
        db: DbArgs,
        /// Who asked (recorded in the stele.auditor event); default: $USER with the uid, e.g. "alice (uid 1000)".
        #[arg(long)]
        by: Option<String>,
    },
    /// List the auditors.
    List {
        /// The log directory; or --db.
        #[arg(required_unless_present = "db", conflicts_with = "db")]
        dir: Option<PathBuf>,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// A log in PostgreSQL + object storage instead of a directory.
#[derive(Args, Debug)]
struct DbArgs {
    /// A log in PostgreSQL + object storage (postgres://…[?sslmode=verify-full&sslrootcert=FILE]) instead of DIR.
    #[arg(long, value_name = "URL")]
    db: Option<String>,
    /// With --db: its object storage, if not the one given at init.
    #[arg(long, value_name = "URL", requires = "db")]
    objects: Option<String>,
}

/// A log in PostgreSQL + object storage that the command signs for, instead
/// of a directory (`dir`).
#[derive(Args, Debug)]
struct SigningDbArgs {
    /// A log in PostgreSQL + object storage (postgres://…) instead of DIR; what the command
    /// keeps (a policy, a token) goes into the database.
    #[arg(
        long,
        value_name = "URL",
        conflicts_with = "dir",
        requires = "signing_key"
    )]
    db: Option<String>,
    /// With --db: its object storage, if not the one given at init.
    #[arg(long, value_name = "URL", requires = "db")]
    objects: Option<String>,
    /// With --db: the log's private key file (mode 0600).
    #[arg(long, value_name = "FILE", requires = "db")]
    signing_key: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create a log: key, genesis entry, first checkpoint. Prints the verifier key.
    Init {
        /// The log directory (created if missing); or --db and --objects.
        #[arg(required_unless_present = "db")]
        dir: Option<PathBuf>,
        /// A log in PostgreSQL (postgres://…; the database must exist) with --objects.
        #[arg(long, value_name = "URL", conflicts_with_all = ["dir", "key_file", "allow_non_empty"], requires_all = ["objects", "signing_key"])]
        db: Option<String>,
        /// With --db: write the log's new sealing key to FILE (mode 0600; never into the stores;
        /// every front-end needs it); default: beside the signing key, FILE.seal.
        #[arg(long, value_name = "FILE", requires = "db")]
        seal_key: Option<PathBuf>,
        /// Object storage for its tiles, bundles and checkpoint: s3://BUCKET[/PREFIX]
        /// (endpoint and credentials from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION).
        #[arg(long, value_name = "URL", requires = "db")]
        objects: Option<String>,
        /// With --db: write the new private key to FILE (mode 0600; never into the stores).
        #[arg(long, value_name = "FILE", requires = "db")]
        signing_key: Option<PathBuf>,
        /// The log's origin (also the key name), e.g. example.com/audit; at most 1024 bytes.
        #[arg(long)]
        origin: String,
        /// Use (or create) the private key at PATH instead of DIR/key. Mode must be 0600.
        #[arg(long, value_name = "PATH")]
        key_file: Option<PathBuf>,
        /// Allow a directory that already holds other files (never a log's own files).
        #[arg(long)]
        allow_non_empty: bool,
        /// Seal the value at this JSON pointer in every event (e.g. /actor/email). Repeatable.
        #[arg(long = "seal", value_name = "POINTER")]
        seal: Vec<String>,
        /// The data subject's pointer: one data key per distinct value there.
        #[arg(long, value_name = "POINTER", default_value = "/actor")]
        subject: String,
    },
    /// Auditors: age X25519 recipients (age1…) to whom sealed fields can be revealed.
    #[command(subcommand)]
    Auditor(AuditorCmd),
    /// Print an export's entries as JSON lines with sealed values opened, once it verifies.
    Reveal {
        /// An export file.
        path: PathBuf,
        /// The verifier key (name+hex8+base64) or a file holding it. Repeat for several.
        #[arg(long = "key", value_name = "VKEY", required = true)]
        keys: Vec<String>,
        /// An age identity file (AGE-SECRET-KEY-1…, from age-keygen), mode 0600.
        #[arg(long, value_name = "FILE")]
        identity: PathBuf,
    },
    /// Forget a data subject: destroy its data key and wraps, log stele.forget.
    #[command(
        long_about = "Forget a data subject: a stele.forget event naming the key ID (never the \
subject) is appended, then its data key and every wrap of it are overwritten, fsync'ed and \
unlinked, so its sealed values can no longer be opened from this log or any later export, which \
shows them as forgotten. Exports made before still verify; one revealed to an auditor still opens \
them for that auditor (a copy is beyond reach), one not revealed shows them as sealed. VALUE is the subject's value as JSON, or a plain string \
(alice is read as \"alice\"). Copies made before (backups, exports revealed earlier, SSD blocks) \
are beyond reach: see writer/README.md. With --db, the key and its wraps are deleted in PostgreSQL in \
one transaction (what WAL, backups and dead tuples may keep: writer/README.md)."
    )]
    Forget {
        /// The log directory; or --db.
        #[arg(required_unless_present = "db", conflicts_with = "db")]
        dir: Option<PathBuf>,
        #[command(flatten)]
        db: DbArgs,
        /// With --db: the log's sealing key file (stele init --db wrote it beside the signing key, FILE.seal).
        #[arg(long, value_name = "FILE", requires = "db")]
        seal_key: Option<PathBuf>,
        /// The subject's value (JSON, or a plain string).
        #[arg(long, value_name = "VALUE", required_unless_present = "subjectless")]
        subject: Option<String>,
        /// Instead of --subject: forget the data key shared by the events that have no value
        /// at the subject pointer (their sealed values, e.g. ad-hoc markers, open no more).
        #[arg(long, conflicts_with = "subject")]
        subjectless: bool,
        /// Who asked (recorded in the stele.forget event); default: $USER with the uid, e.g. "alice (uid 1000)".
        #[arg(long)]
        by: Option<String>,
    },
    /// Delete one opening (a sealed value in one entry); log stele.redact.
    Redact {
        /// The log directory; or --db.
        #[arg(required_unless_present = "db", conflicts_with = "db")]
        dir: Option<PathBuf>,
        #[command(flatten)]
        db: DbArgs,
        /// The entry index.
        #[arg(long)]
        entry: u64,
        /// The sealed field's JSON pointer in the event (e.g. /actor/email).
        #[arg(long, value_name = "POINTER")]
        pointer: String,
        /// Who asked (recorded in the stele.redact event); default: $USER with the uid, e.g. "alice (uid 1000)".
        #[arg(long)]
        by: Option<String>,
    },
    /// Append events; prints {"seq":N,"leaf_hash":"<base64>"} per entry once it is durable.
    #[command(
        long_about = "Append events. Without --event, reads one JSON object per line from stdin \
(blank lines are skipped). A receipt line {\"seq\":N,\"leaf_hash\":\"<base64>\"} is printed for each \
entry only after it is on stable storage. A bad line stops the command with an error naming the line; \
nothing from that line is written (lines before it are). Event types starting with \"stele.\" are reserved."
    )]
    Append {
        /// The log directory.
        dir: PathBuf,
        /// An event (a JSON object); repeat for several. They are appended as one batch.
        #[arg(long = "event", value_name = "JSON")]
        events: Vec<String>,
        /// Sign a checkpoint when this many entries are unsigned.
        #[arg(long, default_value_t = 1024)]
        checkpoint_every: u64,
    },
    /// Have a timestamp authority (RFC 3161) sign the latest checkpoint; keep its token.
    #[command(
        long_about = "Anchor the log's latest checkpoint (signing one first if the tree grew): send an \
RFC 3161 timestamp request for the SHA-256 of the checkpoint's body to the TSA at URL, and append \
the token to DIR/timestamps (fdatasync'ed), from where every export carries it after its checkpoint \
(docs/FORMAT.md section 16). With --ca, the token is checked in full against that CA first and is not \
kept if it fails. A checkpoint that already has a token is not anchored again. Takes the writer lock."
    )]
    Anchor {
        /// The log directory; or --db.
        #[arg(required_unless_present = "db")]
        dir: Option<PathBuf>,
        #[command(flatten)]
        db: SigningDbArgs,
        /// The timestamp authority's URL (RFC 3161 over HTTP).
        #[arg(long, value_name = "URL")]
        tsa: String,
        /// The TSA's CA certificate (PEM or DER): check the token before keeping it.
        #[arg(long, value_name = "FILE")]
        ca: Option<PathBuf>,
        /// How long to wait for the TSA.
        #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Sign a checkpoint if the tree grew; print the latest checkpoint note.
    #[command(
        after_help = "With --policy FILE (C2SP tlog-policy), the checkpoint is sent to the \
policy's witnesses and stored (published) only with their cosignatures once the quorum is met; \
otherwise nothing is stored, the previous checkpoint stays the latest, the entries stay durable, \
and the command exits 1 naming the witnesses that failed (docs/FORMAT.md 14.5). \
The log remembers the policy (in its stele.json): every later checkpoint, by any command or \
`stele serve`, is cosigned by its witnesses, until --forget-policy."
    )]
    Checkpoint {
        /// The log directory; or --db.
        #[arg(required_unless_present = "db")]
        dir: Option<PathBuf>,
        #[command(flatten)]
        db: SigningDbArgs,
        /// Have the checkpoint cosigned by this policy's witnesses before publishing it
        /// (remembered by the log: later checkpoints are witnessed too).
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// Stop witnessing: remove the remembered policy, then sign without witnesses.
        #[arg(long, conflicts_with = "policy")]
        forget_policy: bool,
    },
    /// Check every entry against the stored tree and repair derived files.
    #[command(
        long_about = "Check a log in full, as opening it did before the check mark: every entry \
line is parsed and its seq, prev and ts checked, the tree and index files are compared with the \
entries from entry 0 and rewritten where they differ, and every stored checkpoint's root is \
checked against the tree. A torn tail after the last checkpoint is cut and recorded, as on any \
open. Then the check mark (DIR/checked) is moved to the latest checkpoint, so later opens re-check \
only what is appended after it. Takes the writer lock. Exit status 1 if the log is damaged (it is \
then left unchanged)."
    )]
    Fsck {
        /// The log directory.
        dir: PathBuf,
    },
    /// Print the log's verifier key (vkey), or rotate it (`stele key rotate DIR`).
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Key {
        /// The log directory.
        #[arg(required = true)]
        dir: Option<PathBuf>,
        #[command(subcommand)]
        cmd: Option<KeyCmd>,
    },
    /// Print entry lines byte for byte as hashed.
    #[command(after_help = ACCESS_HELP)]
    Cat {
        /// The log directory.
        dir: PathBuf,
        /// First entry (inclusive).
        #[arg(long)]
        from: Option<u64>,
        /// Last entry (exclusive).
        #[arg(long)]
        to: Option<u64>,
        #[command(flatten)]
        access: AccessArgs,
    },
    /// Print inclusion or consistency proofs.
    #[command(subcommand)]
    Prove(Prove),
    /// Write an export file: the whole log, a range, or selected entries with proofs.
    #[command(after_help = ACCESS_HELP)]
    Export {
        /// The log directory; or --db.
        #[arg(required_unless_present = "db")]
        dir: Option<PathBuf>,
        /// A log in PostgreSQL + object storage.
        #[arg(long, value_name = "URL", conflicts_with = "dir")]
        db: Option<String>,
        /// With --db: its object storage, if not the one given at init.
        #[arg(long, value_name = "URL", requires = "db")]
        objects: Option<String>,
        /// With --db: the log's private key, to record the read (stele.access) and sign a
        /// checkpoint covering everything; without it the export stops at the latest checkpoint.
        #[arg(long, value_name = "FILE", requires = "db")]
        signing_key: Option<PathBuf>,
        /// The output file (outside the log directory), replaced whole once complete;
        /// - (or /dev/stdout) for standard output. A device or FIFO is written into.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
        /// Range export: first entry (inclusive).
        #[arg(long, requires = "to", conflicts_with = "entries")]
        from: Option<u64>,
        /// Range export: last entry (exclusive).
        #[arg(long, requires = "from")]
        to: Option<u64>,
        /// Selected entries, comma separated (e.g. 3,17,42).
        #[arg(long, value_delimiter = ',', num_args = 1..)]
        entries: Option<Vec<u64>>,
        /// Include the openings of sealed fields for this auditor (age1…). Repeatable.
        /// Without it the export carries commitments only.
        #[arg(long = "reveal-to", value_name = "RECIPIENT")]
        reveal_to: Vec<String>,
        #[command(flatten)]
        access: AccessArgs,
    },
    /// Verify a log directory or an export file against a pinned key.
    #[command(
        after_help = "A log directory is verified as the whole-log export it makes \
(`stele export DIR`): line numbers in failures refer to that export form, where each checkpoint \
record follows the entry that completes it. Exit status 0 when the verdict is \"verified\" \
(or \"partial\" with --allow-unsigned-tail), 1 otherwise.\n\n\
Access auditing: verifying a log directory appends a `stele.access` entry to it after the check \
(or to --access-log DIR)."
    )]
    Verify {
        /// A log directory or an export file.
        path: PathBuf,
        /// The verifier key (name+hex8+base64) or a file holding it. Repeat for several.
        #[arg(long = "key", value_name = "VKEY")]
        keys: Vec<String>,
        /// A signed checkpoint trusted earlier: the log must extend it (rollback and fork checks).
        #[arg(long, value_name = "FILE")]
        trusted_checkpoint: Option<PathBuf>,
        /// Print the full report as JSON.
        #[arg(long)]
        json: bool,
        /// Accept entries after the last signed checkpoint (a live log's
        /// tail): exit 0 for the verdict "partial" instead of 1.
        #[arg(long)]
        allow_unsigned_tail: bool,
        /// An age identity file (mode 0600): open sealed fields and check them.
        #[arg(long, value_name = "FILE")]
        identity: Option<PathBuf>,
        /// A witness policy (C2SP tlog-policy): the checkpoint must be cosigned by its quorum;
        /// its `log` lines pin keys like --key.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// A key revoked from a tree size (docs/FORMAT.md 15.3): its signatures
        /// on checkpoints of that size or larger are failures, and so are those
        /// of a key it handed over to unless that key is pinned with --key (pin
        /// the successor published with the revocation). Repeatable.
        #[arg(long = "revoked", value_name = "VKEY@SIZE")]
        revoked: Vec<String>,
        /// The CA (PEM or DER) of the timestamp authorities trusted: check every RFC 3161 token.
        #[arg(long, value_name = "FILE")]
        tsa_ca: Option<PathBuf>,
        #[command(flatten)]
        access: AccessArgs,
    },
    /// Verify a log periodically and alert on failure, rollback or fork.
    #[command(
        long_about = "Verify a log periodically. The last checkpoint trusted is kept in \
--state FILE; each round the log must extend it. On any failure, rollback or fork the monitor \
writes the alert to stderr, runs --on-alert CMD (via sh -c) with the alert JSON on stdin, and \
exits with status 1; a log or --state file that can no longer be read once watched is an alert too \
(`unreadable`). The monitor only reads the log and records no stele.access entries (it would \
otherwise grow the log every interval). Given a URL (http:// or https://) instead of DIR, each round \
fetches only the signed checkpoint and the hash tiles of one consistency proof from the checkpoint in \
--state (O(log n) tiles, never entries) and prints the bytes it took."
    )]
    Monitor {
        /// The log directory, or the URL of a served log (http:// or https://).
        dir: PathBuf,
        /// The verifier key (or a file holding it). Repeatable: pin a revoked
        /// key's published successor beside it.
        #[arg(long = "key", value_name = "VKEY")]
        keys: Vec<String>,
        /// A key revoked from a tree size (docs/FORMAT.md 15.3), as for `stele verify`.
        /// Repeatable.
        #[arg(long = "revoked", value_name = "VKEY@SIZE")]
        revoked: Vec<String>,
        /// Where the last trusted checkpoint is remembered.
        #[arg(long, value_name = "FILE")]
        state: PathBuf,
        /// Time between rounds, e.g. 60s, 5m, 500ms (at least 10ms).
        #[arg(long, default_value = "60s", value_parser = parse_interval)]
        interval: Duration,
        /// Run one round and exit (0 ok, 1 alert).
        #[arg(long)]
        once: bool,
        /// A shell command run on alert, with the alert JSON on stdin.
        #[arg(long, value_name = "CMD")]
        on_alert: Option<String>,
        /// With a URL: a file holding a bearer token for origins whose reads need one.
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// A witness policy (C2SP tlog-policy): alert when the latest checkpoint lacks its quorum.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
    /// Keep a verified copy of a log served over HTTP (tlog-tiles), alerting on tampering.
    Mirror(mirror_cli::MirrorArgs),
    /// Turn a mirror plus the log's private key into a writer's log directory.
    Restore(mirror_cli::RestoreArgs),
    /// Benchmarks (see writer/README.md).
    #[command(subcommand)]
    Bench(bench::Bench),
    /// Simulated attacks on copies of a live log, detected while it keeps growing.
    Demo(demo::DemoArgs),
    /// Serve a log over HTTP: ingestion, tlog-tiles, proofs, exports, the verifier page.
    Serve(Box<ServeArgs>),
    /// Bearer tokens for `stele serve`.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Load generator for `stele serve` on loopback.
    BenchHttp(bench_http::BenchHttpArgs),
    /// Batched ingest through 1..N PostgreSQL + object storage front-ends beside a file log,
    /// and tile reads from object storage beside files (scripts/bench-cluster.sh runs it).
    BenchCluster(cluster_bench::BenchClusterArgs),
    /// Copy a log between backends byte for byte: a directory into PostgreSQL + object
    /// storage (`stele migrate DIR postgres://… --objects s3://…`) or back
    /// (`stele migrate postgres://… NEW_DIR`). Nothing is re-signed.
    Migrate {
        /// The log to copy: a directory or a postgres:// URL.
        from: String,
        /// The new log: a postgres:// URL (an existing, empty database) or a new directory.
        to: String,
        /// Object storage of a new postgres:// log: s3://BUCKET[/PREFIX].
        #[arg(long, value_name = "URL")]
        objects: Option<String>,
        /// Object storage of the postgres:// log copied from, if not the one given at init.
        #[arg(long, value_name = "URL")]
        from_objects: Option<String>,
        /// A new directory's key file (its stele.json names it; the key is not copied).
        #[arg(long, value_name = "FILE")]
        signing_key: Option<PathBuf>,
        /// Sealed fields: into PostgreSQL, the new log's sealing key file (written, 0600);
        /// from PostgreSQL, the log's sealing key (default: FILE.seal beside --signing-key).
        #[arg(long, value_name = "FILE")]
        seal_key: Option<PathBuf>,
    },
    /// A C2SP tlog-witness: cosign checkpoints of the logs it trusts.
    #[command(subcommand)]
    Witness(witness_cli::WitnessCmd),
}

/// `stele serve` options (stele_writer::serve::Config; writer/README.md lists
/// every limit with its default).
#[derive(Args, Debug)]
#[command(
    after_help = "Writes need `Authorization: Bearer TOKEN` with a token from --tokens \
(`stele token add FILE NAME [--scope read,write,k8s]` makes one); the token's name is recorded in every \
entry it writes (event member \"stele\"). Reads (checkpoint, tiles, proofs, entries, exports, metrics) \
need a token too when --tokens is given, unless --public-reads (all) or --public-hashes (checkpoint, \
hash tiles, proofs). Every read of entries (GET /v1/entries, /v1/export, /tile/entries/…) is recorded \
first as a durable stele.access entry naming the token (or the remote address). SIGTERM or SIGINT: stop \
accepting, finish in-flight requests (until --shutdown-deadline), sign a final checkpoint."
)]
struct ServeArgs {
    /// The log directory (made with `stele init`); or --db, --objects and --signing-key.
    #[arg(required_unless_present = "db")]
    dir: Option<PathBuf>,
    /// A log in PostgreSQL (made with `stele init --db`); several servers may serve it at once.
    #[arg(long, value_name = "URL", conflicts_with_all = ["dir", "read_only"], requires = "signing_key")]
    db: Option<String>,
    /// With --db: its object storage, if not the one given at init (s3://BUCKET[/PREFIX]).
    #[arg(long, value_name = "URL", requires = "db")]
    objects: Option<String>,
    /// With --db: the log's private key file (mode 0600).
    #[arg(long, value_name = "FILE", requires = "db")]
    signing_key: Option<PathBuf>,
    /// With --db: the log's sealing key file (mode 0600); default: beside the signing key, FILE.seal.
    #[arg(long, value_name = "FILE", requires = "db")]
    seal_key: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port (printed on start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// Tokens file (NAME sha256:HEX [SCOPES] per line). Without it, every write is refused.
    #[arg(long, value_name = "FILE")]
    tokens: Option<PathBuf>,
    /// Reads need no token (the default without --tokens).
    #[arg(long, conflicts_with_all = ["token_reads", "public_hashes"])]
    public_reads: bool,
    /// Checkpoint, hash tiles and proofs need no token; entries, exports and metrics do.
    #[arg(long, conflicts_with = "token_reads")]
    public_hashes: bool,
    /// Reads need a token (the default with --tokens).
    #[arg(long)]
    token_reads: bool,
    /// Largest request body accepted, in bytes (413 beyond).
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    max_body: usize,
    /// Most events in one request (413 beyond).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    max_events: usize,
    /// Memory for requests in flight, each charged 32x its body (a request waits, then 503).
    #[arg(long, value_name = "BYTES", default_value_t = 512 << 20)]
    max_inflight: usize,
    /// Time for a request body to arrive (408 beyond).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    body_timeout: Duration,
    /// Time for a request's head to arrive, from when the server waits for it (also ends idle keep-alive).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    header_timeout: Duration,
    /// Read buffer for a request head: a head still incomplete when it is full is 431 (up to ~2x may pass).
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    max_header: usize,
    /// Close a connection on which the server waits to read and no byte moves this long.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    idle_timeout: Duration,
    /// Cut off a client that accepts no byte of a response this long.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    write_timeout: Duration,
    /// Cut off a client that keeps a response waiting and takes fewer than this many bytes a second over --write-rate-window (0: no such limit).
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    min_write_rate: u64,
    /// The window --min-write-rate is measured over.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    write_rate_window: Duration,
    /// Most open connections (a short 503 beyond).
    #[arg(long, value_name = "N", default_value_t = 512)]
    max_connections: usize,
    /// Most open connections from one IP address (a short 503 beyond; 0: no cap). Behind a reverse proxy, every client has the proxy's address: raise it or set 0 there.
    #[arg(long, value_name = "N", default_value_t = 64)]
    max_connections_per_ip: usize,
    /// On SIGTERM, drop connections still busy after this long, then sign the final checkpoint.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    shutdown_deadline: Duration,
    /// Most exports streaming at once (429 beyond).
    #[arg(long, value_name = "N", default_value_t = 4)]
    max_exports: usize,
    /// Memory for responses built whole (pages of entries, entry bundles, /v1/sealed) until sent (a response waits 1s for room, then 503).
    #[arg(long, value_name = "BYTES", default_value_t = 256 << 20)]
    max_read_bytes: usize,
    /// Access records (reads of entries) one reader may cause per minute (429 beyond).
    #[arg(long, value_name = "N", default_value_t = 600)]
    access_rate: u32,
    /// Shortest time between two checkpoints signed because a read needed one.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    read_sign_interval: Duration,
    /// Sign a checkpoint when this many entries are unsigned.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    checkpoint_every: u64,
    /// Sign a checkpoint this long after the last one if the tree grew.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    checkpoint_interval: Duration,
    /// Directory of the verifier page served at / (default: web/dist if it exists).
    #[arg(long, value_name = "DIR")]
    web: Option<PathBuf>,
    /// Most entries one GET /v1/entries returns.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    page_size: u64,
    /// An origin (https://dash.example.com) allowed to read entries and exports cross-origin (repeatable).
    #[arg(long, value_name = "ORIGIN")]
    cors_origin: Vec<String>,
    /// A proxy (IP) whose --proxy-header names the client (repeatable).
    #[arg(long, value_name = "IP")]
    trust_proxy: Vec<std::net::IpAddr>,
    /// The header the trusted proxies set; only that one is read.
    #[arg(
        long,
        value_enum,
        default_value = "x-forwarded-for",
        requires = "trust_proxy"
    )]
    proxy_header: serve::ProxyHeader,
    /// Serve DIR read-only (a mirror, or a log another process writes): no lock, key, writes,
    /// signing or stele.access records; a mirror's lag on /metrics. Sealed-field openings
    /// (/v1/sealed, reveal-to) only with --access-log.
    #[arg(long)]
    read_only: bool,
    /// With --read-only: record every read as a stele.access entry in this other log (its
    /// writer for as long as the server runs).
    #[arg(long, value_name = "DIR", requires = "read_only")]
    access_log: Option<PathBuf>,
    /// Publish only checkpoints cosigned by this witness policy's quorum (C2SP tlog-policy);
    /// the log remembers it (a log that has one is witnessed without this flag too).
    #[arg(long, value_name = "FILE", conflicts_with = "read_only")]
    policy: Option<PathBuf>,
    /// A timestamp authority's URL (RFC 3161): anchor the latest checkpoint every --anchor-every.
    #[arg(
        long,
        value_name = "URL",
        conflicts_with = "read_only",
        requires = "anchor_every"
    )]
    tsa: Option<String>,
    /// How often to anchor the latest checkpoint with --tsa (a checkpoint is anchored once).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "tsa")]
    anchor_every: Option<Duration>,
    /// With --tsa: the TSA's CA certificate (PEM or DER). Each token is checked against it
    /// (docs/FORMAT.md 16.3) before it is kept; one that fails is not kept (logged, retried).
    #[arg(long, value_name = "FILE", requires = "tsa")]
    ca: Option<PathBuf>,
}

/// `stele key` subcommands.
#[derive(Subcommand, Debug)]
enum KeyCmd {
    /// Replace the log's signing key (docs/FORMAT.md 15): a new key file
    /// (mode 0600) beside the current one, a `stele.key` event, and the
    /// checkpoint covering it signed by both keys.
    #[command(
        after_help = "Verifiers that pinned any earlier key of the log follow the stele.key event \
and accept the new key from the event's tree size on. The old key co-signs the first --overlap \
checkpoints from there (for verifiers that do not follow rotations yet), then only the new key \
signs. If a running writer (`stele serve`) holds the log, the rotation is handed to it and this \
command waits until it is done. The old key file is kept: delete it once the overlap is over. To \
revoke a compromised key, tell verifiers `--revoked VKEY@SIZE` and the new key to pin with --key \
(docs/THREAT-MODEL.md)."
    )]
    Rotate {
        /// The log directory.
        dir: PathBuf,
        /// Checkpoints, from the one covering the event, that the old key co-signs
        /// (1 to 1000000).
        #[arg(long, value_name = "N", default_value_t = 2)]
        overlap: u64,
        /// Cancel a rotation under way whose stele.key event is not in the log yet
        /// (one an older stele recorded with an --overlap it cannot write). The new
        /// key's file is kept.
        #[arg(long, conflicts_with = "overlap")]
        abort: bool,
    },
}

/// `stele token` subcommands.
#[derive(Subcommand, Debug)]
enum TokenCmd {
    /// Make a token for NAME, store its SHA-256 in FILE, print the token once.
    Add {
        /// The tokens file (created with mode 0600 if missing).
        file: PathBuf,
        /// The token's name: the actor of the access events it causes.
        name: String,
        /// What it may do: read, write, k8s, reveal (exports with sealed-field openings), comma-separated (default: read,write,k8s).
        #[arg(long, value_name = "SCOPES", default_value = "read,write,k8s", value_parser = parse_scopes)]
        scope: serve::Scopes,
    },
    /// List the tokens in FILE: name and scopes (the file holds no token, only hashes).
    List {
        /// The tokens file.
        file: PathBuf,
    },
    /// Remove the token NAME from FILE. A running `stele serve` stops accepting it within a second.
    Remove {
        /// The tokens file.
        file: PathBuf,
        /// The token's name.
        name: String,
    },
}

fn parse_scopes(s: &str) -> Result<serve::Scopes, String> {
    serve::Scopes::parse(s)
}

#[derive(Subcommand, Debug)]
enum Prove {
    /// Inclusion proof of one entry.
    #[command(after_help = ACCESS_HELP)]
    Inclusion {
        /// The log directory.
        dir: PathBuf,
        /// The entry index.
        #[arg(long)]
        index: u64,
        /// Tree size (default: the latest checkpoint, signing one if needed).
        #[arg(long)]
        size: Option<u64>,
        /// Print JSON: {"index","tree_size","leaf_hash","root","proof"}.
        #[arg(long)]
        json: bool,
        /// tlog-proof: print a C2SP tlog-proof with the entry as extra data.
        #[arg(long, value_name = "FORMAT", value_parser = ["tlog-proof"])]
        format: Option<String>,
        #[command(flatten)]
        access: AccessArgs,
    },
    /// Consistency proof between two tree sizes.
    #[command(after_help = ACCESS_HELP)]
    Consistency {
        /// The log directory.
        dir: PathBuf,
        /// The older tree size.
        #[arg(long)]
        from: u64,
        /// The newer tree size (default: the latest checkpoint).
        #[arg(long)]
        to: Option<u64>,
        /// Print JSON: {"from","to","old_root","new_root","proof"}.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        access: AccessArgs,
    },
}

#[derive(Args, Debug, Clone)]
struct AccessArgs {
    /// Record the stele.access entry in this log instead (for a locked or read-only log).
    #[arg(long, value_name = "DIR")]
    access_log: Option<PathBuf>,
}

/// A CLI failure: the message, how to fix it, and the exit status.
struct Fail {
    code: u8,
    msg: String,
    hint: Option<String>,
}

impl Fail {
    fn usage(msg: impl Into<String>, hint: impl Into<Option<String>>) -> Self {
        Self {
            code: 2,
            msg: msg.into(),
            hint: hint.into(),
        }
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        let msg = e.to_string();
        let (code, hint) = match &e {
            Error::Locked { dir } => (
                2,
                Some(format!(
                    "another stele process or service is writing {}; for cat/prove/export/verify, pass --access-log OTHER_DIR to read it without the lock",
                    dir.display()
                )),
            ),
            Error::KeyPermissions { path, .. } => {
                (2, Some(format!("run: chmod 600 {}", path.display())))
            }
            Error::NotALog { .. } => (
                2,
                Some("create a log with: stele init DIR --origin ORIGIN".into()),
            ),
            Error::AlreadyExists { .. } => (2, Some("choose an empty directory".into())),
            Error::DirNotEmpty {
                log_files: true, ..
            } => (
                2,
                Some("if this is a restored log, restore its stele.json too; to start a new log, choose an empty directory".into()),
            ),
            Error::DirNotEmpty { .. } => (
                2,
                Some("choose an empty directory, or pass --allow-non-empty to use this one".into()),
            ),
            Error::Poisoned { .. } => (
                2,
                Some("check the disk, then run the command again (reopening recovers)".into()),
            ),
            Error::Corrupt { dir, .. } | Error::CheckpointMismatch { dir, .. } => (
                1,
                Some(format!(
                    "the log was not changed; run `stele verify {} --key VKEY` to list every failure",
                    dir.display()
                )),
            ),
            Error::OutOfRange(_) => (
                2,
                Some("`stele checkpoint DIR` signs the entries appended so far".into()),
            ),
            Error::Tokens { .. } => (2, Some("make one with: stele token add FILE NAME".into())),
            Error::Config {
                option: "--token-reads" | "--public-hashes",
                ..
            } => (
                2,
                Some("make a tokens file with: stele token add FILE NAME".into()),
            ),
            Error::Config {
                option: "--web", ..
            } => (
                2,
                Some("build the page with `node web/build.mjs` and pass web/dist".into()),
            ),
            _ => (2, None),
        };
        Self { code, msg, hint }
    }
}

fn main() -> ExitCode {
    closed_output_is_an_error();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            // Errors name paths and values the user (or an attacker who
            // named a file) chose: a control character, ESC sequence or
            // bidirectional override in them is shown escaped, never acted
            // on by the terminal.
            eprintln!("stele: error: {}", terminal_safe(&f.msg, false));
            if let Some(h) = f.hint {
                eprintln!("  hint: {}", terminal_safe(&h, false));
            }
            ExitCode::from(f.code)
        }
    }
}

// `print!` panics when standard output is closed or full (`| head`,
// `> /dev/full`); with output on over a hundred call sites, one hook turns
// that panic into the CLI's error form and exit status 2 instead of a
// backtrace and 101. Every other panic keeps the default report.
fn closed_output_is_an_error() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let p = info.payload();
        let msg = p
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| p.downcast_ref::<&str>().copied());
        if let Some(why) = msg.and_then(|m| m.strip_prefix("failed printing to stdout: ")) {
            eprintln!("stele: error: cannot write to standard output: {why}");
            std::process::exit(2);
        }
        default(info);
    }));
}

// `stele checkpoint` when the witnesses' quorum was not met: exit 1.
fn quorum_not_met(e: &Error) -> u8 {
    eprintln!("stele: {e}");
    eprintln!(
        "  the previous checkpoint stays the published one; the entries are durable and are signed at the next successful checkpoint"
    );
    1
}

// A redact that failed: an entry beyond the log is the caller's mistake
// (not the unsigned-entries case the general hint of OutOfRange is for).
fn redact_fail(e: Error) -> Fail {
    match e {
        Error::OutOfRange(m) => Fail::usage(m, None),
        e => e.into(),
    }
}

// A mirror is a copy: nothing may append to it or sign for it.
fn refuse_mirror(dir: &Path) -> Result<(), Fail> {
    if stele_writer::mirror::is_mirror(dir) {
        let url = stele_writer::mirror::read_config(dir).map_or_else(|_| "?".into(), |c| c.url);
        return Err(Fail::usage(
            format!("{} is a mirror of {url}: it is read-only (it cannot append or sign)", dir.display()),
            Some("serve it with --read-only; after losing the origin, make a writable log from it with: stele restore MIRROR_DIR NEW_DIR --signing-key FILE".into()),
        ));
    }
    Ok(())
}

fn run(cli: Cli) -> Result<u8, Fail> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match &cli.cmd {
        Cmd::Append { dir, .. } => refuse_mirror(dir)?,
        Cmd::Checkpoint { dir: Some(dir), .. } | Cmd::Anchor { dir: Some(dir), .. } => {
            refuse_mirror(dir)?
        }
        Cmd::Serve(a) if !a.read_only && a.db.is_none() => {
            refuse_mirror(a.dir.as_deref().unwrap_or(Path::new("")))?
        }
        _ => {}
    }
    match cli.cmd {
        Cmd::Init {
            db: Some(db),
            objects,
            signing_key,
            seal_key,
            origin,
            seal,
            subject,
            ..
        } => cluster_cli::init(
            &db,
            objects.as_deref().unwrap_or_default(),
            &origin,
            signing_key.as_deref().unwrap_or(Path::new("")),
            (stele_writer::sealed::SealConfig { seal, subject }, seal_key),
        ),
        Cmd::Init {
            dir,
            origin,
            key_file,
            allow_non_empty,
            seal,
            subject,
            ..
        } => init(
            &dir.unwrap_or_default(),
            &origin,
            key_file.as_deref(),
            allow_non_empty,
            stele_writer::sealed::SealConfig { seal, subject },
        ),
        Cmd::Auditor(AuditorCmd::Add {
            dir,
            recipient,
            db: DbArgs {
                db: Some(db),
                objects,
            },
            seal_key,
            by,
        }) => cluster_seal_cli::auditor_add(
            &db,
            objects.as_deref(),
            seal_key.as_deref(),
            &dir,
            recipient.as_deref(),
            &by.unwrap_or_else(default_by),
        ),
        Cmd::Auditor(AuditorCmd::Add {
            dir, recipient, by, ..
        }) => {
            let recipient = recipient.ok_or_else(|| {
                Fail::usage(
                    "stele auditor add DIR RECIPIENT: the recipient (age1…) is missing",
                    None,
                )
            })?;
            let log = Log::open(&dir)?;
            let n = log.add_auditor(recipient.trim(), &by.unwrap_or_else(default_by))?;
            eprintln!("auditor added; {n} existing data keys wrapped for it");
            Ok(0u8)
        }
        Cmd::Auditor(AuditorCmd::Remove {
            dir,
            recipient,
            db: DbArgs {
                db: Some(db),
                objects,
            },
            by,
        }) => {
            if recipient.is_some() {
                return Err(Fail::usage(
                    "with --db, stele auditor remove takes the recipient only (no DIR)",
                    Some("stele auditor remove --db URL age1…".into()),
                ));
            }
            cluster_seal_cli::auditor_remove(
                &db,
                objects.as_deref(),
                &dir.to_string_lossy(),
                &by.unwrap_or_else(default_by),
            )
        }
        Cmd::Auditor(AuditorCmd::Remove {
            dir, recipient, by, ..
        }) => {
            let recipient = recipient.ok_or_else(|| {
                Fail::usage(
                    "stele auditor remove DIR RECIPIENT: the recipient (age1…) is missing",
                    None,
                )
            })?;
            let log = Log::open(&dir)?;
            let n = log.remove_auditor(recipient.trim(), &by.unwrap_or_else(default_by))?;
            eprintln!("auditor removed; {n} wraps for it destroyed");
            Ok(0u8)
        }
        Cmd::Auditor(AuditorCmd::List {
            db: DbArgs {
                db: Some(db),
                objects,
            },
            ..
        }) => cluster_seal_cli::auditor_list(&db, objects.as_deref()),
        Cmd::Auditor(AuditorCmd::List { dir, .. }) => {
            let dir = dir.unwrap_or_default();
            let _ = stele_writer::log::log_config(&dir)?;
            for a in stele_writer::sealed::auditors(&dir)? {
                println!("{a}");
            }
            Ok(0u8)
        }
        Cmd::Reveal {
            path,
            keys,
            identity,
        } => reveal(&path, &keys, &identity),
        Cmd::Forget {
            db: DbArgs {
                db: Some(db),
                objects,
            },
            seal_key,
            subject,
            by,
            ..
        } => cluster_seal_cli::forget(
            &db,
            objects.as_deref(),
            seal_key.as_deref(),
            subject.as_deref().map(subject_value).as_ref(),
            &by.unwrap_or_else(default_by),
        ),
        Cmd::Forget {
            dir, subject, by, ..
        } => {
            let log = Log::open(&dir.unwrap_or_default())?;
            let by = by.unwrap_or_else(default_by);
            // Without --subject, clap saw --subjectless.
            let (id, r) = match subject.as_deref().map(subject_value) {
                Some(value) => log.forget(&value, &by)?,
                None => log.forget_subjectless(&by)?,
            };
            println!("{{\"forgotten\":\"{id}\",\"seq\":{}}}", r.seq);
            Ok(0u8)
        }
        Cmd::Redact {
            db: DbArgs {
                db: Some(db),
                objects,
            },
            entry,
            pointer,
            by,
            ..
        } => cluster_seal_cli::redact(
            &db,
            objects.as_deref(),
            entry,
            &pointer,
            &by.unwrap_or_else(default_by),
        ),
        Cmd::Redact {
            dir,
            entry,
            pointer,
            by,
            ..
        } => {
            let log = Log::open(&dir.unwrap_or_default())?;
            let by = by.unwrap_or_else(default_by);
            let r = log.redact(entry, &pointer, &by).map_err(redact_fail)?;
            println!("{{\"redacted\":{entry},\"seq\":{}}}", r.seq);
            Ok(0u8)
        }
        Cmd::Append {
            dir,
            events,
            checkpoint_every,
        } => append(&dir, events, checkpoint_every),
        Cmd::Checkpoint {
            db:
                SigningDbArgs {
                    db: Some(db),
                    objects,
                    signing_key,
                },
            policy,
            forget_policy,
            ..
        } => cluster_cli::checkpoint(
            &db,
            objects.as_deref(),
            signing_key.as_deref().unwrap_or(Path::new("")),
            policy.as_deref(),
            forget_policy,
        ),
        Cmd::Checkpoint {
            dir,
            policy,
            forget_policy,
            ..
        } => {
            let dir = dir.unwrap_or_default();
            if forget_policy && stele_writer::log::forget_witness_policy(&dir)? {
                eprintln!(
                    "stele: {}: witness policy removed; checkpoints are no longer witnessed",
                    shown_path(&dir)
                );
            }
            let mut cosign: Option<std::sync::Arc<dyn stele_writer::witness::Cosign>> = None;
            if let Some(p) = &policy {
                cosign = Some(std::sync::Arc::new(witness_cli::cosigner(p)?));
            }
            let opts = LogOptions {
                cosign,
                ..LogOptions::default()
            };
            let log = Log::open_with(&dir, opts)?;
            match log.checkpoint() {
                Ok(cp) => {
                    print!("{}", cp.note);
                    Ok(0u8)
                }
                Err(e @ Error::Witness(_)) => Ok(quorum_not_met(&e)),
                Err(e) => Err(e.into()),
            }
        }
        Cmd::Anchor {
            dir,
            db:
                SigningDbArgs {
                    db,
                    objects,
                    signing_key,
                },
            tsa,
            ca,
            timeout,
        } => anchor(
            dir.as_deref(),
            db.as_deref()
                .map(|db| (db, objects.as_deref(), signing_key)),
            &tsa,
            ca.as_deref(),
            timeout,
        ),
        Cmd::Fsck { dir } => {
            let log = Log::fsck(&dir, LogOptions::default())?;
            let view = log.view();
            if let Some(r) = log.recovery() {
                println!(
                    "recovered: cut {} bytes at offset {} ({}); recorded as entry {}",
                    r.dropped_bytes, r.offset, r.reason, r.seq
                );
            }
            let aside = stele_writer::anchor::repair(&dir)?;
            if aside > 0 {
                println!(
                    "repaired: {aside} line(s) of {} that are not timestamp records moved to {}",
                    stele_writer::anchor::TIMESTAMPS,
                    stele_writer::anchor::REJECTED
                );
            }
            let sealed = log.check_sealed()?;
            for (seq, work) in &sealed.finished {
                println!(
                    "finished: entry {seq} ({work}) is logged, but its sidecar work was not done; done now"
                );
            }
            const SHOWN: usize = 20;
            for (seq, ptr, key) in sealed.missing.iter().take(SHOWN) {
                println!(
                    "missing: entry {seq}: the sealed value at {} (key {key}) has no opening, no redacted record and no forgotten key",
                    stele_core::canonical::quote(ptr)
                );
            }
            if sealed.missing.len() > SHOWN {
                println!("missing: … and {} more", sealed.missing.len() - SHOWN);
            }
            println!(
                "{}: {} entries ({} bytes) and {} checkpoints checked; tree and index match the entries",
                if sealed.missing.is_empty() {
                    "ok"
                } else {
                    "damaged"
                },
                view.size(),
                view.entries_len(),
                view.checkpoints().len()
            );
            if !sealed.missing.is_empty() {
                eprintln!(
                    "stele: sealed values that can no longer be opened: {} (their openings are gone from {}/sealed/records: an older records file restored?)",
                    sealed.missing.len(),
                    shown_path(&dir)
                );
                eprintln!(
                    "  hint: restore the records file that holds them (a newer backup or a mirror's --with-openings copy)"
                );
                return Ok(1u8);
            }
            Ok(0u8)
        }
        Cmd::Key {
            cmd: Some(KeyCmd::Rotate {
                dir, abort: true, ..
            }),
            ..
        } => {
            let file = stele_writer::log::abort_rotation(&dir, LogOptions::default().fs.as_ref())?;
            eprintln!(
                "stele: the rotation under way in {} is cancelled; the log signs with its current key. The new key's file {} was kept: delete it if no checkpoint needs it",
                shown_path(&dir),
                shown_path(&file)
            );
            Ok(0)
        }
        Cmd::Key {
            cmd: Some(KeyCmd::Rotate { dir, overlap, .. }),
            ..
        } => key_rotate(&dir, overlap),
        Cmd::Key { dir, .. } => {
            let dir = dir.expect("clap requires DIR without a subcommand");
            let (_, key_path) = stele_writer::log::log_config(&dir)?;
            // The verifier key is public; it is read from the genesis entry so
            // the private key file need not be readable.
            let view = View::open_read_only(&dir)?;
            let genesis: Value = serde_json::from_slice(&view.entry(0)?)
                .map_err(|e| Fail::usage(format!("entry 0: {e}"), None))?;
            match genesis["event"]["key"].as_str() {
                Some(k) => println!("{k}"),
                None => {
                    let k = key::load(&key_path)?;
                    println!("{}", k.verifier());
                }
            }
            Ok(0u8)
        }
        Cmd::Cat {
            dir,
            from,
            to,
            access,
        } => with_access(&dir, &access, "cat", &argv, |view, _| {
            let from = from.unwrap_or(0);
            let to = to.unwrap_or(view.size());
            if from >= to || to > view.size() {
                return Err(Fail::usage(
                    format!(
                        "range {from}..{to} is not a non-empty part of the log's {} entries",
                        view.size()
                    ),
                    None,
                ));
            }
            let read = json!({"entries": [from, to], "tree_size": view.size()});
            Ok((
                read,
                Box::new(move |view: &View| {
                    let stdout = std::io::stdout();
                    let terminal = stdout.is_terminal();
                    let out = std::io::BufWriter::new(stdout.lock());
                    // To a terminal, control and bidi characters in events are
                    // escaped; to a pipe or file, the lines are the log's bytes.
                    let mut out: Box<dyn Write> = if terminal {
                        Box::new(TerminalLines {
                            inner: out,
                            pending: Vec::new(),
                        })
                    } else {
                        Box::new(out)
                    };
                    let _ = view.write_entries(from, to, &mut out)?;
                    out.flush()
                        .map_err(|e| Fail::usage(format!("write stdout: {e}"), None))?;
                    Ok(0u8)
                }),
            ))
        }),
        Cmd::Prove(Prove::Inclusion {
            dir,
            index,
            size,
            json: as_json,
            format,
            access,
        }) => with_access(&dir, &access, "prove inclusion", &argv, |view, log| {
            let size = match size {
                Some(s) => s,
                None => default_size(view, log, index + 1)?,
            };
            view.check_inclusion(index, size)
                .map_err(|e| Fail::usage(e.to_string(), None))?;
            let read = json!({"inclusion": index, "tree_size": size});
            Ok((
                read,
                Box::new(move |view: &View| {
                    if format.is_some() {
                        print!("{}", view.tlog_proof(index, size)?);
                        return Ok(0u8);
                    }
                    let p = view.inclusion(index, size)?;
                    if as_json {
                        println!("{}", p.to_json());
                    } else {
                        print!("{}", p.to_text());
                    }
                    Ok(0u8)
                }),
            ))
        }),
        Cmd::Prove(Prove::Consistency {
            dir,
            from,
            to,
            json: as_json,
            access,
        }) => with_access(&dir, &access, "prove consistency", &argv, |view, log| {
            let to = match to {
                Some(t) => t,
                None => default_size(view, log, from)?,
            };
            view.check_consistency(from, to)
                .map_err(|e| Fail::usage(e.to_string(), None))?;
            let read = json!({"consistency": [from, to]});
            Ok((
                read,
                Box::new(move |view: &View| {
                    let p = view.consistency(from, to)?;
                    if as_json {
                        println!("{}", p.to_json());
                    } else {
                        print!("{}", p.to_text());
                    }
                    Ok(0u8)
                }),
            ))
        }),
        Cmd::Export {
            db: Some(db),
            objects,
            signing_key,
            output,
            from,
            to,
            entries,
            reveal_to,
            ..
        } => cluster_cli::export(
            &db,
            objects.as_deref(),
            &output,
            signing_key.as_deref(),
            match (from.zip(to), entries) {
                (Some((a, b)), _) => cluster_cli::Selection::Range(a, b),
                (None, Some(l)) => cluster_cli::Selection::Entries(l),
                (None, None) => cluster_cli::Selection::Log,
            },
            &reveal_to,
        ),
        Cmd::Export {
            dir,
            output,
            from,
            to,
            entries,
            reveal_to,
            access,
            ..
        } => export(
            &dir.unwrap_or_default(),
            &output,
            from.zip(to),
            entries,
            reveal_to,
            &access,
            &argv,
        ),
        Cmd::Verify {
            path,
            keys,
            trusted_checkpoint,
            json: as_json,
            allow_unsigned_tail,
            identity,
            policy,
            revoked,
            tsa_ca,
            access,
        } => verify(
            &path,
            Pinned {
                keys: &keys,
                policy: policy.as_deref(),
            },
            trusted_checkpoint.as_deref(),
            VerifyOutput {
                json: as_json,
                allow_unsigned_tail,
                revoked,
            },
            (identity.as_deref(), tsa_ca.as_deref()),
            &access,
            &argv,
        ),
        Cmd::Monitor {
            dir,
            keys,
            revoked,
            state,
            interval,
            once,
            on_alert,
            token_file,
            policy,
        } => match dir.to_str() {
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
                mirror_cli::run_remote_monitor(
                    u,
                    load_pins(&keys, &revoked)?,
                    &state,
                    interval,
                    once,
                    on_alert.as_deref(),
                    token_file.as_deref(),
                    policy.as_deref(),
                )
            }
            _ => monitor(
                &dir,
                load_pins(&keys, &revoked)?,
                policy.as_deref(),
                &state,
                interval,
                once,
                on_alert.as_deref(),
            ),
        },
        Cmd::Mirror(a) => mirror_cli::run_mirror(a),
        Cmd::Restore(a) => mirror_cli::run_restore(a),
        Cmd::Bench(b) => bench::run(b).map_err(Fail::from),
        Cmd::Demo(a) => demo::run(a).map_err(|e| Fail::usage(e, None)),
        Cmd::Serve(a) => serve(*a),
        Cmd::Token(t) => token(t),
        Cmd::BenchHttp(a) => bench_http::bench_http(a),
        Cmd::BenchCluster(a) => cluster_bench::bench_cluster(a),
        Cmd::Migrate {
            from,
            to,
            objects,
            from_objects,
            signing_key,
            seal_key,
        } => cluster_cli::migrate(
            &from,
            &to,
            objects.as_deref(),
            from_objects.as_deref(),
            signing_key.as_deref(),
            seal_key.as_deref(),
        ),
        Cmd::Witness(w) => witness_cli::run(w),
    }
}

type Action = Box<dyn FnOnce(&View) -> Result<u8, Fail>>;

fn init(
    dir: &Path,
    origin: &str,
    key_file: Option<&Path>,
    allow_non_empty: bool,
    seal: stele_writer::sealed::SealConfig,
) -> Result<u8, Fail> {
    cluster_seal_cli::check_rules(&seal)?;
    // The origin names the log's key (docs/FORMAT.md 5.1): core's rule, checked first.
    if !stele_core::note::is_valid_key_name(origin) {
        return Err(Fail::usage(
            format!(
                "origin {origin:?} cannot be a key name: it is empty or has white space or '+'"
            ),
            Some("use an origin without spaces or '+', e.g. example.com/audit".into()),
        ));
    }
    if origin.len() > stele_writer::log::MAX_ORIGIN_BYTES {
        return Err(Fail::usage(
            stele_writer::log::origin_too_long(origin),
            Some("use a short origin naming the log, e.g. example.com/audit".into()),
        ));
    }
    // Refuse the directory before making anything (the key file included).
    stele_writer::log::check_new_dir(dir, allow_non_empty)?;
    let mut made_key = None;
    let signer = match key_file {
        Some(p) if p.exists() => {
            let k = key::load(p)?;
            // A key is named by the origin of the log it signs (FORMAT 5.1):
            // another log's key would make its checkpoints verify under
            // that log's pinned key, for a log its auditors never chose.
            if k.verifier().name() != origin {
                return Err(Fail::usage(
                    format!(
                        "--key-file {} is the key of {:?}, not of origin {origin:?}: one key signs one log",
                        p.display(),
                        k.verifier().name()
                    ),
                    Some(format!(
                        "give a new file for a new key (it is made there), or init with --origin {}",
                        k.verifier().name()
                    )),
                ));
            }
            k
        }
        Some(p) => {
            let k = key::generate(origin)?;
            key::save(&stele_writer::fs::RealFs, p, &k)?;
            made_key = Some(p);
            k
        }
        None => key::generate(origin)?,
    };
    let opts = LogOptions {
        seal,
        ..LogOptions::default()
    };
    // The directory was checked above; a new key file may now be in it.
    let made = Log::create_in_non_empty_dir(dir, origin, &signer, key_file, opts);
    let log = made.map_err(|e| {
        // A failed init leaves nothing behind: the library removed its files.
        if let Some(p) = made_key {
            let _ = std::fs::remove_file(p);
        }
        Fail::from(e)
    })?;
    println!("{}", log.verifier());
    Ok(0u8)
}

fn append(dir: &Path, events: Vec<String>, every: u64) -> Result<u8, Fail> {
    let opts = LogOptions {
        checkpoint_every: Some(every.max(1)),
        ..LogOptions::default()
    };
    let log = Log::open_with(dir, opts)?;
    if events.is_empty() {
        append_stdin(&log)?;
    } else {
        let event_fail = |i: usize, why: &str| {
            Fail::usage(
                // Named by its place, never by its text: an event may hold
                // values that are to be sealed (docs/FORMAT.md 13).
                format!(
                    "--event number {} of {}: {why}; no event was written (the --event values are one batch)",
                    i + 1,
                    events.len(),
                ),
                Some("each --event must be one JSON object, e.g. --event '{\"actor\":\"alice\",\"action\":\"login\"}'".to_string()),
            )
        };
        let mut batch = Vec::new();
        for (i, e) in events.iter().enumerate() {
            let v = parse_event(e).map_err(|why| event_fail(i, &why))?;
            batch.push(v);
        }
        let rs = log.append_batch(batch).map_err(|e| match e {
            Error::BadEvent { index, why } => event_fail(index, &why),
            e => e.into(),
        })?;
        let mut out = std::io::stdout().lock();
        let mut text = String::new();
        for r in rs {
            receipt_line(&mut text, r.seq, &r.leaf_hash);
        }
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| Fail::usage(format!("write stdout: {e}"), None))?;
    }
    let _ = log.checkpoint_if_due()?;
    Ok(0u8)
}

fn bad_line(n: usize, why: &str, from: &str) -> Fail {
    Fail::usage(
        format!("{from} {n}: {why}; nothing from it was written"),
        Some("each event must be one JSON object per line, e.g. {\"actor\":\"alice\",\"action\":\"login\"}".to_string()),
    )
}

// Field order is part of the contract: seq first.
fn receipt_line(out: &mut String, seq: u64, leaf: &stele_core::Hash) {
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "{{\"seq\":{seq},\"leaf_hash\":\"{}\"}}",
        leaf.to_base64()
    );
}

// An input line longer than this (without its line ending) cannot become an
// entry; it is refused without being buffered.
const MAX_INPUT_LINE: usize = stele_core::entry::MAX_ENTRY_BYTES;

// Events read from stdin, up to a bad line.
struct Batch {
    events: Vec<Value>,
    // The input line number of each event.
    lines: Vec<usize>,
    // The bad line that ended the input, if any: (line number, why).
    bad: Option<(usize, String)>,
}

// `stele append` from stdin: three stages with bounded queues between them,
// so a client may write all its events before reading any receipt. A reader
// thread parses lines into batches; this thread appends them (group commit);
// a printer thread writes receipts, reading the leaf hashes back from the
// stored tree rather than holding them, so memory stays bounded however far
// the client's reading lags behind its writing.
fn append_stdin(log: &Log) -> Result<(), Fail> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(2);
    // (entries durable and due a receipt up to, appending finished)
    let progress = std::sync::Arc::new((
        std::sync::Mutex::new((log.size(), false)),
        std::sync::Condvar::new(),
    ));
    let first = log.size();
    // Not scoped: after a failed append the reader may sit in a read of
    // stdin that never ends; it is then left to the process exit.
    let reader = std::thread::spawn(move || read_events(tx));
    let printer_failed = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let p2 = progress.clone();
        let failed = &printer_failed;
        let printer = scope.spawn(move || {
            let r = print_receipts(log, first, &p2);
            failed.store(r.is_err(), std::sync::atomic::Ordering::Relaxed);
            r
        });
        let publish = |upto: Option<u64>, done: bool| {
            let mut g = progress.0.lock().unwrap();
            if let Some(u) = upto {
                g.0 = u;
            }
            g.1 |= done;
            progress.1.notify_all();
        };
        let mut result = Ok(());
        for batch in rx.iter() {
            if printer_failed.load(std::sync::atomic::Ordering::Relaxed) {
                break; // stdout is gone: its error is reported below
            }
            let mut events = batch.events;
            let mut bad = batch.bad;
            if !events.is_empty() {
                let r = match log.append_slice(&events) {
                    // A refused event (too long once built): append the
                    // ones before it, then report its line.
                    Err(Error::BadEvent { index, why }) => {
                        bad = Some((batch.lines[index], why));
                        events.truncate(index);
                        log.append_slice(&events)
                    }
                    r => r,
                };
                match r {
                    Ok(rs) => publish(rs.last().map(|r| r.seq + 1), false),
                    Err(e) => {
                        result = Err(Fail::from(e));
                        break;
                    }
                }
            }
            if let Some((n, why)) = bad {
                result = Err(bad_line(n, &why, "line"));
                break;
            }
        }
        drop(rx); // a reader still sending stops
        publish(None, true);
        let printed = printer.join().expect("receipt printer");
        result.and(printed)
    })?;
    reader.join().expect("stdin reader")
}

// Reads stdin into batches: a batch is sent when no more input is waiting
// (a slow producer gets its receipts promptly) or at 4096 events.
fn read_events(tx: std::sync::mpsc::SyncSender<Batch>) -> Result<(), Fail> {
    let stdin = std::io::stdin();
    let mut r = std::io::BufReader::with_capacity(1 << 20, stdin.lock());
    let mut batch = Batch {
        events: Vec::new(),
        lines: Vec::new(),
        bad: None,
    };
    let mut line = Vec::with_capacity(MAX_INPUT_LINE + 2);
    let mut n = 0usize;
    loop {
        let got = stele_writer::log::read_line_bounded(&mut r, &mut line, MAX_INPUT_LINE + 2)
            .map_err(|e| Fail::usage(format!("line {}: reading stdin: {e}", n + 1), None))?;
        if got == 0 {
            break;
        }
        n += 1;
        let text = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(&line);
        if got > line.len() as u64 || text.len() > MAX_INPUT_LINE {
            batch.bad = Some((
                n,
                format!(
                    "the line is longer than {MAX_INPUT_LINE} bytes, the entry size limit (it was not read further)"
                ),
            ));
        } else if !text.iter().all(u8::is_ascii_whitespace) {
            let parsed = std::str::from_utf8(text)
                .map_err(|e| format!("not UTF-8: {e}"))
                .and_then(parse_event);
            match parsed {
                Ok(v) => {
                    batch.events.push(v);
                    batch.lines.push(n);
                }
                Err(why) => batch.bad = Some((n, why)),
            }
        }
        let stop = batch.bad.is_some();
        if stop
            || (!batch.events.is_empty() && (r.buffer().is_empty() || batch.events.len() >= 4096))
        {
            let full = std::mem::replace(
                &mut batch,
                Batch {
                    events: Vec::new(),
                    lines: Vec::new(),
                    bad: None,
                },
            );
            if tx.send(full).is_err() || stop {
                return Ok(()); // the appender stopped (it reports why)
            }
        }
    }
    if !batch.events.is_empty() {
        let _ = tx.send(batch);
    }
    Ok(())
}

// Writes a receipt for every entry from `first` up to the published count,
// reading leaf hashes back from the stored tree in chunks.
fn print_receipts(
    log: &Log,
    first: u64,
    progress: &(std::sync::Mutex<(u64, bool)>, std::sync::Condvar),
) -> Result<(), Fail> {
    let mut out = std::io::stdout().lock();
    let mut printed = first;
    let mut text = String::new();
    loop {
        let (upto, done) = {
            let mut g = progress.0.lock().unwrap();
            while g.0 == printed && !g.1 {
                g = progress.1.wait(g).unwrap();
            }
            *g
        };
        if upto == printed && done {
            return Ok(());
        }
        let to = upto.min(printed + 8192);
        let hashes = log.leaf_hashes(printed, to)?;
        text.clear();
        for (seq, h) in (printed..).zip(&hashes) {
            receipt_line(&mut text, seq, h);
        }
        // Flushed every chunk: a receipt is never held back waiting for more.
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| Fail::usage(format!("write stdout: {e}"), None))?;
        printed = to;
    }
}

// Parses and checks one event. Its size is checked when the entry is built
// (`append_batch` refuses the batch before writing anything, naming the event).
fn parse_event(text: &str) -> Result<Value, String> {
    let v = stele_core::entry::parse_event(text)?;
    stele_writer::log::check_event(&v, false)?;
    Ok(v)
}

// The latest checkpoint's size, signing a new one when it does not reach `need`.
fn default_size(view: &View, log: Option<&Log>, need: u64) -> Result<u64, Fail> {
    let latest = view.latest_checkpoint().map_or(0, |c| c.checkpoint.size);
    match log {
        Some(log) => Ok(sign_for_read(view, log, need)?.min(view.size())),
        None if latest >= need => Ok(latest),
        None => Err(Fail::usage(
            format!("the latest checkpoint covers {latest} entries, fewer than the {need} needed"),
            Some("run `stele checkpoint DIR`, or pass --size".into()),
        )),
    }
}

// The size of the checkpoint a read of the first `need` entries uses: the
// latest, or a new one when the latest does not reach `need` or (on a
// witnessed log) lacks the witnesses' quorum. When the witnesses do not
// reach the quorum, the latest published checkpoint is used, with a note.
fn sign_for_read(view: &View, log: &Log, need: u64) -> Result<u64, Fail> {
    let latest = view.latest_checkpoint();
    let size = latest.map_or(0, |c| c.checkpoint.size);
    if size >= need && latest.is_none_or(|c| log.quorum_met(c)) {
        return Ok(size);
    }
    match log.checkpoint() {
        Ok(c) => Ok(c.checkpoint.size),
        Err(Error::Witness(why)) => {
            eprintln!("stele: note: {why}");
            eprintln!(
                "  reading with the latest published checkpoint ({size} entries) instead; the entries after it are durable"
            );
            Ok(size)
        }
        Err(e) => Err(e.into()),
    }
}

// Who forget and redact name when --by is not given: the login name from
// the environment (anyone can set it) with the uid the kernel reports (no
// one can), e.g. "alice (uid 1000)"; "uid 0" when no name is set.
fn default_by() -> String {
    match os_user() {
        (Some(n), Some(u)) => format!("{n} (uid {u})"),
        (None, Some(u)) => format!("uid {u}"),
        (Some(n), None) => n,
        (None, None) => "unknown".into(),
    }
}

fn os_user() -> (Option<String>, Option<u64>) {
    let name = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok();
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|r| r.split_whitespace().next().map(str::to_string))
                .and_then(|u| u.parse::<u64>().ok())
        });
    (name, uid)
}

// The one stele.access shape (stele_writer::access, docs/FORMAT.md 2.6):
// `read` holds parsed parameters ("export"/"verify" name the kind,
// "entries" a range or list, "tree_size"); the argument list itself is not
// recorded.
fn access_event(
    command: &str,
    _argv: &[String],
    target: &Path,
    origin: &str,
    read: Value,
) -> Value {
    use stele_writer::access::{Entries, Reader};
    let mut read = match read {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    let kind = ["export", "verify"]
        .iter()
        .find_map(|k| read.remove(*k))
        .and_then(|v| v.as_str().map(str::to_string));
    let nums =
        |v: &Value| -> Option<Vec<u64>> { v.as_array()?.iter().map(Value::as_u64).collect() };
    let entries = match read.get("entries").and_then(nums) {
        Some(l) if kind.as_deref() == Some("entries") => Some(Entries::List(l)),
        Some(l) if l.len() == 2 => Some(Entries::Range(l[0], l[1])),
        _ => None,
    };
    if entries.is_some() {
        let _ = read.remove("entries");
    }
    let tree_size = read.remove("tree_size").and_then(|v| v.as_u64());
    let (user, uid) = os_user();
    let reader = Reader::Cli {
        user,
        uid,
        dir: std::path::absolute(target)
            .unwrap_or_else(|_| target.into())
            .display()
            .to_string(),
        origin: origin.to_string(),
    };
    stele_writer::access::access_event(
        &reader,
        command,
        kind.as_deref(),
        entries.as_ref(),
        tree_size,
        Value::Object(read),
    )
}

fn record_elsewhere(access_log: &Path, event: Value) -> Result<(), Fail> {
    record_signed(&Log::open(access_log)?, event)
}

// Appends an access record and signs a checkpoint covering it, so reading a
// log does not leave it with an unsigned tail (a later `stele verify DIR`
// would otherwise say `partial` because of the reads alone).
// On a witnessed log whose witnesses do not reach the quorum, the record is
// durable and covered by the next witnessed checkpoint.
fn record_signed(log: &Log, event: Value) -> Result<(), Fail> {
    let _ = log.append_reserved(event)?;
    match log.checkpoint() {
        Ok(_) => Ok(()),
        Err(Error::Witness(why)) => {
            eprintln!(
                "stele: note: the access record is durable but not yet in a published checkpoint: {why}"
            );
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

// Runs a read command: `plan` checks the request and says what will be read;
// the access is recorded durably; then the returned action produces output.
fn with_access(
    dir: &Path,
    access: &AccessArgs,
    command: &str,
    argv: &[String],
    plan: impl FnOnce(&View, Option<&Log>) -> Result<(Value, Action), Fail>,
) -> Result<u8, Fail> {
    match &access.access_log {
        // A mirror is the origin's log byte for byte: it cannot record an
        // access without ceasing to be a copy (see writer/README.md, Mirrors).
        None if stele_writer::mirror::is_mirror(dir) => {
            eprintln!(
                "stele: {} is a mirror (read-only): this access is not recorded there; pass --access-log DIR to record it",
                shown_path(dir)
            );
            let view = View::open_read_only(dir)?;
            let (_, action) = plan(&view, None)?;
            action(&view)
        }
        None => {
            let log = Log::open(dir)?;
            let (read, action) = {
                let view = log.view();
                plan(&view, Some(&log))?
            };
            let view = log.view();
            record_signed(&log, access_event(command, argv, dir, log.origin(), read))?;
            action(&view)
        }
        Some(other) => {
            let view = View::open_read_only(dir)?;
            let (read, action) = plan(&view, None)?;
            record_elsewhere(other, access_event(command, argv, dir, view.origin(), read))?;
            action(&view)
        }
    }
}

fn progress_bar(total: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

fn export(
    dir: &Path,
    output: &Path,
    range: Option<(u64, u64)>,
    entries: Option<Vec<u64>>,
    reveal: Vec<String>,
    access: &AccessArgs,
    argv: &[String],
) -> Result<u8, Fail> {
    let output = output.to_path_buf();
    // Checked before the read is recorded: nothing is written for a refused output.
    let target = OutTarget::check(Some(dir), &output)?;
    let known = stele_writer::sealed::auditors(dir)?;
    for r in &reveal {
        if !known.contains(r) {
            return Err(Fail::usage(
                format!(
                    "--reveal-to {}: not an auditor of this log",
                    stele_seal::shown_recipient(r)
                ),
                stele_seal::parse_recipient(r)
                    .is_ok()
                    .then(|| format!("add it first: stele auditor add {} {r}", dir.display())),
            ));
        }
    }
    with_access(dir, access, "export", argv, |view, log| {
        let need = match (&range, &entries) {
            (Some((a, b)), _) => {
                if a >= b || *b > view.size() {
                    return Err(Fail::usage(
                        format!(
                            "range {a}..{b} is not a non-empty part of the log's {} entries",
                            view.size()
                        ),
                        None,
                    ));
                }
                *b
            }
            (_, Some(list)) => {
                let mut l = list.clone();
                l.sort_unstable();
                l.dedup();
                match l.last() {
                    Some(&m) if m < view.size() => m + 1,
                    Some(&m) => {
                        return Err(Fail::usage(
                            format!("entry {m} is beyond the log's {} entries", view.size()),
                            None,
                        ));
                    }
                    None => return Err(Fail::usage("--entries lists no entry", None)),
                }
            }
            _ => view.size(),
        };
        // Every export ends with a checkpoint covering all it holds: sign
        // one if the latest does not reach that far and we hold the writer.
        let mut latest = view.latest_checkpoint().map_or(0, |c| c.checkpoint.size);
        if let Some(log) = log {
            latest = sign_for_read(view, log, need)?;
        }
        // Without the writer (--access-log), a whole-log export stops at the
        // latest checkpoint; the entries after it are not signed yet.
        let upto = view.size().min(latest);
        let read = match (&range, &entries) {
            (Some((a, b)), _) => {
                json!({"export": "range", "entries": [a, b], "tree_size": view.size()})
            }
            (_, Some(l)) => json!({"export": "entries", "entries": l, "tree_size": view.size()}),
            _ => json!({"export": "log", "entries": [0, upto], "tree_size": view.size()}),
        };
        if range.is_none() && entries.is_none() && upto < view.size() {
            eprintln!(
                "stele: note: the last {} entries are not covered by a signed checkpoint yet and are left out of the export",
                view.size() - upto
            );
            if log.is_some() {
                // We hold the writer: the checkpoint was not signed because
                // the witness policy's quorum did not cosign (the note above);
                // `stele checkpoint` would fail the same way now.
                eprintln!(
                    "  hint: export again once the witnesses answer (`stele checkpoint {}` signs one then)",
                    shown_path(dir)
                );
            } else {
                eprintln!(
                    "  hint: run `stele checkpoint {}` (it needs the writer's lock and key), then export again",
                    shown_path(dir)
                );
            }
        }
        let mut read = read;
        if !reveal.is_empty() {
            // Who may open the sealed fields of this export (public keys only).
            read["reveal_to"] = json!(reveal);
        }
        let output = output.clone();
        let (range, entries) = (range, entries.clone());
        Ok((
            read,
            Box::new(move |view: &View| {
                let mut out = target.open()?;
                let mut w = std::io::BufWriter::with_capacity(1 << 20, &mut out);
                let pb = progress_bar(view.entries_len(), "export");
                let mut tick = |n: u64| pb.inc(n);
                match (range, entries) {
                    (Some((a, b)), _) => {
                        view.export_range_revealed(a, b, &reveal, &mut w, &mut tick)?
                    }
                    (_, Some(mut l)) => {
                        l.sort_unstable();
                        l.dedup();
                        view.export_entries_revealed(&l, &reveal, &mut w)?
                    }
                    _ => view.export_log_revealed_to(upto, &reveal, &mut w, &mut tick)?,
                }
                pb.finish_and_clear();
                w.flush()
                    .map_err(|e| Fail::usage(format!("write {}: {e}", output.display()), None))?;
                drop(w);
                out.finish(&output)?;
                Ok(0u8)
            }),
        ))
    })
}

/// Where `stele export -o OUT` writes.
pub(crate) enum OutTarget {
    /// `-` or `/dev/stdout`: standard output, streamed.
    Stdout,
    /// A character device or FIFO (`/dev/null`, a named pipe): written
    /// into as it is, never replaced.
    Stream(PathBuf),
    /// A regular file (new or replaced): written to a temporary file of a
    /// random name beside it, then renamed over it.
    File(PathBuf),
}

/// The open output of an export, see [`OutTarget`].
pub(crate) enum OutFile {
    Stdout(std::io::Stdout),
    Stream(std::fs::File),
    Temp(tempfile::NamedTempFile),
}

impl OutTarget {
    /// Refuses an output inside the log directory (`-o DIR/key` replaced
    /// the log's signing key, `-o DIR/entries.jsonl` its entries), one that
    /// exists and is neither a regular file nor a device or FIFO, and a
    /// symbolic link to a regular file (renaming over it would replace the
    /// link, not the file it names). `dir` is `None` for a log that is not
    /// a directory (a PostgreSQL log): nothing of it lies beside the output.
    pub(crate) fn check(dir: Option<&Path>, output: &Path) -> Result<Self, Fail> {
        let bad = |why: String| Fail::usage(format!("-o {}: {why}", output.display()), None);
        if output.as_os_str() == "-" || output == Path::new("/dev/stdout") {
            return Ok(Self::Stdout);
        }
        use std::os::unix::fs::FileTypeExt;
        let stream = |t: std::fs::FileType| t.is_char_device() || t.is_fifo();
        match std::fs::symlink_metadata(output) {
            Ok(m) if m.file_type().is_file() => {}
            Ok(m) if stream(m.file_type()) => return Ok(Self::Stream(output.into())),
            Ok(m) if m.file_type().is_symlink() => {
                return match std::fs::metadata(output) {
                    Ok(t) if stream(t.file_type()) => Ok(Self::Stream(output.into())),
                    _ => Err(bad(
                        "is a symbolic link; pass the path of the file it names (or - for standard output)".into(),
                    )),
                };
            }
            Ok(m) if m.is_dir() => return Err(bad("is a directory".into())),
            Ok(_) => return Err(bad("exists and is not a regular file".into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(bad(e.to_string())),
        }
        let parent = match output.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let canon = |p: &Path| {
            std::fs::canonicalize(p).map_err(|e| Fail::usage(format!("{}: {e}", p.display()), None))
        };
        let Some(dir) = dir else {
            return Ok(Self::File(output.into()));
        };
        let (log, into) = (canon(dir)?, canon(parent)?);
        if into.starts_with(&log) {
            return Err(Fail::usage(
                format!(
                    "-o {}: is inside the log directory {}; an export there would replace or sit among the log's own files",
                    output.display(),
                    dir.display()
                ),
                Some("write the export outside the log directory".into()),
            ));
        }
        Ok(Self::File(output.into()))
    }

    pub(crate) fn open(&self) -> Result<OutFile, Fail> {
        match self {
            Self::Stdout => Ok(OutFile::Stdout(std::io::stdout())),
            Self::Stream(p) => std::fs::OpenOptions::new()
                .write(true)
                .open(p)
                .map(OutFile::Stream)
                .map_err(|e| Fail::usage(format!("open {}: {e}", p.display()), None)),
            Self::File(p) => Ok(OutFile::Temp(temp_beside(p)?)),
        }
    }
}

impl Write for OutFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Stdout(s) => s.write(buf),
            Self::Stream(f) => f.write(buf),
            Self::Temp(t) => t.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Stdout(s) => s.flush(),
            Self::Stream(f) => f.flush(),
            Self::Temp(t) => t.flush(),
        }
    }
}

impl OutFile {
    /// A temporary file is made durable and renamed to `output` (dropped,
    /// and so removed, on any failure); a stream is flushed.
    pub(crate) fn finish(self, output: &Path) -> Result<(), Fail> {
        match self {
            Self::Stdout(mut s) => s
                .flush()
                .map_err(|e| Fail::usage(format!("write standard output: {e}"), None)),
            Self::Stream(_) => Ok(()),
            Self::Temp(t) => persist_temp(t, output),
        }
    }
}

/// A new file of a random name beside `path`, for writing what replaces
/// it: created exclusively (never a planted file or link; `X.partial` or
/// `X.tmp` of the user's was truncated before), mode 0666 less the umask
/// as `File::create` gives, removed when dropped unless persisted.
fn temp_beside(path: &Path) -> Result<tempfile::NamedTempFile, Fail> {
    use std::os::unix::fs::PermissionsExt;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "stele".into(), |n| n.to_string_lossy().into_owned());
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".partial")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(parent)
        .map_err(|e| {
            Fail::usage(
                format!("create a temporary file in {}: {e}", parent.display()),
                None,
            )
        })
}

/// Makes a [`temp_beside`] file durable and renames it to `path`, then
/// fsyncs the directory; on failure the temporary file is removed.
fn persist_temp(t: tempfile::NamedTempFile, path: &Path) -> Result<(), Fail> {
    let io = |what: &str, e: std::io::Error| {
        Fail::usage(format!("{what} {}: {e}", path.display()), None)
    };
    t.as_file()
        .sync_all()
        .map_err(|e| io("fsync (the temporary file of)", e))?;
    let _ = t.persist(path).map_err(|e| io("rename to", e.error))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("fsync directory of", e))
}

fn load_keys(keys: &[String]) -> Result<Vec<VerifierKey>, Fail> {
    if keys.is_empty() {
        return Err(Fail::usage(
            "no verifier key given",
            Some("did you forget --key? `stele key DIR` prints a log's key".into()),
        ));
    }
    keys.iter().map(|k| parse_vkey(k)).collect()
}

/// `--revoked VKEY@SIZE` values (docs/FORMAT.md 15.3).
fn parse_revoked_args(revoked: &[String]) -> Result<Vec<(VerifierKey, u64)>, Fail> {
    revoked
        .iter()
        .map(|r| {
            if is_private_key(r) {
                return Err(private_key_given("--revoked"));
            }
            // The value is not shown (see parse_vkey).
            stele_core::verify::parse_revoked(r).map_err(|e| {
                Fail::usage(
                    format!("--revoked (a value of {} characters, not shown): {e}", r.chars().count()),
                    Some("write the verifier key, @ and the tree size from which it is revoked, e.g. --revoked 'log+1a2b3c4d+AR…@1200'".into()),
                )
            })
        })
        .collect()
}

/// What a monitor or a mirror trusts: the pinned key, keys pinned beside it
/// (a revoked key's published successor) and revoked keys.
pub(crate) struct Pins {
    pub(crate) first: VerifierKey,
    pub(crate) also: Vec<VerifierKey>,
    pub(crate) revoked: Vec<(VerifierKey, u64)>,
}

impl Pins {
    fn keys(&self) -> Vec<VerifierKey> {
        std::iter::once(self.first.clone())
            .chain(self.also.iter().cloned())
            .collect()
    }
}

/// `--key` (at least one, repeatable) and `--revoked` values.
pub(crate) fn load_pins(keys: &[String], revoked: &[String]) -> Result<Pins, Fail> {
    let mut keys = load_keys(keys)?.into_iter();
    let first = keys.next().expect("load_keys refuses an empty list");
    Ok(Pins {
        first,
        also: keys.collect(),
        revoked: parse_revoked_args(revoked)?,
    })
}

/// Whether `s` is (or holds) a private key: a `PRIVATE+KEY+…` string
/// (a log's or a witness's key file) or an age identity.
fn is_private_key(s: &str) -> bool {
    s.contains("PRIVATE+KEY+") || s.contains("AGE-SECRET-KEY-")
}

/// The error for a private key given where a verifier key belongs: it is
/// never shown (a pasted key file would be on the terminal and in logs).
fn private_key_given(what: &str) -> Fail {
    Fail::usage(
        format!("{what}: this is a private key (not shown); a verifier key is needed here"),
        Some("pass the verifier key printed by `stele key DIR` (name+hex8+base64), and keep the private key where it was".into()),
    )
}

fn parse_vkey(k: &str) -> Result<VerifierKey, Fail> {
    if is_private_key(k) {
        return Err(private_key_given("--key"));
    }
    match VerifierKey::parse(k.trim()) {
        Ok(v) => Ok(v),
        // Only a path that exists is read as a key file (bounded); any
        // other value is not echoed.
        Err(e) => match std::fs::metadata(k)
            .ok()
            .map(|_| read_side_file(Path::new(k), "key file"))
            .map(|r| r.map(|b| String::from_utf8_lossy(&b).into_owned()))
        {
            Some(Err(f)) => Err(f),
            Some(Ok(text)) if is_private_key(&text) => {
                Err(private_key_given(&format!("key file {k}")))
            }
            Some(Ok(text)) => VerifierKey::parse(text.trim()).map_err(|e2| {
                Fail::usage(format!("key file {k}: {e2}"), Some("the file must hold a verifier key (name+hex8+base64), as printed by `stele key DIR`".into()))
            }),
            // The argument is not shown: it may be a secret pasted in the
            // wrong place.
            None => Err(Fail::usage(
                format!("--key (a value of {} characters, not shown): not a verifier key ({e}) nor a readable file", k.chars().count()),
                Some("pass the verifier key printed by `stele init` or `stele key DIR` (name+hex8+base64), or a file holding it".into()),
            )),
        },
    }
}

fn load_trusted(path: &Path, keys: &[VerifierKey]) -> Result<stele_core::Checkpoint, Fail> {
    let bytes = read_side_file(path, "trusted checkpoint")?;
    stele_core::checkpoint::parse_trusted(&bytes, keys)
        .map(|sc| sc.checkpoint)
        .map_err(|e| {
            Fail::usage(
                format!("trusted checkpoint {}: {e}", path.display()),
                Some(
                    "pass the checkpoint note printed by `stele checkpoint DIR` for this log"
                        .into(),
                ),
            )
        })
}

fn verify_path(path: &Path, opts: Options) -> Result<Report, Fail> {
    if path.is_dir() {
        let pb = progress_bar(0, "verify");
        let report = verify_dir(path, opts, &mut |done, total| {
            pb.set_length(total);
            pb.set_position(done);
        })?;
        pb.finish_and_clear();
        Ok(report)
    } else {
        let mut f = std::fs::File::open(path)
            .map_err(|e| Fail::usage(format!("open {}: {e}", path.display()), None))?;
        let total = f.metadata().map(|m| m.len()).unwrap_or(0);
        let pb = progress_bar(total, "verify");
        let describe = opts.input.is_some();
        let mut v = stele_writer::ParallelVerifier::new(opts, stele_writer::view::verify_threads());
        // The file's SHA-256 for the report's input block, on a thread of its
        // own over the very bytes verified (a copy of each chunk).
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let hasher = describe.then(|| {
            std::thread::spawn(move || {
                use sha2::Digest as _;
                let mut h = sha2::Sha256::new();
                for chunk in rx {
                    h.update(&chunk);
                }
                stele_core::Hash(h.finalize().into()).to_hex()
            })
        });
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f
                .read(&mut buf)
                .map_err(|e| Fail::usage(format!("read {}: {e}", path.display()), None))?;
            if n == 0 {
                break;
            }
            if hasher.is_some() {
                // The hasher only stops when this sender is dropped.
                let _ = tx.send(buf[..n].to_vec());
            }
            v.push(&buf[..n]);
            pb.inc(n as u64);
        }
        drop(tx);
        pb.finish_and_clear();
        let mut report = v.finish();
        if let (Some(input), Some(h)) = (report.input.as_mut(), hasher) {
            input.sha256 = h.join().ok();
        }
        Ok(report)
    }
}

/// How `stele verify` reports.
struct VerifyOutput {
    json: bool,
    allow_unsigned_tail: bool,
    /// `--revoked VKEY@SIZE` values.
    revoked: Vec<String>,
}

/// Now, as the report's `verified_at` (UTC, whole seconds).
fn now_utc() -> Option<String> {
    let t = stele_core::entry::Timestamp::from_unix_micros(stele_writer::log::system_micros())?;
    let s = t.to_string();
    Some(format!("{}Z", s.get(..19)?))
}

/// What `stele verify` trusts: keys and an optional witness policy.
struct Pinned<'a> {
    keys: &'a [String],
    policy: Option<&'a Path>,
}

fn verify(
    path: &Path,
    Pinned { keys, policy }: Pinned<'_>,
    trusted: Option<&Path>,
    out: VerifyOutput,
    (identity, tsa_ca): (Option<&Path>, Option<&Path>),
    access: &AccessArgs,
    argv: &[String],
) -> Result<u8, Fail> {
    let policy = policy.map(witness_cli::load_policy).transpose()?;
    // A policy's `log` lines pin keys too.
    let keys = match &policy {
        Some(p) if keys.is_empty() && !p.logs.is_empty() => Vec::new(),
        _ => load_keys(keys)?,
    };
    let mut opts = Options::new(keys);
    if let Some(p) = policy {
        opts.set_policy(p);
    }
    let mut reveal = Vec::new();
    if let Some(id) = identity {
        opts.opener = Some(load_opener(id)?);
        if path.is_dir() {
            // A log directory is verified as an export revealed to the
            // identity's recipients that are auditors of the log.
            reveal = dir_reveal(path, id)?;
        }
    }
    opts.revoked = parse_revoked_args(&out.revoked)?;
    if let Some(ca) = tsa_ca {
        opts.tsa = Some(stele_core::timestamp::TokenCheckerHandle(
            std::sync::Arc::new(load_tsa_ca(ca, "--tsa-ca")?),
        ));
    }
    if let Some(t) = trusted {
        opts.trusted = Some(load_trusted(t, &opts.keys)?);
    }
    opts.input = Some(stele_core::verify::InputMeta {
        name: Some(path.display().to_string()),
        verified_at: now_utc(),
        sha256: false,
    });
    // A log directory records who verified it, after the check so the check
    // sees the bytes exactly as they were; whether it can is found first, so
    // a verdict is never followed by "could not record it".
    let mirror = path.is_dir() && stele_writer::mirror::is_mirror(path);
    if mirror && access.access_log.is_none() {
        // A mirror is the origin's log byte for byte: it records nothing.
        eprintln!(
            "stele: {} is a mirror (read-only): this verification is not recorded there; pass --access-log DIR to record it",
            shown_path(path)
        );
    } else if path.is_dir() && access.access_log.is_none() {
        can_record_in(path)?;
    }
    let report = if reveal.is_empty() {
        verify_path(path, opts)?
    } else {
        let pb = progress_bar(0, "verify");
        let r = stele_writer::verify_dir_revealed(path, opts, &reveal, &mut |done, total| {
            pb.set_length(total);
            pb.set_position(done);
        })?;
        pb.finish_and_clear();
        r
    };
    let mut access_err = None;
    if path.is_dir() && (access.access_log.is_some() || !mirror) {
        let mut read = json!({"verify": "log", "entries": [0, report.entries], "tree_size": report.tree_size, "verdict": report.verdict});
        if !reveal.is_empty() {
            // Openings were read (public keys only).
            read["reveal_to"] = json!(reveal);
        }
        let event = access_event(
            "verify",
            argv,
            path,
            report.origin.as_deref().unwrap_or(""),
            read,
        );
        let r = match &access.access_log {
            Some(other) => record_elsewhere(other, event),
            // A log that did not verify is recorded in, never signed: a
            // checkpoint would cover the very entries this check found
            // unsigned or changed, and the next check would pass.
            None if report.verdict != Verdict::Verified => Log::open(path)
                .and_then(|log| log.append_reserved(event))
                .map(|_| {
                    if report.verdict == Verdict::Partial {
                        eprintln!(
                            "stele: note: this verification is recorded in {}; no checkpoint was signed, since a check does not sign entries it found unsigned (`stele checkpoint {}` signs them, as the writer's next checkpoint would)",
                            shown_path(path),
                            shown_path(path)
                        );
                    } else {
                        eprintln!(
                            "stele: note: this verification is recorded in {}, but no checkpoint was signed: the log did not verify",
                            shown_path(path)
                        );
                    }
                })
                .map_err(Fail::from),
            None => Log::open(path)
                .map_err(Fail::from)
                .and_then(|log| record_signed(&log, event)),
        };
        access_err = r.err();
    }
    if out.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serializes")
        );
    } else {
        print!("{}", report_text(&report, out.allow_unsigned_tail));
    }
    let ok = report.verdict == Verdict::Verified
        || (report.verdict == Verdict::Partial && out.allow_unsigned_tail);
    let code = u8::from(!ok);
    if let Some(f) = access_err {
        eprintln!(
            "stele: error: the verification was not recorded as a stele.access entry: {}",
            f.msg
        );
        match (f.hint, &access.access_log) {
            (Some(h), _) => eprintln!("  hint: {h}"),
            (None, None) => eprintln!("  hint: {RECORD_ELSEWHERE}"),
            (None, Some(_)) => {}
        }
        // A verdict that is not ok exits 1 as always (README); the failure
        // to record makes an ok verdict exit 2.
        return Ok(if ok { 2 } else { 1 });
    }
    Ok(code)
}

// The recipients of the identities in `id` that are auditors of the log in
// `dir` (their wraps open its data keys); a note when there is none.
fn dir_reveal(dir: &Path, id: &Path) -> Result<Vec<String>, Fail> {
    let auditors = stele_writer::sealed::auditors(dir)?;
    let mine: Vec<String> = stele_writer::sealed::load_identities(id)?
        .iter()
        .map(stele_seal::Identity::recipient)
        .filter(|r| auditors.contains(r))
        .collect();
    if mine.is_empty() {
        eprintln!(
            "stele: note: no identity in {} is an auditor of this log (stele auditor list {}): its sealed values stay sealed",
            shown_path(id),
            shown_path(dir)
        );
    }
    Ok(mine)
}

const RECORD_ELSEWHERE: &str =
    "pass --access-log OTHER_DIR to record the access in another log (this one is then only read)";

// Whether the access entry can be appended to the log in `dir`, checked
// without changing anything: the directory is a log, no writer holds it, its
// entries file opens for writing (not a read-only mount) and its key loads.
fn can_record_in(dir: &Path) -> Result<(), Fail> {
    let (_, key_path) = stele_writer::log::log_config(dir)?;
    if stele_writer::log::is_locked(dir)? {
        return Err(Error::Locked { dir: dir.into() }.into());
    }
    let entries = dir.join(stele_writer::log::files::ENTRIES);
    let cannot = |what: String| {
        Fail::usage(
            format!(
                "cannot record this verification in {} (access auditing): {what}",
                dir.display()
            ),
            Some(RECORD_ELSEWHERE.into()),
        )
    };
    let _ = std::fs::OpenOptions::new()
        .append(true)
        .open(&entries)
        .map_err(|e| cannot(format!("open {} for writing: {e}", entries.display())))?;
    let _ = key::load(&key_path).map_err(|e| cannot(e.to_string()))?;
    Ok(())
}

/// Characters a terminal would act on or that reorder or hide text: controls
/// other than line feed (ESC sequences could rewrite the verdict line), and
/// the bidirectional and zero-width format characters.
fn terminal_unsafe(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(c, '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// `s` with every [`terminal_unsafe`] character written as a `\u{…}` escape
/// (in JSON text, `json` writes `\uXXXX`, the same value).
fn terminal_safe(s: &str, json: bool) -> std::borrow::Cow<'_, str> {
    use std::fmt::Write as _;
    if !s.chars().any(terminal_unsafe) {
        return s.into();
    }
    let mut o = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if !terminal_unsafe(c) {
            o.push(c);
        } else if json {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                let _ = write!(o, "\\u{u:04x}");
            }
        } else {
            let _ = write!(o, "\\u{{{:04X}}}", u32::from(c));
        }
    }
    o.into()
}

/// A path for a note or message on the terminal: [`terminal_safe`], since
/// a directory or file name may hold an ESC sequence or a bidi override.
pub(crate) fn shown_path(p: &Path) -> String {
    terminal_safe(&p.display().to_string(), false).into_owned()
}

/// A writer for entry lines bound for a terminal: each complete line is
/// written with [`terminal_safe`] JSON escapes (the same JSON values; the
/// bytes differ only where a terminal would have acted on them).
struct TerminalLines<W: Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: Write> Write for TerminalLines<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if let Some(end) = self.pending.iter().rposition(|&b| b == b'\n') {
            let rest = self.pending.split_off(end + 1);
            let text = String::from_utf8_lossy(&self.pending);
            self.inner
                .write_all(terminal_safe(&text, true).as_bytes())?;
            self.pending = rest;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            let text = String::from_utf8_lossy(&self.pending).into_owned();
            self.pending.clear();
            self.inner
                .write_all(terminal_safe(&text, true).as_bytes())?;
        }
        self.inner.flush()
    }
}

/// `stele verify`'s text output (pinned by the golden tests in
/// writer/tests/golden.rs), safe for a terminal ([`terminal_safe`]: the
/// file name comes from whoever named the download).
fn report_text(r: &Report, allow_unsigned_tail: bool) -> String {
    terminal_safe(&report_text_raw(r, allow_unsigned_tail), false).into_owned()
}

fn report_text_raw(r: &Report, allow_unsigned_tail: bool) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let verdict = match r.verdict {
        Verdict::Verified => "verified",
        Verdict::Partial => "PARTIAL",
        Verdict::Unverified => "unverified",
        Verdict::Tampered => "TAMPERED",
        Verdict::NotALog => "NOT A STELE EXPORT",
    };
    if r.verdict == Verdict::NotALog {
        let _ = writeln!(o, "{verdict}: {} bytes", r.bytes);
    } else {
        // Which entries a range holds: a summary that names only a count
        // hides entries an intermediary left out.
        let which = match (r.kind, r.first_seq, r.last_seq) {
            ("range", Some(a), Some(b)) => format!(" of entries {a}..{b}"),
            _ => String::new(),
        };
        let _ = writeln!(
            o,
            "{verdict}: {} entries, {} checkpoints, {} bytes ({} export{which})",
            r.entries, r.checkpoints_total, r.bytes, r.kind
        );
    }
    if let (Some(s), Some(root)) = (r.tree_size, &r.root) {
        let _ = writeln!(
            o,
            "tree size {s}, root {root}, signed by {} ({})",
            r.key_name.as_deref().unwrap_or("?"),
            r.key_id.as_deref().unwrap_or("?")
        );
    }
    if let Some(q) = &r.quorum {
        let by = if q.cosigned_by.is_empty() {
            "no witness of the policy".to_string()
        } else {
            q.cosigned_by.join(", ")
        };
        let _ = writeln!(
            o,
            "witness quorum {}: {}, cosigned by {by}",
            q.name,
            if q.met { "met" } else { "NOT MET" }
        );
    }
    if r.verdict == Verdict::Partial {
        let _ = writeln!(
            o,
            "entries from index {} on are NOT signed by the trusted key{}",
            r.unsigned_from.or(r.tree_size).unwrap_or(0),
            if allow_unsigned_tail {
                " (accepted: --allow-unsigned-tail)"
            } else {
                "\n  hint: for a live log whose newest entries are not signed yet, pass --allow-unsigned-tail (the log's writer signs them with `stele checkpoint DIR`)"
            }
        );
    }
    for f in &r.failures {
        let _ = write!(o, "failure {} (line {}): {}", f.code, f.line, f.message);
        match f.cause.and_then(|c| r.failures.get(c)) {
            Some(c) => {
                let _ = writeln!(o, " [follows from the {} at line {}]", c.code, c.line);
            }
            None => o.push('\n'),
        }
    }
    if r.failures_total > r.failures.len() as u64 {
        let _ = writeln!(
            o,
            "... and {} more failures",
            r.failures_total - r.failures.len() as u64
        );
    }
    for n in &r.notices {
        let _ = writeln!(o, "notice {}: {}", n.code, n.message);
    }
    if let Some(s) = &r.sealed {
        let _ = writeln!(
            o,
            "sealed values: {} ({} opened and checked, {} sealed, {} forgotten, {} redacted){}",
            s.values,
            s.opened,
            s.sealed,
            s.forgotten,
            s.redacted,
            // What a record says was destroyed is not proved by the log
            // (FORMAT 13.6): say whose word it is.
            if s.forgotten + s.redacted > 0 {
                "; forgotten and redacted are the exporter's statements, not checked against the log's stele.forget and stele.redact events"
            } else {
                ""
            }
        );
    }
    for k in r.keys.iter().flatten() {
        let id = k.key.split('+').nth(1).unwrap_or("?");
        let sizes = match k.to {
            Some(to) => format!("sizes {}..{}", k.from, to.saturating_sub(1)),
            None => format!("sizes {} on", k.from),
        };
        let how = match (k.entry, k.signed) {
            (0, _) => "genesis".to_string(),
            (e, Some(true)) => format!("entry {e}, signed by the key it replaces"),
            (e, Some(false)) => format!("entry {e}, NOT signed by the key it replaces"),
            (e, None) => format!("entry {e}, no checkpoint covers it yet"),
        };
        let trusted = match (k.trusted, k.revoked_from) {
            (false, _) => "not trusted".to_string(),
            (true, Some(s)) => format!("trusted below size {s} only (revoked from it)"),
            (true, None) => "trusted".to_string(),
        };
        let _ = writeln!(o, "key {id}: {sizes} ({how}), {trusted}");
    }
    for t in r.timestamps.iter().flatten() {
        if let (Some(time), Some(tsa)) = (&t.time, &t.tsa) {
            // A token dates whatever note it was asked for: it says
            // something about this log only when the note is its own.
            let signed = r
                .checkpoints
                .iter()
                .any(|c| c.size == t.size && c.trusted && c.status == "ok");
            let listed = r.checkpoints_total <= r.checkpoints.len() as u64;
            let whose = match (signed, listed) {
                (true, _) => "",
                (false, true) => ", but that checkpoint is NOT signed by a trusted key",
                (false, false) => " (that checkpoint's signature: see its status)",
            };
            let _ = writeln!(
                o,
                "checkpoint {} existed by {time}, attested by {tsa} (timestamp at line {}){whose}",
                t.size, t.line
            );
        }
    }
    if let Some(i) = &r.input {
        let _ = writeln!(
            o,
            "input: {} ({} bytes, sha256 {}), {}",
            i.name.as_deref().unwrap_or("-"),
            i.bytes,
            i.sha256.as_deref().unwrap_or("-"),
            i.verifier
        );
    }
    o
}

/// `stele key rotate DIR [--overlap N]`.
// Witnesses trust the log keys their operators list: after the overlap,
// checkpoints signed by the new key alone are refused until each adds it.
fn witnessed_rotation_note(new: &VerifierKey) {
    eprintln!(
        "stele: warning: this log is witnessed; its witnesses trust the keys their operators listed, so once the old key stops co-signing they refuse its checkpoints (nothing is published) until each adds the new key: stele witness add-log WITNESS_DIR --key {new}"
    );
}

fn key_rotate(dir: &Path, overlap: u64) -> Result<u8, Fail> {
    let fs = LogOptions::default().fs;
    if !stele_writer::log::is_locked(dir)? {
        let log = Log::open(dir)?;
        let r = log.rotate_key(overlap)?;
        println!("{}", r.key);
        eprintln!(
            "stele: the log's key is now {} (file {}, mode 0600): it signs from tree size {} on (stele.key event at entry {}); the old key {} co-signs the first {overlap} checkpoint(s) from there",
            r.key.id_hex(),
            shown_path(&r.key_file),
            r.from,
            r.entry,
            r.replaces.id_hex()
        );
        if log.witnessed() {
            witnessed_rotation_note(&r.key);
        }
        return Ok(0);
    }
    // A running writer holds the log: hand the rotation to it (its
    // checkpoint timer completes it) and wait until the configuration names
    // the new key.
    let after = View::open_read_only(dir)?.size();
    let file = stele_writer::log::request_rotation(dir, fs.as_ref(), overlap, after)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        let (_, current) = stele_writer::log::log_config(dir)?;
        if current == file {
            let k = key::load(&file)?;
            println!("{}", k.verifier());
            eprintln!(
                "stele: the running writer rotated the log's key to {} (file {}, mode 0600); the old key co-signs the first {overlap} checkpoint(s) from the stele.key event",
                k.verifier().id_hex(),
                shown_path(&file)
            );
            if stele_writer::log::remembers_witness_policy(dir).unwrap_or(false) {
                witnessed_rotation_note(&k.verifier());
            }
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(Fail::usage(
        format!(
            "{} is held by a running writer that has not completed the rotation within 120 s; the new key is in {} and the rotation completes when that writer's checkpoint timer runs or the log is next opened",
            dir.display(),
            file.display()
        ),
        Some("a writer without a checkpoint interval (stele append) completes it when it next opens the log".into()),
    ))
}

fn token(cmd: TokenCmd) -> Result<u8, Fail> {
    match cmd {
        TokenCmd::Add { file, name, scope } => {
            let t = serve::add_token(&file, &name, scope)?;
            println!("{t}");
            eprintln!(
                "stele: token {name:?} added to {} (only its SHA-256 is stored; this is the only time it is shown). \
A running `stele serve` accepts it within a second.",
                shown_path(&file)
            );
            Ok(0)
        }
        TokenCmd::List { file } => {
            for (name, scopes) in serve::list_tokens(&file)? {
                println!("{name} {}", scopes.render());
            }
            Ok(0)
        }
        TokenCmd::Remove { file, name } => {
            serve::remove_token(&file, &name)?;
            eprintln!(
                "stele: token {name:?} removed from {}; a running `stele serve` refuses it within a second",
                shown_path(&file)
            );
            Ok(0)
        }
    }
}

fn serve(a: ServeArgs) -> Result<u8, Fail> {
    let shown = match &a.db {
        Some(db) => cluster_cli::shown(db),
        None => a
            .dir
            .as_deref()
            .unwrap_or(Path::new(""))
            .display()
            .to_string(),
    };
    let mut c = serve::Config::new(a.dir.clone().unwrap_or_default());
    if let Some(db) = &a.db {
        c.cluster = Some(cluster_cli::location(db, a.objects.as_deref()));
        c.signing_key = a.signing_key.clone();
        c.seal_key = a.seal_key.clone();
    }
    c.listen = a.listen;
    c.tokens = a.tokens;
    c.reads = if a.public_reads {
        Some(serve::Reads::Public)
    } else if a.public_hashes {
        Some(serve::Reads::PublicHashes)
    } else if a.token_reads {
        Some(serve::Reads::Token)
    } else {
        None
    };
    c.max_body = a.max_body;
    c.max_events = a.max_events;
    c.max_inflight_bytes = a.max_inflight;
    c.body_timeout = a.body_timeout;
    c.limits = serve::Limits {
        max_connections: a.max_connections,
        max_connections_per_ip: a.max_connections_per_ip,
        header_timeout: a.header_timeout,
        max_header_bytes: a.max_header,
        idle_timeout: a.idle_timeout,
        write_timeout: a.write_timeout,
        min_write_rate: a.min_write_rate,
        write_rate_window: a.write_rate_window,
        shutdown_deadline: a.shutdown_deadline,
    };
    c.max_exports = a.max_exports;
    c.max_read_bytes = a.max_read_bytes;
    c.access_per_minute = a.access_rate;
    c.read_sign_interval = a.read_sign_interval;
    c.cors_origins = a.cors_origin;
    c.trusted_proxies = a.trust_proxy;
    c.proxy_header = a.proxy_header;
    c.checkpoint_every = a.checkpoint_every;
    c.checkpoint_interval = a.checkpoint_interval;
    c.web = a.web;
    c.page_size = a.page_size;
    c.read_only = a.read_only;
    c.access_log = a.access_log.clone();
    if let Some(p) = &a.policy {
        c.cosign = Some(std::sync::Arc::new(witness_cli::cosigner(p)?));
    }
    // Read before binding: a CA file that is not one fails the start.
    let tsa_ca =
        a.ca.as_deref()
            .map(|p| load_tsa_ca(p, "--ca"))
            .transpose()?;
    let anchor_stats = a
        .tsa
        .as_ref()
        .map(|_| std::sync::Arc::new(stele_writer::anchor::AnchorStats::default()));
    c.anchor_stats = anchor_stats.clone();
    let server = serve::Server::bind(c)?;
    let log = server.log().cloned();
    if let Some(r) = log.as_ref().and_then(|l| l.recovery()) {
        eprintln!(
            "stele serve: recovery on open cut {} bytes at offset {} ({}); recorded as entry {}",
            r.dropped_bytes, r.offset, r.reason, r.seq
        );
    }
    // SIGTERM and SIGINT handled from here on, before anyone can connect.
    let stop = serve::shutdown_signal(&server.runtime());
    // The first line on stdout: tests and scripts read the port from it.
    println!("stele serve: listening on http://{}", server.local_addr());
    eprintln!(
        "stele serve: log {}{} ({} entries), reads {}, page {}",
        shown,
        if log.is_none() && server.cluster().is_none() {
            match &a.access_log {
                Some(d) => format!(" read-only, reads recorded in {}", d.display()),
                None => " read-only, reads not recorded, no sealed-field openings".into(),
            }
        } else {
            String::new()
        },
        server.size(),
        match server.reads() {
            serve::Reads::Public => "public",
            serve::Reads::PublicHashes => "public for hashes, a token for entries",
            _ => "need a token",
        },
        server.web().map_or("off (no --web DIR)".to_string(), |w| w
            .display()
            .to_string())
    );
    for w in server.warnings() {
        eprintln!("stele serve: warning: {w}");
    }
    // A cluster's front-ends anchor in turn (cluster/anchor.rs).
    type Attempt = Box<dyn FnMut(Duration) -> Result<Option<Anchored>, Error> + Send>;
    let attempt: Option<Attempt> = match (&a.tsa, &log, server.cluster()) {
        (Some(url), Some(l), _) => {
            let (l, url, ca) = (l.clone(), url.clone(), tsa_ca);
            Some(Box::new(move |t| {
                stele_writer::anchor::anchor(&l, &url, ca.as_ref(), false, t).map(Some)
            }))
        }
        (Some(url), None, Some(c)) => {
            let (c, url, ca, rt) = (c.clone(), url.clone(), tsa_ca, server.runtime());
            Some(Box::new(move |t| {
                c.anchor_blocking(&rt, &url, ca.as_ref(), false, t)
            }))
        }
        _ => None,
    };
    let anchoring = match (&a.tsa, a.anchor_every, attempt) {
        (Some(url), Some(every), Some(attempt)) => {
            if a.ca.is_none() {
                eprintln!(
                    "stele serve: warning: timestamp tokens from {url} are kept unchecked (pass --ca FILE to check each against the TSA's CA first)"
                );
            }
            let (tx, rx) = std::sync::mpsc::channel();
            let stats = anchor_stats.clone().unwrap_or_default();
            Some((tx, anchor_loop(attempt, url.clone(), stats, every, rx)))
        }
        _ => None,
    };
    let stopped = server.run(async {
        stop.await;
        eprintln!("stele serve: shutting down: no new connections; finishing in-flight requests");
    })?;
    if let Some((tx, t)) = anchoring {
        drop(tx);
        let _ = t.join();
    }
    let signed = match stopped.checkpoint {
        Ok(c) => c.checkpoint.size,
        Err(e) => {
            eprintln!("stele serve: final checkpoint failed: {e}");
            log.map_or(0, |l| {
                l.view()
                    .latest_checkpoint()
                    .map_or(0, |c| c.checkpoint.size)
            })
        }
    };
    if stopped.dropped_connections > 0 {
        eprintln!(
            "stele serve: dropped {} connections still busy at the shutdown deadline",
            stopped.dropped_connections
        );
    }
    eprintln!(
        "stele serve: stopped; {} entries, final checkpoint at size {signed}",
        stopped.size
    );
    Ok(0)
}

/// A TSA CA file (`--ca`, `--tsa-ca`): PEM or DER certificates.
/// The most read of a small side file (a verifier key, a trusted
/// checkpoint, a TSA's CA certificate): each is a few KiB at most.
const SIDE_FILE_LIMIT: u64 = 1 << 20;

/// Reads a small side file, refusing one over [`SIDE_FILE_LIMIT`] (or a
/// device like /dev/zero that never ends) with an error naming it; memory
/// stays bounded.
fn read_side_file(path: &Path, what: &str) -> Result<Vec<u8>, Fail> {
    let f = std::fs::File::open(path)
        .map_err(|e| Fail::usage(format!("{what} {}: {e}", path.display()), None))?;
    let mut bytes = Vec::new();
    let _ = f
        .take(SIDE_FILE_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Fail::usage(format!("{what} {}: {e}", path.display()), None))?;
    if bytes.len() as u64 > SIDE_FILE_LIMIT {
        return Err(Fail::usage(
            format!(
                "{what} {}: more than {} MiB; this is not a {what}",
                path.display(),
                SIDE_FILE_LIMIT >> 20
            ),
            None,
        ));
    }
    Ok(bytes)
}

fn load_tsa_ca(path: &Path, flag: &str) -> Result<stele_tsa::TsaChecker, Fail> {
    let bytes = read_side_file(path, &format!("{flag} CA certificate"))?;
    stele_tsa::TsaChecker::from_pem_or_der(&bytes).map_err(|e| {
        Fail::usage(
            format!("{flag} {}: {e}", path.display()),
            Some("give the TSA's CA certificate, as PEM (openssl x509 -outform PEM) or DER".into()),
        )
    })
}

// `stele anchor DIR` or `stele anchor --db URL [--objects URL] --signing-key FILE`.
type ClusterArgs<'a> = (&'a str, Option<&'a str>, Option<PathBuf>);

fn anchor(
    dir: Option<&Path>,
    cluster: Option<ClusterArgs<'_>>,
    url: &str,
    ca: Option<&Path>,
    timeout: Duration,
) -> Result<u8, Fail> {
    let ca = ca.map(|p| load_tsa_ca(p, "--ca")).transpose()?;
    let done = match cluster {
        Some((db, objects, key)) => cluster_cli::anchor(
            db,
            objects,
            key.as_deref().unwrap_or(Path::new("")),
            url,
            ca.as_ref(),
            timeout,
        )?,
        None => {
            let log = Log::open(dir.unwrap_or(Path::new("")))?;
            stele_writer::anchor::anchor(&log, url, ca.as_ref(), true, timeout)?
        }
    };
    match done {
        Anchored::New(size, Some(a)) => println!(
            "anchored checkpoint {size}: existed by {}, attested by {}",
            a.time, a.tsa
        ),
        Anchored::New(size, None) => {
            println!("anchored checkpoint {size} (token not checked: pass --ca FILE to check it)")
        }
        Anchored::Already(size) => {
            println!("checkpoint {size} is already anchored")
        }
    }
    Ok(0)
}

/// `stele serve --tsa URL --anchor-every D [--ca FILE]`: anchors the latest
/// checkpoint now and every `every` until `stop` says so (or is dropped);
/// with `ca`, a token that does not verify against it is not kept.
fn anchor_loop(
    mut attempt: impl FnMut(Duration) -> Result<Option<Anchored>, Error> + Send + 'static,
    url: String,
    stats: std::sync::Arc<stele_writer::anchor::AnchorStats>,
    every: Duration,
    stop: std::sync::mpsc::Receiver<()>,
) -> std::thread::JoinHandle<()> {
    use std::sync::atomic::Ordering::Relaxed;
    std::thread::spawn(move || {
        loop {
            let timeout = every.clamp(Duration::from_secs(5), Duration::from_secs(60));
            match attempt(timeout) {
                Ok(Some(Anchored::New(size, a))) => {
                    let _ = stats.anchored.fetch_add(1, Relaxed);
                    stats.size.store(size, Relaxed);
                    match a {
                        Some(a) => eprintln!(
                            "stele serve: anchored checkpoint {size} with {url}: existed by {}, attested by {}",
                            a.time, a.tsa
                        ),
                        None => eprintln!("stele serve: anchored checkpoint {size} with {url}"),
                    }
                }
                // Anchored already, or by another front-end now.
                Ok(Some(Anchored::Already(_)) | None) => {}
                Err(e) => {
                    let _ = stats.failed.fetch_add(1, Relaxed);
                    eprintln!(
                        "stele serve: anchoring with {url} failed (retried in {every:?}): {e}"
                    )
                }
            }
            match stop.recv_timeout(every) {
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                _ => return,
            }
        }
    })
}

fn load_opener(path: &Path) -> Result<stele_core::sealed::OpenerHandle, Fail> {
    let ids = stele_writer::sealed::load_identities(path).map_err(|e| match e {
        Error::KeyPermissions { .. } => {
            Fail::usage(e.to_string(), Some(format!("chmod 600 {}", path.display())))
        }
        e => Fail::usage(
            e.to_string(),
            Some("pass the file age-keygen wrote (AGE-SECRET-KEY-1…)".into()),
        ),
    })?;
    Ok(stele_core::sealed::OpenerHandle(std::sync::Arc::new(
        stele_seal::AgeOpener::new(ids),
    )))
}

// FORMAT 13.8: verify first; only a verified export is revealed.
fn reveal(path: &Path, keys: &[String], identity: &Path) -> Result<u8, Fail> {
    use std::io::Seek as _;
    use stele_core::sealed::ValueState;
    let keys = load_keys(keys)?;
    let mut opts = Options::new(keys);
    opts.opener = Some(load_opener(identity)?);
    if path.is_dir() {
        return Err(Fail::usage(
            format!(
                "{} is a directory; reveal reads an export file",
                path.display()
            ),
            Some("make one with `stele export DIR -o FILE --reveal-to age1…`".into()),
        ));
    }
    // The file is read once, into a private copy (unlinked at once, so no
    // other process can change it; the export's bytes, ciphertext only) while
    // it is verified; the entries printed come from that copy after it
    // verified. A file changed, a pipe or a FIFO fed twice, can never get
    // unverified lines printed.
    let mut copy = tempfile::tempfile().map_err(|e| {
        Fail::usage(
            format!(
                "make a private temporary file in {}: {e}",
                std::env::temp_dir().display()
            ),
            Some("set TMPDIR to a writable directory with room for the export".into()),
        )
    })?;
    let meta = |sha256| stele_core::verify::InputMeta {
        name: None,
        verified_at: None,
        sha256,
    };
    let mut opts = opts;
    opts.input = Some(meta(true));
    let report = {
        let input = std::fs::File::open(path)
            .map_err(|e| Fail::usage(format!("open {}: {e}", path.display()), None))?;
        let mut input = std::io::BufReader::with_capacity(1 << 20, input);
        let mut v =
            stele_writer::ParallelVerifier::new(opts.clone(), stele_writer::view::verify_threads());
        let mut w = std::io::BufWriter::with_capacity(1 << 20, &mut copy);
        loop {
            let chunk = input
                .fill_buf()
                .map_err(|e| Fail::usage(format!("read {}: {e}", path.display()), None))?;
            if chunk.is_empty() {
                break;
            }
            v.push(chunk);
            w.write_all(chunk).map_err(|e| {
                Fail::usage(format!("write the private copy of the export: {e}"), None)
            })?;
            let n = chunk.len();
            input.consume(n);
        }
        w.flush()
            .map_err(|e| Fail::usage(format!("write the private copy of the export: {e}"), None))?;
        v.finish()
    };
    if report.verdict != Verdict::Verified {
        // stdout carries revealed entries only: the report goes to stderr.
        eprint!("{}", report_text(&report, false));
        eprintln!(
            "error: the export does not verify (verdict {}); nothing is revealed",
            report.verdict.as_str()
        );
        return Ok(1);
    }
    let _ = copy
        .seek(std::io::SeekFrom::Start(0))
        .map_err(|e| Fail::usage(format!("read the private copy of the export: {e}"), None))?;
    let mut r = std::io::BufReader::new(copy);
    let mut v = stele_core::StreamVerifier::new(opts);
    v.collect_sealed();
    if let Some(o) = &report.origin {
        v.open_for_origin(o);
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut held: std::collections::VecDeque<(u64, Value)> = Default::default();
    let mut states: std::collections::HashMap<u64, Vec<(String, ValueState)>> = Default::default();
    let mut line = Vec::new();
    let mut emit = |held: &mut std::collections::VecDeque<(u64, Value)>,
                    states: &mut std::collections::HashMap<u64, Vec<(String, ValueState)>>,
                    all: bool|
     -> Result<(), Fail> {
        while held.len() > usize::from(!all) {
            let (i, mut entry) = held.pop_front().expect("non-empty");
            for (ptr, st) in states.remove(&i).unwrap_or_default() {
                let Ok(toks) = stele_core::sealed::pointer_tokens(&ptr) else {
                    continue;
                };
                let mut slot = Some(&mut entry["event"]);
                for t in &toks {
                    slot = slot.and_then(|s| match s {
                        Value::Object(m) => m.get_mut(t),
                        Value::Array(a) => t.parse::<usize>().ok().and_then(|n| a.get_mut(n)),
                        _ => None,
                    });
                }
                let Some(slot) = slot else { continue };
                match st {
                    ValueState::Opened(text) => {
                        *slot = serde_json::from_str(&text).unwrap_or(Value::Null);
                    }
                    other => {
                        let word = match other {
                            ValueState::Forgotten => "forgotten",
                            ValueState::Redacted => "redacted",
                            ValueState::Mismatch => "mismatch",
                            _ => "sealed",
                        };
                        if let Some(ph) = slot.get_mut("stele.sealed") {
                            ph["state"] = json!(word);
                        }
                    }
                }
            }
            // Control and bidi characters (sealed values and any other
            // content) as JSON escapes, the same values: an appender must
            // not drive the auditor's terminal (CSI, OSC 8 links, reordering).
            writeln!(out, "{}", terminal_safe(&entry.to_string(), true))
                .map_err(|e| Fail::usage(format!("write stdout: {e}"), None))?;
        }
        Ok(())
    };
    let mut line_no = 0u64;
    loop {
        line.clear();
        line_no += 1;
        // Bounded like every reader: no line of a verified export is longer.
        let n = Read::take(&mut r, MAX_REVEAL_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| Fail::usage(format!("read {}: {e}", path.display()), None))?;
        if n == 0 {
            break;
        }
        if line.len() > MAX_REVEAL_LINE {
            return Err(Fail::usage(
                format!(
                    "{} line {line_no} is longer than {MAX_REVEAL_LINE} bytes (the private copy changed since it verified); nothing more is revealed",
                    path.display()
                ),
                None,
            ));
        }
        v.push(&line);
        for (i, p, st) in v.take_sealed() {
            states.entry(i).or_default().push((p, st));
        }
        if line.first() == Some(&b'{') {
            let entry: Value = serde_json::from_slice(line.trim_ascii_end())
                .map_err(|e| Fail::usage(format!("entry line: {e}"), None))?;
            let i = entry["seq"].as_u64().unwrap_or(0);
            held.push_back((i, entry));
            emit(&mut held, &mut states, false)?;
        }
    }
    v.settle_sealed();
    for (i, p, st) in v.take_sealed() {
        states.entry(i).or_default().push((p, st));
    }
    emit(&mut held, &mut states, true)?;
    out.flush()
        .map_err(|e| Fail::usage(format!("write stdout: {e}"), None))?;
    let again = v.finish();
    let digest = |r: &Report| r.input.as_ref().and_then(|i| i.sha256.clone());
    if again.verdict != Verdict::Verified || digest(&again) != digest(&report) {
        // Cannot happen short of a disk fault: the copy is private.
        return Err(Fail::usage(
            format!(
                "the private copy of {} changed while it was read: the entries printed above are not verified",
                path.display()
            ),
            None,
        ));
    }
    // A key that opens nothing is most likely not one the export was
    // revealed to: say so on stderr (stdout stays entries only).
    if let Some(c) = &report.sealed
        && c.opened == 0
        && c.sealed > 0
    {
        eprintln!(
            "note: the identity opened none of the {} sealed values ({} stay sealed): the export was not revealed to it (`stele export DIR --reveal-to RECIPIENT` with its recipient, `age-keygen -y FILE`)",
            c.values, c.sealed
        );
    }
    Ok(0u8)
}

/// Longest line `stele reveal` reads: an entry is at most 64 KiB, a
/// `sealed-key` record at most ~22 KiB (a 16 KiB wrap in base64).
const MAX_REVEAL_LINE: usize = 256 * 1024;

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 60s, 5m, 500ms"))?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" | "h" => {
            let per = if unit == "m" { 60 } else { 3600 };
            // Checked: 2^62 minutes wrapped to 0 s (a monitor in a busy loop).
            Duration::from_secs(
                n.checked_mul(per)
                    .ok_or_else(|| format!("{s:?} is too long"))?,
            )
        }
        _ => return Err(format!("{s:?}: unit must be ms, s, m or h")),
    })
}

/// The shortest time between rounds of a monitor or a mirror (the tests poll a mirror every 10 ms).
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// `--interval` of a monitor or a mirror: a duration of at least 10 ms (0
/// re-verified the whole log in a busy loop).
pub(crate) fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < MIN_INTERVAL {
        return Err(format!(
            "{s:?} is shorter than the least interval, {} ms",
            MIN_INTERVAL.as_millis()
        ));
    }
    Ok(d)
}

fn write_state(path: &Path, note: &str) -> Result<(), Fail> {
    let io = |what: &str, e: std::io::Error| {
        Fail::usage(format!("{what} {}: {e}", path.display()), None)
    };
    // A random new name beside it (a planted `STATE.tmp` link was written
    // through), removed on failure.
    let mut t = temp_beside(path)?;
    t.write_all(note.as_bytes()).map_err(|e| io("write", e))?;
    persist_temp(t, path)
}

fn monitor(
    dir: &Path,
    pins: Pins,
    policy: Option<&Path>,
    state: &Path,
    interval: Duration,
    once: bool,
    on_alert: Option<&str>,
) -> Result<u8, Fail> {
    let keys = pins.keys();
    let revoked = pins.revoked;
    let policy = policy.map(witness_cli::load_policy).transpose()?;
    // The pinned key and the keys the log rotated to from it (docs/FORMAT.md
    // 15): the state's checkpoint may be signed by a later key only.
    let mut accepted = keys.clone();
    // A log (or state file) that cannot be read once it was watched is an
    // alert, not an error nobody sees: every round after the first, and the
    // first when the state file was there already. A first round against a
    // path that never held a log stays a usage error.
    let watched = state.exists();
    let mut trusted_size = None;
    for round in 0u64.. {
        let r = monitor_round(
            dir,
            &keys,
            &revoked,
            policy.as_ref(),
            state,
            &mut accepted,
            &mut trusted_size,
        );
        match r {
            Ok(None) => {}
            Ok(Some(alert)) => {
                if let Some(cmd) = on_alert {
                    run_on_alert(cmd, &alert)?;
                }
                return Ok(1);
            }
            Err(f) if watched || round > 0 => {
                let alert = unreadable_alert(json!(null), Some(dir), trusted_size, &f.msg);
                mirror_cli::raise("monitor", &alert, on_alert)?;
                return Ok(1);
            }
            Err(f) => return Err(f),
        }
        if once {
            return Ok(0u8);
        }
        std::thread::sleep(interval);
    }
    unreachable!("the rounds end by returning")
}

/// The alert of a monitor that could not read the log or its state file
/// (`"alert": "unreadable"`, the error as the failure's message), in the
/// shape of the others.
fn unreadable_alert(url: Value, dir: Option<&Path>, trusted: Option<u64>, why: &str) -> Value {
    json!({
        "alert": "unreadable",
        "url": url,
        "dir": dir.map(|d| d.display().to_string()),
        "time": stele_core::entry::Timestamp::from_unix_micros(stele_writer::log::system_micros()).map(|t| t.to_string()),
        "trusted_size": trusted,
        "verdict": "failed",
        "entries": null,
        "failures": [{
            "code": "unreadable",
            "entry": null,
            "line": 0,
            "offset": 0,
            "expected": null,
            "found": null,
            "message": why,
        }],
        "notices": [],
    })
}

// One round of `stele monitor DIR`: `Ok(Some(alert))` once the alert is
// printed (the caller runs --on-alert), `Err` when the log or the state
// file cannot be read.
fn monitor_round(
    dir: &Path,
    keys: &[VerifierKey],
    revoked: &[(VerifierKey, u64)],
    policy: Option<&stele_core::witness::Policy>,
    state: &Path,
    accepted: &mut Vec<VerifierKey>,
    trusted_size: &mut Option<u64>,
) -> Result<Option<Value>, Fail> {
    let trusted = if state.exists() {
        match load_trusted(state, accepted) {
            Ok(t) => Some(t),
            Err(e) => {
                // Learn the key history from the log (first round after a
                // restart, or a rotation since the last round), then retry.
                let before = accepted.len();
                let mut opts = Options::new(keys.to_vec());
                opts.revoked = revoked.to_vec();
                learn_keys(&verify_path(dir, opts)?, accepted);
                if accepted.len() == before {
                    return Err(e);
                }
                Some(load_trusted(state, accepted)?)
            }
        }
    } else {
        None
    };
    if let Some(t) = &trusted {
        *trusted_size = Some(t.size);
    }
    let mut opts = Options::new(keys.to_vec());
    opts.trusted = trusted.clone();
    opts.revoked = revoked.to_vec();
    if let Some(p) = policy {
        opts.set_policy(p.clone());
    }
    let report = verify_path(dir, opts)?;
    learn_keys(&report, accepted);
    let kind_of = |report: &Report| {
        let has = |c: FailureCode| report.failures.iter().any(|f| f.code == c);
        if has(FailureCode::Rollback) {
            "rollback"
        } else if has(FailureCode::Fork) {
            "fork"
        } else if has(FailureCode::QuorumNotMet) {
            "quorum"
        } else if matches!(report.verdict, Verdict::Tampered | Verdict::NotALog) {
            "failure"
        } else {
            "unverified"
        }
    };
    // A live log's newest entries may not be signed yet: partial is fine here.
    let kind = if matches!(report.verdict, Verdict::Verified | Verdict::Partial) {
        let size = report.tree_size.unwrap_or(0);
        if trusted.as_ref().is_none_or(|t| size > t.size) {
            // The note kept is re-read from the directory: it must be the
            // checkpoint just verified (same size, same root, signed by a
            // key accepted), or a log swapped in meanwhile would be trusted.
            let view = View::open_read_only(dir)?;
            match verified_note(&report, &view, accepted) {
                Some(note) => {
                    write_state(state, note)?;
                    *trusted_size = Some(size);
                    None
                }
                None => Some("changed"),
            }
        } else {
            None
        }
    } else {
        Some(kind_of(&report))
    };
    let Some(kind) = kind else {
        eprintln!(
            "stele monitor: ok: {} entries, tree size {}",
            report.entries,
            report.tree_size.unwrap_or(0)
        );
        return Ok(None);
    };
    let mut failures = serde_json::to_value(&report.failures).unwrap_or(json!([]));
    if kind == "changed" {
        let why = format!(
            "the log's checkpoint of size {} (root {}) verified, then the directory no longer held it: the log was changed or replaced while it was verified",
            report.tree_size.unwrap_or(0),
            report.root.as_deref().unwrap_or("?")
        );
        failures = json!([{
            "code": "changed",
            "entry": null,
            "line": 0,
            "offset": 0,
            "expected": report.root,
            "found": null,
            "message": why,
        }]);
    }
    let alert = json!({
        "alert": kind,
        "dir": dir.display().to_string(),
        "time": stele_core::entry::Timestamp::from_unix_micros(stele_writer::log::system_micros()).map(|t| t.to_string()),
        "trusted_size": trusted.as_ref().map(|t| t.size),
        "verdict": report.verdict,
        "entries": report.entries,
        "failures": failures,
        "notices": report.notices,
    });
    eprintln!(
        "stele monitor: ALERT {kind}: {}",
        terminal_safe(&dir.display().to_string(), false)
    );
    for f in alert["failures"].as_array().into_iter().flatten() {
        eprintln!(
            "  {} (line {}): {}",
            f["code"].as_str().unwrap_or("?"),
            f["line"],
            terminal_safe(f["message"].as_str().unwrap_or(""), false)
        );
    }
    Ok(Some(alert))
}

/// The note of the checkpoint `report` verified as the largest, read again
/// from `view`: only if it is that checkpoint (same size, same root) and
/// signed by a key `accepted` holds. A directory swapped between the two
/// reads gives `None`.
fn verified_note<'v>(report: &Report, view: &'v View, accepted: &[VerifierKey]) -> Option<&'v str> {
    let cp = view.checkpoint_at(report.tree_size?)?;
    let root = cp.checkpoint.root.to_base64();
    (report.root.as_deref() == Some(&*root)
        && stele_core::checkpoint::parse_trusted(cp.note.as_bytes(), accepted)
            .is_ok_and(|sc| sc.checkpoint == cp.checkpoint))
    .then_some(&*cp.note)
}

/// Adds the keys a report accepted through the log's rotations.
fn learn_keys(report: &Report, accepted: &mut Vec<VerifierKey>) {
    for k in report.keys.iter().flatten().filter(|k| k.trusted) {
        if let Ok(v) = VerifierKey::parse(&k.key)
            && !accepted.contains(&v)
        {
            accepted.push(v);
        }
    }
}

/// Runs an `--on-alert` command (`sh -c CMD`) with the alert's JSON on its
/// stdin, and waits for it; shared by `stele monitor` and `stele mirror`.
fn run_on_alert(cmd: &str, alert: &Value) -> Result<(), Fail> {
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Fail::usage(format!("--on-alert {cmd:?}: {e}"), None))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = writeln!(stdin, "{alert}");
    }
    let _ = child.wait();
    Ok(())
}

// A subject given on the command line: its JSON, or a plain string
// (`alice` is read as "alice").
fn subject_value(s: &str) -> Value {
    stele_core::canonical::parse_strict(s).unwrap_or(Value::String(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Two logs of one key and origin, the same size, other entries: `b` is
    // a fork of `a`.
    fn log_pair(tmp: &Path) -> (PathBuf, PathBuf, VerifierKey) {
        let signer = key::generate("example.com/monitor").unwrap();
        let mut dirs = Vec::new();
        for (name, v) in [("a", 1), ("b", 2)] {
            let d = tmp.join(name);
            let log = Log::create_with(
                &d,
                "example.com/monitor",
                &signer,
                None,
                LogOptions::default(),
            )
            .unwrap();
            let _ = log.append(json!({"v": v})).unwrap();
            let _ = log.checkpoint().unwrap();
            dirs.push(d);
        }
        let b = dirs.pop().unwrap();
        (dirs.pop().unwrap(), b, signer.verifier())
    }

    /// `stele monitor DIR` keeps the note of the checkpoint it verified:
    /// re-read from a directory swapped meanwhile (a fork of the same size,
    /// signed by the same key) it is refused, not trusted.
    #[test]
    fn the_state_keeps_only_the_checkpoint_verified() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, k) = log_pair(tmp.path());
        let report = verify_dir(&a, Options::new(vec![k.clone()]), &mut |_, _| {}).unwrap();
        assert_eq!(report.verdict, Verdict::Verified);
        let same = View::open_read_only(&a).unwrap();
        assert!(verified_note(&report, &same, std::slice::from_ref(&k)).is_some());
        let swapped = View::open_read_only(&b).unwrap();
        assert_eq!(swapped.size(), same.size(), "the fork has the same size");
        assert!(verified_note(&report, &swapped, std::slice::from_ref(&k)).is_none());
        // Signed by a key not accepted: refused too.
        let other = key::generate("example.com/monitor").unwrap().verifier();
        assert!(verified_note(&report, &same, &[other]).is_none());
    }
}
