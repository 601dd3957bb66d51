//! A throw-away certificate authority and server certificate for a lab, made with the `openssl`
//! CLI, so TLS tests can verify the server (`sslmode=verify-full`) against a known root.

use crate::error::LabError;
use crate::process;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The files of a lab's TLS set-up.
#[derive(Debug, Clone)]
pub(crate) struct TlsFiles {
    pub(crate) ca_cert: PathBuf,
    pub(crate) server_cert: PathBuf,
    pub(crate) server_key: PathBuf,
}

/// Creates `dir` with a CA and a server certificate for `localhost` and `127.0.0.1` signed by it.
/// P-256 keys: fast to generate, and accepted by both OpenSSL (libpq) and rustls.
pub(crate) fn generate(dir: &Path) -> Result<TlsFiles, LabError> {
    process::create_dir(dir, 0o755, false)?;
    let files = TlsFiles {
        ca_cert: dir.join("ca.crt"),
        server_cert: dir.join("server.crt"),
        server_key: dir.join("server.key"),
    };
    let ca_key = dir.join("ca.key");
    let request = dir.join("server.csr");
    let extensions = dir.join("server.ext");
    process::run(
        Command::new("openssl")
            .args(["req", "-x509", "-new", "-nodes", "-newkey", "ec"])
            .args(["-pkeyopt", "ec_paramgen_curve:prime256v1", "-days", "3650"])
            .args(["-subj", "/CN=pgdbre lab CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&files.ca_cert),
    )?;
    process::run(
        Command::new("openssl")
            .args(["req", "-new", "-nodes", "-newkey", "ec"])
            .args(["-pkeyopt", "ec_paramgen_curve:prime256v1"])
            .args(["-subj", "/CN=localhost"])
            .arg("-keyout")
            .arg(&files.server_key)
            .arg("-out")
            .arg(&request),
    )?;
    process::write_file(
        &extensions,
        "basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n\
         subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        0o644,
        false,
    )?;
    process::run(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "3650", "-set_serial", "1"])
            .arg("-in")
            .arg(&request)
            .arg("-CA")
            .arg(&files.ca_cert)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-extfile")
            .arg(&extensions)
            .arg("-out")
            .arg(&files.server_cert),
    )?;
    // The server refuses a key that others can read.
    process::set_mode(&files.server_key, 0o600)?;
    process::chown_to_server(&files.server_key)?;
    process::set_mode(&files.ca_cert, 0o644)?;
    process::set_mode(&files.server_cert, 0o644)?;
    Ok(files)
}
