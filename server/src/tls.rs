//! TLS for [`crate::serve()`] (`veil serve --tls-cert FILE --tls-key FILE`) and
//! [`crate::Client`] (`https://` URLs, `veil client --ca-cert FILE`), with rustls on the
//! `ring` provider: TLS 1.2 and 1.3 with rustls' safe defaults, HTTP/1.1 by ALPN, no client
//! certificates (put a proxy with mTLS in front for that, `docs/serving.md`).
//!
//! PEM files are read whole up to [`MAX_PEM_BYTES`]; every failure is one line naming the
//! flag and the file: missing, unreadable, not PEM, no certificate or key in it, a key that
//! does not match the certificate.

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest PEM file read (certificate chains and CA bundles are kilobytes; a system bundle
/// a few hundred).
pub const MAX_PEM_BYTES: u64 = 16 << 20;

/// The certificate chain and private key a server presents (`veil serve --tls-cert FILE
/// --tls-key FILE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificates: the server's first, then the intermediates up to (not including)
    /// the CA the clients trust.
    pub cert: PathBuf,
    /// The PEM private key of the first certificate (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

fn crypto() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads `path` (at most [`MAX_PEM_BYTES`]); errors name `flag`.
fn read_pem(flag: &str, path: &Path) -> Result<Vec<u8>, String> {
    let err = |e: &dyn std::fmt::Display| format!("{flag} {}: {e}", path.display());
    let meta = std::fs::metadata(path).map_err(|e| err(&e))?;
    if !meta.is_file() {
        return Err(err(&"not a file"));
    }
    if meta.len() > MAX_PEM_BYTES {
        return Err(err(&format!(
            "{} bytes, over the {} bytes a PEM file may have",
            meta.len(),
            MAX_PEM_BYTES
        )));
    }
    std::fs::read(path).map_err(|e| err(&e))
}

fn pem_error(flag: &str, path: &Path, e: &pem::Error) -> String {
    let what = match e {
        pem::Error::NoItemsFound => "no PEM block of the right kind in it".to_string(),
        e => format!("not a valid PEM file ({e})"),
    };
    format!("{flag} {}: {what}", path.display())
}

/// The certificates of a PEM file (at least one).
pub fn load_certs(flag: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let data = read_pem(flag, path)?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(flag, path, &e))?;
    if certs.is_empty() {
        return Err(format!(
            "{flag} {}: no certificate in it (give a PEM file of -----BEGIN CERTIFICATE----- blocks)",
            path.display()
        ));
    }
    Ok(certs)
}

/// The private key of a PEM file.
fn load_key(flag: &str, path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let data = read_pem(flag, path)?;
    PrivateKeyDer::from_pem_slice(&data).map_err(|e| match e {
        pem::Error::NoItemsFound => format!(
            "{flag} {}: no private key in it (give a PEM file with a -----BEGIN PRIVATE KEY----- block)",
            path.display()
        ),
        e => pem_error(flag, path, &e),
    })
}

/// The server's TLS configuration from its certificate chain and key.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, String> {
    let certs = load_certs("--tls-cert", &files.cert)?;
    let key = load_key("--tls-key", &files.key)?;
    let mut config = rustls::ServerConfig::builder_with_provider(crypto())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "--tls-cert {} and --tls-key {}: unusable together ({e}); give the key of the first certificate",
                files.cert.display(),
                files.key.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client's TLS configuration trusting the CA certificates of a PEM file (`--ca-cert`).
pub fn client_config(ca_cert: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in load_certs("--ca-cert", ca_cert)? {
        roots.add(c).map_err(|e| {
            format!(
                "--ca-cert {}: a certificate is unusable as a CA ({e})",
                ca_cert.display()
            )
        })?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(crypto())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The name a client checks the server's certificate against: the URL's host, a DNS name
/// or an IP address.
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host:?} is not a host name or IP address for TLS ({e})"))
}

/// One line for a failed TLS handshake (client side), from the I/O error tokio-rustls gives.
pub fn handshake_error(e: &std::io::Error) -> String {
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return format!("the TLS handshake failed: {e}");
    };
    use rustls::{CertificateError, Error};
    match tls {
        Error::InvalidCertificate(CertificateError::UnknownIssuer)
        | Error::InvalidCertificate(CertificateError::BadSignature) => {
            "the server's certificate is not signed by a CA in --ca-cert (wrong CA file, or a server impersonating this one)".into()
        }
        Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "the server's certificate is not for this host (the URL's host must be among the certificate's names or addresses)".into(),
        Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "the server's certificate has expired".into(),
        Error::InvalidMessage(_) => {
            "the server does not speak TLS (is it a plain http:// server?)".into()
        }
        e => format!("the TLS handshake failed: {e}"),
    }
}

/// Whether the first bytes a server reads look like plain HTTP (a method name) rather than a
/// TLS handshake (which starts with the byte 22).
pub fn looks_like_plain_http(first: &[u8]) -> bool {
    first.first().is_some_and(u8::is_ascii_uppercase)
        && first.iter().all(|&b| b.is_ascii_uppercase() || b == b' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str, content: &[u8]) -> PathBuf {
        let p = std::env::temp_dir().join(format!("veil-tls-{name}-{}", std::process::id()));
        std::fs::write(&p, content).unwrap();
        p
    }

    #[test]
    fn bad_pem_files_are_one_clear_line() {
        let missing = std::env::temp_dir().join("veil-tls-missing.pem");
        let e = load_certs("--tls-cert", &missing).unwrap_err();
        assert!(
            e.starts_with("--tls-cert ") && e.contains("veil-tls-missing"),
            "{e}"
        );
        let empty = tmp("empty", b"just text\n");
        let e = load_certs("--ca-cert", &empty).unwrap_err();
        assert!(e.contains("no certificate"), "{e}");
        let e = load_key("--tls-key", &empty).unwrap_err();
        assert!(e.contains("no private key"), "{e}");
        let broken = tmp(
            "broken",
            b"-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n",
        );
        let e = load_certs("--tls-cert", &broken).unwrap_err();
        assert!(e.contains("not a valid PEM"), "{e}");
        let unterminated = tmp("unterminated", b"-----BEGIN CERTIFICATE-----\nAAAA\n");
        let e = load_certs("--tls-cert", &unterminated).unwrap_err();
        assert!(e.contains("not a valid PEM"), "{e}");
        for p in [empty, broken, unterminated] {
            std::fs::remove_file(p).unwrap();
        }
    }

    #[test]
    fn plain_http_is_told_from_tls() {
        assert!(looks_like_plain_http(b"GET "));
        assert!(looks_like_plain_http(b"POST"));
        assert!(!looks_like_plain_http(b" GET"));
        assert!(!looks_like_plain_http(&[22, 3, 1, 0]));
        assert!(!looks_like_plain_http(b""));
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("localhost").is_ok());
        assert!(server_name("bad host").is_err());
    }
}
