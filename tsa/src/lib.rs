//! Checking RFC 3161 timestamp tokens on Stele checkpoints (docs/FORMAT.md
//! section 16): the token's imprint, its CMS signature over the signed
//! attributes, `messageDigest`, `signingCertificateV2` (ESSCertIDv2), the TSA
//! certificate's critical `timeStamping` extended key usage, and a path from
//! it to a CA the auditor gives, every certificate valid at the token's
//! `genTime`.
//!
//! The ASN.1 and the signatures are RustCrypto's (`cms`, `x509-tsp`,
//! `x509-cert`, `der`, `p256`, `rsa`, `sha2`). No RustCrypto crate validates
//! a certification path or applies RFC 3161's rules to a signer certificate,
//! so this crate does that by hand (marked "hand-written" below), and only
//! as much of RFC 5280 6.1 as a timestamp needs: signatures, issuer/subject
//! names, validity at `genTime`, `basicConstraints` of issuers (cA and
//! pathLenConstraint), `keyCertSign` when an issuer has keyUsage. It does not
//! fetch or check revocation (CRL, OCSP): an auditor who needs it checks the
//! TSA certificate's status out of band.
//!
//! Kept out of stele-core so that the browser's main verifier does not
//! carry x509 and CMS: the CLI links it, the browser loads it lazily
//! (wasm-tsa).
//!
//! ```text
//! timestamp 4 MIIF0gYJKoZIhvcNAQcCoIIFwzCCBb8CAQMx…      (one line after a checkpoint)
//! ```
//!
//! ```
//! use stele_tsa::{CaError, TsaChecker};
//! assert_eq!(TsaChecker::from_pem_or_der(b"not a certificate").unwrap_err(), CaError::NoCertificate);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use cms::cert::CertificateChoices;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::revocation::RevocationInfoChoices;
use cms::signed_data::{
    DigestAlgorithmIdentifiers, EncapsulatedContentInfo, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{ObjectIdentifier as Oid, OctetString};
use der::{Decode, Encode, Sequence};
use sha2_10::Digest as _;
use std::fmt;
use std::time::Duration;
use stele_core::Hash;
use stele_core::timestamp::{Attestation, MAX_TOKEN_BYTES, TokenChecker, TokenError, TokenProblem};
use tst::TstInfo;
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier};

mod tst;

const ID_SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
const ID_CT_TST_INFO: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.1.4");
const ID_CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
const ID_SIGNING_CERTIFICATE_V2: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.47");
const ID_KP_TIME_STAMPING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.8");
const ID_EXTENDED_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");
const ID_SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
const ID_SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");
const ID_RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
const ID_SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
const ID_SHA384_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
const ID_SHA512_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
const ID_ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
const ID_EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
const ID_P256: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");

/// Longest CA file accepted.
pub const MAX_CA_BYTES: usize = 1 << 20;
/// Certificates followed from the TSA's towards the CA at most.
const MAX_PATH: usize = 8;
/// Issuer signatures tried per token at most (over the whole path): a token
/// may carry any number of certificates named like the CA, and each try is
/// a signature verification (70 decoys in a token repeated 1,500 times made
/// one verification 146x slower: red-team).
const MAX_SIGNATURE_TRIES: usize = 16;

/// Why a CA file is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaError {
    /// Larger than [`MAX_CA_BYTES`].
    TooLarge,
    /// Neither PEM `CERTIFICATE` blocks nor one DER certificate.
    NoCertificate,
    /// A PEM or DER certificate that does not parse.
    Malformed(String),
}

impl fmt::Display for CaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge => write!(f, "larger than {MAX_CA_BYTES} bytes; not a CA certificate"),
            Self::NoCertificate => f.write_str(
                "no certificate in it (expected PEM \"-----BEGIN CERTIFICATE-----\" blocks or one DER certificate)",
            ),
            Self::Malformed(e) => write!(f, "a certificate does not parse: {e}"),
        }
    }
}

impl std::error::Error for CaError {}

/// Checks tokens against the CA certificates an auditor trusts (trust
/// anchors: a root, an intermediate, or the TSA's own certificate).
#[derive(Clone)]
pub struct TsaChecker {
    anchors: Vec<(Certificate, Vec<u8>)>,
}

impl fmt::Debug for TsaChecker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.anchors.iter().map(|(c, _)| name_of(c)).collect();
        f.debug_struct("TsaChecker")
            .field("anchors", &names)
            .finish()
    }
}

impl TsaChecker {
    /// The trust anchors in a file: PEM `CERTIFICATE` blocks, or one DER
    /// certificate.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Self, CaError> {
        if bytes.len() > MAX_CA_BYTES {
            return Err(CaError::TooLarge);
        }
        let certs = if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
            Certificate::load_pem_chain(bytes).map_err(|e| CaError::Malformed(e.to_string()))?
        } else if bytes.first() == Some(&0x30) {
            vec![Certificate::from_der(bytes).map_err(|e| CaError::Malformed(e.to_string()))?]
        } else {
            return Err(CaError::NoCertificate);
        };
        if certs.is_empty() {
            return Err(CaError::NoCertificate);
        }
        let anchors = certs
            .into_iter()
            .map(|c| {
                let der = c.to_der().map_err(|e| CaError::Malformed(e.to_string()))?;
                Ok((c, der))
            })
            .collect::<Result<_, CaError>>()?;
        Ok(Self { anchors })
    }

    /// The anchors' subjects (RFC 4514), for messages.
    pub fn anchor_names(&self) -> Vec<String> {
        self.anchors.iter().map(|(c, _)| name_of(c)).collect()
    }
}

fn malformed(m: impl Into<String>) -> TokenError {
    TokenError {
        problem: TokenProblem::Malformed,
        message: m.into(),
    }
}

fn untrusted(m: impl Into<String>) -> TokenError {
    TokenError {
        problem: TokenProblem::Untrusted,
        message: m.into(),
    }
}

/// RFC 5652 5.1 `SignedData`: `cms`'s `SignedData` with its `certificates`
/// read as a list rather than a `SetOfVec`. `SetOfVec` refuses a SET OF
/// that holds an element twice ("SET OF contains duplicate"), and OpenSSL's
/// TSA lists its certificate twice when its `certs` file holds it and the
/// request has `certReq` (Stele's always does): `openssl ts -verify` accepts
/// such a token, and the signature does not cover the set. No crate type
/// reads a SET OF with repeats, hence this struct; the repeats are dropped
/// by [`token_certificates`]. Every other field is `cms`'s type, as strict
/// as before.
#[derive(Clone, Debug, Sequence)]
struct TokenSignedData {
    version: CmsVersion,
    digest_algorithms: DigestAlgorithmIdentifiers,
    encap_content_info: EncapsulatedContentInfo,
    /// `[0] IMPLICIT CertificateSet`: each element undecoded. (`Vec` reads
    /// the elements of a SET OF as it does those of a SEQUENCE OF: the
    /// implicit tag replaces either universal tag.)
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    certificates: Option<Vec<der::Any>>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    crls: Option<RevocationInfoChoices>,
    signer_infos: SignerInfos,
}

/// The token's `SignedData` (the content of its ContentInfo).
fn signed_data(content: &der::Any) -> der::Result<TokenSignedData> {
    content.decode_as()
}

/// The X.509 certificates of a token's `certificates` set, each once, in the
/// token's order, with their DER: a certificate listed again with the same
/// bytes is skipped before it is decoded (so repeats cost a comparison, not
/// a parse). Other certificate formats are ignored, as before.
fn token_certificates(sd: &TokenSignedData) -> Result<Vec<(Certificate, Vec<u8>)>, TokenError> {
    let raws = sd
        .certificates
        .iter()
        .flatten()
        .map(Encode::to_der)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| malformed(format!("a certificate in the token: {e}")))?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for raw in &raws {
        if !seen.insert(raw.as_slice()) {
            continue;
        }
        let choice = CertificateChoices::from_der(raw).map_err(|e| {
            malformed(format!(
                "the token's SignedData does not parse: a certificate: {e}"
            ))
        })?;
        if let CertificateChoices::Certificate(c) = choice {
            let der = c
                .to_der()
                .map_err(|e| malformed(format!("a certificate in the token: {e}")))?;
            out.push((c, der));
        }
    }
    Ok(out)
}

/// RFC 5035 `SigningCertificateV2 ::= SEQUENCE { certs SEQUENCE OF
/// ESSCertIDv2, policies SEQUENCE OF PolicyInformation OPTIONAL }`; no
/// RustCrypto crate defines it. `policies` is kept undecoded.
#[derive(Clone, Debug, Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
    #[asn1(optional = "true")]
    policies: Option<der::Any>,
}

/// RFC 5035 `ESSCertIDv2 ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier
/// DEFAULT {algorithm id-sha256}, certHash OCTET STRING, issuerSerial
/// IssuerSerial OPTIONAL }`.
#[derive(Clone, Debug, Sequence)]
struct EssCertIdV2 {
    #[asn1(optional = "true")]
    hash_algorithm: Option<x509_cert::spki::AlgorithmIdentifierOwned>,
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<IssuerSerial>,
}

/// `IssuerSerial ::= SEQUENCE { issuer GeneralNames, serialNumber
/// CertificateSerialNumber }`; the issuer is kept undecoded.
#[derive(Clone, Debug, Sequence)]
struct IssuerSerial {
    issuer: der::Any,
    serial_number: x509_cert::serial_number::SerialNumber,
}

/// SHA-2 digest named by an AlgorithmIdentifier's OID.
fn digest(alg: &Oid, data: &[u8]) -> Option<Vec<u8>> {
    Some(match *alg {
        ID_SHA256 => sha2_10::Sha256::digest(data).to_vec(),
        ID_SHA384 => sha2_10::Sha384::digest(data).to_vec(),
        ID_SHA512 => sha2_10::Sha512::digest(data).to_vec(),
        _ => return None,
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A name as RFC 4514 writes it: the last RDN first (x509-cert's Display
/// keeps the encoded order).
fn rfc4514(n: &x509_cert::name::Name) -> String {
    n.0.iter()
        .rev()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn name_of(c: &Certificate) -> String {
    rfc4514(&c.tbs_certificate.subject)
}

/// Verifies `signature` over `message` with `cert`'s public key.
/// `alg` is the signature algorithm; `hash` the digest algorithm for
/// algorithms that do not name it (CMS's `rsaEncryption`).
fn verify_sig(
    cert: &Certificate,
    alg: &Oid,
    hash: Option<&Oid>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    let spki = &cert.tbs_certificate.subject_public_key_info;
    let key = spki
        .subject_public_key
        .as_bytes()
        .ok_or("the public key is not a whole number of bytes")?;
    let digest_oid = match *alg {
        ID_ECDSA_WITH_SHA256 | ID_SHA256_WITH_RSA => ID_SHA256,
        ID_SHA384_WITH_RSA => ID_SHA384,
        ID_SHA512_WITH_RSA => ID_SHA512,
        ID_RSA_ENCRYPTION => *hash.ok_or("rsaEncryption without a digest algorithm")?,
        other => return Err(format!("unsupported signature algorithm {other}")),
    };
    let hashed = digest(&digest_oid, message)
        .ok_or_else(|| format!("unsupported digest algorithm {digest_oid}"))?;
    match spki.algorithm.oid {
        ID_EC_PUBLIC_KEY => {
            use p256::ecdsa::signature::hazmat::PrehashVerifier;
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<Oid>().ok());
            if curve != Some(ID_P256) || *alg != ID_ECDSA_WITH_SHA256 {
                return Err("unsupported EC key (only P-256 with ecdsa-with-SHA256)".into());
            }
            let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(key)
                .map_err(|_| "the P-256 public key does not parse".to_string())?;
            let sig = p256::ecdsa::Signature::from_der(signature)
                .map_err(|_| "the ECDSA signature does not parse".to_string())?;
            vk.verify_prehash(&hashed, &sig)
                .map_err(|_| "the ECDSA signature does not verify".to_string())
        }
        ID_RSA_ENCRYPTION => {
            use rsa::pkcs1::DecodeRsaPublicKey;
            if !matches!(
                *alg,
                ID_RSA_ENCRYPTION | ID_SHA256_WITH_RSA | ID_SHA384_WITH_RSA | ID_SHA512_WITH_RSA
            ) {
                return Err(format!("signature algorithm {alg} does not fit an RSA key"));
            }
            let pk = rsa::RsaPublicKey::from_pkcs1_der(key)
                .map_err(|_| "the RSA public key does not parse".to_string())?;
            let scheme = match digest_oid {
                ID_SHA256 => rsa::Pkcs1v15Sign::new::<sha2_10::Sha256>(),
                ID_SHA384 => rsa::Pkcs1v15Sign::new::<sha2_10::Sha384>(),
                _ => rsa::Pkcs1v15Sign::new::<sha2_10::Sha512>(),
            };
            pk.verify(scheme, &hashed, signature)
                .map_err(|_| "the RSA signature does not verify".to_string())
        }
        other => Err(format!("unsupported public key algorithm {other}")),
    }
}

/// Hand-written (RFC 5280 4.1.2.5): `cert` is valid at `at`.
fn valid_at(cert: &Certificate, at: Duration) -> bool {
    let v = &cert.tbs_certificate.validity;
    v.not_before.to_unix_duration() <= at && at <= v.not_after.to_unix_duration()
}

impl TsaChecker {
    fn check_token(&self, token: &[u8], imprint: &Hash) -> Result<Attestation, TokenError> {
        // RFC 3161 2.4.2: the token is a CMS ContentInfo holding SignedData
        // whose content is a TSTInfo.
        let ci = ContentInfo::from_der(token)
            .map_err(|e| malformed(format!("the token is not DER ContentInfo: {e}")))?;
        if ci.content_type != ID_SIGNED_DATA {
            return Err(malformed(format!(
                "the token's content type is {}, not signedData",
                ci.content_type
            )));
        }
        let sd = signed_data(&ci.content)
            .map_err(|e| malformed(format!("the token's SignedData does not parse: {e}")))?;
        let token_certs = token_certificates(&sd)?;
        if sd.encap_content_info.econtent_type != ID_CT_TST_INFO {
            return Err(malformed("the token's content is not a TSTInfo"));
        }
        let tst_der = sd
            .encap_content_info
            .econtent
            .as_ref()
            .ok_or_else(|| malformed("the token has no TSTInfo"))?
            .decode_as::<OctetString>()
            .map_err(|e| malformed(format!("the TSTInfo is not an OCTET STRING: {e}")))?;
        let tst_der = tst_der.as_bytes();
        let tst = TstInfo::from_der(tst_der)
            .map_err(|e| malformed(format!("the TSTInfo does not parse: {e}")))?;
        // FORMAT 16.3: certificates are judged at genTime (with its
        // fraction); the report's time is the second it falls in, rounded up.
        let gen_time = tst.gen_time.unix_duration();
        let time = tst.gen_time.to_string_rounded_up();

        // FORMAT 16.3 step 3: the imprint.
        let mi = &tst.message_imprint;
        if mi.hash_algorithm.oid != ID_SHA256 {
            return Err(TokenError {
                problem: TokenProblem::Mismatch,
                message: format!(
                    "the token's imprint uses {}, not SHA-256",
                    mi.hash_algorithm.oid
                ),
            });
        }
        if mi.hashed_message.as_bytes() != imprint.0 {
            return Err(TokenError {
                problem: TokenProblem::Mismatch,
                message: format!(
                    "the token is for imprint {}, but the checkpoint's body hashes to {}",
                    hex(mi.hashed_message.as_bytes()),
                    imprint.to_hex()
                ),
            });
        }

        // RFC 3161 2.4.1 / RFC 5652 5.3: one signer, with signed attributes.
        let si: &SignerInfo = match sd.signer_infos.0.as_slice() {
            [si] => si,
            s => {
                return Err(malformed(format!(
                    "the token has {} signers, expected 1",
                    s.len()
                )));
            }
        };
        let attrs = si
            .signed_attrs
            .as_ref()
            .ok_or_else(|| malformed("the signer has no signed attributes"))?;
        let one_value = |oid: Oid, what: &str| -> Result<der::Any, TokenError> {
            let mut found = attrs.iter().filter(|a| a.oid == oid);
            let a = found
                .next()
                .ok_or_else(|| malformed(format!("the signed attributes have no {what}")))?;
            if found.next().is_some() || a.values.len() != 1 {
                return Err(malformed(format!(
                    "the signed attribute {what} is not single"
                )));
            }
            Ok(a.values.get(0).cloned().expect("one value"))
        };
        // RFC 5652 11.1: contentType equals eContentType.
        let ct: Oid = one_value(ID_CONTENT_TYPE, "contentType")?
            .decode_as()
            .map_err(|_| malformed("the contentType attribute is not an OID"))?;
        if ct != ID_CT_TST_INFO {
            return Err(malformed(format!(
                "the contentType attribute is {ct}, not id-ct-TSTInfo"
            )));
        }
        // RFC 5652 11.2: messageDigest is the digest of the TSTInfo.
        let md: OctetString = one_value(ID_MESSAGE_DIGEST, "messageDigest")?
            .decode_as()
            .map_err(|_| malformed("the messageDigest attribute is not an OCTET STRING"))?;
        let want = digest(&si.digest_alg.oid, tst_der).ok_or_else(|| {
            malformed(format!(
                "unsupported digest algorithm {}",
                si.digest_alg.oid
            ))
        })?;
        if md.as_bytes() != want.as_slice() {
            return Err(malformed(format!(
                "messageDigest is {}, but the TSTInfo hashes to {}",
                hex(md.as_bytes()),
                hex(&want)
            )));
        }

        let sc: SigningCertificateV2 = one_value(
            ID_SIGNING_CERTIFICATE_V2,
            "signingCertificateV2 (ESSCertIDv2)",
        )?
        .decode_as()
        .map_err(|e| malformed(format!("signingCertificateV2 does not parse: {e}")))?;

        // The signer's certificate: one of the anchors, or in the token.
        // Anchors come first, so that a certificate in the token (which
        // the signature does not cover) can never stand in for one.
        let mut pool: Vec<(Certificate, Vec<u8>)> = self.anchors.clone();
        pool.extend(token_certs);
        let signer = pool
            .iter()
            .find(|(c, _)| match &si.sid {
                SignerIdentifier::IssuerAndSerialNumber(isn) => {
                    c.tbs_certificate.issuer == isn.issuer
                        && c.tbs_certificate.serial_number == isn.serial_number
                }
                SignerIdentifier::SubjectKeyIdentifier(ski) => c
                    .tbs_certificate
                    .get::<SubjectKeyIdentifier>()
                    .ok()
                    .flatten()
                    .is_some_and(|(_, k)| k == *ski),
            })
            .ok_or_else(|| {
                untrusted("the token does not carry the TSA's certificate, and no given CA certificate is it")
            })?;
        let (signer_cert, signer_der) = (&signer.0, &signer.1);
        let tsa = name_of(signer_cert);

        // RFC 5035 / RFC 3161 2.4.1: signingCertificateV2 names the signer's
        // certificate by its hash (read above, before the lookup).
        let first = sc
            .certs
            .first()
            .ok_or_else(|| malformed("signingCertificateV2 names no certificate"))?;
        let halg = first.hash_algorithm.as_ref().map_or(ID_SHA256, |a| a.oid);
        let h = digest(&halg, signer_der).ok_or_else(|| {
            malformed(format!("signingCertificateV2 uses unsupported hash {halg}"))
        })?;
        if first.cert_hash.as_bytes() != h.as_slice() {
            return Err(untrusted(format!(
                "signingCertificateV2 names certificate {}, but the signer's certificate ({tsa}) hashes to {}",
                hex(first.cert_hash.as_bytes()),
                hex(&h)
            )));
        }
        if let Some(is) = &first.issuer_serial
            && is.serial_number != signer_cert.tbs_certificate.serial_number
        {
            return Err(untrusted(
                "signingCertificateV2's issuerSerial names another certificate's serial number",
            ));
        }

        // RFC 5652 5.4: the signature is over the DER of the signed
        // attributes with the SET OF tag.
        let signed = attrs
            .to_der()
            .map_err(|e| malformed(format!("the signed attributes do not encode: {e}")))?;
        verify_sig(
            signer_cert,
            &si.signature_algorithm.oid,
            Some(&si.digest_alg.oid),
            &signed,
            si.signature.as_bytes(),
        )
        .map_err(|e| malformed(format!("CMS signature by {tsa}: {e}")))?;

        // Hand-written, RFC 3161 2.3: the TSA's certificate has exactly one
        // extended key usage, id-kp-timeStamping, and the extension is
        // critical.
        let eku = signer_cert
            .tbs_certificate
            .get::<ExtendedKeyUsage>()
            .map_err(|e| {
                untrusted(format!(
                    "the TSA certificate ({tsa}): extendedKeyUsage: {e}"
                ))
            })?;
        match eku {
            None => {
                return Err(untrusted(format!(
                    "the TSA certificate ({tsa}) has no extendedKeyUsage; RFC 3161 requires timeStamping, critical"
                )));
            }
            Some((critical, ExtendedKeyUsage(purposes))) => {
                if purposes != [ID_KP_TIME_STAMPING] {
                    return Err(untrusted(format!(
                        "the TSA certificate ({tsa}) has extendedKeyUsage {}; RFC 3161 requires timeStamping only",
                        purposes
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                if !critical {
                    return Err(untrusted(format!(
                        "the TSA certificate ({tsa}): extendedKeyUsage timeStamping is not critical"
                    )));
                }
            }
        }
        let _ = ID_EXTENDED_KEY_USAGE;

        // Hand-written path validation (RFC 5280 6.1, the parts a timestamp
        // needs): from the TSA's certificate up to an anchor, each
        // certificate valid at genTime, each issuer a CA whose key verifies
        // the certificate's signature.
        let mut cur: &(Certificate, Vec<u8>) = signer;
        let mut tries = 0usize;
        // CA certificates (not self-issued) on the path below the issuer
        // looked for: those `pathLenConstraint` counts.
        let mut below = 0usize;
        for _ in 0..MAX_PATH {
            let c = &cur.0;
            if !valid_at(c, gen_time) {
                let v = &c.tbs_certificate.validity;
                return Err(untrusted(format!(
                    "certificate {} is valid from {} to {}, not at the token's time {time}",
                    name_of(c),
                    v.not_before,
                    v.not_after
                )));
            }
            if self.anchors.iter().any(|(_, d)| *d == cur.1) {
                return Ok(Attestation { time, tsa });
            }
            let tbs_der = c
                .tbs_certificate
                .to_der()
                .map_err(|e| malformed(format!("certificate {}: {e}", name_of(c))))?;
            let sig = c.signature.as_bytes().unwrap_or_default();
            let issuer = pool.iter().find(|(i, d)| {
                *d != cur.1
                    && i.tbs_certificate.subject == c.tbs_certificate.issuer
                    && {
                        tries += 1;
                        tries <= MAX_SIGNATURE_TRIES
                    }
                    && verify_sig(i, &c.signature_algorithm.oid, None, &tbs_der, sig).is_ok()
            });
            if issuer.is_none() && tries > MAX_SIGNATURE_TRIES {
                return Err(untrusted(format!(
                    "the token offers more than {MAX_SIGNATURE_TRIES} certificates that could have issued those on the path from the TSA certificate ({tsa}); none of the first verified"
                )));
            }
            let Some(issuer) = issuer else {
                let via = if std::ptr::eq(cur, signer) {
                    String::new()
                } else {
                    format!(" leads to {}, which", name_of(c))
                };
                return Err(untrusted(format!(
                    "the TSA certificate ({tsa}){via} is issued by {}, not by the given CA ({})",
                    rfc4514(&c.tbs_certificate.issuer),
                    self.anchor_names().join("; ")
                )));
            };
            let bc = issuer
                .0
                .tbs_certificate
                .get::<BasicConstraints>()
                .ok()
                .flatten()
                .map(|(_, bc)| bc);
            if !bc.as_ref().is_some_and(|bc| bc.ca) {
                return Err(untrusted(format!(
                    "certificate {} is issued by {}, which is not a CA (basicConstraints cA is not true)",
                    name_of(c),
                    name_of(&issuer.0)
                )));
            }
            // RFC 5280 6.1.4 (l, m): at most pathLenConstraint CA
            // certificates (not self-issued) between the issuer and the TSA's.
            if let Some(max) = bc.and_then(|bc| bc.path_len_constraint)
                && below > usize::from(max)
            {
                return Err(untrusted(format!(
                    "certificate {} has pathLenConstraint {max}, but {below} CA certificates follow it on the path to the TSA certificate ({tsa})",
                    name_of(&issuer.0)
                )));
            }
            // RFC 5280 6.1.4 (n): an issuer whose keyUsage is present must
            // have keyCertSign.
            let ku = issuer.0.tbs_certificate.get::<KeyUsage>().map_err(|e| {
                untrusted(format!("certificate {}: keyUsage: {e}", name_of(&issuer.0)))
            })?;
            if let Some((_, ku)) = ku
                && !ku.key_cert_sign()
            {
                return Err(untrusted(format!(
                    "certificate {} is issued by {}, whose keyUsage does not allow keyCertSign",
                    name_of(c),
                    name_of(&issuer.0)
                )));
            }
            if issuer.0.tbs_certificate.subject != issuer.0.tbs_certificate.issuer {
                below += 1;
            }
            cur = issuer;
        }
        Err(untrusted(format!(
            "no path from the TSA certificate ({tsa}) to the given CA within {MAX_PATH} certificates"
        )))
    }
}

impl TokenChecker for TsaChecker {
    fn check(&self, token: &[u8], imprint: &Hash) -> Result<Attestation, TokenError> {
        self.check_token(token, imprint)
    }
}

/// The DER `TimeStampReq` (RFC 3161 2.4.1) for a checkpoint's imprint:
/// version 1, SHA-256, the given nonce, `certReq` true (so the token
/// carries the TSA's certificate).
pub fn request(imprint: &Hash, nonce: u64) -> Vec<u8> {
    let req = x509_tsp::TimeStampReq {
        version: x509_tsp::TspVersion::V1,
        message_imprint: x509_tsp::MessageImprint {
            hash_algorithm: x509_cert::spki::AlgorithmIdentifier {
                oid: ID_SHA256,
                parameters: Some(der::Any::null()),
            },
            hashed_message: OctetString::new(imprint.0.to_vec()).expect("32 bytes"),
        },
        req_policy: None,
        nonce: Some(nonce_int(nonce)),
        cert_req: true,
        extensions: None,
    };
    req.to_der().expect("a request encodes")
}

/// A nonce as a DER INTEGER: minimal bytes, non-negative.
fn nonce_int(nonce: u64) -> der::asn1::Int {
    let b = nonce.to_be_bytes();
    let skip = b.iter().take(7).take_while(|&&x| x == 0).count();
    let mut v = Vec::with_capacity(9);
    if b[skip] >= 0x80 {
        v.push(0);
    }
    v.extend_from_slice(&b[skip..]);
    der::asn1::Int::new(&v).expect("a minimal integer")
}

/// How far a new token's `genTime` may be from the anchoring machine's
/// clock, either way.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// Why a TSA's response gives no token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseError(pub String);

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ResponseError {}

/// The token in a DER `TimeStampResp` (RFC 3161 2.4.2), re-encoded as DER,
/// if the status is granted (0) or grantedWithMods (1), the token is at most
/// [`MAX_TOKEN_BYTES`] (FORMAT 16.2) and its TSTInfo has `nonce` and the
/// expected imprint, SHA-256 (FORMAT 16.1), and a `genTime` within
/// [`MAX_CLOCK_SKEW`] of `now` (since the Unix epoch). The token's signature is
/// checked by [`TsaChecker`], not here.
pub fn token_from_response(
    resp: &[u8],
    imprint: &Hash,
    nonce: u64,
    now: Duration,
) -> Result<Vec<u8>, ResponseError> {
    let r = x509_tsp::TimeStampResp::from_der(resp)
        .map_err(|e| ResponseError(format!("the response is not a DER TimeStampResp: {e}")))?;
    let status = r.status.status as u8;
    if status > 1 {
        let text = r
            .status
            .status_string
            .as_ref()
            .map(|s| format!("{s:?}"))
            .unwrap_or_default();
        return Err(ResponseError(format!(
            "the TSA refused the request (PKIStatus {status}) {text}"
        )));
    }
    let token = r
        .time_stamp_token
        .ok_or_else(|| ResponseError("the response has no token".into()))?;
    let der = token
        .to_der()
        .map_err(|e| ResponseError(format!("the token does not encode: {e}")))?;
    // FORMAT 16.2: a longer token could never be read back (every export
    // of the log failed on its line). Its `certificates`, which the
    // signature does not cover, can be padded in transit: a genuine token
    // passed `--ca` at 40 KB.
    if der.len() > MAX_TOKEN_BYTES {
        return Err(ResponseError(format!(
            "the token is {} bytes, more than the {MAX_TOKEN_BYTES} a timestamp record holds (FORMAT 16.2; certificates added to it on the way?); not kept",
            der.len()
        )));
    }
    let sd = signed_data(&token.content)
        .map_err(|e| ResponseError(format!("the token's SignedData does not parse: {e}")))?;
    // Its certificates decode, as the checker requires.
    let _ = token_certificates(&sd).map_err(|e| ResponseError(e.message))?;
    let tst = sd
        .encap_content_info
        .econtent
        .as_ref()
        .and_then(|e| e.decode_as::<OctetString>().ok())
        .and_then(|o| TstInfo::from_der(o.as_bytes()).ok())
        .ok_or_else(|| ResponseError("the token has no TSTInfo that parses".into()))?;
    // FORMAT 16.1 / 16.3 step 2: any other algorithm fails every check
    // with a CA (red-team: a token over the same 32 bytes labelled SHA-384
    // was kept without --ca and made every export tampered under --tsa-ca).
    let alg = tst.message_imprint.hash_algorithm.oid;
    if alg != ID_SHA256 {
        return Err(ResponseError(format!(
            "the token's imprint uses hash algorithm {alg}, not SHA-256 (2.16.840.1.101.3.4.2.1) as requested"
        )));
    }
    if tst.message_imprint.hashed_message.as_bytes() != imprint.0 {
        return Err(ResponseError(
            "the token is for another imprint than the one requested".into(),
        ));
    }
    let want = nonce_int(nonce);
    if tst.nonce.as_ref().map(|n| n.as_bytes()) != Some(want.as_bytes()) {
        return Err(ResponseError(
            "the token does not carry the request's nonce".into(),
        ));
    }
    // A token just made says it was made now: a genTime far off (a TSA's
    // clock wrong, or a token replayed or forged with a time of its
    // choosing) would attest a false time for good.
    let at = tst.gen_time.unix_duration();
    if at + MAX_CLOCK_SKEW < now || at > now + MAX_CLOCK_SKEW {
        return Err(ResponseError(format!(
            "the token's genTime {} is more than {} minutes from this machine's clock ({}); not kept (check both clocks)",
            tst.gen_time.to_string_rounded_up(),
            MAX_CLOCK_SKEW.as_secs() / 60,
            der::DateTime::from_unix_duration(Duration::from_secs(now.as_secs()))
                .map_or_else(|_| "out of range".into(), |d| d.to_string())
        )));
    }
    Ok(der)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(tag: u8, v: &[u8]) -> Vec<u8> {
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

    /// A granted `TimeStampResp` whose token (unsigned: these checks come
    /// before any signature's) has a TSTInfo with imprint `alg`/`hashed`,
    /// `nonce` and `gen_time`, and `pad` bytes of certificates.
    fn response(alg: Oid, hashed: &[u8], nonce: u64, gen_time: &str, pad: usize) -> Vec<u8> {
        let oid = |o: Oid| o.to_der().unwrap();
        let imprint = der(
            0x30,
            &[
                der(0x30, &[oid(alg), vec![5, 0]].concat()),
                der(0x04, hashed),
            ]
            .concat(),
        );
        let tst = der(
            0x30,
            &[
                vec![2, 1, 1],
                oid(Oid::new_unwrap("1.2.3.4.1")),
                imprint,
                vec![2, 1, 7],
                der(0x18, gen_time.as_bytes()),
                nonce_int(nonce).to_der().unwrap(),
            ]
            .concat(),
        );
        let encap = der(
            0x30,
            &[oid(ID_CT_TST_INFO), der(0xa0, &der(0x04, &tst))].concat(),
        );
        let mut sd = [vec![2, 1, 3], vec![0x31, 0], encap].concat();
        if pad > 0 {
            sd.extend(der(0xa0, &der(0x04, &vec![0u8; pad])));
        }
        sd.extend([0x31, 0]);
        let token = der(
            0x30,
            &[oid(ID_SIGNED_DATA), der(0xa0, &der(0x30, &sd))].concat(),
        );
        der(0x30, &[der(0x30, &[2, 1, 0]), token].concat())
    }

    const NOW: &str = "20261202120000Z";

    fn now() -> Duration {
        der::DateTime::new(2026, 12, 2, 12, 0, 0)
            .unwrap()
            .unix_duration()
    }

    #[test]
    fn a_well_formed_response_gives_its_token() {
        let h = Hash([7; 32]);
        assert!(token_from_response(&response(ID_SHA256, &h.0, 9, NOW, 0), &h, 9, now()).is_ok());
    }

    /// FORMAT 16.2: a token over 32,768 bytes is refused, whatever else it
    /// holds (its certificates can be padded in transit).
    #[test]
    fn a_token_over_the_record_limit_is_refused() {
        let h = Hash([7; 32]);
        let e = token_from_response(&response(ID_SHA256, &h.0, 9, NOW, 33_000), &h, 9, now())
            .unwrap_err();
        assert!(e.0.contains("more than the 32768"), "{e}");
    }

    /// A genTime more than 5 minutes from the clock, either way, is
    /// refused, saying so; within, kept.
    #[test]
    fn a_gen_time_far_from_the_clock_is_refused() {
        let h = Hash([7; 32]);
        let r = response(ID_SHA256, &h.0, 9, NOW, 0);
        let min = Duration::from_secs(60);
        for (off, ok) in [(4, true), (6, false)] {
            for later in [true, false] {
                let at = if later {
                    now() + off * min
                } else {
                    now() - off * min
                };
                let got = token_from_response(&r, &h, 9, at);
                assert_eq!(got.is_ok(), ok, "{off} min, clock later {later}: {got:?}");
                if let Err(e) = got {
                    assert!(
                        e.0.contains("genTime 2026-12-02T12:00:00Z is more than 5 minutes"),
                        "{e}"
                    );
                }
            }
        }
    }

    /// FORMAT 16.1: the imprint's algorithm must be SHA-256, not only its
    /// 32 bytes those asked for.
    #[test]
    fn an_imprint_not_labelled_sha256_is_refused() {
        let h = Hash([7; 32]);
        let e =
            token_from_response(&response(ID_SHA384, &h.0, 9, NOW, 0), &h, 9, now()).unwrap_err();
        assert!(e.0.contains("not SHA-256"), "{e}");
    }
}
