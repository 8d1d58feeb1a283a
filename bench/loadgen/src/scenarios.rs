//! What the workers do: set-up (register and log in users), the `mixed`, `me` and `login` loads,
//! and `verify`.
//!
//! In `mixed` each user belongs to exactly one worker, and a worker sends one request at a time,
//! so the worker knows which of its users' sessions are alive and which it ended. It checks every
//! answer against that knowledge (a live session refused, an ended one accepted, a revocation that
//! ended fewer sessions than it knows of: "unexpected"). When the outcome of a state-changing
//! request is unknown (5xx, timeout, transport error) it forgets the sessions concerned instead
//! of guessing; a user whose password may or may not have changed is replaced by a new one.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::http::{Conn, Outcome};
use crate::stats::Stats;

/// Settings every worker reads.
pub struct Ctx {
    pub url: String,
    pub timeout: Duration,
    pub user_agent: String,
    pub password: String,
    pub prefix: String,
    /// A session older than this sends the password when it ends other sessions.
    pub fresh: Duration,
    /// Most live sessions `mixed` keeps per user; a login beyond it becomes a logout.
    pub max_sessions: usize,
    pub weights: Weights,
    pub sink: CookieSink,
    pub seed: u64,
    pub timeline: bool,
    /// When the measured run started (after set-up); the timeline counts from here.
    pub start: Instant,
}

impl Ctx {
    fn conn(&self) -> Result<Conn, String> {
        Conn::new(&self.url, self.timeout, &self.user_agent)
    }

    fn stats(&self) -> Stats {
        Stats::new(self.start, self.timeline)
    }
}

/// xorshift64*: enough randomness to pick operations, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // splitmix64 of the seed, never 0
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self((z ^ (z >> 31)) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

// ---------------------------------------------------------------------------------------------
// Cookies of successful logins

/// The (username, cookie) pairs that got a 200 from `/login`: written to a file as they come
/// (one `username<TAB>cookie` line each, flushed at once, so the file is complete even when the
/// run is cut short), or kept for the summary.
pub struct CookieSink {
    file: Option<(PathBuf, Mutex<BufWriter<File>>)>,
    kept: Mutex<Vec<(String, String)>>,
    count: AtomicU64,
}

impl CookieSink {
    pub fn new(path: Option<&Path>) -> Result<Self, String> {
        let file = match path {
            Some(p) => {
                let f =
                    File::create(p).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
                Some((p.to_owned(), Mutex::new(BufWriter::new(f))))
            }
            None => None,
        };
        Ok(Self {
            file,
            kept: Mutex::new(Vec::new()),
            count: AtomicU64::new(0),
        })
    }

    pub fn add(&self, username: &str, cookie: &str) {
        self.count.fetch_add(1, Ordering::Relaxed);
        match &self.file {
            Some((path, w)) => {
                let mut w = w.lock().expect("cookie file lock");
                if let Err(e) = writeln!(w, "{username}\t{cookie}").and_then(|()| w.flush()) {
                    eprintln!("loadgen: cannot write {}: {e}", path.display());
                    std::process::exit(2);
                }
            }
            None => self
                .kept
                .lock()
                .expect("cookie list lock")
                .push((username.to_owned(), cookie.to_owned())),
        }
    }

    /// `logins_ok` and either `cookies_file` or the `logins` list itself.
    pub fn describe(&self, out: &mut serde_json::Map<String, Value>) {
        out.insert(
            "logins_ok".into(),
            json!(self.count.load(Ordering::Relaxed)),
        );
        match &self.file {
            Some((path, _)) => {
                out.insert("cookies_file".into(), json!(path.display().to_string()));
            }
            None => {
                let kept = self.kept.lock().expect("cookie list lock");
                out.insert("logins".into(), json!(*kept));
            }
        }
    }
}

/// Reads a file written by [`CookieSink`].
pub fn read_cookie_file(path: &Path) -> Result<Vec<(String, String)>, String> {
    let f = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let Some((user, cookie)) = line.split_once('\t') else {
            return Err(format!(
                "{}:{}: expected `username<TAB>name=value`",
                path.display(),
                n + 1
            ));
        };
        out.push((user.to_owned(), cookie.to_owned()));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Weights of the mixed scenario

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Me,
    Sessions,
    Login,
    Logout,
    RevokeOne,
    RevokeOthers,
    LogoutAll,
    Password,
    Probe,
}

const OPS: &[(&str, Op)] = &[
    ("me", Op::Me),
    ("sessions", Op::Sessions),
    ("login", Op::Login),
    ("logout", Op::Logout),
    ("revoke_one", Op::RevokeOne),
    ("revoke_others", Op::RevokeOthers),
    ("logout_all", Op::LogoutAll),
    ("password", Op::Password),
    ("probe", Op::Probe),
];

pub const DEFAULT_WEIGHTS: &str =
    "me=20,sessions=2,login=3,logout=1,revoke_one=1,revoke_others=1,logout_all=0,password=0,probe=1";

#[derive(Clone, Debug)]
pub struct Weights(Vec<(Op, u32)>);

impl Weights {
    /// `name=weight,...`; names not given keep their default weight.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut weights = Self::defaults();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, w) = item
                .split_once('=')
                .ok_or_else(|| format!("--weights: `{item}` is not name=weight"))?;
            let op = OPS
                .iter()
                .find(|(n, _)| *n == name.trim())
                .map(|(_, op)| *op)
                .ok_or_else(|| {
                    let names: Vec<&str> = OPS.iter().map(|(n, _)| *n).collect();
                    format!(
                        "--weights: unknown operation `{name}` (one of {})",
                        names.join(", ")
                    )
                })?;
            let w: u32 = w
                .trim()
                .parse()
                .map_err(|_| format!("--weights: `{w}` is not a whole number"))?;
            weights.0.retain(|(o, _)| *o != op);
            weights.0.push((op, w));
        }
        if weights.0.iter().all(|(_, w)| *w == 0) {
            return Err("--weights: every weight is 0".into());
        }
        Ok(weights)
    }

    fn defaults() -> Self {
        let mut w = Self(Vec::new());
        for item in DEFAULT_WEIGHTS.split(',') {
            let (name, n) = item.split_once('=').expect("default weights");
            let op = OPS.iter().find(|(o, _)| *o == name).expect("known op").1;
            w.0.push((op, n.parse().expect("default weight")));
        }
        w
    }

    fn pick(&self, rng: &mut Rng) -> Op {
        let total: u64 = self.0.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut r = rng.next() % total;
        for (op, w) in &self.0 {
            let w = u64::from(*w);
            if r < w {
                return *op;
            }
            r -= w;
        }
        unreachable!("weights sum to total")
    }

    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        for (name, op) in OPS {
            let w = self.0.iter().find(|(o, _)| o == op).map_or(0, |(_, w)| *w);
            m.insert((*name).to_owned(), json!(w));
        }
        Value::Object(m)
    }
}

// ---------------------------------------------------------------------------------------------
// Set-up

/// A registered user and the cookies of the sessions set-up opened for them.
pub struct Prepared {
    pub username: String,
    pub cookies: Vec<String>,
}

/// Registers `users` users (`{prefix}{i}`) and logs each in `sessions` times, on `connections`
/// connections. Any answer but 201 / 200 is an error: set-up must not fail.
pub async fn setup(
    ctx: &Arc<Ctx>,
    users: usize,
    sessions: usize,
    connections: usize,
    stats: &mut Stats,
) -> Result<Vec<Prepared>, String> {
    let mut tasks = Vec::new();
    let connections = connections.clamp(1, users.max(1));
    for w in 0..connections {
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(async move {
            let conn = ctx.conn()?;
            let mut stats = ctx.stats();
            let mut done = Vec::new();
            for i in (w..users).step_by(connections) {
                let username = format!("{}{i}", ctx.prefix);
                let creds = json!({"username": username, "password": ctx.password});
                let out = conn
                    .call(
                        &mut stats,
                        "POST /register",
                        Method::POST,
                        "/register",
                        None,
                        Some(creds.clone()),
                    )
                    .await;
                if out.status() != Some(201) {
                    return Err(format!(
                        "set-up: registering {username}: {}",
                        describe(&out)
                    ));
                }
                let mut cookies = Vec::new();
                for _ in 0..sessions {
                    let out = conn
                        .call(
                            &mut stats,
                            "POST /login",
                            Method::POST,
                            "/login",
                            None,
                            Some(creds.clone()),
                        )
                        .await;
                    match &out {
                        Outcome::Response {
                            status: 200,
                            cookie: Some(c),
                            ..
                        } => {
                            ctx.sink.add(&username, c);
                            cookies.push(c.clone());
                        }
                        _ => {
                            return Err(format!(
                                "set-up: logging in {username}: {}",
                                describe(&out)
                            ))
                        }
                    }
                }
                done.push((i, Prepared { username, cookies }));
            }
            Ok::<_, String>((done, stats))
        }));
    }
    let mut all = Vec::new();
    let mut first_error = None;
    for t in tasks {
        match t.await.map_err(|e| format!("set-up task failed: {e}"))? {
            Ok((done, s)) => {
                all.extend(done);
                stats.merge(s);
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, p)| p).collect())
}

fn describe(out: &Outcome) -> String {
    match out {
        Outcome::Response { status, body, .. } => {
            let text: String = String::from_utf8_lossy(body).chars().take(300).collect();
            format!("{status} {text}")
        }
        Outcome::Timeout => "timed out".into(),
        Outcome::Transport(why) => format!("transport error: {why}"),
    }
}

fn username_of(out: &Outcome) -> Option<String> {
    out.json()?.get("username")?.as_str().map(str::to_owned)
}

// ---------------------------------------------------------------------------------------------
// mixed

struct Sess {
    cookie: String,
    born: Instant,
    id: Option<String>,
}

struct User {
    name: String,
    password: String,
    generation: u32,
    sessions: Vec<Sess>,
}

struct Mixed {
    ctx: Arc<Ctx>,
    conn: Conn,
    rng: Rng,
    stats: Stats,
    users: Vec<User>,
    /// Cookies of sessions this worker ended, to check that they stay ended.
    ended: VecDeque<String>,
    /// Users lost to an unknown outcome, still to be replaced by new registrations.
    to_register: usize,
    worker: usize,
    registered: usize,
}

const ENDED_KEPT: usize = 256;

pub async fn mixed_worker(
    ctx: Arc<Ctx>,
    worker: usize,
    users: Vec<Prepared>,
    deadline: Instant,
) -> Result<Stats, String> {
    let mut m = Mixed {
        conn: ctx.conn()?,
        rng: Rng::new(ctx.seed ^ (worker as u64).wrapping_mul(0x1000_0000_01B3)),
        stats: ctx.stats(),
        users: users
            .into_iter()
            .map(|p| User {
                name: p.username,
                password: ctx.password.clone(),
                generation: 0,
                sessions: p
                    .cookies
                    .into_iter()
                    .map(|cookie| Sess {
                        cookie,
                        born: Instant::now(),
                        id: None,
                    })
                    .collect(),
            })
            .collect(),
        ctx,
        ended: VecDeque::new(),
        to_register: 0,
        worker,
        registered: 0,
    };
    while Instant::now() < deadline {
        m.step().await;
    }
    Ok(m.stats)
}

impl Mixed {
    async fn step(&mut self) {
        if self.to_register > 0 || self.users.is_empty() {
            return self.register().await;
        }
        let op = self.ctx.weights.pick(&mut self.rng);
        let needs = match op {
            Op::Login | Op::Probe => 0,
            _ => 1,
        };
        let Some(u) = self.user_with(needs) else {
            let u = self.rng.below(self.users.len());
            return self.login(u).await;
        };
        match op {
            Op::Me => self.me(u).await,
            Op::Sessions => {
                let s = self.rng.below(self.users[u].sessions.len());
                self.list(u, s).await;
            }
            Op::Login => self.login(u).await,
            Op::Logout => self.logout(u).await,
            Op::RevokeOne => self.revoke_one(u).await,
            Op::RevokeOthers => self.revoke_others(u).await,
            Op::LogoutAll => self.logout_all(u).await,
            Op::Password => self.password(u).await,
            Op::Probe => match self.ended.pop_front() {
                Some(cookie) => self.probe(cookie).await,
                None => self.login(u).await,
            },
        }
    }

    /// A random user with at least `n` live sessions.
    fn user_with(&mut self, n: usize) -> Option<usize> {
        let len = self.users.len();
        if len == 0 {
            return None;
        }
        let start = self.rng.below(len);
        (0..len)
            .map(|k| (start + k) % len)
            .find(|&u| self.users[u].sessions.len() >= n)
    }

    fn end(&mut self, cookie: String) {
        if self.ended.len() >= ENDED_KEPT {
            self.ended.pop_front();
        }
        self.ended.push_back(cookie);
    }

    /// The user's password may or may not have changed: forget the user, register another.
    fn lose_user(&mut self, u: usize) {
        self.users.swap_remove(u);
        self.to_register += 1;
    }

    fn creds(&self, u: usize) -> Value {
        json!({"username": self.users[u].name, "password": self.users[u].password})
    }

    /// `{"password": ...}` when the session is too old to end other sessions without it.
    fn reauth(&self, u: usize, s: usize) -> Option<Value> {
        (self.users[u].sessions[s].born.elapsed() >= self.ctx.fresh)
            .then(|| json!({"password": self.users[u].password}))
    }

    async fn register(&mut self) {
        self.registered += 1;
        let name = format!("{}w{}r{}", self.ctx.prefix, self.worker, self.registered);
        let body = json!({"username": name, "password": self.ctx.password});
        let out = self
            .conn
            .call(
                &mut self.stats,
                "POST /register",
                Method::POST,
                "/register",
                None,
                Some(body),
            )
            .await;
        match out.status() {
            Some(201) => {
                self.users.push(User {
                    name,
                    password: self.ctx.password.clone(),
                    generation: 0,
                    sessions: Vec::new(),
                });
                self.to_register = self.to_register.saturating_sub(1);
            }
            _ if out.uncertain() => {}
            _ => self
                .stats
                .unexpected(format!("POST /register {name}: {}", describe(&out))),
        }
    }

    async fn login(&mut self, u: usize) {
        if self.users[u].sessions.len() >= self.ctx.max_sessions {
            return self.logout(u).await;
        }
        let body = self.creds(u);
        let out = self
            .conn
            .call(
                &mut self.stats,
                "POST /login",
                Method::POST,
                "/login",
                None,
                Some(body),
            )
            .await;
        match &out {
            Outcome::Response {
                status: 200,
                cookie: Some(cookie),
                ..
            } => {
                self.ctx.sink.add(&self.users[u].name, cookie);
                self.users[u].sessions.push(Sess {
                    cookie: cookie.clone(),
                    born: Instant::now(),
                    id: None,
                });
            }
            _ if out.uncertain() => {}
            _ => {
                let name = self.users[u].name.clone();
                self.stats
                    .unexpected(format!("POST /login {name}: {}", describe(&out)));
                self.lose_user(u);
            }
        }
    }

    async fn me(&mut self, u: usize) {
        let s = self.rng.below(self.users[u].sessions.len());
        let cookie = self.users[u].sessions[s].cookie.clone();
        let out = self
            .conn
            .call(
                &mut self.stats,
                "GET /users/me",
                Method::GET,
                "/users/me",
                Some(&cookie),
                None,
            )
            .await;
        match out.status() {
            Some(200) => {
                let name = &self.users[u].name;
                if !username_of(&out).is_some_and(|n| n.eq_ignore_ascii_case(name)) {
                    self.stats
                        .unexpected(format!("GET /users/me for {name}: {}", describe(&out)));
                }
            }
            _ if out.uncertain() => {}
            _ => {
                let name = self.users[u].name.clone();
                self.stats.unexpected(format!(
                    "GET /users/me with a live session of {name}: {}",
                    describe(&out)
                ));
                self.users[u].sessions.swap_remove(s);
            }
        }
    }

    /// `GET /users/me/sessions` with session `s`: learns its id; the list must hold at least the
    /// sessions this worker knows are alive. Returns false when the answer was not a list.
    async fn list(&mut self, u: usize, s: usize) -> bool {
        let cookie = self.users[u].sessions[s].cookie.clone();
        let out = self
            .conn
            .call(
                &mut self.stats,
                "GET /users/me/sessions",
                Method::GET,
                "/users/me/sessions",
                Some(&cookie),
                None,
            )
            .await;
        match (out.status(), out.json()) {
            (Some(200), Some(Value::Array(list))) => {
                let known = self.users[u].sessions.len();
                if list.len() < known {
                    let name = self.users[u].name.clone();
                    self.stats.unexpected(format!(
                        "GET /users/me/sessions for {name} lists {} sessions, {known} are alive",
                        list.len()
                    ));
                }
                let current = list
                    .iter()
                    .find(|e| e.get("current") == Some(&Value::Bool(true)))
                    .and_then(|e| e.get("id"))
                    .and_then(Value::as_str);
                match current {
                    Some(id) => {
                        self.users[u].sessions[s].id = Some(id.to_owned());
                        true
                    }
                    None => {
                        self.stats
                            .unexpected("GET /users/me/sessions: no entry is `current`".to_owned());
                        false
                    }
                }
            }
            _ if out.uncertain() => false,
            _ => {
                let name = self.users[u].name.clone();
                self.stats.unexpected(format!(
                    "GET /users/me/sessions with a live session of {name}: {}",
                    describe(&out)
                ));
                self.users[u].sessions.swap_remove(s);
                false
            }
        }
    }

    async fn logout(&mut self, u: usize) {
        if self.users[u].sessions.is_empty() {
            return;
        }
        let s = self.rng.below(self.users[u].sessions.len());
        let sess = self.users[u].sessions.swap_remove(s);
        let out = self
            .conn
            .call(
                &mut self.stats,
                "POST /logout",
                Method::POST,
                "/logout",
                Some(&sess.cookie),
                None,
            )
            .await;
        match out.status() {
            Some(200) => self.end(sess.cookie),
            _ if out.uncertain() => {}
            _ => self
                .stats
                .unexpected(format!("POST /logout: {}", describe(&out))),
        }
    }

    /// Ends one session by id: from another session of the user when there is one, else itself.
    async fn revoke_one(&mut self, u: usize) {
        let n = self.users[u].sessions.len();
        let victim = self.rng.below(n);
        if self.users[u].sessions[victim].id.is_none() && !self.list(u, victim).await {
            return;
        }
        let Some(id) = self.users[u].sessions[victim].id.clone() else {
            return;
        };
        let actor = if n >= 2 {
            (victim + 1 + self.rng.below(n - 1)) % n
        } else {
            victim
        };
        let body = if actor == victim {
            None
        } else {
            self.reauth(u, actor)
        };
        let cookie = self.users[u].sessions[actor].cookie.clone();
        let out = self
            .conn
            .call(
                &mut self.stats,
                "DELETE /users/me/sessions/{id}",
                Method::DELETE,
                &format!("/users/me/sessions/{id}"),
                Some(&cookie),
                body,
            )
            .await;
        let sess = self.users[u].sessions.swap_remove(victim);
        match out.status() {
            Some(204) => self.end(sess.cookie),
            _ if out.uncertain() => {}
            _ => self.stats.unexpected(format!(
                "DELETE /users/me/sessions/{{id}} of a live session: {}",
                describe(&out)
            )),
        }
    }

    /// `DELETE /users/me/sessions`: every other session of the user ends.
    async fn revoke_others(&mut self, u: usize) {
        let s = self.rng.below(self.users[u].sessions.len());
        let body = self.reauth(u, s);
        let cookie = self.users[u].sessions[s].cookie.clone();
        let out = self
            .conn
            .call(
                &mut self.stats,
                "DELETE /users/me/sessions",
                Method::DELETE,
                "/users/me/sessions",
                Some(&cookie),
                body,
            )
            .await;
        let keep = self.users[u].sessions.swap_remove(s);
        let others: Vec<Sess> = std::mem::take(&mut self.users[u].sessions);
        self.users[u].sessions.push(keep);
        self.check_revoked("DELETE /users/me/sessions", &out, others);
    }

    /// A `{"revoked": n}` answer: it must have ended at least the `ended` sessions this client
    /// knew were alive, which then count as ended.
    fn check_revoked(&mut self, label: &str, out: &Outcome, ended: Vec<Sess>) {
        match out.status() {
            Some(200) => {
                let revoked = out.json().and_then(|v| v.get("revoked")?.as_u64());
                if revoked.is_none_or(|r| r < ended.len() as u64) {
                    self.stats.unexpected(format!(
                        "{label} ended {revoked:?} sessions, {} were alive",
                        ended.len()
                    ));
                }
                for o in ended {
                    self.end(o.cookie);
                }
            }
            _ if out.uncertain() => {}
            _ => self
                .stats
                .unexpected(format!("{label} with a live session: {}", describe(out))),
        }
    }

    /// `POST /logout/all`: every session of the user ends, this one included.
    async fn logout_all(&mut self, u: usize) {
        let s = self.rng.below(self.users[u].sessions.len());
        let cookie = self.users[u].sessions[s].cookie.clone();
        let out = self
            .conn
            .call(
                &mut self.stats,
                "POST /logout/all",
                Method::POST,
                "/logout/all",
                Some(&cookie),
                None,
            )
            .await;
        let all: Vec<Sess> = std::mem::take(&mut self.users[u].sessions);
        self.check_revoked("POST /logout/all", &out, all);
    }

    /// `PUT /users/me/password`: every session ends, the answer carries a new one.
    async fn password(&mut self, u: usize) {
        let s = self.rng.below(self.users[u].sessions.len());
        let user = &self.users[u];
        let new_password = format!("{}-{}", self.ctx.password, user.generation + 1);
        let body = json!({"current_password": user.password, "new_password": new_password});
        let cookie = user.sessions[s].cookie.clone();
        let out = self
            .conn
            .call(
                &mut self.stats,
                "PUT /users/me/password",
                Method::PUT,
                "/users/me/password",
                Some(&cookie),
                Some(body),
            )
            .await;
        match &out {
            Outcome::Response {
                status: 200,
                cookie: Some(new_cookie),
                ..
            } => {
                let old = std::mem::take(&mut self.users[u].sessions);
                for o in old {
                    self.end(o.cookie);
                }
                let user = &mut self.users[u];
                user.password = new_password;
                user.generation += 1;
                user.sessions.push(Sess {
                    cookie: new_cookie.clone(),
                    born: Instant::now(),
                    id: None,
                });
            }
            _ if out.uncertain() => self.lose_user(u),
            _ => {
                self.stats.unexpected(format!(
                    "PUT /users/me/password with a live session: {}",
                    describe(&out)
                ));
                self.lose_user(u);
            }
        }
    }

    /// A session this worker ended must stay ended.
    async fn probe(&mut self, cookie: String) {
        let out = self
            .conn
            .call(
                &mut self.stats,
                "GET /users/me (ended session)",
                Method::GET,
                "/users/me",
                Some(&cookie),
                None,
            )
            .await;
        match out.status() {
            Some(401) => {}
            _ if out.uncertain() => {}
            _ => self.stats.unexpected(format!(
                "GET /users/me with an ended session: {}",
                describe(&out)
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// me, login, verify

/// `GET /users/me` with random cookies of the pool; every one names a live session.
pub async fn me_worker(
    ctx: Arc<Ctx>,
    worker: usize,
    pool: Arc<Vec<(String, String)>>,
    deadline: Instant,
) -> Result<Stats, String> {
    let conn = ctx.conn()?;
    let mut rng = Rng::new(ctx.seed ^ (worker as u64).wrapping_mul(0x9E37_79B9));
    let mut stats = ctx.stats();
    while Instant::now() < deadline {
        let (user, cookie) = &pool[rng.below(pool.len())];
        let out = conn
            .call(
                &mut stats,
                "GET /users/me",
                Method::GET,
                "/users/me",
                Some(cookie),
                None,
            )
            .await;
        match out.status() {
            Some(200) if username_of(&out).is_some_and(|n| n.eq_ignore_ascii_case(user)) => {}
            _ if out.uncertain() => {}
            _ => stats.unexpected(format!("GET /users/me for {user}: {}", describe(&out))),
        }
    }
    Ok(stats)
}

/// `POST /login` for random users of the pool; every 200 goes to the cookie sink.
pub async fn login_worker(
    ctx: Arc<Ctx>,
    worker: usize,
    users: Arc<Vec<String>>,
    deadline: Instant,
) -> Result<Stats, String> {
    let conn = ctx.conn()?;
    let mut rng = Rng::new(ctx.seed ^ (worker as u64).wrapping_mul(0x2545_F491));
    let mut stats = ctx.stats();
    while Instant::now() < deadline {
        let user = &users[rng.below(users.len())];
        let body = json!({"username": user, "password": ctx.password});
        let out = conn
            .call(
                &mut stats,
                "POST /login",
                Method::POST,
                "/login",
                None,
                Some(body),
            )
            .await;
        match &out {
            Outcome::Response {
                status: 200,
                cookie: Some(cookie),
                ..
            } => ctx.sink.add(user, cookie),
            _ if out.uncertain() => {}
            _ => stats.unexpected(format!("POST /login {user}: {}", describe(&out))),
        }
    }
    Ok(stats)
}

/// Each (username, cookie) gets one `GET /users/me`, which must be a 200 naming that user.
/// Returns how many failed.
pub async fn verify_worker(
    ctx: Arc<Ctx>,
    entries: Arc<Vec<(String, String)>>,
    worker: usize,
    connections: usize,
) -> Result<(Stats, u64), String> {
    let conn = ctx.conn()?;
    let mut stats = ctx.stats();
    let mut failed = 0;
    for (user, cookie) in entries.iter().skip(worker).step_by(connections) {
        let out = conn
            .call(
                &mut stats,
                "GET /users/me",
                Method::GET,
                "/users/me",
                Some(cookie),
                None,
            )
            .await;
        let ok = out.status() == Some(200)
            && username_of(&out).is_some_and(|n| n.eq_ignore_ascii_case(user));
        if !ok {
            failed += 1;
            stats.sample(format!("verify {user}: {}", describe(&out)));
        }
    }
    Ok((stats, failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_override_defaults_and_reject_nonsense() {
        let w = Weights::parse("password=2, me=0").unwrap();
        let j = w.to_json();
        assert_eq!(j["password"], 2);
        assert_eq!(j["me"], 0);
        assert_eq!(j["login"], 3);
        assert!(Weights::parse("nope=1").is_err());
        assert!(Weights::parse("me=x").is_err());
        let all_zero: Vec<String> = OPS.iter().map(|(n, _)| format!("{n}=0")).collect();
        assert!(Weights::parse(&all_zero.join(",")).is_err());
    }

    #[test]
    fn pick_follows_the_weights() {
        let w = Weights::parse(
            "me=0,sessions=0,login=1,logout=0,revoke_one=0,revoke_others=0,password=0,probe=3",
        )
        .unwrap();
        let mut rng = Rng::new(7);
        let probes = (0..4000).filter(|_| w.pick(&mut rng) == Op::Probe).count();
        assert!((2800..3200).contains(&probes), "{probes}");
    }
}
