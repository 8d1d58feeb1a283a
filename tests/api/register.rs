//! POST /register and its alias POST /users.

use serde_json::{json, Value};

use crate::helpers::*;

backend_tests!(
    register_returns_201_with_the_user_and_no_cookie,
    users_alias_registers_too,
    register_does_not_log_in,
    registered_users_get_distinct_ids,
    duplicate_username_is_409,
    duplicate_username_in_different_case_is_409,
    registered_spelling_is_kept,
    missing_username_is_422_naming_username,
    missing_password_is_422_naming_password,
    empty_object_is_422,
    short_username_is_422,
    long_username_is_422,
    username_length_bounds_are_inclusive,
    username_with_forbidden_characters_is_422,
    username_allows_letters_digits_underscore_dot_dash_at,
    non_string_username_is_422,
    non_string_password_is_422,
    short_password_is_422,
    long_password_is_422,
    password_length_bounds_are_inclusive,
    password_length_counts_unicode_characters_not_bytes,
    concurrent_registrations_of_one_name_give_one_201_and_409s,
);

#[track_caller]
fn assert_422_naming(answer: &Answer, field: &str) {
    let body = answer.problem(422);
    assert_eq!(body["field"], json!(field), "422 must name {field}: {body}");
}

async fn register_returns_201_with_the_user_and_no_cookie(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = app.register("alice", PASSWORD).await.expect(201);
    assert_user_json(&answer.json(), "alice");
    assert!(
        answer.set_cookies().is_empty(),
        "register must not set a cookie: {:?}",
        answer.headers
    );
    let content_type = answer.header("content-type").unwrap_or("");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
}

async fn users_alias_registers_too(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = app
        .post_json("/users", &credentials("bob", PASSWORD))
        .await
        .expect(201);
    assert_user_json(&answer.json(), "bob");
    assert!(answer.set_cookies().is_empty());
    // The alias created a real account.
    app.login("bob", PASSWORD).await.expect(200);
    // And the alias shares the uniqueness rule.
    app.register("bob", PASSWORD).await.problem(409);
}

async fn register_does_not_log_in(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    let answer = app.me().await.problem(401);
    assert_eq!(answer["detail"], json!(NOT_AUTHENTICATED));
    assert!(
        app.sessions().is_empty(),
        "register must not create a session"
    );
}

async fn registered_users_get_distinct_ids(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register_ok("alice", PASSWORD).await;
    let bob = app.register_ok("bob", PASSWORD).await;
    assert_ne!(alice["id"], bob["id"]);
}

async fn duplicate_username_is_409(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    let body = app.register("alice", "another password").await.problem(409);
    assert_eq!(body["detail"], json!("Username already taken."));
    assert_eq!(app.users().len(), 1);
}

async fn duplicate_username_in_different_case_is_409(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("Alice", PASSWORD).await;
    let body = app.register("alice", PASSWORD).await.problem(409);
    assert_eq!(body["detail"], json!("Username already taken."));
    let body = app.register("ALICE", PASSWORD).await.problem(409);
    assert_eq!(body["detail"], json!("Username already taken."));
    // Also through the alias.
    app.post_json("/users", &credentials("aLiCe", PASSWORD))
        .await
        .problem(409);
    assert_eq!(app.users().len(), 1);
}

async fn registered_spelling_is_kept(backend: Backend) {
    let app = spawn_app(backend).await;
    let registered = app.register_ok("Alice.Smith", PASSWORD).await;
    assert_eq!(registered["username"], json!("Alice.Smith"));
    let login = app.login("alice.smith", PASSWORD).await.expect(200).json();
    assert_eq!(login["username"], json!("Alice.Smith"));
    assert_eq!(login["id"], registered["id"]);
    let me = app.me().await.expect(200).json();
    assert_eq!(me["username"], json!("Alice.Smith"));
}

async fn missing_username_is_422_naming_username(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = app
        .post_json("/register", &json!({ "password": PASSWORD }))
        .await;
    assert_422_naming(&answer, "username");
    assert!(app.users().is_empty());
}

async fn missing_password_is_422_naming_password(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = app
        .post_json("/register", &json!({ "username": "alice" }))
        .await;
    assert_422_naming(&answer, "password");
    assert!(app.users().is_empty());
}

async fn empty_object_is_422(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = app.post_json("/register", &json!({})).await.problem(422);
    let field = body["field"].as_str().unwrap_or_default();
    assert!(
        field == "username" || field == "password",
        "422 must name a field: {body}"
    );
}

async fn short_username_is_422(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_422_naming(&app.register("ab", PASSWORD).await, "username");
    assert_422_naming(&app.register("", PASSWORD).await, "username");
    assert!(app.users().is_empty());
}

async fn long_username_is_422(backend: Backend) {
    let app = spawn_app(backend).await;
    let long = "a".repeat(65);
    assert_422_naming(&app.register(&long, PASSWORD).await, "username");
    assert!(app.users().is_empty());
}

async fn username_length_bounds_are_inclusive(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("abc", PASSWORD).await;
    let longest = "b".repeat(64);
    let user = app.register_ok(&longest, PASSWORD).await;
    assert_user_json(&user, &longest);
}

async fn username_with_forbidden_characters_is_422(backend: Backend) {
    let app = spawn_app(backend).await;
    for bad in [
        "al ice",
        "alice!",
        "ålice",
        "alice/bob",
        "alice:bob",
        "al'ice",
        "alice\u{0}",
        " alice",
        "алиса",
        "alice+tag",
    ] {
        let answer = app.register(bad, PASSWORD).await;
        assert_eq!(answer.status.as_u16(), 422, "username {bad:?}: {answer:?}");
        assert_422_naming(&answer, "username");
    }
    assert!(app.users().is_empty());
}

async fn username_allows_letters_digits_underscore_dot_dash_at(backend: Backend) {
    let app = spawn_app(backend).await;
    for good in ["Al_ice.B-0b@example.com", "___", "0.9", "-@-"] {
        let user = app.register_ok(good, PASSWORD).await;
        assert_user_json(&user, good);
    }
}

async fn non_string_username_is_422(backend: Backend) {
    let app = spawn_app(backend).await;
    let values: [Value; 5] = [
        json!(12345),
        json!(null),
        json!(["alice"]),
        json!(true),
        json!({ "name": "alice" }),
    ];
    for value in values {
        let answer = app
            .post_json(
                "/register",
                &json!({ "username": value, "password": PASSWORD }),
            )
            .await;
        assert_eq!(answer.status.as_u16(), 422, "username {value}: {answer:?}");
        assert_422_naming(&answer, "username");
    }
    assert!(app.users().is_empty());
}

async fn non_string_password_is_422(backend: Backend) {
    let app = spawn_app(backend).await;
    let values: [Value; 4] = [
        json!(12345678),
        json!(null),
        json!(["password1"]),
        json!(false),
    ];
    for value in values {
        let answer = app
            .post_json(
                "/register",
                &json!({ "username": "alice", "password": value }),
            )
            .await;
        assert_eq!(answer.status.as_u16(), 422, "password {value}: {answer:?}");
        assert_422_naming(&answer, "password");
    }
    assert!(app.users().is_empty());
}

async fn short_password_is_422(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_422_naming(&app.register("alice", "1234567").await, "password");
    assert_422_naming(&app.register("alice", "").await, "password");
    assert!(app.users().is_empty());
}

async fn long_password_is_422(backend: Backend) {
    let app = spawn_app(backend).await;
    let long = "p".repeat(257);
    assert_422_naming(&app.register("alice", &long).await, "password");
    assert!(app.users().is_empty());
}

async fn password_length_bounds_are_inclusive(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", "12345678").await;
    app.login("alice", "12345678").await.expect(200);
    let longest = "p".repeat(256);
    app.register_ok("bob", &longest).await;
    app.login("bob", &longest).await.expect(200);
}

async fn password_length_counts_unicode_characters_not_bytes(backend: Backend) {
    let app = spawn_app(backend).await;
    // 7 characters but 14 bytes: too short.
    assert_422_naming(&app.register("alice", &"é".repeat(7)).await, "password");
    // 8 characters (16 bytes): fine.
    app.register_ok("alice", &"é".repeat(8)).await;
    app.login("alice", &"é".repeat(8)).await.expect(200);
    // 256 characters (512 bytes): fine.
    app.register_ok("bob", &"é".repeat(256)).await;
    // 257 characters: too long.
    assert_422_naming(&app.register("carol", &"é".repeat(257)).await, "password");
    // 4-byte characters count once too.
    app.register_ok("dave", &"🦀".repeat(8)).await;
    assert_422_naming(&app.register("erin", &"🦀".repeat(7)).await, "password");
}

async fn concurrent_registrations_of_one_name_give_one_201_and_409s(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let client = app.raw.clone();
        let url = app.url(if i % 2 == 0 { "/register" } else { "/users" });
        let name = if i % 3 == 0 { "ALICE" } else { "alice" };
        tasks.spawn(async move {
            let response = client
                .post(url)
                .json(&credentials(name, PASSWORD))
                .send()
                .await
                .expect("register request failed");
            Answer::read(response).await
        });
    }
    let mut created = 0;
    while let Some(answer) = tasks.join_next().await {
        let answer = answer.expect("register task panicked");
        match answer.status.as_u16() {
            201 => created += 1,
            409 => {
                let body = answer.problem(409);
                assert_eq!(body["detail"], json!("Username already taken."));
            }
            other => panic!("concurrent register gave {other}: {}", answer.text),
        }
    }
    assert_eq!(created, 1, "exactly one registration wins");
    assert_eq!(app.users().len(), 1);
}
