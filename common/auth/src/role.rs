//! The four roles, ordered: each one can do everything the ones below it can.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Analyst,
    Moderator,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Analyst, Role::Moderator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Moderator => "moderator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| {
                format!("{text:?} is not a role; use one of viewer, analyst, moderator, admin")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_from_viewer_to_admin() {
        assert!(Role::Viewer < Role::Analyst);
        assert!(Role::Analyst < Role::Moderator);
        assert!(Role::Moderator < Role::Admin);
    }

    #[test]
    fn roles_parse_by_name_and_refuse_the_rest() {
        assert_eq!("Admin".parse::<Role>(), Ok(Role::Admin));
        assert!(
            "root"
                .parse::<Role>()
                .unwrap_err()
                .contains("viewer, analyst")
        );
    }
}
