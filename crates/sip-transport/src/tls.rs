//! TLS credentials for SIP over TLS (RFC 3261 §26.2; TLS 1.2 per RFC 5246, TLS 1.3 per
//! RFC 8446), built on rustls with the *ring* provider because aws-lc is not compiled in.
//!
//! A server without a configured certificate gets a self-signed one so TLS works out of
//! the box; clients must then trust that certificate explicitly (RFC 5922 server identity
//! is checked against its subjectAltNames). Outgoing connections trust a given CA file, or
//! the system's trust store.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tracing::info;

/// Failure to load, generate or use TLS credentials.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: no PEM certificate found", .0.display())]
    NoCertificate(PathBuf),
    #[error("{}: no PEM private key found", .0.display())]
    NoPrivateKey(PathBuf),
    #[error("a TLS certificate and its key must be configured together")]
    IncompletePaths,
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("invalid TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error(
        "no trusted CA certificates in the system's store ({0}): install ca-certificates, or \
         name a CA file"
    )]
    NoTrustedRoots(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Server credentials: the PEM certificate chain and private key at the given paths, or else
/// `data_dir/tls/cert.pem` and `key.pem`, generated on first start as a self-signed
/// certificate for `names` plus `localhost` and `127.0.0.1` and reused afterwards (delete
/// both files to regenerate). Blocking file I/O: call it at startup.
pub fn load_or_generate(
    cert_path: Option<&Path>,
    key_path: Option<&Path>,
    data_dir: &Path,
    names: &[String],
) -> Result<Arc<ServerConfig>, TlsError> {
    let (cert_path, key_path) = match (cert_path, key_path) {
        (Some(cert), Some(key)) => (cert.to_path_buf(), key.to_path_buf()),
        (None, None) => {
            let dir = data_dir.join("tls");
            let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
            if !(cert.is_file() && key.is_file()) {
                generate(&dir, &cert, &key, names)?;
                info!(path = %cert.display(), "generated a self-signed TLS certificate");
            }
            (cert, key)
        }
        _ => return Err(TlsError::IncompletePaths),
    };
    let certs = load_certs(&cert_path)?;
    let key = load_key(&key_path)?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}

/// Client configuration for outgoing TLS connections, trusting [`trusted_roots`].
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(trusted_roots(ca_file)?)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The certificate authorities outgoing TLS trusts: the CA (or self-signed) certificates in
/// the PEM file `ca_file`, or without one the system's trust store (Debian's
/// ca-certificates, or what `SSL_CERT_FILE` / `SSL_CERT_DIR` name). Entries of the store
/// that do not parse are skipped (it holds hundreds; one odd entry must not stop the
/// others), but a store with none usable is an error naming the way out, rather than every
/// handshake failing later.
pub fn trusted_roots(ca_file: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    if let Some(path) = ca_file {
        for cert in load_certs(path)? {
            roots.add(cert)?;
        }
        return Ok(roots);
    }
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why = found
            .errors
            .first()
            .map_or_else(|| "it is empty".to_owned(), ToString::to_string);
        return Err(TlsError::NoTrustedRoots(why));
    }
    Ok(roots)
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let mut reader = BufReader::new(File::open(path).map_err(io_error(path))?);
    let certs = rustls_pemfile::certs(&mut reader)
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_error(path))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.to_path_buf()));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let mut reader = BufReader::new(File::open(path).map_err(io_error(path))?);
    rustls_pemfile::private_key(&mut reader)
        .map_err(io_error(path))?
        .ok_or_else(|| TlsError::NoPrivateKey(path.to_path_buf()))
}

fn generate(
    dir: &Path,
    cert_path: &Path,
    key_path: &Path,
    names: &[String],
) -> Result<(), TlsError> {
    let mut alt_names: Vec<String> = Vec::new();
    for name in names
        .iter()
        .map(String::as_str)
        .chain(["localhost", "127.0.0.1"])
    {
        if !alt_names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            alt_names.push(name.to_owned());
        }
    }
    let certified = rcgen::generate_simple_self_signed(alt_names)?;
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    // Key first: the pair counts as present only once the certificate exists too, so a crash
    // in between leads to regeneration rather than a mismatched pair.
    write_atomic(
        key_path,
        certified.key_pair.serialize_pem().as_bytes(),
        true,
    )?;
    write_atomic(cert_path, certified.cert.pem().as_bytes(), false)
}

/// Writes via a temporary file and rename, so a crash never leaves a truncated PEM behind.
fn write_atomic(path: &Path, contents: &[u8], private: bool) -> Result<(), TlsError> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    // A leftover from a crash could carry wider permissions; create_new needs it gone.
    match fs::remove_file(&tmp) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(io_error(&tmp)(error)),
        _ => {}
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let result = options.open(&tmp).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()
    });
    let result = result.and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io_error(path))
}
