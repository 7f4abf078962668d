//! TLS for remote servers with libpq's `sslmode` semantics, on rustls.
//!
//! `prefer` and `require` encrypt; like libpq they check the certificate only when a root
//! certificate is named (`sslrootcert`), because many private Hydras run PostgreSQL with Debian's
//! self-signed "snakeoil" certificate. `verify-ca` checks the chain against `sslrootcert`
//! (or `~/.postgresql/root.crt`, or the system store), `verify-full` also the host name.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::conninfo::{ConnParams, SslMode};
use crate::error::{Error, Result};

pub(super) fn connector(params: &ConnParams) -> Result<MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Conninfo(format!("TLS setup: {e}")))?;
    let root_file = params.sslrootcert.clone().or_else(|| {
        let home = std::env::var_os("HOME")?;
        let p = PathBuf::from(home).join(".postgresql/root.crt");
        p.exists().then_some(p)
    });
    let verify = match params.sslmode {
        SslMode::VerifyCa | SslMode::VerifyFull => true,
        // libpq: with a root certificate at hand, `require` verifies like `verify-ca`.
        _ => params.sslrootcert.is_some(),
    };
    let config = if !verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth()
    } else {
        let roots = Arc::new(roots(root_file)?);
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| Error::Conninfo(format!("TLS setup: {e}")))?;
        if params.sslmode == SslMode::VerifyFull {
            builder.with_webpki_verifier(webpki).with_no_client_auth()
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
                .with_no_client_auth()
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

/// The most read of an `sslrootcert` file: the whole Mozilla CA bundle is about 200 KiB of
/// PEM, so 16 MiB holds any bundle of certificates anyone uses.
const ROOT_CERTS_CAP: u64 = 16 << 20;

fn roots(file: Option<PathBuf>) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    match file {
        Some(path) if path.as_os_str() != "system" => {
            let data = crate::readfile::read_capped(&path, "sslrootcert", ROOT_CERTS_CAP)?;
            let mut reader = std::io::BufReader::new(&data[..]);
            for cert in rustls_pemfile::certs(&mut reader) {
                let cert = cert.map_err(|e| Error::io(&path, e))?;
                store
                    .add(cert)
                    .map_err(|e| Error::Conninfo(format!("sslrootcert {}: {e}", path.display())))?;
            }
            if store.is_empty() {
                return Err(Error::Conninfo(format!(
                    "sslrootcert {} holds no PEM certificate",
                    path.display()
                )));
            }
        }
        _ => {
            for cert in rustls_native_certs::load_native_certs().certs {
                // A system store may hold certificates rustls cannot use; skipping them is what
                // every other client does.
                let _ = store.add(cert);
            }
        }
    }
    Ok(store)
}

/// `sslmode=prefer|require` without a root certificate: encrypt, check the handshake's
/// signatures, trust any certificate (libpq's behaviour).
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
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
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `sslmode=verify-ca`: the chain must lead to a trusted root; the host name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
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
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
