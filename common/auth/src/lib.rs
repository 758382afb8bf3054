//! Who may do what: roles, tokens, passwords, accounts (users, sessions, API keys), the table of
//! which role each route needs, and the middleware that enforces it. Shared by every role that
//! serves HTTP, so ingest and api check credentials the same way.

pub mod accounts;
pub mod guard;
pub mod password;
pub mod policy;
pub mod role;
pub mod secret;
pub mod tokens;

pub use accounts::{AccountError, Accounts};
pub use guard::{Principal, authorize};
pub use policy::Access;
pub use role::Role;
