//! Small real servers standing for the outside world notifications talks to: an HTTP provider
//! (SMS, WhatsApp) and an SMTP relay. They speak the real protocols on loopback ports, so the
//! channel adapters are tested with their real clients, timeouts, retries and idempotency keys,
//! and a test can make the provider fail, slow down or go away.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime},
};

use http_body_util::{BodyExt as _, Full};
use hyper::{Method, Request, Response, StatusCode, body::Bytes, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader},
    net::{TcpListener, TcpStream},
    task::{JoinHandle, JoinSet},
};

/// One request the provider received.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    pub path: String,
    /// Header names in lower case (a later value of a repeated header wins).
    pub headers: BTreeMap<String, String>,
    /// The JSON body (the raw text as a JSON string when it was not JSON).
    pub body: serde_json::Value,
    /// When it arrived.
    pub at: SystemTime,
    /// The status it was answered with.
    pub answered: u16,
}

#[derive(Default)]
struct ProviderState {
    requests: Vec<ReceivedRequest>,
    fail_next: usize,
    fail_status: u16,
    down: Option<u16>,
    delay: Duration,
    /// Provider reference given to each accepted idempotency key, so a repeat gets the same one.
    refs: HashMap<String, String>,
    issued: u64,
}

/// A fake SMS or WhatsApp provider: a real HTTP/1.1 server on `127.0.0.1:<port>` that records every
/// request and answers `200 {"id": "prov-<n>"}`, deduplicating on the `idempotency-key` header as
/// real providers do. Stops when dropped.
pub struct HttpProvider {
    addr: SocketAddr,
    state: Arc<Mutex<ProviderState>>,
    task: JoinHandle<()>,
}

impl HttpProvider {
    /// Starts one on a free loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the fake provider");
        let addr = listener.local_addr().expect("provider address");
        let state = Arc::new(Mutex::new(ProviderState::default()));
        let shared = state.clone();
        let task = serve(listener, move |stream| {
            let state = shared.clone();
            async move {
                let service = service_fn(move |req| answer(state.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            }
        });
        Self { addr, state, task }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next `n` requests are answered `status` with `{"error": ...}` (and are not accepted).
    pub fn fail_next(&self, n: usize, status: u16) {
        let mut state = lock(&self.state);
        state.fail_next = n;
        state.fail_status = status;
    }

    /// `Some(status)`: every request is answered `status` until `set_down(None)`.
    pub fn set_down(&self, status: Option<u16>) {
        lock(&self.state).down = status;
    }

    /// Answers each request `d` after it arrived (to exercise client timeouts). The request is
    /// recorded, and accepted or not, when it arrives, as a slow provider would have processed it.
    pub fn set_delay(&self, d: Duration) {
        lock(&self.state).delay = d;
    }

    /// Every request, in arrival order, failed ones too.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        lock(&self.state).requests.clone()
    }

    /// The requests answered 2xx.
    pub fn accepted(&self) -> Vec<ReceivedRequest> {
        self.requests().into_iter().filter(|r| (200..300).contains(&r.answered)).collect()
    }

    /// How many distinct `idempotency-key` values the accepted requests carried: the number of
    /// messages a person really got, however many times they were retried.
    pub fn distinct_accepted_keys(&self) -> usize {
        self.accepted().iter().filter_map(|r| r.headers.get("idempotency-key")).collect::<BTreeSet<_>>().len()
    }

    /// Waits until at least `n` requests were accepted and returns them; panics after `timeout`.
    pub async fn wait_accepted(&self, n: usize, timeout: Duration) -> Vec<ReceivedRequest> {
        let what = format!("{n} accepted request(s) at the fake provider {}", self.url());
        poll(&what, timeout, || Some(self.accepted()).filter(|a| a.len() >= n), || format!("{:#?}", self.requests())).await
    }
}

impl Drop for HttpProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Decides and records the answer when the request arrives, then sends it after the delay.
async fn answer(state: Arc<Mutex<ProviderState>>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let at = SystemTime::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let headers: BTreeMap<String, String> =
        req.headers().iter().map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect();
    let raw = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let json = serde_json::from_slice::<serde_json::Value>(&raw);

    let (status, reply, delay) = {
        let mut state = lock(&state);
        let (status, reply) = if let Some(status) = state.down {
            (status, serde_json::json!({"error": "provider down"}))
        } else if state.fail_next > 0 {
            state.fail_next -= 1;
            (state.fail_status, serde_json::json!({"error": "injected failure"}))
        } else if method != Method::POST {
            (405, serde_json::json!({"error": "only POST"}))
        } else if json.is_err() {
            (400, serde_json::json!({"error": "body is not JSON"}))
        } else {
            let key = headers.get("idempotency-key").cloned();
            let known = key.as_ref().and_then(|k| state.refs.get(k)).cloned();
            let id = known.unwrap_or_else(|| {
                state.issued += 1;
                let id = format!("prov-{}", state.issued);
                if let Some(key) = key {
                    state.refs.insert(key, id.clone());
                }
                id
            });
            (200, serde_json::json!({"id": id}))
        };
        let body = json.unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&raw).into_owned()));
        state.requests.push(ReceivedRequest { path, headers, body, at, answered: status });
        (status, reply, state.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut response = Response::new(Full::new(Bytes::from(reply.to_string())));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    Ok(response)
}

/// One mail the SMTP server took in.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The MAIL FROM address, without angle brackets.
    pub from: String,
    /// The RCPT TO addresses, without angle brackets.
    pub to: Vec<String>,
    /// Headers and body as received (line endings kept), dot-stuffing undone.
    pub data: String,
    pub at: SystemTime,
}

#[derive(Default)]
struct SmtpState {
    messages: Vec<ReceivedMail>,
    fail_next: usize,
}

/// A fake SMTP relay: a real SMTP server (the RFC 5321 subset a plain client uses, no STARTTLS,
/// no AUTH) on `127.0.0.1:<port>` that keeps every mail. Stops when dropped.
pub struct SmtpServer {
    addr: SocketAddr,
    state: Arc<Mutex<SmtpState>>,
    task: JoinHandle<()>,
}

impl SmtpServer {
    /// Starts one on a free loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the fake SMTP server");
        let addr = listener.local_addr().expect("SMTP address");
        let state = Arc::new(Mutex::new(SmtpState::default()));
        let shared = state.clone();
        let task = serve(listener, move |stream| {
            let state = shared.clone();
            async move {
                let _ = smtp_session(stream, state).await;
            }
        });
        Self { addr, state, task }
    }

    /// `127.0.0.1`.
    pub fn host(&self) -> String {
        self.addr.ip().to_string()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `smtp://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// The next `n` MAIL FROM commands are answered `451 4.3.0 try again later` (a transient failure).
    pub fn fail_next(&self, n: usize) {
        lock(&self.state).fail_next = n;
    }

    /// Every mail taken in, in order.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        lock(&self.state).messages.clone()
    }

    /// Waits until at least `n` mails were taken in and returns them; panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let what = format!("{n} mail(s) at the fake SMTP server {}", self.url());
        poll(&what, timeout, || Some(self.messages()).filter(|m| m.len() >= n), || format!("{:#?}", self.messages())).await
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn smtp_session(stream: TcpStream, state: Arc<Mutex<SmtpState>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    write.write_all(b"220 127.0.0.1 ESMTP work4life testkit\r\n").await?;
    let (mut from, mut to) = (None::<String>, Vec::<String>::new());
    let mut line = Vec::new();
    loop {
        line.clear();
        if read.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let command = String::from_utf8_lossy(&line).trim_end().to_string();
        let upper = command.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO") {
            "250-127.0.0.1 hello\r\n250-8BITMIME\r\n250 SIZE 10485760"
        } else if upper.starts_with("HELO") {
            "250 127.0.0.1 hello"
        } else if upper.starts_with("MAIL FROM:") {
            let mut state = lock(&state);
            if state.fail_next > 0 {
                state.fail_next -= 1;
                "451 4.3.0 try again later"
            } else {
                from = Some(address(&command["MAIL FROM:".len()..]));
                to.clear();
                "250 2.1.0 OK"
            }
        } else if upper.starts_with("RCPT TO:") {
            if from.is_none() {
                "503 5.5.1 MAIL first"
            } else {
                to.push(address(&command["RCPT TO:".len()..]));
                "250 2.1.5 OK"
            }
        } else if upper == "DATA" {
            match from.take() {
                Some(sender) if !to.is_empty() => {
                    write.write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n").await?;
                    let data = read_data(&mut read).await?;
                    let mail = ReceivedMail { from: sender, to: std::mem::take(&mut to), data, at: SystemTime::now() };
                    lock(&state).messages.push(mail);
                    "250 2.0.0 queued"
                }
                sender => {
                    from = sender;
                    "503 5.5.1 MAIL and RCPT first"
                }
            }
        } else if upper == "RSET" {
            (from, to) = (None, Vec::new());
            "250 2.0.0 OK"
        } else if upper.starts_with("NOOP") {
            "250 2.0.0 OK"
        } else if upper == "QUIT" {
            write.write_all(b"221 2.0.0 bye\r\n").await?;
            return Ok(());
        } else {
            "502 5.5.2 command not recognized"
        };
        write.write_all(format!("{reply}\r\n").as_bytes()).await?;
    }
}

/// The DATA lines up to the lone ".", with the leading dot of stuffed lines removed.
async fn read_data(read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> std::io::Result<String> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if read.read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(String::from_utf8_lossy(&data).into_owned());
        }
        data.extend_from_slice(line.strip_prefix(b".").unwrap_or(&line));
    }
}

/// `<a@b> BODY=8BITMIME` → `a@b`.
fn address(arg: &str) -> String {
    let arg = arg.trim();
    match (arg.find('<'), arg.find('>')) {
        (Some(start), Some(end)) if start < end => arg[start + 1..end].to_string(),
        _ => arg.split_whitespace().next().unwrap_or_default().to_string(),
    }
}

/// Accepts connections and runs `session` on each. The connections are held in a set owned by
/// the accept task, so aborting it (on drop) also cuts kept-alive connections: a dropped server
/// is really gone.
fn serve<F, Fut>(listener: TcpListener, session: F) -> JoinHandle<()>
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut sessions = JoinSet::new();
        loop {
            if let Ok((stream, _)) = listener.accept().await {
                sessions.spawn(session(stream));
            }
            while sessions.try_join_next().is_some() {}
        }
    })
}

async fn poll<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>, seen: impl Fn() -> String) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}; received so far: {}", seen());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A poisoned lock only means another test thread panicked; the records are still good.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    use serde_json::json;

    type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

    async fn post(client: &HttpClient, url: &str, key: Option<&str>, body: &str) -> (u16, serde_json::Value) {
        let mut request = Request::post(format!("{url}/v1/messages")).header("content-type", "application/json");
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = client.request(request.body(Full::new(Bytes::from(body.to_string()))).expect("request")).await.expect("answer");
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        (status, serde_json::from_slice(&bytes).expect("JSON answer"))
    }

    #[tokio::test]
    async fn http_provider_records_fails_and_dedupes() {
        let provider = HttpProvider::start().await;
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let url = provider.url();
        let sms = json!({"to": "+390612345678", "text": "Ciao"});

        assert_eq!(post(&client, &url, Some("k1"), &sms.to_string()).await, (200, json!({"id": "prov-1"})));
        assert_eq!(post(&client, &url, Some("k1"), &sms.to_string()).await, (200, json!({"id": "prov-1"})), "same key, same id");

        provider.fail_next(2, 503);
        for _ in 0..2 {
            let (status, body) = post(&client, &url, Some("k2"), "{}").await;
            assert_eq!(status, 503);
            assert!(body["error"].is_string());
        }
        assert_eq!(post(&client, &url, Some("k2"), "{}").await, (200, json!({"id": "prov-2"})));
        assert_eq!(post(&client, &url, None, "not json").await.0, 400);

        provider.set_down(Some(500));
        assert_eq!(post(&client, &url, Some("k3"), "{}").await.0, 500);
        assert_eq!(post(&client, &url, Some("k3"), "{}").await.0, 500);
        provider.set_down(None);
        assert_eq!(post(&client, &url, None, "{}").await, (200, json!({"id": "prov-3"})));

        let requests = provider.requests();
        let answered: Vec<u16> = requests.iter().map(|r| r.answered).collect();
        assert_eq!(answered, [200, 200, 503, 503, 200, 400, 500, 500, 200]);
        assert_eq!(requests[0].path, "/v1/messages");
        assert_eq!(requests[0].body, sms);
        assert_eq!(requests[0].headers.get("idempotency-key").map(String::as_str), Some("k1"));
        assert_eq!(requests[0].headers.get("content-type").map(String::as_str), Some("application/json"));
        assert_eq!(requests[5].body, json!("not json"));
        assert_eq!(provider.accepted().len(), 4);
        assert_eq!(provider.distinct_accepted_keys(), 2);
        assert_eq!(provider.wait_accepted(4, Duration::from_secs(1)).await.len(), 4);
    }

    #[tokio::test]
    async fn http_provider_delays_and_stops_when_dropped() {
        let provider = HttpProvider::start().await;
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let url = provider.url();
        assert_eq!(post(&client, &url, None, "{}").await.0, 200); // leaves a kept-alive connection
        provider.set_delay(Duration::from_millis(300));
        let started = std::time::Instant::now();
        assert_eq!(post(&client, &url, None, "{}").await.0, 200);
        assert!(started.elapsed() >= Duration::from_millis(300));

        drop(provider);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let request = Request::post(format!("{url}/v1/messages")).body(Full::new(Bytes::from("{}"))).expect("request");
        assert!(client.request(request).await.is_err(), "a dropped provider answers nothing");
    }

    #[tokio::test]
    #[should_panic(expected = "timed out after")]
    async fn wait_accepted_panics_on_timeout() {
        HttpProvider::start().await.wait_accepted(1, Duration::from_millis(100)).await;
    }

    /// A hand-written SMTP client: sends one line, reads one (possibly multi-line) reply.
    struct Dialogue(BufReader<TcpStream>);

    impl Dialogue {
        async fn reply(&mut self) -> String {
            let mut reply = String::new();
            loop {
                let mut line = String::new();
                assert!(self.0.read_line(&mut line).await.expect("read") > 0, "server closed after {reply:?}");
                reply.push_str(&line);
                if line.as_bytes().get(3) != Some(&b'-') {
                    return reply;
                }
            }
        }

        async fn send(&mut self, line: &str) -> String {
            self.0.get_mut().write_all(format!("{line}\r\n").as_bytes()).await.expect("write");
            self.reply().await
        }
    }

    #[tokio::test]
    async fn smtp_server_takes_mail_in() {
        let smtp = SmtpServer::start().await;
        assert_eq!(smtp.url(), format!("smtp://{}:{}", smtp.host(), smtp.port()));
        let mut client = Dialogue(BufReader::new(TcpStream::connect((smtp.host(), smtp.port())).await.expect("connect")));
        assert!(client.reply().await.starts_with("220 "));

        let ehlo = client.send("EHLO client.test").await;
        assert!(ehlo.starts_with("250-") && ehlo.ends_with("250 SIZE 10485760\r\n"), "{ehlo}");
        assert!(!ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"), "{ehlo}");

        smtp.fail_next(1);
        assert_eq!(client.send("MAIL FROM:<noreply@work4life.test>").await, "451 4.3.0 try again later\r\n");
        assert!(client.send("MAIL FROM:<noreply@work4life.test> BODY=8BITMIME").await.starts_with("250 "));
        assert!(client.send("RCPT TO:<amina@example.org>").await.starts_with("250 "));
        assert!(client.send("rcpt to:<coach@example.org>").await.starts_with("250 "));
        assert!(client.send("NOOP").await.starts_with("250 "));
        assert!(client.send("DATA").await.starts_with("354 "));
        let body = "Subject: Benvenuta\r\n\r\n..a line starting with a dot\r\nsecond line\r\n.";
        assert!(client.send(body).await.starts_with("250 "));
        assert!(client.send("VRFY amina").await.starts_with("502 "));
        assert!(client.send("QUIT").await.starts_with("221 "));

        let mails = smtp.wait_for(1, Duration::from_secs(1)).await;
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].from, "noreply@work4life.test");
        assert_eq!(mails[0].to, ["amina@example.org", "coach@example.org"]);
        assert_eq!(mails[0].data, "Subject: Benvenuta\r\n\r\n.a line starting with a dot\r\nsecond line\r\n");
    }

    #[tokio::test]
    async fn smtp_rset_forgets_the_envelope() {
        let smtp = SmtpServer::start().await;
        let mut client = Dialogue(BufReader::new(TcpStream::connect((smtp.host(), smtp.port())).await.expect("connect")));
        client.reply().await;
        assert!(client.send("HELO client.test").await.starts_with("250 "));
        client.send("MAIL FROM:<a@example.org>").await;
        client.send("RCPT TO:<b@example.org>").await;
        assert!(client.send("RSET").await.starts_with("250 "));
        assert!(client.send("DATA").await.starts_with("503 "));
        assert!(smtp.messages().is_empty());
    }
}
