//! Logging in with the bank's identity provider (OpenID Connect,
//! authorization code flow with PKCE, state and nonce, by the
//! `openidconnect` crate), sessions in cookies, CSRF tokens, idle timeout.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, StandardErrorResponse,
    StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};

use letterpress::model::decision::Login;

/// The claims of the ID token beyond the standard ones (the groups claim
/// is read from here by its configured name).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Extra(serde_json::Map<String, serde_json::Value>);
impl AdditionalClaims for Extra {}

type Fields = IdTokenFields<
    Extra,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

type OidcClient = Client<
    Extra,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    StandardTokenResponse<Fields, CoreTokenType>,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The identity provider, discovered once at start.
pub struct Provider {
    client: OidcClient,
    http: openidconnect::reqwest::Client,
    issuer: String,
    groups_claim: String,
}

/// A login under way: what the callback checks.
pub struct Pending {
    verifier: PkceCodeVerifier,
    nonce: Nonce,
    /// Where to go after it.
    pub back: String,
    started: Instant,
}

/// Who a finished login is.
pub struct LoggedIn {
    /// Issuer, subject, name, auth_time.
    pub login: Login,
    /// The values of the groups claim.
    pub groups: Vec<String>,
}

impl Provider {
    /// Discovers `issuer` and sets the client up; `ca` adds the bank's own
    /// certificate authorities (PEM) to the public roots.
    pub async fn discover(
        issuer: &str,
        (client_id, secret): (&str, &str),
        redirect: &str,
        groups_claim: &str,
        ca: Option<&std::path::Path>,
    ) -> Result<Provider, String> {
        let mut builder = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10));
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).map_err(|e| format!("--oidc-ca {}: {e}", ca.display()))?;
            let certs = openidconnect::reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("--oidc-ca {}: {e}", ca.display()))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| e.to_string())?;
        let url = IssuerUrl::new(issuer.to_owned()).map_err(|e| format!("issuer {issuer}: {e}"))?;
        let meta = CoreProviderMetadata::discover_async(url, &http)
            .await
            .map_err(|e| format!("cannot discover the identity provider {issuer}: {e}"))?;
        let client = OidcClient::from_provider_metadata(
            meta,
            ClientId::new(client_id.to_owned()),
            Some(ClientSecret::new(secret.to_owned())),
        )
        .set_redirect_uri(RedirectUrl::new(redirect.to_owned()).map_err(|e| e.to_string())?);
        Ok(Provider {
            client,
            http,
            issuer: issuer.to_owned(),
            groups_claim: groups_claim.to_owned(),
        })
    }

    /// The provider's login URL, and the state token and what the callback
    /// needs. `fresh`: the user must authenticate again now (`prompt=login`,
    /// `max_age=0`), as before signing.
    pub fn start(&self, back: String, fresh: bool) -> (String, String, Pending) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = self
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge);
        if fresh {
            req = req
                .add_prompt(CoreAuthPrompt::Login)
                .set_max_age(Duration::from_secs(0));
        }
        let (url, state, nonce) = req.url();
        let pending = Pending {
            verifier,
            nonce,
            back,
            started: Instant::now(),
        };
        (url.to_string(), state.secret().clone(), pending)
    }

    /// Exchanges the code and checks the ID token (signature, issuer,
    /// audience, expiry, nonce).
    pub async fn finish(&self, code: String, pending: Pending) -> Result<LoggedIn, String> {
        if pending.started.elapsed() > Duration::from_secs(600) {
            return Err("the login took more than 10 minutes; start again".into());
        }
        let token = self
            .client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| e.to_string())?
            .set_pkce_verifier(pending.verifier)
            .request_async(&self.http)
            .await
            .map_err(|e| format!("the identity provider refused the code: {e}"))?;
        let id_token = token
            .id_token()
            .ok_or("the identity provider sent no ID token")?;
        let claims = id_token
            .claims(&self.client.id_token_verifier(), &pending.nonce)
            .map_err(|e| format!("the ID token does not check: {e}"))?;
        let auth_time = claims
            .auth_time()
            .ok_or("the ID token has no auth_time: configure the client to require it")?;
        let name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string())
            .unwrap_or_else(|| claims.subject().to_string());
        let groups = match claims.additional_claims().0.get(&self.groups_claim) {
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
        Ok(LoggedIn {
            login: Login {
                workspace: String::new(),
                issuer: self.issuer.clone(),
                subject: claims.subject().to_string(),
                name,
                auth_time: letterpress::util::clock::rfc3339_utc(auth_time.timestamp()),
            },
            groups,
        })
    }
}

/// A logged-in browser.
pub struct Session {
    /// Who.
    pub user: LoggedIn,
    /// The token every form carries.
    pub csrf: String,
    last: Instant,
}

/// Sessions and logins under way, in memory (a restart logs everyone out).
#[derive(Default)]
pub struct Sessions {
    sessions: HashMap<String, Session>,
    pending: HashMap<String, Pending>,
}

impl Sessions {
    /// Starts a session; returns its id.
    pub fn open(&mut self, user: LoggedIn) -> String {
        let id = token();
        self.sessions.insert(
            id.clone(),
            Session {
                user,
                csrf: token(),
                last: Instant::now(),
            },
        );
        id
    }

    /// The session `id`, if it has not been idle longer than `idle`
    /// (and it is touched).
    pub fn get(&mut self, id: &str, idle: Duration) -> Option<&Session> {
        let now = Instant::now();
        self.sessions
            .retain(|_, s| now.duration_since(s.last) <= idle);
        self.pending
            .retain(|_, p| now.duration_since(p.started) <= Duration::from_secs(600));
        let s = self.sessions.get_mut(id)?;
        s.last = now;
        Some(s)
    }

    /// Ends session `id`.
    pub fn close(&mut self, id: &str) {
        self.sessions.remove(id);
    }

    /// Keeps a login under way by its state token.
    pub fn expect(&mut self, state: String, pending: Pending) {
        self.pending.insert(state, pending);
    }

    /// Takes the login under way with this state token (once).
    pub fn take(&mut self, state: &str) -> Option<Pending> {
        self.pending.remove(state)
    }
}

/// 32 random bytes, hex: session ids, CSRF tokens.
pub fn token() -> String {
    letterpress::util::digest::random_hex()
}

/// Compares two secrets without stopping at the first difference.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
