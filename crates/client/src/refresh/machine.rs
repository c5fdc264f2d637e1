//! The transitions of the table in [`super`]: one function per state that awaits
//! something, each returning the next state and the effects, in order.

use super::{Ctx, Effect, Event, Io, Outcome, Reply, Ticket, CATCH_UP_MS};
use crate::error::ClientError;
use crate::status::{Connection, EndReason};
use crate::stored::StoredSession;
use baton_shared::TokenPair;
use uuid::Uuid;

/// One refresh, from the first caller to the outcome.
struct Flight<W> {
    /// The session the flight refreshes: its callers want nothing of another.
    session_id: Uuid,
    /// The refresh token this tab held when the flight began: a stored session with
    /// another one was obtained by another tab meanwhile.
    known_refresh: String,
    /// Consecutive failed attempts.
    failures: u32,
    /// Woken from its backoff (back online, visible, "Retry now"): the next attempt
    /// need not wait out a client backoff, only a server's `Retry-After`.
    woken: bool,
    waiters: Vec<W>,
}

enum Phase<L> {
    Locking,
    Checking {
        lock: L,
        stored: StoredSession,
    },
    /// `stored` holds the refresh token another tab marked spent.
    CatchingUp {
        lock: L,
        stored: StoredSession,
        deadline: i64,
    },
    /// `stored` holds the refresh token presented.
    Requesting {
        lock: L,
        stored: StoredSession,
    },
    Marking {
        lock: L,
        stored: StoredSession,
        pair: TokenPair,
    },
    BackingOff,
}

// One per tab, moved on every step: boxing `Busy` would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum State<W, L> {
    Idle,
    Busy {
        flight: Flight<W>,
        phase: Phase<L>,
        /// The ticket of the I/O `phase` waits for.
        awaiting: Ticket,
    },
}

type Step<W, L> = (State<W, L>, Vec<Effect<W, L>>);

/// The refresh protocol of one tab (see the module documentation).
pub struct Machine<W, L> {
    state: State<W, L>,
    issued: u32,
}

impl<W, L> Default for Machine<W, L> {
    fn default() -> Self {
        Self {
            state: State::Idle,
            issued: 0,
        }
    }
}

impl<W, L> Machine<W, L> {
    /// The state's name, as in the table above.
    pub fn state(&self) -> &'static str {
        match &self.state {
            State::Idle => "Idle",
            State::Busy { phase, .. } => match phase {
                Phase::Locking => "Locking",
                Phase::Checking { .. } => "Checking",
                Phase::CatchingUp { .. } => "CatchingUp",
                Phase::Requesting { .. } => "Requesting",
                Phase::Marking { .. } => "Marking",
                Phase::BackingOff => "BackingOff",
            },
        }
    }

    /// Takes `event`; returns what to do, in order.
    pub fn step(&mut self, event: Event<W, L>, ctx: &Ctx) -> Vec<Effect<W, L>> {
        let state = std::mem::replace(&mut self.state, State::Idle);
        let (state, effects) = self.transition(state, event, ctx);
        self.state = state;
        effects
    }

    fn ticket(&mut self) -> Ticket {
        self.issued = self.issued.wrapping_add(1);
        Ticket(self.issued)
    }

    fn await_io(&mut self, flight: Flight<W>, phase: Phase<L>) -> (State<W, L>, Ticket) {
        let awaiting = self.ticket();
        let state = State::Busy {
            flight,
            phase,
            awaiting,
        };
        (state, awaiting)
    }

    fn transition(&mut self, state: State<W, L>, event: Event<W, L>, ctx: &Ctx) -> Step<W, L> {
        if let Event::Need {
            stale_access,
            held,
            waiter,
        } = event
        {
            return self.need(state, &stale_access, held, waiter, ctx);
        }
        if let Event::Late {
            presented,
            reply,
            stored,
        } = event
        {
            return self.late(state, &presented, reply, stored, ctx);
        }
        let State::Busy {
            mut flight,
            phase,
            awaiting,
        } = state
        else {
            return (State::Idle, stale(event));
        };
        if event.ticket().is_some_and(|ticket| ticket != awaiting) {
            let state = State::Busy {
                flight,
                phase,
                awaiting,
            };
            return (state, stale(event));
        }
        match (phase, event) {
            (Phase::BackingOff, Event::Wake) => {
                flight.woken = true;
                self.lock(flight)
            }
            (Phase::BackingOff, Event::Slept { .. } | Event::Stored) => self.lock(flight),
            (Phase::Locking, Event::Locked { lock, stored, .. }) => match stored {
                None => gone(flight, lock),
                Some(stored) => {
                    let token = stored.refresh_token.clone();
                    let (state, t) = self.await_io(flight, Phase::Checking { lock, stored });
                    (state, vec![Effect::Io(t, Io::CheckMark(token))])
                }
            },
            (
                Phase::Checking { lock, stored },
                Event::Checked {
                    marked,
                    stored: now,
                    ..
                },
            ) => {
                if marked {
                    let deadline = ctx.now_ms + CATCH_UP_MS;
                    self.catch_up(flight, lock, stored, deadline, now, ctx)
                } else {
                    self.decide(flight, lock, stored, ctx)
                }
            }
            (
                Phase::CatchingUp {
                    lock,
                    stored,
                    deadline,
                },
                Event::Polled { stored: now, .. },
            ) => self.catch_up(flight, lock, stored, deadline, now, ctx),
            (
                Phase::Requesting { lock, stored },
                Event::Answered {
                    reply, stored: now, ..
                },
            ) => match reply {
                Reply::Tokens(pair) if holds(&now, &stored) => {
                    let token = stored.refresh_token.clone();
                    let phase = Phase::Marking { lock, stored, pair };
                    let (state, t) = self.await_io(flight, phase);
                    (state, vec![Effect::Io(t, Io::Mark(token))])
                }
                Reply::Tokens(_) => self.moved_on(flight, lock, now, ctx),
                Reply::Refused(code) => {
                    let end = Effect::End(EndReason::Refused(code), stored.session_id);
                    let effects = vec![Effect::Unlock(lock), end];
                    done(flight, effects, Err(ClientError::SessionEnded))
                }
                Reply::Failed { retry_after_ms } => {
                    flight.failures = flight.failures.saturating_add(1);
                    let delay = ctx
                        .backoff
                        .delay_ms(flight.failures, ctx.jitter, retry_after_ms);
                    let server = ctx.now_ms + ctx.backoff.server_wait_ms(retry_after_ms);
                    let retry_at = ctx.now_ms + delay;
                    // Every tab waits too: the wait goes beside the tokens, if storage
                    // still holds the ones presented (else it is another session's).
                    let store = now.filter(|now| now.refresh_token == stored.refresh_token);
                    let store = store.map(|now| now.waiting(server, retry_at));
                    self.back_off(flight, lock, retry_at, store, ctx)
                }
            },
            (Phase::Marking { lock, stored, pair }, Event::Marked { stored: now, .. }) => {
                if !holds(&now, &stored) {
                    return self.moved_on(flight, lock, now, ctx);
                }
                let fresh = StoredSession::from_pair(pair, ctx.now_ms, stored.refreshes + 1)
                    .with_dpop_key(stored.dpop_key.clone());
                let effects = vec![Effect::Store(fresh), Effect::Unlock(lock)];
                done(flight, effects, Ok(()))
            }
            // A `Wake` or `Stored` outside `BackingOff`. (Any other pair cannot happen: a ticket
            // names one I/O, asked for by the phase that awaits it.)
            (phase, event) => {
                let state = State::Busy {
                    flight,
                    phase,
                    awaiting,
                };
                (state, stale(event))
            }
        }
    }

    fn need(
        &mut self,
        state: State<W, L>,
        stale_access: &str,
        held: Option<StoredSession>,
        waiter: W,
        ctx: &Ctx,
    ) -> Step<W, L> {
        let Some(held) = held else {
            let end = Effect::Settle(vec![waiter], Err(ClientError::SessionEnded));
            return (state, vec![end]);
        };
        // Another caller (or tab) refreshed meanwhile.
        if held.access_token != stale_access && held.access_usable(ctx.now_ms) {
            return (state, vec![Effect::Settle(vec![waiter], Ok(()))]);
        }
        match state {
            State::Idle => self.lock(Flight {
                session_id: held.session_id,
                known_refresh: held.refresh_token,
                failures: 0,
                woken: false,
                waiters: vec![waiter],
            }),
            State::Busy {
                mut flight,
                phase,
                awaiting,
            } => {
                flight.waiters.push(waiter);
                let state = State::Busy {
                    flight,
                    phase,
                    awaiting,
                };
                (state, Vec::new())
            }
        }
    }

    fn lock(&mut self, flight: Flight<W>) -> Step<W, L> {
        let (state, t) = self.await_io(flight, Phase::Locking);
        (state, vec![Effect::Io(t, Io::Lock)])
    }

    /// Waits for the successor of the token another tab marked spent, which `spent`
    /// holds, until `deadline`; `now` is what storage holds now.
    fn catch_up(
        &mut self,
        flight: Flight<W>,
        lock: L,
        spent: StoredSession,
        deadline: i64,
        now: Option<StoredSession>,
        ctx: &Ctx,
    ) -> Step<W, L> {
        match now {
            None => gone(flight, lock),
            Some(now) if now.refresh_token != spent.refresh_token || ctx.now_ms >= deadline => {
                self.decide(flight, lock, now, ctx)
            }
            Some(_) => {
                let phase = Phase::CatchingUp {
                    lock,
                    stored: spent,
                    deadline,
                };
                let (state, t) = self.await_io(flight, phase);
                (state, vec![Effect::Io(t, Io::Poll)])
            }
        }
    }

    /// Storage no longer holds the token the flight presented: `now` is what it holds.
    fn moved_on(
        &mut self,
        flight: Flight<W>,
        lock: L,
        now: Option<StoredSession>,
        ctx: &Ctx,
    ) -> Step<W, L> {
        match now {
            None => gone(flight, lock),
            Some(now) => self.decide(flight, lock, now, ctx),
        }
    }

    /// A late answer: stored if storage still holds the token it was asked with, and a
    /// flight backing off then ends on it.
    fn late(
        &mut self,
        state: State<W, L>,
        presented: &str,
        reply: Reply,
        stored: Option<StoredSession>,
        ctx: &Ctx,
    ) -> Step<W, L> {
        let (Reply::Tokens(pair), Some(stored)) = (reply, stored) else {
            return (state, Vec::new());
        };
        if stored.refresh_token != presented {
            return (state, Vec::new());
        }
        let fresh = StoredSession::from_pair(pair, ctx.now_ms, stored.refreshes + 1)
            .with_dpop_key(stored.dpop_key);
        let mut effects = vec![Effect::Store(fresh)];
        let state = match state {
            State::Busy {
                flight,
                phase: Phase::BackingOff,
                ..
            } => {
                let (state, more) = self.lock(flight);
                effects.extend(more);
                state
            }
            other => other,
        };
        (state, effects)
    }

    /// Lets go of the lock and waits until `retry_at` (having written `store` first,
    /// if given).
    fn back_off(
        &mut self,
        flight: Flight<W>,
        lock: L,
        retry_at: i64,
        store: Option<StoredSession>,
        ctx: &Ctx,
    ) -> Step<W, L> {
        let reconnecting = Connection::Reconnecting {
            failures: flight.failures.max(1),
            retry_at,
            cooling_down: ctx.backoff.cooling_down(flight.failures),
        };
        let (state, t) = self.await_io(flight, Phase::BackingOff);
        let wait = (retry_at - ctx.now_ms).clamp(0, i32::MAX as i64) as u32;
        let mut effects: Vec<_> = store.map(Effect::StoreWait).into_iter().collect();
        effects.extend([
            Effect::Unlock(lock),
            Effect::Connection(reconnecting),
            Effect::Io(t, Io::Sleep(wait)),
        ]);
        (state, effects)
    }

    /// Holding the lock with `stored` read: use another tab's tokens, wait out a
    /// failure's wait (this tab's or another's), or refresh.
    fn decide(
        &mut self,
        mut flight: Flight<W>,
        lock: L,
        stored: StoredSession,
        ctx: &Ctx,
    ) -> Step<W, L> {
        if stored.session_id != flight.session_id {
            let effects = vec![Effect::Adopt(stored), Effect::Unlock(lock)];
            return done(flight, effects, Err(ClientError::SessionEnded));
        }
        if stored.refresh_token != flight.known_refresh && stored.access_usable(ctx.now_ms) {
            let effects = vec![Effect::Adopt(stored), Effect::Unlock(lock)];
            return done(flight, effects, Ok(()));
        }
        if let Some(until) = stored.wait_until(ctx.now_ms, flight.woken) {
            return self.back_off(flight, lock, until, None, ctx);
        }
        flight.woken = false;
        let token = stored.refresh_token.clone();
        let (state, t) = self.await_io(flight, Phase::Requesting { lock, stored });
        (state, vec![Effect::Io(t, Io::Send(token))])
    }
}

/// True if storage (`now`) still holds the refresh token `presented` was read with.
fn holds(now: &Option<StoredSession>, presented: &StoredSession) -> bool {
    now.as_ref()
        .is_some_and(|now| now.refresh_token == presented.refresh_token)
}

/// The flight is over: back online, and every caller told `outcome`.
fn done<W, L>(flight: Flight<W>, mut effects: Vec<Effect<W, L>>, outcome: Outcome) -> Step<W, L> {
    effects.push(Effect::Connection(Connection::Online));
    effects.push(Effect::Settle(flight.waiters, outcome));
    (State::Idle, effects)
}

/// Nothing is stored any more: the user logged out in another tab.
fn gone<W, L>(flight: Flight<W>, lock: L) -> Step<W, L> {
    let effects = vec![Effect::Unlock(lock), Effect::EndHeld];
    done(flight, effects, Err(ClientError::SessionEnded))
}

/// What a stale event leaves to do: release the lock it brings.
fn stale<W, L>(event: Event<W, L>) -> Vec<Effect<W, L>> {
    match event {
        Event::Locked { lock, .. } => vec![Effect::Unlock(lock)],
        _ => Vec::new(),
    }
}
