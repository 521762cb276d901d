//! The two pagination styles of the Admin API and bounded "fetch everything" loops over them.
//!
//! * ID-cursor lists (users, invites, workspaces, members, API keys): [`Page`], follow
//!   `last_id` as `after_id` while `has_more`.
//! * Page-token reports (usage, cost, Claude Code) and page-cursor lists (rate limits):
//!   [`ReportPage`], follow `next_page` as `page`.
//!
//! Every loop stops with [`ApiErrorKind::PaginationLimit`] after `max_pages` pages or when the
//! cursor does not advance, so a misbehaving server can never make the client loop forever.

use serde::{Deserialize, Deserializer, Serialize};

use super::error::{ApiError, ApiErrorKind};

/// One page of an ID-cursor list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct Page<T> {
    #[serde(default = "Vec::new", deserialize_with = "null_as_empty")]
    pub data: Vec<T>,
    /// More results exist in the requested direction.
    #[serde(default, deserialize_with = "null_as_false")]
    pub has_more: bool,
    /// First ID in `data`; pass as `before_id` for the previous page.
    #[serde(default)]
    pub first_id: Option<String>,
    /// Last ID in `data`; pass as `after_id` for the next page.
    #[serde(default)]
    pub last_id: Option<String>,
}

/// One page of a report (or of a page-cursor list such as rate limits, which may omit
/// `has_more`; it then reads as `false` and only `next_page` matters).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct ReportPage<T> {
    #[serde(default = "Vec::new", deserialize_with = "null_as_empty")]
    pub data: Vec<T>,
    #[serde(default, deserialize_with = "null_as_false")]
    pub has_more: bool,
    /// Token for the next page, `None` when done.
    #[serde(default)]
    pub next_page: Option<String>,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

fn null_as_false<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

/// Single-page parameters of an ID-cursor list. `None` fields are not sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageParams {
    /// 1..=1000; the API's default is 20.
    pub limit: Option<u32>,
    pub before_id: Option<String>,
    pub after_id: Option<String>,
}

impl PageParams {
    pub fn first(limit: u32) -> Self {
        PageParams {
            limit: Some(limit),
            ..Default::default()
        }
    }

    pub fn after(limit: u32, after_id: impl Into<String>) -> Self {
        PageParams {
            limit: Some(limit),
            after_id: Some(after_id.into()),
            before_id: None,
        }
    }

    pub fn before(limit: u32, before_id: impl Into<String>) -> Self {
        PageParams {
            limit: Some(limit),
            before_id: Some(before_id.into()),
            after_id: None,
        }
    }
}

fn too_many_pages(max_pages: u32) -> ApiError {
    ApiError::new(
        ApiErrorKind::PaginationLimit,
        format!("stopped after {max_pages} pages; the list did not end"),
    )
}

fn stuck(cursor: &str) -> ApiError {
    ApiError::new(
        ApiErrorKind::PaginationLimit,
        format!("the pagination cursor did not advance ({cursor}); stopped"),
    )
}

/// Fetches an ID-cursor list to the end: `fetch(after_id)` is called with `None` first, then with
/// each page's `last_id` while `has_more`.
// The fetchers are plain closures returning futures (not async closures) so that the futures
// are provably Send: axum handlers that call the `list_all_*` methods must be Send.
pub(crate) async fn collect_id_pages<T, F>(
    max_pages: u32,
    mut fetch: impl FnMut(Option<String>) -> F,
) -> Result<Vec<T>, ApiError>
where
    F: std::future::Future<Output = Result<Page<T>, ApiError>>,
{
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..max_pages.max(1) {
        let page = fetch(cursor.clone()).await?;
        out.extend(page.data);
        if !page.has_more {
            return Ok(out);
        }
        let next = page.last_id.filter(|id| !id.is_empty()).ok_or_else(|| {
            ApiError::new(
                ApiErrorKind::MalformedResponse,
                "the Admin API said there are more results but gave no last_id to continue from",
            )
        })?;
        if cursor.as_deref() == Some(next.as_str()) {
            return Err(stuck(&next));
        }
        cursor = Some(next);
    }
    Err(too_many_pages(max_pages))
}

/// Fetches a page-token report to the end, starting at `start` (`None` = first page).
///
/// With `require_has_more` (reports) the loop continues while `has_more` is true and a
/// `next_page` is given; without it (page-cursor lists such as rate limits, which may omit
/// `has_more`) it continues while `next_page` is present.
pub(crate) async fn collect_report_pages<T, F>(
    max_pages: u32,
    start: Option<String>,
    require_has_more: bool,
    fetch: impl FnMut(Option<String>) -> F,
) -> Result<Vec<T>, ApiError>
where
    F: std::future::Future<Output = Result<ReportPage<T>, ApiError>>,
{
    let mut out = Vec::new();
    each_report_page(max_pages, start, require_has_more, fetch, |page| {
        out.extend(page);
        std::future::ready(Ok::<_, ApiError>(()))
    })
    .await?;
    Ok(out)
}

/// Follows a report's pages like [`collect_report_pages`], handing each page's buckets to
/// `take` as it arrives instead of holding them all (a long report can be very large).
pub(crate) async fn each_report_page<T, F, G, E>(
    max_pages: u32,
    start: Option<String>,
    require_has_more: bool,
    mut fetch: impl FnMut(Option<String>) -> F,
    mut take: impl FnMut(Vec<T>) -> G,
) -> Result<(), E>
where
    F: std::future::Future<Output = Result<ReportPage<T>, ApiError>>,
    G: std::future::Future<Output = Result<(), E>>,
    E: From<ApiError>,
{
    let mut cursor = start;
    for _ in 0..max_pages.max(1) {
        let page = fetch(cursor.clone()).await?;
        let next = page.next_page.filter(|p| !p.is_empty());
        let more = if require_has_more {
            page.has_more
        } else {
            next.is_some()
        };
        take(page.data).await?;
        if !more {
            return Ok(());
        }
        let next = next.ok_or_else(|| {
            ApiError::new(
                ApiErrorKind::MalformedResponse,
                "the Admin API said there are more results but gave no next_page token",
            )
        })?;
        if cursor.as_deref() == Some(next.as_str()) {
            return Err(stuck(&next).into());
        }
        cursor = Some(next);
    }
    Err(too_many_pages(max_pages).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn id_page(ids: &[&str], has_more: bool) -> Page<String> {
        Page {
            data: ids.iter().map(|s| s.to_string()).collect(),
            has_more,
            first_id: ids.first().map(|s| s.to_string()),
            last_id: ids.last().map(|s| s.to_string()),
        }
    }

    #[test]
    fn id_pages_are_followed_with_after_id_until_has_more_is_false() {
        let seen = std::cell::RefCell::new(Vec::new());
        let all = block_on(collect_id_pages(10, async |after: Option<String>| {
            seen.borrow_mut().push(after.clone());
            Ok(match after.as_deref() {
                None => id_page(&["a", "b"], true),
                Some("b") => id_page(&["c", "d"], true),
                Some("d") => id_page(&["e"], false),
                other => panic!("unexpected cursor {other:?}"),
            })
        }))
        .unwrap();
        assert_eq!(all, vec!["a", "b", "c", "d", "e"]);
        assert_eq!(
            seen.into_inner(),
            vec![None, Some("b".into()), Some("d".into())]
        );
    }

    #[test]
    fn an_endless_id_list_stops_at_the_page_limit() {
        let n = std::cell::Cell::new(0u32);
        let err = block_on(collect_id_pages(5, async |_after: Option<String>| {
            n.set(n.get() + 1);
            Ok(id_page(&[&format!("id{}", n.get())], true))
        }))
        .unwrap_err();
        assert_eq!(err.kind(), ApiErrorKind::PaginationLimit);
        assert_eq!(n.get(), 5);
    }

    #[test]
    fn a_cursor_that_does_not_advance_is_an_error_not_a_loop() {
        let err = block_on(collect_id_pages(100, async |_after: Option<String>| {
            Ok(id_page(&["same"], true))
        }))
        .unwrap_err();
        assert_eq!(err.kind(), ApiErrorKind::PaginationLimit);
        let err = block_on(collect_id_pages(100, async |_after: Option<String>| {
            Ok(Page::<String> {
                data: vec![],
                has_more: true,
                first_id: None,
                last_id: None,
            })
        }))
        .unwrap_err();
        assert_eq!(err.kind(), ApiErrorKind::MalformedResponse);
    }

    #[test]
    fn report_pages_follow_next_page_while_has_more() {
        let all = block_on(collect_report_pages(
            10,
            None,
            true,
            async |page: Option<String>| {
                Ok(match page.as_deref() {
                    None => ReportPage {
                        data: vec![1],
                        has_more: true,
                        next_page: Some("p2".into()),
                    },
                    Some("p2") => ReportPage {
                        data: vec![2, 3],
                        has_more: false,
                        next_page: Some("ignored".into()),
                    },
                    other => panic!("unexpected page {other:?}"),
                })
            },
        ))
        .unwrap();
        assert_eq!(all, vec![1, 2, 3]);
    }

    #[test]
    fn page_cursor_lists_without_has_more_follow_next_page_alone() {
        let page: ReportPage<u32> =
            serde_json::from_str(r#"{"data":[1],"next_page":"x"}"#).unwrap();
        assert!(!page.has_more);
        let all = block_on(collect_report_pages(
            10,
            None,
            false,
            async |page: Option<String>| {
                Ok(match page.as_deref() {
                    None => ReportPage {
                        data: vec![1],
                        has_more: false,
                        next_page: Some("x".into()),
                    },
                    Some("x") => ReportPage {
                        data: vec![2],
                        has_more: false,
                        next_page: None,
                    },
                    other => panic!("unexpected page {other:?}"),
                })
            },
        ))
        .unwrap();
        assert_eq!(all, vec![1, 2]);
        let err = block_on(collect_report_pages(
            3,
            None,
            false,
            async |page: Option<String>| {
                let n = page.map(|p| p.len()).unwrap_or(0);
                Ok(ReportPage::<u32> {
                    data: vec![],
                    has_more: false,
                    next_page: Some("x".repeat(n + 1)),
                })
            },
        ))
        .unwrap_err();
        assert_eq!(err.kind(), ApiErrorKind::PaginationLimit);
    }
}
