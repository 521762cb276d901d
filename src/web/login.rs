//! Signing in and out, and the first-run setup of the owner account.

use crate::web::extract::Form;
use crate::web::extract::Query;
use askama::Template;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::context::{ClientInfo, Layout};
use super::error::{AppError, AppResult};
use super::{AppState, Ctx};
use crate::auth::session;
use crate::service::{accounts, sign_in, ServiceError};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    username: String,
    next: String,
    error: Option<String>,
    /// "Sign in with …" when OpenID Connect is set up.
    sso_name: Option<String>,
    /// Local passwords on for everyone (off: the form is only for the break-glass owner).
    passwords: bool,
}

impl LoginPage {
    fn new(
        state: &AppState,
        csrf: String,
        username: String,
        next: String,
        error: Option<String>,
    ) -> Self {
        LoginPage {
            layout: Layout::anonymous(state, "Sign in", csrf),
            username,
            next,
            error,
            sso_name: state.oidc.as_ref().map(|o| o.settings.display_name.clone()),
            passwords: state.config.sso.local_passwords,
        }
    }
}

#[derive(Deserialize)]
pub struct NextQuery {
    pub next: Option<String>,
}

/// Where to go after sign-in: a path on this site, otherwise `/` (no open redirect).
///
/// Judged the way a browser will read it: browsers delete tab, CR and LF anywhere in a URL and
/// treat `\` as `/`, so `/<TAB>/evil.example` and `/\evil.example` both become `//evil.example`,
/// another site. Other control characters are refused outright (they would also make the
/// `Location` header invalid). What is returned is the cleaned form the browser would use.
pub(crate) fn safe_next(next: Option<&str>) -> String {
    let Some(next) = next else {
        return "/".to_owned();
    };
    let seen: String = next
        .chars()
        .filter(|c| !matches!(c, '\t' | '\r' | '\n'))
        .map(|c| if c == '\\' { '/' } else { c })
        .collect();
    let local =
        seen.starts_with('/') && !seen.starts_with("//") && !seen.chars().any(char::is_control);
    if local {
        seen
    } else {
        "/".to_owned()
    }
}

pub async fn form(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<NextQuery>,
) -> AppResult<Response> {
    if session::login_of(&session).await.is_some() {
        return Ok(Redirect::to(&safe_next(query.next.as_deref())).into_response());
    }
    if !accounts::exist(&state).await? {
        return Ok(Html(render_setup_hint(&state)?).into_response());
    }
    let csrf = session::csrf_token(&session).await?;
    let page = LoginPage::new(
        &state,
        csrf,
        String::new(),
        safe_next(query.next.as_deref()),
        None,
    );
    crate::web::page::render(axum::http::StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

pub async fn submit(
    State(state): State<AppState>,
    session: Session,
    client: ClientInfo,
    Form(form): Form<LoginForm>,
) -> AppResult<Response> {
    let username = form.username.trim().to_owned();
    let refusal =
        match sign_in::with_password(&state, &client.source(), &username, form.password).await? {
            Ok(account) => {
                session::sign_in(&session, &account, state.clock.now()).await?;
                return Ok(Redirect::to(&safe_next(form.next.as_deref())).into_response());
            }
            Err(refusal) => refusal,
        };
    let csrf = session::csrf_token(&session).await?;
    let page = LoginPage::new(
        &state,
        csrf,
        username,
        safe_next(form.next.as_deref()),
        Some(refusal.message().to_owned()),
    );
    let status = if refusal == sign_in::PasswordRefusal::Throttled {
        axum::http::StatusCode::TOO_MANY_REQUESTS
    } else {
        axum::http::StatusCode::UNAUTHORIZED
    };
    crate::web::page::render(status, &page)
}

pub async fn logout(ctx: Ctx) -> AppResult<Response> {
    sign_in::sign_out(&ctx.state, &ctx.caller()).await?;
    session::sign_out(&ctx.session).await?;
    Ok(Redirect::to("/login").into_response())
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    layout: Layout,
    token: String,
    username: String,
    error: Option<String>,
    valid: bool,
}

fn render_setup_hint(state: &AppState) -> AppResult<String> {
    let page = SetupPage {
        layout: Layout::anonymous(state, "First-run setup", String::new()),
        token: String::new(),
        username: String::new(),
        error: None,
        valid: false,
    };
    Ok(page.render().map_err(anyhow::Error::from)?)
}

fn token_is_valid(state: &AppState, token: &str) -> bool {
    let guard = state.setup.lock().expect("setup lock");
    guard.as_ref().is_some_and(|setup| {
        setup.expires_at > state.clock.now()
            && setup.token.len() == token.len()
            && setup
                .token
                .bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    })
}

#[derive(Deserialize)]
pub struct SetupQuery {
    token: Option<String>,
}

pub async fn setup_form(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<SetupQuery>,
) -> AppResult<Response> {
    let token = query.token.unwrap_or_default();
    let valid = token_is_valid(&state, &token) && !accounts::exist(&state).await?;
    let csrf = session::csrf_token(&session).await?;
    let page = SetupPage {
        layout: Layout::anonymous(&state, "First-run setup", csrf),
        token,
        username: String::new(),
        error: None,
        valid,
    };
    let status = if valid {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::FORBIDDEN
    };
    crate::web::page::render(status, &page)
}

#[derive(Deserialize)]
pub struct SetupForm {
    token: String,
    username: String,
    password: String,
    confirm: String,
}

pub async fn setup_submit(
    State(state): State<AppState>,
    session: Session,
    client: ClientInfo,
    Form(form): Form<SetupForm>,
) -> AppResult<Response> {
    if !token_is_valid(&state, &form.token) || accounts::exist(&state).await? {
        return Err(AppError::Forbidden);
    }
    let username = form.username.trim().to_owned();
    let error = if form.password != form.confirm {
        "The two passwords are not the same.".to_owned()
    } else {
        match accounts::create_first_owner(&state, client.source(), &username, &form.password).await
        {
            Ok(account) => {
                state.setup.lock().expect("setup lock").take();
                session::sign_in(&session, &account, state.clock.now()).await?;
                return Ok(Redirect::to("/").into_response());
            }
            Err(ServiceError::Invalid(message)) => message,
            Err(other) => return Err(other.into()),
        }
    };
    let csrf = session::csrf_token(&session).await?;
    let page = SetupPage {
        layout: Layout::anonymous(&state, "First-run setup", csrf),
        token: form.token,
        username,
        error: Some(error),
        valid: true,
    };
    crate::web::page::render(axum::http::StatusCode::UNPROCESSABLE_ENTITY, &page)
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_paths_on_this_site_survive_as_the_sign_in_destination() {
        let kept = [
            ("/", "/"),
            ("/members", "/members"),
            ("/members?q=a%20b&page=2#top", "/members?q=a%20b&page=2#top"),
            ("/usage/cost?from=2025-01-01", "/usage/cost?from=2025-01-01"),
            ("/a:b", "/a:b"),
            ("/caf\u{e9}", "/caf\u{e9}"),
        ];
        for (input, expected) in kept {
            assert_eq!(safe_next(Some(input)), expected, "{input:?}");
        }
        let refused = [
            "",
            "members",
            "//evil.example",
            "//evil.example/x",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example/x",
            "/\r/evil.example",
            "/\n/evil.example",
            "\t//evil.example",
            "/\\\t\\evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            " //evil.example",
            "/\u{0}x",
            "/\u{1}x",
            "/x\u{7f}",
            "/x\u{85}y",
        ];
        for input in refused {
            assert_eq!(safe_next(Some(input)), "/", "{input:?}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn every_accepted_destination_is_a_valid_location_header() {
        for input in ["/ok", "/a b", "/caf\u{e9}", "/\u{1}", "/\t/x", "/x\u{2028}"] {
            let next = safe_next(Some(input));
            assert!(
                axum::http::HeaderValue::from_str(&next).is_ok(),
                "{input:?} gave {next:?}"
            );
        }
    }
}
