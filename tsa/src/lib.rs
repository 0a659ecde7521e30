//! RFC 3161 time-stamp tokens: the request, the response, and the
//! verification of a token against a pinned TSA certificate. No network
//! I/O: the batcher fetches tokens (`anchord_batcher::tsa::Tsa`); the
//! batcher's audit, the verifier and `anchord verify` check them here, so
//! no stage imports another for it.
//!
//! Why parse with `rasn-cms` and verify by hand: the crates that verify
//! tokens end to end each rejected real TSA output (`x509-tsp` 0.1 refuses
//! fractional-second genTime, `cryptographic-message-syntax` 0.28 fails on a
//! millisecond accuracy), while `rasn-cms` parses both forms but verifies
//! nothing. So parsing is `rasn-cms`'s (a maintained, complete ASN.1 model of
//! CMS and TSP) and the checks are ours, each one explicit:
//!
//! 1. the response status is granted and a token is present;
//! 2. the token is CMS SignedData whose eContentType is id-ct-TSTInfo;
//! 3. TSTInfo's messageImprint is SHA-256 over exactly our digest (and the
//!    nonce echoes ours, when fetching);
//! 4. the signed attributes carry content-type id-ct-TSTInfo and a
//!    message-digest equal to SHA-256 of the eContent;
//! 5. the signature over the DER of the signed attributes verifies under the
//!    *pinned* TSA certificate's key (RSA PKCS#1 v1.5 or ECDSA P-256, with
//!    SHA-256). Pinning replaces chain building: the deployment names the
//!    one TSA certificate it trusts.

use std::path::Path;

use anchord_core::HashSuite;

use rasn::types::{Integer, ObjectIdentifier, OctetString, Oid};
use rasn_cms::tsp::{MessageImprint, PkiStatus, TimeStampReq, TimeStampResp, TstInfo};
use rasn_cms::{ContentInfo, SignedData};
use rasn_pkix::{AlgorithmIdentifier, Certificate};

const OID_SHA256: &Oid =
    Oid::JOINT_ISO_ITU_T_COUNTRY_US_ORGANIZATION_GOV_CSOR_NIST_ALGORITHMS_HASH_SHA256;
const OID_SIGNED_DATA: &Oid = Oid::ISO_MEMBER_BODY_US_RSADSI_PKCS7_SIGNED_DATA;
const OID_TST_INFO: &Oid = Oid::ISO_MEMBER_BODY_US_RSADSI_PKCS9_SMIME_CT_TSTINFO;
const OID_CONTENT_TYPE: &Oid = Oid::ISO_MEMBER_BODY_US_RSADSI_PKCS9_CONTENT_TYPE;
const OID_MESSAGE_DIGEST: &Oid = Oid::ISO_MEMBER_BODY_US_RSADSI_PKCS9_MESSAGE_DIGEST;
const OID_RSA: &Oid = Oid::ISO_MEMBER_BODY_US_RSADSI_PKCS1_RSA;
const OID_SHA256_RSA: &Oid = Oid::const_new(&[1, 2, 840, 113549, 1, 1, 11]);
const OID_EC_PUBLIC_KEY: &Oid = Oid::ISO_MEMBER_BODY_US_ANSI_X962_KEY_TYPE_EC_PUBLIC_KEY;
const OID_ECDSA_SHA256: &Oid = Oid::const_new(&[1, 2, 840, 10045, 4, 3, 2]);

/// DigestInfo prefix of SHA-256 for PKCS#1 v1.5 (RFC 8017 §9.2 note 1).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// Why a token, a response or a certificate was refused.
#[derive(Debug, thiserror::Error)]
pub enum TsaError {
    /// The request could not be built, or a response or token fails a check.
    #[error("timestamp authority: {0}")]
    Invalid(String),
    /// A certificate file cannot be read or decoded.
    #[error("{path}: {reason}")]
    Cert { path: String, reason: String },
}

fn err(s: impl Into<String>) -> TsaError {
    TsaError::Invalid(s.into())
}

/// DER `TimeStampReq` for a SHA-256 digest, asking for the certificate.
pub fn request_der(digest: &[u8; 32], nonce: u64) -> Result<Vec<u8>, TsaError> {
    let req = TimeStampReq {
        version: 1,
        message_imprint: MessageImprint {
            hash_algorithm: AlgorithmIdentifier {
                algorithm: OID_SHA256.to_owned(),
                parameters: None,
            },
            hashed_message: OctetString::from_slice(digest),
        },
        req_policy: None,
        nonce: Some(Integer::from(nonce as i128)),
        cert_req: true,
        extensions: None,
    };
    rasn::der::encode(&req).map_err(|e| err(format!("encoding the request: {e}")))
}

/// The token of a granted `TimeStampResp`.
pub fn token_from_response(der: &[u8]) -> Result<Vec<u8>, TsaError> {
    let resp: TimeStampResp =
        rasn::der::decode(der).map_err(|e| err(format!("not a TimeStampResp: {e}")))?;
    if !matches!(
        resp.status.status,
        PkiStatus::Granted | PkiStatus::GrantedWithMods
    ) {
        return Err(err(format!("request not granted: {:?}", resp.status)));
    }
    let token = resp
        .time_stamp_token
        .ok_or_else(|| err("granted but no token"))?;
    rasn::der::encode(&token).map_err(|e| err(e.to_string()))
}

/// What a verified token says.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    /// genTime, Unix seconds (fractions dropped).
    pub gen_time_unix: i64,
    /// genTime's sub-second part, in nanoseconds, when the TSA sent one.
    pub gen_time_nanos: u32,
    pub nonce: Option<i128>,
    pub serial_number: String,
}

fn oid_eq(a: &ObjectIdentifier, b: &Oid) -> bool {
    **a == *b
}

/// Verify a token (DER ContentInfo) over `digest` (SHA-256) against the
/// pinned TSA certificate (DER). See the module docs for the checks.
pub fn verify_token(
    token: &[u8],
    digest: &[u8; 32],
    cert_der: &[u8],
) -> Result<TokenInfo, TsaError> {
    let (sd, tst) = parse_token(token)?;
    let econtent = sd
        .encap_content_info
        .content
        .as_ref()
        .ok_or_else(|| err("no TSTInfo in the token"))?;
    if !oid_eq(&tst.message_imprint.hash_algorithm.algorithm, OID_SHA256) {
        return Err(err("messageImprint is not SHA-256"));
    }
    if tst.message_imprint.hashed_message.as_ref() != digest.as_slice() {
        return Err(err(format!(
            "messageImprint {} is not the digest {}",
            hex::encode(&tst.message_imprint.hashed_message),
            hex::encode(digest)
        )));
    }
    let signer = sd
        .signer_infos
        .to_vec()
        .into_iter()
        .next()
        .ok_or_else(|| err("no signer"))?
        .clone();
    if !oid_eq(&signer.digest_algorithm.algorithm, OID_SHA256) {
        return Err(err("signer digest algorithm is not SHA-256"));
    }
    let attrs = signer
        .signed_attrs
        .as_ref()
        .ok_or_else(|| err("no signed attributes"))?;
    let attr = |oid: &Oid| {
        attrs
            .to_vec()
            .into_iter()
            .find(|a| oid_eq(&a.r#type, oid))
            .and_then(|a| a.values.to_vec().into_iter().next().cloned())
    };
    let ct = attr(OID_CONTENT_TYPE).ok_or_else(|| err("no content-type attribute"))?;
    let ct: ObjectIdentifier =
        rasn::der::decode(ct.as_bytes()).map_err(|e| err(format!("content-type: {e}")))?;
    if !oid_eq(&ct, OID_TST_INFO) {
        return Err(err("content-type attribute is not id-ct-TSTInfo"));
    }
    let md = attr(OID_MESSAGE_DIGEST).ok_or_else(|| err("no message-digest attribute"))?;
    let md: OctetString =
        rasn::der::decode(md.as_bytes()).map_err(|e| err(format!("message-digest: {e}")))?;
    if md.as_ref() != HashSuite::Sha256.digest(econtent).as_slice() {
        return Err(err("message-digest attribute does not match the TSTInfo"));
    }
    let signed = rasn::der::encode(attrs).map_err(|e| err(e.to_string()))?;
    let signed_digest = HashSuite::Sha256.digest(&signed);

    let cert: Certificate =
        rasn::der::decode(cert_der).map_err(|e| err(format!("TSA certificate: {e}")))?;
    let spki = &cert.tbs_certificate.subject_public_key_info;
    let key_bytes = spki.subject_public_key.as_raw_slice();
    let sig = signer.signature.as_ref();
    let sig_alg = &signer.signature_algorithm.algorithm;
    if oid_eq(&spki.algorithm.algorithm, OID_RSA) {
        if !(oid_eq(sig_alg, OID_RSA) || oid_eq(sig_alg, OID_SHA256_RSA)) {
            return Err(err("RSA key but a non-RSA signature algorithm"));
        }
        use rsa::pkcs1::DecodeRsaPublicKey;
        let key = rsa::RsaPublicKey::from_pkcs1_der(key_bytes)
            .map_err(|e| err(format!("TSA RSA key: {e}")))?;
        let scheme = rsa::Pkcs1v15Sign {
            hash_len: Some(32),
            prefix: SHA256_DIGEST_INFO.to_vec().into_boxed_slice(),
        };
        key.verify(scheme, &signed_digest, sig)
            .map_err(|_| err("token signature does not verify under the TSA certificate"))?;
    } else if oid_eq(&spki.algorithm.algorithm, OID_EC_PUBLIC_KEY) {
        if !oid_eq(sig_alg, OID_ECDSA_SHA256) {
            return Err(err("EC key but not ecdsa-with-SHA256"));
        }
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
            .map_err(|e| err(format!("TSA EC key (P-256 only): {e}")))?;
        let s = p256::ecdsa::Signature::from_der(sig)
            .map_err(|e| err(format!("ECDSA signature: {e}")))?;
        key.verify_prehash(&signed_digest, &s)
            .map_err(|_| err("token signature does not verify under the TSA certificate"))?;
    } else {
        return Err(err("unsupported TSA key type (RSA or ECDSA P-256)"));
    }

    Ok(token_info(&tst))
}

/// The token's SignedData and TSTInfo, parsed (checks 2 of the module docs;
/// nothing is verified).
fn parse_token(token: &[u8]) -> Result<(SignedData, TstInfo), TsaError> {
    let ci: ContentInfo =
        rasn::der::decode(token).map_err(|e| err(format!("token is not ContentInfo: {e}")))?;
    if !oid_eq(&ci.content_type, OID_SIGNED_DATA) {
        return Err(err("token is not CMS SignedData"));
    }
    let sd: SignedData = rasn::der::decode(ci.content.as_bytes())
        .map_err(|e| err(format!("token SignedData: {e}")))?;
    if !oid_eq(&sd.encap_content_info.content_type, OID_TST_INFO) {
        return Err(err("eContentType is not id-ct-TSTInfo"));
    }
    let econtent = sd
        .encap_content_info
        .content
        .as_ref()
        .ok_or_else(|| err("no TSTInfo in the token"))?;
    let tst: TstInfo = rasn::der::decode(econtent).map_err(|e| err(format!("TSTInfo: {e}")))?;
    Ok((sd, tst))
}

/// What a token *claims*, read without any check of its signature or
/// imprint: for showing a token's time marked as unverified where no TSA
/// certificate is trusted. Never a substitute for [`verify_token`].
pub fn read_token_unverified(token: &[u8]) -> Result<TokenInfo, TsaError> {
    parse_token(token).map(|(_, tst)| token_info(&tst))
}

fn token_info(tst: &TstInfo) -> TokenInfo {
    let t = tst.gen_time;
    TokenInfo {
        gen_time_unix: t.timestamp(),
        gen_time_nanos: t.timestamp_subsec_nanos(),
        nonce: tst
            .nonce
            .as_ref()
            .and_then(|n| i128::try_from(n.clone()).ok()),
        serial_number: tst.serial_number.to_string(),
    }
}

/// Read a certificate file, PEM or DER, as DER.
pub fn load_cert_der(path: &Path) -> Result<Vec<u8>, TsaError> {
    let cert_err = |reason: String| TsaError::Cert {
        path: path.display().to_string(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| cert_err(e.to_string()))?;
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Ok(bytes);
    };
    let Some(start) = text.find("-----BEGIN CERTIFICATE-----") else {
        return Ok(bytes);
    };
    let rest = &text[start + "-----BEGIN CERTIFICATE-----".len()..];
    let end = rest
        .find("-----END CERTIFICATE-----")
        .ok_or_else(|| cert_err("unterminated PEM".into()))?;
    let b64: String = rest[..end].split_whitespace().collect();
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| cert_err(e.to_string()))
}

/// The subject of a certificate (DER) as one line, `CN=…, O=…, C=…` in the
/// certificate's order: the name a certificate of the pinned TSA prints.
/// String values of the usual types (UTF8, Printable, IA5, Teletex, BMP)
/// are shown as text, anything else as `#` and its hex DER; attribute types
/// other than the common ones by their dotted OID.
pub fn certificate_subject(cert_der: &[u8]) -> Result<String, TsaError> {
    let cert: Certificate =
        rasn::der::decode(cert_der).map_err(|e| err(format!("certificate: {e}")))?;
    let rasn_pkix::Name::RdnSequence(rdns) = &cert.tbs_certificate.subject;
    let mut parts = Vec::new();
    for rdn in rdns {
        for atv in rdn.to_vec() {
            let arcs: Vec<u32> = atv.r#type.iter().copied().collect();
            let key = match arcs.as_slice() {
                [2, 5, 4, 3] => "CN".to_owned(),
                [2, 5, 4, 6] => "C".to_owned(),
                [2, 5, 4, 7] => "L".to_owned(),
                [2, 5, 4, 8] => "ST".to_owned(),
                [2, 5, 4, 10] => "O".to_owned(),
                [2, 5, 4, 11] => "OU".to_owned(),
                [2, 5, 4, 5] => "serialNumber".to_owned(),
                other => other
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join("."),
            };
            parts.push(format!("{key}={}", directory_string(atv.value.as_bytes())));
        }
    }
    Ok(parts.join(", "))
}

/// A DER string value as text (see [`certificate_subject`]).
fn directory_string(der: &[u8]) -> String {
    let hex_form = || format!("#{}", hex::encode(der));
    let (Some(&tag), Some(&len0)) = (der.first(), der.get(1)) else {
        return hex_form();
    };
    let (start, len) = match len0 {
        0..=0x7f => (2, usize::from(len0)),
        0x81 => match der.get(2) {
            Some(&l) => (3, usize::from(l)),
            None => return hex_form(),
        },
        0x82 => match (der.get(2), der.get(3)) {
            (Some(&a), Some(&b)) => (4, usize::from(a) << 8 | usize::from(b)),
            _ => return hex_form(),
        },
        _ => return hex_form(),
    };
    let Some(body) = der
        .get(start..start + len)
        .filter(|_| der.len() == start + len)
    else {
        return hex_form();
    };
    let text = match tag {
        // UTF8String, PrintableString, IA5String, TeletexString (as Latin-1
        // is the common practice).
        0x0c => String::from_utf8(body.to_vec()).ok(),
        0x13 | 0x16 => body
            .is_ascii()
            .then(|| String::from_utf8_lossy(body).into_owned()),
        0x14 => Some(body.iter().map(|&b| char::from(b)).collect()),
        // BMPString: UTF-16BE.
        0x1e if body.len() % 2 == 0 => char::decode_utf16(
            body.chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]])),
        )
        .collect::<Result<String, _>>()
        .ok(),
        _ => None,
    };
    match text {
        Some(t) if !t.chars().any(char::is_control) => t,
        _ => hex_form(),
    }
}
