//! A test CA with its RFC 3161 TSAs made by openssl, served on loopback
//! (`openssl ts -reply` behind a small HTTP handler): the timestamp tests
//! of file logs and of PostgreSQL + object storage logs.

#![allow(dead_code)] // reason: each test uses a different part of the kit

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

fn p(x: &Path) -> &str {
    x.to_str().unwrap()
}

/// The openssl configuration of the test CA and its TSAs: `good` (critical
/// timeStamping EKU, valid 2026-2126), `frac` (the same, writing genTime with
/// milliseconds), `dup` (as `good`, with its own certificate in `certs`: its
/// tokens list that certificate twice, since the request asks for it too),
/// `expired` (valid 2020-2021), `other` (issued by another CA), `decoys` (as
/// `other`, its token carrying the certificates of `decoys.pem`, which
/// `Tsa::decoys` writes); `noeku` (no EKU) cannot sign with `openssl ts`,
/// which refuses such a certificate, so its tokens are made with `openssl
/// cms -sign -cades` over a good token's TSTInfo.
const TSA_CNF: &str = "\
[ ca ]
default_ca = ca_conf
[ ca_conf ]
database = ./index.txt
new_certs_dir = .
serial = ./ca.serial
default_md = sha256
policy = policy_any
unique_subject = no
[ policy_any ]
organizationName = optional
commonName = supplied
[ tsa ]
default_tsa = good
[ good ]
serial = ./tsaserial
signer_cert = ./good.crt
certs = ./ca.crt
signer_key = ./tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
[ expired ]
serial = ./tsaserial
signer_cert = ./expired.crt
certs = ./ca.crt
signer_key = ./tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
ess_cert_id_alg = sha256
[ other ]
serial = ./tsaserial
signer_cert = ./other.crt
certs = ./other-ca.crt
signer_key = ./tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
ess_cert_id_alg = sha256
[ decoys ]
serial = ./tsaserial
signer_cert = ./other.crt
certs = ./decoys.pem
signer_key = ./tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
ess_cert_id_alg = sha256
[ dup ]
serial = ./tsaserial
signer_cert = ./good.crt
certs = ./good.crt
signer_key = ./tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
ess_cert_id_alg = sha256
[ frac ]
serial = ./tsaserial
signer_cert = ./good.crt
certs = ./ca.crt
signer_key = ./tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
accuracy = millisecs:500
clock_precision_digits = 3
ess_cert_id_alg = sha256
[ tsa_ext ]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = critical,timeStamping
[ noeku_ext ]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
[ ca_ext ]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
";

const MAKE_CA: &str = r#"set -e
touch index.txt; echo 1000 > ca.serial; echo 01 > tsaserial
openssl ecparam -name prime256v1 -genkey -noout -out ca.key
openssl req -new -x509 -key ca.key -subj "/CN=Stele Test TSA CA" -days 36500 -out ca.crt -extensions ca_ext -config tsa.cnf
openssl ecparam -name prime256v1 -genkey -noout -out other-ca.key
openssl req -new -x509 -key other-ca.key -subj "/CN=Other TSA CA" -days 36500 -out other-ca.crt -extensions ca_ext -config tsa.cnf
openssl ecparam -name prime256v1 -genkey -noout -out tsa.key
openssl req -new -key tsa.key -subj "/O=Stele Tests/CN=Stele Test TSA" -out tsa.csr
sign() { openssl ca -batch -config tsa.cnf -cert "$1" -keyfile "$2" -in tsa.csr -out "$3" -extensions "$4" -startdate "$5" -enddate "$6" -notext; }
sign ca.crt ca.key good.crt tsa_ext 20260101000000Z 21260101000000Z
sign ca.crt ca.key noeku.crt noeku_ext 20260101000000Z 21260101000000Z
sign ca.crt ca.key expired.crt tsa_ext 20200101000000Z 20210101000000Z
sign other-ca.crt other-ca.key other.crt tsa_ext 20260101000000Z 21260101000000Z
"#;

pub(crate) fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("sh (openssl must be installed: apt-get install openssl)");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA with its TSAs in `dir`, and a loopback HTTP TSA: POST
/// `/<section>` with a TimeStampReq answers `openssl ts -reply -section`.
pub(crate) struct Tsa {
    pub(crate) dir: PathBuf,
    pub(crate) url: String,
}

impl Tsa {
    pub(crate) fn start(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("tsa.cnf"), TSA_CNF).unwrap();
        sh(dir, MAKE_CA);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let d = dir.to_path_buf();
        let _ = std::thread::spawn(move || {
            for (n, conn) in listener.incoming().enumerate() {
                let Ok(conn) = conn else { continue };
                serve_one(&d, n, conn);
            }
        });
        Self {
            dir: dir.to_path_buf(),
            url,
        }
    }

    /// Writes `decoys.pem` for the `decoys` section: `n` self-signed CA
    /// certificates named like the other CA (each its own key), then the
    /// other CA's.
    pub(crate) fn decoys(&self, n: usize) {
        sh(
            &self.dir,
            &format!(
                "set -e; rm -f decoys.pem; for i in $(seq {n}); do \
                 openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
                 -keyout decoy.key -subj \"/CN=Other TSA CA\" -days 36500 -extensions ca_ext -config tsa.cnf \
                 -out decoy.crt 2>/dev/null; cat decoy.crt >> decoys.pem; done; cat other-ca.crt >> decoys.pem; rm -f decoy.key decoy.crt"
            ),
        );
    }

    pub(crate) fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// A token (`openssl ts -reply -token_out`) from `section` for `body`.
    pub(crate) fn token(&self, section: &str, body: &[u8]) -> Vec<u8> {
        let d = &self.dir;
        std::fs::write(d.join("body"), body).unwrap();
        sh(
            d,
            "openssl ts -query -data body -sha256 -cert -out body.tsq",
        );
        let s = if section == "noeku" { "good" } else { section };
        sh(
            d,
            &format!(
                "openssl ts -reply -config tsa.cnf -section {s} -queryfile body.tsq -token_out -out body.tok"
            ),
        );
        if section == "noeku" {
            // Re-sign the TSTInfo with the certificate without EKU.
            sh(
                d,
                "openssl cms -verify -noverify -inform DER -in body.tok -binary -out body.tst && \
                 openssl cms -sign -binary -nodetach -in body.tst -econtent_type 1.2.840.113549.1.9.16.1.4 \
                 -signer noeku.crt -inkey tsa.key -md sha256 -cades -nosmimecap -outform DER -out body.tok",
            );
        }
        std::fs::read(d.join("body.tok")).unwrap()
    }
}

fn serve_one(dir: &Path, n: usize, mut conn: std::net::TcpStream) {
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut first = String::new();
    if r.read_line(&mut first).is_err() {
        return;
    }
    let section = first
        .split(' ')
        .nth(1)
        .unwrap_or("/")
        .trim_start_matches('/')
        .to_string();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len.min(1 << 16)];
    if r.read_exact(&mut body).is_err() {
        return;
    }
    let q = dir.join(format!("q{n}.tsq"));
    let a = dir.join(format!("a{n}.tsr"));
    std::fs::write(&q, &body).unwrap();
    // `padded`: `good`'s response with its token's `certificates` padded
    // past FORMAT 16.2's 32,768 bytes, as a man in the middle of a plain
    // http TSA can (the signature does not cover them).
    let (section, padded) = match section.as_str() {
        "padded" => ("good".to_string(), true),
        _ => (section, false),
    };
    let known = ["good", "expired", "other", "frac", "decoys", "dup"].contains(&section.as_str());
    let ok = known
        && Command::new("openssl")
            .args(["ts", "-reply", "-config", "tsa.cnf", "-section", &section])
            .args(["-queryfile", p(&q), "-out", p(&a)])
            .current_dir(dir)
            .output()
            .is_ok_and(|o| o.status.success());
    let resp = if ok {
        let mut b = std::fs::read(&a).unwrap();
        if padded {
            b = pad_response(&b, &pem_der(&dir.join("ca.crt")), 32_768 + 300);
        }
        let mut r = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/timestamp-reply\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            b.len()
        )
        .into_bytes();
        r.extend_from_slice(&b);
        r
    } else {
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .to_vec()
    };
    let _ = conn.write_all(&resp);
}

/// A DER element's (header length, content length) at the start of `b`.
fn der_head(b: &[u8]) -> (usize, usize) {
    match b[1] {
        l if l < 0x80 => (2, usize::from(l)),
        l => {
            let n = usize::from(l & 0x7f);
            let len = b[2..2 + n]
                .iter()
                .fold(0usize, |a, &x| a << 8 | usize::from(x));
            (2 + n, len)
        }
    }
}

/// A DER element: `tag`, its length, `v`.
pub(crate) fn der(tag: u8, v: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    if v.len() < 0x80 {
        out.push(v.len() as u8);
    } else {
        let l = v.len().to_be_bytes();
        let skip = l.iter().take_while(|&&x| x == 0).count();
        out.push(0x80 | (l.len() - skip) as u8);
        out.extend_from_slice(&l[skip..]);
    }
    out.extend_from_slice(v);
    out
}

/// The elements in the content of a constructed DER element.
fn der_children(b: &[u8]) -> Vec<&[u8]> {
    let (h, l) = der_head(b);
    let mut v = &b[h..h + l];
    let mut out = Vec::new();
    while !v.is_empty() {
        let (h, l) = der_head(v);
        out.push(&v[..h + l]);
        v = &v[h + l..];
    }
    out
}

/// The DER of the first certificate of a PEM file.
pub(crate) fn pem_der(path: &Path) -> Vec<u8> {
    use base64::Engine as _;
    let text = std::fs::read_to_string(path).unwrap();
    let b64: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

/// A `TimeStampResp` whose token's `certificates` hold `cert` again as
/// often as it takes for the token to exceed `over` bytes (the signature
/// does not cover them: the token still verifies).
pub(crate) fn pad_response(resp: &[u8], cert: &[u8], over: usize) -> Vec<u8> {
    let [status, token] = der_children(resp)[..] else {
        panic!("a TimeStampResp with a token")
    };
    let [oid, content] = der_children(token)[..] else {
        panic!("a ContentInfo")
    };
    let sd = der_children(content)[0];
    let times = over.saturating_sub(token.len()) / cert.len() + 1;
    let parts: Vec<Vec<u8>> = der_children(sd)
        .into_iter()
        .map(|p| {
            if p[0] == 0xa0 {
                let (h, l) = der_head(p);
                let mut v = p[h..h + l].to_vec();
                for _ in 0..times {
                    v.extend_from_slice(cert);
                }
                der(0xa0, &v)
            } else {
                p.to_vec()
            }
        })
        .collect();
    let sd = der(0x30, &parts.concat());
    let token = der(0x30, &[oid, &der(0xa0, &sd)].concat());
    assert!(token.len() > over, "padded to {}", token.len());
    der(0x30, &[status, &token[..]].concat())
}
