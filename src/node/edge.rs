//! The control API's HTTP edge: every error is `{"error": "..."}` naming what was wrong (axum's
//! own rejections, unknown routes and wrong methods included), request bodies are bounded by
//! their Content-Length before a byte is read, and a file's name goes out in a Content-Disposition
//! that any name can be written into.

use axum::body::{Body, BodyDataStream};
use axum::extract::{FromRequest, Request};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};

/// Bytes of a non-JSON error body carried over into the JSON message (axum's rejections are one
/// sentence).
const MAX_ERROR_TEXT_BYTES: usize = 4 * 1024;
/// Seconds a client refused for lack of capacity is told to wait (`Retry-After`).
pub const RETRY_AFTER_S: u64 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub error: String,
}

/// A failed request: an HTTP status and a sentence naming what was wrong.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into() }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
    /// 503 with `Retry-After`: a bounded resource (transfer slots) is all in use.
    pub fn busy(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, Json(ApiErrorBody { error: self.message })).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_S));
        }
        res
    }
}

/// The request's Content-Length, refused with 413 when over `max_bytes` (before the body is
/// read) and with 400 when it is not a number. `None` when the body is unframed (chunked).
pub fn content_length(headers: &HeaderMap, max_bytes: u64) -> Result<Option<u64>, ApiError> {
    let Some(v) = headers.get(header::CONTENT_LENGTH) else { return Ok(None) };
    let n: u64 = v
        .to_str()
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| ApiError::bad_request("the Content-Length header is not a number"))?;
    if n > max_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is {n} bytes; this route accepts at most {max_bytes}"),
        ));
    }
    Ok(Some(n))
}

/// A JSON request body of at most [`super::api::MAX_JSON_BODY_BYTES`]: the length is checked
/// first, then axum's `Json` reads it (bounded by the route's `DefaultBodyLimit` when unframed)
/// and its rejections become our JSON errors.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        content_length(req.headers(), super::api::MAX_JSON_BODY_BYTES as u64)?;
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(r) if stalled(&r) => Err(stalled_body()),
            Err(r) => Err(ApiError::new(r.status(), r.body_text())),
        }
    }
}

/// An upload's body as it arrives, with its announced length. This is the seam for the streaming
/// file engine: it consumes `body` chunk by chunk; until then [`Upload::into_bytes`] gathers it.
pub struct Upload {
    pub body: BodyDataStream,
    /// From Content-Length, already checked against the upload limit; the transport delivers
    /// exactly this many bytes or fails the body.
    pub length_bytes: u64,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload").field("length_bytes", &self.length_bytes).finish_non_exhaustive()
    }
}

impl Upload {
    pub fn new(body: Body, length_bytes: u64) -> Self {
        Upload { body: body.into_data_stream(), length_bytes }
    }

    /// Read the body to its end and drop it: a request refused after its length was accepted is
    /// still read, so a client that sends its whole body before reading (most do) gets the answer
    /// instead of a reset connection. Costs no memory; bounded by the length and the timeouts.
    pub async fn discard(mut self) {
        while let Some(Ok(_)) = self.body.next().await {}
    }
}

/// A request body that could not be read: it stalled (408), or it ended early or broke (400).
pub fn body_error(e: axum::Error) -> ApiError {
    if stalled(&e) {
        return stalled_body();
    }
    ApiError::bad_request(format!("the request body could not be read (ended before its Content-Length?): {e}"))
}

/// Whether `e` comes from the body idle timeout (somewhere down its chain of sources).
fn stalled(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

fn stalled_body() -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        format!("the request body stalled: no bytes for {} ms", super::serve::BODY_IDLE_TIMEOUT_MS),
    )
}

/// Why a file name cannot be published, if it cannot: it must be non-empty and free of control
/// characters (they cannot be carried in the HTTP header that names the file on fetch).
pub fn check_file_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(ApiError::bad_request("the file name is empty"));
    }
    if let Some((at, c)) = name.chars().enumerate().find(|(_, c)| c.is_control()) {
        return Err(ApiError::bad_request(format!(
            "the file name has a control character (U+{:04X}) as its character {}: names must be printable",
            c as u32,
            at + 1
        )));
    }
    Ok(())
}

/// Characters left as they are in an RFC 8187 `ext-value` (its `attr-char`); all else is
/// percent-encoded from UTF-8.
const ATTR_CHAR_ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `attachment; filename="ascii fallback"; filename*=UTF-8''percent-encoded` (RFC 6266) for any
/// name, control characters and all: whatever a manifest says, the header is valid.
pub fn content_disposition(name: &str) -> HeaderValue {
    let fallback: String = name
        .chars()
        .map(|c| if (c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '%')) || c == ' ' { c } else { '_' })
        .collect();
    let fallback = if fallback.is_empty() { "file".to_string() } else { fallback };
    let encoded = utf8_percent_encode(name, ATTR_CHAR_ESCAPED);
    HeaderValue::from_str(&format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// The fallback for paths no route has.
pub async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route {method} {}; the API has {}", uri.path(), super::api::ROUTES))
}

/// The fallback for a known path asked with a method it does not take (axum adds `Allow`).
pub async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, format!("{method} is not allowed on {}", uri.path()))
}

/// The last word on every response: an error that is not JSON yet (an extractor's plain-text
/// rejection, a timeout's empty 408) becomes `{"error": ...}` with its text or its status named.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let res = next.run(req).await;
    let is_json =
        res.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(res.status().is_client_error() || res.status().is_server_error()) || is_json {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let text = match axum::body::to_bytes(body, MAX_ERROR_TEXT_BYTES).await {
        Ok(b) if !b.is_empty() => String::from_utf8_lossy(&b).into_owned(),
        _ => format!("{method} {path}: {}", parts.status.canonical_reason().unwrap_or("error")),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    let mut out = ApiError::new(parts.status, text).into_response();
    for (k, v) in &parts.headers {
        out.headers_mut().entry(k).or_insert_with(|| v.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_name_makes_a_valid_content_disposition() {
        let v = content_disposition("evil\r\nname\u{7f}\"é%.txt");
        let s = v.to_str().unwrap();
        assert_eq!(
            s,
            "attachment; filename=\"evil__name____.txt\"; filename*=UTF-8''evil%0D%0Aname%7F%22%C3%A9%25.txt"
        );
        assert_eq!(content_disposition("").to_str().unwrap(), "attachment; filename=\"file\"; filename*=UTF-8''");
        assert_eq!(
            content_disposition("notes v2.txt").to_str().unwrap(),
            "attachment; filename=\"notes v2.txt\"; filename*=UTF-8''notes%20v2.txt"
        );
    }

    #[test]
    fn names_with_control_characters_are_refused_with_the_character_named() {
        assert!(check_file_name("notes.txt").is_ok());
        assert!(check_file_name("été.txt").is_ok());
        let e = check_file_name("a\nb").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("U+000A") && e.message.contains("character 2"), "{}", e.message);
        assert!(check_file_name("x\u{9b}").unwrap_err().message.contains("U+009B"));
        assert!(check_file_name("").unwrap_err().message.contains("empty"));
    }

    #[test]
    fn content_length_over_the_limit_is_413_and_garbage_is_400() {
        let mut h = HeaderMap::new();
        assert_eq!(content_length(&h, 10).unwrap(), None);
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("10"));
        assert_eq!(content_length(&h, 10).unwrap(), Some(10));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("11"));
        assert_eq!(content_length(&h, 10).unwrap_err().status, StatusCode::PAYLOAD_TOO_LARGE);
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("ten"));
        assert_eq!(content_length(&h, 10).unwrap_err().status, StatusCode::BAD_REQUEST);
    }
}
