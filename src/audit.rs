//! Building audit events from what a handler knows about the request.

use crate::auth::client::ClientInfo;
use crate::db::events::{EventKind, NewEvent};

/// An event of `kind` for this client, now.
pub fn event(
    kind: EventKind,
    user_id: Option<i64>,
    session_id: Option<&str>,
    client: &ClientInfo,
) -> NewEvent {
    NewEvent {
        user_id,
        session_id: session_id.map(str::to_owned),
        kind,
        ip: Some(client.ip.clone()),
        user_agent: client.user_agent.clone(),
        created_at: crate::db::now(),
    }
}
