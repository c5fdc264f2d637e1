//! Integration tests: the real server on a free port, a fresh database per test,
//! real HTTP. Every test of a `db_tests!` list runs on SQLite and on PostgreSQL.

mod helpers;

mod hardening;

mod auth;
mod cluster;
mod dpop;
mod dpop_client;
mod dpop_key;
mod dpop_proofs;
mod failures;
mod input;
mod keys;
mod limits;
mod notes;
mod observability;
mod openapi;
mod operator;
mod passwords;
mod refresh;
mod restart;
mod sessions;
mod tokens;
