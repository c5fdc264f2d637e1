//! Drives the refresh machine of [`crate::refresh`]: every event goes through
//! [`dispatch`], which steps the machine and carries out its effects. This is where the
//! refresh does its I/O (the lock, storage, the request, timers); what to do next is
//! never decided here.

use baton_shared::RefreshRequest;
use futures::channel::oneshot;
use futures::future::{select, Either, LocalBoxFuture};
use gloo_timers::callback::Timeout;
use gloo_timers::future::TimeoutFuture;

use super::{
    config, end_session, lock, now_ms, send_proved, session, set_connection, set_session, storage,
    stored_session, with, Persist,
};
use crate::error::ClientError;
use crate::refresh::{
    self, spent_mark, Ctx, Io, Outcome, Reply, Ticket, CATCH_UP_POLL_MS, SPENT_MARK_MS,
};
use crate::status::EndReason;
use crate::{json_body, Answer};

type Waiter = oneshot::Sender<Outcome>;
pub(super) type Machine = refresh::Machine<Waiter, lock::Held>;
type Event = refresh::Event<Waiter, lock::Held>;
type Effect = refresh::Effect<Waiter, lock::Held>;

/// Makes sure this tab holds an access token other than `stale_access` that it can
/// send: at once if it does, else after the refresh (joined if one is in flight).
pub(crate) async fn refresh_after(stale_access: &str) -> Outcome {
    let (waiter, outcome) = oneshot::channel();
    dispatch(Event::Need {
        stale_access: stale_access.to_owned(),
        held: session(),
        waiter,
    });
    // The caller stops waiting at the deadline; the refresh carries on for later calls.
    let deadline = TimeoutFuture::new(config().call_deadline_ms);
    match select(outcome, deadline).await {
        Either::Left((outcome, _)) => outcome.unwrap_or(Err(ClientError::SessionEnded)),
        Either::Right(_) => Err(ClientError::Network("no new tokens in time".into())),
    }
}

/// Ends a backoff now (not a server's `Retry-After`).
pub(crate) fn retry_now() {
    dispatch(Event::Wake);
}

/// Another tab changed the stored session: a backoff looks at it now.
pub(crate) fn look_again() {
    dispatch(Event::Stored);
}

/// Steps the machine, then carries out its effects in order (with no borrow held, so an
/// effect may dispatch again).
fn dispatch(event: Event) {
    let ctx = Ctx {
        now_ms: now_ms(),
        jitter: js_sys::Math::random(),
        backoff: config().backoff,
    };
    let effects = with(|rt| rt.refresh.borrow_mut().step(event, &ctx));
    for effect in effects {
        perform(effect);
    }
}

fn perform(effect: Effect) {
    match effect {
        Effect::Io(ticket, Io::Sleep(ms)) => {
            let timer = Timeout::new(ms, move || dispatch(Event::Slept { ticket }));
            // Replacing a previous timer cancels it.
            with(|rt| *rt.backoff_timer.borrow_mut() = Some(timer));
        }
        // Its own task, so it finishes (and the lock is released) even if every caller
        // stops waiting.
        Effect::Io(ticket, io) => {
            wasm_bindgen_futures::spawn_local(async move { dispatch(run(ticket, io).await) })
        }
        Effect::Unlock(lock) => lock.release(),
        Effect::Adopt(s) => set_session(Some(s), Persist::No),
        Effect::Store(s) => set_session(Some(s), Persist::Yes),
        Effect::StoreWait(s) => {
            if !with(|rt| rt.memory_only.get()) {
                let _ = storage::save_session(&config().storage_key, &s);
            }
            set_session(Some(s), Persist::No);
        }
        Effect::End(reason, session_id) => end_session(reason, session_id),
        Effect::EndHeld => {
            if let Some(s) = session() {
                end_session(EndReason::SignedOutElsewhere, s.session_id);
            }
        }
        Effect::Connection(connection) => set_connection(connection),
        Effect::Settle(waiters, outcome) => {
            for waiter in waiters {
                let _ = waiter.send(outcome.clone());
            }
        }
    }
}

/// `POST /api/auth/refresh` with `refresh_token`, with a proof by its session's DPoP
/// key. Owns what it needs, so it can outlive the wait for it.
fn send_refresh(refresh_token: String) -> LocalBoxFuture<'static, Result<Answer, ClientError>> {
    Box::pin(async move {
        let key = [stored_session(), session()]
            .into_iter()
            .flatten()
            .find(|s| s.refresh_token == refresh_token)
            .and_then(|s| s.dpop_key);
        let body = json_body(&RefreshRequest { refresh_token });
        let url = config().url("/api/auth/refresh");
        send_proved(&url, body.as_deref(), key.as_deref()).await
    })
}

/// Carries out `io`; the event it ends in.
async fn run(ticket: Ticket, io: Io) -> Event {
    let config = config();
    let lock_name = config.lock_name();
    match io {
        Io::Lock => {
            let lock = lock::acquire(lock_name).await;
            Event::Locked {
                ticket,
                lock,
                stored: stored_session(),
            }
        }
        Io::CheckMark(token) => {
            let marked = lock::is_held(&spent_mark(&lock_name, &token)).await;
            Event::Checked {
                ticket,
                marked,
                stored: stored_session(),
            }
        }
        Io::Poll => {
            TimeoutFuture::new(CATCH_UP_POLL_MS).await;
            Event::Polled {
                ticket,
                stored: stored_session(),
            }
        }
        Io::Send(refresh_token) => {
            let presented = refresh_token.clone();
            let mut exchange = send_refresh(refresh_token);
            let timeout = TimeoutFuture::new(config.refresh_timeout_ms);
            let reply = match select(&mut exchange, timeout).await {
                Either::Left((answer, _)) => Reply::read(answer),
                // Given up on, so that a retry is still inside the server's grace window;
                // the answer is still used if it comes (`Late`).
                Either::Right(_) => {
                    wasm_bindgen_futures::spawn_local(async move {
                        let reply = Reply::read(exchange.await);
                        dispatch(Event::Late {
                            presented,
                            reply,
                            stored: stored_session(),
                        });
                    });
                    Reply::Failed {
                        retry_after_ms: None,
                    }
                }
            };
            Event::Answered {
                ticket,
                reply,
                stored: stored_session(),
            }
        }
        Io::Mark(token) => {
            lock::hold_for(&spent_mark(&lock_name, &token), SPENT_MARK_MS).await;
            Event::Marked {
                ticket,
                stored: stored_session(),
            }
        }
        // Started in `perform`, as a timer it can cancel.
        Io::Sleep(_) => Event::Slept { ticket },
    }
}
