use execstore::auth::{sign, Claims, Role};
use execstore::config::Config;
use serde_json::{json, Value};

use crate::api_support::Api;
use crate::harness::Backend;

const SECRET: &str = "test-secret-0123456789";

pub(crate) fn token(sub: &str, role: Role, ttl_secs: i64) -> String {
    let exp = (chrono::Utc::now().timestamp() + ttl_secs) as u64;
    sign(
        SECRET,
        &Claims {
            sub: sub.into(),
            role,
            exp,
        },
    )
}

pub(crate) async fn secured(backend: Backend) -> Api {
    let mut config = Config::defaults();
    config.jwt_secret = Some(SECRET.into());
    Api::with_config(backend, config).await
}

async fn bad_tokens_are_unauthenticated(backend: Backend) {
    let mut api = secured(backend).await;
    let query = json!({ "query": "{ execution(id: \"x\") { id } }" });
    let forged = sign(
        "another-secret",
        &Claims {
            sub: "alice".into(),
            role: Role::Admin,
            exp: u64::MAX / 2,
        },
    );
    let wrong_role = {
        use jsonwebtoken::{encode, EncodingKey, Header};
        let claims =
            json!({ "sub": "alice", "role": "root", "exp": chrono::Utc::now().timestamp() + 60 });
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    };
    for (label, t) in [
        ("missing", None),
        ("garbage", Some("not.a.jwt".to_owned())),
        ("forged", Some(forged)),
        ("expired", Some(token("alice", Role::Admin, -120))),
        ("unknown role", Some(wrong_role)),
    ] {
        api.token = t;
        api.reset_statements();
        let (status, body) = api.post_json(&query).await;
        assert_eq!(status, 401, "{label}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
            "{label}: {body}"
        );
        assert_eq!(
            api.reset_statements(),
            0,
            "{label}: rejected before the database"
        );
    }
    api.token = Some(token("alice", Role::User, 60));
    let (status, body) = api.post_json(&query).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["execution"], Value::Null);
}

async fn users_see_only_their_own(backend: Backend) {
    let mut api = secured(backend).await;
    let alice = token("alice", Role::User, 600);
    let bob = token("bob", Role::User, 600);
    let worker = token("w", Role::Worker, 600);
    let create = "mutation($id: ID!, $owner: ID!, $parent: ID) { createExecution(input: { id: $id, flowId: \"f\", ownerId: $owner, parentExecutionId: $parent }) { id } }";

    api.token = Some(alice.clone());
    api.ok(create, json!({ "id": "a", "owner": "alice" })).await;
    api.ok(
        create,
        json!({ "id": "a1", "owner": "alice", "parent": "a" }),
    )
    .await;
    assert_eq!(
        api.error_code(create, json!({ "id": "x", "owner": "bob" }))
            .await,
        "FORBIDDEN"
    );
    api.token = Some(bob.clone());
    api.ok(create, json!({ "id": "b", "owner": "bob" })).await;
    assert_eq!(
        api.error_code(create, json!({ "id": "b1", "owner": "bob", "parent": "a" }))
            .await,
        "BAD_USER_INPUT",
        "alice's execution does not exist for bob"
    );
    // An admin hangs one of bob's executions under alice's tree.
    api.token = Some(token("root", Role::Admin, 600));
    api.ok(
        create,
        json!({ "id": "a-bob", "owner": "bob", "parent": "a" }),
    )
    .await;
    api.ok("mutation { claimExecution(executionId: \"a1\", workerId: \"w\", timeoutMs: 60000) { acquired } }", json!({})).await;

    api.token = Some(alice.clone());
    let data = api
        .ok(
            "{ mine: execution(id: \"a\") { id childCount children { id parent { id } root { id } claim { workerId } } }
               theirs: execution(id: \"b\") { id }
               roots: rootExecutions(flowId: \"f\") { nodes { execution { id } totalNested } }
               feed: childFeed(rootExecutionId: \"a\") { nodes { id } }
               direct: directChildFeed(parentExecutionId: \"a\") { nodes { id } }
               tree: executionTree(executionId: \"a\") { id }
               foreignTree: executionTree(executionId: \"b\") { id }
               stats: executionStats(rootExecutionId: \"a\") { total }
               claims: activeClaims { executionId }
               recovery: executionsNeedingRecovery { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["mine"]["childCount"], 1,
        "bob's child is not counted for alice"
    );
    assert_eq!(
        data["mine"]["children"],
        json!([{ "id": "a1", "parent": { "id": "a" }, "root": { "id": "a" }, "claim": { "workerId": "w" } }])
    );
    assert_eq!(data["theirs"], Value::Null);
    assert_eq!(
        data["roots"]["nodes"],
        json!([{ "execution": { "id": "a" }, "totalNested": 1 }])
    );
    assert_eq!(data["feed"]["nodes"], json!([{ "id": "a1" }]));
    assert_eq!(data["direct"]["nodes"], json!([{ "id": "a1" }]));
    assert_eq!(data["tree"], json!([{ "id": "a" }, { "id": "a1" }]));
    assert_eq!(data["foreignTree"], json!([]));
    assert_eq!(data["stats"]["total"], 1);
    assert_eq!(data["claims"], json!([{ "executionId": "a1" }]));
    assert_eq!(data["recovery"], json!([{ "id": "a" }]));

    // Writes to another owner's execution: it looks absent.
    assert_eq!(
        api.error_code("mutation { updateExecutionStatus(input: { executionId: \"b\", status: RUNNING }) { id } }", json!({})).await,
        "NOT_FOUND"
    );
    assert_eq!(
        api.ok("mutation { deleteExecution(id: \"b\") }", json!({}))
            .await["deleteExecution"],
        false
    );
    assert_eq!(
        api.error_code("mutation { createExecution(input: { id: \"b\", flowId: \"f\", ownerId: \"alice\" }) { id } }", json!({})).await,
        "CONFLICT"
    );
    // Worker-only mutations.
    for m in [
        "mutation { claimExecution(executionId: \"a\", workerId: \"me\", timeoutMs: 1000) { acquired } }",
        "mutation { claimNextExecutions(workerId: \"me\", timeoutMs: 1000) { id } }",
        "mutation { extendClaim(executionId: \"a1\", workerId: \"w\", timeoutMs: 1000) }",
        "mutation { releaseExecution(executionId: \"a1\", workerId: \"w\") }",
        "mutation { expireOldClaims }",
        "mutation { updateFailureInfo(executionId: \"a\", failureCount: 1, reason: \"x\") }",
        "mutation { recordRecovery(input: { executionId: \"a\", workerId: \"me\", reason: \"x\" }) { id } }",
        "mutation { tryAcquireRecoveryLock(lockId: 1, holderId: \"me\", ttlMs: 1000) }",
        "mutation { releaseRecoveryLock(lockId: 1, holderId: \"me\") }",
    ] {
        assert_eq!(api.error_code(m, json!({})).await, "FORBIDDEN", "{m}");
    }
    let claim = api
        .store
        .reads()
        .get_claim_for_execution("a1", &execstore::store::Scope::All)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        claim.status,
        execstore::store::ClaimStatus::Active,
        "the forbidden release changed nothing"
    );

    // bob sees his child of alice's tree, but not its parent.
    api.token = Some(bob);
    let data = api
        .ok(
            "{ execution(id: \"a-bob\") { id parent { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["execution"], json!({ "id": "a-bob", "parent": null }));

    // A worker sees and does everything.
    api.token = Some(worker);
    let data = api
        .ok(
            "{ execution(id: \"a\") { childCount } b: execution(id: \"b\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(data["execution"]["childCount"], 2);
    assert_eq!(data["b"]["id"], "b");
    api.ok(
        "mutation { releaseExecution(executionId: \"a1\", workerId: \"w\") }",
        json!({}),
    )
    .await;
}

/// Tokens as an identity provider signs them: RS256 and ES256, verified
/// with public keys from a PEM file or a JWKS file, `iss` and `aud` checked
/// when configured. Keys are generated here; nothing is checked in.
async fn identity_provider_tokens(backend: Backend) {
    use base64::Engine;
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    use rsa::traits::PublicKeyParts;

    let rsa_key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let rsa_private = rsa_key.to_pkcs8_pem(LineEnding::LF).unwrap();
    let rsa_public = rsa_key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let ec_key = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let ec_private = ec_key.to_pkcs8_pem(LineEnding::LF).unwrap();
    let ec_public = ec_key
        .public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let other_ec = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng)
        .to_pkcs8_pem(LineEnding::LF)
        .unwrap();

    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let mut ec_jwk: Value = serde_json::from_str(&ec_key.public_key().to_jwk_string()).unwrap();
    ec_jwk["kid"] = json!("ec-1");
    let jwks = json!({ "keys": [
        { "kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig",
          "n": b64(&rsa_key.n().to_bytes_be()), "e": b64(&rsa_key.e().to_bytes_be()) },
        ec_jwk,
    ]});

    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let rsa_pem_file = write("rsa.pem", &rsa_public);
    let ec_pem_file = write("ec.pem", &ec_public);
    let jwks_file = write("jwks.json", &jwks.to_string());

    let claims = |iss: &str, aud: &str| {
        json!({ "sub": "alice", "role": "admin", "iss": iss, "aud": aud,
                "exp": chrono::Utc::now().timestamp() + 60 })
    };
    let sign_with = |alg: Algorithm, kid: Option<&str>, pem: &str, claims: &Value| {
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
            _ => EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
        };
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        encode(&header, claims, &key).unwrap()
    };
    let good = claims("https://idp.example", "execstore");
    let rs = sign_with(Algorithm::RS256, Some("rsa-1"), &rsa_private, &good);
    let es = sign_with(Algorithm::ES256, Some("ec-1"), &ec_private, &good);
    let es_other_key = sign_with(Algorithm::ES256, Some("ec-1"), &other_ec, &good);
    let wrong_iss = sign_with(
        Algorithm::RS256,
        Some("rsa-1"),
        &rsa_private,
        &claims("https://evil.example", "execstore"),
    );
    let wrong_aud = sign_with(
        Algorithm::ES256,
        Some("ec-1"),
        &ec_private,
        &claims("https://idp.example", "someone-else"),
    );
    let hs = encode(
        &Header::new(Algorithm::HS256),
        &good,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let hs_without_iss = token("alice", Role::Admin, 60);

    let query = json!({ "query": "{ execution(id: \"x\") { id } }" });
    // Each configuration, then (token, accepted?).
    let pem_config = |file: &std::path::Path| {
        let mut config = Config::defaults();
        config.jwt_public_key_file = Some(file.to_owned());
        config.jwt_issuer = Some("https://idp.example".into());
        config.jwt_audience = Some("execstore".into());
        config
    };
    let mut jwks_config = Config::defaults();
    jwks_config.jwt_jwks_file = Some(jwks_file.clone());
    jwks_config.jwt_issuer = Some("https://idp.example".into());
    jwks_config.jwt_audience = Some("execstore".into());
    jwks_config.jwt_secret = Some(SECRET.into());
    let mut no_checks = Config::defaults();
    no_checks.jwt_jwks_file = Some(jwks_file.clone());
    type Tokens<'a> = Vec<(&'a str, &'a String, bool)>;
    let cases: Vec<(&str, Config, Tokens)> = vec![
        (
            "RSA PEM",
            pem_config(&rsa_pem_file),
            vec![
                ("rs256", &rs, true),
                ("es256 with no EC key", &es, false),
                ("wrong issuer", &wrong_iss, false),
                ("hs256 with no secret", &hs, false),
            ],
        ),
        (
            "EC PEM",
            pem_config(&ec_pem_file),
            vec![
                ("es256", &es, true),
                ("es256 by another key", &es_other_key, false),
                ("wrong audience", &wrong_aud, false),
                ("rs256 with no RSA key", &rs, false),
            ],
        ),
        (
            "JWKS + secret",
            jwks_config,
            vec![
                ("rs256", &rs, true),
                ("es256", &es, true),
                ("hs256", &hs, true),
                ("hs256 without iss/aud", &hs_without_iss, false),
                ("es256 by another key", &es_other_key, false),
                ("wrong issuer", &wrong_iss, false),
                ("wrong audience", &wrong_aud, false),
            ],
        ),
        (
            "JWKS, no iss/aud configured",
            no_checks,
            vec![
                ("wrong issuer", &wrong_iss, true),
                ("wrong audience", &wrong_aud, true),
            ],
        ),
    ];
    for (label, config, tokens) in cases {
        let mut api = Api::with_config(backend, config).await;
        for (what, t, accepted) in tokens {
            api.token = Some(t.to_string());
            let (status, body) = api.post_json(&query).await;
            if accepted {
                assert_eq!(status, 200, "{label}: {what}: {body}");
                assert!(body.get("errors").is_none(), "{label}: {what}: {body}");
            } else {
                assert_eq!(status, 401, "{label}: {what}: {body}");
                assert_eq!(
                    body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
                    "{label}: {what}"
                );
            }
        }
    }

    // A key file that is not a key stops the start with a reason.
    let mut broken = Config::defaults();
    broken.jwt_public_key_file = Some(write("broken.pem", "not a key"));
    assert!(broken.authenticator().is_err());
    broken.jwt_public_key_file = Some(dir.path().join("missing.pem"));
    let err = broken
        .authenticator()
        .err()
        .expect("a missing file is an error");
    assert!(err.contains("cannot read"), "{err}");
}

/// `/metrics` names every owner's flows in its labels: on the API's address,
/// with tokens configured, only an admin token reads it.
async fn metrics_need_an_admin_token(backend: Backend) {
    use axum::body::Body;
    use axum::http::Request;
    let mut api = secured(backend).await;
    api.token = Some(token("ops", Role::Admin, 60));
    crate::api_support::create(&api, "payroll-acme-corp", None).await;
    let scrape = |token: Option<String>| {
        let mut request = Request::get("/metrics");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        api.raw(request.body(Body::empty()).unwrap())
    };
    let (status, body) = scrape(None).await;
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains("flow_id"), "{body}");
    assert!(body.contains("UNAUTHENTICATED"), "{body}");
    let (status, _) = scrape(Some("garbage".into())).await;
    assert_eq!(status, 401);
    for role in [Role::User, Role::Worker] {
        let (status, body) = scrape(Some(token("alice", role, 60))).await;
        assert_eq!(status, 403, "{role:?}: {body}");
        assert!(body.contains("FORBIDDEN"), "{body}");
        assert!(!body.contains("flow_id"), "{body}");
    }
    let (status, body) = scrape(Some(token("ops", Role::Admin, 60))).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("execstore_queue_claimable"), "{body}");
}

crate::both_backends!(
    metrics_need_an_admin_token,
    bad_tokens_are_unauthenticated,
    users_see_only_their_own,
    identity_provider_tokens
);
