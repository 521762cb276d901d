//! The route table: every route with the access it requires, declared once. The router is
//! built from it, and the authorization test walks it (every route × every role), so a route
//! cannot be added without saying who may use it.

use axum::handler::Handler;
use axum::routing::{get, post};
use axum::Router;

use super::AppState;
use crate::auth::{Permission, Role};

/// Who may use a route. Handlers enforce it on the server (`Ctx::require`); the table says
/// what they must enforce, and the authorization test checks that they do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not (sign-in, setup, health, assets).
    Public,
    /// Any signed-in account.
    SignedIn,
    /// Accounts whose role has this permission.
    Needs(Permission),
}

impl Access {
    pub fn allows(self, role: Role) -> bool {
        match self {
            Access::Public | Access::SignedIn => true,
            Access::Needs(permission) => role.can(permission),
        }
    }
}

#[derive(Clone, Debug)]
pub struct RouteSpec {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

/// A router under construction, and the table of what it holds.
#[derive(Default)]
pub struct Routes {
    router: Router<AppState>,
    table: Vec<RouteSpec>,
}

impl Routes {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get<H, T>(mut self, path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.router = self.router.route(path, get(handler));
        self.table.push(RouteSpec {
            method: "GET",
            path,
            access,
        });
        self
    }

    pub fn post<H, T>(mut self, path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.router = self.router.route(path, post(handler));
        self.table.push(RouteSpec {
            method: "POST",
            path,
            access,
        });
        self
    }

    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    pub fn into_parts(self) -> (Router<AppState>, Vec<RouteSpec>) {
        (self.router, self.table)
    }
}
