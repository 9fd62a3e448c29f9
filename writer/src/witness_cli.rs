//! `stele witness`: run a C2SP tlog-witness (docs/FORMAT.md 14.6), and the
//! `--policy` option of the log and verifier commands.

use crate::Fail;
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::time::Duration;
use stele_core::witness::Policy;
use stele_writer::serve;
use stele_writer::serve::witness::{WitnessConfig, WitnessServer};
use stele_writer::witness::{ClientOptions, PolicyCosigner, Witness};

/// `stele witness` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum WitnessCmd {
    /// Make a witness directory and its cosigner key (mode 0600); print its verifier key.
    Init {
        /// The witness directory (created if missing).
        dir: PathBuf,
        /// The witness's name (its key name), e.g. witness.example.com/w1.
        #[arg(long)]
        name: String,
    },
    /// Trust a log: its verifier key, whose name is the log's origin.
    AddLog {
        /// The witness directory.
        dir: PathBuf,
        /// The log's verifier key (name+hex8+base64) or a file holding it.
        #[arg(long = "key", value_name = "LOG_VKEY")]
        key: String,
    },
    /// Serve POST /add-checkpoint (C2SP tlog-witness) and GET /<origin hash>/checkpoint.
    #[command(
        after_help = "The witness cosigns a checkpoint only if it is signed by a trusted key \
for its origin and consistent with the last checkpoint it cosigned for that log, which it records \
durably before answering. Logs added with `stele witness add-log` while it runs are trusted after \
a restart."
    )]
    Serve {
        /// The witness directory.
        dir: PathBuf,
        /// Address to listen on; port 0 picks a free port (printed on start).
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: std::net::SocketAddr,
        /// Time for a request body to arrive (408 beyond).
        #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::parse_duration)]
        body_timeout: Duration,
        /// Time for a request's head to arrive (also ends idle keep-alive).
        #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::parse_duration)]
        header_timeout: Duration,
        /// Most open connections (a short 503 beyond).
        #[arg(long, value_name = "N", default_value_t = 256)]
        max_connections: usize,
    },
}

pub(crate) fn run(cmd: WitnessCmd) -> Result<u8, Fail> {
    match cmd {
        WitnessCmd::Init { dir, name } => {
            let key = Witness::init(&dir, &name)?;
            println!("{key}");
            Ok(0)
        }
        WitnessCmd::AddLog { dir, key } => {
            let vkey = crate::load_keys(&[key])?;
            for k in vkey {
                let k = Witness::add_log(&dir, &k.to_string())?;
                eprintln!(
                    "stele witness: trusting log {} (key ID {})",
                    k.name(),
                    k.id_hex()
                );
            }
            Ok(0)
        }
        WitnessCmd::Serve {
            dir,
            listen,
            body_timeout,
            header_timeout,
            max_connections,
        } => {
            let mut c = WitnessConfig::new(&dir);
            c.listen = listen;
            c.body_timeout = body_timeout;
            c.limits.header_timeout = header_timeout;
            c.limits.max_connections = max_connections;
            let server = WitnessServer::bind(c)?;
            let stop = serve::shutdown_signal(&server.runtime());
            // The first line on stdout: tests and scripts read the port from it.
            println!("stele witness: listening on http://{}", server.local_addr());
            eprintln!(
                "stele witness: key {}, {} log(s) trusted",
                server.witness().verifier(),
                server.witness().logs().len()
            );
            server.run(stop)?;
            Ok(0)
        }
    }
}

/// Reads `--policy FILE` (C2SP tlog-policy).
pub(crate) fn load_policy(path: &Path) -> Result<Policy, Fail> {
    PolicyCosigner::load_policy(path).map_err(|e| {
        Fail::usage(
            e.to_string(),
            Some("a policy has `log VKEY`, `witness NAME VKEY [URL]`, `group NAME K MEMBERS…` and one `quorum NAME` line (C2SP tlog-policy; docs/FORMAT.md 14.3)".into()),
        )
    })
}

/// The log side of `--policy`: every witness needs its URL. The log opened
/// with it remembers the policy (docs/FORMAT.md 14.5).
pub(crate) fn cosigner(path: &Path) -> Result<PolicyCosigner, Fail> {
    // Parsed once here for the error's hint.
    let _ = load_policy(path)?;
    let text = std::fs::read_to_string(path).map_err(|e| {
        Fail::usage(
            format!("{}: {e} (a policy is UTF-8 text)", path.display()),
            None,
        )
    })?;
    PolicyCosigner::from_text(&text, ClientOptions::default())
        .map_err(|why| Fail::usage(format!("{}: {why}", path.display()), None))
}
