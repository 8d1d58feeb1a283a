//! The application under test: a real server on port 0, and its HTTP and database helpers.

use super::*;

pub struct TestApp {
    pub address: String,
    /// A client with a cookie store, like a browser.
    pub client: reqwest::Client,
    /// A client without a cookie store: cookies are sent explicitly.
    pub raw: reqwest::Client,
    pub cookie_name: String,
    /// The configuration the server was given.
    pub vars: HashMap<String, String>,
    /// `http://127.0.0.1:<port>` of the separate `/metrics` listener, when there is one.
    pub metrics_address: Option<String>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    // Dropped after the server task is aborted (field order matters).
    pub db: TestDb,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub fn base_settings(database_url: &str) -> HashMap<String, String> {
    [
        ("DATABASE_URL", database_url),
        ("BIND_ADDR", "127.0.0.1:0"),
        ("WORKERS", "2"),
        ("DB_POOL_SIZE", "4"),
        ("ARGON2_MAX_CONCURRENCY", "2"),
        ("COOKIE_SECURE", "true"),
        // Many servers run at once: each metrics listener on a port of its own.
        ("METRICS_BIND_ADDR", "127.0.0.1:0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

pub fn http_client(cookie_store: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(cookie_store)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("building the HTTP client")
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

pub async fn spawn_app_with(backend: Backend, overrides: &[(&str, &str)]) -> TestApp {
    spawn_app_on(TestDb::create(backend), overrides).await
}

/// A second server on the database of `first` (two instances, one database).
pub async fn spawn_second_app(first: &TestApp, overrides: &[(&str, &str)]) -> TestApp {
    let db = match &first.db {
        TestDb::Postgres { url, .. } | TestDb::SharedPostgres { url } => {
            TestDb::SharedPostgres { url: url.clone() }
        }
        TestDb::Sqlite { path, .. } | TestDb::SharedSqlite { path } => {
            TestDb::SharedSqlite { path: path.clone() }
        }
    };
    spawn_app_on(db, overrides).await
}

/// How soon a session ended anywhere must be refused everywhere (instances keep verified
/// sessions in memory and hear of revocations asynchronously).
pub const PROPAGATION: Duration = Duration::from_millis(100);

/// Asserts that `app` refuses `token` (401) within [`PROPAGATION`] from now, and accepts it (200)
/// until then; returns how long it took.
pub async fn assert_refused_soon(app: &TestApp, token: &str) -> Duration {
    let started = std::time::Instant::now();
    loop {
        let answer = app.me_with(token, &[]).await;
        let waited = started.elapsed();
        match answer.status.as_u16() {
            401 => return waited,
            200 => assert!(
                waited < PROPAGATION,
                "still accepted {waited:?} after it was ended elsewhere"
            ),
            other => panic!("unexpected {other}: {}", answer.text),
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

pub fn settings_from(vars: &HashMap<String, String>) -> tessera::config::Settings {
    tessera::config::Settings::from_lookup(|name: &str| vars.get(name).cloned())
        .unwrap_or_else(|e| panic!("the test settings {vars:?} were refused: {e}"))
}

pub async fn spawn_app_on(db: TestDb, overrides: &[(&str, &str)]) -> TestApp {
    let mut vars = base_settings(&db.app_url());
    for (name, value) in overrides {
        vars.insert((*name).to_owned(), (*value).to_owned());
    }
    let cookie_name = vars
        .get("COOKIE_NAME")
        .cloned()
        .unwrap_or_else(|| DEFAULT_COOKIE.to_owned());
    let settings = settings_from(&vars);
    let app = tessera::startup::Application::build(settings)
        .await
        .unwrap_or_else(|e| panic!("the application did not start: {e}"));
    let port = app.port();
    let metrics_address = app
        .metrics_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: http_client(true),
        raw: http_client(false),
        cookie_name,
        vars,
        metrics_address,
        server,
        db,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn cookie_header(&self, token: &str) -> String {
        format!("{}={}", self.cookie_name, token)
    }

    pub fn db(&self) -> DbConn {
        self.db.connect()
    }

    /// The server's settings, for library entry points such as `tessera::purge::run`.
    pub fn settings(&self) -> tessera::config::Settings {
        settings_from(&self.vars)
    }

    pub fn events(&self) -> Vec<EventRow> {
        self.db().events()
    }

    pub fn failures(&self) -> Vec<FailureRow> {
        self.db().failures()
    }

    /// The session row with this id.
    #[track_caller]
    pub fn session_by_id(&self, id: &str) -> SessionRow {
        let rows = self.sessions();
        rows.iter()
            .find(|row| row.id == id)
            .cloned()
            .unwrap_or_else(|| panic!("no session row {id} among {rows:?}"))
    }

    /// Sets a timestamp column of the session with this token (direct SQL).
    #[track_caller]
    pub fn set_session_time(&self, token: &str, column: &str, value: NaiveDateTime) {
        let sql = format!("UPDATE sessions SET {column} = ? WHERE token_hash = ?");
        let changed = self
            .db()
            .execute(&sql, &[time(value), text(&sha256_hex(token))]);
        assert_eq!(changed, 1, "{sql}: no such session");
    }

    /// Moves the session's `created_at` `seconds` into the past (it stops being fresh).
    #[track_caller]
    pub fn age_session(&self, token: &str, seconds: i64) {
        let created = self.session_for(token).created_at;
        self.set_session_time(
            token,
            "created_at",
            created - chrono::Duration::seconds(seconds),
        );
    }

    /// Any request with the raw client: optional session token, optional JSON body,
    /// extra headers.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self.raw.request(method, self.url(path));
        if let Some(token) = token {
            request = request.header(COOKIE, self.cookie_header(token));
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        Answer::send(with_headers(request, headers)).await
    }

    /// GET /users/me/sessions with the token.
    pub async fn list_sessions(&self, token: &str, headers: &[(&str, &str)]) -> Answer {
        self.call(
            reqwest::Method::GET,
            "/users/me/sessions",
            Some(token),
            None,
            headers,
        )
        .await
    }

    /// DELETE /users/me/sessions/{id} with the token and an optional JSON body.
    pub async fn revoke_session(&self, token: &str, id: &str, body: Option<&Value>) -> Answer {
        let path = format!("/users/me/sessions/{id}");
        self.call(reqwest::Method::DELETE, &path, Some(token), body, &[])
            .await
    }

    /// DELETE /users/me/sessions with the token and an optional JSON body.
    pub async fn revoke_others(&self, token: &str, body: Option<&Value>) -> Answer {
        self.call(
            reqwest::Method::DELETE,
            "/users/me/sessions",
            Some(token),
            body,
            &[],
        )
        .await
    }

    /// POST /logout/all with the token.
    pub async fn logout_all(&self, token: &str) -> Answer {
        self.call(reqwest::Method::POST, "/logout/all", Some(token), None, &[])
            .await
    }

    /// PUT /users/me/password with the token.
    pub async fn change_password(&self, token: &str, current: &str, new: &str) -> Answer {
        let body = json!({ "current_password": current, "new_password": new });
        self.call(
            reqwest::Method::PUT,
            "/users/me/password",
            Some(token),
            Some(&body),
            &[],
        )
        .await
    }

    /// DELETE /users/me with the token and `{"password"}`.
    pub async fn delete_account(&self, token: &str, password: &str) -> Answer {
        let body = json!({ "password": password });
        self.call(
            reqwest::Method::DELETE,
            "/users/me",
            Some(token),
            Some(&body),
            &[],
        )
        .await
    }

    /// GET /users/me/events (with `?query` when given).
    pub async fn list_events(&self, token: &str, query: Option<&str>) -> Answer {
        let path = match query {
            Some(query) => format!("/users/me/events?{query}"),
            None => "/users/me/events".to_owned(),
        };
        self.call(reqwest::Method::GET, &path, Some(token), None, &[])
            .await
    }

    pub fn sessions(&self) -> Vec<SessionRow> {
        self.db().sessions()
    }

    pub fn users(&self) -> Vec<UserRow> {
        self.db().users()
    }

    #[track_caller]
    pub fn session_for(&self, token: &str) -> SessionRow {
        let hash = sha256_hex(token);
        let rows = self.sessions();
        rows.iter()
            .find(|row| row.token_hash == hash)
            .cloned()
            .unwrap_or_else(|| panic!("no session row with the token's hash among {rows:?}"))
    }

    /// POST JSON with the cookie-store client.
    pub async fn post_json(&self, path: &str, body: &Value) -> Answer {
        Answer::send(self.client.post(self.url(path)).json(body)).await
    }

    /// POST a raw body with an explicit Content-Type (None: no Content-Type).
    pub async fn post_raw(&self, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Answer {
        let mut request = self.raw.post(self.url(path)).body(body);
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        Answer::send(request).await
    }

    /// GET /metrics on the separate metrics listener (panics when there is none).
    pub async fn metrics(&self) -> Answer {
        let base = self
            .metrics_address
            .as_ref()
            .expect("this server has no separate metrics listener");
        Answer::send(self.raw.get(format!("{base}/metrics"))).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        Answer::send(self.client.get(self.url(path))).await
    }

    pub async fn register(&self, username: &str, password: &str) -> Answer {
        self.post_json("/register", &credentials(username, password))
            .await
    }

    /// Registers and returns the user JSON (asserting 201).
    pub async fn register_ok(&self, username: &str, password: &str) -> Value {
        self.register(username, password).await.expect(201).json()
    }

    /// Logs in with the cookie-store client.
    pub async fn login(&self, username: &str, password: &str) -> Answer {
        self.post_json("/login", &credentials(username, password))
            .await
    }

    /// Logs in with the raw client and extra headers (User-Agent, Cookie, ...).
    pub async fn login_raw(
        &self,
        username: &str,
        password: &str,
        headers: &[(&str, &str)],
    ) -> Answer {
        let request = self
            .raw
            .post(self.url("/login"))
            .json(&credentials(username, password));
        Answer::send(with_headers(request, headers)).await
    }

    /// Logs in with the raw client and returns the session token.
    pub async fn login_token(&self, username: &str, password: &str) -> String {
        self.login_token_with(username, password, &[]).await
    }

    pub async fn login_token_with(
        &self,
        username: &str,
        password: &str,
        headers: &[(&str, &str)],
    ) -> String {
        let answer = self
            .login_raw(username, password, headers)
            .await
            .expect(200);
        let cookie = answer.cookie(&self.cookie_name);
        assert!(
            !cookie.value().is_empty(),
            "login cookie is empty: {cookie}"
        );
        cookie.value().to_owned()
    }

    /// Registers `username` with PASSWORD and logs in; returns the token.
    pub async fn user_session(&self, username: &str) -> String {
        self.register_ok(username, PASSWORD).await;
        self.login_token(username, PASSWORD).await
    }

    /// GET /users/me with the cookie-store client.
    pub async fn me(&self) -> Answer {
        self.get("/users/me").await
    }

    /// GET /users/me with the raw client, the token sent explicitly.
    pub async fn me_with(&self, token: &str, headers: &[(&str, &str)]) -> Answer {
        let request = self
            .raw
            .get(self.url("/users/me"))
            .header(COOKIE, self.cookie_header(token));
        Answer::send(with_headers(request, headers)).await
    }

    /// POST /logout (no body) with the cookie-store client.
    pub async fn logout(&self) -> Answer {
        Answer::send(self.client.post(self.url("/logout"))).await
    }

    /// POST /logout with the raw client, the token sent explicitly.
    pub async fn logout_with(&self, token: &str) -> Answer {
        Answer::send(
            self.raw
                .post(self.url("/logout"))
                .header(COOKIE, self.cookie_header(token)),
        )
        .await
    }

    /// A request with the raw client and arbitrary headers.
    pub async fn send_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Answer {
        let request = self.raw.request(method, self.url(path));
        Answer::send(with_headers(request, headers)).await
    }
}
