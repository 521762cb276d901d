//! The route table: every route with the access it requires, declared once. The router is
//! built from it with a guard in front of every handler that checks the access before the
//! request body is even read (so a refused role gets a 403 and an audit record, never a
//! form-validation error), and the authorization test walks it (every route × every role), so
//! a route cannot be added without saying who may use it.

use axum::extract::{FromRequestParts, Request, State};
use axum::handler::Handler;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;

use super::{AppState, Ctx};
use crate::auth::{Permission, Role};

/// Who may use a route. The guard enforces it on the server; handlers check again where they
/// narrow it further (a team lead's workspaces).
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

/// A router under construction: each route with its access.
#[derive(Default)]
pub struct Routes {
    routes: Vec<(RouteSpec, MethodRouter<AppState>)>,
}

impl Routes {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get<H, T>(self, path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add("GET", path, access, get(handler))
    }

    pub fn post<H, T>(self, path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add("POST", path, access, post(handler))
    }

    fn add(
        mut self,
        method: &'static str,
        path: &'static str,
        access: Access,
        handler: MethodRouter<AppState>,
    ) -> Self {
        let spec = RouteSpec {
            method,
            path,
            access,
        };
        self.routes.push((spec, handler));
        self
    }

    pub fn merge(mut self, other: Routes) -> Self {
        self.routes.extend(other.routes);
        self
    }

    pub fn table(&self) -> Vec<RouteSpec> {
        self.routes.iter().map(|(spec, _)| spec.clone()).collect()
    }

    /// The router, each route behind the guard for its access.
    pub fn into_router(self, state: &AppState) -> Router<AppState> {
        self.routes
            .into_iter()
            .fold(Router::new(), |router, (spec, method_router)| {
                let method_router = match spec.access {
                    Access::Public => method_router,
                    access => method_router.route_layer(middleware::from_fn_with_state(
                        (state.clone(), access),
                        guard,
                    )),
                };
                router.route(spec.path, method_router)
            })
    }
}

/// Signs the person in from their session and checks the route's access; the checked `Ctx`
/// is handed to the handler through the request's extensions (no second lookup).
async fn guard(
    State((state, access)): State<(AppState, Access)>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let ctx = match Ctx::from_request_parts(&mut parts, &state).await {
        Ok(ctx) => ctx,
        Err(refusal) => return refusal.into_response(),
    };
    if let Access::Needs(permission) = access {
        if let Err(refusal) = ctx.require(permission).await {
            return refusal.into_response();
        }
    }
    parts.extensions.insert(ctx);
    next.run(Request::from_parts(parts, body)).await
}
