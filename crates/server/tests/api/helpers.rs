//! Test harness: `spawn_app(backend)` starts the real application on port 0 against a
//! fresh database, and `TestApp` has one helper per endpoint.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_server::config::Config;
use baton_server::store::Arg;
use baton_server::{AppState, Application};
use baton_shared::{ApiError, ErrorCode, TokenPair};
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery staple";

#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    /// URL of a fresh database on the test cluster.
    Postgres(String),
}

impl Backend {
    /// A new, empty PostgreSQL database on the cluster named by
    /// `BATON_TEST_POSTGRES_URL`, or `None` (test skipped) when it is not set, unless
    /// `BATON_REQUIRE_POSTGRES=1`, which makes a missing cluster a failure.
    pub async fn postgres() -> Option<Backend> {
        let Ok(admin_url) = std::env::var("BATON_TEST_POSTGRES_URL") else {
            if std::env::var("BATON_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("BATON_REQUIRE_POSTGRES=1 but BATON_TEST_POSTGRES_URL is not set");
            }
            eprintln!("skipped: set BATON_TEST_POSTGRES_URL (./scripts/with-postgres does) to run the PostgreSQL variant");
            return None;
        };
        Some(Backend::Postgres(new_postgres_database(&admin_url).await))
    }
}

pub async fn new_postgres_database(admin_url: &str) -> String {
    use sqlx::Connection;
    let name = format!("baton_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("connect to the test PostgreSQL cluster");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create a test database");
    conn.close().await.ok();
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("URL with a database name");
    format!("{base}/{name}")
}

/// Runs an async test body on SQLite and on PostgreSQL:
/// `db_tests!(name, ...)` makes `name::sqlite` and `name::postgres` from `async fn name(Backend)`.
#[macro_export]
macro_rules! db_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(backend) = $crate::helpers::Backend::postgres().await {
                        super::$name(backend).await;
                    }
                }
            }
        )*
    };
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    /// The port of BATON_METRICS_BIND, when configured.
    pub metrics_port: Option<u16>,
    pub client: reqwest::Client,
    pub state: AppState,
    pub config: Config,
    pub backend: Backend,
    shutdown: CancellationToken,
    server: Option<JoinHandle<std::io::Result<()>>>,
    /// Data directory (SQLite file, development master key); kept across restarts.
    pub data_dir: Arc<TempDir>,
}

/// Test defaults: a fresh data directory, port 0, fast sync.
pub fn test_config(backend: &Backend, data_dir: &TempDir) -> Config {
    let mut config = Config {
        data_dir: data_dir.path().to_path_buf(),
        ..Config::default()
    };
    config.database.url = match backend {
        Backend::Sqlite => None,
        Backend::Postgres(url) => Some(baton_server::config::Secret::new(url.clone())),
    };
    config.database.acquire_timeout = Duration::from_secs(2);
    config.http.bind = Some("127.0.0.1:0".parse().unwrap());
    config.background.sync_interval = Duration::from_millis(100);
    config.keys.activation_delay = Duration::ZERO;
    config
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, customize: impl FnOnce(&mut Config)) -> TestApp {
    let data_dir = Arc::new(TempDir::new().expect("temp dir"));
    let mut config = test_config(&backend, &data_dir);
    customize(&mut config);
    start(backend, config, data_dir).await
}

async fn start(backend: Backend, config: Config, data_dir: Arc<TempDir>) -> TestApp {
    init_tracing();
    let app = Application::build(config.clone())
        .await
        .expect("the application builds");
    let port = app.port();
    let metrics_port = app.metrics_port();
    let state = app.state();
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        metrics_port,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        state,
        config,
        backend,
        shutdown,
        server: Some(server),
        data_dir,
    }
}

fn init_tracing() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            tracing_subscriber::fmt()
                .with_env_filter("info,sqlx=warn")
                .with_test_writer()
                .init();
        }
    });
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Stops the server (gracefully) and waits until it has.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server ran");
        }
    }

    /// Stops this server and starts a new one on the same database, data directory
    /// (master key) and configuration, on a new port.
    pub async fn restart(mut self) -> TestApp {
        self.stop().await;
        start(
            self.backend.clone(),
            self.config.clone(),
            self.data_dir.clone(),
        )
        .await
    }

    /// Stops this server and starts a new one on the same database and data
    /// directory, with its configuration changed by `customize`.
    pub async fn restart_with(mut self, customize: impl FnOnce(&mut Config)) -> TestApp {
        self.stop().await;
        let mut config = self.config.clone();
        customize(&mut config);
        start(self.backend.clone(), config, self.data_dir.clone()).await
    }

    /// Another instance on the same database and master key.
    pub async fn second_instance(&self) -> TestApp {
        start(
            self.backend.clone(),
            self.config.clone(),
            self.data_dir.clone(),
        )
        .await
    }

    /// Sends one request: a JSON body if given, a Bearer token if given.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        bearer: Option<&str>,
    ) -> Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(body) = body {
            req = req.json(body);
        }
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        req.send().await.expect("request sent")
    }

    pub async fn post(&self, path: &str, body: &Value, bearer: Option<&str>) -> Response {
        self.send(Method::POST, path, Some(body), bearer).await
    }

    pub async fn put(&self, path: &str, body: &Value, bearer: Option<&str>) -> Response {
        self.send(Method::PUT, path, Some(body), bearer).await
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Response {
        self.send(Method::GET, path, None, bearer).await
    }

    pub async fn delete(&self, path: &str, bearer: Option<&str>) -> Response {
        self.send(Method::DELETE, path, None, bearer).await
    }

    pub async fn register(&self, username: &str, password: &str) -> Response {
        self.post(
            "/api/auth/register",
            &json!({"username": username, "password": password}),
            None,
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post(
            "/api/auth/login",
            &json!({"username": username, "password": password}),
            None,
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post(
            "/api/auth/refresh",
            &json!({"refresh_token": refresh_token}),
            None,
        )
        .await
    }

    pub async fn logout(&self, refresh_token: &str) -> Response {
        self.post(
            "/api/auth/logout",
            &json!({"refresh_token": refresh_token}),
            None,
        )
        .await
    }

    pub async fn me(&self, access_token: &str) -> Response {
        self.get("/api/me", Some(access_token)).await
    }

    /// Asserts that refreshing with `refresh_token` is refused: 401 with `code`.
    pub async fn refresh_refused(&self, refresh_token: &str, code: ErrorCode) {
        assert_error(self.refresh(refresh_token).await, 401, code).await;
    }

    /// Asserts that `GET /api/me` with `access_token` is refused: 401 with `code`.
    pub async fn me_refused(&self, access_token: &str, code: ErrorCode) {
        assert_error(self.me(access_token).await, 401, code).await;
    }

    /// The JWK set the server publishes.
    pub async fn jwks(&self) -> Value {
        let r = self.get("/.well-known/jwks.json", None).await;
        r.json().await.expect("a JWK set")
    }

    /// Registers `username` and logs in: the pair of a fresh session.
    pub async fn signup(&self, username: &str) -> TokenPair {
        let r = self.register(username, PASSWORD).await;
        assert_eq!(r.status(), StatusCode::CREATED, "register {username}");
        self.login_ok(username).await
    }

    pub async fn login_ok(&self, username: &str) -> TokenPair {
        let r = self.login(username, PASSWORD).await;
        assert_eq!(r.status(), StatusCode::OK, "login {username}");
        r.json().await.expect("a token pair")
    }

    pub async fn refresh_ok(&self, refresh_token: &str) -> TokenPair {
        let r = self.refresh(refresh_token).await;
        assert_eq!(r.status(), StatusCode::OK, "refresh");
        r.json().await.expect("a token pair")
    }

    /// How many sessions the user has, live or not.
    pub async fn sessions_of(&self, user_id: Uuid) -> i64 {
        self.count(
            "SELECT COUNT(*) FROM sessions WHERE user_id = $1",
            &[user_id.into()],
        )
        .await
    }

    /// How many refresh tokens the session has issued.
    pub async fn refresh_tokens_of(&self, session_id: Uuid) -> i64 {
        self.count(
            "SELECT COUNT(*) FROM refresh_tokens WHERE session_id = $1",
            &[session_id.into()],
        )
        .await
    }

    /// How many refresh tokens of one generation the session has.
    pub async fn refresh_tokens_of_generation(&self, session_id: Uuid, generation: i64) -> i64 {
        self.count(
            "SELECT COUNT(*) FROM refresh_tokens WHERE session_id = $1 AND generation = $2",
            &[session_id.into(), generation.into()],
        )
        .await
    }

    /// Every stored refresh-token hash.
    pub async fn stored_refresh_token_hashes(&self) -> Vec<Vec<u8>> {
        let rows: Vec<(Vec<u8>,)> = self
            .state
            .db
            .write()
            .fetch_all("SELECT token_hash FROM refresh_tokens", &[])
            .await
            .unwrap();
        rows.into_iter().map(|(hash,)| hash).collect()
    }

    async fn count(&self, sql: &str, args: &[Arg<'_>]) -> i64 {
        let (n,): (i64,) = self.state.db.write().fetch_one(sql, args).await.unwrap();
        n
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Asserts the status and the contract's error body; returns the body.
pub async fn assert_error(response: Response, status: u16, code: ErrorCode) -> ApiError {
    let actual = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    assert_eq!(actual, status, "status (body: {text})");
    let body: ApiError = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("error body is not the contract's ApiError ({e}): {text}"));
    assert_eq!(body.code, code, "code (body: {text})");
    assert!(!body.message.is_empty(), "an error message");
    assert!(
        headers
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("application/json")),
        "JSON content type"
    );
    body
}

/// The `WWW-Authenticate` header of a response.
pub fn challenge(response: &Response) -> Option<String> {
    response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
}

/// A TCP proxy in front of the database whose link can be cut and restored, to make
/// the database unreachable for real (connections reset, new ones refused).
pub struct ChaosProxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: JoinHandle<()>,
}

impl ChaosProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let accept = {
            let up = up.clone();
            let links = links.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    if !up.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let link = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    links.lock().unwrap().push(link.abort_handle());
                }
            })
        };
        Self {
            addr,
            up,
            links,
            accept,
        }
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// Host and port of a PostgreSQL URL.
pub fn postgres_addr(url: &str) -> SocketAddr {
    let after_at = url.rsplit_once('@').map_or(url, |(_, rest)| rest);
    let host_port = after_at.split('/').next().unwrap();
    let host_port = host_port
        .trim_start_matches("postgres://")
        .trim_start_matches("postgresql://");
    host_port.parse().expect("127.0.0.1:port in the test URL")
}

pub fn with_host(url: &str, addr: SocketAddr) -> String {
    let old = postgres_addr(url);
    url.replacen(&old.to_string(), &addr.to_string(), 1)
}

/// Decodes the claims of a JWT without verifying it (to inspect what was issued).
pub fn jwt_parts(token: &str) -> (Value, Value) {
    use base64::Engine;
    let mut parts = token.split('.');
    let decode = |p: &str| -> Value {
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .expect("base64url"),
        )
        .expect("JSON")
    };
    let header = decode(parts.next().unwrap());
    let claims = decode(parts.next().unwrap());
    (header, claims)
}

/// Runs `baton-server <args>` on the app's database and data directory.
pub fn baton(app: &TestApp, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton-server"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("BATON_DATA_DIR", app.data_dir.path())
        .env("BATON_KEY_ACTIVATION_DELAY", "0")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Backend::Postgres(url) = &app.backend {
        cmd.env("DATABASE_URL", url);
    }
    let mut child = cmd.spawn().expect("run baton-server");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

pub fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}
