//! A local HTTPS server signed by a test CA, for the witness's tests here and in the crates
//! that use it (feature `testing`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A test CA and a certificate it signed for `localhost` and 127.0.0.1.
pub struct TestPki {
    pub ca: CertificateDer<'static>,
    pub leaf: CertificateDer<'static>,
    server: Arc<rustls::ServerConfig>,
}

pub fn pki() -> TestPki {
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "witness test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().expect("key");
    let leaf_params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("params");
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).expect("leaf");
    let leaf_der = leaf.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![leaf_der.clone(), ca.der().clone()], key)
        .expect("server config");
    TestPki {
        ca: ca.der().clone(),
        leaf: leaf_der,
        server: Arc::new(server),
    }
}

/// How the local server answers.
#[derive(Clone, Copy)]
pub enum Answer {
    Page,
    Redirect,
    /// 50 MB of body.
    Flood,
    /// Accepts the connection and says nothing.
    Silence,
}

pub const PAGE: &str = "the sky is blue\n";

pub struct Server {
    pub address: SocketAddr,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
}

pub async fn serve(pki: &TestPki, answer: Answer) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if matches!(answer, Answer::Silence) {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    drop(tcp);
                    return;
                }
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if tls.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let _ = match answer {
                    Answer::Page => {
                        let response = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nset-cookie: secret=1\r\n\r\n{PAGE}",
                            PAGE.len()
                        );
                        tls.write_all(response.as_bytes()).await
                    }
                    Answer::Redirect => {
                        tls.write_all(b"HTTP/1.1 302 Found\r\nlocation: https://10.0.0.1/admin\r\ncontent-length: 0\r\n\r\n")
                            .await
                    }
                    Answer::Flood => {
                        let total = 50 * 1024 * 1024;
                        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {total}\r\n\r\n");
                        let _ = tls.write_all(head.as_bytes()).await;
                        let chunk = vec![b'x'; 64 * 1024];
                        let mut sent = 0;
                        while sent < total {
                            if tls.write_all(&chunk).await.is_err() {
                                break;
                            }
                            sent += chunk.len();
                        }
                        Ok(())
                    }
                    Answer::Silence => Ok(()),
                };
                let _ = tls.shutdown().await;
            });
        }
    });
    Server {
        address,
        connections,
    }
}
