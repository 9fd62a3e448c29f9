//! TLS to PostgreSQL (real server: Debian's PostgreSQL 15 has `ssl = on`
//! with the snakeoil certificate, CN and DNS name `localhost`; see
//! scripts/test-servers.sh). libpq's `sslmode` / `sslrootcert` in the URL:
//! `require` encrypts, the verifying modes check the chain (and the host
//! name), and no error ever shows the URL's password.

mod common;
#[path = "cluster/kit.rs"]
mod kit;

use kit::{Stores, stele};
use stele_writer::cluster::{Cluster, ClusterOptions, Location, connect_db};

const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
const HOW: &str = "the test PostgreSQL must have ssl = on with Debian's snakeoil certificate (the postgresql-15 package's default; scripts/test-servers.sh starts it)";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

// Whether the session of a connection from `url` runs over TLS, or the
// error opening a log there gives (the library's message, as the CLI
// prints it).
fn over_tls(url: &str) -> Result<bool, String> {
    rt().block_on(async {
        let pool = connect_db(url, 2).map_err(|e| e.to_string())?;
        let Ok(client) = pool.get().await else {
            let loc = Location {
                db: url.to_string(),
                objects: None,
                s3: kit::s3_env(),
            };
            return Err(Cluster::open(&loc, None, ClusterOptions::default())
                .await
                .err()
                .map_or_else(|| "opened".to_string(), |e| e.to_string()));
        };
        let row = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(row.get::<_, bool>(0))
    })
}

fn with(db: &str, query: &str) -> String {
    format!("{db}?{query}")
}

// The test URL with host `localhost` (the snakeoil certificate's name).
fn on_localhost(db: &str) -> String {
    db.replacen("@127.0.0.1:", "@localhost:", 1)
}

fn password(db: &str) -> String {
    let rest = db.split_once("://").unwrap().1;
    let userinfo = rest.rsplit_once('@').unwrap().0;
    userinfo.split_once(':').unwrap().1.to_string()
}

// A root certificate that did not sign the server's (valid for localhost).
fn other_root(dir: &std::path::Path) -> std::path::PathBuf {
    let (key, cert) = (dir.join("other-root.key"), dir.join("other-root.pem"));
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=Another test root"])
        .args(["-addext", "subjectAltName=DNS:localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (the TSA tests use it too)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cert
}

#[test]
fn sslmode_require_connects_over_tls_and_disable_does_not() {
    let s = Stores::new("tls_require");
    assert!(
        s.db.contains("@127.0.0.1:"),
        "the test URL is expected on 127.0.0.1: {}",
        s.db
    );
    assert_eq!(over_tls(&with(&s.db, "sslmode=require")), Ok(true), "{HOW}");
    // SCRAM bound to the TLS session (tls-server-end-point): refused by
    // the server if the certificate's digest were wrong.
    assert_eq!(
        over_tls(&with(&s.db, "sslmode=require&channel_binding=require")),
        Ok(true)
    );
    // libpq's default (prefer) takes TLS when the server offers it.
    assert_eq!(over_tls(&s.db), Ok(true), "{HOW}");
    assert_eq!(over_tls(&with(&s.db, "sslmode=disable")), Ok(false));
}

#[test]
fn verifying_modes_check_the_root_and_the_host_name() {
    let s = Stores::new("tls_verify");
    let tmp = tempfile::tempdir().unwrap();
    let local = on_localhost(&s.db);
    // The right root and the certificate's host name.
    assert_eq!(
        over_tls(&with(
            &local,
            &format!("sslmode=verify-full&sslrootcert={SNAKEOIL}")
        )),
        Ok(true),
        "{HOW}"
    );
    // verify-ca checks the chain only: 127.0.0.1 is not in the certificate.
    assert_eq!(
        over_tls(&with(
            &s.db,
            &format!("sslmode=verify-ca&sslrootcert={SNAKEOIL}")
        )),
        Ok(true)
    );
    // require with a root given acts as verify-ca (libpq).
    assert_eq!(
        over_tls(&with(
            &s.db,
            &format!("sslmode=require&sslrootcert={SNAKEOIL}")
        )),
        Ok(true)
    );
    // verify-full refuses a host name the certificate does not name.
    let e = over_tls(&with(
        &s.db,
        &format!("sslmode=verify-full&sslrootcert={SNAKEOIL}"),
    ))
    .unwrap_err();
    assert!(e.contains("TLS") && e.contains("certificate"), "{e}");
    assert!(!e.contains(&password(&s.db)), "{e}");
    // A root that did not sign the server's certificate.
    let other = other_root(tmp.path());
    for mode in ["verify-full", "verify-ca", "require"] {
        let url = with(
            &local,
            &format!("sslmode={mode}&sslrootcert={}", other.display()),
        );
        let e = over_tls(&url).unwrap_err();
        assert!(
            e.contains("TLS") && e.contains("certificate") && e.contains("UnknownIssuer"),
            "{mode}: {e}"
        );
        assert!(!e.contains(&password(&s.db)), "{e}");
    }
}

#[test]
fn errors_never_show_the_password() {
    let s = Stores::new("tls_secret");
    let tmp = tempfile::tempdir().unwrap();
    let secret = "Sekr1t-pa55word";
    let wrong =
        s.db.replacen(&format!(":{}@", password(&s.db)), &format!(":{secret}@"), 1);
    assert!(wrong.contains(secret));
    let other = other_root(tmp.path());
    for url in [
        with(&wrong, "sslmode=require"),
        with(
            &on_localhost(&wrong),
            &format!("sslmode=verify-full&sslrootcert={}", other.display()),
        ),
        with(
            &wrong,
            "sslmode=verify-ca&sslrootcert=/nonexistent/root.pem",
        ),
        with(&wrong, "sslmode=bogus"),
        with(&wrong, "sslcert=/x.pem"),
        wrong.replacen("postgres://", "postgress://", 1),
    ] {
        let e = over_tls(&url).unwrap_err();
        assert!(!e.contains(secret), "{url}: {e}");
        assert!(!e.is_empty());
        // The CLI: the same, on stderr.
        let (code, out, err) = stele(&["export", "--db", &url, "-o", "/dev/null"]);
        assert_ne!(code, 0, "{url}: {out}");
        assert!(
            !err.contains(secret) && !out.contains(secret),
            "{url}: {err}"
        );
    }
    // The wrong password is told as such (the server's message).
    let e = over_tls(&with(&wrong, "sslmode=require")).unwrap_err();
    assert!(e.contains("password authentication failed"), "{e}");
}
