//! HTTPS without a proxy: a relying party signs a person in over TLS with a self-signed
//! certificate it trusts, and SIGHUP swaps the certificate without a restart.

use crate::common::*;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, RedirectUrl, TokenResponse};
use openssl::asn1::Asn1Time;
use openssl::pkey::PKey;
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509, X509NameBuilder};
use reqwest::StatusCode;
use std::path::Path;
use std::time::Duration;

/// A self-signed certificate for `localhost` named `cn`, valid for two days from now; (certificate PEM, key PEM).
fn certificate(cn: &str) -> (Vec<u8>, Vec<u8>) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    certificate_between(cn, now, now + 2 * 86_400)
}

/// The same, valid from `from` to `to` (Unix seconds).
fn certificate_between(cn: &str, from: i64, to: i64) -> (Vec<u8>, Vec<u8>) {
    let key =
        PKey::from_ec_key(openssl::ec::EcKey::generate(&openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap()).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_serial_number(&openssl::bn::BigNum::from_u32(rand_serial()).unwrap().to_asn1_integer().unwrap()).unwrap();
    b.set_not_before(&Asn1Time::from_unix(from).unwrap()).unwrap();
    b.set_not_after(&Asn1Time::from_unix(to).unwrap()).unwrap();
    let san = SubjectAlternativeName::new().dns("localhost").build(&b.x509v3_context(None, None)).unwrap();
    b.append_extension(san).unwrap();
    b.sign(&key, openssl::hash::MessageDigest::sha256()).unwrap();
    (b.build().to_pem().unwrap(), key.private_key_to_pem_pkcs8().unwrap())
}

fn rand_serial() -> u32 {
    let mut b = [0u8; 4];
    openssl::rand::rand_bytes(&mut b).unwrap();
    u32::from_be_bytes(b) >> 1
}

fn write(dir: &Path, (cert, key): &(Vec<u8>, Vec<u8>)) {
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
}

/// A client that trusts `cert` only, keeps cookies, and does not follow redirects.
fn https_client(cert: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert).unwrap())
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The common name of the certificate the server at `port` presents now.
fn presented_cn(port: u16) -> String {
    let mut connector = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls()).unwrap();
    connector.set_verify(openssl::ssl::SslVerifyMode::NONE);
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let tls = connector.build().connect("localhost", stream).unwrap();
    let cert = tls.ssl().peer_certificate().unwrap();
    cert.subject_name().entries_by_nid(openssl::nid::Nid::COMMONNAME).next().unwrap().data().to_string().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relying_party_signs_in_over_https_and_sighup_serves_a_renewed_certificate() {
    let files = tempfile::tempdir().unwrap();
    let first = certificate("first");
    write(files.path(), &first);
    let (cert, key) = (files.path().join("cert.pem"), files.path().join("key.pem"));
    let server = TestServer::spawn_with(|c| {
        c.server.issuer = c.server.issuer.replace("http://127.0.0.1", "https://localhost");
        c.server.tls_cert = cert.clone();
        c.server.tls_key = key.clone();
    });
    server.add_user("alice");
    let (client_id, secret) = server.add_client("Wiki", &["authorization_code"], false);
    let issuer = format!("https://localhost:{}", server.port);
    let http = https_client(&first.0);

    // Discovery, JWKS and the code flow, as a relying party does, over TLS.
    let meta = CoreProviderMetadata::discover_async(IssuerUrl::new(issuer.clone()).unwrap(), &http).await.unwrap();
    let rp = CoreClient::from_provider_metadata(meta, ClientId::new(client_id.clone()), secret.map(ClientSecret::new))
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) =
        rp.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random).set_pkce_challenge(challenge).url();
    let res = http.get(url.as_str()).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let page = http.get(format!("{issuer}{}", location(&res))).send().await.unwrap();
    // Secure, __Host- cookies on an https issuer.
    let cookies: Vec<String> = page.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    assert!(cookies.iter().all(|c| c.starts_with("__Host-") && c.contains("Secure")), "{cookies:?}");
    let page = page.text().await.unwrap();
    let form = [("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("username", "alice".into()), ("password", PASSWORD.into())];
    let res = http.post(format!("{issuer}/login")).form(&form).send().await.unwrap();
    let back = location(&res);
    assert!(back.starts_with(REDIRECT), "{back}");
    let tokens =
        rp.exchange_code(AuthorizationCode::new(query_param(&back, "code").unwrap())).unwrap().set_pkce_verifier(verifier).request_async(&http).await.unwrap();
    tokens.id_token().unwrap().claims(&rp.id_token_verifier(), &nonce).expect("the ID token verifies");

    // A renewed certificate: written over the files, then SIGHUP.
    assert_eq!(presented_cn(server.port), "first");
    let second = certificate("second");
    write(files.path(), &second);
    assert_eq!(presented_cn(server.port), "first", "nothing changes before the signal");
    let pid = std::process::id().to_string();
    assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let mut cn = String::new();
    for _ in 0..100 {
        cn = presented_cn(server.port);
        if cn == "second" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(cn, "second");
    let res = https_client(&second.0).get(format!("{issuer}/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // A broken renewal (a key that does not fit) keeps the working certificate.
    std::fs::write(files.path().join("key.pem"), first.1.clone()).unwrap();
    assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(presented_cn(server.port), "second");
    // So does a renewal that copied an expired certificate in (with its own, fitting key).
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    write(files.path(), &certificate_between("expired", now - 30 * 86_400, now - 60));
    assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(presented_cn(server.port), "second");
    server.stop().await;
}
