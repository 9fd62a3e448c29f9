//! Real PostgreSQL and S3 (moto) for the cluster tests: each test gets its
//! own database and bucket, dropped again when it ends, so tests run in
//! parallel and leave nothing behind. The servers are the ones
//! `bash scripts/setup.sh` starts; a test that cannot reach one fails and
//! says how to start it (it never skips).

#![allow(dead_code)] // reason: each test uses a different part of the kit

use std::sync::atomic::{AtomicU64, Ordering};
use stele_writer::cluster::{Location, S3Env};

/// The admin URL (a user that may CREATE DATABASE): `STELE_TEST_PG`.
pub(crate) fn pg_admin() -> String {
    std::env::var("STELE_TEST_PG")
        .unwrap_or_else(|_| "postgres://stele_test:stele_test@127.0.0.1:5432/postgres".into())
}

/// The S3 endpoint: `STELE_TEST_S3`.
pub(crate) fn s3_endpoint() -> String {
    std::env::var("STELE_TEST_S3").unwrap_or_else(|_| "http://127.0.0.1:5055".into())
}

const HOW: &str = "start the test servers with `bash scripts/setup.sh` (PostgreSQL 15 with the role stele_test, moto_server on 127.0.0.1:5055), or point STELE_TEST_PG / STELE_TEST_S3 at yours";

/// Credentials moto accepts (any).
pub(crate) fn s3_env() -> S3Env {
    S3Env {
        endpoint: Some(s3_endpoint()),
        access_key_id: Some("stele-test".into()),
        secret_access_key: Some("stele-test-secret".into()),
        region: Some("us-east-1".into()),
    }
}

/// The AWS variables for a `stele` child process.
pub(crate) fn aws_vars() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", s3_endpoint()),
        ("AWS_ACCESS_KEY_ID", "stele-test".into()),
        ("AWS_SECRET_ACCESS_KEY", "stele-test-secret".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
}

static N: AtomicU64 = AtomicU64::new(0);

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn admin() -> tokio_postgres::Client {
    let url = pg_admin();
    let (client, conn) = match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
        Ok(c) => c,
        Err(e) => panic!("cannot reach PostgreSQL at {url}: {e}; {HOW}"),
    };
    drop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    client
}

/// A fresh database and bucket for one test.
#[derive(Debug)]
pub(crate) struct Stores {
    pub(crate) db_name: String,
    pub(crate) db: String,
    pub(crate) bucket: String,
    pub(crate) objects: String,
}

impl Stores {
    /// A read-only handle on the log in these stores (no integrator, no
    /// signing key) and the runtime to drive it.
    pub(crate) fn reader(&self) -> (tokio::runtime::Runtime, stele_writer::cluster::Cluster) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let c = rt
            .block_on(stele_writer::cluster::Cluster::open(
                &self.location(),
                None,
                stele_writer::cluster::ClusterOptions {
                    integrator: false,
                    ..Default::default()
                },
            ))
            .unwrap();
        (rt, c)
    }

    pub(crate) fn new(tag: &str) -> Self {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros()
            % 1_000_000_000;
        let db_name = format!("stele_t_{tag}_{}_{n}_{stamp}", std::process::id());
        let bucket = format!(
            "stele-t-{}-{}-{n}-{stamp}",
            tag.replace('_', "-"),
            std::process::id()
        );
        rt().block_on(async {
            let c = admin().await;
            c.batch_execute(&format!("CREATE DATABASE {db_name}"))
                .await
                .unwrap_or_else(|e| panic!("CREATE DATABASE {db_name}: {e}"));
        });
        let ep = s3_endpoint();
        match ureq::put(&format!("{ep}/{bucket}")).send_empty() {
            Ok(_) => {}
            Err(e) => panic!("cannot create bucket {bucket} at {ep}: {e}; {HOW}"),
        }
        let admin = pg_admin();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        Self {
            db: format!("{base}/{db_name}"),
            db_name,
            objects: format!("s3://{bucket}/log"),
            bucket,
        }
    }

    pub(crate) fn location(&self) -> Location {
        Location {
            db: self.db.clone(),
            objects: Some(self.objects.clone()),
            s3: s3_env(),
        }
    }

    /// Keys of every object in the bucket.
    pub(crate) fn object_count(&self) -> usize {
        use futures::StreamExt as _;
        let (store, _) =
            stele_writer::cluster::connect_objects(&format!("s3://{}", self.bucket), &s3_env())
                .unwrap();
        rt().block_on(async { store.list(None).collect::<Vec<_>>().await.len() })
    }
}

impl Drop for Stores {
    fn drop(&mut self) {
        use futures::StreamExt as _;
        let name = self.db_name.clone();
        rt().block_on(async {
            let c = admin().await;
            let _ = c
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        });
        if let Ok((store, _)) =
            stele_writer::cluster::connect_objects(&format!("s3://{}", self.bucket), &s3_env())
        {
            rt().block_on(async {
                let keys: Vec<_> = store
                    .list(None)
                    .filter_map(|m| async move { m.ok().map(|m| m.location) })
                    .collect()
                    .await;
                for k in keys {
                    let _ = object_store::ObjectStoreExt::delete(&*store, &k).await;
                }
            });
        }
        let _ = ureq::delete(&format!("{}/{}", s3_endpoint(), self.bucket)).call();
    }
}

pub(crate) const STELE: &str = env!("CARGO_BIN_EXE_stele");

/// `stele ARGS` with the AWS variables set; (status, stdout, stderr).
pub(crate) fn stele(args: &[&str]) -> (i32, String, String) {
    let out = crate::common::bounded_output(
        std::process::Command::new(STELE)
            .args(args)
            .envs(aws_vars()),
        None,
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A `stele serve --db … --objects …` process (SIGKILLed on drop).
pub(crate) struct Front {
    pub(crate) child: std::process::Child,
    pub(crate) url: String,
}

impl Front {
    pub(crate) fn start(
        stores: &Stores,
        key: &std::path::Path,
        tokens: &std::path::Path,
        extra: &[&str],
    ) -> Self {
        Self::start_with(&stores.db, &stores.objects, aws_vars(), key, tokens, extra)
    }

    pub(crate) fn start_with(
        db: &str,
        objects: &str,
        env: Vec<(&'static str, String)>,
        key: &std::path::Path,
        tokens: &std::path::Path,
        extra: &[&str],
    ) -> Self {
        let mut cmd = std::process::Command::new(STELE);
        let _ = cmd
            .args(["serve", "--db", db, "--objects", objects, "--signing-key"])
            .arg(key)
            .args(["--listen", "127.0.0.1:0", "--tokens"])
            .arg(tokens)
            .args(extra)
            .envs(env)
            .stderr(std::process::Stdio::inherit());
        let (child, addr) = crate::common::spawn_serve(&mut cmd);
        Self { child, url: addr }
    }

    /// SIGTERM, then wait (bounded) for the exit status.
    pub(crate) fn terminate(mut self) -> std::process::ExitStatus {
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "server did not stop on SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

impl Resp {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(120)))
        .build()
        .into()
}

/// A request; `Err` when the connection failed.
pub(crate) fn http(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
) -> Result<Resp, String> {
    let a = agent();
    let auth = token.map(|t| format!("Bearer {t}"));
    let r = match method {
        "POST" => {
            let mut req = a.post(url).header("content-type", "application/json");
            if let Some(h) = &auth {
                req = req.header("authorization", h);
            }
            req.send(body.unwrap_or_default())
        }
        _ => {
            let mut req = a.get(url);
            if let Some(h) = &auth {
                req = req.header("authorization", h);
            }
            req.call()
        }
    };
    let mut r = r.map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let body = r
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .map_err(|e| e.to_string())?;
    Ok(Resp { status, body })
}

/// `stele init --db DB --objects OBJECTS --origin ORIGIN --signing-key KEY`
/// (it must succeed); the verifier key it prints.
pub(crate) fn init(db: &str, objects: &str, origin: &str, key: &std::path::Path) -> String {
    let (code, out, err) = stele(&[
        "init",
        "--db",
        db,
        "--objects",
        objects,
        "--origin",
        origin,
        "--signing-key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    out.trim().to_string()
}

/// A new file log in `dir` served with `tokens`: what the cluster's
/// answers are compared with.
pub(crate) fn file_front(dir: &std::path::Path, origin: &str, tokens: &std::path::Path) -> Front {
    file_front_with(dir, origin, tokens, &[])
}

/// [`file_front`] with more arguments for `stele init` (`--seal P`, …).
pub(crate) fn file_front_with(
    dir: &std::path::Path,
    origin: &str,
    tokens: &std::path::Path,
    init: &[&str],
) -> Front {
    let mut args = vec!["init", dir.to_str().unwrap(), "--origin", origin];
    args.extend_from_slice(init);
    let (code, _, err) = stele(&args);
    assert_eq!(code, 0, "{err}");
    let mut cmd = std::process::Command::new(STELE);
    let _ = cmd
        .arg("serve")
        .arg(dir)
        .args(["--listen", "127.0.0.1:0", "--tokens"])
        .arg(tokens);
    let (child, url) = crate::common::spawn_serve(&mut cmd);
    Front { child, url }
}

/// POST `body` to `url` with an `Idempotency-Key`: the answer and whether
/// it says `Idempotent-Replayed: true`.
pub(crate) fn post_keyed(url: &str, token: &str, key: &str, body: &[u8]) -> (Resp, bool) {
    let mut r = agent()
        .post(url)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .header("idempotency-key", key)
        .send(body)
        .unwrap();
    let replayed = r
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    let status = r.status().as_u16();
    let body = r.body_mut().read_to_vec().unwrap();
    (Resp { status, body }, replayed)
}

/// GET `url` with the token (the request must get an answer).
pub(crate) fn get(url: &str, token: &str) -> Resp {
    http("GET", url, Some(token), None).unwrap()
}

/// A tokens file with one token of every scope; returns the token.
pub(crate) fn token(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let file = dir.join("tokens");
    let (code, out, err) = stele(&[
        "token",
        "add",
        file.to_str().unwrap(),
        "tester",
        "--scope",
        "read,write",
    ]);
    assert_eq!(code, 0, "{err}");
    (file, out.trim().to_string())
}

/// Waits for `cond`, up to `secs` seconds.
pub(crate) fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let mut pause = std::time::Duration::from_millis(10);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(500));
    }
}
