//! HTTP errors as RFC 9457 problem JSON, the one error shape of the REST API.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Every field a request got wrong (RFC 9457's `invalid-params`), when there are several.
    #[serde(rename = "invalid-params", skip_serializing_if = "Vec::is_empty")]
    pub invalid_params: Vec<InvalidParam>,
}

/// One bad field of a request: its path (`alerts[2].condition.value`) and what is wrong.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvalidParam {
    pub name: String,
    pub reason: String,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            invalid_params: Vec::new(),
        }
    }

    /// 400 naming every bad field; the detail names the first.
    pub fn invalid(params: Vec<InvalidParam>) -> Problem {
        let detail = match params.first() {
            Some(first) if first.name.is_empty() => first.reason.clone(),
            Some(first) => format!("{}: {}", first.name, first.reason),
            None => "invalid request".into(),
        };
        Problem { invalid_params: params, ..Problem::bad_request(detail) }
    }

    /// 400 naming one bad field.
    pub fn invalid_field(name: &str, reason: impl Into<String>) -> Problem {
        Problem::invalid(vec![InvalidParam { name: name.into(), reason: reason.into() }])
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, detail)
    }

    pub fn internal(err: impl std::fmt::Display) -> Problem {
        tracing::error!(error = %err, "request failed");
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error; see the server log")
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(&self)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/problem+json"));
        response
    }
}

/// Body, query and path errors of axum's extractors, as problem JSON with axum's explanation.
macro_rules! rejection_to_problem {
    ($($rejection:ty),*) => {$(
        impl From<$rejection> for Problem {
            fn from(rejection: $rejection) -> Problem {
                Problem::new(rejection.status(), rejection.body_text())
            }
        }
    )*};
}

rejection_to_problem!(JsonRejection, QueryRejection, PathRejection, WebSocketUpgradeRejection);

/// `axum::Json` whose rejection is problem JSON.
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(Problem))]
pub struct Json<T>(pub T);

/// `axum::extract::Query` whose rejection is problem JSON.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Problem))]
pub struct Query<T>(pub T);

/// `axum::extract::Path` whose rejection is problem JSON.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Problem))]
pub struct Path<T>(pub T);
