//! TLS to PostgreSQL (rustls, ring provider) with libpq's `sslmode` and
//! `sslrootcert` URL parameters.
//!
//! tokio-postgres parses `sslmode=disable|prefer|require` only; the verifying
//! modes and the root certificate are taken out of the URL here, and the
//! rest is handed to tokio-postgres:
//!
//! | `sslmode` | TLS | certificate checked |
//! |---|---|---|
//! | `disable` | never | – |
//! | `prefer` (default) | if the server offers it | no (as libpq) |
//! | `require` | always | no; with `sslrootcert` given: as `verify-ca` (as libpq) |
//! | `verify-ca` | always | chain to a root, any host name |
//! | `verify-full` | always | chain to a root and the URL's host name |
//!
//! Roots: `sslrootcert=FILE` (PEM, one or more certificates), else the
//! `PGSSLROOTCERT` environment variable, else `~/.postgresql/root.crt` when it
//! exists (libpq's default), else the system's roots (`sslrootcert=system`
//! asks for them explicitly, as libpq 16 does). `allow`, client
//! certificates (`sslcert`, `sslkey`) and CRLs are refused with a clear
//! error rather than ignored.
//!
//! The glue between tokio-postgres and tokio-rustls ([`MakeTls`]) is the
//! one of the tokio-postgres-rustls crate, written here: that crate's
//! `x509-cert/std` feature would rebuild most of the dependency tree (its
//! `const-oid/std` reaches `digest`). It gives PostgreSQL the
//! `tls-server-end-point` channel binding, so SCRAM-SHA-256-PLUS ties the
//! password exchange to the TLS session.

use super::config_err;
use crate::error::Result;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How a connection's TLS is set up (`sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, unverified.
    Prefer,
    /// TLS always, unverified.
    Require,
    /// TLS always, the chain verified.
    VerifyCa,
    /// TLS always, the chain and the host name verified.
    VerifyFull,
}

/// A `postgres://` URL taken apart: what tokio-postgres reads, and the TLS.
pub(crate) struct DbUrl {
    pub(crate) config: tokio_postgres::Config,
    #[cfg_attr(not(test), allow(dead_code))] // reason: what the tests check
    pub(crate) mode: SslMode,
    pub(crate) tls: MakeTls,
}

/// Parses `url` (`postgres://` or `postgresql://`), taking out `sslmode`
/// and `sslrootcert`; errors name the option, never the password.
pub(crate) fn parse(url: &str) -> Result<DbUrl> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (mut mode, mut root): (Option<String>, Option<String>) = (None, None);
    let mut kept: Vec<&str> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "sslmode" => mode = Some(decode(v)?),
            "sslrootcert" => root = Some(decode(v)?),
            "sslcert" | "sslkey" | "sslpassword" | "sslcrl" | "sslcrldir" => {
                return Err(config_err(
                    "--db",
                    format!(
                        "{k}: client certificates and CRLs are not supported (see writer/README.md, TLS to PostgreSQL)"
                    ),
                ));
            }
            _ => kept.push(pair),
        }
    }
    let mode = match mode.as_deref() {
        None | Some("prefer") => SslMode::Prefer,
        Some("disable") => SslMode::Disable,
        Some("require") if root.is_some() => SslMode::VerifyCa,
        Some("require") => SslMode::Require,
        Some("verify-ca") => SslMode::VerifyCa,
        Some("verify-full") => SslMode::VerifyFull,
        Some("allow") => {
            return Err(config_err(
                "--db",
                "sslmode=allow is not supported (use prefer, require, verify-ca or verify-full)",
            ));
        }
        Some(other) => {
            return Err(config_err(
                "--db",
                format!(
                    "sslmode={other:?} is not one of disable, prefer, require, verify-ca, verify-full"
                ),
            ));
        }
    };
    let pg_mode = match mode {
        SslMode::Disable => "disable",
        SslMode::Prefer => "prefer",
        _ => "require",
    };
    kept.push(match pg_mode {
        "disable" => "sslmode=disable",
        "prefer" => "sslmode=prefer",
        _ => "sslmode=require",
    });
    let rebuilt = format!("{base}?{}", kept.join("&"));
    let config: tokio_postgres::Config = rebuilt.parse().map_err(|e| {
        config_err(
            "--db",
            format!("not a PostgreSQL URL: {}", super::chain(&e)),
        )
    })?;
    let tls = MakeTls(Arc::new(client_config(mode, root.as_deref())?));
    Ok(DbUrl { config, mode, tls })
}

/// tokio-postgres's TLS connector: rustls with [`client_config`]'s verifier.
#[derive(Clone)]
pub struct MakeTls(Arc<rustls::ClientConfig>);

impl std::fmt::Debug for MakeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MakeTls").finish_non_exhaustive()
    }
}

impl<S> tokio_postgres::tls::MakeTlsConnect<S> for MakeTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type TlsConnect = Connect;
    type Error = std::io::Error;

    fn make_tls_connect(&mut self, host: &str) -> std::io::Result<Connect> {
        // A host name or an IP address; "" for a Unix socket, where
        // PostgreSQL refuses TLS (prefer goes on in plain text, require
        // fails in `connect`).
        Ok(Connect {
            name: ServerName::try_from(host.to_string()).ok(),
            connector: tokio_rustls::TlsConnector::from(self.0.clone()),
        })
    }
}

/// One connection's TLS handshake.
pub struct Connect {
    name: Option<ServerName<'static>>,
    connector: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for Connect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connect")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<S> tokio_postgres::tls::TlsConnect<S> for Connect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<TlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let name = self.name.ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "TLS needs a host name or IP address (not a Unix socket)",
                )
            })?;
            self.connector
                .connect(name, stream)
                .await
                .map(|s| TlsStream(Box::new(s)))
        })
    }
}

/// A TLS connection to PostgreSQL.
pub struct TlsStream<S>(Box<tokio_rustls::client::TlsStream<S>>);

impl<S> std::fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream").finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for TlsStream<S> {
    fn channel_binding(&self) -> tokio_postgres::tls::ChannelBinding {
        use tokio_postgres::tls::ChannelBinding;
        let (_, session) = self.0.get_ref();
        match session.peer_certificates().and_then(|c| c.first()) {
            Some(cert) => end_point_digest(cert.as_ref())
                .map_or_else(ChannelBinding::none, ChannelBinding::tls_server_end_point),
            None => ChannelBinding::none(),
        }
    }
}

// RFC 5929 4.1: the certificate hashed with its signature's hash (SHA-1 and
// MD5 as SHA-256); none for a signature without one (Ed25519).
fn end_point_digest(der: &[u8]) -> Option<Vec<u8>> {
    use x509_cert::der::Decode as _;
    use x509_cert::der::oid::db::rfc5912 as oid;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let alg = cert.signature_algorithm.oid;
    let d = if [
        oid::SHA_1_WITH_RSA_ENCRYPTION,
        oid::SHA_256_WITH_RSA_ENCRYPTION,
        oid::ECDSA_WITH_SHA_256,
    ]
    .contains(&alg)
    {
        &ring::digest::SHA256
    } else if [oid::SHA_384_WITH_RSA_ENCRYPTION, oid::ECDSA_WITH_SHA_384].contains(&alg) {
        &ring::digest::SHA384
    } else if [oid::SHA_512_WITH_RSA_ENCRYPTION, oid::ECDSA_WITH_SHA_512].contains(&alg) {
        &ring::digest::SHA512
    } else {
        return None;
    };
    Some(ring::digest::digest(d, der).as_ref().to_vec())
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

// A URL query value, percent-decoded.
fn decode(v: &str) -> Result<String> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| config_err("--db", "a bad %-escape in an ssl option"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| config_err("--db", "an ssl option is not UTF-8"))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(mode: SslMode, root: Option<&str>) -> Result<rustls::ClientConfig> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| config_err("--db", format!("TLS setup: {e}")))?;
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => Arc::new(Unverified {
            algs: provider.signature_verification_algorithms,
        }),
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let roots = roots(root)?;
            let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| config_err("--db", format!("TLS roots: {e}")))?;
            Arc::new(Verified {
                inner,
                host: mode == SslMode::VerifyFull,
            })
        }
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

// The trust roots of a verifying mode.
fn roots(root: Option<&str>) -> Result<RootCertStore> {
    let file: Option<PathBuf> = match root {
        Some("system") => None,
        Some(f) => Some(PathBuf::from(f)),
        None => match std::env::var_os("PGSSLROOTCERT") {
            Some(v) if v == "system" => None,
            Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
            _ => std::env::var_os("HOME")
                .map(|h| Path::new(&h).join(".postgresql/root.crt"))
                .filter(|p| p.is_file()),
        },
    };
    let mut store = RootCertStore::empty();
    match file {
        Some(f) => {
            let pem = std::fs::read(&f)
                .map_err(|e| config_err("--db", format!("sslrootcert {}: {e}", f.display())))?;
            let certs: Vec<CertificateDer<'static>> = rustls_pemfile_certs(&pem)
                .map_err(|e| config_err("--db", format!("sslrootcert {}: {e}", f.display())))?;
            if certs.is_empty() {
                return Err(config_err(
                    "--db",
                    format!("sslrootcert {}: no PEM certificate in it", f.display()),
                ));
            }
            for c in certs {
                store
                    .add(c)
                    .map_err(|e| config_err("--db", format!("sslrootcert {}: {e}", f.display())))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(config_err(
                    "--db",
                    "a verifying sslmode found no system root certificates; name one with sslrootcert=FILE",
                ));
            }
        }
    }
    Ok(store)
}

// The certificates of a PEM file.
fn rustls_pemfile_certs(pem: &[u8]) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))
}

// prefer/require: encrypted, the certificate not checked (libpq's meaning);
// the handshake's signatures are still checked.
#[derive(Debug)]
struct Unverified {
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

// verify-ca (any host name) and verify-full.
#[derive(Debug)]
struct Verified {
    inner: Arc<WebPkiServerVerifier>,
    host: bool,
}

impl ServerCertVerifier for Verified {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            // The chain was checked before the name (webpki's order).
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.host => Ok(ServerCertVerified::assertion()),
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_roots_come_out_of_the_url() {
        let u = parse("postgres://u:secret@h/db").unwrap();
        assert_eq!(u.mode, SslMode::Prefer);
        let u = parse("postgres://u:secret@h/db?sslmode=disable&connect_timeout=5").unwrap();
        assert_eq!(u.mode, SslMode::Disable);
        assert_eq!(
            u.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
        let u = parse("postgres://u:secret@h/db?sslmode=require").unwrap();
        assert_eq!(u.mode, SslMode::Require);
        let u = parse("postgres://u:secret@h/db?sslmode=verify-full&sslrootcert=system");
        if let Ok(u) = u {
            assert_eq!(u.mode, SslMode::VerifyFull);
            assert_eq!(
                u.config.get_ssl_mode(),
                tokio_postgres::config::SslMode::Require
            );
        }
    }

    #[test]
    fn a_unix_socket_gets_a_connector() {
        use tokio_postgres::tls::MakeTlsConnect;
        let mut tls = parse("postgres://u@%2Frun%2Fpostgresql/db").unwrap().tls;
        let c = <MakeTls as MakeTlsConnect<tokio::net::UnixStream>>::make_tls_connect(&mut tls, "")
            .unwrap();
        assert!(c.name.is_none());
    }

    #[test]
    fn bad_options_are_refused_without_the_password() {
        for url in [
            "postgres://u:secret@h/db?sslmode=verify",
            "postgres://u:secret@h/db?sslmode=allow",
            "postgres://u:secret@h/db?sslmode=verify-ca&sslrootcert=/nonexistent/root.pem",
            "postgres://u:secret@h/db?sslcert=/x",
            "postgres://u:secret@h/db?sslmode=%zz",
            "postgres://u:secret@h/db?nonsense=1",
        ] {
            let e = parse(url).err().expect(url).to_string();
            assert!(!e.contains("secret"), "{url}: {e}");
            assert!(
                e.contains("ssl") || e.contains("invalid connection string") || e.contains('%'),
                "{url}: {e}"
            );
        }
        let e =
            parse("postgres://u:secret@h/db?sslmode=verify-ca&sslrootcert=/nonexistent/root.pem")
                .err()
                .unwrap()
                .to_string();
        assert!(e.contains("/nonexistent/root.pem"), "{e}");
    }
}
