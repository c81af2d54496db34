//! The forwarder: takes events from the spool to the server, oldest first,
//! with the event's id fixed by its destination and key, so a forward that
//! is repeated (a lost answer, a restart) is a duplicate at the server, not
//! a second delivery. While the server cannot be reached it backs off, from
//! 200 ms up to 30 s; events stay in the spool meanwhile.

use std::sync::Arc;
use std::time::Duration;

use ferry_client::api::{ApiClient, ApiError};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::spool::{Forward, Spool, Spooled};

/// Events read from the spool per round.
const ROUND: u32 = 256;
/// Forwards in flight at once.
const CONCURRENCY: usize = 16;
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often an idle forwarder looks at the spool anyway.
const IDLE_POLL: Duration = Duration::from_secs(5);

/// Runs until `stop`; an unfinished round is abandoned (its events stay
/// spooled and are forwarded again at the next start).
pub(crate) async fn run(spool: Arc<Spool>, client: ApiClient, stop: CancellationToken) {
    let mut backoff = BACKOFF_MIN;
    loop {
        if stop.is_cancelled() {
            return;
        }
        let round = match spool.oldest(ROUND).await {
            Ok(round) => round,
            Err(error) => {
                warn!(%error, "Reading the spool failed; trying again.");
                if pause(&stop, backoff).await {
                    return;
                }
                continue;
            }
        };
        if round.is_empty() {
            tokio::select! {
                () = stop.cancelled() => return,
                () = spool.added.notified() => {}
                () = tokio::time::sleep(IDLE_POLL) => {}
            }
            continue;
        }
        let outcomes: Vec<(Spooled, Forward)> = tokio::select! {
            () = stop.cancelled() => return,
            outcomes = futures::stream::iter(round)
                .map(|event| {
                    let client = &client;
                    async move {
                        let outcome = forward(client, &event).await;
                        (event, outcome)
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .collect() => outcomes,
        };
        let later = outcomes
            .iter()
            .rev()
            .find_map(|(_, outcome)| match outcome {
                Forward::Later(error) => Some(error.clone()),
                _ => None,
            });
        for (event, outcome) in &outcomes {
            if let Forward::Refused { message, .. } = outcome {
                warn!(event = %event.event_id, %message, "Ferry refused a spooled event for good.");
            }
        }
        if let Err(error) = spool.settle(&outcomes).await {
            warn!(%error, "Recording forwards in the spool failed; they will be forwarded again.");
        }
        match later {
            None => backoff = BACKOFF_MIN,
            Some(error) => {
                if backoff == BACKOFF_MIN {
                    info!(%error, "Ferry cannot take spooled events now; they wait in the spool.");
                } else {
                    debug!(%error, ?backoff, "Still waiting for Ferry.");
                }
                if pause(&stop, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Sleeps `d` unless stopped first; true when stopped.
async fn pause(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        () = stop.cancelled() => true,
        () = tokio::time::sleep(d) => false,
    }
}

async fn forward(client: &ApiClient, event: &Spooled) -> Forward {
    let body: Value = match serde_json::from_str(&event.body) {
        Ok(body) => body,
        Err(e) => {
            return Forward::Refused {
                code: None,
                message: format!("the spooled event cannot be read: {e}"),
            };
        }
    };
    let path = format!("/v1/destinations/{}/events", event.destination_id);
    match client.post(&path, &body).await {
        Ok(answer) => {
            let id = answer.body.get("id").and_then(Value::as_str);
            if id != Some(event.event_id.as_str()) {
                warn!(spooled = %event.event_id, answered = ?id, "Ferry gave a spooled event another id.");
            }
            Forward::Taken
        }
        Err(error) => match error.downcast_ref::<ApiError>() {
            Some(refused) if permanent(refused.status) => Forward::Refused {
                code: Some(refused.status.as_u16().to_string()),
                message: refused.to_string(),
            },
            Some(refused) => Forward::Later(refused.to_string()),
            None => Forward::Later(format!("{error:#}")),
        },
    }
}

/// Answers that repeating cannot change: the event or its destination is
/// wrong. A refused key (401, 403) is not among them: the operator may fix
/// the key, and the events must still be there then.
fn permanent(status: StatusCode) -> bool {
    status.is_client_error()
        && !matches!(
            status,
            StatusCode::UNAUTHORIZED
                | StatusCode::FORBIDDEN
                | StatusCode::REQUEST_TIMEOUT
                | StatusCode::TOO_MANY_REQUESTS
        )
}
