//! Writes DPoP proofs for a load run (scripts/load, scenario `me_dpop`): logs in to a
//! running server with a new Ed25519 key (a DPoP-bound session, as the browser app makes
//! one), then signs `count` proofs for `GET <base>/api/me` under the server's current
//! nonce, each with its own `jti` and the access token's `ath`. Signing them ahead keeps
//! the load generator's signatures off the cores while the server is measured, and every
//! proof is sent once (the server refuses a `jti` it has seen).
//!
//!   cargo run --release --example dpop_proofs -- <base url> <count> <out file>
//!   (LOAD_USER and LOAD_PASSWORD name an existing account)
//!
//! The file's first line is the access token, then one proof per line.

use std::io::{BufWriter, Write};

use anyhow::{bail, Context};
use serde_json::{json, Value};

#[path = "../tests/api/dpop_key.rs"]
#[allow(dead_code)]
mod dpop_key;
use dpop_key::DpopKey;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, count, out] = args.as_slice() else {
        bail!("usage: dpop_proofs <base url> <count> <out file>");
    };
    let count: usize = count.parse().context("count must be a number")?;
    let user = std::env::var("LOAD_USER").context("LOAD_USER")?;
    let password = std::env::var("LOAD_PASSWORD").context("LOAD_PASSWORD")?;

    let http = reqwest::Client::new();
    let key = DpopKey::ed25519();
    // Every API answer carries the server's current nonce.
    let nonce = |answer: &reqwest::Response| -> anyhow::Result<String> {
        Ok(answer
            .headers()
            .get("dpop-nonce")
            .context("no DPoP-Nonce in the answer (is BATON_DPOP off?)")?
            .to_str()?
            .to_owned())
    };
    let health = http.get(format!("{base}/api/health")).send().await?;
    let login_url = format!("{base}/api/auth/login");
    let answer = http
        .post(&login_url)
        .header(
            "DPoP",
            key.proof("POST", &login_url, Some(&nonce(&health)?), None),
        )
        .json(&json!({"username": user, "password": password}))
        .send()
        .await?;
    let nonce = nonce(&answer)?;
    let status = answer.status();
    let body: Value = answer.json().await?;
    if !status.is_success() || body["token_type"] != "DPoP" {
        bail!("DPoP login failed: {status} {body}");
    }
    let access = body["access_token"].as_str().context("no access_token")?;

    let me = format!("{base}/api/me");
    let mut file = BufWriter::new(std::fs::File::create(out)?);
    writeln!(file, "{access}")?;
    for _ in 0..count {
        writeln!(
            file,
            "{}",
            key.proof("GET", &me, Some(&nonce), Some(access))
        )?;
    }
    file.flush()?;
    Ok(())
}
