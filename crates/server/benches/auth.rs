//! The cost of authentication on the request path.
//!
//! `cargo bench -p baton-server --bench auth`
//!
//! - `access_token/sign`, `verify_first_time` (signature and claims) and
//!   `verify_cached` (a token seen before), EdDSA and HS256;
//! - `authenticate`: everything the `AuthUser` extractor does for a request of a
//!   client whose token was seen before (parse the `Authorization` header, check the
//!   token, look the session up in the in-memory revocation set, here holding 10,000
//!   revoked sessions);
//! - `dpop/verify_proof`: parse a DPoP proof and check its signature, EdDSA and ES256,
//!   its key's header seen before (as every proof after a key's first);
//!   `dpop/verify_proof_first`: the same for a key's first proof;
//! - `authenticate_dpop`: `authenticate` for a DPoP-bound token with a new proof (all
//!   of the proof's checks, the replay set), EdDSA and ES256 proofs, one request at a
//!   time (so every Ed25519 signature is checked alone);
//! - `authenticate_concurrent/{Bearer,DPoP-EdDSA}`: 64 requests at once on a
//!   2-thread runtime, as a server under load meets them (the Ed25519 signatures of
//!   proofs that wait together are checked in batches, `baton_server::dpop::batch`);
//!   reported per request;
//! - `refresh_token/generate_and_hash`: a new 256-bit token and its SHA-256.

use axum::http::header::{AUTHORIZATION, HOST};
use axum::http::Request;
use baton_server::config::{Config, JwtAlgorithm, Secret};
use baton_server::extract::authenticate;
use baton_server::AppState;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use uuid::Uuid;

#[path = "../tests/api/dpop_key.rs"]
#[allow(dead_code)]
mod dpop_key;
use baton_server::dpop::batch::Ed25519Batches;
use baton_server::dpop::proof::{parse, Headers};
use dpop_key::DpopKey;

fn state(alg: JwtAlgorithm, dir: &tempfile::TempDir) -> AppState {
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    config.keys.alg = alg;
    // Nothing reads the change feed here (the runtime that built the state is gone), so
    // without this the instance would count as stale after 5 s and answer 503.
    config.background.max_staleness = std::time::Duration::from_secs(86_400);
    // Every iteration of `authenticate_dpop` is a new proof to remember.
    config.dpop.replay_capacity = 50_000_000;
    config.keys.jwt_secret = (alg == JwtAlgorithm::Hs256)
        .then(|| Secret::new("a-benchmark-secret-of-at-least-32-bytes"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let state = runtime.block_on(AppState::new(config)).unwrap();
    state
        .revocations
        .insert((0..10_000).map(|_| Uuid::new_v4()));
    state
}

/// Runs the async request path to its end on this thread.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
    }
    RUNTIME.with(|rt| rt.block_on(future))
}

fn bench(c: &mut Criterion) {
    for (name, alg) in [
        ("EdDSA", JwtAlgorithm::EdDsa),
        ("HS256", JwtAlgorithm::Hs256),
    ] {
        let dir = tempfile::TempDir::new().unwrap();
        let state = state(alg, &dir);
        let (token, _) = state.tokens.sign(Uuid::new_v4(), Uuid::new_v4()).unwrap();
        let (parts, ()) = Request::get("/api/me")
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .body(())
            .unwrap()
            .into_parts();

        c.bench_function(&format!("access_token/sign/{name}"), |b| {
            b.iter(|| {
                state
                    .tokens
                    .sign(black_box(Uuid::nil()), black_box(Uuid::nil()))
                    .unwrap()
            })
        });
        c.bench_function(&format!("access_token/verify_first_time/{name}"), |b| {
            b.iter(|| state.tokens.verify_uncached(black_box(&token)).unwrap())
        });
        c.bench_function(&format!("access_token/verify_cached/{name}"), |b| {
            b.iter(|| state.tokens.verify(black_box(&token)).unwrap())
        });
        c.bench_function(&format!("authenticate/{name}"), |b| {
            b.iter(|| block_on(authenticate(&state, black_box(&parts))).unwrap())
        });
    }
    let dir = tempfile::TempDir::new().unwrap();
    let state = state(JwtAlgorithm::EdDsa, &dir);
    for key in [DpopKey::ed25519(), DpopKey::p256()] {
        let alg = key.alg();
        let (token, _) = state
            .tokens
            .sign_bound(Uuid::new_v4(), Uuid::new_v4(), Some(&key.jkt))
            .unwrap();
        let nonce = state.dpop.current_nonce();
        let nonce = nonce.to_str().unwrap();
        let url = "http://bench.test/api/me";
        let proof = key.proof("GET", url, Some(nonce), Some(&token));
        // As a server meets it: the key's header seen before (every proof of one key
        // has the same header).
        let headers = Headers::default();
        let signatures = Ed25519Batches::new(Default::default());
        c.bench_function(&format!("dpop/verify_proof/{alg}"), |b| {
            b.iter(|| {
                let parsed = parse(black_box(&proof), &headers).unwrap();
                block_on(parsed.verify_signature(&signatures)).unwrap()
            })
        });
        // The first proof of a key: its header parsed and its key decoded.
        c.bench_function(&format!("dpop/verify_proof_first/{alg}"), |b| {
            b.iter_batched(
                Headers::default,
                |headers| {
                    let parsed = parse(black_box(&proof), &headers).unwrap();
                    block_on(parsed.verify_signature(&signatures)).unwrap();
                    headers
                },
                BatchSize::SmallInput,
            )
        });
        c.bench_function(&format!("authenticate_dpop/{alg}"), |b| {
            b.iter_batched(
                || {
                    let proof = key.proof("GET", url, Some(nonce), Some(&token));
                    Request::get("/api/me")
                        .header(HOST, "bench.test")
                        .header(AUTHORIZATION, format!("DPoP {token}"))
                        .header("dpop", proof)
                        .body(())
                        .unwrap()
                        .into_parts()
                        .0
                },
                |parts| block_on(authenticate(&state, &parts)).unwrap(),
                BatchSize::SmallInput,
            )
        });
    }
    concurrent(c, &state);
    c.bench_function("refresh_token/generate_and_hash", |b| {
        b.iter_batched(
            || (),
            |()| baton_server::refresh_token::generate(),
            BatchSize::SmallInput,
        )
    });
}

/// 64 requests at once on two threads, Bearer and DPoP (Ed25519), per request.
fn concurrent(c: &mut Criterion, state: &AppState) {
    const AT_ONCE: usize = 64;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let key = DpopKey::ed25519();
    let (bearer, _) = state.tokens.sign(Uuid::new_v4(), Uuid::new_v4()).unwrap();
    let (bound, _) = state
        .tokens
        .sign_bound(Uuid::new_v4(), Uuid::new_v4(), Some(&key.jkt))
        .unwrap();
    let nonce = state.dpop.current_nonce();
    let nonce = nonce.to_str().unwrap().to_owned();
    let url = "http://bench.test/api/me";
    let mut group = c.benchmark_group("authenticate_concurrent");
    group.throughput(Throughput::Elements(AT_ONCE as u64));
    for dpop in [false, true] {
        let name = if dpop { "DPoP-EdDSA" } else { "Bearer" };
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    (0..AT_ONCE)
                        .map(|_| {
                            let request = Request::get("/api/me").header(HOST, "bench.test");
                            let request = if dpop {
                                let proof = key.proof("GET", url, Some(&nonce), Some(&bound));
                                request
                                    .header(AUTHORIZATION, format!("DPoP {bound}"))
                                    .header("dpop", proof)
                            } else {
                                request.header(AUTHORIZATION, format!("Bearer {bearer}"))
                            };
                            request.body(()).unwrap().into_parts().0
                        })
                        .collect::<Vec<_>>()
                },
                |requests| {
                    runtime.block_on(async {
                        let tasks: Vec<_> = requests
                            .into_iter()
                            .map(|parts| {
                                let state = state.clone();
                                tokio::spawn(async move {
                                    authenticate(&state, &parts).await.unwrap();
                                })
                            })
                            .collect();
                        for task in tasks {
                            task.await.unwrap();
                        }
                    })
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
