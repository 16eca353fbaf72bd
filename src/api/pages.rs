//! The pages hark serves itself (no CDN): the embeddable widget, the supervisor console and a
//! demo page hosting the widget. The files in web/ are compiled into the binary.

use std::sync::Arc;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::server::App;

/// A static file: its route, content type and bytes.
const FILES: &[(&str, &str, &str)] = &[
    ("/widget.js", "text/javascript; charset=utf-8", include_str!("../../web/widget.js")),
    ("/console", "text/html; charset=utf-8", include_str!("../../web/console.html")),
    ("/console.js", "text/javascript; charset=utf-8", include_str!("../../web/console.js")),
    ("/console.css", "text/css; charset=utf-8", include_str!("../../web/console.css")),
    ("/demo", "text/html; charset=utf-8", include_str!("../../web/demo.html")),
];

pub fn router() -> Router<Arc<App>> {
    FILES.iter().fold(Router::new(), |router, &(path, content_type, body)| {
        router.route(
            path,
            get(move || async move {
                ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
            }),
        )
    })
}
