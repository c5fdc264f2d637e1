//! The browser's DPoP key (RFC 9449): made with WebCrypto at login, `extractable:
//! false` (Ed25519, or ES256 where the browser has no Ed25519), kept in IndexedDB so
//! that every tab of the origin signs with it and a reload keeps it (a `CryptoKey`
//! survives IndexedDB's structured clone and stays unextractable), deleted at logout
//! and when the session ends. Where IndexedDB is missing or refused, the key lives in
//! this tab's memory only; it is never made extractable. No script can read the private
//! key, so tokens copied out of `localStorage` are worthless without this browser.
//!
//! The WebCrypto and IndexedDB calls are a small JavaScript module: bound from Rust
//! through web-sys they would cost the wasm bundle more than the rest of this feature.
//!
//! The server nonce is the last `DPoP-Nonce` any answer carried, kept in
//! `localStorage` with when it came (nonces are not secret), so that a new tab or a
//! reload starts with one. One older than [`NONCE_MAX_AGE_MS`], or none, is fetched
//! afresh before a proof, so that a proof rarely meets `use_dpop_nonce`.

use wasm_bindgen::prelude::*;

use super::{config, now_ms, storage};

/// A nonce kept this long is renewed before the next proof: well inside the server's
/// default nonce lifetime (300 s, of which up to 60 s may have passed at issue).
pub(crate) const NONCE_MAX_AGE_MS: i64 = 120_000;

#[wasm_bindgen(inline_js = r#"
const DB = "baton.dpop", STORE = "keys";
// Keys by id: a cache of IndexedDB, and the only home of a key where it is missing.
const memory = new Map();
let opening = null;
function done(request) {
  return new Promise((ok, fail) => {
    request.onsuccess = () => ok(request.result);
    request.onerror = () => fail(request.error);
  });
}
function db() {
  if (!opening) {
    const open = indexedDB.open(DB, 1);
    open.onupgradeneeded = () => open.result.createObjectStore(STORE);
    opening = done(open).catch((e) => { opening = null; throw e; });
  }
  return opening;
}
async function keys(mode, use) {
  const store = (await db()).transaction(STORE, mode).objectStore(STORE);
  return done(use(store));
}
const utf8 = (text) => new TextEncoder().encode(text);
const b64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
  .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const json64 = (value) => b64(utf8(JSON.stringify(value)));

export async function dpop_create(id, es256) {
  let pair = null, alg = "EdDSA";
  if (!es256) {
    try {
      pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
    } catch (_) {}
  }
  if (!pair) {
    alg = "ES256";
    pair = await crypto.subtle.generateKey(
      { name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
  }
  const pub = await crypto.subtle.exportKey("jwk", pair.publicKey);
  const jwk = alg === "EdDSA"
    ? { kty: "OKP", crv: "Ed25519", x: pub.x }
    : { kty: "EC", crv: "P-256", x: pub.x, y: pub.y };
  const entry = { privateKey: pair.privateKey, jwk, alg };
  memory.set(id, entry);
  try { await keys("readwrite", (s) => s.put(entry, id)); } catch (_) {}
  return alg;
}

export async function dpop_proof(id, htm, url, nonce, token) {
  let entry = memory.get(id);
  if (!entry) {
    try { entry = await keys("readonly", (s) => s.get(id)); } catch (_) {}
    if (!entry) return null;
    memory.set(id, entry);
  }
  const target = new URL(url, location.href);
  const claims = {
    jti: crypto.randomUUID(), htm, htu: target.origin + target.pathname,
    iat: Math.floor(Date.now() / 1000),
  };
  if (nonce) claims.nonce = nonce;
  if (token) claims.ath = b64(await crypto.subtle.digest("SHA-256", utf8(token)));
  const input = json64({ typ: "dpop+jwt", alg: entry.alg, jwk: entry.jwk }) + "." + json64(claims);
  const algorithm = entry.alg === "EdDSA" ? { name: "Ed25519" } : { name: "ECDSA", hash: "SHA-256" };
  return input + "." + b64(await crypto.subtle.sign(algorithm, entry.privateKey, utf8(input)));
}

export async function dpop_delete(id) {
  memory.delete(id);
  try { await keys("readwrite", (s) => s.delete(id)); } catch (_) {}
}
"#)]
extern "C" {
    #[wasm_bindgen(catch)]
    async fn dpop_create(id: &str, es256: bool) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch)]
    async fn dpop_proof(
        id: &str,
        htm: &str,
        url: &str,
        nonce: Option<String>,
        token: Option<String>,
    ) -> Result<JsValue, JsValue>;
    async fn dpop_delete(id: &str);
}

/// A new key for a login, under a new id; `None` where WebCrypto cannot make one (the
/// login then goes without a proof, as a Bearer session). `es256` skips Ed25519.
pub(crate) async fn create(es256: bool) -> Option<String> {
    let id = format!("k{}", super::random_id());
    match dpop_create(&id, es256).await {
        Ok(_) => Some(id),
        Err(e) => {
            web_sys::console::warn_2(&"baton-client: no DPoP key:".into(), &e);
            None
        }
    }
}

/// A proof by key `id` for `method url`, with the last nonce and, beside an access
/// token, its hash; `None` if the key is gone (the server then refuses the call).
pub(crate) async fn proof(
    id: &str,
    method: &str,
    url: &str,
    token: Option<&str>,
) -> Option<String> {
    let nonce = stored_nonce().map(|(nonce, _)| nonce);
    let proof = dpop_proof(id, method, url, nonce, token.map(str::to_owned)).await;
    proof.ok()?.as_string()
}

/// Deletes key `id` from every tab's reach. Not awaited by anyone: it runs on its own.
pub(crate) fn delete(id: String) {
    wasm_bindgen_futures::spawn_local(async move { dpop_delete(&id).await });
}

fn nonce_key() -> String {
    format!("{}.dpop-nonce", config().storage_key)
}

thread_local! {
    /// This tab's own copy of the last nonce (`<ms> <nonce>`), for where `localStorage`
    /// is unusable: a login there would otherwise never have the nonce it was told.
    static SEEN: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// The newest nonce kept (by any tab, or by this one) and when it came.
fn stored_nonce() -> Option<(String, i64)> {
    let read = |raw: &str| {
        let (at, nonce) = raw.split_once(' ')?;
        Some((nonce.to_owned(), at.parse::<i64>().ok()?))
    };
    let shared = storage::get(&nonce_key()).as_deref().and_then(read);
    let own = SEEN.with(|seen| seen.borrow().as_deref().and_then(read));
    shared.into_iter().chain(own).max_by_key(|(_, at)| *at)
}

/// True when the next proof should wait for a fresh nonce.
pub(crate) fn nonce_stale() -> bool {
    stored_nonce().is_none_or(|(_, at)| now_ms() - at > NONCE_MAX_AGE_MS)
}

/// Keeps the nonce of an answer's `DPoP-Nonce`, for the next proof.
pub(crate) fn saw_nonce(nonce: Option<String>) {
    if let Some(nonce) = nonce {
        let raw = format!("{} {nonce}", now_ms());
        storage::set(&nonce_key(), &raw);
        SEEN.with(|seen| *seen.borrow_mut() = Some(raw));
    }
}
