//! Parking for waiting syncs: a `sync_messages` call that has to wait does so outside rmcp.
//!
//! rmcp serves each stateless request with a session of its own (a service loop and a handler
//! task joined by three channels), about 45 KB while the request is open. A long-polling sync
//! keeps its request open for up to 45 s, so with ten thousand waiters those sessions would be
//! most of the server's memory. A sync that finds nothing new parks instead:
//!
//! 1. [`park_waiting_syncs`] gives each `/mcp` POST that names `sync_messages` a [`Parking`].
//! 2. The tool runs the sync's first step. When it is pending, the tool leaves the
//!    [`PendingSync`] in the parking and returns; rmcp's session ends, and the middleware drops
//!    its answer unsent.
//! 3. The middleware waits on the pending sync alone, then sends the same request through rmcp
//!    again, and the tool resumes the sync where it stopped; until it is ready.
//!
//! rmcp still checks and answers every request; it is only not kept waiting. A sync whose client
//! asked for progress notifications does not park: they need the session.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::Request;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use domain::{ErrorCode, Principal};
use rmcp::RoleServer;
use rmcp::handler::server::wrapper::Json;
use rmcp::service::RequestContext;
use service::{PendingSync, Service, SyncStep};

use super::args::Args;
use super::error::ToolError;
use crate::middleware::BufferedBody;
use crate::ops;
use crate::wire::{ErrorBody, SyncMessagesArgs, SyncMessagesOut};

/// Where a parked sync waits between two passes through rmcp.
#[derive(Clone, Default)]
pub struct Parking(Arc<Mutex<Option<PendingSync>>>);

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

    fn take(&self) -> Option<PendingSync> {
        self.0
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take()
    }

    fn put(&self, pending: PendingSync) {
        *self.0.lock().unwrap_or_else(|poison| poison.into_inner()) = Some(pending);
    }

    /// One step of the sync: resumes the parked one if there is one, else starts it. Parks it
    /// again when it still has to wait.
    pub(super) async fn sync_step(
        &self,
        service: &Service,
        who: &Principal,
        args: Args<SyncMessagesArgs>,
    ) -> Result<Json<SyncMessagesOut>, ToolError> {
        let step = match self.take() {
            Some(pending) => service.resume_sync(pending).await?,
            None => {
                service
                    .start_sync(who, ops::sync_request(args.into_inner()?))
                    .await?
            }
        };
        match step {
            SyncStep::Ready(page) => Ok(Json(ops::sync_page(page, who))),
            SyncStep::Pending(pending) => {
                self.put(pending);
                // rmcp serializes this, and the middleware drops it.
                Err(ToolError(ErrorBody {
                    code: ErrorCode::Internal.as_str(),
                    message: "the sync is parked; this answer is never sent".into(),
                    hint: String::new(),
                }))
            }
        }
    }
}

/// Runs `/mcp` POSTs that name `sync_messages` with a [`Parking`], and waits out every park.
pub async fn park_waiting_syncs(request: Request, next: Next) -> Response {
    let body = match request.extensions().get::<BufferedBody>() {
        Some(BufferedBody(body)) if request.method() == Method::POST && names_sync(body) => {
            body.clone()
        }
        _ => return next.run(request).await,
    };
    let (mut parts, first_body) = request.into_parts();
    let parking = Parking::default();
    parts.extensions.insert(parking.clone());
    let mut request = Request::from_parts(parts.clone(), first_body);
    loop {
        let response = next.clone().run(request).await;
        let Some(pending) = parking.take() else {
            return response;
        };
        drop(response);
        parking.put(pending.wait().await);
        request = Request::from_parts(parts.clone(), Body::from(body.clone()));
    }
}

/// Whether the body may be a `sync_messages` call. Only a shortcut: a body that names the tool
/// with JSON escapes is served unparked, which is correct, just heavier.
fn names_sync(body: &[u8]) -> bool {
    const NAME: &[u8] = b"\"sync_messages\"";
    body.windows(NAME.len()).any(|window| window == NAME)
}
