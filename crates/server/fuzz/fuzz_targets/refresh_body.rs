//! The body of `POST /api/auth/refresh` (and `/api/auth/logout`, which takes the same
//! body), through the real router and database. The first byte picks the content type
//! and the endpoint; `@T` in the body becomes a real refresh token, so rotation, the
//! grace window and reuse detection are reached too.

#![no_main]

use axum::body::Body;
use axum::http::Request;
use baton_server_fuzz::HARNESS;
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [Option<&str>; 4] = [
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("text/plain"),
    None,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let body = match std::str::from_utf8(rest) {
        Ok(text) if text.contains("@T") => text.replace("@T", &HARNESS.refresh_token).into_bytes(),
        _ => rest.to_vec(),
    };
    let path = if selector & 0x10 == 0 { "/api/auth/refresh" } else { "/api/auth/logout" };
    let mut req = Request::post(path);
    if let Some(content_type) = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()] {
        req = req.header("content-type", content_type);
    }
    let req = req.body(Body::from(body)).unwrap();
    HARNESS.check(HARNESS.send(req), &[200, 204, 400, 401, 413, 415]);
});
