//! The browser side of Baton's token handling (see the crate's README section in the
//! workspace README).
