//! What the binary's two web faces ([`crate::review`] and
//! [`crate::serve`]) share: listening in plain HTTP on loopback or HTTPS
//! with rustls, until a shutdown future ends, then finishing the requests
//! in flight; and waiting for SIGTERM or SIGINT.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;

use letterpress::error::{Error, Result};

/// Serves `app` on `listen` (HTTPS when `tls` gives a certificate chain
/// and key, PEM) until `stop` ends, then lets requests in flight finish
/// (at most `grace` with TLS). Prints `said` once it listens.
pub async fn listen(
    listen: SocketAddr,
    tls: Option<(PathBuf, PathBuf)>,
    app: Router,
    said: String,
    stop: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> Result<()> {
    let Some((cert, key)) = tls else {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| Error::Usage(format!("cannot listen on {listen}: {e}")))?;
        eprintln!("{said}");
        return axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
            .map_err(|e| Error::Usage(format!("the server stopped: {e}")));
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&cert, &key)
        .await
        .map_err(|e| {
            Error::Usage(format!(
                "--tls-cert {} / --tls-key {}: {e}",
                cert.display(),
                key.display()
            ))
        })?;
    let handle = axum_server::Handle::new();
    let (ending, bound) = (handle.clone(), handle.clone());
    tokio::spawn(async move {
        if bound.listening().await.is_some() {
            eprintln!("{said}");
        }
    });
    tokio::spawn(async move {
        stop.await;
        ending.graceful_shutdown(Some(grace));
    });
    axum_server::bind_rustls(listen, config)
        .handle(handle)
        .serve(app.into_make_service())
        .await
        .map_err(|e| Error::Usage(format!("cannot serve HTTPS on {listen}: {e}")))
}

/// Ends on SIGTERM or SIGINT.
pub async fn signalled() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
