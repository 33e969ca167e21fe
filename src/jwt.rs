//! JWT access tokens: which streams a token's holder may watch and feed, and until when.
//!
//! framecast mints no tokens. As with Mercure and MediaMTX, the operator's own backend signs a
//! short-lived token for each of its users, and framecast only checks it: with a shared secret
//! (HS256) and/or a public key (RS256, ES256 or EdDSA, by the key's type). A [`Verifier`] holds
//! those keys; [`Verifier::verify`] turns a token into a [`Grant`], or says in a [`TokenError`]
//! what is wrong with it, never quoting the token, which is itself a credential.
//!
//! # Claims
//!
//! ```json
//! {
//!   "sub": "alice",
//!   "exp": 1767225600,
//!   "framecast": {
//!     "subscribe": ["cam-*", "lobby"],
//!     "publish": ["alice-cam"]
//!   }
//! }
//! ```
//!
//! - `exp` (required, seconds since the Unix epoch) ends the grant. It is checked with
//!   [`LEEWAY`] for clock skew when the token is presented; [`Grant::expires_at`] is the exact
//!   time, with no leeway, for ending a stream on time.
//! - `nbf`, if present, is enforced the same way. Other claims (`sub`, `iat`, `aud`, ...) are
//!   allowed and not checked.
//! - `framecast.subscribe` and `framecast.publish` list the streams the token may watch and
//!   feed. A pattern is a stream name (exact match) or a name prefix followed by `*`: `"cam-*"`
//!   matches `cam-1`, and `"*"` matches every stream. A list left out, or no `framecast` claim
//!   at all, allows nothing. One pattern that is neither makes the whole token invalid, so a
//!   mistake is reported instead of silently granting less. Other keys in `framecast` are
//!   ignored.
//!
//! # Algorithms
//!
//! The token's `alg` picks the key, and only a configured key: HS256 only with the secret,
//! RS256, ES256 or EdDSA only with a public key of that type. So `none` is never accepted, and
//! an HS256 token keyed with the public key's PEM text (the classic key confusion) never meets
//! the public key.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use crate::secret::Secret;
use crate::stream_name::StreamName;

/// Clock skew forgiven when a token's `exp` and `nbf` are checked as it is presented.
pub const LEEWAY: Duration = Duration::from_secs(5);

/// Shortest HS256 secret, in bytes: RFC 7518 (3.2) asks for a key as long as the hash.
pub const MIN_SECRET_LEN: usize = 32;

/// The JWS `alg` names an error may show; a token naming any other is shown as `unknown`, so
/// no text of the token's own reaches a message.
const ALGORITHM_NAMES: [&str; 15] = [
    "none", "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512", "ES256K", "EdDSA",
];

/// Verifies access tokens with the configured keys.
pub struct Verifier {
    /// The shared secret, keyed for HS256.
    secret: Option<DecodingKey>,
    /// The public key and the one algorithm its type verifies.
    public_key: Option<(Algorithm, DecodingKey)>,
}

impl Verifier {
    /// A verifier for a shared `secret` (HS256) and/or a PEM public key (RS256 for RSA, ES256 for
    /// EC P-256, EdDSA for Ed25519); `None` when neither is given, as then no token is checked.
    pub fn new(
        secret: Option<Secret>,
        public_key_pem: Option<&[u8]>,
    ) -> Result<Option<Verifier>, JwtConfigError> {
        if secret.is_none() && public_key_pem.is_none() {
            return Ok(None);
        }
        let secret = match secret {
            Some(secret) if secret.expose().len() < MIN_SECRET_LEN => {
                return Err(JwtConfigError::ShortSecret);
            }
            secret => secret.map(|secret| DecodingKey::from_secret(secret.expose())),
        };
        let public_key = public_key_pem.map(public_key).transpose()?;
        Ok(Some(Verifier { secret, public_key }))
    }

    /// What `token` allows, if it is signed with a configured key, current (give or take
    /// [`LEEWAY`]), and its `framecast` claim is well formed.
    pub fn verify(&self, token: &str) -> Result<Grant, TokenError> {
        let name = header_algorithm(token)?;
        let (algorithm, key) = self.key_for(name).ok_or(TokenError::Algorithm(name))?;
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY.as_secs();
        validation.validate_nbf = true;
        // `aud` is the minting backend's business: allowed, not checked.
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(TokenError::from_jwt)?
            .claims;
        let expires_at = claims
            .exp
            .and_then(|exp| Duration::try_from_secs_f64(exp).ok())
            .and_then(|exp| UNIX_EPOCH.checked_add(exp))
            .ok_or(TokenError::Malformed)?;
        let claim = &claims.framecast;
        if !(claim.is_null() || claim.is_object()) {
            return Err(TokenError::Claim("it is not an object".into()));
        }
        Ok(Grant {
            expires_at,
            subscribe: Patterns::from_claim(claim, "subscribe")?,
            publish: Patterns::from_claim(claim, "publish")?,
        })
    }

    /// The configured key for the algorithm named `name`, if there is one.
    fn key_for(&self, name: &str) -> Option<(Algorithm, &DecodingKey)> {
        let algorithm = Algorithm::from_str(name).ok()?;
        let key = match algorithm {
            Algorithm::HS256 => self.secret.as_ref(),
            _ => self
                .public_key
                .as_ref()
                .filter(|(public, _)| *public == algorithm)
                .map(|(_, key)| key),
        };
        key.map(|key| (algorithm, key))
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("secret", &self.secret.as_ref().map(|_| Algorithm::HS256))
            .field("public_key", &self.public_key.as_ref().map(|(alg, _)| alg))
            .finish()
    }
}

/// What a verified token allows, and until when.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The token's exact `exp`, without leeway: a stream it opened should end then.
    pub expires_at: SystemTime,
    subscribe: Patterns,
    publish: Patterns,
}

impl Grant {
    /// Whether the token may watch `stream` (a valid stream name).
    pub fn may_subscribe(&self, stream: &str) -> bool {
        self.subscribe.matches(stream)
    }

    /// Whether the token may watch every stream, whatever its name (`subscribe: ["*"]`).
    pub fn may_subscribe_all(&self) -> bool {
        self.subscribe.0.iter().any(|pattern| pattern == "*")
    }

    /// Whether the token may publish to `stream` (a valid stream name).
    pub fn may_publish(&self, stream: &str) -> bool {
        self.publish.matches(stream)
    }
}

/// Stream names and `prefix*` patterns, each checked when the token was read.
#[derive(Debug, Clone, Default)]
struct Patterns(Vec<String>);

impl Patterns {
    /// The list under `key` in the `framecast` claim: empty when it is left out.
    fn from_claim(claim: &Value, key: &str) -> Result<Patterns, TokenError> {
        let items = match claim.get(key) {
            None | Some(Value::Null) => return Ok(Patterns::default()),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(TokenError::Claim(format!("{key} is not a list"))),
        };
        let mut patterns = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item.as_str() {
                Some(pattern) if is_pattern(pattern) => patterns.push(pattern.to_owned()),
                // The message names the place, not the pattern: its text is the token's.
                _ => {
                    return Err(TokenError::Claim(format!(
                        "{key}[{i}] is not a stream name or a name prefix followed by *"
                    )));
                }
            }
        }
        Ok(Patterns(patterns))
    }

    fn matches(&self, stream: &str) -> bool {
        self.0
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => stream.starts_with(prefix),
                None => stream == pattern,
            })
    }
}

/// Whether `pattern` is a stream name, a stream name followed by `*`, or `*` alone.
fn is_pattern(pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some("") => true,
        Some(prefix) => StreamName::parse(Some(prefix)).is_ok(),
        None => StreamName::parse(Some(pattern)).is_ok(),
    }
}

/// The claims framecast reads; `decode` has already checked `exp` and `nbf`.
#[derive(Deserialize)]
struct Claims {
    /// A NumericDate, which may have a fraction.
    exp: Option<f64>,
    /// `Null` when the token has none.
    #[serde(default)]
    framecast: Value,
}

/// The name of the algorithm `token`'s header asks for, as one of [`ALGORITHM_NAMES`] or
/// `unknown`.
fn header_algorithm(token: &str) -> Result<&'static str, TokenError> {
    #[derive(Deserialize)]
    struct Header {
        alg: String,
        crit: Option<Value>,
    }
    let header = token.split('.').next().unwrap_or_default();
    let header: Header = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or(TokenError::Malformed)?;
    // framecast understands no JWS extension, so a token that needs one is refused
    // (RFC 7515, 4.1.11).
    if header.crit.is_some() {
        return Err(TokenError::Malformed);
    }
    Ok(ALGORITHM_NAMES
        .into_iter()
        .find(|name| *name == header.alg)
        .unwrap_or("unknown"))
}

/// The public key in `pem` and the algorithm its type verifies.
fn public_key(pem: &[u8]) -> Result<(Algorithm, DecodingKey), JwtConfigError> {
    match pem_label(pem) {
        Some("PUBLIC KEY" | "RSA PUBLIC KEY") => {}
        Some(label) if label.contains("PRIVATE") => return Err(JwtConfigError::PrivateKey),
        _ => return Err(JwtConfigError::NotPem),
    }
    // Each constructor accepts only its own key type, so at most one of them succeeds.
    let (algorithm, key) = [
        (Algorithm::RS256, DecodingKey::from_rsa_pem(pem)),
        (Algorithm::ES256, DecodingKey::from_ec_pem(pem)),
        (Algorithm::EdDSA, DecodingKey::from_ed_pem(pem)),
    ]
    .into_iter()
    .find_map(|(algorithm, key)| Some((algorithm, key.ok()?)))
    .ok_or(JwtConfigError::UnsupportedKey)?;
    // Building a verifier parses an EC or Ed25519 key: a P-384 key fails here, not on every
    // token. (An Ed25519 key of the wrong length would panic there, so it is measured first.
    // An RSA key is parsed only as a token is checked.)
    let usable = match algorithm {
        Algorithm::EdDSA if key.as_bytes().len() != 32 => false,
        _ => jsonwebtoken::crypto::verify("", b"", &key, algorithm).is_ok(),
    };
    if !usable {
        return Err(JwtConfigError::UnsupportedKey);
    }
    Ok((algorithm, key))
}

/// The label (`PUBLIC KEY`, `PRIVATE KEY`, ...) of the first PEM block in `pem`, if its base64
/// body decodes.
fn pem_label(pem: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(pem).ok()?;
    let (_, rest) = text.split_once("-----BEGIN ")?;
    let (label, rest) = rest.split_once("-----")?;
    let (body, _) = rest.split_once(&format!("-----END {label}-----"))?;
    STANDARD
        .decode(body.split_whitespace().collect::<String>())
        .ok()?;
    Some(label)
}

/// Why the configured JWT keys cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtConfigError {
    /// The HS256 secret is shorter than [`MIN_SECRET_LEN`].
    #[error(
        "the JWT secret is too short: HS256 needs at least {} bytes (`openssl rand -hex 32` makes one)",
        MIN_SECRET_LEN
    )]
    ShortSecret,
    /// The public key file is not a PEM public key (or its base64 is damaged).
    #[error("the public key file is not a PEM public key (-----BEGIN PUBLIC KEY-----)")]
    NotPem,
    /// The public key file holds a private key.
    #[error(
        "the public key file holds a private key: give framecast the public key only (`openssl pkey -in KEY -pubout`)"
    )]
    PrivateKey,
    /// The public key is of a type framecast does not verify with, or damaged.
    #[error("the public key is not a usable RSA, EC P-256 or Ed25519 public key")]
    UnsupportedKey,
}

/// Why a token was refused. Messages are shown to the client, so none quotes the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts holding a JSON header and claims, or the claims' types are
    /// wrong, or the header needs an extension (`crit`).
    #[error("the token is malformed")]
    Malformed,
    /// The header's `alg` has no configured key (`none` never has one).
    #[error("the token's algorithm ({0}) is not accepted here")]
    Algorithm(&'static str),
    /// The signature was not made with the configured key.
    #[error("the token's signature does not verify")]
    Signature,
    /// `exp` has passed, by more than [`LEEWAY`].
    #[error("the token has expired")]
    Expired,
    /// `nbf` is still ahead, by more than [`LEEWAY`].
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The token has no `exp` (or one that is not a NumericDate).
    #[error("the token has no exp claim")]
    MissingExp,
    /// The `framecast` claim is not as the module documentation describes.
    #[error("the token's framecast claim is invalid: {0}")]
    Claim(String),
}

impl TokenError {
    fn from_jwt(err: jsonwebtoken::errors::Error) -> TokenError {
        match err.kind() {
            ErrorKind::InvalidSignature => TokenError::Signature,
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::MissingRequiredClaim(claim) if claim == "exp" => TokenError::MissingExp,
            _ => TokenError::Malformed,
        }
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header, get_current_timestamp};
    use serde_json::json;

    use super::*;

    // Test-only keys: their private halves are in the repository, see the folder's README.
    const RSA_PRIVATE: &[u8] = include_bytes!("../tests/fixtures/jwt-test-keys/rsa-private.pem");
    const RSA_PUBLIC: &[u8] = include_bytes!("../tests/fixtures/jwt-test-keys/rsa-public.pem");
    const RSA_PUBLIC_PKCS1: &[u8] =
        include_bytes!("../tests/fixtures/jwt-test-keys/rsa-public-pkcs1.pem");
    const EC_PRIVATE: &[u8] = include_bytes!("../tests/fixtures/jwt-test-keys/ec-p256-private.pem");
    const EC_PUBLIC: &[u8] = include_bytes!("../tests/fixtures/jwt-test-keys/ec-p256-public.pem");
    const EC_P384_PUBLIC: &[u8] =
        include_bytes!("../tests/fixtures/jwt-test-keys/ec-p384-public.pem");
    const ED_PRIVATE: &[u8] = include_bytes!("../tests/fixtures/jwt-test-keys/ed25519-private.pem");
    const ED_PUBLIC: &[u8] = include_bytes!("../tests/fixtures/jwt-test-keys/ed25519-public.pem");

    const SECRET: &str = "test-only-hs256-secret-0123456789abcdef";

    fn secret() -> Option<Secret> {
        Some(Secret::new(SECRET).unwrap())
    }

    fn verifier(secret: Option<Secret>, public_key: Option<&[u8]>) -> Verifier {
        Verifier::new(secret, public_key).unwrap().unwrap()
    }

    /// Claims expiring `exp` seconds from now, with a typical `framecast` claim.
    fn claims(exp: i64) -> Value {
        json!({
            "sub": "alice",
            "iat": get_current_timestamp(),
            "exp": get_current_timestamp() as i64 + exp,
            "framecast": {"subscribe": ["cam-*", "lobby"], "publish": ["alice-cam"]},
        })
    }

    fn mint(algorithm: Algorithm, key: &EncodingKey, claims: &Value) -> String {
        jsonwebtoken::encode(&Header::new(algorithm), claims, key).unwrap()
    }

    fn hs256(claims: &Value) -> String {
        mint(
            Algorithm::HS256,
            &EncodingKey::from_secret(SECRET.as_bytes()),
            claims,
        )
    }

    /// A token put together by hand, for what `encode` will not make.
    fn hand_made(header: &Value, claims: &Value, signature: &str) -> String {
        let part = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
        format!("{}.{}.{signature}", part(header), part(claims))
    }

    #[test]
    fn hs256_token_grants_its_patterns_until_its_exact_exp() {
        let claims = json!({"exp": 4_000_000_000u64, "framecast": {"subscribe": ["cam-*"]}});
        let grant = verifier(secret(), None).verify(&hs256(&claims)).unwrap();
        assert_eq!(
            grant.expires_at,
            UNIX_EPOCH + Duration::from_secs(4_000_000_000)
        );
        assert!(grant.may_subscribe("cam-1"));
        assert!(!grant.may_publish("cam-1"));
    }

    #[test]
    fn a_fractional_exp_is_kept_exactly() {
        let claims = json!({"exp": 4_000_000_000.25});
        let grant = verifier(secret(), None).verify(&hs256(&claims)).unwrap();
        assert_eq!(
            grant.expires_at,
            UNIX_EPOCH + Duration::from_millis(4_000_000_000_250)
        );
    }

    #[test]
    fn public_key_tokens_verify_with_the_algorithm_of_the_keys_type() {
        for (algorithm, private, public) in [
            (
                Algorithm::RS256,
                EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap(),
                RSA_PUBLIC,
            ),
            (
                Algorithm::RS256,
                EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap(),
                RSA_PUBLIC_PKCS1,
            ),
            (
                Algorithm::ES256,
                EncodingKey::from_ec_pem(EC_PRIVATE).unwrap(),
                EC_PUBLIC,
            ),
            (
                Algorithm::EdDSA,
                EncodingKey::from_ed_pem(ED_PRIVATE).unwrap(),
                ED_PUBLIC,
            ),
        ] {
            let token = mint(algorithm, &private, &claims(60));
            // With the public key alone, and with a secret beside it.
            for verifier in [
                verifier(None, Some(public)),
                verifier(secret(), Some(public)),
            ] {
                let grant = verifier.verify(&token).unwrap_or_else(|err| {
                    panic!("{algorithm:?}: {err}");
                });
                assert!(grant.may_subscribe("cam-7"), "{algorithm:?}");
                assert!(grant.may_publish("alice-cam"), "{algorithm:?}");
            }
        }
    }

    #[test]
    fn expired_tokens_are_refused_but_skew_within_the_leeway_is_forgiven() {
        let verifier = verifier(secret(), None);
        assert_eq!(
            verifier.verify(&hs256(&claims(-60))).unwrap_err(),
            TokenError::Expired
        );
        let exp = get_current_timestamp() - 2;
        let grant = verifier.verify(&hs256(&json!({"exp": exp}))).unwrap();
        // Accepted, yet its exact end has passed: the caller ends the stream at once.
        assert_eq!(grant.expires_at, UNIX_EPOCH + Duration::from_secs(exp));
        assert!(grant.expires_at < SystemTime::now());
    }

    #[test]
    fn a_token_without_exp_is_refused() {
        let verifier = verifier(secret(), None);
        let token = hs256(&json!({"framecast": {"subscribe": ["*"]}}));
        assert_eq!(verifier.verify(&token).unwrap_err(), TokenError::MissingExp);
        let token = hs256(&json!({"exp": "tomorrow"}));
        assert_eq!(verifier.verify(&token).unwrap_err(), TokenError::Malformed);
    }

    #[test]
    fn nbf_is_enforced_with_the_leeway() {
        let verifier = verifier(secret(), None);
        let now = get_current_timestamp();
        let soon = json!({"exp": now + 600, "nbf": now + 60});
        assert_eq!(
            verifier.verify(&hs256(&soon)).unwrap_err(),
            TokenError::NotYetValid
        );
        let skewed = json!({"exp": now + 600, "nbf": now + 2});
        assert!(verifier.verify(&hs256(&skewed)).is_ok());
    }

    #[test]
    fn a_wrong_signature_is_refused() {
        let other = EncodingKey::from_secret(b"another-test-only-secret-0123456789abcdef");
        let token = mint(Algorithm::HS256, &other, &claims(60));
        assert_eq!(
            verifier(secret(), None).verify(&token).unwrap_err(),
            TokenError::Signature
        );

        // A payload swapped under a valid RS256 signature.
        let private = EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap();
        let signed = mint(Algorithm::RS256, &private, &claims(60));
        let widened = json!({"exp": get_current_timestamp() + 60, "framecast": {"publish": ["*"]}});
        let widened = mint(Algorithm::RS256, &private, &widened);
        let signed: Vec<&str> = signed.split('.').collect();
        let widened: Vec<&str> = widened.split('.').collect();
        let forged = format!("{}.{}.{}", signed[0], widened[1], signed[2]);
        assert_eq!(
            verifier(None, Some(RSA_PUBLIC))
                .verify(&forged)
                .unwrap_err(),
            TokenError::Signature
        );
    }

    #[test]
    fn alg_none_is_never_accepted() {
        let token = hand_made(&json!({"alg": "none", "typ": "JWT"}), &claims(60), "");
        for verifier in [
            verifier(secret(), None),
            verifier(None, Some(RSA_PUBLIC)),
            verifier(secret(), Some(ED_PUBLIC)),
        ] {
            assert_eq!(
                verifier.verify(&token).unwrap_err(),
                TokenError::Algorithm("none")
            );
        }
        let token = hand_made(&json!({"alg": "NoNe"}), &claims(60), "");
        assert_eq!(
            verifier(secret(), None).verify(&token).unwrap_err(),
            TokenError::Algorithm("unknown")
        );
    }

    #[test]
    fn an_hs256_token_keyed_with_the_public_key_text_is_refused() {
        let confused = mint(
            Algorithm::HS256,
            &EncodingKey::from_secret(RSA_PUBLIC),
            &claims(60),
        );
        assert_eq!(
            verifier(None, Some(RSA_PUBLIC))
                .verify(&confused)
                .unwrap_err(),
            TokenError::Algorithm("HS256")
        );
        assert_eq!(
            verifier(secret(), Some(RSA_PUBLIC))
                .verify(&confused)
                .unwrap_err(),
            TokenError::Signature
        );
    }

    #[test]
    fn only_the_configured_keys_algorithms_are_accepted() {
        let rs256 = mint(
            Algorithm::RS256,
            &EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap(),
            &claims(60),
        );
        assert_eq!(
            verifier(secret(), None).verify(&rs256).unwrap_err(),
            TokenError::Algorithm("RS256")
        );
        let es256 = mint(
            Algorithm::ES256,
            &EncodingKey::from_ec_pem(EC_PRIVATE).unwrap(),
            &claims(60),
        );
        assert_eq!(
            verifier(secret(), Some(RSA_PUBLIC))
                .verify(&es256)
                .unwrap_err(),
            TokenError::Algorithm("ES256")
        );
        let hs384 = mint(
            Algorithm::HS384,
            &EncodingKey::from_secret(SECRET.as_bytes()),
            &claims(60),
        );
        assert_eq!(
            verifier(secret(), None).verify(&hs384).unwrap_err(),
            TokenError::Algorithm("HS384")
        );
    }

    #[test]
    fn patterns_match_exactly_or_by_prefix() {
        let verifier = verifier(secret(), None);
        let claims = json!({
            "exp": get_current_timestamp() + 60,
            "framecast": {"subscribe": ["lobby", "cam-*"], "publish": ["*"]},
        });
        let grant = verifier.verify(&hs256(&claims)).unwrap();
        assert!(grant.may_subscribe("lobby"));
        assert!(grant.may_subscribe("cam-1"));
        assert!(grant.may_subscribe("cam-"));
        assert!(!grant.may_subscribe("lobby2"));
        assert!(!grant.may_subscribe("lobb"));
        assert!(!grant.may_subscribe("cam"));
        assert!(!grant.may_subscribe("Cam-1"));
        assert!(grant.may_publish("anything_at-all"));
    }

    #[test]
    fn an_invalid_pattern_invalidates_the_token() {
        let verifier = verifier(secret(), None);
        let long = "a".repeat(65);
        for (framecast, reason) in [
            (json!({"subscribe": ["ok", "a*b"]}), "subscribe[1] is not"),
            (json!({"subscribe": [""]}), "subscribe[0] is not"),
            (json!({"publish": [7]}), "publish[0] is not"),
            (json!({"publish": ["**"]}), "publish[0] is not"),
            (json!({"publish": ["cam 1"]}), "publish[0] is not"),
            (json!({"publish": ["cam/*"]}), "publish[0] is not"),
            (json!({"publish": [long]}), "publish[0] is not"),
            (json!({"subscribe": "cam-1"}), "subscribe is not a list"),
            (json!(["cam-1"]), "it is not an object"),
        ] {
            let claims = json!({"exp": get_current_timestamp() + 60, "framecast": framecast});
            match verifier.verify(&hs256(&claims)) {
                Err(TokenError::Claim(message)) => {
                    assert!(message.starts_with(reason), "{message}")
                }
                other => panic!("{framecast}: {other:?}"),
            }
        }
        // The longest name, and the longest name as a prefix, are fine.
        let name = "a".repeat(64);
        let claims = json!({
            "exp": get_current_timestamp() + 60,
            "framecast": {"subscribe": [name.clone(), format!("{name}*")]},
        });
        assert!(verifier.verify(&hs256(&claims)).is_ok());
    }

    #[test]
    fn a_token_without_a_framecast_claim_is_valid_and_allows_nothing() {
        let verifier = verifier(secret(), None);
        let exp = get_current_timestamp() + 60;
        for claims in [
            json!({"exp": exp}),
            json!({"exp": exp, "framecast": null}),
            json!({"exp": exp, "framecast": {}}),
            json!({"exp": exp, "framecast": {"subscribe": [], "future": true}}),
        ] {
            let grant = verifier.verify(&hs256(&claims)).unwrap();
            assert!(!grant.may_subscribe("default"), "{claims}");
            assert!(!grant.may_publish("default"), "{claims}");
        }
    }

    #[test]
    fn other_claims_are_allowed() {
        let claims = json!({
            "exp": get_current_timestamp() + 60,
            "sub": "alice", "iat": 1, "aud": "some-backend", "iss": "them", "jti": "x",
            "framecast": {"subscribe": ["*"]},
        });
        assert!(verifier(secret(), None).verify(&hs256(&claims)).is_ok());
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let verifier = verifier(secret(), None);
        let valid = hs256(&claims(60));
        let crit = hand_made(
            &json!({"alg": "HS256", "crit": ["exp-ext"], "exp-ext": "1"}),
            &claims(60),
            "AAAA",
        );
        for token in [
            "",
            "abc",
            "a.b",
            "a.b.c",
            "....",
            &format!("{valid}.extra"),
            &format!(" {valid}"),
            &valid.replacen('.', "", 1),
            &hand_made(&json!("HS256"), &claims(60), "AAAA"),
            &crit,
        ] {
            assert_eq!(
                verifier.verify(token).unwrap_err(),
                TokenError::Malformed,
                "{token}"
            );
        }
    }

    #[test]
    fn no_error_message_shows_the_token_or_the_secret() {
        let verifier = verifier(secret(), Some(RSA_PUBLIC));
        let exp = get_current_timestamp() + 60;
        let tokens = [
            hs256(&claims(-60)),
            hs256(&json!({"nbf": exp})),
            hs256(&json!({"exp": exp, "framecast": {"subscribe": ["leak*me"]}})),
            hs256(&json!({"exp": exp, "framecast": {"publish": "leak-me"}})),
            mint(
                Algorithm::HS256,
                &EncodingKey::from_secret(RSA_PUBLIC),
                &claims(60),
            ),
            mint(
                Algorithm::HS512,
                &EncodingKey::from_secret(SECRET.as_bytes()),
                &claims(60),
            ),
            hand_made(&json!({"alg": "leak-me"}), &claims(60), "bGVhay1tZQ"),
            hand_made(&json!({"alg": "none"}), &claims(60), ""),
            format!("{}.garbage", hs256(&claims(60))),
            "leak-me".to_owned(),
        ];
        for token in &tokens {
            let message = verifier.verify(token).unwrap_err().to_string();
            assert!(!message.contains(token.as_str()), "{message}");
            for part in token.split('.').filter(|part| part.len() > 3) {
                assert!(!message.contains(part), "{message}");
            }
            assert!(!message.contains("leak"), "{message}");
            assert!(!message.contains(SECRET), "{message}");
        }
    }

    #[test]
    fn debug_shows_the_algorithms_not_the_keys() {
        let shown = format!("{:?}", verifier(secret(), Some(RSA_PUBLIC)));
        assert_eq!(
            shown,
            "Verifier { secret: Some(HS256), public_key: Some(RS256) }"
        );
        assert!(!shown.contains(SECRET));
        let key_line = std::str::from_utf8(RSA_PUBLIC).unwrap().lines().nth(1);
        assert!(!shown.contains(&key_line.unwrap()[..16]));
    }

    #[test]
    fn keys_are_checked_when_the_verifier_is_made() {
        assert!(Verifier::new(None, None).unwrap().is_none());
        let short = Secret::new(&SECRET[..MIN_SECRET_LEN - 1]).unwrap();
        assert_eq!(
            Verifier::new(Some(short), None).unwrap_err(),
            JwtConfigError::ShortSecret
        );
        for (pem, expected) in [
            (&b"not a key"[..], JwtConfigError::NotPem),
            (b"", JwtConfigError::NotPem),
            (&RSA_PUBLIC[..200], JwtConfigError::NotPem),
            (
                b"-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
                JwtConfigError::NotPem,
            ),
            (
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                JwtConfigError::NotPem,
            ),
            (
                b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                JwtConfigError::UnsupportedKey,
            ),
            (RSA_PRIVATE, JwtConfigError::PrivateKey),
            (EC_PRIVATE, JwtConfigError::PrivateKey),
            (ED_PRIVATE, JwtConfigError::PrivateKey),
            (EC_P384_PUBLIC, JwtConfigError::UnsupportedKey),
            // A secp256k1 key: 65 bytes like a P-256 one, but not on P-256.
            (
                b"-----BEGIN PUBLIC KEY-----\n\
                  MFYwEAYHKoZIzj0CAQYFK4EEAAoDQgAENCQQT7JJqS0mBxBx3CWVjiXBPF3FZwiO\n\
                  XC8wp9L3JyM3JqYFpKRl8wz3B0WAkr3Ikn8LbnFaVpxSN/ZplG1LJg==\n\
                  -----END PUBLIC KEY-----\n",
                JwtConfigError::UnsupportedKey,
            ),
            // An Ed25519 key one byte short, which must not panic.
            (
                b"-----BEGIN PUBLIC KEY-----\n\
                  MCkwBQYDK2VwAyAAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHw==\n\
                  -----END PUBLIC KEY-----\n",
                JwtConfigError::UnsupportedKey,
            ),
        ] {
            assert_eq!(
                Verifier::new(secret(), Some(pem)).unwrap_err(),
                expected,
                "{}",
                String::from_utf8_lossy(pem)
            );
        }
    }
}
