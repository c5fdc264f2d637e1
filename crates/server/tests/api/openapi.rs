//! The served OpenAPI document matches the contract's endpoint table in docs/API.md:
//! the same paths and methods, and every status the contract lists.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::StatusCode;

use crate::helpers::*;

/// (METHOD, path) → statuses, from the endpoint table of docs/API.md. A row with
/// several methods (`GET/PUT/DELETE /api/notes/{id}`) gives each method the row's
/// statuses; they are compared as a union per row below.
fn contract_rows() -> Vec<(Vec<String>, String, BTreeSet<u16>)> {
    let api =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/API.md")).unwrap();
    let mut rows = Vec::new();
    for line in api.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 6 {
            continue;
        }
        let Some((methods, path)) = cells[1].split_once(' ') else {
            continue;
        };
        if !path.starts_with('/') || !methods.chars().all(|c| c.is_ascii_uppercase() || c == '/') {
            continue;
        }
        let statuses = format!("{} {}", cells[4], cells[5])
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse::<u16>().ok())
            .filter(|n| (100..600).contains(n))
            .collect();
        rows.push((
            methods.split('/').map(str::to_lowercase).collect(),
            path.to_owned(),
            statuses,
        ));
    }
    rows
}

#[tokio::test]
async fn openapi_matches_the_contract_table() {
    let app = spawn_app(Backend::Sqlite).await;
    let r = app.get("/api/openapi.json", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let spec: serde_json::Value = r.json().await.unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));

    let mut documented: BTreeMap<(String, String), BTreeSet<u16>> = BTreeMap::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let statuses = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(|k| k.parse().unwrap())
                .collect();
            documented.insert((method.clone(), path.clone()), statuses);
        }
    }
    let rows = contract_rows();
    assert!(rows.len() >= 14, "the contract table was read: {rows:?}");
    let mut in_contract = BTreeSet::new();
    for (methods, path, statuses) in &rows {
        let mut union = BTreeSet::new();
        for method in methods {
            let key = (method.clone(), path.clone());
            let ours = documented
                .get(&key)
                .unwrap_or_else(|| panic!("{method} {path} is not in the OpenAPI document"));
            union.extend(ours.iter().copied());
            in_contract.insert(key);
        }
        for status in statuses {
            assert!(
                union.contains(status),
                "{methods:?} {path}: the contract lists {status}, OpenAPI has {union:?}"
            );
        }
    }
    let extra: Vec<_> = documented
        .keys()
        .filter(|k| !in_contract.contains(*k))
        .collect();
    assert!(
        extra.is_empty(),
        "documented but not in the contract: {extra:?}"
    );
    // The shared types are the schemas.
    for schema in [
        "ApiError",
        "ErrorCode",
        "TokenPair",
        "User",
        "Session",
        "Note",
    ] {
        assert!(
            spec["components"]["schemas"][schema].is_object(),
            "schema {schema}"
        );
    }
    assert!(
        spec["components"]["securitySchemes"]["dpop"].is_object(),
        "the DPoP proof header is documented"
    );
    let codes: Vec<&str> = spec["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for code in [
        "token_expired",
        "refresh_token_reused",
        "session_revoked",
        "rate_limited",
        "request_timeout",
        "invalid_dpop_proof",
        "use_dpop_nonce",
    ] {
        assert!(codes.contains(&code), "{code} in {codes:?}");
    }
}
