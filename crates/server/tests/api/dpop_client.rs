//! A DPoP client for the tests: real key pairs (Ed25519 and P-256), real proofs
//! (RFC 9449 section 4.2), and the nonce dance of section 8, against the real server.

use std::sync::Mutex;

use baton_shared::TokenPair;
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

pub use crate::dpop_key::DpopKey;
use crate::helpers::{TestApp, PASSWORD};

/// A client that holds one key, signs a proof for every request it sends, keeps the
/// server's latest nonce, and retries once on `use_dpop_nonce`, as RFC 9449 asks.
pub struct DpopClient<'a> {
    pub app: &'a TestApp,
    pub key: DpopKey,
    /// The URL the proofs name: the app's own, unless set (a shared public origin).
    pub origin: String,
    nonce: Mutex<Option<String>>,
}

impl<'a> DpopClient<'a> {
    pub fn new(app: &'a TestApp, key: DpopKey) -> Self {
        Self {
            origin: app.address.clone(),
            app,
            key,
            nonce: Mutex::new(None),
        }
    }

    /// Proofs name `origin` instead of the app's address.
    pub fn with_origin(mut self, origin: &str) -> Self {
        self.origin = origin.to_owned();
        self
    }

    pub fn nonce(&self) -> Option<String> {
        self.nonce.lock().unwrap().clone()
    }

    pub fn set_nonce(&self, nonce: Option<String>) {
        *self.nonce.lock().unwrap() = nonce;
    }

    /// A proof for `method path` with the current nonce.
    pub fn proof(&self, method: &Method, path: &str, access_token: Option<&str>) -> String {
        let url = format!("{}{path}", self.origin);
        self.key
            .proof(method.as_str(), &url, self.nonce().as_deref(), access_token)
    }

    /// Sends `method path` with a proof (and `Authorization: DPoP` if an access token
    /// is given), once more with the new nonce if the server asks for one.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        access_token: Option<&str>,
    ) -> Response {
        let mut retried = false;
        loop {
            let proof = self.proof(&method, path, access_token);
            let mut req = self.app.client.request(method.clone(), self.app.url(path));
            req = req.header("DPoP", proof);
            if let Some(body) = body {
                req = req.json(body);
            }
            if let Some(token) = access_token {
                req = req.header("Authorization", format!("DPoP {token}"));
            }
            let response = req.send().await.expect("request sent");
            let (response, code) = self.take_nonce(response).await;
            if code.as_deref() == Some("use_dpop_nonce") && !retried {
                retried = true;
                continue;
            }
            return response;
        }
    }

    /// Keeps the answer's `DPoP-Nonce`; reads the error code of a 400/401 (and gives
    /// back an equal response to read again).
    async fn take_nonce(&self, response: Response) -> (Response, Option<String>) {
        if let Some(nonce) = response.headers().get("dpop-nonce") {
            self.set_nonce(Some(nonce.to_str().unwrap().to_owned()));
        }
        if !matches!(
            response.status(),
            StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED
        ) {
            return (response, None);
        }
        let mut builder = axum::http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let body = response.bytes().await.unwrap();
        let code = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned));
        (builder.body(body).unwrap().into(), code)
    }

    pub async fn login(&self, username: &str) -> Response {
        let body = json!({"username": username, "password": PASSWORD});
        self.send(Method::POST, "/api/auth/login", Some(&body), None)
            .await
    }

    pub async fn login_ok(&self, username: &str) -> TokenPair {
        let r = self.login(username).await;
        assert_eq!(r.status(), StatusCode::OK, "DPoP login {username}");
        r.json().await.unwrap()
    }

    /// Registers `username` (no proof needed) and logs in with a proof.
    pub async fn signup(&self, username: &str) -> TokenPair {
        let r = self.app.register(username, PASSWORD).await;
        assert_eq!(r.status(), StatusCode::CREATED, "register {username}");
        self.login_ok(username).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        let body = json!({"refresh_token": refresh_token});
        self.send(Method::POST, "/api/auth/refresh", Some(&body), None)
            .await
    }

    pub async fn refresh_ok(&self, refresh_token: &str) -> TokenPair {
        let r = self.refresh(refresh_token).await;
        assert_eq!(r.status(), StatusCode::OK, "DPoP refresh");
        r.json().await.unwrap()
    }

    pub async fn me(&self, access_token: &str) -> Response {
        self.send(Method::GET, "/api/me", None, Some(access_token))
            .await
    }
}

/// Sends a request with exactly these extra headers (several of one name allowed).
pub async fn send_raw(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Response {
    let mut req = app.client.request(method, app.url(path));
    if let Some(body) = body {
        req = req.json(body);
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.send().await.expect("request sent")
}

/// The stored `dpop_jkt` of a session.
pub async fn session_jkt(app: &TestApp, session_id: uuid::Uuid) -> Option<String> {
    let (jkt,): (Option<String>,) = app
        .state
        .db
        .write()
        .fetch_one(
            "SELECT dpop_jkt FROM sessions WHERE id = $1",
            &[session_id.into()],
        )
        .await
        .unwrap();
    jkt
}
