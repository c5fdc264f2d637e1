//! Outside the browser (server-side rendering) there is no storage and no fetch: no
//! session, and every request answers [`ClientError::Unsupported`].

use std::rc::Rc;

use baton_shared::User;

use crate::error::ClientError;
use crate::status::{EndHandler, Listeners, Snapshot};
use crate::{Answer, Config, Method, Subscription};

thread_local! {
    static LISTENERS: std::cell::RefCell<Listeners> = Default::default();
}

pub(crate) fn init(_config: Config) {}

pub(crate) fn snapshot() -> Snapshot {
    Snapshot::default()
}

pub(crate) fn subscribe(listener: Rc<dyn Fn(&Snapshot)>) -> Subscription {
    LISTENERS.with(|l| l.borrow_mut().add(listener))
}

pub(crate) fn unsubscribe(subscription: Subscription) {
    LISTENERS.with(|l| l.borrow_mut().remove(subscription))
}

pub(crate) fn set_session_end_handler(_handler: Option<EndHandler>) {}

pub(crate) fn retry_now() {}

pub(crate) async fn send_public(
    _method: Method,
    _path: &str,
    _body: Option<String>,
) -> Result<Answer, ClientError> {
    Err(ClientError::Unsupported)
}

pub(crate) async fn send_authed(
    _method: Method,
    _path: &str,
    _body: Option<String>,
) -> Result<Answer, ClientError> {
    Err(ClientError::Unsupported)
}

pub(crate) async fn log_in(_body: Option<String>) -> Result<User, ClientError> {
    Err(ClientError::Unsupported)
}

pub(crate) fn take_session() -> Vec<String> {
    Vec::new()
}

pub(crate) async fn log_out_on_server(_tokens: Vec<String>) -> Result<(), ClientError> {
    Err(ClientError::Unsupported)
}
