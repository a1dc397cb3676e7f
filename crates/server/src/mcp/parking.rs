//! Parking for waiting syncs: a `sync_messages` call that has to wait does so outside rmcp.
//!
//! rmcp serves each stateless request with a session of its own (a service loop and a handler
//! task joined by three channels), about 45 KB while the request is open. A long-polling sync
//! keeps its request open for up to 45 s, so with ten thousand waiters those sessions would be
//! most of the server's memory. A sync that finds nothing new parks instead:
//!
//! 1. [`park_waiting_syncs`] gives each `/mcp` POST that names `sync_messages` a [`Parking`].
//! 2. rmcp checks the request and calls the tool, which runs the sync's first step. When the
//!    sync has to wait, the tool leaves a [`ParkedSync`] in the parking and returns; rmcp's
//!    session ends, and the middleware drops its answer unsent.
//! 3. The middleware waits on the parked sync alone, resumes it when the channel advances, and
//!    answers the request itself, framed as rmcp frames a tool result for the protocol version
//!    that the first pass negotiated.
//!
//! A sync whose client asked for progress notifications does not park: they need the session.
//!
//! First passes take turns ([`SYNC_FIRST_PASSES`] at once), so a burst of syncs does not hold a
//! session each at the same time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use rmcp::RoleServer;
use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::handler::server::wrapper::Json;
use rmcp::model::{ProtocolVersion, RequestId};
use rmcp::service::RequestContext;
use service::Caller;
use service::{PendingSync, Service, SyncStep};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::McpServer;
use super::args::Args;
use super::direct::framed;
use super::error::{PARKED, ToolError};
use crate::metrics::Metrics;
use crate::middleware::BufferedBody;
use crate::ops;
use crate::wire::{ErrorBody, SyncMessagesArgs, SyncMessagesOut};

/// Where a tool call leaves its sync when it has to wait.
#[derive(Clone, Default)]
pub struct Parking(Arc<Mutex<Option<ParkedSync>>>);

/// A waiting sync, with what it takes to answer its request later.
struct ParkedSync {
    pending: PendingSync,
    service: Service,
    who: Caller,
    request_id: RequestId,
    protocol_version: Option<ProtocolVersion>,
    /// Where the call is counted once answered, and when it began.
    metrics: Arc<Metrics>,
    started: Instant,
}

impl Parking {
    /// The parking of the request this tool call came in, unless the call cannot park.
    pub(super) fn of(context: &RequestContext<RoleServer>) -> Option<&Parking> {
        if context.meta.get_progress_token().is_some() {
            return None;
        }
        context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Parking>())
    }

    fn take(&self) -> Option<ParkedSync> {
        self.0
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take()
    }

    fn put(&self, parked: ParkedSync) {
        *self.0.lock().unwrap_or_else(|poison| poison.into_inner()) = Some(parked);
    }

    /// The tool's side: runs the sync's first step, and parks it if it has to wait.
    pub(super) async fn start_sync(
        &self,
        server: &McpServer,
        who: &Caller,
        args: Args<SyncMessagesArgs>,
        context: &RequestContext<RoleServer>,
    ) -> Result<Json<SyncMessagesOut>, ToolError> {
        let started = Instant::now();
        let service = &server.service;
        let request = ops::sync_request(args.into_inner()?);
        match service.start_sync(who, request).await? {
            SyncStep::Ready(page) => Ok(Json(ops::sync_page(page, who))),
            SyncStep::Pending(pending) => {
                self.put(ParkedSync {
                    pending,
                    service: service.clone(),
                    who: who.clone(),
                    request_id: context.id.clone(),
                    protocol_version: context.protocol_version(),
                    metrics: Arc::clone(&server.metrics),
                    started,
                });
                // rmcp serializes this, and the middleware drops it.
                Err(ToolError(ErrorBody {
                    code: PARKED,
                    message: "the sync is parked; this answer is never sent".into(),
                    hint: String::new(),
                }))
            }
        }
    }
}

impl ParkedSync {
    /// Waits until the sync is ready (or refused), then answers its request.
    async fn answer(self) -> Response {
        let ParkedSync {
            mut pending,
            service,
            who,
            request_id,
            protocol_version,
            metrics,
            started,
        } = self;
        // Counted as the tool call it answers, from the call's start; a panic in the resumed
        // sync is answered as a tool's would be.
        let call = async {
            let outcome = loop {
                match service.resume_sync(pending.wait().await).await {
                    Ok(SyncStep::Pending(still)) => pending = still,
                    Ok(SyncStep::Ready(page)) => break Ok(Json(ops::sync_page(page, &who))),
                    Err(error) => break Err(ToolError::from(error)),
                }
            };
            outcome.into_call_tool_result()
        };
        let outcome = super::counted(&metrics, "sync_messages", started, call).await;
        framed(outcome, request_id, protocol_version.as_ref())
    }
}

/// How many syncs may be in their first pass through rmcp at once.
///
/// Each pass holds a per-request rmcp session (about 45 KB) until the sync parks. Ten thousand
/// syncs arriving in the same instant used to hold ten thousand sessions, a peak of about
/// 700 MB; the others now wait their turn holding only their buffered request. A first pass
/// takes well under a millisecond, so the queue drains fast.
pub const SYNC_FIRST_PASSES: usize = 128;

/// The longest a sync waits for its turn before it goes through anyway: a pass that cannot
/// park (one a client disguised from [`names_progress`]) holds its turn for its whole wait,
/// and enough of them must not stall everyone else's syncs.
const TURN_WAIT: Duration = Duration::from_secs(1);

/// The turns for first passes, shared by every `/mcp` request of one application.
#[derive(Clone)]
pub struct FirstPasses(Arc<Semaphore>);

impl Default for FirstPasses {
    fn default() -> Self {
        FirstPasses(Arc::new(Semaphore::new(SYNC_FIRST_PASSES)))
    }
}

/// Runs `/mcp` POSTs that name `sync_messages` with a [`Parking`], a few at a time
/// ([`SYNC_FIRST_PASSES`]), and answers the syncs that park there.
pub async fn park_waiting_syncs(
    State(passes): State<FirstPasses>,
    mut request: Request,
    next: Next,
) -> Response {
    let body = request
        .extensions()
        .get::<BufferedBody>()
        .map(|BufferedBody(body)| body.clone());
    let may_sync = request.method() == Method::POST && body.as_deref().is_some_and(names_sync);
    if !may_sync {
        return next.run(request).await;
    }
    // A sync that asked for progress notifications waits inside its session, so it never
    // takes a turn: it would hold it for the whole wait.
    let turn = if body.as_deref().is_some_and(names_progress) {
        None
    } else {
        tokio::time::timeout(TURN_WAIT, Arc::clone(&passes.0).acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
    };
    let parking = Parking::default();
    request.extensions_mut().insert(parking.clone());
    let response = next.run(request).await;
    drop(turn);
    match parking.take() {
        Some(parked) => {
            drop(response);
            parked.answer().await
        }
        None => response,
    }
}

/// Whether the body may be a `sync_messages` call. Only a shortcut: a body that names the tool
/// with JSON escapes is served unparked, which is correct, just heavier.
fn names_sync(body: &[u8]) -> bool {
    contains(body, b"\"sync_messages\"")
}

/// Whether the body may ask for progress notifications (`_meta.progressToken`).
fn names_progress(body: &[u8]) -> bool {
    contains(body, b"\"progressToken\"")
}

fn contains(body: &[u8], needle: &[u8]) -> bool {
    body.windows(needle.len()).any(|window| window == needle)
}
