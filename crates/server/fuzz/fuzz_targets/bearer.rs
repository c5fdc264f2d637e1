//! The Bearer header and access-token verification, through the real router
//! (`GET /api/me`). The first byte picks what the rest of the input is:
//! 0: the raw `Authorization` header value;
//! 1: the claims (JSON) of a token with a valid header, signed with the server's key;
//! 2: the header (JSON) of a token with valid claims, signed with the server's key;
//! 3: a valid token with the input spliced into it.

#![no_main]

use axum::body::Body;
use axum::http::Request;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use baton_server_fuzz::HARNESS;
use libfuzzer_sys::fuzz_target;

fn signed(header: &[u8], claims: &[u8]) -> Vec<u8> {
    let ring = HARNESS.state.tokens.ring();
    let (_, key) = ring.signing_key(baton_server::clock::now_ms()).expect("a signing key");
    let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, jsonwebtoken::Algorithm::EdDSA).unwrap();
    format!("Bearer {message}.{signature}").into_bytes()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let access = &HARNESS.access_token;
    let (valid_header, valid_claims) = {
        let mut parts = access.split('.');
        let h = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
        let c = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
        (h, c)
    };
    let value: Vec<u8> = match mode % 4 {
        0 => rest.to_vec(),
        1 => signed(&valid_header, rest),
        2 => signed(rest, &valid_claims),
        _ => {
            let at = usize::from(rest.first().copied().unwrap_or(0)) % access.len();
            let mut v = format!("Bearer {}", &access[..at]).into_bytes();
            v.extend_from_slice(rest.get(1..).unwrap_or_default());
            v.extend_from_slice(access[at..].as_bytes());
            v
        }
    };
    let Ok(req) = Request::get("/api/me")
        .header("authorization", value.as_slice())
        .body(Body::empty())
    else {
        return; // not a valid HTTP header value: never reaches a server
    };
    HARNESS.check(HARNESS.send(req), &[200, 400, 401, 431]);
});
