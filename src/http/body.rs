//! The raw body of a client request: signed requests are verified over the exact bytes, so
//! the handlers parse JSON themselves. Oversized or unreadable bodies get the API's JSON error.

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest};
use futures::future::LocalBoxFuture;

use crate::error::ApiError;

pub struct RawBody(pub web::Bytes);

impl std::ops::Deref for RawBody {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl FromRequest for RawBody {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            bytes.await.map(RawBody).map_err(|e| {
                let status = e.as_response_error().status_code();
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(status, "payload_too_large", e.to_string())
                } else {
                    ApiError::bad_request(format!("cannot read the request body: {e}"))
                }
            })
        })
    }
}
