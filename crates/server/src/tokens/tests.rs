//! Unit tests of access tokens: signing, every refusal, the verified-token cache.

use super::*;
use crate::keys::{new_ed25519_key, MasterKey, Signer};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};

/// The default token settings with this access-token lifetime.
fn config(ttl_secs: u64) -> TokenConfig {
    let mut config = crate::config::Config::default().tokens;
    config.access_ttl = std::time::Duration::from_secs(ttl_secs);
    config
}

fn eddsa() -> AccessTokens {
    let master = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
    let row = new_ed25519_key(&master, 0, 0);
    let ring = KeyRing::from_rows(&[row], &master, 900_000).unwrap();
    AccessTokens::new(&config(900), ring)
}

fn hs256(secret: &[u8]) -> AccessTokens {
    AccessTokens::new(&config(900), KeyRing::from_secrets(secret, &[], 900_000))
}

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

#[test]
fn a_signed_token_verifies_with_every_claim() {
    let tokens = eddsa();
    tokens.self_test().unwrap();
    let (token, exp) = tokens.sign(Uuid::nil(), Uuid::max()).unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert!(header.kid.is_some());
    let claims = tokens.verify(&token).unwrap();
    assert_eq!(
        (claims.sub, claims.sid, claims.exp),
        (Uuid::nil(), Uuid::max(), exp)
    );
    assert!((900..=901).contains(&(claims.exp - claims.iat)));
}

/// A client times its refresh from `expires_in` (the ttl) counted from when the answer
/// came: the token must not expire sooner, whatever the millisecond it was signed at.
#[test]
fn a_token_lives_at_least_its_ttl_from_signing() {
    let tokens = eddsa();
    for _ in 0..5 {
        let signed_at = crate::clock::now_ms();
        let (_, exp) = tokens.sign(Uuid::nil(), Uuid::max()).unwrap();
        let lifetime_ms = exp * 1000 - signed_at;
        assert!(
            (900_000..902_000).contains(&lifetime_ms),
            "signed at {signed_at}, exp {exp}: lives {lifetime_ms} ms"
        );
        std::thread::sleep(std::time::Duration::from_millis(137));
    }
}

fn forge(
    tokens: &AccessTokens,
    header: Header,
    claims: &serde_json::Value,
    key: &EncodingKey,
) -> String {
    let _ = tokens;
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// The same Ed25519 key as jsonwebtoken's `EncodingKey`.
fn jsonwebtoken_key(signer: &Signer) -> EncodingKey {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let Signer::Ed25519(key) = signer else {
        panic!("not an Ed25519 key")
    };
    EncodingKey::from_ed_der(key.to_pkcs8_der().unwrap().as_bytes())
}

fn claims(exp_offset: i64) -> serde_json::Value {
    let now = now_ms() / 1000;
    serde_json::json!({
        "iss": "baton", "aud": "baton", "sub": Uuid::new_v4(), "sid": Uuid::new_v4(),
        "iat": now, "exp": now + exp_offset, "jti": Uuid::new_v4()
    })
}

fn header(alg: Algorithm, typ: Option<&str>, kid: Option<&str>) -> Header {
    let mut h = Header::new(alg);
    h.typ = typ.map(str::to_owned);
    h.kid = kid.map(str::to_owned);
    h
}

#[test]
fn hs256_refusals() {
    let tokens = hs256(SECRET);
    let kid = tokens.ring().published_kids(0)[0].to_owned();
    let key = EncodingKey::from_secret(SECRET);
    let good = forge(
        &tokens,
        header(Algorithm::HS256, Some("at+jwt"), Some(&kid)),
        &claims(60),
        &key,
    );
    assert!(tokens.verify(&good).is_ok());

    let expired = forge(
        &tokens,
        header(Algorithm::HS256, Some("at+jwt"), Some(&kid)),
        &claims(-1),
        &key,
    );
    assert_eq!(tokens.verify(&expired), Err(BearerError::Expired));

    // Expired *and* badly signed is invalid, not expired: no refresh on a forgery.
    let other = EncodingKey::from_secret(b"another-secret-another-secret-00");
    let forged_expired = forge(
        &tokens,
        header(Algorithm::HS256, Some("at+jwt"), Some(&kid)),
        &claims(-1),
        &other,
    );
    assert_eq!(tokens.verify(&forged_expired), Err(BearerError::Invalid));

    let cases: Vec<(&str, String)> = vec![
        (
            "plain JWT typ",
            forge(
                &tokens,
                header(Algorithm::HS256, Some("JWT"), Some(&kid)),
                &claims(60),
                &key,
            ),
        ),
        (
            "no typ",
            forge(
                &tokens,
                header(Algorithm::HS256, None, Some(&kid)),
                &claims(60),
                &key,
            ),
        ),
        (
            "no kid",
            forge(
                &tokens,
                header(Algorithm::HS256, Some("at+jwt"), None),
                &claims(60),
                &key,
            ),
        ),
        (
            "unknown kid",
            forge(
                &tokens,
                header(Algorithm::HS256, Some("at+jwt"), Some("nope")),
                &claims(60),
                &key,
            ),
        ),
        (
            "HS384",
            forge(
                &tokens,
                header(Algorithm::HS384, Some("at+jwt"), Some(&kid)),
                &claims(60),
                &key,
            ),
        ),
        (
            "wrong secret",
            forge(
                &tokens,
                header(Algorithm::HS256, Some("at+jwt"), Some(&kid)),
                &claims(60),
                &other,
            ),
        ),
        ("not a JWT", "abc.def.ghi".to_owned()),
        ("garbage", "hello".to_owned()),
    ];
    for (name, token) in cases {
        assert_eq!(tokens.verify(&token), Err(BearerError::Invalid), "{name}");
    }

    // These claims, well signed with the right header.
    let verify_claims = |c: &serde_json::Value| {
        let h = header(Algorithm::HS256, Some("at+jwt"), Some(&kid));
        tokens.verify(&forge(&tokens, h, c, &key))
    };
    for (claim, value) in [
        ("iss", serde_json::json!("someone-else")),
        ("aud", serde_json::json!("other-app")),
        ("sub", serde_json::json!("not-a-uuid")),
    ] {
        let mut c = claims(60);
        c[claim] = value;
        assert_eq!(
            verify_claims(&c),
            Err(BearerError::Invalid),
            "wrong {claim}"
        );
    }
    for claim in ["iss", "aud", "sub", "sid", "iat", "exp", "jti"] {
        let mut c = claims(60);
        c.as_object_mut().unwrap().remove(claim);
        assert_eq!(
            verify_claims(&c),
            Err(BearerError::Invalid),
            "missing {claim}"
        );
    }
}

#[test]
fn a_cached_token_still_expires() {
    let tokens = AccessTokens::new(&config(1), KeyRing::from_secrets(SECRET, &[], 1_000));
    let (token, _) = tokens.sign(Uuid::new_v4(), Uuid::new_v4()).unwrap();
    assert!(tokens.verify(&token).is_ok());
    assert!(tokens.verify(&token).is_ok(), "from the cache");
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    assert_eq!(tokens.verify(&token), Err(BearerError::Expired));
    assert_eq!(
        tokens.verify(&token),
        Err(BearerError::Expired),
        "and not cached again"
    );
}

#[test]
fn the_cache_never_accepts_a_token_it_did_not_verify() {
    let tokens = hs256(SECRET);
    let (token, _) = tokens.sign(Uuid::new_v4(), Uuid::new_v4()).unwrap();
    assert!(tokens.verify(&token).is_ok());
    // Same signature, one payload byte changed.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut payload = parts[1].clone().into_bytes();
    payload[10] = if payload[10] == b'A' { b'B' } else { b'A' };
    parts[1] = String::from_utf8(payload).unwrap();
    assert_eq!(tokens.verify(&parts.join(".")), Err(BearerError::Invalid));
    // A full cache keeps working.
    for _ in 0..(VERIFIED_CACHE_CAPACITY + 10) {
        let (t, _) = tokens.sign(Uuid::new_v4(), Uuid::new_v4()).unwrap();
        assert!(tokens.verify(&t).is_ok());
    }
    assert!(tokens.verified.read().unwrap().tokens.len() <= VERIFIED_CACHE_CAPACITY);
    assert!(tokens.verify(&token).is_ok());
}

#[test]
fn alg_none_and_algorithm_confusion_are_refused() {
    let tokens = eddsa();
    let (token, _) = tokens.sign(Uuid::new_v4(), Uuid::new_v4()).unwrap();
    let mut parts = token.split('.');
    let (_, payload) = (parts.next().unwrap(), parts.next().unwrap());
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    let none_header =
        URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"at+jwt","kid":"{kid}"}}"#));
    assert_eq!(
        tokens.verify(&format!("{none_header}.{payload}.")),
        Err(BearerError::Invalid)
    );
    // HS256 signed with the (public) EdDSA key as the HMAC secret.
    let ring = tokens.ring();
    let jwks = ring.jwks(now_ms());
    assert_eq!(jwks.keys.len(), 1);
    let public = URL_SAFE_NO_PAD.decode(jwks.keys[0].x).unwrap();
    let key = EncodingKey::from_secret(&public);
    let confused = jsonwebtoken::encode(
        &header(Algorithm::HS256, Some("at+jwt"), Some(&kid)),
        &claims(60),
        &key,
    )
    .unwrap();
    assert_eq!(tokens.verify(&confused), Err(BearerError::Invalid));
}

#[test]
fn a_refresh_token_is_never_an_access_token() {
    let token = crate::refresh_token::generate().text;
    assert_eq!(eddsa().verify(&token), Err(BearerError::Invalid));
}

#[test]
fn a_token_is_expired_at_its_exp() {
    let tokens = hs256(SECRET);
    let kid = tokens.ring().published_kids(0)[0].to_owned();
    let key = EncodingKey::from_secret(SECRET);
    loop {
        let now = now_ms().div_euclid(1000);
        let mut c = claims(0);
        (c["iat"], c["exp"]) = (serde_json::json!(now - 60), serde_json::json!(now));
        let token = forge(
            &tokens,
            header(Algorithm::HS256, Some("at+jwt"), Some(&kid)),
            &c,
            &key,
        );
        let verdict = tokens.verify(&token);
        // Judged within the second it names: `exp` is exclusive.
        if now_ms().div_euclid(1000) == now {
            assert_eq!(verdict, Err(BearerError::Expired));
            return;
        }
    }
}

#[test]
fn a_replaced_key_verifies_only_what_it_signed_before_the_replacement() {
    let master = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
    let now = now_ms();
    let replaced_at = now - 10_000;
    let old = new_ed25519_key(&master, 0, 0);
    let new = new_ed25519_key(&master, replaced_at - 1_000, replaced_at);
    let ring = KeyRing::from_rows(&[old.clone(), new], &master, 900_000).unwrap();
    let (old_kid, old_key) = ring.signing_key(0).unwrap();
    assert_eq!(old_kid, old.kid);
    let old_key = jsonwebtoken_key(old_key);
    let tokens = AccessTokens::new(&config(900), ring);
    let sign = |iat_ms: i64, life_secs: i64| {
        let mut c = claims(0);
        let iat = iat_ms.div_euclid(1000);
        (c["iat"], c["exp"]) = (serde_json::json!(iat), serde_json::json!(iat + life_secs));
        forge(
            &tokens,
            header(Algorithm::EdDSA, Some("at+jwt"), Some(&old.kid)),
            &c,
            &old_key,
        )
    };
    // Signed before the replacement, for one lifetime: good until it expires.
    assert!(tokens.verify(&sign(replaced_at - 2_000, 900)).is_ok());
    // Signed after it (a stolen key, a fresh `iat`): refused.
    assert!(tokens.verify(&sign(now, 900)).is_err());
    // Back-dated, but meant to outlive the replacement by more than a lifetime: refused.
    assert!(tokens.verify(&sign(replaced_at - 2_000, 10 * 900)).is_err());
}

#[test]
fn an_eddsa_signature_is_the_one_jsonwebtoken_makes() {
    let master = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
    let ring = KeyRing::from_rows(&[new_ed25519_key(&master, 0, 0)], &master, 900_000).unwrap();
    let (kid, signer) = ring.signing_key(0).unwrap();
    let header = header(Algorithm::EdDSA, Some("at+jwt"), Some(kid));
    let c = claims(900);
    let reference = jsonwebtoken_key(signer);
    assert_eq!(
        signer.sign(&header, &c).unwrap(),
        jsonwebtoken::encode(&header, &c, &reference).unwrap()
    );
}

#[test]
fn a_stored_public_key_must_be_the_private_keys_own() {
    let master = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
    let mut row = new_ed25519_key(&master, 0, 0);
    row.public_key = new_ed25519_key(&master, 0, 0).public_key;
    let err = KeyRing::from_rows(&[row.clone()], &master, 900_000)
        .err()
        .expect("refused");
    assert!(err.to_string().contains(&row.kid), "{err}");
}
