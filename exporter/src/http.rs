//! The HTTP server: `/metrics` (content-negotiated, gzip), landing page, the status page
//! (`crate::page`), health and readiness, optional TLS and basic auth, bounded
//! connections/scrapes/timeouts, graceful drain.
//!
//! TLS, basic auth and the extra response headers come from the web configuration file
//! (`crate::webconfig`); [`serve_with_reload`] loads it again on each reload signal (a file that
//! does not load keeps the running one), and the TLS certificate files are re-read when they
//! change, between handshakes.
//!
//! Every connection runs in its own task with a header-read timeout, so a client that sends half
//! a request and stalls holds one connection slot for at most that long and never delays other
//! scrapes. Scrapes run the registry encoder on a blocking thread, bounded by a semaphore and by
//! the scrape timeout (`X-Prometheus-Scrape-Timeout-Seconds` minus an offset).

use crate::basic_auth::{BasicAuth, Verdict};
use crate::collector::with_scrape_deadline;
use crate::config::{Config, ConfigError};
use crate::exposition::{encode_registry_to, negotiate, EncodeError};
use crate::page::{StatusPage, STATUS_PATH};
use crate::webconfig::{TlsError, TlsReloader, WebConfig, WebConfigError};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use std::convert::Infallible;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    WebConfig(#[from] WebConfigError),
    #[error("TLS configuration: {0}")]
    Tls(#[source] TlsError),
}

type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// A whole body with a `Content-Length`.
fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed()
}

/// The largest request head (request line and header fields) accepted; a larger one is
/// answered 431 Request Header Fields Too Large and the connection closed.
pub const MAX_REQUEST_HEAD: usize = 64 * 1024;

/// Size of the pieces a large exposition is sent in (after gzip, when asked).
const CHUNK: usize = 64 * 1024;
/// Pieces buffered between the encoder and the connection: the memory of a scrape in flight is
/// about `(CHUNK_QUEUE + 2) × CHUNK` plus the encoder's state, whatever the size of the table.
const CHUNK_QUEUE: usize = 4;

struct State {
    registry: Arc<Registry>,
    cfg: Config,
    /// Replaced whole when the web configuration file is reloaded.
    web: RwLock<Arc<WebState>>,
    scrapes: Arc<Semaphore>,
    ready: AtomicBool,
    /// The status page, when the binary gave one.
    page: Option<StatusPage>,
}

/// What the web configuration file makes of the server: TLS, basic auth, extra headers.
struct WebState {
    tls: Option<Arc<TlsReloader>>,
    auth: Option<Arc<BasicAuth>>,
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl WebState {
    fn new(web: &WebConfig) -> Result<Self, TlsError> {
        Ok(WebState {
            tls: web.tls_reloader()?,
            auth: BasicAuth::new(&web.basic_auth_users).map(Arc::new),
            // Names and values were checked when the file was loaded.
            headers: web
                .headers
                .iter()
                .filter_map(|(n, v)| {
                    Some((
                        header::HeaderName::from_bytes(n.as_bytes()).ok()?,
                        HeaderValue::from_str(v).ok()?,
                    ))
                })
                .collect(),
        })
    }
}

impl State {
    fn web(&self) -> Arc<WebState> {
        match self.web.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }
}

/// Serve until `shutdown` completes, then stop accepting, let open connections finish for at
/// most `limits.shutdown_drain`, and return.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    cfg: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    // The sender lives as long as the server, so the reload branch never fires.
    let (_never, reload) = watch::channel(());
    serve_full(listener, registry, cfg, None, shutdown, reload).await
}

/// [`serve`], and load the web configuration file again whenever `reload` is notified (the
/// daemon's SIGHUP): a file that does not load is logged and the running one stays in force.
/// New connections and requests see the new file; open connections keep their TLS session.
pub async fn serve_with_reload(
    listener: TcpListener,
    registry: Arc<Registry>,
    cfg: Config,
    shutdown: impl Future<Output = ()>,
    reload: watch::Receiver<()>,
) -> Result<(), ServeError> {
    serve_full(listener, registry, cfg, None, shutdown, reload).await
}

/// [`serve_with_reload`], with the status page at [`STATUS_PATH`] (linked from `/`) when `page`
/// is given. The page goes through the same request path as `/metrics`: TLS, basic auth, limits.
pub async fn serve_full(
    listener: TcpListener,
    registry: Arc<Registry>,
    cfg: Config,
    page: Option<StatusPage>,
    shutdown: impl Future<Output = ()>,
    mut reload: watch::Receiver<()>,
) -> Result<(), ServeError> {
    cfg.validate()?;
    let web = cfg.web_config()?;
    let web = WebState::new(&web).map_err(ServeError::Tls)?;
    let local = listener.local_addr().ok();
    tracing::info!(
        address = ?local,
        tls = web.tls.is_some(),
        basic_auth = web.auth.is_some(),
        path = %cfg.metrics_path,
        "metrics server listening"
    );
    let limits = cfg.limits.clone();
    let state = Arc::new(State {
        registry,
        scrapes: Arc::new(Semaphore::new(limits.max_concurrent_scrapes)),
        web: RwLock::new(Arc::new(web)),
        ready: AtomicBool::new(true),
        page,
        cfg,
    });
    reload.mark_unchanged();
    let mut reload_open = true;
    let conn_slots = Arc::new(Semaphore::new(limits.max_connections));
    let (drain_tx, drain_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while tasks.try_join_next().is_some() {}
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            r = reload.changed(), if reload_open => {
                match r {
                    Ok(()) => reload_web_config(&state).await,
                    Err(_) => reload_open = false,
                }
                continue;
            }
            p = Arc::clone(&conn_slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            // Waiting for a connection is where the server spends its time: hear reloads here.
            r = reload.changed(), if reload_open => {
                drop(permit);
                match r {
                    Ok(()) => reload_web_config(&state).await,
                    Err(_) => reload_open = false,
                }
                continue;
            }
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        let tls = state.web().tls.clone();
        let drain = drain_rx.clone();
        let span = tracing::debug_span!("http_conn", %peer);
        tasks.spawn(
            async move {
                let _permit = permit;
                match tls {
                    None => serve_conn(stream, peer, state, drain).await,
                    Some(reloader) => {
                        let config = match reloader.current_if_fresh() {
                            Some(c) => c,
                            // Reading the certificate files may block: not on a worker.
                            None => match tokio::task::spawn_blocking(move || reloader.refresh())
                                .await
                            {
                                Ok(c) => c,
                                Err(_) => return,
                            },
                        };
                        let acceptor = tokio_rustls::TlsAcceptor::from(config);
                        let hs = state.cfg.limits.tls_handshake_timeout;
                        match tokio::time::timeout(hs, acceptor.accept(stream)).await {
                            Ok(Ok(s)) => serve_conn(s, peer, state, drain).await,
                            Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                            Err(_) => tracing::debug!("TLS handshake timed out"),
                        }
                    }
                }
            }
            .instrument(span),
        );
    }
    drop(listener);
    state.ready.store(false, Ordering::SeqCst);
    let _ = drain_tx.send(true);
    let drain = limits.shutdown_drain;
    let open = tasks.len();
    tracing::info!(open, "metrics server draining");
    let all_done = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(drain, all_done).await.is_err() {
        tracing::warn!(
            left = tasks.len(),
            "drain timeout: closing remaining connections"
        );
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    tracing::info!("metrics server stopped");
    Ok(())
}

/// Load the web configuration file again; keep the running one if it does not load.
async fn reload_web_config(state: &Arc<State>) {
    let cfg = state.cfg.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        let web = cfg.web_config().map_err(|e| e.to_string())?;
        WebState::new(&web).map_err(|e| e.to_string())
    })
    .await;
    match loaded {
        Ok(Ok(web)) => {
            tracing::info!(
                tls = web.tls.is_some(),
                basic_auth = web.auth.is_some(),
                "web configuration file reloaded"
            );
            let new = Arc::new(web);
            match state.web.write() {
                Ok(mut g) => *g = new,
                Err(p) => *p.into_inner() = new,
            }
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "web configuration file refused on reload; the running one stays in force")
        }
        Err(e) => tracing::error!(error = %e, "web configuration reload task failed"),
    }
}

async fn serve_conn<S>(io: S, peer: SocketAddr, state: Arc<State>, mut drain: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc_state = Arc::clone(&state);
    let service = hyper::service::service_fn(move |req| {
        let state = Arc::clone(&svc_state);
        async move { Ok::<_, Infallible>(handle(req, state, peer).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(state.cfg.limits.header_read_timeout)
        // max_buf_size alone bounds the read buffer, which one read can overfill: heads of up
        // to twice the size were accepted. max_header_size is checked on the parsed head.
        .max_buf_size(MAX_REQUEST_HEAD)
        .max_header_size(MAX_REQUEST_HEAD)
        // A client may shut down its sending side once the request is out (`nc -N`, some
        // health checkers); it still gets its answer.
        .half_close(true)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut draining = *drain.borrow();
    if draining {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            changed = drain.changed(), if !draining => {
                draining = true;
                if changed.is_err() || *drain.borrow() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

fn text_response(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    state: Arc<State>,
    peer: SocketAddr,
) -> Response<Body> {
    let timeout = state.cfg.limits.request_timeout;
    let span = tracing::debug_span!("http_request", %peer, method = %req.method(), path = %req.uri().path());
    let web = state.web();
    let mut r = match tokio::time::timeout(
        timeout,
        route(req, Arc::clone(&state), &web).instrument(span),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => text_response(StatusCode::SERVICE_UNAVAILABLE, "request timed out\n"),
    };
    for (name, value) in &web.headers {
        r.headers_mut().insert(name.clone(), value.clone());
    }
    r
}

async fn route(
    req: Request<hyper::body::Incoming>,
    state: Arc<State>,
    web: &WebState,
) -> Response<Body> {
    if let Some(auth) = &web.auth {
        let hdr = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match auth.check(hdr).await {
            Verdict::Allowed => {}
            Verdict::Denied => {
                let mut r = text_response(StatusCode::UNAUTHORIZED, "Unauthorized\n");
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"ipvs-herald\""),
                );
                return r;
            }
            Verdict::Busy => {
                let mut r = text_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many password checks in progress\n",
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return r;
            }
        }
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text_response(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let path = req.uri().path();
    let cfg = &state.cfg;
    if path == cfg.metrics_path {
        metrics(req, state).await
    } else if path == "/" {
        landing(cfg, state.page.is_some())
    } else if let (STATUS_PATH, Some(page)) = (path, &state.page) {
        let timeout = scrape_timeout(&req, cfg);
        match page
            .render(cfg, &state.scrapes, timeout, req.uri().query())
            .await
        {
            Ok(html) => html_response(html),
            Err(e) => text_response(StatusCode::SERVICE_UNAVAILABLE, e),
        }
    } else if path == cfg.health_path {
        text_response(StatusCode::OK, "Healthy\n")
    } else if path == cfg.ready_path {
        if state.ready.load(Ordering::SeqCst) {
            text_response(StatusCode::OK, "Ready\n")
        } else {
            text_response(StatusCode::SERVICE_UNAVAILABLE, "Shutting down\n")
        }
    } else {
        text_response(StatusCode::NOT_FOUND, "Not Found\n")
    }
}

fn landing(cfg: &Config, status_page: bool) -> Response<Body> {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>ipvs-herald</title></head>\n<body>\n<h1>ipvs-herald {}</h1>\n<p>Prometheus exporter for Linux IPVS.</p>\n<ul>\n{s}<li><a href=\"{m}\">Metrics</a></li>\n<li><a href=\"{h}\">Health</a></li>\n<li><a href=\"{r}\">Readiness</a></li>\n</ul>\n</body></html>\n",
        env!("CARGO_PKG_VERSION"),
        m = esc(&cfg.metrics_path),
        h = esc(&cfg.health_path),
        r = esc(&cfg.ready_path),
        s = if status_page {
            "<li><a href=\"/status\">Status</a></li>"
        } else {
            ""
        },
    );
    html_response(html)
}

fn html_response(html: String) -> Response<Body> {
    let mut r = Response::new(full(html));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// The scrape timeout for a request: the Prometheus header minus the offset, else the default;
/// never more than the request timeout.
fn scrape_timeout(req: &Request<hyper::body::Incoming>, cfg: &Config) -> Duration {
    let l = &cfg.limits;
    let from_header = req
        .headers()
        .get("x-prometheus-scrape-timeout-seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0);
    let t = match from_header {
        Some(v) => {
            let with_offset = v - l.scrape_timeout_offset.as_secs_f64();
            // A timeout smaller than the offset: use 90 % of it rather than nothing.
            if with_offset > 0.0 {
                with_offset
            } else {
                v * 0.9
            }
        }
        None => l.default_scrape_timeout.as_secs_f64(),
    };
    // Seconds from a header, so any f64: saturate rather than panic.
    Duration::try_from_secs_f64(t.min(l.request_timeout.as_secs_f64())).unwrap_or(Duration::ZERO)
}

fn accepts_gzip(req: &Request<hyper::body::Incoming>) -> bool {
    let Some(v) = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    v.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.strip_prefix("q="))
            .filter_map(|q| q.trim().parse::<f64>().ok())
            .next()
            .unwrap_or(1.0);
        (coding == "gzip" || coding == "x-gzip") && q > 0.0
    })
}

async fn metrics(req: Request<hyper::body::Incoming>, state: Arc<State>) -> Response<Body> {
    let timeout = scrape_timeout(&req, &state.cfg);
    let deadline = tokio::time::Instant::now() + timeout;
    let format = negotiate(
        req.headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    );
    let gzip = accepts_gzip(&req);
    let span = tracing::info_span!("scrape", ?format, gzip, timeout_s = timeout.as_secs_f64());
    async move {
        let permit =
            match tokio::time::timeout_at(deadline, Arc::clone(&state.scrapes).acquire_owned())
                .await
            {
                Ok(Ok(p)) => p,
                _ => {
                    tracing::warn!("no scrape slot free within the scrape timeout");
                    return text_response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "too many concurrent scrapes\n",
                    );
                }
            };
        // The permit moves into the blocking job: it is released when the job ends (or is
        // dropped unrun), even if this request times out first, so blocking threads stay bounded.
        // The job streams the exposition in pieces through a bounded channel: a response that
        // fits in one piece is sent whole (with a Content-Length), a larger one chunked, so that
        // no scrape ever holds the whole exposition in memory.
        let st = Arc::clone(&state);
        let std_deadline = deadline.into_std();
        let (first_tx, first_rx) = oneshot::channel();
        let (tx, rx) = mpsc::channel(CHUNK_QUEUE);
        let handle = tokio::runtime::Handle::current();
        let job = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut w = ChunkWriter {
                buf: Vec::with_capacity(CHUNK),
                first: Some(first_tx),
                tx,
                deadline,
                handle,
            };
            let r = with_scrape_deadline(std_deadline, || {
                if gzip {
                    let mut enc =
                        flate2::write::GzEncoder::new(&mut w, flate2::Compression::fast());
                    encode_registry_to(&st.registry, format, &mut enc)?;
                    enc.finish()?;
                    Ok(())
                } else {
                    encode_registry_to(&st.registry, format, &mut w)
                }
            });
            w.end(r);
        });
        drop(job);
        match tokio::time::timeout_at(deadline, first_rx).await {
            Ok(Ok(First::Whole(body))) => metrics_response(format, gzip, full(body)),
            Ok(Ok(First::Streaming(piece))) => {
                let body = ChannelBody {
                    first: Some(piece),
                    rx,
                    deadline: Box::pin(tokio::time::sleep_until(deadline)),
                    timeout,
                };
                metrics_response(format, gzip, body.boxed())
            }
            Ok(Ok(First::Failed(e))) => {
                tracing::error!(error = %e, "cannot encode metrics");
                text_response(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n"))
            }
            Ok(Err(_)) => {
                tracing::error!("metrics encoding task failed");
                text_response(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
            }
            Err(_) => {
                tracing::warn!("scrape timed out");
                text_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("scrape timed out after {:.3}s\n", timeout.as_secs_f64()),
                )
            }
        }
    }
    .instrument(span)
    .await
}

fn metrics_response(format: crate::exposition::Format, gzip: bool, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r
}

/// How a scrape's encoding started: decides the status line before any byte is sent.
enum First {
    /// The whole exposition fitted in one piece.
    Whole(Vec<u8>),
    /// The first piece of a larger one; the rest follows on the channel.
    Streaming(Bytes),
    /// Encoding failed before anything was sent.
    Failed(String),
}

/// What follows the first piece on the channel.
enum Piece {
    Data(Bytes),
    /// The exposition is complete.
    End,
    /// Encoding failed half-way: the response is cut off (no terminating chunk), so the
    /// client sees a failed scrape rather than a silently truncated one.
    Failed(String),
}

/// The blocking encoder's output: gathers `CHUNK` bytes, then hands them to the connection.
/// Blocks (within the scrape deadline) while the queue is full, so a slow client slows the
/// encoder instead of making it buffer.
struct ChunkWriter {
    buf: Vec<u8>,
    first: Option<oneshot::Sender<First>>,
    tx: mpsc::Sender<Piece>,
    deadline: tokio::time::Instant,
    handle: tokio::runtime::Handle,
}

impl ChunkWriter {
    fn send_piece(&mut self) -> std::io::Result<()> {
        let data = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        if let Some(first) = self.first.take() {
            return first
                .send(First::Streaming(data))
                .map_err(|_| gone("the scrape was abandoned"));
        }
        self.send(Piece::Data(data))
    }

    fn send(&self, piece: Piece) -> std::io::Result<()> {
        let send = tokio::time::timeout_at(self.deadline, self.tx.send(piece));
        match self.handle.block_on(send) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(gone("the client went away")),
            Err(_) => Err(gone("the scrape deadline passed while sending")),
        }
    }

    /// Finish: send what is left and the end marker, or report the failure.
    fn end(mut self, r: Result<(), EncodeError>) {
        match r {
            Ok(()) => {
                if let Some(first) = self.first.take() {
                    let _ = first.send(First::Whole(std::mem::take(&mut self.buf)));
                    return;
                }
                let sent = if self.buf.is_empty() {
                    Ok(())
                } else {
                    self.send_piece()
                };
                match sent.and_then(|()| self.send(Piece::End)) {
                    Ok(()) => {}
                    Err(e) => tracing::debug!(error = %e, "scrape not delivered"),
                }
            }
            Err(e) => {
                if let Some(first) = self.first.take() {
                    let _ = first.send(First::Failed(e.to_string()));
                } else {
                    tracing::warn!(error = %e, "scrape cut off half-way");
                    let _ = self.send(Piece::Failed(e.to_string()));
                }
            }
        }
    }
}

fn gone(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::BrokenPipe, what.to_string())
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() >= CHUNK {
            self.send_piece()?;
        }
        let room = CHUNK.saturating_sub(self.buf.len()).max(1);
        let n = data.len().min(room);
        self.buf.extend_from_slice(data.get(..n).unwrap_or(data));
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A response body fed by the encoder's channel, ending in error (the connection is closed
/// without the final chunk) if the encoder fails, stops early, or the scrape deadline passes.
struct ChannelBody {
    first: Option<Bytes>,
    rx: mpsc::Receiver<Piece>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        if let Some(b) = this.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(b))));
        }
        match this.rx.poll_recv(cx) {
            Poll::Ready(Some(Piece::Data(b))) => Poll::Ready(Some(Ok(Frame::data(b)))),
            Poll::Ready(Some(Piece::End)) => Poll::Ready(None),
            Poll::Ready(Some(Piece::Failed(e))) => Poll::Ready(Some(Err(std::io::Error::other(e)))),
            Poll::Ready(None) => Poll::Ready(Some(Err(std::io::Error::other(
                "the metrics encoder stopped early",
            )))),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    tracing::warn!("scrape timed out while streaming; closing the connection");
                    Poll::Ready(Some(Err(std::io::Error::other(format!(
                        "scrape timed out after {:.3}s",
                        this.timeout.as_secs_f64()
                    )))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}
