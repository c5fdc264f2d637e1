use baton_shared::User;

use super::*;

/// Callers and locks are numbers here: which caller was told what, which lock released.
type E = Event<u32, u32>;
type F = Effect<u32, u32>;

const NOW: i64 = 1_800_000_000_000;
const LOCK: u32 = 100;
const SESSION: Uuid = Uuid::from_u128(7);

fn pair(n: u32) -> TokenPair {
    TokenPair {
        access_token: format!("a{n}"),
        token_type: "Bearer".into(),
        expires_in: 900,
        refresh_token: format!("r{n}"),
        refresh_expires_in: 7 * 24 * 3600,
        session_id: SESSION,
        user: User {
            id: Uuid::from_u128(1),
            username: "alice".into(),
            created_at: time::macros::datetime!(2026-11-24 10:00:00 UTC),
        },
    }
}

/// The session after `n - 1` refreshes (access `a<n>`, refresh `r<n>`), received now.
fn session(n: u32) -> StoredSession {
    StoredSession::from_pair(pair(n), NOW, n - 1)
}

/// Another user's session, logged in in another tab.
fn bob() -> StoredSession {
    let mut pair = pair(9);
    pair.session_id = Uuid::from_u128(8);
    pair.user.username = "bob".into();
    StoredSession::from_pair(pair, NOW, 0)
}

/// The same, received so long ago that its access token is about to expire.
fn expiring(n: u32) -> StoredSession {
    StoredSession::from_pair(pair(n), NOW - 899_000, n - 1)
}

fn ctx(now_ms: i64) -> Ctx {
    Ctx {
        now_ms,
        jitter: 0.5,
        backoff: Backoff::default(),
    }
}

fn t(n: u32) -> Ticket {
    Ticket(n)
}

fn need(waiter: u32) -> E {
    Event::Need {
        stale_access: "a1".into(),
        held: Some(session(1)),
        waiter,
    }
}

fn locked(ticket: u32, stored: Option<StoredSession>) -> E {
    Event::Locked {
        ticket: t(ticket),
        lock: LOCK,
        stored,
    }
}

fn checked(ticket: u32, marked: bool, stored: Option<StoredSession>) -> E {
    Event::Checked {
        ticket: t(ticket),
        marked,
        stored,
    }
}

fn polled(ticket: u32, stored: Option<StoredSession>) -> E {
    Event::Polled {
        ticket: t(ticket),
        stored,
    }
}

fn answered(ticket: u32, reply: Reply, stored: Option<StoredSession>) -> E {
    Event::Answered {
        ticket: t(ticket),
        reply,
        stored,
    }
}

/// The paths from `Idle` to each state, for caller 1 holding session 1.
fn locking() -> Vec<E> {
    vec![need(1)]
}
fn checking() -> Vec<E> {
    let mut path = locking();
    path.push(locked(1, Some(session(1))));
    path
}
fn requesting() -> Vec<E> {
    let mut path = checking();
    path.push(checked(2, false, Some(session(1))));
    path
}
fn catching_up() -> Vec<E> {
    let mut path = checking();
    path.push(checked(2, true, Some(session(1))));
    path
}
fn marking() -> Vec<E> {
    let mut path = requesting();
    path.push(answered(3, Reply::Tokens(pair(2)), Some(session(1))));
    path
}
/// `Checking`, the stored session being `stored`.
fn checking_with(stored: StoredSession) -> Vec<E> {
    let mut path = locking();
    path.push(locked(1, Some(stored)));
    path
}
/// Woken from a backoff, holding the lock again with `stored` read.
fn woken_with(stored: StoredSession) -> Vec<E> {
    let mut path = backing_off();
    path.push(Event::Wake);
    path.push(locked(5, Some(stored)));
    path
}
fn failed() -> Reply {
    Reply::Failed {
        retry_after_ms: None,
    }
}
/// Session `n` with a failure's wait stored beside it.
fn waiting(n: u32, server: i64, backoff: i64) -> StoredSession {
    session(n).waiting(server, backoff)
}
fn backing_off() -> Vec<E> {
    let mut path = requesting();
    let failed = Reply::Failed {
        retry_after_ms: None,
    };
    path.push(answered(3, failed, Some(session(1))));
    path
}

fn machine_after(path: Vec<E>) -> Machine<u32, u32> {
    let mut machine = Machine::default();
    for event in path {
        machine.step(event, &ctx(NOW));
    }
    machine
}

fn ended() -> Outcome {
    Err(ClientError::SessionEnded)
}

/// The effects of the end of a flight of caller 1.
fn done(mut effects: Vec<F>, outcome: Outcome) -> Vec<F> {
    effects.push(Effect::Connection(Connection::Online));
    effects.push(Effect::Settle(vec![1], outcome));
    effects
}

/// Backing off after a first failure: the lock released, sleeping `ms` (ticket `ticket`).
fn waits(ticket: u32, ms: u32) -> Vec<F> {
    vec![
        Effect::Unlock(LOCK),
        Effect::Connection(Connection::Reconnecting {
            failures: 1,
            retry_at: NOW + i64::from(ms),
            cooling_down: false,
        }),
        Effect::Io(t(ticket), Io::Sleep(ms)),
    ]
}

fn gone() -> Vec<F> {
    done(vec![Effect::Unlock(LOCK), Effect::EndHeld], ended())
}

fn adopted(stored: StoredSession) -> Vec<F> {
    done(vec![Effect::Adopt(stored), Effect::Unlock(LOCK)], Ok(()))
}

struct Row {
    what: &'static str,
    path: Vec<E>,
    now_ms: i64,
    event: E,
    state: &'static str,
    effects: Vec<F>,
}

fn row(what: &'static str, path: Vec<E>, event: E, state: &'static str, effects: Vec<F>) -> Row {
    Row {
        what,
        path,
        now_ms: NOW,
        event,
        state,
        effects,
    }
}

#[test]
fn transition_table() {
    let rows = vec![
        row(
            "a caller with no session is told it ended",
            vec![],
            Event::Need {
                stale_access: "a1".into(),
                held: None,
                waiter: 1,
            },
            "Idle",
            vec![Effect::Settle(vec![1], ended())],
        ),
        row(
            "a caller whose token another caller refreshed is told at once",
            vec![],
            Event::Need {
                stale_access: "a0".into(),
                held: Some(session(1)),
                waiter: 1,
            },
            "Idle",
            vec![Effect::Settle(vec![1], Ok(()))],
        ),
        row(
            "... also while a flight runs",
            requesting(),
            Event::Need {
                stale_access: "a0".into(),
                held: Some(session(1)),
                waiter: 2,
            },
            "Requesting",
            vec![Effect::Settle(vec![2], Ok(()))],
        ),
        row(
            "the first caller starts a flight",
            vec![],
            need(1),
            "Locking",
            vec![Effect::Io(t(1), Io::Lock)],
        ),
        row(
            "so does one holding a token about to expire",
            vec![],
            Event::Need {
                stale_access: "a0".into(),
                held: Some(expiring(1)),
                waiter: 1,
            },
            "Locking",
            vec![Effect::Io(t(1), Io::Lock)],
        ),
        row(
            "later callers join it",
            locking(),
            need(2),
            "Locking",
            vec![],
        ),
        row(
            "nothing stored under the lock: logged out in another tab",
            locking(),
            locked(1, None),
            "Idle",
            gone(),
        ),
        row(
            "a stored session: is its token marked spent?",
            locking(),
            locked(1, Some(session(1))),
            "Checking",
            vec![Effect::Io(t(2), Io::CheckMark("r1".into()))],
        ),
        row(
            "a lock granted for another ticket is released",
            locking(),
            locked(9, Some(session(1))),
            "Locking",
            vec![Effect::Unlock(LOCK)],
        ),
        row(
            "... also when idle",
            vec![],
            locked(1, Some(session(1))),
            "Idle",
            vec![Effect::Unlock(LOCK)],
        ),
        row(
            "not marked, the flight's own token: refresh it",
            checking(),
            checked(2, false, Some(session(1))),
            "Requesting",
            vec![Effect::Io(t(3), Io::Send("r1".into()))],
        ),
        row(
            "not marked, another tab's usable tokens: use them",
            vec![need(1), locked(1, Some(session(2)))],
            checked(2, false, Some(session(2))),
            "Idle",
            adopted(session(2)),
        ),
        row(
            "another tab's tokens, about to expire: refresh those",
            vec![need(1), locked(1, Some(expiring(2)))],
            checked(2, false, Some(expiring(2))),
            "Requesting",
            vec![Effect::Io(t(3), Io::Send("r2".into()))],
        ),
        row(
            "marked, and the new tokens are here already: use them",
            checking(),
            checked(2, true, Some(session(2))),
            "Idle",
            adopted(session(2)),
        ),
        row(
            "marked, the new tokens not here yet: wait for them",
            checking(),
            checked(2, true, Some(session(1))),
            "CatchingUp",
            vec![Effect::Io(t(3), Io::Poll)],
        ),
        row(
            "marked, and nothing stored any more",
            checking(),
            checked(2, true, None),
            "Idle",
            gone(),
        ),
        row(
            "still the spent token: read again",
            catching_up(),
            polled(3, Some(session(1))),
            "CatchingUp",
            vec![Effect::Io(t(4), Io::Poll)],
        ),
        row(
            "the new tokens arrived: use them",
            catching_up(),
            polled(3, Some(session(2))),
            "Idle",
            adopted(session(2)),
        ),
        Row {
            now_ms: NOW + CATCH_UP_MS,
            ..row(
                "they never came: present the old token (the server's grace answers)",
                catching_up(),
                polled(3, Some(session(1))),
                "Requesting",
                vec![Effect::Io(t(4), Io::Send("r1".into()))],
            )
        },
        row(
            "logged out in another tab while waiting",
            catching_up(),
            polled(3, None),
            "Idle",
            gone(),
        ),
        row(
            "new tokens, a session still stored: mark the presented token spent",
            requesting(),
            answered(3, Reply::Tokens(pair(2)), Some(session(1))),
            "Marking",
            vec![Effect::Io(t(4), Io::Mark("r1".into()))],
        ),
        row(
            "new tokens after a logout in another tab: not stored",
            requesting(),
            answered(3, Reply::Tokens(pair(2)), None),
            "Idle",
            gone(),
        ),
        row(
            "new tokens after another user logged in in another tab: not stored, callers not told Ok",
            requesting(),
            answered(3, Reply::Tokens(pair(2)), Some(bob())),
            "Idle",
            done(vec![Effect::Adopt(bob()), Effect::Unlock(LOCK)], ended()),
        ),
        row(
            "marked, but logged out meanwhile: not stored",
            marking(),
            Event::Marked {
                ticket: t(4),
                stored: None,
            },
            "Idle",
            gone(),
        ),
        row(
            "a late answer while backing off, storage still at the token it was asked with: stored",
            backing_off(),
            Event::Late {
                presented: "r1".into(),
                reply: Reply::Tokens(pair(2)),
                stored: Some(session(1)),
            },
            "Locking",
            vec![Effect::Store(session(2)), Effect::Io(t(5), Io::Lock)],
        ),
        row(
            "a late answer after storage moved on: dropped",
            backing_off(),
            Event::Late {
                presented: "r1".into(),
                reply: Reply::Tokens(pair(2)),
                stored: Some(bob()),
            },
            "BackingOff",
            vec![],
        ),
        row(
            "refused: the session ends",
            requesting(),
            answered(
                3,
                Reply::Refused(ErrorCode::RefreshTokenReused),
                Some(session(1)),
            ),
            "Idle",
            done(
                vec![
                    Effect::Unlock(LOCK),
                    Effect::End(EndReason::Refused(ErrorCode::RefreshTokenReused), SESSION),
                ],
                ended(),
            ),
        ),
        row(
            "failed: back off, honouring Retry-After",
            requesting(),
            answered(
                3,
                Reply::Failed {
                    retry_after_ms: Some(30_000),
                },
                Some(session(1)),
            ),
            "BackingOff",
            std::iter::once(Effect::StoreWait(waiting(1, NOW + 30_000, NOW + 30_000)))
                .chain(waits(4, 30_000))
                .collect(),
        ),
        row(
            "failed after storage moved on: back off, storing nothing",
            requesting(),
            answered(3, failed(), Some(bob())),
            "BackingOff",
            waits(4, 1_000),
        ),
        row(
            "a tab that did not fail waits out another tab's backoff",
            checking_with(waiting(1, 0, NOW + 5_000)),
            checked(2, false, Some(waiting(1, 0, NOW + 5_000))),
            "BackingOff",
            waits(3, 5_000),
        ),
        row(
            "... and a server's Retry-After",
            checking_with(waiting(1, NOW + 20_000, NOW + 20_000)),
            checked(2, false, Some(waiting(1, NOW + 20_000, NOW + 20_000))),
            "BackingOff",
            waits(3, 20_000),
        ),
        Row {
            now_ms: NOW + 5_000,
            ..row(
                "a wait that is over is no wait",
                checking_with(waiting(1, NOW + 5_000, NOW + 5_000)),
                checked(2, false, Some(waiting(1, NOW + 5_000, NOW + 5_000))),
                "Requesting",
                vec![Effect::Io(t(3), Io::Send("r1".into()))],
            )
        },
        row(
            "another tab's write ends the backoff early, to look at it",
            backing_off(),
            Event::Stored,
            "Locking",
            vec![Effect::Io(t(5), Io::Lock)],
        ),
        row(
            "... but a wait stored beside the same tokens still binds it",
            {
                let mut path = backing_off();
                path.push(Event::Stored);
                path.push(locked(5, Some(waiting(1, 0, NOW + 5_000))));
                path
            },
            checked(6, false, Some(waiting(1, 0, NOW + 5_000))),
            "BackingOff",
            waits(7, 5_000),
        ),
        row(
            "a woken tab skips the backoff",
            woken_with(waiting(1, 0, NOW + 5_000)),
            checked(6, false, Some(waiting(1, 0, NOW + 5_000))),
            "Requesting",
            vec![Effect::Io(t(7), Io::Send("r1".into()))],
        ),
        row(
            "... but never a server's Retry-After",
            woken_with(waiting(1, NOW + 20_000, NOW + 30_000)),
            checked(6, false, Some(waiting(1, NOW + 20_000, NOW + 30_000))),
            "BackingOff",
            waits(7, 20_000),
        ),
        row(
            "marked: store the new tokens, then let the next tab have the lock",
            marking(),
            Event::Marked {
                ticket: t(4),
                stored: Some(session(1)),
            },
            "Idle",
            done(
                vec![Effect::Store(session(2)), Effect::Unlock(LOCK)],
                Ok(()),
            ),
        ),
        row(
            "the backoff is over: try again",
            backing_off(),
            Event::Slept { ticket: t(4) },
            "Locking",
            vec![Effect::Io(t(5), Io::Lock)],
        ),
        row(
            "a wake-up ends the backoff early",
            backing_off(),
            Event::Wake,
            "Locking",
            vec![Effect::Io(t(5), Io::Lock)],
        ),
        row(
            "the timer of an earlier backoff is stale",
            backing_off(),
            Event::Slept { ticket: t(2) },
            "BackingOff",
            vec![],
        ),
        row(
            "an answer for another ticket is stale",
            requesting(),
            answered(2, Reply::Tokens(pair(2)), Some(session(1))),
            "Requesting",
            vec![],
        ),
        row(
            "a wake-up does nothing while a refresh runs",
            requesting(),
            Event::Wake,
            "Requesting",
            vec![],
        ),
        row("... or when idle", vec![], Event::Wake, "Idle", vec![]),
        row("nor does a storage change", vec![], Event::Stored, "Idle", vec![]),
    ];
    for row in rows {
        let mut machine = machine_after(row.path);
        let effects = machine.step(row.event, &ctx(row.now_ms));
        assert_eq!(machine.state(), row.state, "{}", row.what);
        assert_eq!(effects, row.effects, "{}", row.what);
    }
}

#[test]
fn the_table_in_the_documentation_names_every_state() {
    let doc = include_str!("../refresh.rs");
    for path in [
        vec![],
        locking(),
        checking(),
        catching_up(),
        requesting(),
        marking(),
        backing_off(),
    ] {
        let state = machine_after(path).state();
        assert!(doc.contains(&format!("| `{state}` |")), "{state}");
    }
}

#[test]
fn every_caller_of_a_flight_is_told_its_outcome() {
    let mut machine = machine_after(requesting());
    assert!(machine.step(need(2), &ctx(NOW)).is_empty());
    assert!(machine.step(need(3), &ctx(NOW)).is_empty());
    let refused = Reply::Refused(ErrorCode::SessionRevoked);
    let effects = machine.step(answered(3, refused, Some(session(1))), &ctx(NOW));
    assert_eq!(
        effects.last(),
        Some(&Effect::Settle(vec![1, 2, 3], ended()))
    );
}

/// The delay of every `Sleep` in `effects`.
fn sleeps(effects: &[F]) -> Vec<u32> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Io(_, Io::Sleep(ms)) => Some(*ms),
            _ => None,
        })
        .collect()
}

#[test]
fn failures_back_off_longer_and_the_next_flight_starts_afresh() {
    let failed = || Reply::Failed {
        retry_after_ms: None,
    };
    let mut machine = machine_after(requesting());
    let mut delays = Vec::new();
    let mut ticket = 3;
    for _ in 0..7 {
        delays.extend(sleeps(
            &machine.step(answered(ticket, failed(), Some(session(1))), &ctx(NOW)),
        ));
        // Slept, Locked, Checked: requesting again.
        machine.step(
            Event::Slept {
                ticket: t(ticket + 1),
            },
            &ctx(NOW),
        );
        machine.step(locked(ticket + 2, Some(session(1))), &ctx(NOW));
        machine.step(checked(ticket + 3, false, Some(session(1))), &ctx(NOW));
        assert_eq!(machine.state(), "Requesting");
        ticket += 4;
    }
    assert_eq!(delays, [1_000, 2_000, 4_000, 8_000, 16_000, 60_000, 60_000]);
    let effects = machine.step(
        answered(ticket, Reply::Tokens(pair(2)), Some(session(1))),
        &ctx(NOW),
    );
    assert_eq!(
        effects,
        vec![Effect::Io(t(ticket + 1), Io::Mark("r1".into()))]
    );
    let effects = machine.step(
        Event::Marked {
            ticket: t(ticket + 1),
            stored: Some(session(1)),
        },
        &ctx(NOW),
    );
    assert_eq!(machine.state(), "Idle");
    assert_eq!(effects[2], Effect::Connection(Connection::Online));

    let next = Event::Need {
        stale_access: "a2".into(),
        held: Some(session(2)),
        waiter: 2,
    };
    machine.step(next, &ctx(NOW));
    machine.step(locked(ticket + 2, Some(session(2))), &ctx(NOW));
    machine.step(checked(ticket + 3, false, Some(session(2))), &ctx(NOW));
    let effects = machine.step(answered(ticket + 4, failed(), None), &ctx(NOW));
    assert_eq!(sleeps(&effects), [1_000]);
}

fn answer(status: u16, body: &str, retry_after_ms: Option<i64>) -> Result<Answer, ClientError> {
    Ok(Answer {
        status,
        body: body.into(),
        retry_after_ms,
    })
}

#[test]
fn replies_are_read_from_the_answer() {
    let body = serde_json::to_string(&pair(2)).unwrap();
    assert_eq!(
        Reply::read(answer(200, &body, None)),
        Reply::Tokens(pair(2))
    );
    let failed = Reply::Failed {
        retry_after_ms: None,
    };
    assert_eq!(Reply::read(answer(200, "{}", None)), failed);
    assert_eq!(
        Reply::read(Err(ClientError::Network("offline".into()))),
        failed
    );
    assert_eq!(
        Reply::read(answer(
            401,
            r#"{"code":"refresh_token_reused","message":"reused"}"#,
            None
        )),
        Reply::Refused(ErrorCode::RefreshTokenReused)
    );
    assert_eq!(
        Reply::read(answer(429, "", Some(30_000))),
        Reply::Failed {
            retry_after_ms: Some(30_000)
        }
    );
    assert_eq!(Reply::read(answer(503, "<html>", None)), failed);
}

#[test]
fn the_mark_names_the_token_without_containing_it() {
    let token = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2FsZG8";
    let mark = spent_mark("baton.session.v1.refresh-lock", token);
    assert!(mark.starts_with("baton.session.v1.refresh-lock.spent."));
    assert!(!mark.contains(token));
    assert_eq!(mark, spent_mark("baton.session.v1.refresh-lock", token));
    // 16 hex digits after the prefix.
    let digest = mark.rsplit('.').next().unwrap();
    assert_eq!(digest.len(), 16);
    assert!(digest.chars().all(|c| c.is_ascii_hexdigit()));
}

#[test]
fn different_tokens_get_different_marks() {
    let marks: std::collections::HashSet<_> = (0..10_000)
        .map(|i| spent_mark("lock", &format!("token-{i}")))
        .collect();
    assert_eq!(marks.len(), 10_000);
    assert_ne!(spent_mark("lock", "a"), spent_mark("other", "a"));
}

#[test]
fn fnv1a_matches_the_published_test_vectors() {
    assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
}
