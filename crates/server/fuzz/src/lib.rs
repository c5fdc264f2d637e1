//! The fuzzing harness: the real Baton router on a temporary SQLite database, driven
//! in-process (no sockets), with one registered user and one live session.

use std::sync::LazyLock;

use axum::body::Body;
use axum::http::{Request, Response};
use axum::Router;
use baton_server::config::Config;
use baton_server::AppState;
use baton_shared::ApiError;
use tower::ServiceExt;

pub struct Harness {
    pub runtime: tokio::runtime::Runtime,
    pub state: AppState,
    pub router: Router,
    /// A refresh token of a live session, substituted for `@T` in fuzzed bodies.
    pub refresh_token: String,
    /// An access token of that session.
    pub access_token: String,
    _dir: tempfile::TempDir,
}

pub static HARNESS: LazyLock<Harness> = LazyLock::new(|| {
    let dir = tempfile::TempDir::new().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    config.http.bind = Some("127.0.0.1:0".parse().unwrap());
    // Every input must reach the handlers, not the rate limiter.
    config.limits.login_per_ip = 0;
    config.limits.refresh_per_ip = 0;
    config.limits.login_failures_per_address = 0;
    config.limits.login_failures_per_account = 0;
    let state = runtime.block_on(AppState::new(config)).unwrap();
    let router = baton_server::routes::router(state.clone());
    let harness = Harness {
        runtime,
        state,
        router,
        refresh_token: String::new(),
        access_token: String::new(),
        _dir: dir,
    };
    let register = r#"{"username":"fuzz","password":"fuzzing password"}"#;
    harness.send(Request::post("/api/auth/register").header("content-type", "application/json").body(Body::from(register)).unwrap());
    let login = harness.send(Request::post("/api/auth/login").header("content-type", "application/json").body(Body::from(register)).unwrap());
    let body = harness.body(login);
    let pair: baton_shared::TokenPair = serde_json::from_slice(&body).expect("login works");
    Harness {
        refresh_token: pair.refresh_token,
        access_token: pair.access_token,
        ..harness
    }
});

impl Harness {
    pub fn send(&self, req: Request<Body>) -> Response<Body> {
        self.runtime
            .block_on(self.router.clone().oneshot(req))
            .expect("the router never fails")
    }

    pub fn body(&self, res: Response<Body>) -> Vec<u8> {
        self.runtime
            .block_on(axum::body::to_bytes(res.into_body(), usize::MAX))
            .expect("a body")
            .to_vec()
    }

    /// The response must be one of `allowed`, and an error must be the contract's
    /// `ApiError` body whose code matches its status: never a 500, never a panic.
    pub fn check(&self, res: Response<Body>, allowed: &[u16]) {
        let status = res.status().as_u16();
        let body = self.body(res);
        assert!(
            allowed.contains(&status),
            "status {status}: {}",
            String::from_utf8_lossy(&body)
        );
        if status >= 400 {
            let error: ApiError = serde_json::from_slice(&body).unwrap_or_else(|e| {
                panic!("not an ApiError ({e}): {}", String::from_utf8_lossy(&body))
            });
            assert_eq!(error.code.status(), status, "{error:?}");
        }
    }
}
