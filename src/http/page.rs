//! `GET /`: a self-contained viewer page, so a newcomer sees a stream without building anything.

use axum::response::Html;

/// The page, compiled into the binary.
const PAGE_HTML: &str = include_str!("page.html");

/// Serves the viewer page; it subscribes to `/events` with a plain `EventSource`.
pub async fn get_page() -> Html<&'static str> {
    Html(PAGE_HTML)
}
