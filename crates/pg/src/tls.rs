//! TLS with rustls, verifying the server exactly as far as libpq's `sslmode` says.
//!
//! | sslmode | chain checked | host name checked |
//! |---|---|---|
//! | allow / prefer / require | only if the root certificate file exists (libpq does the same) | no |
//! | verify-ca | yes | no |
//! | verify-full | yes | yes |
//!
//! rustls has no "chain but not name" mode, so verify-ca wraps the WebPKI verifier and accepts
//! only its name-mismatch error (which it reports after the chain has been verified), and the
//! unverified modes still check the handshake signatures so the session key is bound to the
//! certificate the server presented. Both are [`WithoutNameCheck`].

use crate::config::{RootCert, SslMode};
use crate::{ConnConfig, PgError};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

/// How much of the server certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verification {
    None,
    Chain,
    ChainAndName,
}

/// Builds the rustls client configuration for `config`'s `sslmode`, roots and client certificate.
pub(crate) fn client_config(config: &ConnConfig) -> Result<rustls::ClientConfig, PgError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = load_roots(config)?;
    let verification = match (config.ssl_mode(), &roots) {
        (SslMode::VerifyFull, _) => Verification::ChainAndName,
        (SslMode::VerifyCa, _) => Verification::Chain,
        // libpq: with a root certificate file present, require (and prefer/allow) verify the chain.
        (_, Some(_)) => Verification::Chain,
        (_, None) => Verification::None,
    };
    let verifier: Arc<dyn ServerCertVerifier> = match (verification, roots) {
        (Verification::None, _) => Arc::new(WithoutNameCheck {
            chain: None,
            provider: provider.clone(),
        }),
        (verification, Some(roots)) => {
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|error| {
                        tls_config_error(format!("cannot use the root certificates: {error}"))
                    })?;
            if verification == Verification::Chain {
                Arc::new(WithoutNameCheck {
                    chain: Some(webpki),
                    provider: provider.clone(),
                })
            } else {
                webpki
            }
        }
        (_, None) => {
            let RootCert::File(path) = config.ssl_root_cert() else {
                return Err(tls_config_error("no root certificates available".into()));
            };
            return Err(PgError::Config(format!(
                "root certificate file \"{}\" does not exist; hint: provide the file, use the system's \
                 trusted roots (sslrootcert=system), or change sslmode to disable server certificate \
                 verification",
                path.display()
            )));
        }
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| tls_config_error(error.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match load_client_identity(config.ssl_cert(), config.ssl_key())? {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|error| {
            tls_config_error(format!("cannot use the client certificate: {error}"))
        }),
        None => Ok(builder.with_no_client_auth()),
    }
}

fn tls_config_error(message: String) -> PgError {
    PgError::Config(format!(
        "{message}; hint: check sslrootcert, sslcert and sslkey"
    ))
}

/// The trusted roots, or `None` when the root file does not exist.
fn load_roots(config: &ConnConfig) -> Result<Option<RootCertStore>, PgError> {
    let mut store = RootCertStore::empty();
    match config.ssl_root_cert() {
        RootCert::System => {
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            Ok(Some(store))
        }
        RootCert::File(path) => {
            if !path.exists() {
                return Ok(None);
            }
            for certificate in read_certificates(path)? {
                store.add(certificate).map_err(|error| {
                    tls_config_error(format!(
                        "invalid root certificate in \"{}\": {error}",
                        path.display()
                    ))
                })?;
            }
            Ok(Some(store))
        }
    }
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, PgError> {
    let bytes = read(path, "certificate")?;
    let certificates = rustls_pemfile::certs(&mut bytes.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| {
            tls_config_error(format!("cannot parse \"{}\": {error}", path.display()))
        })?;
    if certificates.is_empty() {
        return Err(tls_config_error(format!(
            "no PEM certificate found in \"{}\"",
            path.display()
        )));
    }
    Ok(certificates)
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, PgError> {
    std::fs::read(path).map_err(|error| {
        tls_config_error(format!(
            "cannot read {what} file \"{}\": {error}",
            path.display()
        ))
    })
}

/// The client certificate chain and key, when the certificate file exists (as libpq).
#[allow(clippy::type_complexity)]
fn load_client_identity(
    cert: &Path,
    key: &Path,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, PgError> {
    if !cert.exists() {
        return Ok(None);
    }
    let chain = read_certificates(cert)?;
    let key_bytes = read(key, "private key")?;
    let key = rustls_pemfile::private_key(&mut key_bytes.as_slice())
        .map_err(|error| tls_config_error(format!("cannot parse \"{}\": {error}", key.display())))?
        .ok_or_else(|| {
            tls_config_error(format!("no private key found in \"{}\"", key.display()))
        })?;
    Ok(Some((chain, key)))
}

/// The two modes rustls has no setting for. With `chain` set (`sslmode=verify-ca`) the chain must
/// lead to a trusted root but the host name is not checked; without it (`sslmode=require` and no
/// root file) any certificate is accepted, to encrypt only. Both still verify the handshake
/// signatures, as the WebPKI verifier does, so the session key is bound to the certificate.
#[derive(Debug)]
struct WithoutNameCheck {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for WithoutNameCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            // WebPKI checks the name only after the chain verified, so this error means "chain ok".
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dsn: &str) -> ConnConfig {
        ConnConfig::resolve_with_env(Some(dsn), &|name| {
            (name == "HOME").then(|| "/nonexistent-home".into())
        })
        .unwrap_or_else(|e| panic!("{dsn}: {e}"))
    }

    #[test]
    fn verify_modes_need_a_root_file() {
        let error = client_config(&config("host=h sslmode=verify-ca")).expect_err("no root file");
        let text = error.to_string();
        assert!(
            text.contains("/nonexistent-home/.postgresql/root.crt") && text.contains("hint:"),
            "{text}"
        );
    }

    #[test]
    fn require_without_root_file_encrypts_without_verifying() {
        assert!(client_config(&config("host=h sslmode=require")).is_ok());
        assert!(client_config(&config("host=h sslmode=prefer")).is_ok());
    }

    #[test]
    fn system_roots_load() {
        assert!(client_config(&config("host=h sslrootcert=system")).is_ok());
    }

    #[test]
    fn unreadable_root_file_is_reported() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("root.crt");
        std::fs::write(&path, "not pem").expect("write");
        let dsn = format!("host=h sslmode=verify-full sslrootcert={}", path.display());
        let text = client_config(&config(&dsn))
            .expect_err("bad pem")
            .to_string();
        assert!(text.contains("no PEM certificate"), "{text}");
    }
}
