//! llmgw-rls: llmgw's global rate limit service. It speaks Envoy's
//! `envoy.service.ratelimit.v3.RateLimitService` and keeps the counters in Redis, so several
//! Envoys, and several replicas of this service, share one limit. See `rls/README.md`.
//!
//! Once it serves it prints `listening on grpc ADDR http ADDR` (port 0 picks a free port). On
//! SIGTERM or SIGINT it reports not ready, stops accepting, lets the calls in flight finish and
//! exits 0 (1 when they do not finish within the grace period).

mod budgets;
mod config;
mod http;
mod limits;
mod metrics;
mod service;
mod store;

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::RateLimitServiceServer;
use tokio::sync::watch;

use config::{Config, Redis, USAGE};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let config = match Config::parse(&args, |var| std::env::var(var).ok()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("llmgw-rls: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match serve(config).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("llmgw-rls: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let store = Arc::new(match &config.redis {
        Redis::Direct(url) => store::Store::direct(url, config.redis_timeout)?,
        Redis::Sentinel { sentinels, master } => {
            store::Store::sentinel(sentinels, master, config.redis_timeout)?
        }
    });
    let metrics = Arc::new(metrics::Metrics::new()?);
    // Connect now so the first call does not pay for it; Redis being down is not fatal (the
    // service reports not ready and keeps trying on each call).
    let _ = store.connection().await;

    let grpc = tokio::net::TcpListener::bind(config.grpc).await?;
    let http = tokio::net::TcpListener::bind(config.http).await?;
    println!(
        "listening on grpc {} http {}",
        grpc.local_addr()?,
        http.local_addr()?
    );

    // gRPC stops first; HTTP keeps answering (not ready, metrics) until the calls in flight
    // are done, so probes and scrapes see the drain.
    let (stop_grpc, grpc_stopped) = watch::channel(false);
    let (stop_http, http_stopped) = watch::channel(false);
    let until = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let health = Arc::new(http::Health {
        store: store.clone(),
        metrics: metrics.clone(),
        draining: false.into(),
        admin_key_sha256: config.admin_key_sha256.clone(),
    });
    let grpc_server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(RateLimitServiceServer::new(service::Service::new(
                store,
                metrics,
                config.delay,
            )))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(grpc),
                until(grpc_stopped),
            ),
    );
    let http_router = http::router(health.clone());
    let http_server = tokio::spawn(async move {
        axum::serve(http, http_router)
            .with_graceful_shutdown(until(http_stopped))
            .await
    });

    let signal = termination().await?;
    eprintln!("llmgw-rls: {signal}: finishing the calls in flight");
    health.draining.store(true, Ordering::Relaxed);
    let _ = stop_grpc.send(true);
    let drained = tokio::time::timeout(config.shutdown_grace, async {
        let grpc = grpc_server.await;
        let _ = stop_http.send(true);
        (grpc, http_server.await)
    })
    .await;
    match drained {
        Ok((Ok(Ok(())), Ok(Ok(())))) => {
            eprintln!("llmgw-rls: stopped");
            Ok(ExitCode::SUCCESS)
        }
        Ok((grpc, http)) => {
            eprintln!("llmgw-rls: stopped with errors: grpc {grpc:?}, http {http:?}");
            Ok(ExitCode::FAILURE)
        }
        Err(_) => {
            eprintln!(
                "llmgw-rls: calls still in flight after {:?}; exiting",
                config.shutdown_grace
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Waits for SIGTERM (what systemd and Kubernetes send) or SIGINT (Ctrl-C).
async fn termination() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}
